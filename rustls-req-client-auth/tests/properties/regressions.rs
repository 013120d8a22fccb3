//! The known discrepancies, each as its minimal reproducer (ignored while
//! they fail, until the implementation or the model's reading changes). Run
//! them with `cargo test -p rustls-req-client-auth --test properties --
//! --ignored`.

use super::*;

/// A flag-enabled server whose own verifier is `own`, and a `ClientFlags`
/// client with `identity`, both on ring, no misbehaviour.
fn plain_scenario(identity: FlagIdentity, tls12_only: bool, own: OwnVerifier) -> Scenario {
    Scenario {
        client: ClientSpec {
            provider: Provider::Ring,
            hook: ClientHook::Flags,
            identity,
            propose_3: false,
            other_requests: OtherRequests::ConfigResolver,
            tls12_only,
            config_cert: Some(Cert::Normal),
        },
        server: ServerSpec {
            provider: Provider::Ring,
            flags: Some(FlagsPolicy {
                require_certificate: false,
                inner_mandatory: true,
            }),
            own,
            hrr: false,
        },
        misbehaviour: None,
    }
}

/// Runs `connections` handshakes between the scenario's configs; returns the last.
fn run_scenario(
    scenario: &Scenario,
    connections: usize,
) -> (ClientConnection, ServerConnection, Outcome) {
    let client = build_client(scenario);
    let server = build_server(scenario);
    let mut last = None;
    for _ in 0..connections {
        let (mut c, mut s) = connect(&client, &server);
        let outcome = handshake(&mut c, &mut s);
        last = Some((c, s, outcome));
    }
    last.expect("at least one connection")
}

/// Regression (found by this model): setting the flag must not get a client
/// past a server config that requires every client to authenticate (RCA-14).
#[test]
fn regression_flag_cannot_bypass_mandatory_client_auth() {
    let scenario = plain_scenario(
        FlagIdentity::NoneSuitable,
        false,
        OwnVerifier::NormalMandatory,
    );
    let (_, s, outcome) = run_scenario(&scenario, 1);
    assert!(
        !outcome.is_ok(),
        "served as {:?} although the config requires client auth",
        peer(&s).path
    );
    outcome.assert_alert(Side::Server, AlertDescription::CertificateRequired);
}

/// Regression (found by this model): on TLS 1.2, a certificate verified by
/// the config's own verifier is the normal path, also with `ServerFlags`.
#[test]
fn regression_tls12_normal_path_is_reported() {
    for connections in [1, 2] {
        let scenario = plain_scenario(FlagIdentity::Bot, true, OwnVerifier::NormalMandatory);
        let (_, s, outcome) = run_scenario(&scenario, connections);
        outcome.assert_ok();
        let who = peer(&s);
        assert_eq!(who.chain, Some(&pki().normal_client.chain[..]));
        assert_eq!(
            who.path,
            AuthPath::Normal,
            "verified by the config's verifier"
        );
    }
}

/// Regression (found by this model on rustls 0.23.48): an aws-lc-rs client
/// (key shares X25519MLKEM768 and X25519) meets a ring server, whose defaults
/// now put secp384r1 first, with a HelloRetryRequest; the second connection,
/// which has learnt the server's group, does without. The flag travels in
/// both `ClientHello`s (RCA-13) and the bot is verified either way.
#[test]
fn regression_mixed_providers_retry_once() {
    let mut scenario = plain_scenario(FlagIdentity::Bot, false, OwnVerifier::None);
    scenario.client.provider = Provider::AwsLcRs;
    assert!(Provider::AwsLcRs.needs_hello_retry_with(Provider::Ring));
    assert!(!Provider::Ring.needs_hello_retry_with(Provider::AwsLcRs));
    for (connections, kind) in [
        (1, HandshakeKind::FullWithHelloRetryRequest),
        (2, HandshakeKind::Resumed),
    ] {
        let (c, s, outcome) = run_scenario(&scenario, connections);
        outcome.assert_ok();
        assert_eq!(c.handshake_kind(), Some(kind), "connection {connections}");
        assert_eq!(peer(&s).path, AuthPath::Flag);
    }
}
