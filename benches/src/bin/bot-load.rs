//! Keep-alive requests of a bot written with `BotClient` (reqwest, HTTP/2 by
//! ALPN), for `connect-vs-direct.sh`: sent directly (the flag set by this
//! process) or by a plain reqwest client through `rca-connect` (the flag set
//! there). Prints one JSON line: requests, rate, p50 and p99 latency, and the
//! CPU seconds of the bot's side (this process and `--client-side-pid`) with
//! requests per second of them.
//!
//! ```sh
//! bot-load --url https://localhost:18445/ --ca server-ca.pem --cert bot.pem --key bot.key
//! bot-load --url https://localhost:18445/ --proxy http://127.0.0.1:18118 \
//!     --ca ~/.local/state/rca-connect/ca.pem --client-side-pid PID
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use benches::process_cpu::cpu_nanos;
use clap::Parser;
use rustls_req_client_auth::{pem, BotClient};

/// Loads a server with a bot's keep-alive requests.
#[derive(Parser, Debug)]
struct Args {
    /// `https://host:port/path`.
    #[arg(long)]
    url: String,
    /// The CA the server's certificate chains to (through a proxy: the
    /// proxy's local CA).
    #[arg(long)]
    ca: PathBuf,
    /// The bot certificate (direct requests only).
    #[arg(long, requires = "key", conflicts_with = "proxy")]
    cert: Option<PathBuf>,
    /// Its key.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Send through this HTTPS proxy (`rca-connect`).
    #[arg(long)]
    proxy: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// A label for the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Processes of the bot's side besides this one (`rca-connect`).
    #[arg(long = "client-side-pid")]
    client_side_pids: Vec<u32>,
}

fn client(args: &Args) -> anyhow::Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        let bot = BotClient::from_pem_files(cert, key)?
            .trust_pem_file(&args.ca)?
            .crypto_provider(provider);
        return Ok(bot.reqwest_builder()?.build()?);
    }
    let proxy = args.proxy.as_deref().context("--cert/--key or --proxy")?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(pem::load_roots(&args.ca)?)
        .with_no_client_auth();
    config.alpn_protocols = rustls_req_client_auth::http_alpn();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .proxy(reqwest::Proxy::https(proxy)?)
        .build()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = client(&args)?;
    // One request first: the connection (and tunnel) are made before the
    // clock starts, as in a bot that has been running.
    client.get(&args.url).send().await?.bytes().await?;
    let pids: Vec<u32> = args
        .client_side_pids
        .iter()
        .copied()
        .chain([std::process::id()])
        .collect();
    let cpu_before = cpu_nanos(&pids)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url) = (client.clone(), args.url.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0_u64);
            while Instant::now() < deadline {
                let started = Instant::now();
                let answer = async {
                    let response = client.get(&url).send().await?.error_for_status()?;
                    response.bytes().await
                };
                match answer.await {
                    Ok(_) => latencies.push(started.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (mut worker_latencies, worker_errors) = worker.await?;
        latencies.append(&mut worker_latencies);
        errors += worker_errors;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = Duration::from_nanos(cpu_nanos(&pids)?.saturating_sub(cpu_before)).as_secs_f64();
    latencies.sort();
    let percentile = |p: usize| {
        latencies
            .get(latencies.len().saturating_sub(1) * p / 100)
            .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0)
    };
    let requests = f64::from(u32::try_from(latencies.len()).unwrap_or(u32::MAX));
    println!(
        "{{\"label\":\"{}\",\"requests\":{},\"errors\":{errors},\"rate\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"client_cpu_s\":{cpu:.2},\"client_side_rate\":{:.1}}}",
        args.label,
        latencies.len(),
        requests / elapsed,
        percentile(50),
        percentile(99),
        if cpu > 0.0 { requests / cpu } else { 0.0 },
    );
    Ok(())
}
