//! One way to put something in front of a client-certificate verifier: the
//! proxy's two wrappers (the partners' verifier that a reload replaces, the
//! bots' verifier behind the deny list) differ only in where the verifier
//! comes from, which CA names they show and what they check first; the
//! rest of rustls's trait is passed through here once.

use std::fmt::Debug;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// What a wrapper adds to the verifier it wraps.
pub(crate) trait Wrapper: Debug + Send + Sync {
    /// The verifier now in force.
    fn inner(&self) -> Arc<dyn ClientCertVerifier>;

    /// The CA names the CertificateRequest shows.
    fn hints(&self) -> &[DistinguishedName];

    /// Checked before the inner verifier (a refusal ends it there).
    fn check_first(&self, _end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        Ok(())
    }

    /// Told of a certificate refused, by either check.
    fn refused(&self, _end_entity: &CertificateDer<'_>) {}
}

/// `W` as a verifier.
#[derive(Debug)]
pub(crate) struct Wrapped<W>(pub(crate) W);

impl<W: Wrapper> ClientCertVerifier for Wrapped<W> {
    fn offer_client_auth(&self) -> bool {
        self.0.inner().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.inner().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.hints()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .check_first(end_entity)
            .and_then(|()| {
                self.0
                    .inner()
                    .verify_client_cert(end_entity, intermediates, now)
            })
            .inspect_err(|_| self.0.refused(end_entity))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.inner().supported_verify_schemes()
    }
}
