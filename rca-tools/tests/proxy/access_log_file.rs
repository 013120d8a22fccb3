//! `log.access` naming a file: the access log's lines are appended there
//! (not to standard output), and after logrotate renames the file, SIGUSR1
//! (as nginx takes it) or SIGHUP reopens it by its name.

use crate::support::*;

/// Starts the proxy with `config`, standard output in `stdout` and the
/// diagnostics in `diagnostics`.
fn start(config: &Path, port: u16, stdout: &Path, diagnostics: &Path) -> Proxy {
    let mut command = Command::new(PROXY);
    command
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(stdout).expect("stdout file"))
        .stderr(std::fs::File::create(diagnostics).expect("diagnostics file"));
    Proxy::spawn(command, config, port)
}

/// The paths of the JSON lines in `file`, once it has `count` of them.
async fn logged_paths(file: &Path, count: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.lines().count() >= count {
            return json_lines(&text)
                .iter()
                .map(|line| line["path"].as_str().unwrap_or_default().to_owned())
                .collect();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} has not {count} lines: {text}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_access_log_file_is_reopened_after_rotation() {
    use std::os::unix::fs::PermissionsExt as _;
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        // Relative to the configuration file's directory.
        let config = files.config(port, upstream, "[log]\naccess = \"access-file.log\"\n");
        let log = files.path("access-file.log");
        let _ = std::fs::remove_file(&log);
        let (stdout, diagnostics) = (files.path("stdout.txt"), files.path("diagnostics.txt"));
        let mut proxy = start(&config, port, &stdout, &diagnostics);
        let person = browser(pki, true);
        let bot = bot_client_for(pki, &pki.bot);

        assert_eq!(get_status(&person, &proxy.url("/one")).await, 200);
        assert_eq!(get_status(&bot, &proxy.url("/api/crawl")).await, 200);
        assert_eq!(logged_paths(&log, 2).await, ["/one", "/api/crawl"]);
        let mode = std::fs::metadata(&log)
            .expect("log file")
            .permissions()
            .mode();
        // 0640 less the umask: no more than owner and group may read.
        assert_eq!(mode & 0o137, 0, "{mode:o}");

        // logrotate's way: rename, then signal (`postrotate`).
        for (signal, rotated, path) in [
            ("USR1", "access-file.log.1", "/two"),
            ("HUP", "access-file.log.2", "/three"),
        ] {
            std::fs::rename(&log, files.path(rotated)).expect("rotate");
            proxy.signal(signal);
            // The proxy makes the file again when it reopens the name.
            let started = Instant::now();
            while !log.exists() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "not reopened on {signal}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Later lines go to the new file; the old one is left as it was.
            assert_eq!(get_status(&person, &proxy.url(path)).await, 200);
            assert_eq!(logged_paths(&log, 1).await, [path]);
        }
        assert_eq!(
            logged_paths(&files.path("access-file.log.1"), 2).await,
            ["/one", "/api/crawl"]
        );
        assert_eq!(
            logged_paths(&files.path("access-file.log.2"), 1).await,
            ["/two"]
        );

        // Each reopening said so (the line follows the file's making).
        let started = Instant::now();
        loop {
            let said = std::fs::read_to_string(&diagnostics).expect("diagnostics");
            if said.matches("access log: reopened").count() == 2 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{said}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proxy.signal("TERM");
        assert!(proxy.wait().success());
        assert_eq!(logged_paths(&log, 1).await, ["/three"]);
        let printed = std::fs::read_to_string(&stdout).expect("stdout");
        assert!(
            printed.is_empty(),
            "access lines on standard output: {printed}"
        );
    });
}

/// A name that cannot be opened again keeps the file opened before, and
/// says so.
#[test]
fn a_failed_reopen_keeps_the_file_opened_before() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let dir = files.path("logs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("log directory");
        let log = dir.join("access.log");
        let config = files.config(port, upstream, "[log]\naccess = \"logs/access.log\"\n");
        let (stdout, diagnostics) = (files.path("stdout-2.txt"), files.path("diagnostics-2.txt"));
        let proxy = start(&config, port, &stdout, &diagnostics);
        let person = browser(pki, true);
        assert_eq!(get_status(&person, &proxy.url("/before")).await, 200);
        assert_eq!(logged_paths(&log, 1).await, ["/before"]);

        // Renamed, and a directory in its place: no one (root neither) can
        // open that to append to.
        std::fs::rename(&log, dir.join("access.log.1")).expect("rotate");
        std::fs::create_dir(&log).expect("a directory in the way");
        proxy.signal("USR1");
        let said = wait_for_line(&diagnostics, "cannot reopen");
        assert!(
            said.contains("lines still go to the file opened before"),
            "{said}"
        );
        assert_eq!(get_status(&person, &proxy.url("/after")).await, 200);
        assert_eq!(
            logged_paths(&dir.join("access.log.1"), 2).await,
            ["/before", "/after"]
        );
    });
}

/// `--check-config` (run as root before a start, or by hand) opens no file
/// it would have to create: root's file would then be one the service's
/// user cannot open. A missing directory is still caught (see
/// `invalid_configuration_names_the_field`).
#[test]
fn the_check_creates_no_log_file() {
    let files = Files::new(TestPki::shared());
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    let config = files.config(8443, upstream, "[log]\naccess = \"checked.log\"\n");
    let log = files.path("checked.log");
    let _ = std::fs::remove_file(&log);
    let out = check(&config);
    assert!(out.status.success(), "{out:?}");
    assert!(!log.exists(), "the check made {}", log.display());
}

/// SIGUSR1 to a proxy logging to standard output (logrotate's recipe run
/// while no file is configured) changes nothing: it does not kill it.
#[test]
fn sigusr1_without_a_log_file_is_harmless() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let mut proxy = Proxy::start(&files.config(port, upstream, ""), port);
        let person = browser(pki, true);
        assert_eq!(get_status(&person, &proxy.url("/")).await, 200);
        proxy.signal("USR1");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            proxy.child.try_wait().expect("wait").is_none(),
            "SIGUSR1 ended it"
        );
        assert_eq!(get_status(&person, &proxy.url("/")).await, 200);
    });
}

/// A log file that takes no lines (`/dev/full`: every write fails, as on a
/// full disk) loses them, says so once on standard error, and counts them
/// in `rca_proxy_access_log_lines_lost_total`; the requests are served.
#[test]
fn lines_a_full_disk_does_not_take_are_counted_as_lost() {
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let (config, admin) = files.config_with_admin("full-disk.toml", port, upstream, &[]);
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(&config, format!("{text}[log]\naccess = \"/dev/full\"\n")).expect("config");
        let diagnostics = files.path("diagnostics-full.txt");
        let proxy = start(&config, port, &files.path("stdout-full.txt"), &diagnostics);
        let person = browser(pki, true);
        for _ in 0..3 {
            assert_eq!(get_status(&person, &proxy.url("/")).await, 200);
        }
        let said = wait_for_line(&diagnostics, "access log: cannot write to /dev/full");
        assert_eq!(said.matches("cannot write to").count(), 1, "{said}");
        let started = Instant::now();
        loop {
            let text = get_body(&person, &format!("http://127.0.0.1:{admin}/metrics")).await;
            let lost = text
                .lines()
                .find_map(|line| line.strip_prefix("rca_proxy_access_log_lines_lost_total "))
                .and_then(|value| value.trim().parse::<f64>().ok());
            if lost == Some(3.0) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{lost:?}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// The SIGHUP and SIGUSR1 handlers are in place before the configuration is
/// read: a start held up on it (here, a FIFO no one has written yet) lives
/// through both and then serves (SIGHUP then reloads, reading the file
/// again). SIGTERM still ends a start held up there.
#[test]
fn signals_during_a_start_do_not_kill_it() {
    use std::os::unix::process::ExitStatusExt as _;
    runtime().block_on(async {
        let (pki, files, upstream, port) = setup().await;
        let text = std::fs::read_to_string(files.config(port, upstream, "")).expect("config");
        let fifo = files.path("held-up.toml");
        let _ = std::fs::remove_file(&fifo);
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let mut command = Command::new(PROXY);
        command
            .arg("--config")
            .arg(&fifo)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("start rca-proxy");
        // Long enough for it to reach the FIFO's open; it waits there.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for signal in ["HUP", "USR1"] {
            let sent = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(sent.success());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            child.try_wait().expect("wait").is_none(),
            "a signal ended the start"
        );
        // Once for the start and, once it serves, once for the reload the
        // SIGHUP asked for (two writes at once would read as one file).
        let write_once = |fifo: PathBuf, text: String| {
            std::thread::spawn(move || std::fs::write(&fifo, &text).expect("write the FIFO"))
        };
        write_once(fifo.clone(), text.clone())
            .join()
            .expect("writer");
        integration_tests::local::wait_for_port(port, "rca-proxy");
        let proxy = Proxy { child, port };
        write_once(fifo.clone(), text.clone())
            .join()
            .expect("writer");
        assert_eq!(get_status(&browser(pki, true), &proxy.url("/")).await, 200);
        drop(proxy);

        // SIGTERM while the configuration is being read: stopped.
        let mut child = command.spawn().expect("start rca-proxy");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "SIGTERM did not stop it"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status.signal(), Some(15), "{status:?}");
    });
}
