//! Codec benchmarks: decode+validate and encode of 1-, 11- and 255-octet
//! flags fields (`{0}`, `{80}` = `request_client_auth`, `{2039}`).
//!
//! `cargo bench -p rustls-tls-flags --bench codec`
//! (add `-- --warm-up-time 1 --measurement-time 2` for a quick run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rustls_tls_flags::{check_received, decode, Flag, FlagSet, MessageKind};

/// (label, highest flag): 1, 11 and 255 flags octets.
const CASES: [(&str, u16); 3] = [("1_octet", 0), ("11_octets", 80), ("255_octets", 2039)];

fn set_for(highest: u16) -> FlagSet {
    let flag = Flag::new(highest).expect("bench flags are in range");
    FlagSet::from([flag])
}

fn encoded(set: &FlagSet) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = set.encode_into(&mut buf).expect("256 bytes suffice");
    buf[..n].to_vec()
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (label, highest) in CASES {
        let set = set_for(highest);
        let data = encoded(&set);
        group.throughput(Throughput::Bytes(data.len().try_into().expect("fits")));

        // decode + validate only (TF-1, TF-3).
        group.bench_with_input(BenchmarkId::new("validate", label), &data, |b, data| {
            b.iter(|| decode(black_box(data)).is_ok());
        });
        // What a receiver does for a response: decode, then the TF-6 check
        // against what it proposed, then look up one flag.
        group.bench_with_input(
            BenchmarkId::new("validate_check_contains", label),
            &data,
            |b, data| {
                b.iter(|| {
                    let view = decode(black_box(data)).expect("valid");
                    check_received(MessageKind::EncryptedExtensions, &view, Some(&set)).is_ok()
                        && view.contains(Flag::REQUEST_CLIENT_AUTH)
                });
            },
        );
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (label, highest) in CASES {
        let set = set_for(highest);
        let len = set.encoded_len();
        group.throughput(Throughput::Bytes(len.try_into().expect("fits")));

        // Into a caller's buffer: no allocation.
        group.bench_with_input(BenchmarkId::new("encode_into", label), &set, |b, set| {
            let mut buf = [0u8; 256];
            b.iter(|| black_box(set).encode_into(black_box(&mut buf)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
