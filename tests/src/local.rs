//! What the tests that run real processes on loopback share: a free port, a
//! runtime of two workers, and a wait for a process to listen.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on now (the kernel's choice; another
/// test may take it later, so bind soon).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A multi-thread runtime of two workers with every driver on, as the
/// machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Waits until something accepts connections on loopback `port`; panics
/// naming `what` after 20 s.
pub fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The test PKI as PEM files in a temporary directory (removed on drop):
/// `server.pem`, `server.key`, `server-ca.pem`, `bot.pem`, `bot.key`,
/// `bot-ca.pem`, and the normal path's `normal-ca.pem`, `normal-client.pem`
/// and `normal-client.key`, for tests that hand files to a process or a
/// loader.
#[derive(Debug)]
pub struct PemFiles {
    dir: tempfile::TempDir,
}

impl PemFiles {
    /// Writes `pki`'s files.
    pub fn new(pki: &crate::TestPki) -> Self {
        let files = Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        for (name, contents) in [
            ("server.pem", &pki.server.chain_pem),
            ("server.key", &pki.server.key_pem),
            ("server-ca.pem", &pki.server_ca.cert_pem),
            ("bot.pem", &pki.bot.chain_pem),
            ("bot.key", &pki.bot.key_pem),
            ("bot-ca.pem", &pki.bot_ca.cert_pem),
            ("normal-ca.pem", &pki.normal_ca.cert_pem),
            ("normal-client.pem", &pki.normal_client.chain_pem),
            ("normal-client.key", &pki.normal_client.key_pem),
        ] {
            files.write(name, contents);
        }
        files
    }

    /// Where `name` is (or would be) in the directory.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name`, replacing it; its path.
    pub fn write(&self, name: &str, contents: &str) -> std::path::PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write");
        path
    }
}

/// `promtool check metrics` (Prometheus's own parser and lint of its
/// naming conventions; Debian's `prometheus` package, found through
/// `RCA_PROMTOOL` or at `/usr/bin/promtool`) on `text`: what it said, or
/// `None` where it is not installed.
pub fn promtool_check_metrics(text: &str) -> Option<std::process::Output> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let promtool = std::env::var_os("RCA_PROMTOOL")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(std::path::PathBuf::from("/usr/bin/promtool")))
        .filter(|path| path.exists())?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    Some(child.wait_with_output().expect("promtool"))
}
