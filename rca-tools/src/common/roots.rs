//! The roots servers are verified against, for the tools that verify
//! servers (`rca-connect`, `rca-probe`).

use std::path::PathBuf;

use rustls::pki_types::CertificateDer;
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

/// Takes every root with the public key of `ca` out of `roots`, and says how
/// many went. `rca-connect`'s local CA signs the certificates its tunnels
/// show clients; it must never vouch for a server, however it got among the
/// roots (`--roots system` reads `SSL_CERT_FILE`, which clients are told to
/// point at that CA, and a `--ca` may name its file).
///
/// # Errors
///
/// `ca` is not a certificate rustls can take as a root.
pub fn remove_ca(roots: &mut RootCertStore, ca: &CertificateDer<'_>) -> anyhow::Result<usize> {
    let mut own = RootCertStore::empty();
    own.add(ca.clone().into_owned())
        .map_err(|error| anyhow::anyhow!("the local CA certificate: {error}"))?;
    let before = roots.roots.len();
    for anchor in &own.roots {
        roots
            .roots
            .retain(|root| root.subject_public_key_info != anchor.subject_public_key_info);
    }
    Ok(before - roots.roots.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: &str, key: &rcgen::KeyPair) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(key).expect("CA").der().clone()
    }

    /// A root with the local CA's key goes, whatever its name; others stay.
    #[test]
    fn roots_with_the_local_ca_key_are_removed() {
        let local_key = rcgen::KeyPair::generate().expect("key");
        let local = ca("local CA", &local_key);
        let renamed = ca("the same key, renamed", &local_key);
        let other = ca("another CA", &rcgen::KeyPair::generate().expect("key"));
        let mut roots = RootCertStore::empty();
        for root in [&local, &other, &renamed] {
            roots.add(root.clone()).expect("root");
        }
        assert_eq!(remove_ca(&mut roots, &local).expect("a CA"), 2);
        assert_eq!(roots.roots.len(), 1);
        assert_eq!(remove_ca(&mut roots, &local).expect("a CA"), 0);
        let mut only_mozilla = super::roots(RootSource::Mozilla).expect("Mozilla's");
        let count = only_mozilla.roots.len();
        assert_eq!(remove_ca(&mut only_mozilla, &local).expect("a CA"), 0);
        assert_eq!(only_mozilla.roots.len(), count);
    }
}
