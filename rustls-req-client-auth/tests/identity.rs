//! The owned peer identity (`PeerIdentity`) after real handshakes, in memory,
//! both providers: path, chain, the leaf's names and RFC 8705 thumbprint,
//! flags, version, ALPN, and what a resumed connection reports (RCA-11).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine as _;
use integration_tests::config::{self, connect, connect_twice};
use integration_tests::memory::handshake;
use integration_tests::{provider_tests, Provider, TestPki};
use rcgen::{ExtendedKeyUsagePurpose, SanType};
use rustls::{ClientConfig, ProtocolVersion, ServerConfig};
use rustls_req_client_auth::server::CertificateRequestCause;
use rustls_req_client_auth::{
    AuthPath, ClientFlags, Flag, LeafCertificate, PeerIdentity, ServerFlags,
};

provider_tests! {
    flag_path_identity_has_every_field => flag_path_identity;
    normal_path_identity => normal_path_identity;
    anonymous_identity => anonymous_identity;
    resumed_identity_keeps_path_and_chain => resumed_identity;
}

const H2: &[u8] = b"h2";

fn server(pki: &TestPki, provider: Provider) -> ServerConfig {
    let mut config = config::server(pki, provider);
    config.alpn_protocols = vec![H2.to_vec(), b"http/1.1".to_vec()];
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut config)
        .expect("TLS Flags registers its extension type");
    config
}

fn client(pki: &TestPki, provider: Provider) -> ClientConfig {
    let mut config = config::client(pki, provider);
    config.alpn_protocols = vec![H2.to_vec(), b"http/1.1".to_vec()];
    config
}

fn identity_of(client: ClientConfig, server: ServerConfig) -> PeerIdentity {
    let (mut c, mut s) = connect(&Arc::new(client), &Arc::new(server));
    handshake(&mut c, &mut s).assert_ok();
    PeerIdentity::of(&s)
}

/// The thumbprint computed independently: aws-lc-rs's SHA-256, RFC 4648 base64url.
fn expected_thumbprint(der: &[u8]) -> String {
    let digest = ::aws_lc_rs::digest::digest(&::aws_lc_rs::digest::SHA256, der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn flag_path_identity(provider: Provider) {
    let pki = TestPki::shared();
    let bot = pki.bot_ca.issue_with_sans(
        "crawler-7",
        vec![
            SanType::DnsName("crawler.bot.test".try_into().expect("DNS name")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
            SanType::URI("spiffe://bot.test/crawler/7".try_into().expect("URI")),
            SanType::Rfc822Name("ops@bot.test".try_into().expect("email")),
        ],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let mut bot_config = client(pki, provider);
    ClientFlags::request_client_auth(config::certified_key(&bot, provider))
        .install(&mut bot_config)
        .expect("TLS Flags registers its extension type");
    let peer = identity_of(bot_config, server(pki, provider));

    assert_eq!(peer.path(), AuthPath::Flag);
    assert!(peer.is_flag_path());
    assert_eq!(peer.chain(), &bot.chain[..]);
    let leaf = peer.leaf().expect("leaf");
    assert_eq!(leaf.subject(), "CN=crawler-7");
    assert_eq!(leaf.common_name(), Some("crawler-7"));
    assert_eq!(leaf.dns_names(), ["crawler.bot.test"]);
    assert_eq!(
        leaf.ip_addresses(),
        [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))]
    );
    assert_eq!(leaf.uris(), ["spiffe://bot.test/crawler/7"]);
    assert_eq!(leaf.emails(), ["ops@bot.test"]);
    assert_eq!(leaf.thumbprint_sha256(), expected_thumbprint(&bot.chain[0]));
    assert!(!peer.restored_from_ticket());
    assert_eq!(
        peer.certificate_request(),
        Some(CertificateRequestCause::Flag)
    );
    let flag = Flag::REQUEST_CLIENT_AUTH;
    assert!(peer.client_flags().contains(flag));
    assert_eq!(peer.acknowledged().iter().collect::<Vec<_>>(), [flag]);
    assert_eq!(peer.version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(peer.alpn(), Some(H2));

    // Owned: it outlives the connection and crosses threads.
    let moved = std::thread::spawn(move || peer.to_string())
        .join()
        .expect("thread");
    assert!(moved.starts_with("bot (flag path) CN=crawler-7, x5t#S256="));
    assert!(moved.ends_with("; TLSv1_3 h2"));
    assert!(moved.contains(&expected_thumbprint(&bot.chain[0])));
}

fn normal_path_identity(provider: Provider) {
    let pki = TestPki::shared();
    // A server that asks everyone, verified by its own verifier (RCA-3).
    let mut server = config::server_requesting(
        pki,
        provider,
        config::verifier(&pki.normal_ca, provider, true),
    );
    ServerFlags::request_client_auth(config::verifier(&pki.bot_ca, provider, true))
        .install(&mut server)
        .expect("TLS Flags registers its extension type");
    let mut partner = config::client(pki, provider);
    partner.client_auth_cert_resolver = config::resolver(&pki.normal_client, provider);
    let peer = identity_of(partner, server);
    assert_eq!(peer.path(), AuthPath::Normal);
    assert!(!peer.is_flag_path());
    assert_eq!(
        peer.certificate_request(),
        Some(CertificateRequestCause::ServerPolicy)
    );
    let leaf = peer.leaf().expect("leaf");
    assert_eq!(leaf.dns_names(), ["partner.client.test"]);
    assert!(peer.client_flags().is_empty());
    assert!(peer.acknowledged().is_empty());
    assert!(peer
        .to_string()
        .starts_with("client (normal path) CN=partner.client.test"));
}

fn anonymous_identity(provider: Provider) {
    let pki = TestPki::shared();
    let peer = identity_of(client(pki, provider), server(pki, provider));
    assert_eq!(peer.path(), AuthPath::None);
    assert_eq!(peer.certificate_request(), None);
    assert!(peer.chain().is_empty());
    assert!(peer.leaf().is_none());
    assert_eq!(peer.alpn(), Some(H2));
    assert_eq!(peer.to_string(), "anonymous; TLSv1_3 h2");
}

fn resumed_identity(provider: Provider) {
    let pki = TestPki::shared();
    let mut bot_config = client(pki, provider);
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
        .install(&mut bot_config)
        .expect("TLS Flags registers its extension type");
    let [(_, first), (_, second)] =
        connect_twice(&Arc::new(bot_config), &Arc::new(server(pki, provider)));
    let (first, second) = (PeerIdentity::of(&first), PeerIdentity::of(&second));
    assert!(!first.restored_from_ticket());
    assert_eq!(second.path(), AuthPath::Flag);
    assert!(second.restored_from_ticket());
    assert!(!first.resumed() && second.resumed());
    assert_eq!(
        second.certificate_request(),
        None,
        "RCA-11: no request under a PSK"
    );
    assert_eq!(second.chain(), first.chain());
    assert_eq!(
        second.leaf().map(LeafCertificate::thumbprint_sha256),
        first.leaf().map(LeafCertificate::thumbprint_sha256)
    );
    assert!(second.to_string().contains(", resumed;"));
}

#[cfg(feature = "serde")]
#[test]
fn serde_form_has_the_rfc8705_name() {
    let pki = TestPki::shared();
    let provider = Provider::AwsLcRs;
    let mut bot_config = client(pki, provider);
    ClientFlags::request_client_auth(config::certified_key(&pki.bot, provider))
        .install(&mut bot_config)
        .expect("TLS Flags registers its extension type");
    let peer = identity_of(bot_config, server(pki, provider));
    let json = serde_json::to_value(&peer).expect("serialize");
    assert_eq!(json["path"], "flag");
    assert_eq!(json["leaf"]["dns_names"][0], "crawler.bot.test");
    assert_eq!(
        json["leaf"]["x5t#S256"],
        expected_thumbprint(&pki.bot.chain[0])
    );
    assert_eq!(json["client_flags"][0], 80);
    assert_eq!(json["acknowledged"][0], 80);
    assert_eq!(json["version"], "TLSv1_3");
    assert_eq!(json["alpn"], "h2");
    assert_eq!(json["restored_from_ticket"], false);
    assert_eq!(json["resumed"], false);
}
