//! CONNECT and the life of a connection: protocol levels, client identifiers, takeover,
//! Session Present, the CONNECT timeout, keep-alive and Server Keep Alive, the 5.0 CONNACK
//! properties, enhanced authentication refusal and graceful shutdown.
//!
//! Statement numbers are those of the OASIS MQTT 3.1.1 and 5.0 specifications; where the two
//! number the same rule differently, both are given.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use halyard_codec::{
    ConnAck, Connect, MqttString, Packet, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions,
};
use harness::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// CONNECT as [`connect`] builds it, changed by `f`.
fn connect_with(v: ProtocolVersion, id: &str, f: impl FnOnce(&mut Connect)) -> Connect {
    let mut c = connect(v, id);
    f(&mut c);
    c
}

/// CONNECT asking to keep the session: Clean Session 0 on 3.x, Clean Start 0 with a Session
/// Expiry Interval of 60 s on 5.0.
fn persistent(v: ProtocolVersion, id: &str) -> Connect {
    connect_with(v, id, |c| {
        c.clean_start = false;
        if v.is_v5() {
            c.properties.session_expiry_interval = Some(60);
        }
    })
}

/// Sends `c` on a new peer and returns the peer with its CONNACK.
fn open(broker: &TestBroker, c: Connect) -> (Peer, ConnAck) {
    let mut p = broker.peer(c.protocol);
    p.send(c);
    let ack = p.recv_connack();
    (p, ack)
}

/// Sends PINGREQ and expects PINGRESP: the connection is alive.
fn expect_pong(p: &mut Peer) {
    p.send(Packet::PingReq);
    match p.recv() {
        Packet::PingResp => {}
        other => panic!("expected PINGRESP, got {other:?}"),
    }
}

/// Reads until the broker closes the connection, which must happen before `deadline`;
/// returns what it sent first.
fn closed_before(p: &mut Peer, deadline: Instant) -> Vec<Packet> {
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "connection still open, got {got:?}");
        match p.recv_or_closed(left) {
            Some(packet) => got.push(packet),
            None => return got,
        }
    }
}

/// Asserts that `got` is what a server sends last: DISCONNECT with `rc` on 5.0, nothing on 3.x.
fn assert_last_words(v: ProtocolVersion, got: &[Packet], rc: ReasonCode) {
    if v.is_v5() {
        match got {
            [Packet::Disconnect(d)] => assert_eq!(d.reason_code, rc, "{v}"),
            other => panic!("{v}: expected DISCONNECT {rc:?} before close, got {other:?}"),
        }
    } else {
        assert!(got.is_empty(), "{v}: 3.x gets no DISCONNECT, got {got:?}");
    }
}

/// Writes `bytes` on a raw socket and returns everything the broker sends until it closes.
fn raw_exchange(broker: &TestBroker, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.write_all(bytes).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("broker did not close the connection: {e}"),
        }
    }
}

#[test]
fn connect_is_accepted_at_protocol_levels_3_4_and_5() {
    let broker = TestBroker::start();
    for v in [V3_1, V3_1_1, V5] {
        // Level 3 is sent with the protocol name "MQIsdp", levels 4 and 5 with "MQTT".
        let (mut p, ack) = open(&broker, connect(v, &format!("level-{}", v.level())));
        // [MQTT-3.1.4-4] (3.1.1) / [MQTT-3.1.4-5] (5.0): CONNACK with a zero return code.
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{v}");
        assert!(!ack.session_present, "{v}");
        // The connection then speaks that level: SUBSCRIBE and SUBACK in its encoding.
        p.subscribe("level/t", QoS::AtLeastOnce);
        expect_pong(&mut p);
        p.disconnect();
    }
}

#[test]
fn unsupported_protocol_level_gets_connack_0x01_in_3_1_1_format_and_close() {
    let broker = TestBroker::start();
    // CONNECT "MQTT" level 6, Clean Session, keep-alive 60, client id "a".
    let connect_level_6 = [
        0x10, 13, 0x00, 0x04, b'M', b'Q', b'T', b'T', 6, 0x02, 0x00, 60, 0x00, 0x01, b'a',
    ];
    // [MQTT-3.1.2-2] (3.1.1): CONNACK return code 0x01 (unacceptable protocol level), then
    // disconnect. A 5.0 CONNACK would not be understood by a client of an unknown level, so
    // it is sent in the 3.1.1 layout: no properties, return code 0x01.
    assert_eq!(
        raw_exchange(&broker, &connect_level_6),
        [0x20, 0x02, 0x00, 0x01]
    );
}

#[test]
fn first_packet_other_than_connect_closes_the_connection() {
    let broker = TestBroker::start();
    let mut sub = broker.client(V5, "watcher");
    sub.subscribe("early/#", QoS::AtMostOnce);
    for v in [V3_1_1, V5] {
        // [MQTT-3.1.0-1]: the first packet must be CONNECT; breaking that is a protocol
        // violation and the connection is closed (section 4.8 in 3.1.1, 4.13 in 5.0). The
        // broker sends nothing: no CONNACK, and no DISCONNECT before a CONNACK
        // [MQTT-3.14.0-1] (5.0).
        let mut p = broker.peer(v);
        p.send(Packet::PingReq);
        assert_eq!(p.expect_closed(), vec![], "{v}: PINGREQ first");

        let mut p = broker.peer(v);
        p.send(subscribe(
            1,
            "early/#",
            SubscriptionOptions::with_qos(QoS::AtMostOnce),
        ));
        assert_eq!(p.expect_closed(), vec![], "{v}: SUBSCRIBE first");

        let mut p = broker.peer(v);
        p.send(publish("early/x", b"before connect", QoS::AtMostOnce, 0));
        assert_eq!(p.expect_closed(), vec![], "{v}: PUBLISH first");
    }
    // Nothing sent before CONNECT was acted on.
    sub.expect_silence(Duration::from_millis(300));
}

#[test]
fn zero_length_client_id_with_clean_start_gets_an_assigned_id() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        // [MQTT-3.1.3-6]: the server assigns a unique ClientId...
        let (mut a, ack_a) = open(&broker, connect(v, ""));
        assert_eq!(ack_a.reason_code, ReasonCode::SUCCESS, "{v}");
        let (mut b, ack_b) = open(&broker, connect(v, ""));
        assert_eq!(ack_b.reason_code, ReasonCode::SUCCESS, "{v}");
        if v.is_v5() {
            // [MQTT-3.1.3-7] / [MQTT-3.2.2-16] (5.0): ... returned as Assigned Client
            // Identifier, not used by any other session.
            let id_a = ack_a.properties.assigned_client_identifier.clone();
            let id_b = ack_b.properties.assigned_client_identifier.clone();
            let (id_a, id_b) = (id_a.expect("assigned id"), id_b.expect("assigned id"));
            assert!(!id_a.is_empty() && !id_b.is_empty());
            assert_ne!(id_a, id_b, "assigned ids are unique");
        }
        // Two clients without an id are two clients: the second did not take over the first.
        expect_pong(&mut a);
        expect_pong(&mut b);
        a.disconnect();
        b.disconnect();
    }
}

#[test]
fn assigned_client_id_names_the_session() {
    let broker = TestBroker::start();
    // [MQTT-3.1.3-7] (5.0): the CONNECT is processed as if the client had provided the
    // assigned id, so a later CONNECT with that id resumes the session.
    let (mut p, ack) = open(
        &broker,
        connect_with(V5, "", |c| c.properties.session_expiry_interval = Some(60)),
    );
    let id = ack
        .properties
        .assigned_client_identifier
        .expect("assigned id");
    p.subscribe("assigned/t", QoS::AtLeastOnce);
    p.disconnect();
    let (mut p, ack) = open(&broker, persistent(V5, id.as_str()));
    assert!(ack.session_present, "the assigned id's session is resumed");
    assert_eq!(ack.properties.assigned_client_identifier, None);
    let mut publ = broker.client(V5, "assigned-pub");
    publ.send(publish("assigned/t", b"kept", QoS::AtMostOnce, 0));
    assert_eq!(p.recv_publish().payload, &b"kept"[..]);
}

#[test]
fn v3_1_1_zero_length_client_id_without_clean_session_is_refused() {
    let broker = TestBroker::start();
    let mut sub = broker.client(V3_1_1, "watcher");
    sub.subscribe("refused/#", QoS::AtMostOnce);
    let mut p = broker.peer(V3_1_1);
    p.send(connect_with(V3_1_1, "", |c| c.clean_start = false));
    // Sent before the CONNACK: not to be processed once the CONNECT is refused.
    p.send(publish(
        "refused/x",
        b"after refused connect",
        QoS::AtMostOnce,
        0,
    ));
    // [MQTT-3.1.3-8] (3.1.1): CONNACK return code 0x02 (Identifier rejected), then close.
    let ack = p.recv_connack();
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    // [MQTT-3.2.2-4] (3.1.1): Session Present is 0 with a non-zero return code.
    assert!(!ack.session_present);
    assert_eq!(p.expect_closed(), vec![]);
    // [MQTT-3.1.4-5] (3.1.1): data after a refused CONNECT is not processed.
    sub.expect_silence(Duration::from_millis(300));
}

#[test]
fn v3_1_zero_length_client_id_is_refused() {
    let broker = TestBroker::start();
    // MQTT 3.1, CONNECT payload: the Client Identifier must be 1 to 23 characters, and one
    // that is not is refused with CONNACK return code 2 (Identifier Rejected). Clean
    // Session set does not change that at this level.
    let (mut p, ack) = open(&broker, connect(V3_1, ""));
    assert_eq!(ack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(!ack.session_present);
    assert_eq!(p.expect_closed(), vec![]);
}

#[test]
fn second_connection_with_the_same_client_id_takes_over() {
    let broker = TestBroker::start();
    for (old_v, new_v) in [(V3_1_1, V3_1_1), (V5, V5), (V5, V3_1_1), (V3_1_1, V5)] {
        let id = format!("dup-{}-{}", old_v.level(), new_v.level());
        let mut old = broker.client(old_v, &id);
        let mut new = broker.client(new_v, &id);
        // [MQTT-3.1.4-2] (3.1.1): the existing client is disconnected.
        // [MQTT-3.1.4-3] (5.0): it is sent DISCONNECT 0x8E (Session taken over) and its
        // network connection is closed.
        old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
        expect_pong(&mut new);
        new.disconnect();
    }
}

#[test]
fn session_present_reflects_stored_session_state() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let id = format!("sp-{}", v.level());
        // [MQTT-3.2.2-3] (3.1.1) / [MQTT-3.2.2-3] (5.0): no stored session, Session Present 0.
        let (p, ack) = open(&broker, persistent(v, &id));
        assert!(!ack.session_present, "{v}: first persistent connect");
        p.disconnect();
        // [MQTT-3.2.2-2] (3.1.1) / [MQTT-3.2.2-3] (5.0): stored session, Session Present 1.
        let (p, ack) = open(&broker, persistent(v, &id));
        assert!(ack.session_present, "{v}: resumed session");
        p.disconnect();
        // [MQTT-3.2.2-1] (3.1.1) / [MQTT-3.2.2-2] (5.0): Clean Start 1, Session Present 0,
        // although a session was stored.
        let (p, ack) = open(&broker, connect(v, &id));
        assert!(!ack.session_present, "{v}: clean start");
        p.disconnect();
        // The clean session ended with its connection: nothing left to resume.
        let (p, ack) = open(&broker, persistent(v, &id));
        assert!(!ack.session_present, "{v}: after a clean session");
        p.disconnect();
    }
}

#[test]
fn socket_that_never_sends_connect_is_closed_after_the_connect_timeout() {
    let broker = TestBroker::start_with(|cfg| cfg.limits.connect_timeout_secs = 1);
    let start = Instant::now();
    let mut silent = broker.peer(V5);
    // Section 3.1.4: a server that gets no CONNECT within a reasonable time closes the
    // connection; here `limits.connect_timeout_secs` (1 s). Nothing is sent.
    silent.expect_silence(Duration::from_millis(800));
    assert_eq!(
        closed_before(&mut silent, start + Duration::from_millis(1400)),
        vec![]
    );
    assert!(start.elapsed() >= Duration::from_millis(900));

    // The timeout is only for CONNECT: a connected client with keep-alive off stays.
    let mut quiet = broker.peer(V5);
    quiet.send(connect_with(V5, "quiet", |c| c.keep_alive_secs = 0));
    assert_eq!(quiet.recv_connack().reason_code, ReasonCode::SUCCESS);
    quiet.expect_silence(Duration::from_millis(1300));
    expect_pong(&mut quiet);
}

#[test]
fn second_connect_is_a_protocol_error() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let id = format!("twice-{}", v.level());
        let mut p = broker.client(v, &id);
        p.send(connect(v, &id));
        // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation and the client is
        // disconnected; 5.0 says why with DISCONNECT 0x82 (Protocol Error), section 4.13.
        p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
    }
}

#[test]
fn keep_alive_is_enforced_at_one_and_a_half_times_the_client_value() {
    let broker = TestBroker::start();
    let start = Instant::now();
    let mut peers: Vec<(ProtocolVersion, Peer)> = [V3_1, V3_1_1, V5]
        .into_iter()
        .map(|v| {
            let c = connect_with(v, &format!("ka-{}", v.level()), |c| c.keep_alive_secs = 1);
            let (p, ack) = open(&broker, c);
            assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
            assert_eq!(ack.properties.server_keep_alive, None, "{v}");
            (v, p)
        })
        .collect();
    // [MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5.0): with keep-alive 1 s the server
    // closes the connection after 1.5 s without a packet; at 1.2 s it is still open.
    for (_, p) in &mut peers {
        p.expect_silence(
            (start + Duration::from_millis(1200)).saturating_duration_since(Instant::now()),
        );
    }
    for (v, p) in &mut peers {
        let got = closed_before(p, start + Duration::from_millis(1750));
        // 5.0: DISCONNECT 0x8D (Keep Alive timeout) first (section 3.14.2.1, Table 3-10).
        assert_last_words(*v, &got, ReasonCode::KEEP_ALIVE_TIMEOUT);
    }
}

#[test]
fn pingreq_is_answered_and_resets_the_keep_alive() {
    let broker = TestBroker::start();
    let start = Instant::now();
    let mut peers: Vec<Peer> = [V3_1_1, V5]
        .into_iter()
        .map(|v| {
            let c = connect_with(v, &format!("ping-{}", v.level()), |c| c.keep_alive_secs = 1);
            open(&broker, c).0
        })
        .collect();
    // [MQTT-3.12.4-1]: PINGREQ is answered with PINGRESP. Each PINGREQ is a packet from the
    // client, so the 1.5 s keep-alive deadline restarts from it: at 2.1 s, long past 1.5 s
    // after CONNECT, the connections are still open.
    for at_ms in [700, 1400, 2100] {
        std::thread::sleep(
            (start + Duration::from_millis(at_ms)).saturating_duration_since(Instant::now()),
        );
        for p in &mut peers {
            expect_pong(p);
        }
    }
}

#[test]
fn server_keep_alive_replaces_a_larger_or_zero_keep_alive() {
    let broker = TestBroker::start_with(|cfg| cfg.mqtt.max_keep_alive_secs = Some(1));
    let start = Instant::now();
    // A 3.1.1 client cannot be told of a Server Keep Alive, so its own value stands: it is
    // still connected after the others time out.
    let (mut v311, _) = open(
        &broker,
        connect_with(V3_1_1, "ska-311", |c| c.keep_alive_secs = 60),
    );
    let mut peers = Vec::new();
    for v in [V5] {
        for requested in [60, 0] {
            let id = format!("ska-{}-{requested}", v.level());
            let (p, ack) = open(
                &broker,
                connect_with(v, &id, |c| c.keep_alive_secs = requested),
            );
            if v.is_v5() {
                // Section 3.2.2.3.14: the server announces the keep-alive it uses instead of
                // the client's as Server Keep Alive, and the client uses it [MQTT-3.2.2-21].
                assert_eq!(
                    ack.properties.server_keep_alive,
                    Some(1),
                    "asked for {requested}"
                );
            }
            peers.push((v, p));
        }
    }
    // Asking for no more than the maximum: no Server Keep Alive, the client's value stands
    // [MQTT-3.2.2-22] (5.0).
    let (mut equal, ack) = open(
        &broker,
        connect_with(V5, "ska-equal", |c| c.keep_alive_secs = 1),
    );
    assert_eq!(ack.properties.server_keep_alive, None);

    // The server's keep-alive is the one enforced: 1.5 s of silence closes the connection.
    for (_, p) in &mut peers {
        p.expect_silence(
            (start + Duration::from_millis(1200)).saturating_duration_since(Instant::now()),
        );
    }
    for (v, p) in &mut peers {
        let got = closed_before(p, start + Duration::from_millis(1750));
        assert_last_words(*v, &got, ReasonCode::KEEP_ALIVE_TIMEOUT);
    }
    v311.send(Packet::PingReq);
    assert_eq!(
        v311.recv(),
        Packet::PingResp,
        "3.1.1 client keeps its own keep-alive"
    );
    let got = closed_before(&mut equal, start + Duration::from_millis(1750));
    assert_last_words(V5, &got, ReasonCode::KEEP_ALIVE_TIMEOUT);
}

#[test]
fn v5_connack_advertises_limits_and_features() {
    let broker = TestBroker::start();
    for keep_alive in [60, 0] {
        let id = format!("props-{keep_alive}");
        let (p, ack) = open(
            &broker,
            connect_with(V5, &id, |c| c.keep_alive_secs = keep_alive),
        );
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
        let props = &ack.properties;
        // Sections 3.2.2.3.6, 3.2.2.3.3 and 3.2.2.3.8: the default limits.
        assert_eq!(props.maximum_packet_size.map(|n| n.get()), Some(1_048_576));
        assert_eq!(props.receive_maximum.map(|n| n.get()), Some(64));
        assert_eq!(props.topic_alias_maximum, Some(64));
        // Sections 3.2.2.3.5, 3.2.2.3.11 to 3.2.2.3.13: every feature available.
        assert_eq!(props.retain_available, Some(true));
        assert_eq!(props.wildcard_subscription_available, Some(true));
        assert_eq!(props.subscription_identifiers_available, Some(true));
        assert_eq!(props.shared_subscription_available, Some(true));
        // QoS 2 is supported, so no Maximum QoS [MQTT-3.2.2-9]; nothing that was not asked
        // for: Server Keep Alive only to replace a keep-alive of 0 (the default maximum,
        // mqtt.max_keep_alive_secs = 7200, leaves 60 alone) [MQTT-3.2.2-21], no Session
        // Expiry Interval when the requested one is granted, no Assigned Client Identifier
        // for a named client.
        assert_eq!(props.maximum_qos, None);
        let expected_keep_alive = (keep_alive == 0).then_some(7200);
        assert_eq!(props.server_keep_alive, expected_keep_alive);
        assert_eq!(props.session_expiry_interval, None);
        assert_eq!(props.assigned_client_identifier, None);
        assert_eq!(props.authentication_method, None);
        p.disconnect();
    }
}

#[test]
fn v5_connack_advertises_the_configured_limits_and_features() {
    let broker = TestBroker::start_with(|cfg| {
        cfg.mqtt.max_packet_size = 2000;
        cfg.mqtt.receive_maximum = 10;
        cfg.mqtt.topic_alias_maximum = 5;
        cfg.mqtt.retain_available = false;
        cfg.mqtt.wildcard_subscription_available = false;
        cfg.mqtt.subscription_identifiers_available = false;
        cfg.mqtt.shared_subscription_available = false;
    });
    let (_p, ack) = open(&broker, connect(V5, "configured"));
    let props = &ack.properties;
    assert_eq!(props.maximum_packet_size.map(|n| n.get()), Some(2000));
    assert_eq!(props.receive_maximum.map(|n| n.get()), Some(10));
    assert_eq!(props.topic_alias_maximum, Some(5));
    // A feature that is absent defaults to available, so "not available" must be sent.
    assert_eq!(props.retain_available, Some(false));
    assert_eq!(props.wildcard_subscription_available, Some(false));
    assert_eq!(props.subscription_identifiers_available, Some(false));
    assert_eq!(props.shared_subscription_available, Some(false));
}

#[test]
fn authentication_method_is_refused_with_0x8c() {
    let broker = TestBroker::start();
    let mut sub = broker.client(V5, "watcher");
    sub.subscribe("auth/#", QoS::AtMostOnce);
    // A stored session and a live connection for the same client id.
    let (p, _) = open(&broker, persistent(V5, "auth"));
    p.disconnect();
    let (mut live, ack) = open(&broker, persistent(V5, "auth"));
    assert!(ack.session_present);

    let mut p = broker.peer(V5);
    let mut c = persistent(V5, "auth");
    c.properties.authentication_method = Some(MqttString::new("SCRAM-SHA-1").unwrap());
    p.send(c);
    p.send(publish(
        "auth/x",
        b"after refused connect",
        QoS::AtMostOnce,
        0,
    ));
    // [MQTT-4.12.0-1]: an unsupported Authentication Method gets CONNACK 0x8C (Bad
    // authentication method) and the connection is closed [MQTT-3.2.2-7].
    let ack = p.recv_connack();
    assert_eq!(ack.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD);
    // [MQTT-3.2.2-6]: Session Present 0 with a failure, although a session is stored.
    assert!(!ack.session_present);
    assert_eq!(p.expect_closed(), vec![]);
    // [MQTT-3.1.4-6]: nothing after the refused CONNECT is processed.
    sub.expect_silence(Duration::from_millis(300));
    // A refused CONNECT takes nothing over (section 3.1.4: only after validation succeeds).
    expect_pong(&mut live);
    live.disconnect();
    let (_p, ack) = open(&broker, persistent(V5, "auth"));
    assert!(ack.session_present, "the stored session is untouched");
}

#[test]
fn graceful_shutdown_sends_v5_clients_disconnect_0x8b() {
    let broker = TestBroker::start();
    let mut peers: Vec<(ProtocolVersion, Peer)> = [V3_1, V3_1_1, V5]
        .into_iter()
        .map(|v| (v, broker.client(v, &format!("stay-{}", v.level()))))
        .collect();
    broker.shutdown();
    for (v, p) in &mut peers {
        // 5.0 section 3.14.2.1, Table 3-10: DISCONNECT 0x8B (Server shutting down); 3.x
        // connections are just closed.
        let got = p.expect_closed();
        assert_last_words(*v, &got, ReasonCode::SERVER_SHUTTING_DOWN);
    }
}

#[test]
fn v5_second_connect_with_a_bad_level_is_a_protocol_error_not_0x84_mqtt_3_14_2_1() {
    // 0x84 is a CONNACK code; on DISCONNECT the broker reports a protocol error.
    let broker = TestBroker::start();
    let mut p = broker.client(V5, "twice");
    let mut c = connect(V5, "twice");
    c.protocol = V5;
    let mut bytes = bytes::BytesMut::new();
    halyard_codec::Packet::from(c)
        .encode(V5, &mut bytes)
        .unwrap();
    // Protocol level byte (after 0x10, length, 00 04 "MQTT") set to 6.
    bytes[8] = 6;
    p.send_raw(&bytes);
    p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn v5_connack_larger_than_the_clients_maximum_packet_size_is_trimmed_mqtt_3_2_0_1() {
    let broker = TestBroker::start();
    let mut p = broker.peer(V5);
    let mut c = connect(V5, "tiny");
    c.properties.maximum_packet_size = std::num::NonZeroU32::new(20);
    p.send(c);
    // The client still gets its CONNACK, without the properties that only repeat defaults.
    let ack = p.recv_connack();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(ack.properties.retain_available, None);
    assert_eq!(ack.properties.receive_maximum.map(|r| r.get()), Some(64));
}
