//! The rustls fork as a patch series against one pinned release.
//!
//! `fork/rustls/` is generated: a git repository whose first commit (tagged
//! `pristine`) is the published crate exactly as crates.io serves it, followed by one
//! commit per patch of `fork/patches/`. `git diff pristine` there shows our whole
//! change; `fork save` turns those commits back into the series.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::cmd::{self, git, git_stdout};
use crate::paths::{shown, Paths, FIXTURES_ENV};

/// Bumped when the way the tree is generated changes, so old trees are rebuilt.
const GENERATOR_VERSION: &str = "2";

/// Tag of the pristine commit inside the generated repository.
const PRISTINE_TAG: &str = "pristine";

#[derive(Deserialize)]
struct PinFile {
    #[serde(rename = "crate")]
    krate: Pin,
}

#[derive(Deserialize)]
pub(crate) struct Pin {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) checksum: String,
}

pub(crate) fn read_pin(paths: &Paths) -> anyhow::Result<Pin> {
    let file = paths.pin_file();
    let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let pin: PinFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    Ok(pin.krate)
}

/// The series in application order (file names sort by their `NNNN-` prefix).
pub(crate) fn patch_files(paths: &Paths) -> anyhow::Result<Vec<PathBuf>> {
    let dir = paths.patches_dir();
    let mut patches = Vec::new();
    if dir.is_dir() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "patch") {
                patches.push(path);
            }
        }
    }
    patches.sort();
    Ok(patches)
}

/// Everything the generated tree is a function of.
fn compute_stamp(paths: &Paths) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(GENERATOR_VERSION.as_bytes());
    hasher.update(fs::read(paths.pin_file())?);
    for patch in patch_files(paths)? {
        hasher.update(patch.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update(fs::read(&patch)?);
    }
    hasher.update([u8::from(paths.fixtures_dir().is_dir())]);
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The stamp records the series' hash and the commit it produced, so a tree whose
/// commits or files were edited since is recognised as carrying unsaved work.
struct Stamp {
    series: String,
    head: String,
}

impl Stamp {
    fn read(paths: &Paths) -> Option<Self> {
        let text = fs::read_to_string(paths.stamp_file()).ok()?;
        let mut lines = text.lines();
        Some(Self {
            series: lines.next()?.to_owned(),
            head: lines.next()?.to_owned(),
        })
    }

    fn write(&self, paths: &Paths) -> anyhow::Result<()> {
        fs::write(
            paths.stamp_file(),
            format!("{}\n{}\n", self.series, self.head),
        )?;
        Ok(())
    }
}

/// Uncommitted changes, or commits beyond what the series produced.
fn unsaved_work(paths: &Paths, stamp: Option<&Stamp>) -> anyhow::Result<Option<String>> {
    let dir = paths.generated_crate();
    if !dir.join(".git").is_dir() {
        return Ok(None);
    }
    let status = git_stdout(&dir, ["status", "--porcelain"])?;
    if !status.is_empty() {
        return Ok(Some(format!("uncommitted changes:\n{status}")));
    }
    let head = git_stdout(&dir, ["rev-parse", "HEAD"])?;
    match stamp {
        Some(stamp) if stamp.head == head => Ok(None),
        _ => Ok(Some(format!(
            "commits that are not in fork/patches/ (HEAD is {head})"
        ))),
    }
}

/// Brings `fork/rustls` up to date with the pin and the series. Returns the crate dir.
pub(crate) fn materialize(paths: &Paths, force: bool) -> anyhow::Result<PathBuf> {
    let pin = read_pin(paths)?;
    let series = compute_stamp(paths)?;
    let dir = paths.generated_crate();
    let old = Stamp::read(paths);

    if !force {
        if let Some(work) = unsaved_work(paths, old.as_ref())? {
            if old.as_ref().is_some_and(|s| s.series == series) {
                // Work in progress on top of the current series: leave it alone.
                eprintln!(
                    "fork: fork/rustls has unsaved edits ({}); using it as it is",
                    work.replace('\n', " ")
                );
                vanilla(paths)?;
                return Ok(dir);
            }
            bail!(
                "fork/rustls has {work}\n\
                 and the series changed since it was generated. Save the edits first \
                 (`cargo xtask fork save`, see fork/README.md) or discard them with \
                 `cargo xtask fork --force`."
            );
        }
        if old.as_ref().is_some_and(|s| s.series == series) && dir.join(".git").is_dir() {
            vanilla(paths)?;
            return Ok(dir);
        }
    }

    eprintln!(
        "fork: generating fork/rustls ({} {} + {} patches)",
        pin.name,
        pin.version,
        patch_files(paths)?.len()
    );
    let crate_file = fetch_crate(paths, &pin)?;
    unpack(&crate_file, &pin, &dir)?;
    init_pristine(&dir, &pin)?;
    apply_series(paths, &dir)?;
    install_fixtures(paths, &dir)?;
    usable_lock(&dir)?;
    let head = git_stdout(&dir, ["rev-parse", "HEAD"])?;
    Stamp { series, head }.write(paths)?;
    vanilla(paths)?;
    eprintln!("fork: fork/rustls is ready");
    Ok(dir)
}

/// Has cargo download the pinned crate (cargo checks it against the registry index),
/// then checks it against the pin as well, and returns the `.crate` file.
pub(crate) fn fetch_crate(paths: &Paths, pin: &Pin) -> anyhow::Result<PathBuf> {
    let (crate_file, actual) = fetch_release(paths, &pin.name, &pin.version)?;
    ensure!(
        actual == pin.checksum,
        "{} has SHA-256 {actual}, but fork/pin.toml pins {}; refusing to use it",
        crate_file.display(),
        pin.checksum
    );
    Ok(crate_file)
}

/// Has cargo download `name` at exactly `version` (cargo checks the download
/// against the checksum the registry index gives, and records that checksum
/// in the scratch project's lock file, which is checked here again): the
/// `.crate` file and its SHA-256.
pub(crate) fn fetch_release(
    paths: &Paths,
    name: &str,
    version: &str,
) -> anyhow::Result<(PathBuf, String)> {
    let scratch = paths
        .target_dir()
        .join(format!("xtask-fetch-{name}-{version}"));
    fs::create_dir_all(scratch.join("src"))?;
    fs::write(
        scratch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"xtask-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [workspace]\n\
             [dependencies]\n{name} = {{ version = \"={version}\", default-features = false }}\n",
        ),
    )?;
    fs::write(scratch.join("src").join("lib.rs"), "")?;
    cmd::output(
        cmd::cargo()
            .arg("fetch")
            .arg("--manifest-path")
            .arg(scratch.join("Cargo.toml")),
    )
    .with_context(|| format!("downloading {name} {version} through cargo"))?;

    let file_name = format!("{name}-{version}.crate");
    let cache = cargo_home()?.join("registry").join("cache");
    let mut found = None;
    for index in fs::read_dir(&cache).with_context(|| format!("listing {}", cache.display()))? {
        let candidate = index?.path().join(&file_name);
        if candidate.is_file() {
            found = Some(candidate);
            break;
        }
    }
    let crate_file = found.with_context(|| {
        format!(
            "cargo fetched, but {file_name} is not under {}",
            cache.display()
        )
    })?;

    let actual = hex(&Sha256::digest(fs::read(&crate_file)?));
    let index = locked_checksum(&scratch.join("Cargo.lock"), name, version)?;
    ensure!(
        actual == index,
        "{} has SHA-256 {actual}, but the registry index says {index}; refusing to use it",
        crate_file.display()
    );
    Ok((crate_file, actual))
}

/// One package of a `Cargo.lock`.
#[derive(Deserialize)]
pub(crate) struct Locked {
    pub(crate) name: String,
    pub(crate) version: String,
    /// The registry index's checksum of its `.crate` (none for path packages).
    pub(crate) checksum: Option<String>,
}

/// The packages a `Cargo.lock` records.
pub(crate) fn locked_packages(lock: &Path) -> anyhow::Result<Vec<Locked>> {
    #[derive(Deserialize)]
    struct Lock {
        package: Vec<Locked>,
    }
    let text = fs::read_to_string(lock).with_context(|| format!("reading {}", lock.display()))?;
    let parsed: Lock =
        toml::from_str(&text).with_context(|| format!("parsing {}", lock.display()))?;
    Ok(parsed.package)
}

/// The checksum a lock file records for `name` `version` (from the registry
/// index).
fn locked_checksum(lock: &Path, name: &str, version: &str) -> anyhow::Result<String> {
    locked_packages(lock)?
        .into_iter()
        .find(|package| package.name == name && package.version == version)
        .and_then(|package| package.checksum)
        .with_context(|| {
            format!(
                "{} records no checksum for {name} {version}",
                lock.display()
            )
        })
}

fn cargo_home() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

/// Unpacks `name-version/` from the `.crate` tarball into `dest`, replacing it.
fn unpack(crate_file: &Path, pin: &Pin, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() {
        fs::remove_dir_all(dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    fs::create_dir_all(dest)?;
    unpack_files(crate_file, &pin.name, &pin.version, dest)
}

/// Writes the files of `name-version/` in the `.crate` tarball into `dest`,
/// which exists.
pub(crate) fn unpack_files(
    crate_file: &Path,
    name: &str,
    version: &str,
    dest: &Path,
) -> anyhow::Result<()> {
    let prefix = PathBuf::from(format!("{name}-{version}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(crate_file)?));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rel = path.strip_prefix(&prefix).with_context(|| {
            format!(
                "unexpected path {} in {}",
                path.display(),
                crate_file.display()
            )
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        // `unpack_in` refuses paths that would escape `dest`.
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf)?;
        let target = dest.join(rel);
        ensure!(
            rel.components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "refusing path {} in the crate archive",
            path.display()
        );
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&target, buf)?;
    }
    Ok(())
}

fn init_pristine(dir: &Path, pin: &Pin) -> anyhow::Result<()> {
    cmd::output(git(dir).args(["init", "--quiet", "--initial-branch=fork"]))?;
    // Fixtures and build output never belong to the series.
    fs::write(
        dir.join(".git").join("info").join("exclude"),
        "/target/\n/src/testdata/\n",
    )?;
    cmd::output(git(dir).args(["add", "--all"]))?;
    cmd::output(git(dir).args([
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        &format!("{} {} as published on crates.io", pin.name, pin.version),
    ]))?;
    cmd::output(git(dir).args(["tag", PRISTINE_TAG]))?;
    // rustls's own lock file may be resolved again for its unit tests (see
    // `usable_lock`); that is no edit of the series.
    cmd::output(git(dir).args(["update-index", "--skip-worktree", "Cargo.lock"]))?;
    Ok(())
}

/// Makes the generated crate's `Cargo.lock` usable with the registry cargo
/// reaches: the published lock may name versions that registry does not
/// have (a mirror behind crates.io), and cargo does not go back on its own.
/// Then the lock is resolved again, and that is said.
pub(crate) fn usable_lock(dir: &Path) -> anyhow::Result<()> {
    let fetch = cmd::cargo()
        .current_dir(dir)
        .args(["fetch", "--locked", "--quiet"])
        .output()
        .context("running cargo fetch in fork/rustls")?;
    if fetch.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&fetch.stderr);
    let first = why
        .lines()
        .find(|line| line.starts_with("error"))
        .unwrap_or("");
    eprintln!(
        "fork: rustls's Cargo.lock cannot be used with this registry ({first}); resolving it again"
    );
    cmd::output(cmd::cargo().current_dir(dir).arg("generate-lockfile"))
        .context("resolving fork/rustls's Cargo.lock again")?;
    Ok(())
}

/// The `git am` options every application of the series uses.
pub(crate) const GIT_AM: [&str; 4] = [
    "am",
    "--quiet",
    "--keep-cr",
    "--committer-date-is-author-date",
];

/// The `git format-patch` options that write the series from commits.
pub(crate) const FORMAT_PATCH: [&str; 7] = [
    "format-patch",
    "--quiet",
    "--zero-commit",
    "--no-signature",
    "--full-index",
    "--no-numbered",
    "--abbrev=12",
];

/// Applies each patch as a commit with `git am`; a failure names the patch and passes
/// on git's account of the hunk that did not apply.
fn apply_series(paths: &Paths, dir: &Path) -> anyhow::Result<()> {
    for patch in patch_files(paths)? {
        let name = shown(&patch, &paths.root).into_owned();
        let out = git(dir)
            .args(GIT_AM)
            .arg(&patch)
            .output()
            .with_context(|| format!("running git am for {name}"))?;
        if !out.status.success() {
            let _ = git(dir).args(["am", "--abort"]).output();
            bail!(
                "{name} does not apply to the pinned rustls:\n{}{}\n\
                 Fix the patch (or regenerate the series from an edited fork/rustls with \
                 `cargo xtask fork save`).",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
    }
    Ok(())
}

/// Copies rustls's unit-test data files where its tests look for them. They are
/// rustls's files, kept in ../shared, never in this repository.
fn install_fixtures(paths: &Paths, dir: &Path) -> anyhow::Result<()> {
    let fixtures = paths.fixtures_dir();
    if !fixtures.is_dir() {
        // Only rustls's unit tests need them; `cargo xtask test` says so when it
        // skips those (see `fixtures_installed`).
        return Ok(());
    }
    let fork = paths.fork_dir();
    copy_tree(&fixtures.join("test-ca"), &fork.join("test-ca"))?;
    copy_tree(
        &fixtures.join("src").join("testdata"),
        &dir.join("src").join("testdata"),
    )?;
    copy_tree(
        &fixtures.join("fuzz").join("corpus").join("message"),
        &fork.join("fuzz").join("corpus").join("message"),
    )?;
    Ok(())
}

/// Whether rustls's unit-test fixtures are in the generated tree, so its unit
/// tests can build; `Err` says where they were looked for.
pub(crate) fn fixtures_installed(paths: &Paths, dir: &Path) -> Result<(), String> {
    if dir.join("src").join("testdata").is_dir() {
        return Ok(());
    }
    Err(format!(
        "they need rustls's test fixtures, which the published crate lacks and which \
         were not found at {} (set {FIXTURES_ENV})",
        paths.fixtures_dir().display()
    ))
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        fs::remove_dir_all(to)?;
    }
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Regenerates `fork/patches/` from the commits after `pristine` in fork/rustls.
pub(crate) fn save(paths: &Paths, new: Option<&str>, amend: bool) -> anyhow::Result<()> {
    let dir = paths.generated_crate();
    ensure!(
        dir.join(".git").is_dir(),
        "fork/rustls does not exist; run `cargo xtask fork` first"
    );
    let dirty = git_stdout(&dir, ["status", "--porcelain"])?;
    if !dirty.is_empty() {
        if let Some(subject) = new {
            cmd::output(git(&dir).args(["add", "--all"]))?;
            cmd::output(git(&dir).args(["commit", "--quiet", "--no-verify", "-m", subject]))?;
        } else if amend {
            ensure!(
                git_stdout(&dir, ["rev-parse", "HEAD"])?
                    != git_stdout(&dir, ["rev-parse", PRISTINE_TAG])?,
                "--amend needs a patch to amend; use --new SUBJECT for the first one"
            );
            cmd::output(git(&dir).args(["add", "--all"]))?;
            cmd::output(git(&dir).args([
                "commit",
                "--quiet",
                "--no-verify",
                "--amend",
                "--no-edit",
            ]))?;
        } else {
            bail!(
                "fork/rustls has uncommitted changes:\n{dirty}\n\
                 Commit them there, or pass --new \"subject\" (new patch) or --amend \
                 (fold into the last patch)."
            );
        }
    }

    let staging = paths.target_dir().join("xtask-patches");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    cmd::output(
        git(&dir)
            .args(FORMAT_PATCH)
            .arg("-o")
            .arg(&staging)
            .arg(format!("{PRISTINE_TAG}..HEAD")),
    )?;
    let count = replace_series(paths, &staging)?;
    let head = git_stdout(&dir, ["rev-parse", "HEAD"])?;
    Stamp {
        series: compute_stamp(paths)?,
        head,
    }
    .write(paths)?;
    eprintln!("fork: saved {count} patches to fork/patches/; commit them");
    Ok(())
}

/// Replaces `fork/patches/` with the patches in `staging`; how many.
pub(crate) fn replace_series(paths: &Paths, staging: &Path) -> anyhow::Result<usize> {
    let patches = paths.patches_dir();
    fs::create_dir_all(&patches)?;
    for old in patch_files(paths)? {
        fs::remove_file(old)?;
    }
    let mut count = 0;
    if staging.is_dir() {
        for entry in fs::read_dir(staging)? {
            let entry = entry?;
            fs::copy(entry.path(), patches.join(entry.file_name()))?;
            count += 1;
        }
    }
    Ok(count)
}

/// Writes the patched crate to `out` for downstream `[patch.crates-io]` use.
pub(crate) fn export(paths: &Paths, out: &Path) -> anyhow::Result<()> {
    export_to(paths, out)?;
    eprintln!(
        "fork: exported the patched rustls to {}\n\
         Use it with:\n\n[patch.crates-io]\nrustls = {{ path = \"{}\" }}",
        out.display(),
        out.display()
    );
    Ok(())
}

/// [`export`] without the instructions.
pub(crate) fn export_to(paths: &Paths, out: &Path) -> anyhow::Result<()> {
    let dir = materialize(paths, false)?;
    ensure!(
        !out.exists() || fs::read_dir(out)?.next().is_none(),
        "{} exists and is not empty; choose a new directory",
        out.display()
    );
    // `git archive` writes exactly the committed tree: no fixtures, no build output.
    let archive = cmd::output(git(&dir).args(["archive", "--format=tar", "HEAD"]))?;
    fs::create_dir_all(out)?;
    tar::Archive::new(archive.stdout.as_slice())
        .unpack(out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// The pristine crate under another package name, so one binary can link both.
pub(crate) fn vanilla(paths: &Paths) -> anyhow::Result<()> {
    let pin = read_pin(paths)?;
    let dir = paths.vanilla_crate();
    let marker = dir.join(".pin");
    if fs::read_to_string(&marker).is_ok_and(|m| m == pin.checksum) {
        return Ok(());
    }
    let crate_file = fetch_crate(paths, &pin)?;
    unpack(&crate_file, &pin, &dir)?;
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)?;
    let renamed = text.replacen(
        &format!("name = \"{}\"", pin.name),
        &format!("name = \"{}-vanilla\"", pin.name),
        1,
    );
    ensure!(
        renamed != text,
        "could not rename the package in {}",
        manifest.display()
    );
    fs::write(&manifest, renamed)?;
    usable_lock(&dir)?;
    fs::write(marker, &pin.checksum)?;
    eprintln!(
        "fork: fork/vanilla holds pristine {} {} as `{}-vanilla`",
        pin.name, pin.version, pin.name
    );
    Ok(())
}
