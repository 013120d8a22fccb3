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
        if report.could_not_connect_for_an_unknown_issuer() {
            println!("{}", unknown_issuer_hint(&args));
        }
    }
    ExitCode::from(report.verdict.exit_code())
}

/// What to do about a server whose chain leads to no trusted CA: give its
/// CA, or, when one was given, the right one.
fn unknown_issuer_hint(args: &Args) -> &'static str {
    if args.cas.is_empty() {
        "(a server with a certificate from a private CA: give that CA with --ca FILE)"
    } else {
        "(the server's chain leads to none of the CAs given with --ca: give the CA that issued the server's certificate)"
    }
}

/// The URL's port, 443 if it names none; a port that is not one (`:99999`,
/// `:8443x`, `:0`, a bare `:`) is an error, not a probe of port 443.
fn port(uri: &http::Uri, url: &str) -> anyhow::Result<u16> {
    let Some(authority) = uri.authority() else {
        return Ok(443);
    };
    let host_and_port = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, rest)| rest);
    // After an IPv6 literal's `]`, whose own colons are not a port's.
    let after_host = match host_and_port.rfind(']') {
        Some(end) => {
            let rest = &host_and_port[end + 1..];
            if !rest.is_empty() && !rest.starts_with(':') {
                anyhow::bail!("{url}: {rest:?} after the address is not a port");
            }
            rest
        }
        None => host_and_port,
    };
    let Some((_, port)) = after_host.rsplit_once(':') else {
        return Ok(443);
    };
    Some(port)
        .filter(|port| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|port| port.parse::<u16>().ok())
        .filter(|port| *port != 0)
        .ok_or_else(|| anyhow::anyhow!("{url}: {port:?} is not a port (1 to 65535)"))
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
        if args.cert.is_some() {
            eprintln!(
                "rca-probe: warning: --insecure-skip-server-verification with --cert: the bot certificate goes to whatever server answers, unverified"
            );
        }
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
    let mut target = Target::new(host, port(&uri, &args.url)?, trust);
    if let Some(extension_type) = args.code_point {
        target.code_points = vec![CodePoints {
            extension_type,
            ..CodePoints::DEFAULT
        }];
    }
    uri.path_and_query()
        .map_or("/", |pq| pq.as_str())
        .clone_into(&mut target.path);
    target.identity = identity;
    target.timeout = std::time::Duration::from_secs(args.timeout_secs);
    Ok(target)
}
