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

    tally.run(
        "workspace tests",
        cmd::cargo()
            .current_dir(&paths.root)
            .args(["test", "--workspace", "--all-features"]),
    )?;
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
        for (provider, features, extra) in FORK_UNIT_RUNS {
            tally.run(
                &format!("rustls unit tests on the patched tree ({provider})"),
                cmd::cargo()
                    .current_dir(&fork_dir)
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
    }
    tally.finish(&paths.target_dir().join("test-summary.txt"))
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
