//! A test PKI made with rcgen: one CA for servers and two separate client CAs,
//! so tests can tell the "flag" trust path from the "normal" one (RCA-10).

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The DNS name every server certificate is issued for.
pub const SERVER_NAME: &str = "localhost";

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// End entity first, then the issuing CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// `chain` as PEM.
    pub chain_pem: String,
    /// The private key as PEM (PKCS#8).
    pub key_pem: String,
    key: PrivatePkcs8KeyDer<'static>,
    /// The end entity's serial number, for revocation lists.
    serial: SerialNumber,
}

impl Identity {
    /// The private key (a fresh copy each call, as rustls consumes it).
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// A certificate authority that issues leaves.
pub struct Authority {
    /// The self-signed CA certificate (a trust anchor).
    pub cert: CertificateDer<'static>,
    /// `cert` as PEM.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// The key algorithm of the CA and of the leaves it issues.
    algorithm: &'static rcgen::SignatureAlgorithm,
    /// The CA certificate's serial number, for its issuer's CRLs.
    serial: SerialNumber,
}

impl Authority {
    fn new(common_name: &str, algorithm: &'static rcgen::SignatureAlgorithm) -> Self {
        let key = KeyPair::generate_for(algorithm).expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let serial = serial_of(&key);
        params.serial_number = Some(serial.clone());
        let cert = params.self_signed(&key).expect("self-sign CA");
        Self {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            algorithm,
            serial,
        }
    }

    /// An intermediate CA under this one, of the same key algorithm; its
    /// leaves' chains end with it. Without `crl_sign` its certificate's key
    /// usage leaves out cRLSign, and the CRLs it signs are made anyway: a
    /// CA set up for certificates only, then asked for a CRL.
    #[must_use]
    pub fn intermediate(&self, common_name: &str, crl_sign: bool) -> Self {
        let key = KeyPair::generate_for(self.algorithm).expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = if crl_sign {
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
        } else {
            vec![KeyUsagePurpose::KeyCertSign]
        };
        let serial = serial_of(&key);
        params.serial_number = Some(serial.clone());
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign intermediate CA");
        // rcgen signs CRLs only for an issuer it knows may; the certificate
        // above says what the CA may do.
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Self {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            algorithm: self.algorithm,
            serial,
        }
    }

    /// Another authority of the same name and key algorithm with a key of
    /// its own: this one after a re-key, or an impostor.
    #[must_use]
    pub fn rekeyed(&self, common_name: &str) -> Self {
        Self::new(common_name, self.algorithm)
    }

    /// Issues a leaf for `names` (DNS subject alternative names, or IP
    /// addresses where a name parses as one) with `usage`.
    pub fn issue(
        &self,
        common_name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> Identity {
        let names = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let params = CertificateParams::new(names).expect("leaf params");
        self.issue_params(params, common_name, usage)
    }

    /// Issues a leaf with exactly these subject alternative names.
    pub fn issue_with_sans(
        &self,
        common_name: &str,
        sans: Vec<rcgen::SanType>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Identity {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        self.issue_params(params, common_name, usage)
    }

    /// Issues a client leaf for `common_name` (also its DNS name) that
    /// expires `valid_for` from now (valid from an hour ago).
    pub fn issue_expiring_in(&self, common_name: &str, valid_for: time::Duration) -> Identity {
        let mut params = CertificateParams::new(vec![common_name.to_owned()]).expect("leaf params");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + valid_for;
        self.issue_params(params, common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue_params(
        &self,
        mut params: CertificateParams,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> Identity {
        let key = KeyPair::generate_for(self.algorithm).expect("generate leaf key");
        let serial = serial_of(&key);
        params.serial_number = Some(serial.clone());
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Identity {
            chain: vec![cert.der().clone(), self.cert.clone()],
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            serial,
        }
    }

    /// Issues a client leaf for `common_name` (also its DNS name) whose
    /// CRL distribution point is `crl_uri`: a CRL of this authority scoped
    /// to that point ([`Authority::crl_scoped`]) covers it.
    pub fn issue_in_scope(&self, common_name: &str, crl_uri: &str) -> Identity {
        let mut params = CertificateParams::new(vec![common_name.to_owned()]).expect("leaf params");
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![crl_uri.to_owned()],
        }];
        self.issue_params(params, common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// [`Authority::crl_numbered`] scoped to the distribution point `uri`
    /// (its issuing distribution point extension), valid for a week.
    pub fn crl_scoped(&self, revoked: &[&Identity], number: u64, uri: &str) -> String {
        let serials = revoked.iter().map(|identity| identity.serial.clone());
        let mut params = Self::crl_params(serials.collect(), time::Duration::days(7), number);
        params.issuing_distribution_point = Some(rcgen::CrlIssuingDistributionPoint {
            distribution_point: rcgen::CrlDistributionPoint {
                uris: vec![uri.to_owned()],
            },
            scope: None,
        });
        params
            .signed_by(&self.issuer)
            .and_then(|crl| crl.pem())
            .expect("sign CRL")
    }

    /// A CRL from this authority listing `revoked`, valid from an hour ago
    /// until `valid_for` from now (negative: expired that long ago), as PEM;
    /// its CRL number is 1.
    pub fn crl(&self, revoked: &[&Identity], valid_for: time::Duration) -> String {
        self.crl_numbered(revoked, valid_for, 1)
    }

    /// A CRL from this authority revoking the CA `revoked` (one it
    /// issued, see [`Authority::intermediate`]), valid for a week.
    pub fn crl_revoking_ca(&self, revoked: &Authority) -> String {
        Self::crl_params(vec![revoked.serial.clone()], time::Duration::days(7), 1)
            .signed_by(&self.issuer)
            .and_then(|crl| crl.pem())
            .expect("sign CRL")
    }

    /// An empty CRL signed by this authority's key whose issuer is its
    /// name `common_name` encoded as a `PrintableString`: the same name as
    /// the CA certificate's (a `UTF8String`, as rcgen writes it) when
    /// printed, another name to rustls, which compares names as encoded.
    pub fn crl_naming_issuer_as_printable_string(&self, common_name: &str) -> String {
        let mut params = CertificateParams::default();
        let printable =
            rcgen::string::PrintableString::try_from(common_name).expect("a PrintableString name");
        params.distinguished_name.push(
            DnType::CommonName,
            rcgen::DnValue::PrintableString(printable),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = Issuer::from_params(&params, self.issuer.key());
        Self::crl_params(Vec::new(), time::Duration::days(7), 1)
            .signed_by(&issuer)
            .and_then(|crl| crl.pem())
            .expect("sign CRL")
    }

    /// An empty authority revocation list of this authority (its issuing
    /// distribution point `uri`, for CA certificates only), valid for a
    /// week.
    pub fn authority_revocation_list(&self, uri: &str) -> String {
        let mut params = Self::crl_params(Vec::new(), time::Duration::days(7), 1);
        params.issuing_distribution_point = Some(rcgen::CrlIssuingDistributionPoint {
            distribution_point: rcgen::CrlDistributionPoint {
                uris: vec![uri.to_owned()],
            },
            scope: Some(rcgen::CrlScope::CaCertsOnly),
        });
        params
            .signed_by(&self.issuer)
            .and_then(|crl| crl.pem())
            .expect("sign CRL")
    }

    /// [`Authority::crl`] with CRL number `number`.
    pub fn crl_numbered(
        &self,
        revoked: &[&Identity],
        valid_for: time::Duration,
        number: u64,
    ) -> String {
        let serials = revoked.iter().map(|identity| identity.serial.clone());
        Self::crl_params(serials.collect(), valid_for, number)
            .signed_by(&self.issuer)
            .and_then(|crl| crl.pem())
            .expect("sign CRL")
    }

    /// What [`Authority::crl_numbered`] signs.
    fn crl_params(
        revoked: Vec<SerialNumber>,
        valid_for: time::Duration,
        number: u64,
    ) -> CertificateRevocationListParams {
        let now = time::OffsetDateTime::now_utc();
        let this_update =
            (now - time::Duration::hours(1)).min(now + valid_for - time::Duration::hours(1));
        CertificateRevocationListParams {
            this_update,
            next_update: now + valid_for,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .into_iter()
                .map(|serial_number| RevokedCertParams {
                    serial_number,
                    revocation_time: this_update,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
    }

    /// A root store holding only this authority.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).expect("add trust anchor");
        roots
    }
}

/// A serial number as random as `key`: its public key's last 16 bytes,
/// positive.
fn serial_of(key: &KeyPair) -> SerialNumber {
    let raw = key.public_key_raw();
    let mut serial = raw[raw.len().saturating_sub(16)..].to_vec();
    serial[0] &= 0x7f;
    SerialNumber::from_slice(&serial)
}

/// Everything a client/server test needs.
pub struct TestPki {
    /// Issues server certificates.
    pub server_ca: Authority,
    /// The server's identity for [`SERVER_NAME`].
    pub server: Identity,
    /// Trust anchor for clients that authenticate on the flag path.
    pub bot_ca: Authority,
    /// A client certificate from `bot_ca`.
    pub bot: Identity,
    /// Trust anchor for clients that authenticate the normal way.
    pub normal_ca: Authority,
    /// A client certificate from `normal_ca`.
    pub normal_client: Identity,
}

impl TestPki {
    /// One PKI for the whole process, generated on first use: most tests need
    /// a PKI, few need a fresh one. Tests that need keys of their own (a
    /// second CA, a CA replaced at run time) call [`TestPki::new`].
    pub fn shared() -> &'static Self {
        static SHARED: std::sync::OnceLock<TestPki> = std::sync::OnceLock::new();
        SHARED.get_or_init(Self::new)
    }

    /// Generates a fresh PKI (ECDSA P-256 keys throughout).
    pub fn new() -> Self {
        Self::with_keys(&rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// Generates a fresh PKI with keys of `algorithm` throughout (Ed25519 for
    /// peers that must sign deterministically, as the fuzz seeds' do).
    pub fn with_keys(algorithm: &'static rcgen::SignatureAlgorithm) -> Self {
        let server_ca = Authority::new("test server CA", algorithm);
        let server = server_ca.issue(
            SERVER_NAME,
            &[SERVER_NAME],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let bot_ca = Authority::new("test bot CA (flag path)", algorithm);
        let bot = bot_ca.issue(
            "crawler.bot.test",
            &["crawler.bot.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let normal_ca = Authority::new("test client CA (normal path)", algorithm);
        let normal_client = normal_ca.issue(
            "partner.client.test",
            &["partner.client.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            server_ca,
            server,
            bot_ca,
            bot,
            normal_ca,
            normal_client,
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
