//! A TLS load generator for `proxy-vs-nginx.sh`: the same client for nginx and
//! rca-proxy, as browsers (no client certificate), as mTLS clients (a
//! certificate on every CertificateRequest, for nginx's `ssl_verify_client
//! on`) or as flagged bots (`request_client_auth` and the certificate on the
//! flag path). Prints one JSON line: requests, rate, p50, p90, p99 and
//! maximum latency.
//!
//! ```sh
//! tls-load --url https://localhost:8443/ --ca server-ca.pem --mode handshakes \
//!     --connections 16 --seconds 10 [--cert bot.pem --key bot.key [--flag]] \
//!     [--server-pid PID ...] [--rate 1000]
//! ```
//!
//! Two things make the numbers comparable between servers on a 2-core machine:
//!
//! - **Rate per server core.** A TLS client does more work per full
//!   handshake than the server (it verifies a signature and a chain), so one
//!   core of load generator can saturate before the server does, and two
//!   servers then show the same rate. With `--server-pid`, the CPU time the
//!   server used during the run (`/proc/PID/stat`, all threads) is reported
//!   too, and requests per second of that time: the rate one core of server
//!   would sustain.
//! - **Latency at a fixed offered rate.** At saturation, latency only
//!   restates throughput (connections / rate). With `--rate`, each worker
//!   sends on a fixed schedule; a request the server made late (its
//!   connection was still busy when it was due) counts from when it was due,
//!   not from when it could be sent, so a stalled server is not hidden by a
//!   client that waited for it (no coordinated omission).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use benches::process_cpu::cpu_nanos;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use rustls_req_client_auth::{pem, ClientFlags};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KeyExchange {
    /// X25519 only.
    X25519,
    /// The provider's default groups.
    Default,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// A new TLS connection (full handshake) for every request.
    Handshakes,
    /// One connection per worker, requests one after another (HTTP/1.1 keep-alive).
    Keepalive,
}

/// Loads an HTTPS server over HTTP/1.1 and reports the rate and latency.
#[derive(Parser, Debug)]
struct Args {
    /// `https://host:port/path`.
    #[arg(long)]
    url: String,
    /// The CA the server's certificate chains to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// A client certificate chain (PEM).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Its key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Present the certificate on the flag path (`request_client_auth`)
    /// instead of to every CertificateRequest.
    #[arg(long, requires = "cert")]
    flag: bool,
    /// The key exchange offered: X25519 alone (as nginx's OpenSSL 3.0 can
    /// answer), or aws-lc-rs's defaults (since rustls 0.23.48
    /// X25519MLKEM768 first, with an X25519 share beside it).
    #[arg(long, value_enum, default_value = "x25519")]
    key_exchange: KeyExchange,
    /// New connection per request, or keep-alive.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Concurrent workers.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// A label for the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Threads of this process count as the server's CPU time (repeatable).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Offered requests per second over all workers (open loop); without it,
    /// every worker sends its next request as soon as the last is answered.
    #[arg(long, value_parser = positive_rate)]
    rate: Option<f64>,
    /// Reach the server through this HTTP proxy (`host:port`, `CONNECT`):
    /// `rca-connect`, whose local CA `--ca` then names.
    #[arg(long)]
    proxy: Option<String>,
    /// Processes of the client's side (repeatable; `rca-connect`): their CPU
    /// time and this process's are reported together, with requests per
    /// second of it.
    #[arg(long = "client-side-pid")]
    client_side_pids: Vec<u32>,
}

/// A count as a float, for rates (counts here stay far below 2^32).
fn float(count: usize) -> f64 {
    f64::from(u32::try_from(count).unwrap_or(u32::MAX))
}

fn config(args: &Args) -> anyhow::Result<ClientConfig> {
    // By default X25519 only, as nginx (OpenSSL 3.0) uses it: the same key
    // exchange for both servers, whatever features cargo unifies into rustls.
    let defaults = rustls::crypto::aws_lc_rs::default_provider();
    let provider = Arc::new(match args.key_exchange {
        KeyExchange::X25519 => rustls::crypto::CryptoProvider {
            kx_groups: vec![rustls::crypto::aws_lc_rs::kx_group::X25519],
            ..defaults
        },
        KeyExchange::Default => defaults,
    });
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(pem::load_roots(&args.ca)?);
    let mut config = match (&args.cert, &args.key, args.flag) {
        (Some(cert), Some(key), false) => builder
            .with_client_auth_cert(pem::load_certificates(cert)?, pem::load_private_key(key)?)?,
        (Some(cert), Some(key), true) => {
            let identity = rustls::sign::CertifiedKey::from_der(
                pem::load_certificates(cert)?,
                pem::load_private_key(key)?,
                &provider,
            )?;
            let mut config = builder.with_no_client_auth();
            ClientFlags::request_client_auth(Arc::new(identity)).install(&mut config)?;
            config
        }
        _ => builder.with_no_client_auth(),
    };
    // Every new connection is a full handshake.
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    (address, proxy): (&str, Option<&str>),
    name: &ServerName<'static>,
) -> anyhow::Result<Sender> {
    let tcp = tokio::net::TcpStream::connect(proxy.unwrap_or(address)).await?;
    tcp.set_nodelay(true)?;
    let tcp = match proxy {
        Some(_) => tunnel(tcp, address).await?,
        None => tcp,
    };
    let tls = connector.connect(name.clone(), tcp).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// `CONNECT address` on `tcp`; the stream once the proxy answered 200.
async fn tunnel(
    mut tcp: tokio::net::TcpStream,
    address: &str,
) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(format!("CONNECT {address} HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
        .await?;
    // The answer is one small head; nothing follows it until the client
    // speaks TLS, so reading to its end takes nothing of the tunnel.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(tcp.read(&mut byte).await? == 1, "the proxy closed");
        head.push(byte[0]);
        anyhow::ensure!(head.len() < 4096, "the proxy's answer is too long");
    }
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 200"),
        "CONNECT: {}",
        String::from_utf8_lossy(&head)
    );
    Ok(tcp)
}

async fn request(sender: &mut Sender, host: &str, path: &str) -> anyhow::Result<()> {
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    response.into_body().collect().await?;
    Ok(())
}

/// When a worker sends its next request and from when its latency counts.
struct Schedule {
    /// The next request's due time and the time between two; `None` in the
    /// closed loop (send when answered).
    due: Option<(Instant, Duration)>,
    /// No request is due from here on.
    deadline: Instant,
}

impl Schedule {
    /// Worker `worker` of `connections`, staggered over one `interval`.
    fn new(
        interval: Option<Duration>,
        (start, deadline): (Instant, Instant),
        worker: usize,
        connections: usize,
    ) -> Self {
        let due = interval.map(|interval| {
            let first = start + interval.mul_f64(float(worker) / float(connections));
            (first, interval)
        });
        Self { due, deadline }
    }

    /// Waits until the next request is due and returns the instant its
    /// latency counts from; `None` once the run is over.
    async fn next_start(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let Some((due, interval)) = self.due.as_mut() else {
            return (now < self.deadline).then_some(now);
        };
        let this = *due;
        if this >= self.deadline || now >= self.deadline {
            return None;
        }
        *due += *interval;
        if now >= this {
            // Behind schedule: the server held the last request past this
            // one's due time.
            return Some(this);
        }
        // On time: tokio's timer wakes up to a millisecond late; that is the
        // client's delay, not the server's, so count from the wake-up.
        tokio::time::sleep_until(this.into()).await;
        Some(Instant::now())
    }

    /// The requests that were due before the deadline but never sent (the
    /// server still held the one before), each with the time it waited by
    /// the deadline: a lower bound of its latency, so a server that stalls
    /// at the end of a run is not spared.
    fn unsent(&self) -> Vec<Duration> {
        let mut waited = Vec::new();
        if let Some((mut due, interval)) = self.due {
            while due < self.deadline {
                waited.push(self.deadline - due);
                due += interval;
            }
        }
        waited
    }
}

/// `--rate`: a finite number of requests per second above zero.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate above 0 (requests per second)"
        )),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let uri: hyper::Uri = args.url.parse().context("--url")?;
    let host = uri.host().context("--url has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let path = uri.path().to_owned();
    let address = format!("{host}:{port}");
    let name = ServerName::try_from(host.clone())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config(&args)?));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    // Each worker's share of the offered rate, staggered over one interval.
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(float(args.connections) / rate));
    let cpu_before = cpu_nanos(&args.server_pids)?;
    let client_pids: Vec<u32> = args
        .client_side_pids
        .iter()
        .copied()
        .chain([std::process::id()])
        .collect();
    let client_cpu_before = cpu_nanos(&client_pids)?;
    let mut workers = Vec::new();
    for worker in 0..args.connections {
        let (connector, address, name, host, path) = (
            connector.clone(),
            address.clone(),
            name.clone(),
            host.clone(),
            path.clone(),
        );
        let mode = args.mode;
        let connections = args.connections;
        let proxy = args.proxy.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            let mut kept: Option<Sender> = None;
            let mut schedule = Schedule::new(interval, (start, deadline), worker, connections);
            while let Some(started) = schedule.next_start().await {
                let result = async {
                    let mut sender = match (mode, kept.take()) {
                        (Mode::Keepalive, Some(sender)) => sender,
                        _ => connect(&connector, (&address, proxy.as_deref()), &name).await?,
                    };
                    request(&mut sender, &host, &path).await?;
                    if matches!(mode, Mode::Keepalive) {
                        kept = Some(sender);
                    }
                    Ok::<_, anyhow::Error>(())
                }
                .await;
                match result {
                    Ok(()) => latencies.push(started.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            let answered = latencies.len();
            latencies.extend(schedule.unsent());
            (latencies, answered, errors)
        }));
    }
    let mut latencies = Vec::new();
    let (mut requests, mut errors) = (0, 0);
    for worker in workers {
        let (mut worker_latencies, answered, worker_errors) = worker.await?;
        latencies.append(&mut worker_latencies);
        requests += answered;
        errors += worker_errors;
    }
    let unsent = latencies.len() - requests;
    let cpu_seconds =
        Duration::from_nanos(cpu_nanos(&args.server_pids)?.saturating_sub(cpu_before))
            .as_secs_f64();
    let client_cpu_seconds =
        Duration::from_nanos(cpu_nanos(&client_pids)?.saturating_sub(client_cpu_before))
            .as_secs_f64();
    print_report(
        &args,
        (requests, errors, unsent),
        latencies,
        (cpu_seconds, client_cpu_seconds),
    );
    Ok(())
}

/// The run's JSON line: `counts` are requests answered, errors and requests
/// never sent; `cpu` the server's and the client side's CPU seconds.
fn print_report(
    args: &Args,
    (requests, errors, unsent): (usize, u64, usize),
    mut latencies: Vec<Duration>,
    (cpu_seconds, client_cpu_seconds): (f64, f64),
) {
    latencies.sort();
    let percentile = |p: usize| {
        latencies
            .get(latencies.len().saturating_sub(1) * p / 100)
            .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0)
    };
    let per_core = if args.server_pids.is_empty() || cpu_seconds == 0.0 {
        String::new()
    } else {
        format!(
            ",\"server_cpu_s\":{cpu_seconds:.2},\"per_core_rate\":{:.1}",
            float(requests) / cpu_seconds
        )
    };
    let client_side = if client_cpu_seconds == 0.0 {
        String::new()
    } else {
        format!(
            ",\"client_cpu_s\":{client_cpu_seconds:.2},\"client_side_rate\":{:.1}",
            float(requests) / client_cpu_seconds
        )
    };
    let offered = args
        .rate
        .map_or(String::new(), |rate| format!(",\"offered_rate\":{rate:.0}"));
    println!(
        "{{\"label\":\"{}\",\"mode\":\"{:?}\",\"requests\":{requests},\"errors\":{errors},\"unsent\":{unsent},\"rate\":{:.1}{offered},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}{per_core}{client_side}}}",
        args.label,
        args.mode,
        float(requests) / Duration::from_secs(args.seconds).as_secs_f64(),
        percentile(50),
        percentile(90),
        percentile(99),
        percentile(100),
    );
}
