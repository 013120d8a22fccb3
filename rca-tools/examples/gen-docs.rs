//! The man pages and shell completions of `rca-proxy`, `rca-connect` and
//! `rca-probe`, made from the same command-line definitions the programs
//! parse (`src/*/cli.rs`), so they cannot drift from `--help`.
//!
//! ```sh
//! cargo run -p rca-tools --example gen-docs -- OUT_DIR
//! ```
//!
//! writes
//!
//! | path under `OUT_DIR` | installed (Debian) as |
//! |---|---|
//! | `man/rca-proxy.1`, `man/rca-proxy-demo.1`, ... | `/usr/share/man/man1/` (gzipped by cargo-deb) |
//! | `bash/rca-proxy` | `/usr/share/bash-completion/completions/` |
//! | `zsh/_rca-proxy` | `/usr/share/zsh/vendor-completions/` |
//! | `fish/rca-proxy.fish` | `/usr/share/fish/vendor_completions.d/` |
//!
//! `cargo xtask dist` runs it and packages the result.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;
use roff::{bold, italic, roman, Inline, Roff};

/// One tool: its command line and what its man page says beyond the
/// options clap knows of.
struct Tool {
    command: clap::Command,
    /// The NAME line (the doc comment, whole, stays the DESCRIPTION).
    about: &'static str,
    /// Extra sections, `(heading, paragraphs)`, after the generated ones.
    sections: Sections,
}

/// Extra man page sections, `(heading, paragraphs)`.
type Sections = &'static [(&'static str, &'static [Paragraph])];

/// A paragraph of an extra section: a tagged one (`.TP`) or plain text.
enum Paragraph {
    Tagged(&'static str, &'static str),
    Text(&'static str),
}

use Paragraph::{Tagged, Text};

const SEE_ALSO_README: Paragraph = Text(
    "/usr/share/doc/rca-tools/README.md (every configuration field, reloading, \
     revocation, logs and metrics), /usr/share/doc/rca-tools/bot-authors.md, \
     /usr/share/doc/rca-tools/SPECIFICATION.md (the protocol's rules)",
);

/// `rca-proxy`: the packaged service's files, its signals, output and exit status.
const PROXY_SECTIONS: Sections = &[
    (
        "FILES",
        &[
            Tagged(
                "/etc/rca-proxy/proxy.toml",
                "The configuration the packaged service runs with. Relative \
                             paths in it are resolved against its own directory.",
            ),
            Tagged(
                "/usr/lib/systemd/system/rca-proxy.service",
                "The systemd unit: runs as the rca-proxy user with only \
                             CAP_NET_BIND_SERVICE, checks the configuration before each start.",
            ),
            Tagged(
                "/var/log/rca-proxy",
                "The one directory the packaged service may write to: for the access \
                             log, when log.access names a file there.",
            ),
            Tagged(
                "/etc/logrotate.d/rca-proxy",
                "Rotates /var/log/rca-proxy/*.log daily, then sends SIGUSR1.",
            ),
        ],
    ),
    (
        "SIGNALS",
        &[
            Tagged(
                "SIGHUP",
                "Read the configuration file's [tls] section again and swap in \
                             the certificate, key, bot CA, bot CRLs, deny list, partner CA and \
                             ticket keys; on any error keep the running ones. Other settings \
                             take a restart; a warning names each one that changed \
                             (systemctl reload rca-proxy sends SIGHUP). Reopen the access log \
                             file, as SIGUSR1 does.",
            ),
            Tagged(
                "SIGUSR1",
                "Reopen the access log file (log.access) by its name, after \
                             logrotate renamed it; on failure keep writing to the old one.",
            ),
            Tagged(
                "SIGTERM, SIGINT",
                "Say 503 on GET /ready (admin.listen); during \
                             limits.shutdown_delay_secs (0 by default; a second signal cuts it \
                             short) serve on, closing each connection once it has served a \
                             request (HTTP/2: GOAWAY); then stop accepting, let requests in \
                             flight finish for limits.shutdown_grace_secs, and exit.",
            ),
        ],
    ),
    (
        "OUTPUT",
        &[Text(
            "One JSON line per request on standard output (the access log), or in \
                         the file log.access names; diagnostics on standard error, at the \
                         level RUST_LOG sets (default info).",
        )],
    ),
    (
        "EXIT STATUS",
        &[
            Tagged(
                "0",
                "Stopped on a signal, or --check-config found the configuration valid.",
            ),
            Tagged(
                "1",
                "A failure while running (the port could not be bound, say).",
            ),
            Tagged(
                "2",
                "The configuration, or a file it names, is invalid; or a usage error.",
            ),
        ],
    ),
    (
        "SEE ALSO",
        &[
            Text("rca-connect(1), rca-probe(1), systemctl(1), journalctl(1)"),
            SEE_ALSO_README,
        ],
    ),
];

/// `rca-connect`: the packaged service's files, its signals and environment.
const CONNECT_SECTIONS: Sections = &[
    (
        "FILES",
        &[
            Tagged(
                "/etc/default/rca-connect",
                "RCA_CONNECT_OPTIONS, the options the packaged service runs with \
                 (the bot's --cert and --key, in /etc/rca-connect).",
            ),
            Tagged(
                "/usr/lib/systemd/system/rca-connect.service",
                "The systemd unit (not enabled on install): runs as the rca-connect \
                 user with no capabilities and --state-dir /var/lib/rca-connect.",
            ),
            Tagged(
                "/var/lib/rca-connect/ca.pem",
                "The packaged service's local CA certificate, readable by the \
                 rca-connect group: the clients of its users trust it.",
            ),
        ],
    ),
    (
        "SIGNALS",
        &[
            Tagged(
                "SIGHUP",
                "Read --cert, --key, the system roots, each --ca and the local CA again, \
                 for new connections and tunnels (if any fails, nothing changes).",
            ),
            Tagged("SIGTERM, SIGINT", "Stop gracefully."),
        ],
    ),
    (
        "ENVIRONMENT",
        &[
            Tagged(
                "XDG_STATE_HOME",
                "Where the local CA is kept without --state-dir.",
            ),
            Tagged(
                "RUST_LOG",
                "The level of the diagnostics on standard error.",
            ),
        ],
    ),
    (
        "SEE ALSO",
        &[Text("rca-proxy(1), rca-probe(1)"), SEE_ALSO_README],
    ),
];

/// `rca-probe` (its exit codes are in its description already).
const PROBE_SECTIONS: Sections = &[(
    "SEE ALSO",
    &[Text("rca-proxy(1), rca-connect(1)"), SEE_ALSO_README],
)];

fn tools() -> [Tool; 3] {
    [
        Tool {
            command: rca_tools::proxy::cli::Args::command(),
            about: "TLS-terminating reverse proxy that authenticates bots by the request_client_auth TLS flag",
            sections: PROXY_SECTIONS,
        },
        Tool {
            command: rca_tools::connect::cli::Args::command(),
            about: "local forward proxy that gives bots in any language the request_client_auth TLS flag",
            sections: CONNECT_SECTIONS,
        },
        Tool {
            command: rca_tools::probe::cli::Args::command(),
            about: "check whether an HTTPS server honours the request_client_auth TLS flag",
            sections: PROBE_SECTIONS,
        },
    ]
}

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: gen-docs OUT_DIR")?
        .into();
    let man_dir = out.join("man");
    fs::create_dir_all(&man_dir).with_context(|| format!("cannot create {}", man_dir.display()))?;
    for tool in tools() {
        man_pages(&tool, &man_dir)?;
        completions(&tool.command, &out)?;
    }
    println!("man pages and completions in {}", out.display());
    Ok(())
}

/// The tool's page, with its extra sections, and one page per subcommand
/// (`rca-proxy-demo(1)`), as `clap_mangen` names them.
fn man_pages(tool: &Tool, dir: &Path) -> anyhow::Result<()> {
    let mut command = tool.command.clone().disable_help_subcommand(true);
    if command.get_long_about().is_none() {
        if let Some(description) = command.get_about().cloned() {
            command = command.long_about(description);
        }
    }
    command = command.about(tool.about);
    command.build();
    let name = command.get_name().to_owned();
    let source = format!("{name} {}", command.get_version().unwrap_or_default());
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| {
            let usage = synopsis(sub, &format!("{name} {}", sub.get_name()));
            sub.clone().override_usage(usage)
        })
        .collect();
    let usage = synopsis(&command, &name);
    let command = command.override_usage(usage);
    for sub in &subcommands {
        clap_mangen::Man::new(sub.clone())
            .manual("rca-tools")
            .source(&source)
            .generate_to(dir)
            .with_context(|| format!("cannot write the man page of {name} {}", sub.get_name()))?;
    }
    let man = clap_mangen::Man::new(command).manual("rca-tools");
    let path = dir.join(man.get_filename());
    let mut file = create(&path)?;
    man.render(&mut file)?;
    file.write_all(extra_sections(tool.sections).to_roff().as_bytes())?;
    file.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The SYNOPSIS line with each option's value named
/// (`[-c|--config CONFIG]`): `clap_mangen`'s own lists the options bare
/// (`[-c|--config]`), which reads as if they took no value.
fn synopsis(command: &clap::Command, name: &str) -> String {
    let mut words = vec![name.to_owned()];
    let shown: Vec<&clap::Arg> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .collect();
    for arg in shown.iter().filter(|arg| !arg.is_positional()) {
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(short), Some(long)) => format!("-{short}|--{long}"),
            (Some(short), None) => format!("-{short}"),
            (None, Some(long)) => format!("--{long}"),
            (None, None) => continue,
        };
        let takes_value = arg.get_action().takes_values();
        let value = match arg.get_value_names() {
            Some(names) if takes_value => format!(" {}", names.join(" ")),
            None if takes_value => format!(" {}", arg.get_id().as_str().to_uppercase()),
            _ => String::new(),
        };
        let repeats = matches!(
            arg.get_action(),
            clap::ArgAction::Append | clap::ArgAction::Count
        );
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        let more = if repeats { "..." } else { "" };
        words.push(format!("{open}{flag}{value}{close}{more}"));
    }
    for arg in shown.iter().filter(|arg| arg.is_positional()) {
        let value = arg.get_value_names().map_or_else(
            || arg.get_id().as_str().to_uppercase(),
            |names| names.join(" "),
        );
        words.push(if arg.is_required_set() {
            format!("<{value}>")
        } else {
            format!("[{value}]")
        });
    }
    if command.get_subcommands().any(|sub| !sub.is_hide_set()) {
        words.push("[COMMAND]".to_owned());
    }
    words.join(" ")
}

fn extra_sections(sections: &[(&str, &[Paragraph])]) -> Roff {
    let mut roff = Roff::new();
    for (heading, paragraphs) in sections {
        roff.control("SH", [*heading]);
        for paragraph in *paragraphs {
            match paragraph {
                Tagged(tag, text) => {
                    roff.control("TP", []);
                    roff.text([bold(*tag)]);
                    roff.text(inlines(text));
                }
                Text(text) => {
                    roff.control("PP", []);
                    roff.text(inlines(text));
                }
            }
        }
    }
    roff
}

/// Other pages (`rca-probe(1)`) in italics, the rest in roman.
fn inlines(text: &str) -> Vec<Inline> {
    text.split_inclusive(", ")
        .map(|part| {
            let bare = part.trim_end_matches(", ");
            if bare.ends_with("(1)") && !bare.contains(' ') {
                italic(part)
            } else {
                roman(part)
            }
        })
        .collect()
}

/// bash, zsh and fish completions, each under the name its shell looks
/// for (bash: the command's name; zsh: `_` and the name; fish: `.fish`).
fn completions(command: &clap::Command, out: &Path) -> anyhow::Result<()> {
    let name = command.get_name().to_owned();
    for (shell, dir, file) in [
        (Shell::Bash, "bash", name.clone()),
        (Shell::Zsh, "zsh", format!("_{name}")),
        (Shell::Fish, "fish", format!("{name}.fish")),
    ] {
        let dir = out.join(dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(file);
        let mut writer = create(&path)?;
        clap_complete::generate(shell, &mut command.clone(), &name, &mut writer);
        writer
            .flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::new(file))
}
