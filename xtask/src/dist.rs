//! `cargo xtask dist`: the Debian package of rca-proxy, rca-connect and
//! rca-probe, in `target/dist/`.
//!
//! The fork first (the workspace patches rustls to it), then the man pages
//! and completions (`rca-tools/examples/gen-docs.rs`), the Markdown docs
//! with their links made to work where they are installed
//! (`installed_docs`), the release binaries
//! and cargo-deb, which reads `[package.metadata.deb]` in
//! `rca-tools/Cargo.toml` and the files in `packaging/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::cmd;
use crate::fork;
use crate::installed_docs;
use crate::paths::{shown, Paths};

/// The crate whose binaries and metadata make the package.
const PACKAGE: &str = "rca-tools";

pub(crate) fn run(paths: &Paths) -> anyhow::Result<()> {
    fork::materialize(paths, false)?;
    let dist = paths.target_dir().join("dist");
    // The release build has a target directory of its own, so it neither
    // waits for nor invalidates the debug builds in target/.
    let build = dist.join("build");
    ensure_cargo_deb()?;

    // [package.metadata.deb] names this directory `target/release/docs`:
    // cargo-deb's name for the release build's directory, wherever it is.
    let docs = build.join("release").join("docs");
    if docs.exists() {
        fs::remove_dir_all(&docs).with_context(|| format!("cannot remove {}", docs.display()))?;
    }
    // In the workspace's own target directory, in debug: the example needs
    // the dev-dependencies, which `cargo test` has built there already.
    eprintln!("dist: man pages and completions");
    cmd::run(
        cmd::cargo()
            .current_dir(&paths.root)
            .args(["run", "--quiet", "--locked", "-p", PACKAGE])
            .args(["--example", "gen-docs", "--"])
            .arg(&docs),
    )?;
    gzip_man_pages(&docs.join("man"))?;
    installed_docs::write(&paths.root, &docs.join("doc"))?;

    eprintln!(
        "dist: release build of rca-proxy, rca-connect and rca-probe (in {})",
        shown(&build, &paths.root)
    );
    cmd::run(
        cmd::cargo()
            .current_dir(&paths.root)
            .env("CARGO_TARGET_DIR", &build)
            .args(["build", "--release", "--locked", "-p", PACKAGE, "--bins"]),
    )?;

    remove_old_packages(&dist)?;
    eprintln!("dist: cargo deb");
    let deb = cargo_deb(paths, &build, &dist)?;
    println!("dist: {}", shown(&deb, &paths.root));
    Ok(())
}

/// The cargo-deb release installed when it is missing: pinned, so a newer
/// one that wants a newer Rust cannot break a build here.
const CARGO_DEB: &str = "3.8.0";

/// cargo-deb, installed with `cargo install --locked` when it is missing.
fn ensure_cargo_deb() -> anyhow::Result<()> {
    let found = cmd::cargo()
        .args(["deb", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!(
            "dist: cargo-deb is not installed; installing it (cargo install cargo-deb --version {CARGO_DEB} --locked, a few minutes, once)"
        );
        cmd::run(cmd::cargo().args(["install", "cargo-deb", "--version", CARGO_DEB, "--locked"]))?;
    }
    Ok(())
}

/// Debian installs man pages gzipped at the best compression (cargo-deb
/// would compress them, but not those under `target/release/`). No name
/// and no time in the header, so the same page makes the same file.
fn gzip_man_pages(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let page = entry?.path();
        if page.extension().is_none_or(|ext| ext != "1") {
            continue;
        }
        let text = fs::read(&page).with_context(|| format!("cannot read {}", page.display()))?;
        let mut gz = page.clone().into_os_string();
        gz.push(".gz");
        let file = fs::File::create(&gz)
            .with_context(|| format!("cannot create {}", Path::new(&gz).display()))?;
        let mut encoder = flate2::GzBuilder::new().write(file, flate2::Compression::best());
        encoder.write_all(&text)?;
        encoder.finish()?;
        fs::remove_file(&page)?;
    }
    Ok(())
}

/// Packages of earlier versions would be left beside the new one
/// (cargo-deb clears only its default output directory).
fn remove_old_packages(dist: &Path) -> anyhow::Result<()> {
    let Ok(entries) = fs::read_dir(dist) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "deb") {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// `cargo deb` on the binaries already built; the path of the package,
/// which cargo-deb prints last.
fn cargo_deb(paths: &Paths, build: &Path, dist: &Path) -> anyhow::Result<PathBuf> {
    let mut cargo_deb = cmd::cargo();
    cargo_deb
        .current_dir(&paths.root)
        .env("CARGO_TARGET_DIR", build)
        .args(["deb", "--no-build", "-p", PACKAGE, "--output"])
        // A trailing slash: a directory, with cargo-deb's file name in it.
        .arg(format!("{}/", dist.display()));
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        // File times in the package from the commit, not from the clock,
        // so the same commit makes the same package.
        if let Ok(time) = cmd::git_stdout(&paths.root, ["log", "-1", "--format=%ct"]) {
            cargo_deb.env("SOURCE_DATE_EPOCH", time);
        }
    }
    let out = stdout_only(&mut cargo_deb)?;
    let Some(last) = out.lines().map(str::trim).rfind(|line| !line.is_empty()) else {
        bail!("cargo deb printed no package path");
    };
    let deb = PathBuf::from(last);
    if deb.extension().is_none_or(|ext| ext != "deb") || !deb.is_file() {
        bail!("cargo deb's last line is not a package: {last}");
    }
    Ok(deb)
}

/// Runs `cmd` with its standard error shown (cargo-deb's warnings) and
/// returns its standard output.
fn stdout_only(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("could not start `cargo deb`")?;
    if !out.status.success() {
        bail!(
            "`cargo deb` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
