//! The roots servers are verified against.

use rustls::RootCertStore;

/// The roots named by `--roots`: Mozilla's (webpki-roots), the system's
/// (rustls-native-certs) or none (only `--ca`).
///
/// # Errors
///
/// The system's store could not be read at all.
pub fn roots(source: RootSource) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match source {
        RootSource::Mozilla => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        RootSource::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                anyhow::bail!(
                    "no system roots found ({}); use --roots mozilla or --ca",
                    found
                        .errors
                        .first()
                        .map_or_else(|| "the store is empty".to_owned(), ToString::to_string)
                );
            }
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            log::info!("{added} system roots");
        }
        RootSource::None => {}
    }
    Ok(roots)
}

/// Where the server roots come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RootSource {
    /// Mozilla's, compiled in (webpki-roots).
    Mozilla,
    /// The operating system's (rustls-native-certs).
    System,
    /// None: only the CAs given with `--ca`.
    None,
}
