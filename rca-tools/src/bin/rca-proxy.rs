//! `rca-proxy`: people and bots on one HTTPS port, in front of any HTTP
//! backend. See the crate README for the configuration file.

// clap turns these doc comments into `--help`, where backticks would show.
#![allow(clippy::doc_markdown)]

use std::process::ExitCode;

use clap::Parser;
use std::sync::Arc;

use rca_tools::common::admin::{serve_admin, Readiness};
use rca_tools::proxy::cli::{Args, Subcommand};
use rca_tools::proxy::config::{
    AccessLogTarget, Config, Headers, Limits, Log, Policy, Tls, Upstream,
};
use rca_tools::proxy::metrics::Metrics;
use rca_tools::proxy::service::Proxy;
use rca_tools::proxy::tls::file_changes::{changes_said, TlsFiles};
use rca_tools::proxy::tls::Front;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Subcommand::Demo) = args.command {
        rca_tools::common::process::init_logging("warn");
        return match tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(rca_tools::proxy::demo::run()))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("rca-proxy demo FAILED: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    rca_tools::common::process::init_logging("info");
    rca_tools::common::process::raise_open_file_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rca-proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // SIGHUP's and SIGUSR1's (logrotate's) handlers first, before the files
    // are read: from then on they wait for the proxy to act on them, never
    // the default kill. SIGTERM's comes once the files are read, so a start
    // stuck on one still stops on it; a configuration check needs none.
    let signals = (!args.check_config).then(|| {
        let _entered = runtime.enter();
        Signals::install()
    });
    let (config, origin) = match configuration(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("rca-proxy: {error:#}");
            return ExitCode::from(2);
        }
    };
    let metrics = Arc::new(Metrics::new());
    let counting = Arc::clone(&metrics);
    let on_flags_event = Arc::new(move |event| counting.flags_event(event));
    // Read before the load, so the first reload compares with no later
    // version of the files than the one loaded.
    let files = TlsFiles::read(&config.tls);
    let front = match Front::new(
        &config.tls,
        config.limits.handshake_timeout(),
        Some(on_flags_event),
    ) {
        Ok(front) => front,
        Err(error) => {
            eprintln!("rca-proxy: {origin}: {error:#}");
            return ExitCode::from(2);
        }
    };
    if let AccessLogTarget::File(path) = &config.log.access {
        // Checked by --check-config too, as `nginx -t` checks its logs, but
        // without creating the file: run as root, it would leave one the
        // service's user cannot open.
        let opened = if args.check_config {
            rca_tools::common::json_lines::check_file(path)
        } else {
            rca_tools::common::json_lines::to_file(path)
                .map_err(|error| format!("cannot open {} to append to: {error}", path.display()))
        };
        if let Err(error) = opened {
            eprintln!("rca-proxy: {origin}: log.access: {error}");
            return ExitCode::from(2);
        }
    }
    if args.check_config {
        // On standard error, as `nginx -t` says it: standard output is the
        // access log's (JSON lines), also under ExecStartPre and ExecReload.
        // What has lapsed is valid, and refuses clients: said, not failed.
        for lapsed in front.lapses(now_seconds(), true) {
            eprintln!("rca-proxy: {origin}: warning: {lapsed}");
        }
        if let Some(shortfall) = config.open_file_shortfall() {
            eprintln!("rca-proxy: {origin}: warning: {shortfall}");
        }
        eprintln!("rca-proxy: {origin}: the configuration is valid");
        return ExitCode::SUCCESS;
    }
    if let Some(shortfall) = config.open_file_shortfall() {
        log::warn!("{origin}: {shortfall}");
    }
    // `block_on` polls its future on this thread, not on a worker: the accept
    // loop runs in a task, so that accepting and serving a connection take no
    // wake-up across threads.
    let ran = runtime.block_on(async move {
        let signals = signals.unwrap_or_else(Signals::install);
        tokio::spawn(run(config, (front, files), args, metrics, signals))
            .await
            .unwrap_or_else(|error| Err(anyhow::anyhow!("the proxy's task failed: {error}")))
    });
    // Tasks still running log no more once the runtime is gone; then the
    // last lines are written.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if !rca_tools::common::json_lines::flush_within(std::time::Duration::from_secs(2)) {
        eprintln!("rca-proxy: the access log took no lines for 2 s; the last ones are lost");
    }
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rca-proxy: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The file, then the flags over it, validated.
fn configuration(args: &Args) -> anyhow::Result<(Config, String)> {
    let (mut config, origin) = if let Some(path) = &args.config {
        (Config::load(path)?, path.display().to_string())
    } else {
        {
            let missing = |flag: &str| anyhow::anyhow!("--{flag} is needed without --config");
            let config = Config {
                listen: args.listen.ok_or_else(|| missing("listen"))?,
                tls: Tls {
                    cert: args.cert.clone().ok_or_else(|| missing("cert"))?,
                    key: args.key.clone().ok_or_else(|| missing("key"))?,
                    bot_ca: args.bot_ca.clone().ok_or_else(|| missing("bot-ca"))?,
                    code_point: rustls_req_client_auth::CodePoints::DEFAULT.extension_type,
                    ticket_keys: None,
                    partner_ca: None,
                    ticket_lifetime_secs: 6 * 60 * 60,
                    session_resumption: true,
                    bot_crl: Vec::new(),
                    bot_deny_list: None,
                },
                upstream: Upstream::with_defaults(
                    args.upstream.clone().ok_or_else(|| missing("upstream"))?,
                ),
                headers: Headers::default(),
                policy: Policy::default(),
                limits: Limits::default(),
                admin: None,
                proxy_protocol: None,
                log: Log::default(),
            };
            (config, "command line".to_owned())
        }
    };
    apply_flags(args, &mut config);
    config.validate(&origin)?;
    Ok((config, origin))
}

/// The flags given with a configuration file, over its values (also on
/// SIGHUP, so a setting a flag gives is not taken for a changed one).
fn apply_flags(args: &Args, config: &mut Config) {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(cert) = &args.cert {
        config.tls.cert.clone_from(cert);
    }
    if let Some(key) = &args.key {
        config.tls.key.clone_from(key);
    }
    if let Some(bot_ca) = &args.bot_ca {
        config.tls.bot_ca.clone_from(bot_ca);
    }
    if let Some(upstream) = &args.upstream {
        config.upstream.url.clone_from(upstream);
    }
    config
        .policy
        .bots_only
        .extend(args.bots_only.iter().cloned());
}

/// The signals the proxy acts on besides SIGTERM and SIGINT, their handlers
/// installed.
struct Signals {
    /// SIGHUP: reload.
    hangups: Option<tokio::signal::unix::Signal>,
    /// SIGUSR1: reopen the access log.
    reopens: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers (inside the runtime).
    fn install() -> Self {
        Self {
            hangups: rca_tools::common::process::hangups(),
            reopens: rca_tools::common::process::reopen_requests(),
        }
    }
}

/// The admin listener (`/metrics`, `/ready`) on `listen`, served by a task
/// of its own.
async fn start_admin(
    listen: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Readiness,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow::anyhow!("admin.listen: cannot listen on {listen}: {error}"))?;
    let address = listener.local_addr()?;
    log::info!("metrics on http://{address}/metrics, readiness on http://{address}/ready");
    tokio::spawn(serve_admin(listener, metrics, readiness));
    Ok(())
}

/// Serves with `front`, loaded from `files` (as read just before).
async fn run(
    config: Config,
    (front, files): (Front, TlsFiles),
    args: Args,
    metrics: Arc<Metrics>,
    signals: Signals,
) -> anyhow::Result<()> {
    let Signals { hangups, reopens } = signals;
    // In place before the port opens: from then on a SIGTERM drains.
    let signal = rustls_req_client_auth::shutdown_signal();
    let listener = rca_tools::common::process::listen(config.listen, config.limits.listen_backlog)
        .map_err(|error| anyhow::anyhow!("listen: cannot listen on {}: {error}", config.listen))?;
    log::info!(
        "listening on https://{} for {}",
        listener.local_addr()?,
        config.upstream.url
    );
    metrics.set_expiries(front.expiries());
    tokio::spawn(warn_of_lapses(front.clone()));
    tokio::spawn(reload_on_hangup(
        hangups,
        (front.clone(), files),
        config.clone(),
        args,
        Arc::clone(&metrics),
    ));
    tokio::spawn(reopen_on_request(reopens, config.log.access.clone()));
    let readiness = Readiness::new();
    if let Some(admin) = &config.admin {
        start_admin(admin.listen, Arc::clone(&metrics), readiness.clone()).await?;
    }
    let grace = config.limits.shutdown_grace();
    let delay = config.limits.shutdown_delay();
    let stopping = readiness.clone();
    // Told when the delay begins: connections then close once they have
    // served a request (HTTP/2 ones get a GOAWAY), so clients go elsewhere.
    let (drain_begins, drain) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        signal.await;
        stopping.stopping();
        rca_tools::common::process::notify_stopping();
        if !delay.is_zero() {
            let _ = drain_begins.send(());
            log::info!(
                "stopping in {delay:?} (limits.shutdown_delay_secs): /ready says 503, new connections are still served, and each connection is closed once it has served a request (HTTP/2: GOAWAY); a second signal stops at once"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = rustls_req_client_auth::shutdown_signal() => {}
            }
        }
        log::info!(
            "stopping: no new connections; requests in flight get up to {grace:?} to finish"
        );
    };
    let mut proxy = Proxy::new(&config)?.still_trusted(front.still_trusted());
    if config.admin.is_some() {
        // Counted per request only where they can be read.
        proxy = proxy.metrics(Arc::clone(&metrics));
    }
    let mut serving = proxy.service().serve(listener, front.config.clone());
    if let Some(proxy_protocol) = &config.proxy_protocol {
        let networks = proxy_protocol
            .networks()
            .map_err(|message| anyhow::anyhow!("proxy_protocol.{message}"))?;
        log::info!(
            "PROXY protocol: required from {}; other connections are closed",
            proxy_protocol.from.join(", ")
        );
        serving = serving.proxy_protocol(networks);
    }
    if let Some(max) = config.limits.max_connections_per_client {
        serving = serving.max_connections_per_client(max);
    }
    // Under systemd (the packaged unit is Type=notify), started means
    // listening, with nothing left that could fail the start: the ports are
    // open (the kernel queues connections until the first accept). Without
    // NOTIFY_SOCKET nothing is sent.
    rca_tools::common::process::notify_ready();
    serving
        .on_handshake(move |outcome| metrics.handshake(outcome))
        .handshake_timeout(config.limits.handshake_timeout())
        .header_read_timeout(config.limits.header_read_timeout())
        .idle_timeout(config.limits.idle_timeout())
        .send_timeout(config.limits.send_timeout())
        .max_connections(config.limits.max_connections)
        .shutdown_grace(config.limits.shutdown_grace())
        .on_grace_ran_out(|_| rca_tools::proxy::access_log::grace_ran_out())
        .http1_max_head(config.limits.max_head_bytes)
        .http2_max_concurrent_streams(config.limits.http2_max_concurrent_streams)
        .http2_max_cancelled_requests(
            config.limits.http2_max_cancelled_requests,
            std::time::Duration::from_secs(10),
        )
        .drain_on(async move {
            // Without a delay the sender goes unused: no draining, the stop.
            if drain.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .with_graceful_shutdown(shutdown)
        .await?;
    log::info!("stopped");
    Ok(())
}

/// SIGHUP: read the configuration file again (flags still win) and swap in
/// its certificate, key, bot CA, partner CA and ticket keys; on any error
/// keep them all. A changed setting outside `[tls]` takes a restart: it is
/// named in a warning, and the running value stays. The line of a reload
/// that took names the `[tls]` files whose contents changed. The access log
/// file is reopened, as on SIGUSR1.
async fn reload_on_hangup(
    hangups: Option<tokio::signal::unix::Signal>,
    (front, mut files): (Front, TlsFiles),
    running: Config,
    args: Args,
    metrics: Arc<Metrics>,
) {
    let mut tls = running.tls.clone();
    rca_tools::common::process::on_each_signal(hangups, || {
        reopen_access_log(&running.log.access);
        if let Some(path) = &args.config {
            match Config::load(path) {
                Ok(mut config) => {
                    apply_flags(&args, &mut config);
                    let changes = running.restart_only_changes(&config);
                    if !changes.is_empty() {
                        log::warn!(
                            "reload: {} changed, which takes a restart; the running value stays: {}",
                            if changes.len() == 1 { "a setting" } else { "settings" },
                            changes.join(", ")
                        );
                    }
                    tls = config.tls;
                }
                Err(error) => {
                    log::error!("reload refused, keeping the running configuration: {error}");
                    metrics.reload(false);
                    return std::future::ready(());
                }
            }
        }
        let read = TlsFiles::read(&tls);
        let reloaded = front.reload(&tls);
        metrics.reload(reloaded.is_ok());
        match reloaded {
            Ok(lifted) => {
                metrics.set_expiries(front.expiries());
                let changed = read.changed_since(&files);
                files = read;
                log::info!(
                    "{}{}",
                    reloaded_line(&tls, &front),
                    changes_said(&changed)
                );
                for lifted in lifted {
                    if lifted.warning {
                        log::warn!("reload: {}", lifted.line);
                    } else {
                        log::info!("reload: {}", lifted.line);
                    }
                }
                for lapsed in front.lapses(now_seconds(), true) {
                    log::warn!("{lapsed}");
                }
            }
            Err(error) => {
                log::error!("reload refused, keeping the running certificates: {error:#}");
            }
        }
        std::future::ready(())
    })
    .await;
}

/// Says what of the loaded files has lapsed at start, then each thing as
/// it lapses (checked every 30 s; a reload says what it loaded lapsed).
async fn warn_of_lapses(front: Front) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        ticks.tick().await;
        for lapsed in front.lapses(now_seconds(), false) {
            log::warn!("{lapsed}");
        }
    }
}

/// Seconds since the epoch.
fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// SIGUSR1: [`reopen_access_log`].
async fn reopen_on_request(reopens: Option<tokio::signal::unix::Signal>, target: AccessLogTarget) {
    rca_tools::common::process::on_each_signal(reopens, || {
        reopen_access_log(&target);
        std::future::ready(())
    })
    .await;
}

/// Opens the access log's file again by its name (after logrotate moved
/// it), and says so; nothing for standard output. On a thread of its own:
/// it waits for a write in progress and writes out what is buffered, which
/// a stalled disk would make a runtime thread wait for.
fn reopen_access_log(target: &AccessLogTarget) {
    let AccessLogTarget::File(path) = target else {
        return;
    };
    let path = path.clone();
    tokio::task::spawn_blocking(move || match rca_tools::common::json_lines::reopen() {
        Ok(()) => log::info!("access log: reopened {}", path.display()),
        Err(error) => log::error!(
            "access log: cannot reopen {} ({error}); lines still go to the file opened before",
            path.display()
        ),
    });
}

/// The line a reload that took logs: what it read, of what is configured,
/// and which server certificate is now served (its subject and `notAfter`,
/// which an operator would otherwise look up with `openssl s_client`).
fn reloaded_line(tls: &rca_tools::proxy::config::Tls, front: &Front) -> String {
    let (revoked, denied) = front.in_force();
    let plural = |count: usize| if count == 1 { "" } else { "s" };
    let mut read = vec![
        "the certificate and key".to_owned(),
        "the bot CA".to_owned(),
    ];
    if !tls.bot_crl.is_empty() {
        read.push(format!(
            "the bot CRLs ({revoked} revoked certificate{})",
            plural(revoked)
        ));
    }
    if tls.bot_deny_list.is_some() {
        read.push(format!(
            "the bot deny list ({denied} thumbprint{})",
            plural(denied)
        ));
    }
    if tls.partner_ca.is_some() {
        read.push("the partner CA".to_owned());
    }
    if tls.ticket_keys.is_some() {
        read.push("the ticket keys".to_owned());
    }
    let served = front
        .expiries()
        .into_iter()
        .find(|expiry| expiry.file == "tls.cert")
        .map(|leaf| {
            let until = jiff::Timestamp::from_second(leaf.at)
                .map_or_else(|_| leaf.at.to_string(), |at| at.to_string());
            format!("; serving {:?}, valid until {until}", leaf.name)
        })
        .unwrap_or_default();
    format!("reloaded [tls]: {}{served}", read.join(", "))
}
