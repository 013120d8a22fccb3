//! `rca-probe`: does this server honour the request_client_auth TLS flag?

// clap turns these doc comments into `--help`, where backticks would show.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rca_tools::probe::{probe, Target, Trust};
use rustls_req_client_auth::{pem, CodePoints};

/// Connects to a server with and without the request_client_auth TLS flag, on
/// each code point, and reports what it does: CertificateRequests (and so
/// certificate pickers for browsers), acknowledgements, the CAs and signature
/// schemes it asks for, whether an identity is accepted, resumption, and any
/// rule it breaks. Exit codes: 0 honours the flag, 1 does not support it,
/// 3 misbehaves, 4 could not connect, 5 refused the identity given with
/// --cert/--key, 2 usage error.
#[derive(Parser, Debug)]
#[command(name = "rca-probe", version)]
struct Args {
    /// The server, https://host[:port][/path].
    url: String,
    /// A bot certificate chain (PEM) to present when asked.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The bot's private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// The CA certificates to verify the server with (PEM).
    #[arg(long, conflicts_with = "insecure_skip_server_verification")]
    ca: Option<PathBuf>,
    /// Accept any server certificate. For diagnostics only: the answers then
    /// come from whoever is on the path.
    #[arg(long)]
    insecure_skip_server_verification: bool,
    /// Only this tls_flags code point: 62, or 65025 / 0xfe01.
    #[arg(long, value_parser = parse_code_point)]
    code_point: Option<u16>,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_code_point(text: &str) -> Result<u16, String> {
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|_| format!("{text:?} is not a number"))?;
    let known = [
        CodePoints::DEFAULT.extension_type,
        CodePoints::experimental().extension_type,
    ];
    if known.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is not a TLS Flags code point (62 or 0xfe01)"
        ))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let target = match target(&args) {
        Ok(target) => target,
        Err(error) => {
            eprintln!("rca-probe: {error:#}");
            return ExitCode::from(2);
        }
    };
    let report = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(probe(&target)),
        Err(error) => {
            eprintln!("rca-probe: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => eprintln!("rca-probe: {error}"),
        }
    } else {
        println!("{report}");
    }
    ExitCode::from(report.verdict.exit_code())
}

fn target(args: &Args) -> anyhow::Result<Target> {
    let uri: http::Uri = args
        .url
        .parse()
        .map_err(|error| anyhow::anyhow!("{:?} is not a URL: {error}", args.url))?;
    if uri.scheme_str() != Some("https") {
        anyhow::bail!("{} is not an https:// URL", args.url);
    }
    let host = uri
        .host()
        .ok_or_else(|| anyhow::anyhow!("{} has no host", args.url))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let trust = match (&args.ca, args.insecure_skip_server_verification) {
        (Some(ca), _) => Trust::Roots(pem::load_roots(ca)?),
        (None, true) => Trust::SkipVerification,
        (None, false) => anyhow::bail!(
            "give --ca FILE to verify the server, or --insecure-skip-server-verification"
        ),
    };
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(Arc::new(
            rustls::sign::CertifiedKey::from_der(
                pem::load_certificates(cert)?,
                pem::load_private_key(key)?,
                &provider,
            )
            .map_err(|error| {
                anyhow::anyhow!(
                    "{} and {} do not make an identity: {error}",
                    cert.display(),
                    key.display()
                )
            })?,
        )),
        _ => None,
    };
    let code_points = match args.code_point {
        Some(extension_type) => vec![CodePoints {
            extension_type,
            ..CodePoints::DEFAULT
        }],
        None => vec![CodePoints::DEFAULT, CodePoints::experimental()],
    };
    Ok(Target {
        host,
        port: uri.port_u16().unwrap_or(443),
        path: uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned(),
        trust,
        identity,
        code_points,
    })
}
