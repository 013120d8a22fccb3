//! The roots servers are verified against, for the tools that verify
//! servers (`rca-connect`, `rca-probe`).

use std::path::PathBuf;

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

/// The roots servers are verified against: `--roots` and each `--ca`.
///
/// # Errors
///
/// The system's store could not be read, a `--ca` file holds no certificate,
/// or there is no root at all (`--roots none` without `--ca`).
pub fn server_roots(source: RootSource, cas: &[PathBuf]) -> anyhow::Result<RootCertStore> {
    let mut server_roots = roots(source)?;
    for ca_file in cas {
        let extra = rustls_req_client_auth::pem::load_roots(ca_file)?;
        server_roots.roots.extend(extra.roots);
    }
    if server_roots.is_empty() {
        anyhow::bail!("--roots none needs at least one --ca");
    }
    Ok(server_roots)
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
