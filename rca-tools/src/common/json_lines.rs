//! Lines (JSON, one per event) on standard output or appended to a file
//! ([`to_file`], reopened by [`reopen`] after logrotate moved it), buffered
//! and written out together, as nginx's `access_log ... buffer=` does: every
//! [`FLUSH_INTERVAL`], when [`BUFFERED_BYTES`] have gathered, and at exit
//! ([`flush`]). The writing is done by a thread of its own, started with the
//! first line, so a request never waits for the output: if it stalls (a
//! full pipe, a log shipper that stopped reading, a slow disk), up to
//! [`MAX_BUFFERED_BYTES`] of lines wait (besides the batch the writer is
//! blocked on), later ones are dropped and counted, and a warning on standard
//! error says how many were lost. At exit, [`flush_within`] waits a bounded
//! time for the last lines.
//!
//! `rca-proxy`'s access log and `rca-connect`'s connection log both write
//! here.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Buffers the line `write` appends to the bytes it is given (without the
/// newline); `write` says whether it succeeded (a line that did not is left
/// out and counted as dropped).
pub fn push_with(write: impl FnOnce(&mut Vec<u8>) -> bool) {
    // Started with the first line, so the interval's writes run from then.
    let writer = writer();
    let full = LINES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push_with(write);
    if full {
        // A wake-up is already pending if the channel is full.
        let _ = writer.try_send(());
    }
}

/// Buffers `value` as one JSON line.
pub fn push_json(value: &impl serde::Serialize) {
    push_with(|bytes| serde_json::to_writer(bytes, value).is_ok());
}

/// Bytes of lines that wake the writer before [`FLUSH_INTERVAL`] is up.
pub const BUFFERED_BYTES: usize = 64 * 1024;

/// Bytes of lines that may wait for a stalled output; lines beyond
/// are dropped (about two seconds of lines at 30,000 requests a second).
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

/// Room past [`BUFFERED_BYTES`] for the lines logged while the writer wakes.
const LINE_ROOM: usize = 16 * 1024;

/// How often the writer writes out what is buffered.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Lines not yet written, and how many were dropped since the last write.
#[derive(Debug)]
struct Lines {
    bytes: Vec<u8>,
    dropped: u64,
    limit: usize,
}

impl Lines {
    const fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            dropped: 0,
            limit,
        }
    }

    /// Adds the line `write` appends (and a newline), unless `write` fails
    /// or the line would pass the limit (then it is counted as dropped);
    /// whether [`BUFFERED_BYTES`] have gathered.
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        let start = self.bytes.len();
        let written = write(&mut self.bytes);
        self.bytes.push(b'\n');
        if !written || self.bytes.len() > self.limit {
            self.bytes.truncate(start);
            self.dropped += 1;
            // Counted now, not when the stalled output takes the next batch:
            // the metric must rise while the stall lasts.
            LOST.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes.len() >= BUFFERED_BYTES
    }

    /// The lines to write and the count of those dropped, leaving none,
    /// and room for the next batch: grown from empty, the buffer was copied
    /// at each doubling on the way to [`BUFFERED_BYTES`] (a profile under
    /// load showed the copies). An idle log keeps no such room.
    fn take(&mut self) -> (Vec<u8>, u64) {
        let next = if self.bytes.is_empty() {
            Vec::new()
        } else {
            Vec::with_capacity(BUFFERED_BYTES.min(self.limit) + LINE_ROOM)
        };
        (
            std::mem::replace(&mut self.bytes, next),
            std::mem::take(&mut self.dropped),
        )
    }
}

static LINES: Mutex<Lines> = Mutex::new(Lines::new(MAX_BUFFERED_BYTES));

/// Lines lost since the start: dropped past [`MAX_BUFFERED_BYTES`], or in a
/// batch the output did not take (a full disk, a closed pipe).
static LOST: AtomicU64 = AtomicU64::new(0);

/// How many lines were lost since the start: dropped while the output
/// stalled, or in a batch it did not take. For a metric.
pub fn lines_lost() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// Counts the lines of a batch the output did not take.
fn lose(lines: &[u8]) {
    // Each line ends in one newline (JSON escapes any within it).
    let count = memchr::memchr_iter(b'\n', lines).count();
    LOST.fetch_add(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Where batches go. Held while a batch is written (taken before [`LINES`],
/// never after), so batches reach it in the order their lines were logged,
/// and a reopened file gets none of the lines before the reopening.
static OUTPUT: Mutex<Output> = Mutex::new(Output::Stdout);

/// Where the lines go.
#[derive(Debug)]
enum Output {
    Stdout,
    /// Appended to, as nginx appends to its `access_log` file.
    File {
        path: PathBuf,
        file: File,
        /// Whether the last write failed (said once, until one succeeds).
        failing: bool,
    },
}

impl Output {
    /// Writes `lines` out; a failure loses them, as with `println!`.
    fn write(&mut self, lines: &[u8]) {
        match self {
            Self::Stdout => {
                let mut stdout = std::io::stdout().lock();
                if stdout
                    .write_all(lines)
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    lose(lines);
                }
            }
            Self::File {
                path,
                file,
                failing,
            } => {
                // A failed write may have left half a line: the first
                // write after one starts on a line of its own.
                let written = if *failing {
                    file.write_all(b"\n").and_then(|()| file.write_all(lines))
                } else {
                    file.write_all(lines)
                };
                if written.is_err() {
                    lose(lines);
                }
                // Said when the writes begin to fail, and when they recover.
                match (written, *failing) {
                    (Ok(()), true) => {
                        log::info!("access log: {} takes lines again", path.display());
                    }
                    (Err(error), false) => log::warn!(
                        "access log: cannot write to {}: {error}; lines are lost until it takes them again",
                        path.display()
                    ),
                    _ => return,
                }
                *failing = !*failing;
            }
        }
    }
}

/// Opens `path` to append lines to, creating it readable by its owner and
/// group only (the lines name clients).
fn open_for_lines(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// Checks that the lines could go to the file at `path` without creating
/// it (a check run as root must not leave a file the service's user cannot
/// open): an existing file must open for appending; for a missing one, a
/// file must be creatable in its directory (a probe file is made there and
/// removed).
///
/// # Errors
///
/// What stands in the way, in words.
pub fn check_file(path: &Path) -> Result<(), String> {
    match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(format!(
                    "cannot create {}: its directory {} does not exist",
                    path.display(),
                    dir.display()
                ));
            }
            // Whether this user may make a file there: by making one (of
            // another name) and taking it away at once.
            let probe = dir.join(format!(".rca-proxy-check-{}", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe)
            {
                Ok(_) => {
                    let _ = std::fs::remove_file(&probe);
                    Ok(())
                }
                // Left by a check that was killed: made there all the same.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(error) => Err(format!("cannot create {}: {error}", path.display())),
            }
        }
        Err(error) => Err(format!(
            "cannot open {} to append to: {error}",
            path.display()
        )),
    }
}

/// Sends the lines from now on to the file at `path`, appended to (created
/// if missing), instead of standard output.
///
/// # Errors
///
/// The file cannot be opened for appending; the lines still go where they went.
pub fn to_file(path: &Path) -> std::io::Result<()> {
    let file = open_for_lines(path)?;
    let mut output = OUTPUT.lock().unwrap_or_else(PoisonError::into_inner);
    write_out(&mut output);
    *output = Output::File {
        path: path.to_owned(),
        file,
        failing: false,
    };
    Ok(())
}

/// Opens the file given to [`to_file`] again, by its path: after logrotate
/// renamed it, lines go to a new file there (the lines buffered until now
/// go to the old one). Nothing to do for standard output.
///
/// # Errors
///
/// The file cannot be opened; the lines still go to the old one.
pub fn reopen() -> std::io::Result<()> {
    let mut output = OUTPUT.lock().unwrap_or_else(PoisonError::into_inner);
    write_out(&mut output);
    if let Output::File {
        path,
        file,
        failing,
    } = &mut *output
    {
        *file = open_for_lines(path)?;
        *failing = false;
    }
    Ok(())
}

/// Wakes the writer thread, starting it the first time.
fn writer() -> &'static SyncSender<()> {
    static WRITER: OnceLock<SyncSender<()>> = OnceLock::new();
    WRITER.get_or_init(|| {
        let (wake, woken) = mpsc::sync_channel(1);
        let started = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                // Woken early by a full buffer, or at the interval; never
                // disconnected, since the sender is static.
                while let Ok(()) | Err(RecvTimeoutError::Timeout) =
                    woken.recv_timeout(FLUSH_INTERVAL)
                {
                    flush();
                }
            });
        if let Err(error) = started {
            // Lines then wait for `flush` at exit, or are dropped at the limit.
            log::error!("access log: cannot start its writer thread: {error}");
        }
        wake
    })
}

/// Writes out every line buffered so far, waiting up to `limit` for the
/// output to take them (a stalled one must not keep a stopping process
/// alive); whether it did.
pub fn flush_within(limit: Duration) -> bool {
    let (done, wait) = mpsc::sync_channel(1);
    let started = std::thread::Builder::new()
        .name("access-log-exit".into())
        .spawn(move || {
            flush();
            let _ = done.send(());
        });
    started.is_ok() && wait.recv_timeout(limit).is_ok()
}

/// Writes out every line buffered so far, on the calling thread (the writer
/// thread's work; see [`flush_within`] for the last lines at exit).
pub fn flush() {
    write_out(&mut OUTPUT.lock().unwrap_or_else(PoisonError::into_inner));
}

/// Writes the buffered lines to `output` (held locked by the caller).
fn write_out(output: &mut Output) {
    let (lines, dropped) = LINES.lock().unwrap_or_else(PoisonError::into_inner).take();
    if dropped > 0 {
        log::warn!(
            "access log: {dropped} lines dropped: the output was not taking them ({MAX_BUFFERED_BYTES} bytes were waiting)"
        );
    }
    if !lines.is_empty() {
        output.write(&lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &'static [u8]) -> impl FnOnce(&mut Vec<u8>) -> bool {
        move |bytes| {
            bytes.extend_from_slice(text);
            true
        }
    }

    #[test]
    fn lines_past_the_limit_are_dropped_and_counted() {
        let mut lines = Lines::new(10);
        assert!(!lines.push_with(line(b"1234")));
        assert!(!lines.push_with(line(b"5678")));
        assert!(!lines.push_with(line(b"9")));
        // A line that failed to serialize leaves nothing behind.
        assert!(!lines.push_with(|bytes| {
            bytes.push(b'{');
            false
        }));
        assert_eq!(lines.take(), (b"1234\n5678\n".to_vec(), 2));
        assert_eq!(lines.take(), (Vec::new(), 0));
    }

    #[test]
    fn a_full_buffer_wakes_the_writer() {
        let mut lines = Lines::new(MAX_BUFFERED_BYTES);
        let half = |bytes: &mut Vec<u8>| {
            bytes.resize(bytes.len() + BUFFERED_BYTES / 2, b'x');
            true
        };
        assert!(!lines.push_with(half));
        assert!(lines.push_with(half));
    }
}
