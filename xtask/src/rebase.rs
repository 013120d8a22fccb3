//! Following rustls: `cargo xtask fork rebase VERSION` moves the patch series
//! to another release, `cargo xtask fork outdated` says whether there is a newer
//! 0.23.x.
//!
//! The rebase runs in a scratch repository: the pinned release as one commit,
//! the new release as the next, then each patch applied with `git am -3`, so
//! a hunk whose context moved merges the way git merges, and one that
//! conflicts stops the run with the patch and the hunk named. On success the
//! series is written again from the new commits, the pin and the workspace's
//! `rustls = "=VERSION"` requirements follow, the fork is generated anew and
//! rustls's unit tests run on it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};

use crate::cmd::{self, git, git_stdout};
use crate::fork::{self, Pin};
use crate::paths::{shown, Paths};

/// Tags in the scratch repository.
const OLD: &str = "old-release";
const NEW: &str = "new-release";

/// The workspace manifests that require the pinned rustls exactly.
const MANIFESTS: [&str; 7] = [
    "rustls-req-client-auth/Cargo.toml",
    "rca-tools/Cargo.toml",
    "tests/Cargo.toml",
    "tests/pump/Cargo.toml",
    "benches/Cargo.toml",
    "fuzz/Cargo.toml",
    "fuzz/harness/Cargo.toml",
];

/// Why a rebase stopped at a patch.
#[derive(Debug)]
pub(crate) struct Conflict {
    /// The patch's file name.
    pub(crate) patch: String,
    /// The files with conflicts, and their conflicting hunks as `git diff`
    /// shows them (or git's own words when nothing was left to merge).
    pub(crate) detail: String,
}

/// `cargo xtask fork rebase VERSION`: with `dry_run`, everything but writing
/// the result; with `run_tests`, rustls's unit tests on the rebased fork.
pub(crate) fn rebase(
    paths: &Paths,
    version: &str,
    dry_run: bool,
    unit_tests: impl FnOnce(&Paths) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let pin = fork::read_pin(paths)?;
    let old_crate = fork::fetch_crate(paths, &pin)?;
    let (new_crate, checksum) = fork::fetch_release(paths, &pin.name, version)?;
    eprintln!(
        "rebase: {} {} -> {version} (SHA-256 {checksum}, as the registry index gives it)",
        pin.name, pin.version
    );
    let work = paths.target_dir().join("xtask-rebase");
    let patches = fork::patch_files(paths)?;
    let staging = work.join("patches");
    let releases = (
        (old_crate.as_path(), pin.version.as_str()),
        (new_crate.as_path(), version),
    );
    if let Err(conflict) = rebase_in(&work, &pin.name, releases, &patches, &staging)? {
        bail!(
            "{} does not apply to {} {version}, even with a three-way merge:\n{}\n\
             Nothing was changed. Resolve it by hand: `cargo xtask fork`, edit \
             fork/rustls, `cargo xtask fork save`, then rebase again.",
            conflict.patch,
            pin.name,
            conflict.detail
        );
    }
    let changed = changed_patches(&patches, &staging)?;
    eprintln!(
        "rebase: all {} patches apply to {version}; {} of them change (context, offsets, index lines)",
        patches.len(),
        changed.len()
    );
    for name in &changed {
        eprintln!("  {name}");
    }
    if dry_run {
        eprintln!(
            "rebase: dry run, nothing written; the rebased series is in {}",
            shown(&staging, &paths.root)
        );
        return Ok(());
    }
    fork::replace_series(paths, &staging)?;
    write_pin(paths, &pin, version, &checksum)?;
    for manifest in MANIFESTS {
        require_version(&paths.root.join(manifest), &pin, version)?;
    }
    fork::materialize(paths, true)?;
    eprintln!(
        "rebase: fork/pin.toml, fork/patches/ and the workspace's requirements are on {version}; \
         running rustls's unit tests on the rebased fork"
    );
    unit_tests(paths)?;
    eprintln!(
        "rebase: done. Next (fork/README.md, \"Following rustls\"): cargo update -p rustls, \
         cargo xtask test, cargo xtask downstream, the benches, CHANGELOG.md"
    );
    Ok(())
}

/// Rebases `patches` from the release `old` to the release `new` (each a
/// `.crate` file and its version) in a scratch repository at `work`, and
/// writes the rebased series to `staging`: `Ok(Err(..))` names the first
/// patch that does not apply.
pub(crate) fn rebase_in(
    work: &Path,
    name: &str,
    (old, new): ((&Path, &str), (&Path, &str)),
    patches: &[PathBuf],
    staging: &Path,
) -> anyhow::Result<Result<(), Conflict>> {
    if work.exists() {
        fs::remove_dir_all(work).with_context(|| format!("removing {}", work.display()))?;
    }
    let repo = work.join(name);
    fs::create_dir_all(&repo)?;
    cmd::output(git(&repo).args(["init", "--quiet", "--initial-branch=rebase"]))?;
    commit_release(&repo, name, old, OLD)?;
    // The new release replaces every file of the old one.
    for entry in fs::read_dir(&repo)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|file| file == ".git") {
            continue;
        }
        if path.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    commit_release(&repo, name, new, NEW)?;
    for patch in patches {
        let patch_name = patch
            .file_name()
            .map(|file| file.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = git(&repo)
            .args(fork::GIT_AM)
            .arg("--3way")
            .arg(patch)
            .output()
            .with_context(|| format!("running git am for {patch_name}"))?;
        if !out.status.success() {
            let detail = conflict_detail(&repo, &out)?;
            let _ = git(&repo).args(["am", "--abort"]).output();
            return Ok(Err(Conflict {
                patch: patch_name,
                detail,
            }));
        }
    }
    if staging.exists() {
        fs::remove_dir_all(staging)?;
    }
    cmd::output(
        git(&repo)
            .args(fork::FORMAT_PATCH)
            .arg("-o")
            .arg(staging)
            .arg(format!("{NEW}..HEAD")),
    )?;
    Ok(Ok(()))
}

/// Unpacks a release into `repo` and commits it, tagged `tag`.
fn commit_release(
    repo: &Path,
    name: &str,
    (file, version): (&Path, &str),
    tag: &str,
) -> anyhow::Result<()> {
    fork::unpack_files(file, name, version, repo)?;
    cmd::output(git(repo).args(["add", "--all"]))?;
    cmd::output(git(repo).args([
        "commit",
        "--quiet",
        "--no-verify",
        "--allow-empty",
        "-m",
        &format!("{name} {version} as published on crates.io"),
    ]))?;
    cmd::output(git(repo).args(["tag", tag]))?;
    Ok(())
}

/// The conflicted files and their hunks, or git's account when there are
/// none (a patch git could not even merge).
fn conflict_detail(repo: &Path, am: &std::process::Output) -> anyhow::Result<String> {
    let files = git_stdout(repo, ["diff", "--name-only", "--diff-filter=U"])?;
    if files.is_empty() {
        return Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&am.stdout),
            String::from_utf8_lossy(&am.stderr).trim_end()
        ));
    }
    let mut detail = String::new();
    for file in files.lines() {
        detail.push_str(&format!("conflict in {file}:\n"));
        let diff = git_stdout(repo, ["diff", "--", file])?;
        // The hunks with conflict markers only.
        for hunk in diff.split("\n@@").skip(1) {
            if hunk.contains("<<<<<<<") {
                detail.push_str("@@");
                detail.push_str(hunk);
                detail.push('\n');
            }
        }
    }
    Ok(detail)
}

/// The patches whose text the rebase changed.
fn changed_patches(old: &[PathBuf], staging: &Path) -> anyhow::Result<Vec<String>> {
    let mut changed = Vec::new();
    for patch in old {
        let Some(file) = patch.file_name() else {
            continue;
        };
        let rebased = staging.join(file);
        if fs::read(patch)? != fs::read(&rebased).unwrap_or_default() {
            changed.push(file.to_string_lossy().into_owned());
        }
    }
    Ok(changed)
}

/// Rewrites the version and checksum lines of `fork/pin.toml`, keeping its
/// comments.
fn write_pin(paths: &Paths, pin: &Pin, version: &str, checksum: &str) -> anyhow::Result<()> {
    let file = paths.pin_file();
    let text = fs::read_to_string(&file)?;
    let rewritten = text
        .replacen(
            &format!("version = \"{}\"", pin.version),
            &format!("version = \"{version}\""),
            1,
        )
        .replacen(
            &format!("checksum = \"{}\"", pin.checksum),
            &format!("checksum = \"{checksum}\""),
            1,
        );
    ensure!(
        pin.version == version || rewritten != text,
        "could not rewrite {}",
        file.display()
    );
    fs::write(&file, rewritten)?;
    Ok(())
}

/// Rewrites `name = { version = "=OLD", ...` in `manifest` to the new version.
fn require_version(manifest: &Path, pin: &Pin, version: &str) -> anyhow::Result<()> {
    let text =
        fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let old = format!("{} = {{ version = \"={}\"", pin.name, pin.version);
    ensure!(
        text.contains(&old),
        "{} does not require {} =={} as `{old}`",
        manifest.display(),
        pin.name,
        pin.version
    );
    fs::write(
        manifest,
        text.replace(&old, &format!("{} = {{ version = \"={version}\"", pin.name)),
    )?;
    Ok(())
}

/// `cargo xtask fork outdated`: the newest release of the pinned crate with
/// the pin's major and minor version, from the registry through cargo.
pub(crate) fn outdated(paths: &Paths) -> anyhow::Result<()> {
    let pin = fork::read_pin(paths)?;
    let newest = newest_patch_release(paths, &pin)?;
    if newest == pin.version {
        eprintln!(
            "outdated: the fork is on {} {}, the newest {}.x",
            pin.name,
            pin.version,
            series(&pin.version)
        );
    } else {
        eprintln!(
            "outdated: {} {newest} is out; the fork is on {}. Rebase with \
             `cargo xtask fork rebase {newest}` (fork/README.md, \"Following rustls\").",
            pin.name, pin.version
        );
    }
    println!("{newest}");
    Ok(())
}

/// `0.23` of `0.23.46`.
fn series(version: &str) -> &str {
    version
        .rsplit_once('.')
        .map_or(version, |(series, _)| series)
}

/// What cargo resolves `>=pinned, <next minor` to now (pre-releases
/// excluded, as cargo excludes them).
fn newest_patch_release(paths: &Paths, pin: &Pin) -> anyhow::Result<String> {
    let (major, minor) = series(&pin.version)
        .split_once('.')
        .context("the pin's version is not MAJOR.MINOR.PATCH")?;
    let next: u64 = minor.parse::<u64>().context("the pin's minor version")? + 1;
    let scratch = paths.target_dir().join("xtask-outdated");
    fs::create_dir_all(scratch.join("src"))?;
    fs::write(
        scratch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"xtask-outdated\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [workspace]\n\
             [dependencies]\n{} = {{ version = \">={}, <{major}.{next}.0\", default-features = false }}\n",
            pin.name, pin.version
        ),
    )?;
    fs::write(scratch.join("src").join("lib.rs"), "")?;
    let _ = fs::remove_file(scratch.join("Cargo.lock"));
    cmd::output(
        cmd::cargo()
            .arg("generate-lockfile")
            .arg("--manifest-path")
            .arg(scratch.join("Cargo.toml")),
    )
    .context("asking the registry for the newest release (no network?)")?;
    fork::locked_packages(&scratch.join("Cargo.lock"))?
        .into_iter()
        .find(|package| package.name == pin.name)
        .map(|package| package.version)
        .context("the lock file has no rustls")
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{rebase_in, series};

    /// A `.crate` file holding `name-version/` with `files`.
    fn release(dir: &Path, name: &str, version: &str, files: &[(&str, &str)]) -> PathBuf {
        let path = dir.join(format!("{name}-{version}.crate"));
        let file = std::fs::File::create(&path).expect("crate file");
        let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        for (file, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(u64::try_from(text.len()).expect("size"));
            header.set_mode(0o644);
            header.set_cksum();
            archive
                .append_data(
                    &mut header,
                    format!("{name}-{version}/{file}"),
                    text.as_bytes(),
                )
                .expect("append");
        }
        archive.into_inner().expect("tar").finish().expect("gzip");
        path
    }

    /// A patch series made the way `fork save` makes it: `edit` on top of
    /// `base`.
    fn series_on(dir: &Path, base: &[(&str, &str)], edit: &[(&str, &str)]) -> Vec<PathBuf> {
        let repo = dir.join("author");
        std::fs::create_dir_all(&repo).expect("repo");
        let git = || crate::cmd::git(&repo);
        crate::cmd::output(git().args(["init", "--quiet"])).expect("init");
        for (file, text) in base {
            std::fs::write(repo.join(file), text).expect("write");
        }
        crate::cmd::output(git().args(["add", "--all"])).expect("add");
        crate::cmd::output(git().args(["commit", "--quiet", "-m", "base"])).expect("commit");
        for (file, text) in edit {
            std::fs::write(repo.join(file), text).expect("write");
        }
        crate::cmd::output(git().args(["commit", "--quiet", "--all", "-m", "Teach it hooks"]))
            .expect("commit");
        let out = dir.join("series");
        crate::cmd::output(
            git()
                .args(crate::fork::FORMAT_PATCH)
                .arg("-o")
                .arg(&out)
                .arg("HEAD~1..HEAD"),
        )
        .expect("format-patch");
        let mut patches: Vec<PathBuf> = std::fs::read_dir(&out)
            .expect("series")
            .map(|entry| entry.expect("entry").path())
            .collect();
        patches.sort();
        patches
    }

    const OLD: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n";

    #[test]
    fn a_patch_whose_context_moved_is_merged() {
        let dir = tempdir();
        let old = release(dir.path(), "lib", "1.0.0", &[("a.rs", OLD)]);
        // Upstream added lines at the top: the patch's hunk moves.
        let new = release(
            dir.path(),
            "lib",
            "1.0.1",
            &[("a.rs", &format!("zero\nzero\n{OLD}"))],
        );
        let patches = series_on(
            dir.path(),
            &[("a.rs", OLD)],
            &[("a.rs", &OLD.replace("four", "FOUR"))],
        );
        let staging = dir.path().join("staging");
        let done = rebase_in(
            &dir.path().join("work"),
            "lib",
            ((&old, "1.0.0"), (&new, "1.0.1")),
            &patches,
            &staging,
        )
        .expect("rebase runs");
        assert!(done.is_ok(), "{done:?}");
        let rebased = std::fs::read_to_string(staging.join(patches[0].file_name().expect("name")))
            .expect("the rebased patch");
        assert!(
            rebased.contains("+FOUR") && rebased.contains("@@ -3,"),
            "{rebased}"
        );
    }

    #[test]
    fn a_conflict_names_the_patch_and_the_hunk() {
        let dir = tempdir();
        let old = release(dir.path(), "lib", "1.0.0", &[("a.rs", OLD)]);
        let new = release(
            dir.path(),
            "lib",
            "1.0.1",
            &[("a.rs", &OLD.replace("four", "4"))],
        );
        let patches = series_on(
            dir.path(),
            &[("a.rs", OLD)],
            &[("a.rs", &OLD.replace("four", "FOUR"))],
        );
        let conflict = rebase_in(
            &dir.path().join("work"),
            "lib",
            ((&old, "1.0.0"), (&new, "1.0.1")),
            &patches,
            &dir.path().join("staging"),
        )
        .expect("rebase runs")
        .expect_err("a conflict");
        assert_eq!(conflict.patch, "0001-Teach-it-hooks.patch");
        assert!(
            conflict.detail.contains("conflict in a.rs"),
            "{}",
            conflict.detail
        );
        assert!(
            conflict.detail.contains("<<<<<<<") && conflict.detail.contains("FOUR"),
            "{}",
            conflict.detail
        );
    }

    /// The real series, "rebased" onto the release it is pinned to: every
    /// patch applies and none changes (the dry run `cargo xtask fork rebase
    /// <pinned version> --dry-run` makes).
    #[test]
    fn the_series_rebases_onto_its_own_release_unchanged() {
        let paths = crate::paths::Paths::discover().expect("paths");
        let pin = crate::fork::read_pin(&paths).expect("pin");
        let Ok(crate_file) = crate::fork::fetch_crate(&paths, &pin) else {
            eprintln!("the pinned crate cannot be fetched (offline?); not run");
            return;
        };
        let patches = crate::fork::patch_files(&paths).expect("patches");
        let dir = tempdir();
        let staging = dir.path().join("staging");
        let done = rebase_in(
            &dir.path().join("work"),
            &pin.name,
            ((&crate_file, &pin.version), (&crate_file, &pin.version)),
            &patches,
            &staging,
        )
        .expect("rebase runs");
        assert!(done.is_ok(), "{done:?}");
        assert!(super::changed_patches(&patches, &staging)
            .expect("compared")
            .is_empty());
    }

    #[test]
    fn the_series_of_a_version() {
        assert_eq!(series("0.23.46"), "0.23");
    }

    fn tempdir() -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "xtask-rebase-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    struct TempDir(PathBuf);

    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
