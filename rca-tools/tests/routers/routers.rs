//! The real routers as processes: started from what `install.sh` put in
//! `RCA_ROUTERS_DIR`, each on a free loopback port, waited for until it
//! answers, and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::free_port;

/// Where `install.sh` put the routers.
pub(crate) struct Installed(PathBuf);

/// The install folder, which must hold `ready` (written last by
/// `install.sh`).
pub(crate) fn installed() -> Installed {
    let dir = std::env::var_os("RCA_ROUTERS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/routers"),
        PathBuf::from,
    );
    assert!(
        dir.join("ready").is_file(),
        "no routers in {}: run rca-tools/tests/routers/install.sh {0}",
        dir.display()
    );
    Installed(dir)
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Router {
    Flask,
    Starlette,
    Express,
    NodeUrl,
    Nginx,
    NginxH2c,
    NginxUri,
    Bottle,
    Php,
    CherryPy,
    Apache,
}

impl Router {
    pub(crate) const ALL: [Self; 11] = [
        Self::Flask,
        Self::Starlette,
        Self::Express,
        Self::NodeUrl,
        Self::Nginx,
        Self::NginxH2c,
        Self::NginxUri,
        Self::Bottle,
        Self::Php,
        Self::CherryPy,
        Self::Apache,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Flask => "flask",
            Self::Starlette => "starlette",
            Self::Express => "express",
            Self::NodeUrl => "node-url",
            Self::Nginx => "nginx",
            Self::NginxH2c => "nginx-h2c",
            Self::NginxUri => "nginx-uri",
            Self::Bottle => "bottle",
            Self::Php => "php",
            Self::CherryPy => "cherrypy",
            Self::Apache => "apache",
        }
    }

    /// Whether it speaks HTTP/2 by prior knowledge only.
    pub(crate) fn h2c(self) -> bool {
        matches!(self, Self::NginxH2c)
    }

    /// Starts it and waits until its port takes connections.
    pub(crate) fn start(self, installed: &Installed) -> Running {
        let apps = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/routers");
        let dir = &installed.0;
        let port = free_port();
        let scratch = tempfile::tempdir().expect("scratch folder");
        let mut command = match self {
            Self::Flask | Self::Bottle => {
                let mut command = Command::new(dir.join("venv/bin/gunicorn"));
                command.args([
                    "-w",
                    "1",
                    "-b",
                    &format!("127.0.0.1:{port}"),
                    if matches!(self, Self::Flask) {
                        "flask_app:app"
                    } else {
                        "bottle_app:app"
                    },
                ]);
                command
            }
            Self::CherryPy => {
                let mut command = Command::new(dir.join("venv/bin/python"));
                command.arg("cherrypy_app.py");
                command
            }
            Self::Apache => apache(dir, &apps, port, scratch.path()),
            Self::Php => {
                let mut command = Command::new(dir.join("bin/php"));
                command
                    .args(["-S", &format!("127.0.0.1:{port}"), "-t", "php"])
                    // Its access log goes to standard error.
                    .stderr(Stdio::null());
                command
            }
            Self::Starlette => {
                let mut command = Command::new(dir.join("venv/bin/uvicorn"));
                command.args([
                    "starlette_app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--log-level",
                    "warning",
                ]);
                command
            }
            Self::Express | Self::NodeUrl => {
                let mut command = Command::new(dir.join("bin/node"));
                command
                    .arg(if matches!(self, Self::Express) {
                        "express_app.js"
                    } else {
                        "node_url_app.js"
                    })
                    .env("NODE_PATH", dir.join("node/node_modules"));
                command
            }
            Self::Nginx | Self::NginxH2c | Self::NginxUri => {
                let template = match self {
                    Self::Nginx => "nginx.conf.template",
                    Self::NginxH2c => "nginx-h2c.conf.template",
                    _ => "nginx-uri.conf.template",
                };
                let config = std::fs::read_to_string(apps.join(template))
                    .expect("nginx template")
                    .replace("@PORT@", &port.to_string())
                    .replace("@PREFIX@", &scratch.path().display().to_string());
                let rendered = scratch.path().join("nginx.conf");
                std::fs::write(&rendered, config).expect("nginx.conf");
                let mut command = Command::new(dir.join("bin/nginx"));
                command
                    .arg("-p")
                    .arg(scratch.path())
                    .args(["-e", "stderr", "-c"])
                    .arg(&rendered)
                    .args(["-g", "daemon off;"]);
                command
            }
        };
        let child = command
            .current_dir(&apps)
            .env("PORT", port.to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", self.name()));
        Running {
            child,
            port,
            _scratch: scratch,
        }
        .listening(self.name())
    }
}

/// Apache httpd in the foreground on `port`, from `apache/httpd.conf.template`
/// with its scripts in `prefix/www`: `index.php` (the PHP front controller),
/// `site.wsgi` and `app.py`. The folders are opened to all, since Apache
/// started as root serves as `nobody`.
fn apache(dir: &Path, apps: &Path, port: u16, prefix: &Path) -> Command {
    use std::os::unix::fs::PermissionsExt as _;
    let www = prefix.join("www");
    std::fs::create_dir(&www).expect("www");
    for (from, to) in [
        ("php/index.php", "index.php"),
        ("apache/site.wsgi", "site.wsgi"),
        ("apache/app.py", "app.py"),
    ] {
        std::fs::copy(apps.join(from), www.join(to)).expect("script");
    }
    for (path, mode) in [
        (prefix, 0o755),
        (&*www, 0o755),
        (&*www.join("app.py"), 0o755),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("mode");
    }
    let config = std::fs::read_to_string(apps.join("apache/httpd.conf.template"))
        .expect("httpd template")
        .replace("@PORT@", &port.to_string())
        .replace("@PREFIX@", &prefix.display().to_string());
    let rendered = prefix.join("httpd.conf");
    std::fs::write(&rendered, config).expect("httpd.conf");
    let mut command = Command::new(dir.join("bin/apache2"));
    command.arg("-DFOREGROUND").arg("-f").arg(&rendered);
    // A process group of its own: stopping, Apache signals its whole group,
    // which would otherwise be this test's (and cargo's).
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
}

/// lighttpd running one CGI program, `/env.cgi`, which answers with the
/// environment lighttpd gave it: each request header as `HTTP_<NAME>`, with
/// every character of the name but a letter or a digit turned into `_`.
pub(crate) fn start_cgi(installed: &Installed) -> Running {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let port = free_port();
    let www = scratch.path().join("www");
    std::fs::create_dir(&www).expect("www");
    let program = www.join("env.cgi");
    std::fs::write(
        &program,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec env\n",
    )
    .expect("env.cgi");
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("env.cgi mode");
    let config = scratch.path().join("lighttpd.conf");
    std::fs::write(
        &config,
        format!(
            "server.document-root = \"{www}\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n\
             server.errorlog = \"{errors}\"\nserver.modules = (\"mod_cgi\")\ncgi.assign = (\".cgi\" => \"\")\n",
            www = www.display(),
            errors = scratch.path().join("error.log").display(),
        ),
    )
    .expect("lighttpd.conf");
    let child = Command::new(installed.0.join("bin/lighttpd"))
        .arg("-D")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("start lighttpd: {error}"));
    Running {
        child,
        port,
        _scratch: scratch,
    }
    .listening("lighttpd")
}

/// A router's process; killed when dropped.
pub(crate) struct Running {
    child: Child,
    port: u16,
    _scratch: tempfile::TempDir,
}

impl Running {
    pub(crate) fn address(&self) -> std::net::SocketAddr {
        (std::net::Ipv4Addr::LOCALHOST, self.port).into()
    }

    /// Itself, once its port takes connections.
    fn listening(self, name: &str) -> Self {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{name} did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        self
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM first, so gunicorn and nginx take their workers with them.
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
