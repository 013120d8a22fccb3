//! `cargo xtask fuzz`: a bounded run of every fuzz target.
//!
//! Each target runs with a scratch corpus first and its committed seeds second,
//! so libFuzzer's new inputs never land in the repository.

use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context};

use crate::cmd;
use crate::paths::Paths;

/// How long each target runs.
pub(crate) enum Budget {
    /// For this many seconds, from a random seed.
    Seconds(u32),
    /// For this many executions from this seed: the same inputs every time,
    /// so a green run stays green for the same code (what CI uses).
    Runs { runs: u64, seed: u32 },
}

pub(crate) fn run(paths: &Paths, budget: &Budget, only: Option<&str>) -> anyhow::Result<()> {
    let fuzz_dir = paths.root.join("fuzz");
    let mut targets = Vec::new();
    for entry in fs::read_dir(fuzz_dir.join("fuzz_targets"))? {
        let path = entry?.path();
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            if path.extension().is_some_and(|e| e == "rs") && only.is_none_or(|o| o == stem) {
                targets.push(stem.to_owned());
            }
        }
    }
    targets.sort();
    ensure!(!targets.is_empty(), "no fuzz target matches");

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    for target in targets {
        let scratch = paths
            .target_dir()
            .join("fuzz-scratch")
            .join(format!("{target}-{stamp}"));
        fs::create_dir_all(&scratch)?;
        let seeds = fuzz_dir.join("corpus").join(&target);
        let limits = match budget {
            Budget::Seconds(seconds) => vec![format!("-max_total_time={seconds}")],
            Budget::Runs { runs, seed } => vec![format!("-runs={runs}"), format!("-seed={seed}")],
        };
        eprintln!("\n==> fuzzing {target} ({})", limits.join(" "));
        cmd::run(
            cmd::cargo()
                .current_dir(&fuzz_dir)
                // libFuzzer's flags are nightly-only; allow them here and nowhere else.
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["fuzz", "run", "--sanitizer", "none", &target])
                .arg(&scratch)
                .arg(&seeds)
                .arg("--")
                .args(&limits)
                .arg("-print_final_stats=1"),
        )
        .with_context(|| format!("fuzz target {target} failed; see fuzz/artifacts/{target}/"))?;
    }
    Ok(())
}

/// Records the seeds again with `examples/record_fuzz_seeds.rs` of the hook
/// crate (it needs the workspace's patched rustls, so it is not part of this
/// tool).
pub(crate) fn record_seeds(paths: &Paths, new_pki: bool) -> anyhow::Result<()> {
    let mut cmd = cmd::cargo();
    cmd.current_dir(&paths.root).args([
        "run",
        "--quiet",
        "-p",
        "rustls-req-client-auth",
        "--example",
        "record_fuzz_seeds",
    ]);
    if new_pki {
        cmd.args(["--", "--new-pki"]);
    }
    cmd::run(&mut cmd)
}
