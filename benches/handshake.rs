//! Full TLS 1.3 handshakes through the rustls fork (no extension hook
//! installed) against the pristine pinned rustls, in the same run.
//!
//! Groups are `handshake/{ring,aws-lc-rs}/{server-auth,mtls,flag}/{server,client}`
//! with the functions `vanilla` and `fork` (for `flag`: plain mTLS through
//! vanilla, the flag path through the fork); each measures the CPU time of one
//! side of an in-memory handshake (see the `benches` library and README.md).
//!
//! `cargo bench -p benches --bench handshake -- --warm-up-time 2 --measurement-time 5`
//! then `python3 benches/report.py` for the ratio table.

use std::time::Duration;

use benches::{Auth, Certs, Crate, Provider, Side, Variant};
use criterion::{criterion_group, criterion_main, Criterion};

/// `HANDSHAKE_BENCH_ORDER=fork-first` measures the fork before vanilla in
/// every group (default: vanilla first), to expose order effects.
fn crate_order() -> [Crate; 2] {
    let mut order = Crate::ALL;
    match std::env::var("HANDSHAKE_BENCH_ORDER").as_deref() {
        Ok("fork-first") => order.reverse(),
        Ok("vanilla-first") | Err(_) => {}
        Ok(other) => panic!("HANDSHAKE_BENCH_ORDER={other}: use vanilla-first or fork-first"),
    }
    order
}

fn bench_handshakes(c: &mut Criterion) {
    let certs = Certs::generate();
    let order = crate_order();
    for provider in Provider::ALL {
        for auth in Auth::ALL {
            let variants = order.map(|krate| (krate, Variant::new(&certs, krate, provider, auth)));
            bench_pair(c, &format!("handshake/{provider}/{auth}"), &variants);
        }
    }
}

/// The flag path through the fork against plain mTLS through vanilla rustls:
/// groups `handshake/{provider}/flag/{side}`, functions `vanilla` (mTLS) and
/// `fork` (flag path), so `report.py` shows the ratio of the two.
fn bench_flag_path(c: &mut Criterion) {
    let certs = Certs::generate();
    for provider in Provider::ALL {
        let variants = [
            (
                Crate::Vanilla,
                Variant::new(&certs, Crate::Vanilla, provider, Auth::Mtls),
            ),
            (Crate::Fork, Variant::fork_flag_path(&certs, provider)),
        ];
        bench_pair(c, &format!("handshake/{provider}/flag"), &variants);
    }
}

/// One group `{prefix}/{side}` per side, one function per crate, each timing
/// that side of full handshakes.
fn bench_pair(c: &mut Criterion, prefix: &str, variants: &[(Crate, Variant)]) {
    for (_, variant) in variants {
        // Fail before measuring anything if the handshake is broken.
        variant.handshake();
    }
    for side in Side::ALL {
        let mut group = c.benchmark_group(format!("{prefix}/{side}"));
        for (krate, variant) in variants {
            group.bench_function(krate.label(), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += variant.handshake().get(side);
                    }
                    total
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_handshakes, bench_flag_path);
criterion_main!(benches);
