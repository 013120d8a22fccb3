//! Model-based property tests: generated client/server configurations, an
//! optional misbehaving peer, and a generated sequence of connections between
//! them, each run as a real in-memory handshake (the rustls fork, both crypto
//! providers, certificates from the rcgen `TestPki`) and compared with what a
//! small reference model written from `rustls-req-client-auth/SPECIFICATION.md` predicts.
//!
//! Built on `proptest-state-machine`: the reference state is the scenario (the
//! two configurations and the misbehaviour) plus what the client remembers
//! between connections (TLS 1.3 tickets with the path each was issued on, a
//! TLS 1.2 session, rustls's key-exchange hint); the transitions are
//! "connect" and "start over with a fresh client". Failing cases shrink to the
//! fewest connections and the simplest configuration.
//!
//! Run: `cargo test -p rustls-req-client-auth --test properties` (400 cases);
//! long: `PROPTEST_CASES=10000 cargo test -p rustls-req-client-auth --test
//! properties connections_follow_the_model`. See tests/README.md, "Property
//! tests". The `regression_*` tests are the minimal reproducers of the bugs
//! this model found.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, OnceLock};

use integration_tests::config::{self, connect};
use integration_tests::memory::{exchange_data, handshake};
use integration_tests::scripted::{ext, ClientScript, ServerScript};
use integration_tests::{Outcome, Provider, Side, TestPki};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use rustls::client::ResolvesClientCert;
use rustls::hooks::{HandshakeMessage as Msg, RawExtension};
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, Error, HandshakeKind, ProtocolVersion,
    ServerConfig, ServerConnection,
};
use rustls_req_client_auth::client::{client_state, CertificateRequestCause};
use rustls_req_client_auth::server::{peer, server_state, AuthPath};
use rustls_req_client_auth::{
    ClientFlags, CodePoints, Flag, FlagsError, OtherRequests, ServerFlags,
};

/// `tls_flags` (default code point).
const TLS_FLAGS: u16 = 62;
/// `request_client_auth` (default code point).
const RCA: u16 = 80;
/// Default number of cases: one case is up to six handshakes.
const DEFAULT_CASES: u32 = 400;

// The scenario, how it is generated, what the model predicts from it, and
// the real handshakes it is compared with.
mod model;
mod outcome;
mod regressions;
mod scenario;
mod strategies;
mod sut;
use model::*;
use outcome::*;
use scenario::*;
use strategies::*;
use sut::*;
