//! `rca-connect`: a local forward proxy that gives any HTTP client the
//! request_client_auth TLS flag. See the crate README and
//! docs/bot-authors.md.

// clap turns these doc comments into `--help`, where backticks would show.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use rca_tools::common::admin::{serve_admin, Readiness};
use rca_tools::common::json_lines;
use rca_tools::common::process::{
    hangups, init_logging, notify_ready, notify_stopping, on_each_signal,
};
use rca_tools::common::roots::{remove_ca, server_roots, RootSource};
use rca_tools::connect::cli::{Args, Command};
use rca_tools::connect::front::{Front, FrontLimits, Mode};
use rca_tools::connect::identity::BotIdentity;
use rca_tools::connect::local_ca::{self, LocalCa};
use rca_tools::connect::proxy_auth::ProxyCredentials;
use rca_tools::connect::relay::{Relay, RelayTimeouts};
use rca_tools::connect::upstream::{FlagConnector, HostPattern, UpstreamSettings};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The runtime: one thread, or a worker per core (or `threads`).
fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(threads) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    }
}

fn state_dir(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.state_dir {
        return Ok(dir.clone());
    }
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(state).join("rca-connect"));
    }
    let home = std::env::var_os("HOME")
        .filter(|dir| !dir.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("neither XDG_STATE_HOME nor HOME is set: give --state-dir")
        })?;
    Ok(PathBuf::from(home).join(".local/state/rca-connect"))
}

/// Where the local CA is: `--local-ca-cert` and `--local-ca-key`, or the
/// state directory (made there if it is not yet).
#[derive(Clone, Debug)]
enum LocalCaSource {
    Files(PathBuf, PathBuf),
    StateDir(PathBuf),
}

impl LocalCaSource {
    fn of(args: &Args) -> anyhow::Result<Self> {
        Ok(match (&args.local_ca_cert, &args.local_ca_key) {
            (Some(cert), Some(key)) => Self::Files(cert.clone(), key.clone()),
            (None, None) => Self::StateDir(state_dir(args)?),
            // clap does not check `requires` for a global option given
            // before a subcommand (`--local-ca-cert X ca`).
            (Some(_), None) => anyhow::bail!("--local-ca-cert needs --local-ca-key too"),
            (None, Some(_)) => anyhow::bail!("--local-ca-key needs --local-ca-cert too"),
        })
    }

    fn load(&self) -> anyhow::Result<LocalCa> {
        Ok(match self {
            Self::Files(cert, key) => LocalCa::from_files(cert, key)?,
            Self::StateDir(dir) => LocalCa::in_state_dir(dir)?,
        })
    }

    /// As [`LocalCaSource::load`], but never makes a CA: on SIGHUP, files
    /// gone from the state directory are an error, not a new CA that no
    /// client trusts.
    fn reload(&self) -> anyhow::Result<LocalCa> {
        Ok(match self {
            Self::Files(cert, key) => LocalCa::from_files(cert, key)?,
            Self::StateDir(dir) => LocalCa::from_files(
                &dir.join(local_ca::CA_CERT_FILE),
                &dir.join(local_ca::CA_KEY_FILE),
            )?,
        })
    }
}

fn local_ca(args: &Args) -> anyhow::Result<LocalCa> {
    LocalCaSource::of(args)?.load()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(clash) = args.address_clash() {
        eprintln!("rca-connect: {clash}");
        return ExitCode::from(2);
    }
    init_logging("info");
    rca_tools::common::process::raise_open_file_limit();
    if let Some(Command::Ca) = args.command {
        return match ca_certificate(&args) {
            Ok(path) => {
                print_trust_help(&path, args.listen);
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("rca-connect: local CA: {error:#}");
                ExitCode::from(2)
            }
        };
    }
    let ca = match local_ca(&args) {
        Ok(ca) => Arc::new(ca),
        Err(error) => {
            eprintln!("rca-connect: local CA: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime(args.threads) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rca-connect: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let ran = runtime.block_on(run(args, ca));
    runtime.shutdown_timeout(Duration::from_secs(1));
    let _ = json_lines::flush_within(Duration::from_secs(2));
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rca-connect: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args, ca: Arc<LocalCa>) -> anyhow::Result<()> {
    let (Some(cert), Some(key)) = (args.cert.clone(), args.key.clone()) else {
        anyhow::bail!("--cert and --key are needed");
    };
    let identity = BotIdentity::from_pem_files(&cert, &key)?;
    let connector = connector(&args, &identity, &ca)?;
    let relay = Relay::new(
        connector.clone(),
        (!args.no_outcome_header).then(|| args.outcome_header.clone()),
        RelayTimeouts {
            response: Duration::from_secs(args.response_timeout_secs),
            request_body: Duration::from_secs(args.body_timeout_secs),
            response_body: Duration::from_secs(args.read_timeout_secs),
        },
        (
            Duration::from_secs(args.idle_timeout_secs),
            args.max_idle_per_host,
        ),
    );
    let limits = front_limits(&args);
    let needed = args
        .max_connections
        .saturating_add(args.max_upstream_connections.unwrap_or(0))
        .saturating_add(64);
    if let Some(shortfall) = rca_tools::common::process::open_file_shortfall(
        needed,
        "--max-connections and --max-upstream-connections",
    ) {
        log::warn!("{shortfall}");
    }
    // The signal handlers are in place before any port opens: from then on
    // a SIGHUP reloads and a SIGTERM drains, never the default kill.
    let hangups = hangups();
    let signal = rustls_req_client_auth::shutdown_signal();
    let readiness = Readiness::new();
    if let Some(address) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| {
                anyhow::anyhow!("--metrics-listen: cannot listen on {address}: {error}")
            })?;
        let address = listener.local_addr()?;
        log::info!("metrics on http://{address}/metrics, readiness on http://{address}/ready");
        tokio::spawn(serve_admin(
            listener,
            connector.metrics(),
            readiness.clone(),
        ));
    }
    let front = Arc::new(Front::new(Arc::clone(&ca), relay, limits));
    let credentials = proxy_credentials(args.proxy_auth_file.as_deref())?;
    if credentials.is_some() && !args.routes.is_empty() {
        log::warn!(
            "--proxy-auth-file covers the proxy port only: every local user who can connect to a --route acts with the bot's identity"
        );
    }
    front.require_proxy_credentials(credentials);
    let mut listeners = vec![(args.listen, Mode::Proxy)];
    for (listen, scheme, authority) in &args.routes {
        listeners.push((*listen, Mode::Route(scheme.clone(), authority.clone())));
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut served = tokio::task::JoinSet::new();
    for (listen, mode) in listeners {
        let listener = rca_tools::common::process::listen(listen, 1024)
            .map_err(|error| anyhow::anyhow!("cannot listen on {listen}: {error}"))?;
        let address = listener.local_addr()?;
        say_where_it_listens(&args, address, &mode, (&identity, &ca));
        let mut stopped = stopped.clone();
        served.spawn(Arc::clone(&front).serve(listener, mode, async move {
            let _ = stopped.wait_for(|stopped| *stopped).await;
        }));
    }
    let reloaded = Reloaded {
        cert,
        key,
        roots: args.roots,
        cas: args.cas.clone(),
        local_ca: LocalCaSource::of(&args)?,
        proxy_auth_file: args.proxy_auth_file.clone(),
    };
    tokio::spawn(reload_on_hangup(
        hangups,
        connector,
        Arc::clone(&front),
        reloaded,
    ));
    // Every listener is open: a `Type=notify` unit has started.
    notify_ready();
    signal.await;
    readiness.stopping();
    notify_stopping();
    log::info!(
        "stopping: no new connections; waiting for requests in flight (again to stop at once)"
    );
    // Listening for the second signal from here on (the handlers are set
    // up when `shutdown_signal` is called, not when the task first runs).
    tokio::spawn(stop_at_once_on(rustls_req_client_auth::shutdown_signal()));
    let _ = stop.send(true);
    while served.join_next().await.is_some() {}
    log::info!("stopped");
    Ok(())
}

/// The limits on clients the options set.
fn front_limits(args: &Args) -> FrontLimits {
    FrontLimits {
        max_connections: args.max_connections,
        send_timeout: Duration::from_secs(args.send_timeout_secs),
        http2_idle_timeout: Duration::from_secs(args.client_idle_timeout_secs),
        ..FrontLimits::default()
    }
}

/// A second Ctrl-C (or SIGTERM), `second`, does not wait for the drain,
/// as a user pressing it twice expects.
async fn stop_at_once_on(second: impl std::future::Future<Output = ()>) {
    second.await;
    log::warn!("stopped at once, by a second signal: requests in flight were cut off");
    let _ = json_lines::flush_within(Duration::from_millis(500));
    std::process::exit(130);
}

/// Where the identity goes, for the start line.
fn identity_destination(identity_hosts: &[String]) -> String {
    if identity_hosts.is_empty() {
        "every host that acknowledges the flag".to_owned()
    } else {
        identity_hosts.join(", ")
    }
}

/// The upstream connector: the bot identity, the server roots (`--roots`
/// and `--ca`, never the local CA), the identity allowlist.
fn connector(args: &Args, identity: &BotIdentity, ca: &LocalCa) -> anyhow::Result<FlagConnector> {
    let server_roots = roots_without(args.roots, &args.cas, ca)?;
    let identity_hosts = if args.identity_hosts.is_empty() {
        None
    } else {
        let patterns = args
            .identity_hosts
            .iter()
            .map(|pattern| HostPattern::parse(pattern))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| anyhow::anyhow!("--identity-host: {why}"))?;
        Some(patterns)
    };
    FlagConnector::new(
        identity,
        UpstreamSettings {
            roots: server_roots,
            identity_hosts,
            connect_timeout: Duration::from_secs(args.connect_timeout_secs),
            max_connections: args.max_upstream_connections,
        },
    )
}

/// The server roots (`--roots` and each `--ca`) without the local CA, which
/// signs what the tunnels show clients and never vouches for a server; a
/// warning says when it was among them, and an error when nothing else was.
fn roots_without(
    source: RootSource,
    cas: &[PathBuf],
    ca: &LocalCa,
) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = server_roots(source, cas)?;
    if remove_ca(&mut roots, ca.certificate())? == 0 {
        return Ok(roots);
    }
    let how = "--roots system reads SSL_CERT_FILE and SSL_CERT_DIR, so leave them unset for rca-connect (they are for its clients), and name no --ca with its key";
    let ca_path = ca.cert_path().display();
    if roots.is_empty() {
        anyhow::bail!(
            "the only server roots were the local CA ({ca_path}), which never vouches for a server: {how}"
        );
    }
    log::warn!(
        "the local CA ({ca_path}) was among the server roots and is left out, since it never vouches for a server: {how}"
    );
    Ok(roots)
}

/// The line that says what a listener at `address` serves, and a warning
/// when whoever reaches it off loopback acts as the bot.
fn say_where_it_listens(
    args: &Args,
    address: std::net::SocketAddr,
    mode: &Mode,
    (identity, ca): (&BotIdentity, &LocalCa),
) {
    if !address.ip().is_loopback() {
        let who = if args.proxy_auth_file.is_some() && matches!(mode, Mode::Proxy) {
            "whoever reaches it with the proxy credentials (sent in clear text) sends requests with the bot's identity"
        } else {
            "whoever reaches it sends requests with the bot's identity"
        };
        log::warn!("listening on {address}, not on loopback: {who}");
    }
    match mode {
        Mode::Proxy => log::info!(
            "proxy on http://{address} (HTTPS_PROXY=http://{}{address}); bot {} ({}), sent to {}; clients trust {}",
            if args.proxy_auth_file.is_some() { "USER:PASSWORD@" } else { "" },
            identity.cert_path().display(),
            identity.thumbprint(),
            identity_destination(&args.identity_hosts),
            ca.cert_path().display()
        ),
        Mode::Route(scheme, authority) => {
            log::info!("route http://{address} -> {scheme}://{authority}");
        }
    }
}

/// `--proxy-auth-file`, read at start, where any problem stops
/// `rca-connect` (a reload reads it with [`ProxyCredentials::reload`]).
fn proxy_credentials(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<Arc<ProxyCredentials>>> {
    Ok(path
        .map(ProxyCredentials::from_file)
        .transpose()?
        .map(Arc::new))
}

/// What SIGHUP reads again: the bot identity, the server roots, the
/// local CA and the proxy credentials.
#[derive(Clone)]
struct Reloaded {
    cert: PathBuf,
    key: PathBuf,
    roots: RootSource,
    cas: Vec<PathBuf>,
    local_ca: LocalCaSource,
    proxy_auth_file: Option<PathBuf>,
}

/// SIGHUP: read `--cert`, `--key`, the system's roots (`--roots system`),
/// each `--ca` and the local CA again; new connections and tunnels use
/// them. If any of them fails, none of them changes. The proxy credentials
/// are read on their own first and fail closed (see
/// [`ProxyCredentials::reload`]): removing one must not wait on a key
/// being rotated. The files are read on a blocking thread, not on one that
/// serves connections.
async fn reload_on_hangup(
    hangups: Option<tokio::signal::unix::Signal>,
    connector: FlagConnector,
    front: Arc<Front>,
    files: Reloaded,
) {
    on_each_signal(hangups, || {
        let (connector, front, files) = (connector.clone(), Arc::clone(&front), files.clone());
        async move {
            let reloaded = tokio::task::spawn_blocking(move || {
                if let Some(path) = &files.proxy_auth_file {
                    reload_proxy_credentials(&front, path);
                }
                let identity = BotIdentity::from_pem_files(&files.cert, &files.key)?;
                let ca = files.local_ca.reload()?;
                let roots = roots_without(files.roots, &files.cas, &ca)?;
                connector.reload(&identity, &roots)?;
                let ca_path = ca.cert_path().to_owned();
                front.replace_local_ca(Arc::new(ca));
                anyhow::Ok((files.cert, identity, ca_path, roots.len()))
            })
            .await
            .map_err(anyhow::Error::from)
            .and_then(|reloaded| reloaded);
            match reloaded {
                Ok((cert, identity, ca_path, roots)) => log::info!(
                    "reloaded the bot identity {} ({}), the local CA {} and {roots} server roots for new connections",
                    cert.display(),
                    identity.thumbprint(),
                    ca_path.display()
                ),
                Err(error) => {
                    log::error!(
                        "reload refused, keeping the running identity, roots and local CA: {error:#}"
                    );
                }
            }
        }
    })
    .await;
}

/// Reads `--proxy-auth-file` again and requires what it holds now, even
/// when it has a problem (logged): a bad line is left out, and a file that
/// is gone or holds no credential admits no one.
fn reload_proxy_credentials(front: &Front, path: &std::path::Path) {
    let (credentials, problem) = ProxyCredentials::reload(path);
    let credentials = Arc::new(credentials);
    // Applied before it is logged: a reader of the log may act on it.
    front.require_proxy_credentials(Some(Arc::clone(&credentials)));
    match problem {
        None => log::info!("reloaded {} proxy credentials from --proxy-auth-file {}", credentials.len(), path.display()),
        Some(problem) if credentials.is_empty() => log::error!(
            "{problem}: every request on the proxy port gets 407 until the file holds a user:password line and rca-connect is reloaded"
        ),
        Some(problem) => log::error!(
            "{problem}: left out; {} proxy credentials from the other lines are required",
            credentials.len()
        ),
    }
}

/// The local CA's certificate for `rca-connect ca`: read where it is,
/// without its key, so a user who may read only the certificate (the
/// packaged service's `rca-connect` group) is told too; made first, with its
/// key, where the state directory has none yet.
fn ca_certificate(args: &Args) -> anyhow::Result<PathBuf> {
    let (cert, key) = match LocalCaSource::of(args)? {
        LocalCaSource::Files(cert, key) => (cert, key),
        LocalCaSource::StateDir(dir) => {
            let cert = dir.join(local_ca::CA_CERT_FILE);
            let key = dir.join(local_ca::CA_KEY_FILE);
            match cert.try_exists() {
                Ok(true) => (cert, key),
                Ok(false) => (LocalCa::in_state_dir(&dir)?.cert_path().to_owned(), key),
                Err(error) => anyhow::bail!(
                    "cannot read {}: {error} (the packaged service's local CA is for the rca-connect group: join it, then log in again)",
                    cert.display()
                ),
            }
        }
    };
    let chain = rustls_req_client_auth::pem::load_certificates(&cert)?;
    // The key may be out of this user's reach (the service's group reads
    // only the certificate), but a key that is not there at all means the
    // proxy will not start with this CA: say so now, not at its start.
    if key.try_exists().is_ok_and(|exists| !exists) {
        log::warn!(
            "{} has no key beside it ({} is missing): rca-connect will not start with this CA until the key is back, or both files are removed so that it makes a new CA (which clients must then trust instead)",
            cert.display(),
            key.display()
        );
    }
    // As loading the whole CA warns.
    if let Some(warning) = chain.first().and_then(local_ca::expiry_warning) {
        log::warn!("the local CA certificate {}: {warning}", cert.display());
    }
    Ok(cert)
}

fn print_trust_help(path: &std::path::Path, listen: std::net::SocketAddr) {
    let path = path.display();
    println!(
        "The local CA certificate: {path}

Clients must trust it for the tunnels rca-connect ends (the real server is
verified by rca-connect itself). With rca-connect on {listen}:

  curl:    curl --proxy http://{listen} --cacert {path} https://example.com/
  Python:  export HTTPS_PROXY=http://{listen} REQUESTS_CA_BUNDLE={path} SSL_CERT_FILE={path}
           (requests reads REQUESTS_CA_BUNDLE, httpx and aiohttp SSL_CERT_FILE)
  Go:      export HTTPS_PROXY=http://{listen} SSL_CERT_FILE={path}
           (net/http's ProxyFromEnvironment; crypto/x509 reads SSL_CERT_FILE on Linux)
  Node:    export HTTPS_PROXY=http://{listen} NODE_EXTRA_CA_CERTS={path}
           (with an agent that reads HTTPS_PROXY, such as undici's EnvHttpProxyAgent)

The proxy's URL is http://, not https://: clients speak plain HTTP to it,
and TLS to the site inside the tunnel. Set these in the clients' environment,
not rca-connect's: its --roots system would read SSL_CERT_FILE too (it never
trusts the local CA for a server, and says so).

Trust it only in the bot's own environment: whoever holds its key can
impersonate any site to that client. Keep its key readable by its owner only."
    );
}
