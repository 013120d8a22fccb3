//! `cargo xtask test` and `cargo xtask demo`.

use crate::cmd;
use crate::fork;
use crate::paths::Paths;
use crate::summary::Tally;

/// rustls's unit tests on the patched tree, once per crypto provider. The aws-lc-rs run
/// skips the one test whose RFC 9180 vector file is not available (see the fixtures'
/// README in ../shared).
const FORK_UNIT_RUNS: &[(&str, &str, &[&str])] = &[
    ("ring", "ring,std,tls12,logging", &[]),
    (
        "aws-lc-rs",
        "aws_lc_rs,std,tls12,logging",
        &["--skip", "hpke::rfc_tests::check_test_vectors"],
    ),
];

pub(crate) fn run(paths: &Paths, skip_fork_unit_tests: bool) -> anyhow::Result<()> {
    let fork_dir = fork::materialize(paths, false)?;
    let mut tally = Tally::default();

    let clients = connect_clients(paths, &mut tally);
    let mut workspace = cmd::cargo();
    workspace
        .current_dir(&paths.root)
        .env("RCA_CONNECT_CLIENTS_DIR", clients)
        .args(["test", "--workspace", "--all-features"]);
    if let Some(haproxy) = haproxy(paths, &mut tally) {
        workspace.env("RCA_HAPROXY", haproxy);
    }
    if let Some(promtool) = promtool(paths, &mut tally) {
        workspace.env("RCA_PROMTOOL", promtool);
    }
    tally.run("workspace tests", &mut workspace)?;
    routing_differential(paths, &mut tally)?;
    tally.run(
        "the project tool's own tests",
        cmd::cargo()
            .current_dir(paths.root.join("xtask"))
            .args(["test", "--quiet"]),
    )?;
    tally.run(
        "codec without default features",
        cmd::cargo().current_dir(&paths.root).args([
            "test",
            "-p",
            "rustls-tls-flags",
            "--no-default-features",
        ]),
    )?;

    let skip = if skip_fork_unit_tests {
        Err("--skip-fork-unit-tests".to_owned())
    } else {
        fork::fixtures_installed(paths, &fork_dir)
    };
    if let Err(reason) = skip {
        let providers: Vec<_> = FORK_UNIT_RUNS.iter().map(|run| run.0).collect();
        tally.skip(
            &format!(
                "rustls's own unit tests on the patched tree ({})",
                providers.join(", ")
            ),
            &reason,
        );
    } else {
        run_fork_unit_tests(paths, &fork_dir, &mut tally)?;
    }
    tally.finish(&paths.target_dir().join("test-summary.txt"))
}

/// The real clients of rca-connect's tests (Python's requests, Go's
/// net/http; curl is the machine's), installed before the workspace tests
/// run; where they cannot be, those clients' cases are left out (the tests
/// still run curl's) and the summary says why. Their directory.
fn connect_clients(paths: &Paths, tally: &mut Tally) -> std::path::PathBuf {
    const LABEL: &str = "rca-connect with Python requests and Go net/http (tests/connect)";
    let dir = paths.target_dir().join("connect-clients");
    let script = paths.root.join("rca-tools/tests/connect/install.sh");
    if let Err(reason) = install(&script, Some(&dir)) {
        tally.skip(LABEL, &reason);
    }
    dir
}

/// HAProxy, the balancer of rca-proxy's PROXY protocol tests: its path, or
/// none (and the reason in the summary) where it cannot be installed.
fn haproxy(paths: &Paths, tally: &mut Tally) -> Option<String> {
    const LABEL: &str = "rca-proxy behind HAProxy (PROXY protocol, tests/proxy)";
    let script = paths.root.join("rca-tools/tests/proxy/install.sh");
    match install(&script, None) {
        Ok(stdout) => stdout.lines().last().map(str::to_owned),
        Err(reason) => {
            tally.skip(LABEL, &reason);
            None
        }
    }
}

/// promtool, Prometheus's checker of the tools' `/metrics` (taken out of
/// Debian's package into the target directory): its path, or none (and the
/// reason in the summary) where it cannot be had.
fn promtool(paths: &Paths, tally: &mut Tally) -> Option<String> {
    const LABEL: &str = "rca-proxy's and rca-connect's /metrics through promtool";
    let dir = paths.target_dir().join("promtool");
    let script = paths.root.join("rca-tools/tests/promtool/install.sh");
    match install(&script, Some(&dir)) {
        Ok(stdout) => stdout.lines().last().map(str::to_owned),
        Err(reason) => {
            tally.skip(LABEL, &reason);
            None
        }
    }
}

/// Runs the install script `script` (with `dir`): what it printed, or why
/// it failed (its last line on stderr).
fn install(script: &std::path::Path, dir: Option<&std::path::Path>) -> Result<String, String> {
    let mut command = std::process::Command::new("bash");
    command.arg(script);
    if let Some(dir) = dir {
        command.arg(dir);
    }
    match command.stdin(std::process::Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(stderr
                .lines()
                .last()
                .unwrap_or("the install script failed")
                .to_owned())
        }
        Err(error) => Err(format!("could not run bash: {error}")),
    }
}

/// rca-proxy's differential test against real routers (Flask on gunicorn,
/// Starlette on uvicorn, express, Node, nginx): their install script runs
/// first (quick once they are there), and the test is left out, with the
/// script's reason, where they cannot be installed (no network, not root).
fn routing_differential(paths: &Paths, tally: &mut Tally) -> anyhow::Result<()> {
    const LABEL: &str = "rca-proxy against real routers (differential, tests/routers)";
    let dir = paths.target_dir().join("routers");
    match install(
        &paths.root.join("rca-tools/tests/routers/install.sh"),
        Some(&dir),
    ) {
        Ok(_) => tally.run(
            LABEL,
            cmd::cargo()
                .current_dir(&paths.root)
                .env("RCA_ROUTERS_DIR", &dir)
                .args([
                    "test",
                    "-p",
                    "rca-tools",
                    "--test",
                    "routers",
                    "--",
                    "--ignored",
                ]),
        ),
        Err(reason) => {
            tally.skip(LABEL, &reason);
            Ok(())
        }
    }
}

/// rustls's unit tests on the patched tree, both providers, on their own
/// (after `fork rebase`); fails if the fixtures are missing or a test fails.
pub(crate) fn fork_unit_tests(paths: &Paths) -> anyhow::Result<()> {
    let fork_dir = fork::materialize(paths, false)?;
    if let Err(reason) = fork::fixtures_installed(paths, &fork_dir) {
        anyhow::bail!("rustls's unit tests cannot run: {reason}");
    }
    let mut tally = Tally::default();
    run_fork_unit_tests(paths, &fork_dir, &mut tally)?;
    tally.finish(&paths.target_dir().join("fork-unit-summary.txt"))
}

fn run_fork_unit_tests(
    paths: &Paths,
    fork_dir: &std::path::Path,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    fork::usable_lock(fork_dir)?;
    for (provider, features, extra) in FORK_UNIT_RUNS {
        tally.run(
            &format!("rustls unit tests on the patched tree ({provider})"),
            cmd::cargo()
                .current_dir(fork_dir)
                .env("CARGO_TARGET_DIR", paths.target_dir().join("fork-unit"))
                .args([
                    "test",
                    "--lib",
                    "--no-default-features",
                    "--features",
                    features,
                    "--",
                ])
                .args(*extra),
        )?;
    }
    Ok(())
}

pub(crate) fn demo(paths: &Paths) -> anyhow::Result<()> {
    fork::materialize(paths, false)?;
    // rca-proxy with a fresh PKI and a built-in upstream, and five clients: a
    // browser, a browser forging identity headers, a bot with a bot-CA
    // certificate, a bot with another CA's certificate, a bot with nothing to give
    // (rca-tools/src/demo.rs).
    cmd::run(cmd::cargo().current_dir(&paths.root).args([
        "run",
        "--quiet",
        "-p",
        "rca-tools",
        "--bin",
        "rca-proxy",
        "--",
        "demo",
    ]))
}
