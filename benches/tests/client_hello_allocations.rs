//! The fork without extension hooks allocates exactly as vanilla rustls
//! (the pinned release) when a server answers a browser's ClientHello (recorded from
//! Chromium: GREASE, ALPS, trust anchors and SCT are extensions rustls does not
//! implement) and a rustls client's: the kept unknown extensions are borrowed
//! from the message, never copied.
//!
//! One test in this binary, so no other test thread allocates while it counts.

use std::alloc::System;
use std::sync::Arc;

use benches::{Auth, Certs, Crate, Provider, Variant, CHROMIUM_CLIENT_HELLO, SERVER_NAME};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// (allocations, reallocations, bytes allocated) of one server first flight,
/// each the least of 64 runs: signature and key-share lengths vary by a byte
/// or two between runs, which now and then costs a buffer one more
/// reallocation.
fn counted(variant: &Variant, client_hello: &[u8]) -> (usize, usize, usize) {
    // Once before counting: lazily initialised state.
    variant.server_first_flight(client_hello);
    let mut least = (usize::MAX, usize::MAX, usize::MAX);
    for _ in 0..64 {
        let region = Region::new(GLOBAL);
        variant.server_first_flight(client_hello);
        let stats = region.change();
        least.0 = least.0.min(stats.allocations);
        least.1 = least.1.min(stats.reallocations);
        least.2 = least.2.min(stats.bytes_allocated);
    }
    least
}

/// A ClientHello as a rustls client sends it with its provider's defaults
/// (vanilla's; since rustls 0.23.48 a secp384r1 key share with ring, and
/// X25519MLKEM768 with X25519 with aws-lc-rs).
fn rustls_client_hello(provider: Provider) -> Vec<u8> {
    let crypto = match provider {
        // Deprecated in rustls 0.23.48 (no post-quantum key exchange); still
        // how ring's provider is built.
        #[allow(deprecated)]
        Provider::Ring => rustls_vanilla::crypto::ring::default_provider(),
        Provider::AwsLcRs => rustls_vanilla::crypto::aws_lc_rs::default_provider(),
    };
    let config = rustls_vanilla::ClientConfig::builder_with_provider(Arc::new(crypto))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls_vanilla::RootCertStore::empty())
        .with_no_client_auth();
    let name = SERVER_NAME.try_into().expect("a DNS name");
    let mut client = rustls_vanilla::ClientConnection::new(Arc::new(config), name).expect("client");
    memory_pump::flush(&mut client)
}

#[test]
fn fork_without_hooks_allocates_as_vanilla_for_browser_and_rustls_hellos() {
    let certs = Certs::generate();
    for provider in Provider::ALL {
        let rustls_hello = rustls_client_hello(provider);
        for (name, hello) in [
            ("Chromium", CHROMIUM_CLIENT_HELLO),
            ("rustls", rustls_hello.as_slice()),
        ] {
            let [vanilla, fork] = Crate::ALL.map(|krate| {
                counted(
                    &Variant::new(&certs, krate, provider, Auth::ServerAuth),
                    hello,
                )
            });
            println!(
                "{name} ClientHello, {}: vanilla {vanilla:?}, fork {fork:?} (allocations, reallocations, bytes)",
                provider.label()
            );
            assert_eq!(
                (fork.0, fork.1),
                (vanilla.0, vanilla.1),
                "{name} ClientHello, {}: allocations and reallocations of the fork without hooks",
                provider.label()
            );
        }
    }
}
