//! The verifier used on the flag path: the user's, with the CertificateRequest
//! always sent and the anonymous-bot policy (RCA-14) deciding whether a
//! certificate is mandatory.

use std::sync::Arc;

use log::debug;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

#[derive(Debug)]
pub(crate) struct FlagPathVerifier {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
    pub(crate) certificate_required: bool,
    /// The server name of the connection (SNI), for a refusal's line.
    pub(crate) server_name: Option<Arc<str>>,
}

impl ClientCertVerifier for FlagPathVerifier {
    fn offer_client_auth(&self) -> bool {
        // RCA-2: an accepted flag is always answered with a CertificateRequest.
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // RCA-14: an empty Certificate is anonymous unless the policy refuses it.
        self.certificate_required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|error| {
                debug!("tls_flags: flag-path client certificate refused: {error}");
                crate::refusal::record(|| {
                    crate::refusal::RefusedCertificate::of(end_entity, self.server_name.as_deref())
                });
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}
