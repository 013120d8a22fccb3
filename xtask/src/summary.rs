//! Adds up libtest's `test result:` lines across several cargo runs, so the suite ends
//! with one closing line that counts everything.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::Context;

#[derive(Default)]
pub(crate) struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
    failed_runs: Vec<String>,
}

impl Tally {
    /// Runs `cmd`, echoing its stdout as it comes and counting its results. A run that
    /// fails without a result line (a build error) is recorded as failed too.
    pub(crate) fn run(&mut self, label: &str, cmd: &mut Command) -> anyhow::Result<()> {
        eprintln!("\n==> {label}");
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {label}"))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            self.count(&line);
        }
        let status = child.wait()?;
        if !status.success() {
            self.failed_runs.push(format!("{label} ({status})"));
        }
        Ok(())
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
        let line = format!(
            "summary: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        );
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
