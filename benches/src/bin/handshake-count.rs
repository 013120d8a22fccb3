//! Two complements to the criterion bench, for a noisy machine:
//!
//! ```text
//! handshake-count run <vanilla|fork> <ring|aws-lc-rs> <server-auth|mtls|flag|chromium-hello> [handshakes]
//! handshake-count paired [rounds]
//! ```
//!
//! `chromium-hello` is the server's side only: a new connection answers the
//! ClientHello recorded from Chromium (`benches/fixtures/`) with its first
//! flight.
//!
//! `run` does N full handshakes of one variant and prints the mean time per
//! side. Under `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='*server_work_*'` (or `*client_work_*`) only that side's
//! rustls calls are counted; certificate generation and configuration are not.
//! `benches/count.py` runs every variant that way.
//!
//! `paired` interleaves the two crates: each round runs a block of handshakes
//! through one crate and then a block through the other (alternating which
//! goes first), and the fork/vanilla ratio is taken per round, so that load
//! changes on the machine hit both crates alike. It prints a Markdown table
//! with the geometric mean of the per-round ratios and its 95% confidence
//! interval, for every variant and side. With `--null` the "fork" column is a
//! second, separate vanilla configuration: an A/A test of the method, whose
//! ratios should straddle 1.

use std::process::ExitCode;
use std::time::Duration;

use benches::{Auth, Certs, Crate, Provider, Side, Variant, CHROMIUM_CLIENT_HELLO};

const USAGE: &str = "usage:
  handshake-count run <vanilla|fork> <ring|aws-lc-rs> <server-auth|mtls|flag|chromium-hello> [handshakes]
  handshake-count paired [rounds] [--null]";

/// Handshakes per crate in one round of `paired`.
const BLOCK: u32 = 10;

fn parse<T: Copy>(arg: Option<String>, all: &[T], label: fn(T) -> &'static str) -> Option<T> {
    let arg = arg?;
    all.iter().copied().find(|value| label(*value) == arg)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("run") => {
            let krate = parse(args.next(), &Crate::ALL, Crate::label);
            let provider = parse(args.next(), &Provider::ALL, Provider::label);
            // `flag`: the fork's flag path, and plain mTLS (its baseline) for vanilla.
            let auth_arg = args.next();
            let flag = auth_arg.as_deref() == Some("flag");
            let chromium = auth_arg.as_deref() == Some("chromium-hello");
            let auth = if flag {
                Some(Auth::Mtls)
            } else if chromium {
                Some(Auth::ServerAuth)
            } else {
                parse(auth_arg, &Auth::ALL, Auth::label)
            };
            let count = args.next().map_or(Ok(100), |n| n.parse::<u32>());
            if let (Some(krate), Some(provider), Some(auth), Ok(count), None) =
                (krate, provider, auth, count, args.next())
            {
                if chromium {
                    run_chromium_hello(krate, provider, count);
                } else {
                    run(krate, provider, auth, flag, count);
                }
                return ExitCode::SUCCESS;
            }
        }
        Some("paired") => {
            let rest: Vec<String> = args.collect();
            let null = rest.iter().any(|arg| arg == "--null");
            let mut numbers = rest.iter().filter(|arg| *arg != "--null");
            let rounds = numbers.next().map_or(Ok(200), |n| n.parse::<u32>());
            if let (Ok(rounds @ 2..), None) = (rounds, numbers.next()) {
                paired(rounds, if null { Crate::Vanilla } else { Crate::Fork });
                return ExitCode::SUCCESS;
            }
        }
        _ => {}
    }
    eprintln!("{USAGE}");
    ExitCode::FAILURE
}

fn run(krate: Crate, provider: Provider, auth: Auth, flag: bool, count: u32) {
    let certs = Certs::generate();
    let variant = match (flag, krate) {
        (true, Crate::Fork) => Variant::fork_flag_path(&certs, provider),
        _ => Variant::new(&certs, krate, provider, auth),
    };
    let mut totals = [Duration::ZERO; 2];
    for _ in 0..count {
        let times = variant.handshake();
        for (total, side) in totals.iter_mut().zip(Side::ALL) {
            *total += times.get(side);
        }
    }
    for (total, side) in totals.iter().zip(Side::ALL) {
        let mean = total.checked_div(count).unwrap_or_default();
        println!("{krate} {provider} {auth} {side}: {count} handshakes, mean {mean:?}");
    }
}

fn run_chromium_hello(krate: Crate, provider: Provider, count: u32) {
    let certs = Certs::generate();
    let variant = Variant::new(&certs, krate, provider, Auth::ServerAuth);
    let total: Duration = (0..count)
        .map(|_| variant.server_first_flight(CHROMIUM_CLIENT_HELLO))
        .sum();
    let mean = total.checked_div(count).unwrap_or_default();
    println!("{krate} {provider} chromium-hello server: {count} first flights, mean {mean:?}");
}

/// Total time per side of `BLOCK` handshakes.
fn block(variant: &Variant) -> [Duration; 2] {
    let mut totals = [Duration::ZERO; 2];
    for _ in 0..BLOCK {
        let times = variant.handshake();
        for (total, side) in totals.iter_mut().zip(Side::ALL) {
            *total += times.get(side);
        }
    }
    totals
}

/// `other` is `Crate::Fork`, or `Crate::Vanilla` for the A/A test.
fn paired(rounds: u32, other: Crate) {
    let certs = Certs::generate();
    println!(
        "| group | vanilla mean | {other} mean \
         | {other} / vanilla (geo. mean of {rounds} paired rounds) | 95% CI |"
    );
    println!("|---|---|---|---|---|");
    for provider in Provider::ALL {
        for auth in Auth::ALL {
            let vanilla = Variant::new(&certs, Crate::Vanilla, provider, auth);
            let fork = Variant::new(&certs, other, provider, auth);
            // Warm-up: caches, allocator, lazy initialisation.
            block(&vanilla);
            block(&fork);

            let mut totals = [[Duration::ZERO; 2]; 2];
            let mut log_ratios: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for round in 0..rounds {
                let (v, f) = if round % 2 == 0 {
                    let v = block(&vanilla);
                    (v, block(&fork))
                } else {
                    let f = block(&fork);
                    (block(&vanilla), f)
                };
                for side in 0..2 {
                    totals[0][side] += v[side];
                    totals[1][side] += f[side];
                    log_ratios[side].push((f[side].as_secs_f64() / v[side].as_secs_f64()).ln());
                }
            }
            let handshakes = rounds * BLOCK;
            for (index, side) in Side::ALL.into_iter().enumerate() {
                let (mean, half_width) = mean_ci(&log_ratios[index]);
                let vanilla_mean = totals[0][index] / handshakes;
                let fork_mean = totals[1][index] / handshakes;
                println!(
                    "| `handshake/{provider}/{auth}/{side}` | {vanilla_mean:.2?} | {fork_mean:.2?} \
                     | {:.4} ({:+.2}%) | {:.4} – {:.4} |",
                    mean.exp(),
                    (mean.exp() - 1.0) * 100.0,
                    (mean - half_width).exp(),
                    (mean + half_width).exp(),
                );
            }
        }
    }
    for provider in Provider::ALL {
        paired_chromium_hello(&certs, provider, rounds, other);
    }
}

/// One row of `paired` for the server's answer to the recorded Chromium hello.
fn paired_chromium_hello(certs: &Certs, provider: Provider, rounds: u32, other: Crate) {
    let vanilla = Variant::new(certs, Crate::Vanilla, provider, Auth::ServerAuth);
    let fork = Variant::new(certs, other, provider, Auth::ServerAuth);
    let flights = |variant: &Variant| -> Duration {
        (0..BLOCK)
            .map(|_| variant.server_first_flight(CHROMIUM_CLIENT_HELLO))
            .sum()
    };
    flights(&vanilla);
    flights(&fork);
    let mut totals = [Duration::ZERO; 2];
    let mut log_ratios = Vec::new();
    for round in 0..rounds {
        let (v, f) = if round % 2 == 0 {
            let v = flights(&vanilla);
            (v, flights(&fork))
        } else {
            let f = flights(&fork);
            (flights(&vanilla), f)
        };
        totals[0] += v;
        totals[1] += f;
        log_ratios.push((f.as_secs_f64() / v.as_secs_f64()).ln());
    }
    let (mean, half_width) = mean_ci(&log_ratios);
    let n = rounds * BLOCK;
    println!(
        "| `chromium-hello/{provider}/server` | {:.2?} | {:.2?} | {:.4} ({:+.2}%) | {:.4} – {:.4} |",
        totals[0] / n,
        totals[1] / n,
        mean.exp(),
        (mean.exp() - 1.0) * 100.0,
        (mean - half_width).exp(),
        (mean + half_width).exp(),
    );
}

/// Mean and the half-width of its normal-approximation 95% confidence interval.
fn mean_ci(values: &[f64]) -> (f64, f64) {
    let n = f64::from(u32::try_from(values.len()).expect("few rounds"));
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, 1.96 * (variance / n).sqrt())
}
