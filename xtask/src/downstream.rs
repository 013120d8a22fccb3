//! `cargo xtask downstream`: the crates used the way the README tells users to.
//! A scratch project outside the workspace depends on the exported fork and on
//! the crates' directories, is built offline from the local registry cache and
//! runs one flagged handshake. The same project without `[patch.crates-io]` must
//! fail with the hook crate's one message that names the fix. Both crates go
//! through `cargo package` first.

use std::fs;
use std::path::Path;

use anyhow::{ensure, Context};

use crate::cmd;
use crate::fork;
use crate::paths::Paths;

const MAIN: &str = include_str!("../downstream/main.rs");

pub(crate) fn run(paths: &Paths) -> anyhow::Result<()> {
    fork::materialize(paths, false)?;
    let scratch = std::env::temp_dir().join(format!("rca-downstream-{}", std::process::id()));
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    let result = check(paths, &scratch);
    if result.is_ok() {
        let _ = fs::remove_dir_all(&scratch);
    } else {
        eprintln!(
            "downstream: the scratch projects are left in {}",
            scratch.display()
        );
    }
    result
}

/// `cargo package` of both crates. The codec is verified (built from its
/// package); the hook crate is packaged with `--no-verify`, as verification
/// builds the package against the rustls on crates.io, which lacks `hooks` (its
/// build script says so and stops).
fn package(paths: &Paths) -> anyhow::Result<()> {
    eprintln!("downstream: cargo package");
    cmd::run(cmd::cargo().current_dir(&paths.root).args([
        "package",
        "--quiet",
        "--offline",
        "--allow-dirty",
        "-p",
        "rustls-tls-flags",
    ]))?;
    cmd::run(cmd::cargo().current_dir(&paths.root).args([
        "package",
        "--quiet",
        "--offline",
        "--allow-dirty",
        "--no-verify",
        "-p",
        "rustls-tls-flags",
        "-p",
        "rustls-req-client-auth",
    ]))
}

fn check(paths: &Paths, scratch: &Path) -> anyhow::Result<()> {
    package(paths)?;
    let vendor = scratch.join("vendor").join("rustls");
    fork::export_to(paths, &vendor)?;
    let crate_dir = paths.root.join("rustls-req-client-auth");
    // Builds are kept between runs; the scratch directories are not.
    let target = paths.target_dir().join("downstream");

    // The pinned release: the downstream project asks for what the fork is.
    let version = fork::read_pin(paths)?.version;
    let patched = scratch.join("bot-and-server");
    write_project(
        &patched,
        &format!(
            "rustls-req-client-auth = {{ path = {crate_dir:?} }}\n\
             rustls = \"{version}\"\n\
             rcgen = \"0.14\"\n\n\
             [patch.crates-io]\n\
             rustls = {{ path = {vendor:?} }}\n"
        ),
    )?;
    eprintln!("downstream: building {} offline", patched.display());
    cmd::run(
        cmd::cargo()
            .current_dir(&patched)
            .env("CARGO_TARGET_DIR", &target)
            .args(["run", "--quiet", "--offline"]),
    )
    .context("the downstream project with the patched rustls did not build or run")?;

    // Without the patch: one message that says what to do, before rustc ever
    // reports the missing `rustls::hooks`.
    let vanilla = scratch.join("without-patch");
    write_project(
        &vanilla,
        &format!(
            "rustls-req-client-auth = {{ path = {crate_dir:?}, default-features = false, features = [\"ring\"] }}\n\
             rustls = {{ version = \"{version}\", default-features = false, features = [\"ring\", \"std\"] }}\n\
             rcgen = \"0.14\"\n"
        ),
    )?;
    eprintln!(
        "downstream: checking that {} fails with the fix in its message",
        vanilla.display()
    );
    let out = cmd::cargo()
        .current_dir(&vanilla)
        .env("CARGO_TARGET_DIR", &target)
        .args(["check", "--offline", "--message-format", "short"])
        .output()
        .context("could not start cargo check")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "the project without the patch built:\n{stderr}"
    );
    for wanted in ["[patch.crates-io]", "cargo xtask fork export"] {
        ensure!(
            stderr.contains(wanted),
            "without the patch, the error does not mention `{wanted}`:\n{stderr}"
        );
    }
    ensure!(
        !stderr.contains("E0432"),
        "without the patch, rustc's errors come before the explanation:\n{stderr}"
    );
    eprintln!("downstream: without the patch the build stops with:");
    for line in stderr.lines().filter(|line| line.starts_with("error")) {
        eprintln!("    {line}");
    }
    Ok(())
}

fn write_project(dir: &Path, dependencies: &str) -> anyhow::Result<()> {
    fs::create_dir_all(dir.join("src"))?;
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"downstream-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [workspace]\n\n[dependencies]\n{dependencies}"
        ),
    )?;
    fs::write(dir.join("src").join("main.rs"), MAIN)?;
    Ok(())
}
