//! A project of a user's: depends on rustls-req-client-auth the way the README
//! says, and runs one flagged handshake in memory. Written and run by
//! `cargo xtask downstream` in a scratch directory outside the workspace.

use std::sync::Arc;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_req_client_auth::{AuthPath, BotClient, PeerIdentity, ServerFlags};

struct Ca {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA");
        Self {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(
        &self,
        name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], key)
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).expect("root");
        roots
    }
}

fn main() {
    let server_ca = Ca::new();
    let bot_ca = Ca::new();
    let (server_chain, server_key) = server_ca.leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (bot_chain, bot_key) = bot_ca.leaf("bot.example", ExtendedKeyUsagePurpose::ClientAuth);

    let bots = WebPkiClientVerifier::builder(Arc::new(bot_ca.roots()))
        .build()
        .expect("verifier");
    let mut server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(server_chain, server_key)
        .expect("server config");
    ServerFlags::request_client_auth(bots).install(&mut server).expect("TLS Flags registers its extension type");

    let bot = BotClient::from_der(bot_chain, bot_key).trust(server_ca.roots());
    let client: ClientConfig = bot.client_config().expect("bot config");

    let mut c = ClientConnection::new(Arc::new(client), "localhost".try_into().expect("name"))
        .expect("client");
    let mut s = ServerConnection::new(Arc::new(server)).expect("server");
    for _ in 0..16 {
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).expect("write");
        }
        s.read_tls(&mut wire.as_slice()).ok();
        s.process_new_packets().expect("server");
        let mut wire = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut wire).expect("write");
        }
        c.read_tls(&mut wire.as_slice()).ok();
        c.process_new_packets().expect("client");
        if !c.is_handshaking() && !s.is_handshaking() {
            break;
        }
    }
    let peer = PeerIdentity::of(&s);
    assert_eq!(peer.path(), AuthPath::Flag, "{peer}");
    let outcome = bot.outcomes().get("localhost").expect("outcome");
    assert!(outcome.flag_acknowledged(), "{outcome}");
    println!("downstream: flagged handshake ok; server saw {peer}; client: {outcome}");
}
