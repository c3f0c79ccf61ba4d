//! Will messages: when they are published (socket closed, keep-alive timeout, protocol error,
//! takeover, 5.0 DISCONNECT 0x04) and when not (normal DISCONNECT), Will Retain and Will QoS,
//! the 5.0 Will Delay Interval against reconnection and session end, and 5.0 will properties.
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

use bytes::Bytes;
use halyard_codec::{
    Connect, Disconnect, MqttString, Packet, PayloadFormat, ProtocolVersion, Publish, QoS,
    ReasonCode, Will, WillProperties,
};
use harness::*;
use std::time::{Duration, Instant};

/// A will to `t` with `payload`, QoS 0, not retained, no properties.
fn will(t: &str, payload: &'static [u8]) -> Will {
    Will {
        topic: topic(t),
        payload: Bytes::from_static(payload),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties::default(),
    }
}

/// CONNECT with clean start and `w` as its will.
fn connect_with_will(v: ProtocolVersion, id: &str, w: Will) -> Connect {
    let mut c = connect(v, id);
    c.will = Some(w);
    c
}

/// 5.0 CONNECT with Clean Start 0, a Session Expiry Interval and a will with a Will Delay
/// Interval.
fn delayed(id: &str, w: Will, expiry: u32, delay: u32) -> Connect {
    let mut c = connect(V5, id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(expiry);
    let mut w = w;
    w.properties.will_delay_interval = Some(delay);
    c.will = Some(w);
    c
}

/// Connects `c` and checks the CONNACK.
fn open(broker: &TestBroker, c: Connect) -> Peer {
    let mut p = broker.peer(c.protocol);
    p.send(c);
    assert_eq!(p.recv_connack().reason_code, ReasonCode::SUCCESS);
    p
}

/// A client of level `v` subscribed to `filter` at QoS 2.
fn watcher(broker: &TestBroker, v: ProtocolVersion, id: &str, filter: &str) -> Peer {
    let mut w = broker.client(v, id);
    w.subscribe(filter, QoS::ExactlyOnce);
    w
}

/// Receives the will on `w`, checks its topic and payload, and completes its QoS flow.
fn expect_will(w: &mut Peer, t: &str, payload: &[u8]) -> Publish {
    let m = w.recv_publish();
    assert_eq!((m.topic.as_str(), &m.payload[..]), (t, payload));
    if let Some(id) = m.packet_id.map(|i| i.get()) {
        if m.qos == QoS::AtLeastOnce {
            w.send(Packet::PubAck(ack(id)));
        } else {
            w.send(Packet::PubRec(ack(id)));
            assert!(matches!(w.recv(), Packet::PubRel(a) if a.packet_id == pid(id)));
            w.send(Packet::PubComp(ack(id)));
        }
    }
    m
}

/// Waits until `at`.
fn sleep_until(at: Instant) {
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

#[test]
fn will_is_published_when_the_socket_closes_without_disconnect() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let t = format!("will/closed/{}", v.level());
        let mut w = watcher(&broker, v, &format!("w-{}", v.level()), &t);
        let p = open(
            &broker,
            connect_with_will(v, &format!("c-{}", v.level()), will(&t, b"bye")),
        );
        p.drop_connection();
        // [MQTT-3.1.2-8]: the will is published when the network connection closes without
        // a DISCONNECT (3.1.1) / without DISCONNECT 0x00 (5.0).
        let m = expect_will(&mut w, &t, b"bye");
        // Will QoS 0, Will Retain 0 [MQTT-3.1.2-16] (3.1.1) / [MQTT-3.1.2-14] (5.0).
        assert_eq!((m.qos, m.retain), (QoS::AtMostOnce, false));
        w.expect_silence(Duration::from_millis(200));
    }
}

#[test]
fn will_is_published_on_keep_alive_timeout() {
    let broker = TestBroker::start();
    let start = Instant::now();
    let mut cases = Vec::new();
    for v in [V3_1_1, V5] {
        let t = format!("will/ka/{}", v.level());
        let w = watcher(&broker, V5, &format!("w-{}", v.level()), &t);
        let mut c = connect_with_will(v, &format!("c-{}", v.level()), will(&t, b"timed out"));
        c.keep_alive_secs = 1;
        let p = open(&broker, c);
        cases.push((v, t, w, p));
    }
    // 3.1.1 section 3.1.2.5 lists failing to communicate within the keep-alive among the
    // causes; [MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5.0) close the connection after
    // 1.5 times the keep-alive "as if the network had failed", and [MQTT-3.1.2-8] then
    // publishes the will: not before 1.2 s, by about 1.75 s.
    for (_, _, w, _) in &mut cases {
        w.expect_silence(
            (start + Duration::from_millis(1200)).saturating_duration_since(Instant::now()),
        );
    }
    for (v, t, w, p) in &mut cases {
        let left = (start + Duration::from_millis(1800)).saturating_duration_since(Instant::now());
        match w.recv_or_closed(left) {
            Some(Packet::Publish(m)) => assert_eq!(m.payload, &b"timed out"[..], "{v} {t}"),
            other => panic!("{v}: expected the will, got {other:?}"),
        }
        p.expect_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT);
    }
}

#[test]
fn will_is_published_on_a_protocol_error() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let t = format!("will/error/{}", v.level());
        let mut w = watcher(&broker, v, &format!("w-{}", v.level()), &t);

        // A second CONNECT [MQTT-3.1.0-2].
        let id = format!("twice-{}", v.level());
        let mut p = open(
            &broker,
            connect_with_will(v, &id, will(&t, b"second connect")),
        );
        p.send(connect(v, &id));
        p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
        // [MQTT-3.1.2-8]: section 3.1.2.5 lists the server closing the connection because of
        // a protocol error (3.1.1), or without having received DISCONNECT 0x00 (5.0).
        expect_will(&mut w, &t, b"second connect");

        // A malformed packet: PUBLISH with QoS 3 [MQTT-3.3.1-4].
        let id = format!("malformed-{}", v.level());
        let mut p = open(&broker, connect_with_will(v, &id, will(&t, b"malformed")));
        p.send_raw(&[0x36, 0x03, 0x00, 0x01, b't']);
        p.expect_disconnect(ReasonCode::MALFORMED_PACKET);
        expect_will(&mut w, &t, b"malformed");
        w.expect_silence(Duration::from_millis(200));
    }
}

#[test]
fn will_is_not_published_after_a_normal_disconnect() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let t = format!("will/normal/{}", v.level());
        let mut w = watcher(&broker, v, &format!("w-{}", v.level()), &t);
        let p = open(
            &broker,
            connect_with_will(v, &format!("c-{}", v.level()), will(&t, b"no")),
        );
        // [MQTT-3.14.4-3]: on DISCONNECT (5.0: with Reason Code 0x00) the will is discarded
        // without being published.
        p.disconnect();
        w.expect_silence(Duration::from_millis(400));
    }
    // 5.0 with the reason code written out.
    let t = "will/normal/explicit";
    let mut w = watcher(&broker, V5, "w-explicit", t);
    let mut p = open(&broker, connect_with_will(V5, "c-explicit", will(t, b"no")));
    let mut d = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    d.properties.reason_string = Some(MqttString::new("done").unwrap());
    p.send(d);
    assert_eq!(p.expect_closed(), vec![]);
    w.expect_silence(Duration::from_millis(400));
}

#[test]
fn v5_disconnect_with_will_message_publishes_the_will() {
    let broker = TestBroker::start();
    let t = "will/asked";
    let mut w = watcher(&broker, V5, "w", t);
    let mut p = open(&broker, connect_with_will(V5, "c", will(t, b"as asked")));
    // Table 3-10: 0x04 Disconnect with Will Message: the client disconnects but wants its
    // will published [MQTT-3.1.2-8].
    p.send(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE));
    assert_eq!(p.expect_closed(), vec![]);
    expect_will(&mut w, t, b"as asked");
    w.expect_silence(Duration::from_millis(200));
}

#[test]
fn will_retain_publishes_a_retained_message() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let t = format!("will/retained/{}", v.level());
        let mut live = watcher(&broker, v, &format!("live-{}", v.level()), &t);
        let mut w = will(&t, b"retained");
        w.retain = true;
        w.qos = QoS::AtLeastOnce;
        open(
            &broker,
            connect_with_will(v, &format!("c-{}", v.level()), w),
        )
        .drop_connection();
        // A subscriber already there gets it with RETAIN 0 ([MQTT-3.3.1-9] (3.1.1) /
        // [MQTT-3.3.1-12] (5.0), Retain As Published being 0).
        let m = expect_will(&mut live, &t, b"retained");
        assert!(!m.retain, "{v}");
        // [MQTT-3.1.2-17] (3.1.1) / [MQTT-3.1.2-15] (5.0): published as a retained message,
        // so a later subscriber receives it with RETAIN 1 ([MQTT-3.3.1-8] (3.1.1) / section
        // 3.3.1.3 (5.0)), at the will's QoS.
        let mut later = watcher(&broker, v, &format!("later-{}", v.level()), &t);
        let m = expect_will(&mut later, &t, b"retained");
        assert_eq!((m.retain, m.qos), (true, QoS::AtLeastOnce), "{v}");
    }
}

#[test]
fn will_without_retain_is_not_retained() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let t = format!("will/not-retained/{}", v.level());
        let mut live = watcher(&broker, v, &format!("live-{}", v.level()), &t);
        open(
            &broker,
            connect_with_will(v, &format!("c-{}", v.level()), will(&t, b"once")),
        )
        .drop_connection();
        expect_will(&mut live, &t, b"once");
        // [MQTT-3.1.2-16] (3.1.1) / [MQTT-3.1.2-14] (5.0): published as a non-retained
        // message, so a later subscriber gets nothing.
        let mut later = watcher(&broker, v, &format!("later-{}", v.level()), &t);
        later.expect_silence(Duration::from_millis(300));
    }
}

#[test]
fn will_is_published_at_its_qos() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let t = format!("will/qos/{}/{}", v.level(), qos.as_u8());
            let mut w = watcher(&broker, v, &format!("w-{}-{}", v.level(), qos.as_u8()), &t);
            let mut lower = broker.client(v, &format!("l-{}-{}", v.level(), qos.as_u8()));
            lower.subscribe(&t, QoS::AtLeastOnce);
            let mut wm = will(&t, b"qos");
            wm.qos = qos;
            let id = format!("c-{}-{}", v.level(), qos.as_u8());
            open(&broker, connect_with_will(v, &id, wm)).drop_connection();
            // Section 3.1.2.6: Will QoS is the QoS the will is published with; each
            // subscriber gets it at no more than its subscription's QoS (section 3.8.4).
            assert_eq!(expect_will(&mut w, &t, b"qos").qos, qos, "{v}");
            assert_eq!(
                expect_will(&mut lower, &t, b"qos").qos,
                qos.min(QoS::AtLeastOnce),
                "{v}"
            );
        }
    }
}

#[test]
fn will_is_published_when_another_connection_takes_over() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let t = format!("will/takeover/{}", v.level());
        let mut w = watcher(&broker, v, &format!("w-{}", v.level()), &t);

        // New connection with Clean Start 1.
        let id = format!("c-{}", v.level());
        let mut old = open(&broker, connect_with_will(v, &id, will(&t, b"clean")));
        let _new = broker.client(v, &id);
        // [MQTT-3.1.4-2] (3.1.1) / [MQTT-3.1.4-3] (5.0): the existing connection is closed,
        // and a connection closed without DISCONNECT publishes its will [MQTT-3.1.2-8].
        old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
        expect_will(&mut w, &t, b"clean");

        // New connection resuming the session (no Will Delay Interval).
        let id = format!("r-{}", v.level());
        let mut c = connect_with_will(v, &id, will(&t, b"resumed"));
        c.clean_start = false;
        if v.is_v5() {
            c.properties.session_expiry_interval = Some(60);
        }
        let mut old = open(&broker, c);
        let mut c = connect(v, &id);
        c.clean_start = false;
        if v.is_v5() {
            c.properties.session_expiry_interval = Some(60);
        }
        let _new = open(&broker, c);
        old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
        expect_will(&mut w, &t, b"resumed");
        w.expect_silence(Duration::from_millis(200));
    }
}

#[test]
fn v5_will_is_published_after_the_will_delay_interval() {
    let broker = TestBroker::start();
    let t = "will/delay";
    let mut w = watcher(&broker, V5, "w", t);
    let p = open(&broker, delayed("c", will(t, b"late"), 2, 1));
    let start = Instant::now();
    p.drop_connection();
    // [MQTT-3.1.2-8] and section 3.1.3.2.2: the will is published once the Will Delay
    // Interval (1 s) has passed since the connection closed, not before.
    w.expect_silence(Duration::from_millis(700));
    let left = (start + Duration::from_millis(1700)).saturating_duration_since(Instant::now());
    match w.recv_or_closed(left) {
        Some(Packet::Publish(m)) => assert_eq!(m.payload, &b"late"[..]),
        other => panic!("expected the will, got {other:?}"),
    }
    // [MQTT-3.1.2-10]: once published the will is removed: the session ending at 2 s does
    // not publish it again.
    sleep_until(start + Duration::from_millis(1800));
    w.expect_silence(Duration::from_millis(600));
}

#[test]
fn v5_reconnecting_within_the_will_delay_interval_cancels_the_will() {
    let broker = TestBroker::start();
    let t = "will/cancelled";
    let mut w = watcher(&broker, V5, "w", t);
    let p = open(&broker, delayed("c", will(t, b"never"), 60, 1));
    p.drop_connection();
    std::thread::sleep(Duration::from_millis(200));
    // [MQTT-3.1.3-9]: a new network connection to the session before the Will Delay
    // Interval has passed means the will MUST NOT be sent.
    let mut c = connect(V5, "c");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    let mut p = open(&broker, c);
    w.expect_silence(Duration::from_millis(1400));
    // Nor later, when that connection closes (it has no will of its own).
    p.send(Disconnect::default());
    assert_eq!(p.expect_closed(), vec![]);
    w.expect_silence(Duration::from_millis(300));
}

#[test]
fn v5_takeover_within_the_will_delay_interval_does_not_publish_the_will() {
    let broker = TestBroker::start();
    let t = "will/taken";
    let mut w = watcher(&broker, V5, "w", t);
    let mut old = open(&broker, delayed("c", will(t, b"never"), 60, 1));
    let mut c = connect(V5, "c");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    let _new = open(&broker, c);
    old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
    // [MQTT-3.1.3-9]: the session was continued by a new connection before the delay
    // passed (see also the non-normative comment to section 3.1.3.2.2).
    w.expect_silence(Duration::from_millis(1400));
}

#[test]
fn v5_reconnecting_with_clean_start_within_the_delay_publishes_the_will() {
    let broker = TestBroker::start();
    let t = "will/clean-restart";
    let mut w = watcher(&broker, V5, "w", t);
    let p = open(&broker, delayed("c", will(t, b"session ended"), 60, 30));
    p.drop_connection();
    std::thread::sleep(Duration::from_millis(200));
    // Section 3.1.3.2.2: the will is published when the Will Delay Interval passes or the
    // session ends, whichever is first [MQTT-3.1.2-8]; Clean Start 1 ends the old session
    // [MQTT-3.1.2-4], well before the 30 s delay.
    let _p = broker.client(V5, "c");
    expect_will(&mut w, t, b"session ended");
}

#[test]
fn v5_will_is_published_when_the_session_ends_before_the_delay() {
    let broker = TestBroker::start();
    let t = "will/expired";
    let mut w = watcher(&broker, V5, "w", t);
    // Session Expiry Interval 1 s, Will Delay Interval 30 s.
    let p = open(&broker, delayed("c", will(t, b"expired"), 1, 30));
    let start = Instant::now();
    p.drop_connection();
    // [MQTT-3.1.2-8]: published when the session ends (1 s), the delay notwithstanding.
    w.expect_silence(Duration::from_millis(600));
    let left = (start + Duration::from_millis(1700)).saturating_duration_since(Instant::now());
    match w.recv_or_closed(left) {
        Some(Packet::Publish(m)) => assert_eq!(m.payload, &b"expired"[..]),
        other => panic!("expected the will, got {other:?}"),
    }

    // A session that ends with its connection (expiry 0): the will goes out at once.
    let p = open(&broker, delayed("d", will(t, b"no session"), 0, 30));
    p.drop_connection();
    let m = w.recv_or_closed(Duration::from_millis(500));
    assert!(
        matches!(&m, Some(Packet::Publish(m)) if m.payload == b"no session"[..]),
        "{m:?}"
    );
}

#[test]
fn v5_takeover_of_a_session_with_zero_expiry_publishes_the_delayed_will() {
    let broker = TestBroker::start();
    let t = "will/zero-expiry-takeover";
    let mut w = watcher(&broker, V5, "w", t);
    let mut old = open(&broker, delayed("c", will(t, b"session ended"), 0, 30));
    let mut c = connect(V5, "c");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    let _new = open(&broker, c);
    old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
    // The old session had a Session Expiry Interval of 0, so it ends when its connection is
    // closed by the takeover (section 3.1.2.11.2); a session's end publishes a delayed will
    // [MQTT-3.1.2-8]. The non-normative comment after [MQTT-3.1.4-3] says as much for this
    // very case: with a Session Expiry Interval of 0 on the existing connection, its will is
    // sent because the original session ends on the takeover.
    expect_will(&mut w, t, b"session ended");
}

#[test]
fn v5_will_properties_arrive_with_the_will() {
    let broker = TestBroker::start();
    let t = "will/props";
    let mut w = watcher(&broker, V5, "w", t);
    let users = vec![
        (MqttString::new("k").unwrap(), MqttString::new("1").unwrap()),
        (
            MqttString::new("other").unwrap(),
            MqttString::new("x").unwrap(),
        ),
        (MqttString::new("k").unwrap(), MqttString::new("2").unwrap()),
    ];
    let mut wm = will(t, b"{\"state\":\"offline\"}");
    wm.properties = WillProperties {
        will_delay_interval: None,
        payload_format: Some(PayloadFormat::Utf8),
        message_expiry_interval: Some(60),
        content_type: Some(MqttString::new("application/json").unwrap()),
        response_topic: Some(topic("will/props/reply")),
        correlation_data: Some(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])),
        user_properties: users.clone(),
    };
    open(&broker, connect_with_will(V5, "c", wm)).drop_connection();
    let m = expect_will(&mut w, t, b"{\"state\":\"offline\"}");
    let p = &m.properties;
    // [MQTT-3.3.2-4]: Payload Format Indicator unaltered.
    assert_eq!(p.payload_format, Some(PayloadFormat::Utf8));
    // [MQTT-3.3.2-20]: Content Type unaltered.
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    // [MQTT-3.3.2-15] / [MQTT-3.3.2-16]: Response Topic and Correlation Data unaltered.
    assert_eq!(
        p.response_topic.as_ref().map(|t| t.as_str()),
        Some("will/props/reply")
    );
    assert_eq!(
        p.correlation_data.as_deref(),
        Some(&[0xde, 0xad, 0xbe, 0xef][..])
    );
    // [MQTT-3.3.2-17] / [MQTT-3.3.2-18], [MQTT-3.1.3-10]: User Properties unaltered and in
    // their order.
    assert_eq!(p.user_properties, users);
    // Section 3.1.3.2.4: the will's Message Expiry Interval is sent as the Publication
    // Expiry Interval, less the time it waited [MQTT-3.3.2-6].
    let expiry = p.message_expiry_interval.expect("Message Expiry Interval");
    assert!((55..=60).contains(&expiry), "{expiry}");
    // The will's own properties are not forwarded as PUBLISH properties.
    assert_eq!(p.topic_alias, None);
    assert!(p.subscription_identifiers.is_empty());
}
