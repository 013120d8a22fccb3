//! What every long-running tool does the same way: log lines on standard
//! error (timestamped, the level from `RUST_LOG`), and SIGHUP as the signal
//! to read its files again.

use std::future::Future;

/// Logs to standard error, at `default_level` unless `RUST_LOG` says
/// otherwise; each line carries an RFC 3339 timestamp.
pub fn init_logging(default_level: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp_millis()
        .init();
}

/// Calls `reload` on every SIGHUP, for as long as the process runs; without
/// a handler (it cannot be installed) it says so once and returns.
pub async fn on_hangup<F, R>(mut reload: F)
where
    F: FnMut() -> R,
    R: Future<Output = ()>,
{
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            log::warn!("cannot install the SIGHUP handler ({error}); no reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        reload().await;
    }
}
