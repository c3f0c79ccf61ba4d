//! Enhanced authentication (MQTT 5 section 4.12) through the `EnhancedAuthenticator` trait,
//! with a toy challenge-response method registered by the test: the AUTH exchange at
//! CONNECT, failure, an unknown method, and re-authentication.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use bytes::Bytes;
use halyard_codec::{Auth, AuthProperties, MqttString, Packet, ReasonCode};
use halyard_core::{AuthExchange, AuthHooks, AuthStep, EnhancedAuthenticator};
use harness::*;

/// "TOY": the client sends "hello", is challenged with "challenge", answers "response", and
/// is welcomed with "welcome". Anything else fails with 0x87.
#[derive(Debug)]
struct Toy;

#[derive(Debug)]
struct ToyExchange {
    round: u8,
}

impl EnhancedAuthenticator for Toy {
    fn method(&self) -> &str {
        "TOY"
    }
    fn begin(&self, _client_id: &MqttString) -> Box<dyn AuthExchange> {
        Box::new(ToyExchange { round: 0 })
    }
}

impl AuthExchange for ToyExchange {
    fn step(&mut self, data: Option<&Bytes>) -> AuthStep {
        self.round += 1;
        match (self.round, data.map(|d| &d[..])) {
            (1, Some(b"hello")) => AuthStep::Continue(Some(Bytes::from_static(b"challenge"))),
            (2, Some(b"response")) => AuthStep::Success(Some(Bytes::from_static(b"welcome"))),
            _ => AuthStep::Fail(ReasonCode::NOT_AUTHORIZED),
        }
    }
}

fn broker() -> TestBroker {
    TestBroker::start_with_auth(
        |_| {},
        AuthHooks {
            acl: None,
            subscribe_denied: halyard_codec::ReasonCode::NOT_AUTHORIZED,
            methods: vec![Box::new(Toy)],
            ..AuthHooks::default()
        },
    )
}

fn auth(rc: ReasonCode, method: &str, data: &'static [u8]) -> Auth {
    Auth {
        reason_code: rc,
        properties: AuthProperties {
            authentication_method: Some(MqttString::new(method).unwrap()),
            authentication_data: Some(Bytes::from_static(data)),
            ..AuthProperties::default()
        },
    }
}

fn connect_with(method: &str, data: &'static [u8]) -> halyard_codec::Connect {
    let mut c = connect(V5, "authed");
    c.properties.authentication_method = Some(MqttString::new(method).unwrap());
    c.properties.authentication_data = Some(Bytes::from_static(data));
    c
}

fn expect_auth(p: &mut Peer, rc: ReasonCode, data: &[u8]) {
    match p.recv() {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, rc);
            // [MQTT-4.12.0-5] Every AUTH carries the method of the CONNECT.
            assert_eq!(a.properties.authentication_method.as_deref(), Some("TOY"));
            assert_eq!(a.properties.authentication_data.as_deref(), Some(data));
        }
        other => panic!("expected AUTH, got {other:?}"),
    }
}

/// Connects through the full exchange.
fn authenticated(b: &TestBroker) -> Peer {
    let mut p = b.peer(V5);
    p.send(connect_with("TOY", b"hello"));
    // [MQTT-4.12.0-2] The server asks for more with AUTH 0x18.
    expect_auth(&mut p, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge");
    p.send(auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        "TOY",
        b"response",
    ));
    let ack = p.recv_connack();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    // [MQTT-4.12.0-5] The successful CONNACK names the method too.
    assert_eq!(ack.properties.authentication_method.as_deref(), Some("TOY"));
    assert_eq!(
        ack.properties.authentication_data.as_deref(),
        Some(&b"welcome"[..])
    );
    p
}

#[test]
fn challenge_response_exchange_connects() {
    let b = broker();
    let mut p = authenticated(&b);
    p.subscribe("t", halyard_codec::QoS::AtMostOnce);
    p.disconnect();
}

#[test]
fn failed_exchange_is_refused_with_the_authenticators_code() {
    let b = broker();
    let mut p = b.peer(V5);
    p.send(connect_with("TOY", b"hello"));
    expect_auth(&mut p, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge");
    p.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, "TOY", b"wrong"));
    let got = p.expect_closed();
    match got.as_slice() {
        [Packet::ConnAck(a)] => assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected CONNACK 0x87 then close, got {other:?}"),
    }
}

#[test]
fn unknown_method_gets_bad_authentication_method_mqtt_4_12_0_1() {
    let b = broker();
    let mut p = b.peer(V5);
    p.send(connect_with("SCRAM-SHA-1", b"x"));
    match p.expect_closed().as_slice() {
        [Packet::ConnAck(a)] => assert_eq!(a.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD),
        other => panic!("expected CONNACK 0x8C then close, got {other:?}"),
    }
}

#[test]
fn default_broker_has_no_methods() {
    let b = TestBroker::start();
    let mut p = b.peer(V5);
    p.send(connect_with("TOY", b"hello"));
    match p.expect_closed().as_slice() {
        [Packet::ConnAck(a)] => assert_eq!(a.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD),
        other => panic!("expected CONNACK 0x8C then close, got {other:?}"),
    }
}

#[test]
fn reauthentication_mqtt_4_12_1_1() {
    let b = broker();
    let mut p = authenticated(&b);
    p.send(auth(ReasonCode::RE_AUTHENTICATE, "TOY", b"hello"));
    expect_auth(&mut p, ReasonCode::CONTINUE_AUTHENTICATION, b"challenge");
    p.send(auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        "TOY",
        b"response",
    ));
    expect_auth(&mut p, ReasonCode::SUCCESS, b"welcome");
    // A failed re-authentication closes the connection [MQTT-4.12.1-2].
    p.send(auth(ReasonCode::RE_AUTHENTICATE, "TOY", b"bad"));
    p.expect_disconnect(ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn auth_from_a_client_that_connected_without_a_method_is_a_protocol_error() {
    let b = broker();
    let mut p = b.client(V5, "plain");
    p.send(auth(ReasonCode::RE_AUTHENTICATE, "TOY", b"hello"));
    p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
}
