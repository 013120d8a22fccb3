//! Strategies: how scenarios and steps are generated.

use super::*;

pub(crate) fn provider() -> impl Strategy<Value = Provider> {
    prop_oneof![Just(Provider::Ring), Just(Provider::AwsLcRs)]
}

pub(crate) fn client_spec() -> impl Strategy<Value = ClientSpec> {
    (
        provider(),
        prop_oneof![4 => Just(ClientHook::Flags), 1 => Just(ClientHook::Plain)],
        prop_oneof![
            Just(FlagIdentity::Bot),
            Just(FlagIdentity::None),
            Just(FlagIdentity::Normal),
            Just(FlagIdentity::NoneSuitable),
            Just(FlagIdentity::NothingAtHand),
        ],
        prop_oneof![
            Just(OtherRequests::ConfigResolver),
            Just(OtherRequests::Anonymous),
            Just(OtherRequests::FlagIdentityOn(CodePoints::DEFAULT)),
        ],
        prop_oneof![3 => Just(false), 1 => Just(true)],
        prop_oneof![4 => Just(false), 1 => Just(true)],
        prop_oneof![Just(None), Just(Some(Cert::Normal))],
    )
        .prop_map(
            |(provider, hook, identity, other_requests, propose_3, tls12_only, config_cert)| {
                ClientSpec {
                    provider,
                    hook,
                    identity,
                    propose_3,
                    other_requests,
                    tls12_only,
                    config_cert,
                }
            },
        )
}

pub(crate) fn server_spec() -> impl Strategy<Value = ServerSpec> {
    (
        provider(),
        prop_oneof![
            4 => (any::<bool>(), any::<bool>()).prop_map(|(require_certificate, inner_mandatory)| {
                Some(FlagsPolicy {
                    require_certificate,
                    inner_mandatory,
                })
            }),
            1 => Just(None),
        ],
        prop_oneof![
            Just(OwnVerifier::None),
            Just(OwnVerifier::NormalOptional),
            Just(OwnVerifier::NormalMandatory),
        ],
        prop_oneof![3 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(provider, flags, own, hrr)| ServerSpec {
            provider,
            flags,
            own,
            hrr,
        })
}

pub(crate) fn value() -> impl Strategy<Value = Value> {
    // Well-formed values first (shrinking tries them first), then every
    // malformed form of the shared table (TF-1, TF-3).
    let well_formed = [&[3][..], &[RCA], &[3, RCA]].map(Value::Flags);
    let malformed = integration_tests::malformed::forms()
        .into_iter()
        .map(|form| Value::Raw(form.what, form.bytes));
    proptest::strategy::Union::new(well_formed.into_iter().chain(malformed).map(Just))
}

pub(crate) fn misbehaviour() -> impl Strategy<Value = Option<Misbehaviour>> {
    let server_place = prop_oneof![
        Just(ServerPlace::Sh),
        Just(ServerPlace::Hrr),
        Just(ServerPlace::Ee),
        Just(ServerPlace::Cr),
        Just(ServerPlace::Ct),
        Just(ServerPlace::Nst),
    ];
    let client_place = prop_oneof![Just(ClientPlace::Ch), Just(ClientPlace::Ct)];
    // Nested, so that shrinking a misbehaviour tries "none" next.
    prop_oneof![
        1 => Just(None),
        1 => prop_oneof![
            3 => (server_place, value()).prop_map(|(p, v)| Misbehaviour::Server(p, v)),
            1 => (client_place, value()).prop_map(|(p, v)| Misbehaviour::Client(p, v)),
        ]
        .prop_map(Some),
    ]
}

pub(crate) fn scenario() -> impl Strategy<Value = Scenario> {
    (client_spec(), server_spec(), misbehaviour()).prop_map(|(client, server, misbehaviour)| {
        Scenario {
            client,
            server,
            misbehaviour,
        }
    })
}
