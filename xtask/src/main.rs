//! The project tool, run as `cargo xtask <command>` from anywhere in the repository.
//!
//! It exists so that a fresh clone needs nothing but cargo: the rustls fork is not in
//! the repository (only its patch series is), and this tool materializes it before
//! anything that depends on rustls is built.

mod cmd;
mod dist;
mod downstream;
mod fork;
mod fuzz;
mod installed_docs;
mod paths;
mod rebase;
mod summary;
mod test;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Project tool for the rustls TLS Flags fork"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Materialize the patched rustls in fork/rustls (a no-op when it is current).
    Fork {
        #[command(subcommand)]
        action: Option<ForkAction>,
        /// Rebuild the generated tree even if it is current or has unsaved edits.
        #[arg(long)]
        force: bool,
    },
    /// Make sure the fork is current, then run the whole test suite.
    Test {
        /// Skip rustls's own unit tests on the patched tree (they take a few minutes).
        #[arg(long)]
        skip_fork_unit_tests: bool,
    },
    /// Run the demo.
    Demo,
    /// Build a scratch project outside the workspace on the exported fork, as the
    /// README tells users to, offline, and run one flagged handshake; check that
    /// the same project without the patch fails with a message naming the fix.
    Downstream,
    /// Build the Debian package of rca-proxy, rca-connect and rca-probe in
    /// target/dist/: release binaries, man pages, shell completions, the
    /// systemd unit and the example configuration (installs cargo-deb if
    /// it is missing).
    Dist,
    /// Run every fuzz target for a bounded time or number of executions
    /// (needs `cargo install cargo-fuzz`).
    Fuzz {
        /// Seconds per target, from a random seed.
        #[arg(long, default_value_t = 60, conflicts_with = "runs")]
        seconds: u32,
        /// Executions per target instead, from `--seed`: the same inputs every run.
        #[arg(long)]
        runs: Option<u64>,
        /// The libFuzzer seed for `--runs`.
        #[arg(long, default_value_t = 1, requires = "runs")]
        seed: u32,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// Record the fuzz targets' seeds (fuzz/corpus/) again from real rustls
    /// peers, after a change that makes them stale; `cargo test` replays them.
    FuzzSeeds {
        /// First replace the committed test PKI (fuzz/pki/) with a new one.
        #[arg(long)]
        new_pki: bool,
    },
}

#[derive(Subcommand)]
enum ForkAction {
    /// Turn the commits (and, with --new/--amend, the uncommitted edits) in fork/rustls
    /// back into fork/patches/.
    Save {
        /// Commit uncommitted edits as a new patch with this subject first.
        #[arg(long, conflicts_with = "amend")]
        new: Option<String>,
        /// Fold uncommitted edits into the last patch first.
        #[arg(long)]
        amend: bool,
    },
    /// Write the patched crate (without git metadata or test fixtures) to DIR, for a
    /// downstream `[patch.crates-io] rustls = { path = "DIR" }`.
    Export { dir: PathBuf },
    /// Move the series to another release of rustls (three-way merge per patch):
    /// on success rewrite fork/pin.toml, fork/patches/ and the workspace's
    /// `rustls = "=VERSION"` requirements, regenerate fork/rustls and run rustls's
    /// unit tests on it; at the first conflict, stop and name the patch and the hunk.
    Rebase {
        /// The release, e.g. 0.23.48 (`cargo xtask fork outdated` names the newest).
        version: String,
        /// Rebase in target/xtask-rebase only: report, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the newest release of the pinned rustls's MAJOR.MINOR series, and
    /// whether the fork is on it.
    Outdated,
    /// Materialize the pristine crate, renamed `rustls-vanilla`, in fork/vanilla, so
    /// benchmarks can compare the fork with unpatched rustls in the same run.
    /// (`fork` does this too.)
    Vanilla,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let paths = paths::Paths::discover()?;
    match cli.command {
        Command::Fork { action, force } => match action {
            None => fork::materialize(&paths, force).map(|_| ()),
            Some(ForkAction::Save { new, amend }) => fork::save(&paths, new.as_deref(), amend),
            Some(ForkAction::Export { dir }) => fork::export(&paths, &dir),
            Some(ForkAction::Vanilla) => fork::vanilla(&paths),
            Some(ForkAction::Rebase { version, dry_run }) => {
                rebase::rebase(&paths, &version, dry_run, test::fork_unit_tests)
            }
            Some(ForkAction::Outdated) => rebase::outdated(&paths),
        },
        Command::Test {
            skip_fork_unit_tests,
        } => test::run(&paths, skip_fork_unit_tests),
        Command::Demo => test::demo(&paths),
        Command::Downstream => downstream::run(&paths),
        Command::Dist => dist::run(&paths),
        Command::Fuzz {
            seconds,
            runs,
            seed,
            target,
        } => {
            fork::materialize(&paths, false)?;
            let budget = match runs {
                Some(runs) => fuzz::Budget::Runs { runs, seed },
                None => fuzz::Budget::Seconds(seconds),
            };
            fuzz::run(&paths, &budget, target.as_deref())
        }
        Command::FuzzSeeds { new_pki } => {
            fork::materialize(&paths, false)?;
            fuzz::record_seeds(&paths, new_pki)
        }
    }
}
