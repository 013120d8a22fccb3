//! The crypto providers every test runs with.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// A rustls crypto provider under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `rustls::crypto::ring`.
    Ring,
    /// `rustls::crypto::aws_lc_rs`.
    AwsLcRs,
}

impl Provider {
    /// Every provider, for tests that loop over them.
    pub const ALL: [Self; 2] = [Self::Ring, Self::AwsLcRs];

    /// The provider with its default cipher suites and key-exchange groups.
    pub fn crypto(self) -> Arc<CryptoProvider> {
        Arc::new(match self {
            // Deprecated in rustls 0.23.48 (no post-quantum key exchange),
            // still the way to build ring's provider, which every test runs
            // with beside aws-lc-rs.
            #[allow(deprecated)]
            Self::Ring => rustls::crypto::ring::default_provider(),
            Self::AwsLcRs => rustls::crypto::aws_lc_rs::default_provider(),
        })
    }

    /// The provider's session ticketer (TLS 1.2 tickets, and TLS 1.3 tickets
    /// in place of the default stateful ones).
    pub fn ticketer(self) -> Arc<dyn rustls::server::ProducesTickets> {
        match self {
            Self::Ring => rustls::crypto::ring::Ticketer::new(),
            Self::AwsLcRs => rustls::crypto::aws_lc_rs::Ticketer::new(),
        }
        .expect("a ticketer")
    }

    /// A group of the provider's defaults that a client of the same provider
    /// sends no key share for (the last of its defaults), so a server limited
    /// to it answers with a HelloRetryRequest. secp384r1 was, until rustls
    /// 0.23.48 put it first in ring's defaults.
    pub fn group_without_key_share(self) -> rustls::NamedGroup {
        let provider = self.crypto();
        provider
            .kx_groups
            .last()
            .map(|group| group.name())
            .expect("a provider has key-exchange groups")
    }

    /// Whether a client of `self` and a server of `server`, both with their
    /// defaults, need a HelloRetryRequest: the server picks, in its own
    /// order, the first group the client supports, and the client sent a key
    /// share for its first group only (and for X25519 beside a first
    /// X25519MLKEM768). Since rustls 0.23.48 puts secp384r1 first for ring and
    /// X25519MLKEM768 first for aws-lc-rs, an aws-lc-rs client meets a ring
    /// server with one.
    pub fn needs_hello_retry_with(self, server: Self) -> bool {
        let names = |provider: Self| -> Vec<rustls::NamedGroup> {
            provider
                .crypto()
                .kx_groups
                .iter()
                .map(|group| group.name())
                .collect()
        };
        let offered = names(self);
        let mut shares: Vec<rustls::NamedGroup> = offered.first().copied().into_iter().collect();
        if shares.first() == Some(&rustls::NamedGroup::X25519MLKEM768) {
            shares.push(rustls::NamedGroup::X25519);
        }
        names(server)
            .into_iter()
            .find(|group| offered.contains(group))
            .is_some_and(|chosen| !shares.contains(&chosen))
    }

    /// The provider restricted to one key-exchange group, which forces a
    /// HelloRetryRequest when the peer sends its key share for another.
    pub fn crypto_with_only_group(self, group: rustls::NamedGroup) -> Arc<CryptoProvider> {
        let mut provider = Arc::unwrap_or_clone(self.crypto());
        provider.kx_groups.retain(|kx| kx.name() == group);
        assert!(!provider.kx_groups.is_empty(), "{self:?} lacks {group:?}");
        Arc::new(provider)
    }
}

/// Defines one `#[test]` per provider that calls `$body(provider)`; `$body` is a
/// function in the invoking module.
#[macro_export]
macro_rules! provider_tests {
    ($($name:ident => $body:ident;)+) => {
        mod ring {
            $(
                #[test]
                fn $name() {
                    super::$body($crate::Provider::Ring);
                }
            )+
        }
        mod aws_lc_rs {
            $(
                #[test]
                fn $name() {
                    super::$body($crate::Provider::AwsLcRs);
                }
            )+
        }
    };
}

/// Runs `body` once per provider, each on a fresh two-thread tokio runtime,
/// with a 30 s bound (a hung loopback test fails instead of hanging CI).
///
/// # Panics
///
/// If the runtime cannot start or `body` takes longer than 30 s.
pub fn each_provider_async<F, Fut>(body: F)
where
    F: Fn(Provider) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for provider in [Provider::Ring, Provider::AwsLcRs] {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(30), body(provider)).await
            })
            .expect("the test finished in time");
    }
}
