//! CPU time of processes, for the load generators' rates per CPU second.

use anyhow::Context;

/// Nanoseconds the processes `pids` have run on a CPU so far, all their
/// threads together, exited ones included: `utime` + `stime` of
/// `/proc/PID/stat`, in the kernel's user-visible ticks (100 a second on
/// Linux; `sysconf(_SC_CLK_TCK)`), so a run of seconds is counted to about 1%.
///
/// # Errors
///
/// A process's `stat` cannot be read or parsed.
pub fn cpu_nanos(pids: &[u32]) -> anyhow::Result<u64> {
    const NANOS_PER_TICK: u64 = 10_000_000;
    let mut total = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("--server-pid {pid}"))?;
        // The command name (field 2) may hold spaces; the fields after it
        // start with the state (field 3), so utime (14) and stime (15) are
        // the 12th and 13th.
        let fields = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default();
        for field in [11, 12] {
            let ticks: u64 = fields
                .get(field)
                .context("/proc/PID/stat has no utime/stime")?
                .parse()
                .context("/proc/PID/stat")?;
            total += ticks * NANOS_PER_TICK;
        }
    }
    Ok(total)
}
