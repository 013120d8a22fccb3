//! `rca-proxy demo`: the proxy with a fresh PKI in a temporary directory and a
//! built-in upstream that shows what it was told, and five clients: a browser,
//! a browser that forges identity headers, a bot from the bot CA, a bot from
//! another CA, and a bot with nothing to give.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls_req_client_auth::{pem, BotClient, ClientFlags};
use tokio::net::TcpListener;

use crate::proxy::config::{AccessLogTarget, Config, Headers, Limits, Log, Policy, Tls, Upstream};
use crate::proxy::service::Proxy;
use crate::proxy::tls::Front;

/// Runs the demo; `Err` if a client was not treated as it should be.
///
/// # Errors
///
/// Setup failed, or a client was treated otherwise than described.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    write_pki(dir.path())?;
    let file = |name: &str| dir.path().join(name);
    let upstream = start_upstream().await?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot listen on 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    let config = Config {
        listen: listener.local_addr()?,
        tls: Tls {
            cert: file("server.pem"),
            key: file("server.key"),
            bot_ca: file("bot-ca.pem"),
            code_point: rustls_req_client_auth::CodePoints::DEFAULT.extension_type,
            ticket_keys: None,
            partner_ca: None,
            ticket_lifetime_secs: 3600,
            session_resumption: true,
            bot_crl: Vec::new(),
            bot_deny_list: None,
        },
        upstream: Upstream {
            timeout_secs: 10,
            max_connections: 64,
            ..Upstream::with_defaults(format!("http://{upstream}"))
        },
        headers: Headers::default(),
        policy: Policy {
            bots_only: vec!["/api/crawl".into()],
        },
        limits: Limits::default(),
        admin: None,
        proxy_protocol: None,
        // The demo prints its own account.
        log: Log {
            access: AccessLogTarget::Off,
        },
    };
    config.validate("the demo's configuration")?;
    let front = Front::new(&config.tls, config.limits.handshake_timeout(), None)?;
    let proxy = Proxy::new(&config)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        proxy
            .service()
            .serve(listener, front.config.clone())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            }),
    );

    println!(
        "rca-proxy demo: https://localhost:{port}/ in front of the upstream http://{upstream}/"
    );
    println!(
        "request_client_auth = flag 80 in extension 62; /api/crawl is for verified bots only."
    );
    println!("The upstream answers with the identity headers the proxy gave it.\n");
    let failures = clients(port, dir.path()).await?;

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .context("the proxy did not shut down")?
        .context("the proxy task failed")??;
    if !failures.is_empty() {
        bail!(
            "{} checks failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    println!("\nall clients were treated as expected");
    Ok(())
}

/// The five clients; returns what went otherwise than described.
async fn clients(port: u16, dir: &Path) -> anyhow::Result<Vec<String>> {
    let url = |path: &str| format!("https://localhost:{port}{path}");
    let file = |name: &str| dir.join(name);
    let server_ca = pem::load_roots(file("server-ca.pem"))?;
    let mut failures = Vec::new();
    let mut check = |label: &str, result: anyhow::Result<()>| {
        if let Err(problem) = result {
            println!("   UNEXPECTED: {problem:#}");
            failures.push(format!("{label}: {problem:#}"));
        }
    };

    let browser = client(&server_ca, None)?;
    let page = get(&browser, &url("/"), &[]).await;
    report("1. browser, no flag", "GET /", &page);
    check("browser", expect(&page, 200, "x-client-auth-path=none"));
    let api = get(&browser, &url("/api/crawl"), &[]).await;
    report("", "GET /api/crawl", &api);
    check(
        "browser on the bots' API",
        expect(&api, 403, "request_client_auth"),
    );

    let forged = [
        ("X-Client-Auth-Path", "flag"),
        ("x-client-cert-subject", "CN=admin"),
    ];
    let page = get(&browser, &url("/"), &forged).await;
    report(
        "2. browser forging headers",
        "GET / (x-client-auth-path: flag)",
        &page,
    );
    check("forger", expect(&page, 200, "x-client-auth-path=none"));
    check(
        "forger's subject",
        match &page {
            Ok((_, body)) if body.contains("CN=admin") => {
                bail!("a forged header reached the upstream")
            }
            _ => Ok(()),
        },
    );

    let bot = BotClient::from_pem_files(file("bot.pem"), file("bot.key"))?.trust(server_ca.clone());
    let page = get(&bot.reqwest_client()?, &url("/api/crawl"), &forged).await;
    report("3. bot, bot-CA certificate", "GET /api/crawl", &page);
    check("bot", expect(&page, 200, "x-client-auth-path=flag"));
    check(
        "bot's subject",
        expect(&page, 200, "CN=crawler.bot.example"),
    );

    let stranger =
        BotClient::from_pem_files(file("normal.pem"), file("normal.key"))?.trust(server_ca.clone());
    let page = get(&stranger.reqwest_client()?, &url("/api/crawl"), &[]).await;
    let page = page.map_err(|error| match error.downcast_ref::<reqwest::Error>() {
        Some(reqwest) => anyhow::anyhow!(stranger.describe_failure("localhost", reqwest)),
        None => error,
    });
    report("4. bot, other-CA certificate", "GET /api/crawl", &page);
    check(
        "bot from another CA",
        match &page {
            Ok(_) => bail!("the proxy let in a bot whose CA it does not trust"),
            Err(_) => Ok(()),
        },
    );

    let empty_handed = client(
        &server_ca,
        Some(ClientFlags::request_client_auth_with(Arc::new(
            NothingToGive,
        ))),
    )?;
    let page = get(&empty_handed, &url("/"), &[]).await;
    report("5. bot, nothing to give", "GET /", &page);
    check(
        "bot without a certificate",
        expect(&page, 200, "x-client-auth-path=none"),
    );

    Ok(failures)
}

/// A reqwest client on plain rustls (ALPN h2, http/1.1), with `flags` if given.
fn client(
    roots: &rustls::RootCertStore,
    flags: Option<ClientFlags>,
) -> anyhow::Result<reqwest::Client> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots.clone())
    .with_no_client_auth();
    config.alpn_protocols = rustls_req_client_auth::http_alpn();
    if let Some(flags) = flags {
        flags.install(&mut config)?;
    }
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()?)
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?.trim_end().to_owned()))
}

fn report(label: &str, what: &str, page: &anyhow::Result<(u16, String)>) {
    let answer = match page {
        Ok((status, body)) => format!("{status}: {body}"),
        Err(error) => format!("refused: {error:#}"),
    };
    println!("{label:<30} {what:<34} -> {answer}");
}

fn expect(page: &anyhow::Result<(u16, String)>, status: u16, wanted: &str) -> anyhow::Result<()> {
    match page {
        Ok((got, body)) if *got == status && body.contains(wanted) => Ok(()),
        Ok((got, body)) => bail!("expected {status} with {wanted:?}, got {got}: {body}"),
        Err(error) => bail!("expected {status} with {wanted:?}, got no response: {error:#}"),
    }
}

/// The built-in upstream: says which identity headers it received.
async fn start_upstream() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|request: hyper::Request<Incoming>| async move {
                        let mut seen = Vec::new();
                        for name in [
                            "x-client-auth-path",
                            "x-client-cert-subject",
                            "x-client-cert-x5t-s256",
                        ] {
                            if let Some(value) =
                                request.headers().get(name).and_then(|v| v.to_str().ok())
                            {
                                seen.push(format!("{name}={value}"));
                            }
                        }
                        let body = format!("upstream saw {}", seen.join(", "));
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(address)
}

/// A bot whose certificate store has nothing to give when asked (so it sets
/// the flag, RCA-1, and answers with an empty Certificate, RCA-5).
#[derive(Debug)]
struct NothingToGive;

impl ResolvesClientCert for NothingToGive {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A server CA and certificate for localhost, a bot CA and a bot, and another
/// CA and a client it issued, as PEM files in `dir`.
fn write_pki(dir: &Path) -> anyhow::Result<()> {
    let ca = |name: &str| -> anyhow::Result<(Issuer<'static, KeyPair>, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok((Issuer::new(params, key), cert.pem()))
    };
    let leaf = |issuer: &Issuer<'static, KeyPair>,
                name: &str,
                usage|
     -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![name.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (server_ca, server_ca_pem) = ca("demo server CA")?;
    let (server, server_key) = leaf(&server_ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth)?;
    let (bot_ca, bot_ca_pem) = ca("demo bot CA")?;
    let (bot, bot_key) = leaf(
        &bot_ca,
        "crawler.bot.example",
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let (normal_ca, _) = ca("demo partner CA")?;
    let (normal, normal_key) = leaf(
        &normal_ca,
        "partner.example",
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    for (name, contents) in [
        ("server-ca.pem", server_ca_pem),
        ("server.pem", server),
        ("server.key", server_key),
        ("bot-ca.pem", bot_ca_pem),
        ("bot.pem", bot),
        ("bot.key", bot_key),
        ("normal.pem", normal),
        ("normal.key", normal_key),
    ] {
        std::fs::write(dir.join(name), contents)
            .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    Ok(())
}
