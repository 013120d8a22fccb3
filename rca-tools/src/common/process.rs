//! What every long-running tool does the same way: log lines on standard
//! error (timestamped, the level from `RUST_LOG`), SIGHUP as the signal to
//! read its files again, and listening sockets with a chosen backlog.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;

/// Logs to standard error, at `default_level` unless `RUST_LOG` says
/// otherwise; each line carries an RFC 3339 timestamp, or, when standard
/// error is the journal's stream, the line's syslog priority instead.
///
/// rustls's own records are kept to errors by default: its warnings are
/// about what a peer sent (an illegal SNI, an unexpected message), so any
/// client could write them as fast as it can connect, unbounded, and
/// journald's rate limit would then drop the lines that matter. What
/// became of such a handshake is in the tools' own lines, which are
/// bounded. This holds under any `RUST_LOG` that does not name rustls
/// (`RUST_LOG=debug` too); `RUST_LOG=info,rustls::=warn` brings them back.
pub fn init_logging(default_level: &str) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level));
    let chosen = std::env::var("RUST_LOG").unwrap_or_default();
    if !names_rustls(&chosen) {
        // Added to what `RUST_LOG` (or the default) said.
        builder.parse_filters(PEER_DRIVEN_LOGS);
    }
    if stderr_is_the_journal() {
        // journald reads a `<N>` prefix as the line's priority (so
        // `journalctl -p err` finds errors) and stamps the time itself.
        builder.format(|buf, record| {
            let priority = match record.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(
                buf,
                "<{priority}>{} {}: {}",
                record.level(),
                record.target(),
                OneLine(record.args())
            )
        });
    } else {
        // env_logger's own layout (the level coloured on a terminal), with
        // milliseconds, one line a record.
        builder.format(|buf, record| {
            let style = buf.default_level_style(record.level());
            writeln!(
                buf,
                "[{} {style}{:<5}{style:#} {}] {}",
                buf.timestamp_millis(),
                record.level(),
                record.target(),
                OneLine(record.args())
            )
        });
    }
    builder.init();
}

/// A message written on one line, each line break (`\n`, `\r\n` or `\r`)
/// as ` / `, those at its end left out: a record of several lines (a TOML
/// parse error's picture of where it is) became several lines in a log, of
/// which only the first had the time, and in the journal the rest lost the
/// priority, so `journalctl -p err` showed an error without its cause
/// (found by an outside trial).
struct OneLine<'a>(&'a std::fmt::Arguments<'a>);

impl std::fmt::Display for OneLine<'_> {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self.0.as_str() {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => std::borrow::Cow::Owned(self.0.to_string()),
        };
        let text = text.trim_end_matches(['\n', '\r']);
        for (index, line) in text.split('\n').enumerate() {
            if index > 0 {
                out.write_str(" / ")?;
            }
            let line = line.strip_suffix('\r').unwrap_or(line);
            for (index, part) in line.split('\r').enumerate() {
                if index > 0 {
                    out.write_str(" / ")?;
                }
                out.write_str(part)?;
            }
        }
        Ok(())
    }
}

/// The default levels of the libraries whose warnings a peer drives.
/// `env_logger` matches a directive as a prefix of the record's target, so
/// `rustls` would also take in `rustls_req_client_auth`'s refusal lines;
/// rustls's targets are its module paths, all under `rustls::`.
const PEER_DRIVEN_LOGS: &str = "rustls::=error";

/// Whether the `RUST_LOG` directives `filter` name rustls's own records
/// (`rustls`, `rustls::...`), so its choice stands.
fn names_rustls(filter: &str) -> bool {
    filter
        .split('/')
        .next()
        .unwrap_or_default()
        .split(',')
        .filter_map(|directive| directive.split('=').next())
        .map(str::trim)
        .any(|name| name == "rustls" || name.starts_with("rustls::"))
}

/// Whether standard error is a stream to the journal: systemd sets
/// `JOURNAL_STREAM` to that stream's device and inode (`DEV:INO`) for a
/// service whose output goes there; an inherited variable with a standard
/// error sent elsewhere does not match.
fn stderr_is_the_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((device, inode)) = stream.split_once(':') else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    device.parse::<u64>() == Ok(stderr.dev()) && inode.parse::<u64>() == Ok(stderr.ino())
}

/// The SIGHUP handler, installed now: from here on a SIGHUP asks for a
/// reload instead of ending the process (its default action). Install it
/// before the listeners open, so a reload sent as soon as the port answers
/// (`systemctl reload` right after start) does not kill the process; a
/// handler installed later by a spawned task left that window open. `None`,
/// said once, when it cannot be installed.
#[must_use]
pub fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup())
        .inspect_err(|error| log::warn!("cannot install the SIGHUP handler ({error}); no reload"))
        .ok()
}

/// SIGUSR1, which asks to reopen log files (nginx's signal for it, which
/// logrotate's recipes send); `None`, with a warning, if the handler cannot
/// be installed.
pub fn reopen_requests() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::user_defined1())
        .inspect_err(|error| {
            log::warn!("cannot install the SIGUSR1 handler ({error}); log files are reopened on SIGHUP only");
        })
        .ok()
}

/// Calls `act` on every signal that `signals` ([`hangups`],
/// [`reopen_requests`]) receives, for as long as the process runs.
pub async fn on_each_signal<F, R>(signals: Option<tokio::signal::unix::Signal>, mut act: F)
where
    F: FnMut() -> R,
    R: Future<Output = ()>,
{
    let Some(mut signals) = signals else {
        return;
    };
    while signals.recv().await.is_some() {
        act().await;
    }
}

/// Tells systemd (a `Type=notify` unit) that the service is ready: call it
/// once every port is open, with nothing left that could fail the start.
/// Without `NOTIFY_SOCKET` (not under systemd) nothing is sent.
pub fn notify_ready() {
    if let Err(error) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        log::warn!("cannot tell systemd the service is ready (READY=1): {error}");
    }
}

/// Tells systemd the service is stopping, so `systemctl status` says so
/// while requests drain.
pub fn notify_stopping() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
}

/// The process's limit on open files (its soft `RLIMIT_NOFILE`); `None`
/// for no limit.
#[must_use]
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Raises the process's open-file limit to its hard limit, as Go's runtime
/// does at start (and nginx's `worker_rlimit_nofile` where configured): a
/// shell's soft limit (often 1,024) is far below what a proxy's connection
/// counts need, and the hard one (often 524,288) is what the system
/// allows. Each connection is a descriptor this process polls with epoll,
/// so no `select` limit applies. The limit in force afterwards, or what
/// stopped the raise, goes to the debug log.
pub fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none() || limit.current == limit.maximum {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => log::debug!(
            "open-file limit raised to the hard limit {:?}",
            limit.maximum
        ),
        Err(error) => log::debug!("open-file limit not raised: {error}"),
    }
}

/// What to say when `needed` open files (a tool's connection counts, each
/// a file, and a few more) are more than the process may open: nginx says
/// the same of its `worker_connections`. Past the limit, accepting fails
/// and connections to the upstream cannot be opened, so clients already
/// connected fail too (found by an outside trial).
#[must_use]
pub fn open_file_shortfall(needed: usize, counts: &str) -> Option<String> {
    let limit = open_file_limit()?;
    let needed = u64::try_from(needed).unwrap_or(u64::MAX);
    (limit < needed).then(|| {
        format!(
            "the open-file limit ({limit}) is below the {needed} files {counts} may need: \
             raise it (LimitNOFILE= in the unit, ulimit -n in a shell) or lower them"
        )
    })
}

/// The most connections a tool's count may allow: Linux's default ceiling
/// on a process's open files (`fs.nr_open`). A larger count could never be
/// reached, and one beyond what tokio's semaphore holds made the tool panic
/// at start (found by an outside attack).
pub const MAX_CONNECTIONS: usize = 1 << 20;

/// A listening socket on `address` whose kernel queue holds `backlog`
/// connections not yet accepted (`bind` in std and tokio asks for 128), with
/// `SO_REUSEADDR` as tokio sets it, so a restart finds the port free.
///
/// # Errors
///
/// The socket cannot be made, bound or put to listen.
pub fn listen(address: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_directive_for_rustls_itself_names_it() {
        assert!(names_rustls("info,rustls::=warn"));
        assert!(names_rustls("rustls=debug"));
        assert!(names_rustls("debug, rustls::server = trace"));
        assert!(!names_rustls("debug"));
        assert!(!names_rustls("rustls_req_client_auth=debug,info"));
        assert!(!names_rustls(""));
        // A `/regex` after the directives is not a directive.
        assert!(!names_rustls("info/rustls"));
    }

    #[test]
    fn a_message_of_several_lines_is_written_on_one() {
        let line = format!(
            "{}",
            OneLine(&format_args!(
                "cause: {}",
                "line 6\r\n  |\n  ^ here\rthere\n\n"
            ))
        );
        assert_eq!(line, "cause: line 6 /   | /   ^ here / there");
    }
}
