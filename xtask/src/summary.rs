//! Adds up libtest's `test result:` lines across several cargo runs, so the suite ends
//! with one closing line that counts everything: a run that did not build counts as a
//! failure, and a run left out says why.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::Context;

#[derive(Default)]
pub(crate) struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Runs that exited with an error, and whether they reported any failed test.
    failed_runs: Vec<String>,
    /// Runs left out, with the reason.
    skipped_runs: Vec<String>,
}

impl Tally {
    /// Runs `cmd`, echoing its stdout as it comes and counting its results. A run that
    /// fails without reporting a failed test (a build error, a crash) counts as one
    /// failed test, so the closing line never reads "0 failed" for a broken suite.
    pub(crate) fn run(&mut self, label: &str, cmd: &mut Command) -> anyhow::Result<()> {
        eprintln!("\n==> {label}");
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {label}"))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let failed_before = self.failed;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            self.count(&line);
        }
        let status = child.wait()?;
        if !status.success() {
            if self.failed == failed_before {
                self.failed += 1;
                self.failed_runs.push(format!(
                    "{label} ({status}, no failed test reported: it did not build or crashed)"
                ));
            } else {
                self.failed_runs.push(format!("{label} ({status})"));
            }
        }
        Ok(())
    }

    /// Records that the run `label` was left out, and why.
    pub(crate) fn skip(&mut self, label: &str, reason: &str) {
        eprintln!("\n==> {label}: skipped, {reason}");
        self.skipped_runs.push(format!("{label}: {reason}"));
    }

    fn count(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }

    /// Prints the closing line (and writes it to `record`, so CI can repeat it
    /// last) and fails if anything failed.
    pub(crate) fn finish(self, record: &std::path::Path) -> anyhow::Result<()> {
        for run in &self.failed_runs {
            println!("failed run: {run}");
        }
        for run in &self.skipped_runs {
            println!("skipped run: {run}");
        }
        let mut line = format!(
            "summary: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        );
        for run in &self.skipped_runs {
            line.push_str("; not run: ");
            line.push_str(run);
        }
        println!("{line}");
        if let Some(dir) = record.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(record, format!("{line}\n"))?;
        if self.failed > 0 || !self.failed_runs.is_empty() {
            anyhow::bail!("the test suite failed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn counts_result_lines_across_runs() {
        let mut tally = Tally::default();
        tally
            .run(
                "a",
                &mut shell("echo 'test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured'"),
            )
            .expect("run");
        tally
            .run(
                "b",
                &mut shell("echo 'test result: ok. 2 passed; 0 failed; 0 ignored'"),
            )
            .expect("run");
        assert_eq!((tally.passed, tally.failed, tally.ignored), (5, 0, 1));
        assert!(tally.failed_runs.is_empty());
    }

    #[test]
    fn a_run_that_does_not_build_counts_as_failed() {
        let mut tally = Tally::default();
        tally
            .run(
                "ok",
                &mut shell("echo 'test result: ok. 4 passed; 0 failed; 0 ignored'"),
            )
            .expect("run");
        tally
            .run(
                "broken",
                &mut shell("echo 'error[E0432]: unresolved import' >&2; exit 101"),
            )
            .expect("run");
        assert_eq!((tally.passed, tally.failed), (4, 1));
        assert_eq!(tally.failed_runs.len(), 1);
        assert!(tally.failed_runs[0].contains("did not build"));
    }

    #[test]
    fn failed_tests_are_not_counted_twice() {
        let mut tally = Tally::default();
        tally
            .run(
                "red",
                &mut shell("echo 'test result: FAILED. 1 passed; 2 failed; 0 ignored'; exit 101"),
            )
            .expect("run");
        assert_eq!(tally.failed, 2);
    }

    #[test]
    fn skipped_runs_are_named_in_the_summary() {
        let dir = std::env::temp_dir().join(format!("xtask-summary-{}", std::process::id()));
        let record = dir.join("summary.txt");
        let mut tally = Tally::default();
        tally
            .run(
                "ok",
                &mut shell("echo 'test result: ok. 1 passed; 0 failed; 0 ignored'"),
            )
            .expect("run");
        tally.skip("unit tests", "no fixtures");
        tally.finish(&record).expect("nothing failed");
        let line = std::fs::read_to_string(&record).expect("record");
        assert_eq!(
            line,
            "summary: 1 passed, 0 failed, 0 skipped; not run: unit tests: no fixtures\n"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
