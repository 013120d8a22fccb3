//! The demo: one HTTPS port for people and bots, four clients.
//!
//! ```sh
//! cargo xtask fork   # once: materializes the patched rustls
//! cargo run -p rustls-req-client-auth --features axum,reqwest --example demo
//! ```
//!
//! (`cargo xtask demo`, the README's first command, runs `rca-proxy demo`:
//! the same clients in front of the proxy.)
//!
//! It writes a fresh PKI as PEM files into a temporary directory, starts the
//! `server` example's application with `rustls_req_client_auth::serve` on
//! 127.0.0.1 (configured from those files, as the example is), and connects:
//!
//! 1. a browser (plain rustls, ALPN h2/http1.1, no flag): no
//!    CertificateRequest, no certificate picker, served anonymously, and its
//!    CORS preflight from another origin is answered;
//! 2. a bot with a certificate from the bot CA (`BotClient` + reqwest): the
//!    flag is acknowledged in the CertificateRequest (RCA-2), the bot is
//!    authenticated on the flag path and may use the bots-only API;
//! 3. a bot with a certificate from another CA: refused, as the flag path
//!    trusts only the bot CA (RCA-10), and the bot can tell why;
//! 4. a bot that sets the flag but has no certificate to give when asked: it
//!    answers with an empty Certificate (RCA-5) and is served anonymously
//!    (RCA-14).
//!
//! For each it prints what TLS Flags did (as the client saw it) and what the
//! application answered. It exits with 1 if any client was not treated as
//! described. `RUST_LOG=rustls_req_client_auth=debug` shows both sides'
//! decisions.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use rustls_req_client_auth::client::{ClientFlagsState, SentIdentity};
use rustls_req_client_auth::{pem, BotClient, ClientFlags, CodePoints, ServerFlags};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use common::pki::Pki;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        env_logger::init();
    } else {
        ServerLog::install();
    }
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    Pki::generate().write(dir.path())?;

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot listen on 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = oneshot::channel::<()>();
    let config = server_config(&provider, dir.path())?;
    let server = tokio::spawn(
        rustls_req_client_auth::serve(listener, config, common::app::app()).with_graceful_shutdown(
            async {
                let _ = stopped.await;
            },
        ),
    );
    let points = CodePoints::DEFAULT;
    println!(
        "TLS Flags demo: request_client_auth = flag {} in extension {}; server https://localhost:{port}/",
        points.request_client_auth.get(),
        points.extension_type,
    );
    println!(
        "The server requests a client certificate only when the flag is set, and trusts only the bot CA for it.\n"
    );

    let demo = Demo {
        provider,
        dir: dir.path(),
        port,
    };
    let mut failures = Vec::new();
    let mut check = |label: &str, result: anyhow::Result<()>| {
        if let Err(problem) = result {
            println!("   UNEXPECTED: {problem:#}");
            failures.push(format!("{label}: {problem:#}"));
        }
    };
    check("browser", demo.browser().await);
    check("bot", demo.bot("bot", 2).await);
    check("bot from another CA", demo.bot("normal", 3).await);
    check("bot without a certificate", demo.empty_handed().await);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .context("the server did not shut down")?
        .context("the server task failed")??;
    if !failures.is_empty() {
        bail!(
            "{} of 4 clients were not treated as expected:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    println!("\nall 4 clients were treated as expected");
    Ok(())
}

/// The clients' side of the demo.
struct Demo<'a> {
    provider: Arc<CryptoProvider>,
    dir: &'a Path,
    port: u16,
}

impl Demo<'_> {
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A plain rustls config trusting the server CA, ALPN h2 then http/1.1.
    fn plain_config(&self) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(pem::load_roots(self.file("server-ca.pem"))?)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// 1. A browser, and its CORS preflight from another origin.
    async fn browser(&self) -> anyhow::Result<()> {
        let browser = reqwest::Client::builder()
            .tls_backend_preconfigured(self.plain_config()?)
            .build()?;
        let page = get(&browser, &self.url("/")).await;
        let preflight = browser
            .request(reqwest::Method::OPTIONS, self.url("/api/crawl"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .send()
            .await;
        report(
            1,
            "browser, no flag",
            "no flag: plain rustls, as a browser",
            &page,
        )
        .await;
        let preflight = match &preflight {
            Ok(response) => format!(
                "{} {}, access-control-allow-origin: {}",
                version(response.version()),
                response.status(),
                response
                    .headers()
                    .get("access-control-allow-origin")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("(none)")
            ),
            Err(error) => format!("failed: {error}"),
        };
        println!("   {:<28} CORS preflight: {preflight}", "");
        expect_page(&page, "hello, anonymous")?;
        if !preflight.contains("access-control-allow-origin: *") {
            bail!("the CORS preflight was not answered: {preflight}");
        }
        Ok(())
    }

    /// Cases 2 and 3: a bot with `name.pem`. From the bot CA it is in; from
    /// the other CA it is refused, and can tell why.
    async fn bot(&self, name: &str, number: usize) -> anyhow::Result<()> {
        let bot = BotClient::from_pem_files(
            self.file(&format!("{name}.pem")),
            self.file(&format!("{name}.key")),
        )?
        .trust_pem_file(self.file("server-ca.pem"))?
        .crypto_provider(self.provider.clone());
        let page = get(&bot.reqwest_client()?, &self.url("/api/crawl")).await;
        let outcome = bot.outcomes().get("localhost");
        let page = page.map_err(
            |error| match (&outcome, error.downcast_ref::<reqwest::Error>()) {
                (Some(outcome), Some(error)) => anyhow::anyhow!(outcome.describe_failure(error)),
                _ => error,
            },
        );
        let trusted = name == "bot";
        let label = if trusted {
            "bot, bot-CA certificate"
        } else {
            "bot, other-CA certificate"
        };
        report(number, label, &tls_line(outcome.as_ref()), &page).await;
        expect_outcome(outcome.as_ref(), SentIdentity::FlagIdentity)?;
        match (&page, trusted) {
            (_, true) => expect_page(&page, "crawl granted to CN=crawler.bot.example"),
            (Ok(page), false) => bail!(
                "the server ACCEPTED a certificate from a CA it does not trust for bots: {page}"
            ),
            (Err(_), false) => Ok(()),
        }
    }

    /// 4. A bot that has nothing to give when asked.
    async fn empty_handed(&self) -> anyhow::Result<()> {
        let flags = ClientFlags::request_client_auth_with(Arc::new(NothingToGive));
        let outcomes = flags.outcomes();
        let mut config = self.plain_config()?;
        flags
            .install(&mut config)
            .expect("TLS Flags registers its extension type");
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .build()?;
        let page = get(&client, &self.url("/")).await;
        let outcome = outcomes.get("localhost");
        report(
            4,
            "bot, no certificate to give",
            &tls_line(outcome.as_ref()),
            &page,
        )
        .await;
        expect_outcome(outcome.as_ref(), SentIdentity::Empty)?;
        expect_page(&page, "hello, anonymous")
    }
}

/// The server's config, from the PEM files, as the `server` example builds it.
fn server_config(provider: &Arc<CryptoProvider>, dir: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let bot_roots = Arc::new(pem::load_roots(dir.join("bot-ca.pem"))?);
    let bots = WebPkiClientVerifier::builder_with_provider(bot_roots, provider.clone()).build()?;
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            pem::load_certificates(dir.join("server.pem"))?,
            pem::load_private_key(dir.join("server.key"))?,
        )?;
    ServerFlags::request_client_auth(bots)
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    Ok(Arc::new(config))
}

/// One GET: the HTTP version, status and body.
async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = client.get(url).send().await?;
    Ok(format!(
        "{} {}: {}",
        version(response.version()),
        response.status(),
        response.text().await?.trim_end()
    ))
}

fn version(version: reqwest::Version) -> &'static str {
    match version {
        reqwest::Version::HTTP_2 => "HTTP/2",
        reqwest::Version::HTTP_11 => "HTTP/1.1",
        _ => "HTTP/?",
    }
}

fn tls_line(outcome: Option<&ClientFlagsState>) -> String {
    outcome.map_or_else(|| "no TLS connection".to_owned(), ToString::to_string)
}

async fn report(number: usize, label: &str, tls: &str, page: &anyhow::Result<String>) {
    println!("{number}. {label:<28} TLS:  {tls}");
    match page {
        Ok(page) => println!("   {:<28} HTTP: {page}", ""),
        Err(error) => println!("   {:<28} refused: {error:#}", ""),
    }
    ServerLog::print().await;
}

fn expect_page(page: &anyhow::Result<String>, wanted: &str) -> anyhow::Result<()> {
    match page {
        Ok(page) if page.starts_with("HTTP/2 200 OK: ") && page.contains(wanted) => Ok(()),
        Ok(page) => bail!("expected an HTTP/2 200 with {wanted:?}, got {page}"),
        Err(error) => bail!("expected {wanted:?}, got no response: {error:#}"),
    }
}

/// The flag was sent and acknowledged, and `sent` answered the request.
fn expect_outcome(outcome: Option<&ClientFlagsState>, sent: SentIdentity) -> anyhow::Result<()> {
    let Some(outcome) = outcome else {
        bail!("no TLS Flags outcome recorded");
    };
    if !outcome.requested_client_auth() {
        bail!("the flag was not sent");
    }
    if !outcome.flag_acknowledged() || outcome.sent_identity() != sent {
        bail!("expected the flag acknowledged and {sent}, got: {outcome}");
    }
    Ok(())
}

/// The server's own account of each connection: the lines the crate logs
/// when a handshake is done or fails, and why a flag-path certificate was
/// refused (what an operator reads in the server's log).
struct ServerLog;

static SERVER_LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl ServerLog {
    fn install() {
        if log::set_logger(&Self).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    }

    /// Prints what the server logged since the last call (waiting a moment
    /// for a refusal, which is logged just after the alert is sent).
    async fn print() {
        for _ in 0..20 {
            if !Self::lines().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for line in std::mem::take(&mut *Self::lines()) {
            println!("   {:<28} server log: {line}", "");
        }
    }

    fn lines() -> std::sync::MutexGuard<'static, Vec<String>> {
        SERVER_LOG
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl log::Log for ServerLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        [
            "rustls_req_client_auth::acceptor",
            "rustls_req_client_auth::verifier",
        ]
        .contains(&metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = record.args().to_string();
            Self::lines().push(line.trim_start_matches("tls_flags: ").to_owned());
        }
    }

    fn flush(&self) {}
}

/// A bot's certificate store that has an identity configured (so the flag is
/// sent, RCA-1) but nothing to give when the server asks: say the certificate
/// expired and was removed. The bot answers with an empty Certificate (RCA-5).
#[derive(Debug)]
struct NothingToGive;

impl ResolvesClientCert for NothingToGive {
    fn resolve(
        &self,
        _issuers: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}
