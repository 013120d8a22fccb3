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
            Self::Ring => rustls::crypto::ring::default_provider(),
            Self::AwsLcRs => rustls::crypto::aws_lc_rs::default_provider(),
        })
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
