//! `rca-probe`: does this server honour the request_client_auth TLS flag?

// clap turns these doc comments into `--help`, where backticks would show.
#![allow(clippy::doc_markdown)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rca_tools::common::roots::{server_roots, RootSource};
use rca_tools::probe::cli::Args;
use rca_tools::probe::{probe, Target, Trust};
use rustls_req_client_auth::{pem, CodePoints};

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
    let trust = if args.insecure_skip_server_verification {
        Trust::SkipVerification
    } else {
        // --ca alone pins the server to those CAs, as it always has.
        let source = args.roots.unwrap_or(if args.cas.is_empty() {
            RootSource::Mozilla
        } else {
            RootSource::None
        });
        Trust::Roots(server_roots(source, &args.cas)?)
    };
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(Arc::new(
            pem::certified_key(
                cert,
                pem::load_certificates(cert)?,
                pem::load_private_key(key)?,
                &provider,
            )
            .map_err(|error| anyhow::anyhow!("{error} (the key: {})", key.display()))?,
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
