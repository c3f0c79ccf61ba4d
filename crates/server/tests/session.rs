//! Sessions: clean start, persistent sessions and what they keep while the client is away,
//! the per-session queue limit, resending unacknowledged messages on resume, the 5.0 Session
//! Expiry Interval (in CONNECT and DISCONNECT), and exactly-once QoS 2 from clients.
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
    ConnAck, Connect, Disconnect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, Will,
    WillProperties,
};
use harness::*;
use std::time::Duration;

/// CONNECT asking to keep the session: Clean Session 0 on 3.x; Clean Start 0 with a Session
/// Expiry Interval of `expiry` seconds on 5.0.
fn persistent_for(v: ProtocolVersion, id: &str, expiry: u32) -> Connect {
    let mut c = connect(v, id);
    c.clean_start = false;
    if v.is_v5() {
        c.properties.session_expiry_interval = Some(expiry);
    }
    c
}

/// [`persistent_for`] with a Session Expiry Interval of 60 s.
fn persistent(v: ProtocolVersion, id: &str) -> Connect {
    persistent_for(v, id, 60)
}

/// Sends `c` on a new peer and returns the peer with its CONNACK, which must be a success.
fn open(broker: &TestBroker, c: Connect) -> (Peer, ConnAck) {
    let mut p = broker.peer(c.protocol);
    p.send(c);
    let ack = p.recv_connack();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    (p, ack)
}

/// Opens `c` and asserts the Session Present flag of its CONNACK.
fn open_expecting(broker: &TestBroker, c: Connect, session_present: bool) -> Peer {
    let v = c.protocol;
    let (p, ack) = open(broker, c);
    assert_eq!(ack.session_present, session_present, "{v}: Session Present");
    p
}

/// Publishes and completes the QoS flow with the broker.
fn publish_acked(p: &mut Peer, t: &str, payload: &[u8], qos: QoS, id: u16) {
    p.send(publish(t, payload, qos, id));
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => match p.recv() {
            Packet::PubAck(a) if a.packet_id == pid(id) => {}
            other => panic!("expected PUBACK {id}, got {other:?}"),
        },
        QoS::ExactlyOnce => {
            match p.recv() {
                Packet::PubRec(a) if a.packet_id == pid(id) => {}
                other => panic!("expected PUBREC {id}, got {other:?}"),
            }
            p.send(Packet::PubRel(ack(id)));
            match p.recv() {
                Packet::PubComp(a) if a.packet_id == pid(id) => {}
                other => panic!("expected PUBCOMP {id}, got {other:?}"),
            }
        }
    }
}

/// Acknowledges a PUBLISH from the broker as its QoS requires.
fn ack_delivery(p: &mut Peer, m: &Publish) {
    let Some(id) = m.packet_id.map(|i| i.get()) else {
        return;
    };
    if m.qos == QoS::AtLeastOnce {
        p.send(Packet::PubAck(ack(id)));
    } else {
        p.send(Packet::PubRec(ack(id)));
        match p.recv() {
            Packet::PubRel(a) if a.packet_id == pid(id) => {}
            other => panic!("expected PUBREL {id}, got {other:?}"),
        }
        p.send(Packet::PubComp(ack(id)));
    }
}

/// Receives the next PUBLISH and acknowledges it.
fn recv_and_ack(p: &mut Peer) -> Publish {
    let m = p.recv_publish();
    ack_delivery(p, &m);
    m
}

/// DISCONNECT carrying a Session Expiry Interval.
fn disconnect_with_expiry(secs: u32) -> Disconnect {
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(secs);
    d
}

#[test]
fn clean_start_discards_the_previous_session() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("clean-{}", v.level());
        let topic = format!("clean/{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&topic, QoS::AtLeastOnce);
        p.disconnect();
        publish_acked(&mut publ, &topic, b"queued", QoS::AtLeastOnce, 1);

        // [MQTT-3.1.2-6] (3.1.1) / [MQTT-3.1.2-4] (5.0): Clean Start discards the session:
        // neither its queued message nor its subscription survive.
        let mut p = open_expecting(&broker, connect(v, &id), false);
        p.expect_silence(Duration::from_millis(200));
        publish_acked(&mut publ, &topic, b"after clean start", QoS::AtLeastOnce, 2);
        p.expect_silence(Duration::from_millis(200));
        p.disconnect();
        // The clean session lasted as long as its connection.
        let p = open_expecting(&broker, persistent(v, &id), false);
        p.disconnect();
    }
}

#[test]
fn taking_over_a_clean_session_does_not_resume_it() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("clean-takeover-{}", v.level());
        let topic = format!("clean-takeover/{}", v.level());
        let mut old = broker.client(v, &id);
        old.subscribe(&topic, QoS::AtLeastOnce);
        // [MQTT-3.1.2-6] (3.1.1): a Clean Session lasts as long as its network connection
        // and its state MUST NOT be reused by a later session. 5.0 section 3.1.2.11.2: with
        // a Session Expiry Interval of 0 the session ends when the connection closes, and
        // [MQTT-4.1.0-2] its state is discarded. Taking over closes the old connection
        // ([MQTT-3.1.4-2] / [MQTT-3.1.4-3]), so there is no session to resume:
        // [MQTT-3.2.2-3] Session Present 0, and no subscription.
        let mut new = open_expecting(&broker, persistent(v, &id), false);
        old.expect_disconnect(ReasonCode::SESSION_TAKEN_OVER);
        publish_acked(&mut publ, &topic, b"not subscribed", QoS::AtLeastOnce, 1);
        new.expect_silence(Duration::from_millis(300));
        new.disconnect();
    }
}

#[test]
fn v5_clean_start_0_without_session_expiry_keeps_nothing() {
    let broker = TestBroker::start();
    // Section 3.1.2.11.2: an absent Session Expiry Interval is 0, and the session ends when
    // the network connection closes, whatever Clean Start says.
    let mut c = connect(V5, "no-expiry");
    c.clean_start = false;
    let mut p = open_expecting(&broker, c.clone(), false);
    p.subscribe("no-expiry/t", QoS::AtLeastOnce);
    p.disconnect();
    let mut p = open_expecting(&broker, c, false);
    let mut publ = broker.client(V5, "pub");
    publish_acked(&mut publ, "no-expiry/t", b"nobody", QoS::AtLeastOnce, 1);
    p.expect_silence(Duration::from_millis(300));
}

#[test]
fn persistent_session_keeps_subscriptions_and_queues_qos1_and_qos2_in_order() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("keep-{}", v.level());
        let topic = format!("keep/{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&topic, QoS::ExactlyOnce);
        p.disconnect();
        // [MQTT-3.1.2-5] (3.1.1) / [MQTT-3.1.2-23] (5.0): while the client is away the
        // session keeps its subscriptions and stores the QoS 1 and QoS 2 messages matching
        // them (section 4.1).
        let sent: [(&[u8], QoS); 4] = [
            (b"one", QoS::AtLeastOnce),
            (b"two", QoS::ExactlyOnce),
            (b"three", QoS::AtLeastOnce),
            (b"four", QoS::ExactlyOnce),
        ];
        for (i, (payload, qos)) in sent.iter().enumerate() {
            publish_acked(&mut publ, &topic, payload, *qos, 10 + i as u16);
        }
        // [MQTT-3.1.2-4] (3.1.1) / [MQTT-3.1.2-5] (5.0): the session is resumed and its
        // messages delivered, in the order they were published (section 4.6).
        let mut p = open_expecting(&broker, persistent(v, &id), true);
        let got: Vec<Publish> = (0..sent.len()).map(|_| p.recv_publish()).collect();
        for (m, (payload, qos)) in got.iter().zip(sent) {
            assert_eq!(m.topic.as_str(), topic);
            assert_eq!((&m.payload[..], m.qos), (payload, qos), "{v}");
            // First transmission: DUP 0 [MQTT-3.3.1-3].
            assert!(!m.dup, "{v}");
        }
        p.expect_silence(Duration::from_millis(200));
        for m in &got {
            ack_delivery(&mut p, m);
        }
        // The subscription is still there for messages published now.
        publish_acked(&mut publ, &topic, b"live", QoS::AtLeastOnce, 20);
        assert_eq!(recv_and_ack(&mut p).payload, &b"live"[..]);
        p.disconnect();
    }
}

#[test]
fn qos0_is_not_queued_for_offline_clients_by_default() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("q0-{}", v.level());
        let topic = format!("q0/{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&topic, QoS::AtLeastOnce);
        p.disconnect();
        publish_acked(&mut publ, &topic, b"qos0", QoS::AtMostOnce, 0);
        publish_acked(&mut publ, &topic, b"qos1", QoS::AtLeastOnce, 1);
        // [MQTT-3.1.2-5] (3.1.1): QoS 1 and 2 messages are stored; QoS 0 MAY be. By default
        // (`mqtt.queue_qos0_offline` false) it is not.
        let mut p = open_expecting(&broker, persistent(v, &id), true);
        let m = recv_and_ack(&mut p);
        assert_eq!(
            (&m.payload[..], m.qos),
            (&b"qos1"[..], QoS::AtLeastOnce),
            "{v}"
        );
        p.expect_silence(Duration::from_millis(200));
        p.disconnect();
    }
}

#[test]
fn qos0_is_queued_for_offline_clients_when_configured() {
    let broker = TestBroker::start_with(|cfg| cfg.mqtt.queue_qos0_offline = true);
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("q0-{}", v.level());
        let topic = format!("q0/{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&topic, QoS::AtLeastOnce);
        p.disconnect();
        publish_acked(&mut publ, &topic, b"qos0", QoS::AtMostOnce, 0);
        publish_acked(&mut publ, &topic, b"qos1", QoS::AtLeastOnce, 1);
        let mut p = open_expecting(&broker, persistent(v, &id), true);
        let m = recv_and_ack(&mut p);
        assert_eq!(
            (&m.payload[..], m.qos),
            (&b"qos0"[..], QoS::AtMostOnce),
            "{v}"
        );
        let m = recv_and_ack(&mut p);
        assert_eq!(
            (&m.payload[..], m.qos),
            (&b"qos1"[..], QoS::AtLeastOnce),
            "{v}"
        );
        p.expect_silence(Duration::from_millis(200));
        p.disconnect();
    }
}

#[test]
fn the_session_queue_limit_drops_what_overflows() {
    let broker = TestBroker::start_with(|cfg| cfg.mqtt.max_queued_messages = 3);
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("limit-{}", v.level());
        let topic = format!("limit/{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&topic, QoS::AtLeastOnce);
        p.disconnect();
        // `mqtt.max_queued_messages` = 3: the first three are queued, the rest dropped.
        for n in 1..=5u16 {
            publish_acked(
                &mut publ,
                &topic,
                format!("m{n}").as_bytes(),
                QoS::AtLeastOnce,
                n,
            );
        }
        let mut p = open_expecting(&broker, persistent(v, &id), true);
        for n in 1..=3 {
            assert_eq!(
                recv_and_ack(&mut p).payload,
                format!("m{n}").as_bytes(),
                "{v}"
            );
        }
        p.expect_silence(Duration::from_millis(300));
        p.disconnect();
    }
}

#[test]
fn unacknowledged_messages_are_resent_with_dup_in_original_order() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("resend-{}", v.level());
        let topic = format!("resend/{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&topic, QoS::ExactlyOnce);
        let sent: [(&[u8], QoS); 3] = [
            (b"a", QoS::AtLeastOnce),
            (b"b", QoS::ExactlyOnce),
            (b"c", QoS::AtLeastOnce),
        ];
        for (i, (payload, qos)) in sent.iter().enumerate() {
            publish_acked(&mut publ, &topic, payload, *qos, 30 + i as u16);
        }
        // Received but not acknowledged: no PUBACK, no PUBREC.
        let first: Vec<Publish> = (0..3).map(|_| p.recv_publish()).collect();
        for (m, (payload, qos)) in first.iter().zip(sent) {
            assert_eq!((&m.payload[..], m.qos, m.dup), (payload, qos, false), "{v}");
        }
        p.drop_connection();

        // [MQTT-4.4.0-1]: on resuming, unacknowledged PUBLISH packets are resent with their
        // original Packet Identifiers, DUP 1 [MQTT-3.3.1-1], in the order they were first
        // sent ([MQTT-4.6.0-1], which [MQTT-4.6.0-6] (3.1.1) / [MQTT-4.6.0-5] (5.0) apply to
        // the server).
        let mut p = open_expecting(&broker, persistent(v, &id), true);
        for orig in &first {
            let m = p.recv_publish();
            assert_eq!(
                (&m.payload[..], m.qos, m.packet_id, m.dup),
                (&orig.payload[..], orig.qos, orig.packet_id, true),
                "{v}"
            );
        }
        p.expect_silence(Duration::from_millis(200));
        for m in &first {
            ack_delivery(&mut p, m);
        }
        p.expect_silence(Duration::from_millis(200));
        p.drop_connection();
        // Acknowledged now: nothing to resend on the next resume.
        let mut p = open_expecting(&broker, persistent(v, &id), true);
        p.expect_silence(Duration::from_millis(300));
        p.disconnect();
    }
}

#[test]
fn resent_messages_come_before_queued_ones_and_only_they_carry_dup() {
    // At most 2 unacknowledged messages in flight to a client.
    let broker = TestBroker::start_with(|cfg| cfg.mqtt.max_inflight = 2);
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("window-{}", v.level());
        let topic = format!("window/{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&topic, QoS::AtLeastOnce);
        for n in 1..=4u16 {
            publish_acked(
                &mut publ,
                &topic,
                format!("m{n}").as_bytes(),
                QoS::AtLeastOnce,
                n,
            );
        }
        // m1 and m2 in flight, m3 and m4 waiting for room in the window.
        let first: Vec<Publish> = (0..2).map(|_| p.recv_publish()).collect();
        p.expect_silence(Duration::from_millis(200));
        p.drop_connection();

        let mut p = open_expecting(&broker, persistent(v, &id), true);
        // [MQTT-4.4.0-1] with DUP 1 [MQTT-3.3.1-1], in order (section 4.6).
        for orig in &first {
            let m = p.recv_publish();
            assert_eq!(
                (&m.payload[..], m.packet_id, m.dup),
                (&orig.payload[..], orig.packet_id, true),
                "{v}"
            );
        }
        // Then the messages never sent before, in order, with DUP 0: [MQTT-3.3.1-3] the DUP
        // flag is set only on a retransmission.
        for (orig, n) in first.iter().zip(3..=4) {
            p.send(Packet::PubAck(ack(orig.packet_id.unwrap().get())));
            let m = p.recv_publish();
            assert_eq!(
                (&m.payload[..], m.dup),
                (format!("m{n}").as_bytes(), false),
                "{v}"
            );
            ack_delivery(&mut p, &m);
        }
        p.expect_silence(Duration::from_millis(200));
        p.disconnect();
    }
}

#[test]
fn qos2_message_with_pubrec_but_no_pubcomp_resumes_with_pubrel() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("pubrel-{}", v.level());
        let topic = format!("pubrel/{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&topic, QoS::ExactlyOnce);
        publish_acked(&mut publ, &topic, b"twice?", QoS::ExactlyOnce, 40);
        let m = p.recv_publish();
        let pkid = m.packet_id.unwrap();
        p.send(Packet::PubRec(ack(pkid.get())));
        match p.recv() {
            Packet::PubRel(a) => assert_eq!(a.packet_id, pkid),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        // No PUBCOMP.
        p.drop_connection();

        // [MQTT-4.4.0-1]: the unacknowledged PUBREL is resent with its Packet Identifier;
        // the PUBLISH is not, once PUBREL was sent ([MQTT-4.3.3-1] (3.1.1) /
        // [MQTT-4.3.3-6] (5.0)).
        let mut p = open_expecting(&broker, persistent(v, &id), true);
        match p.recv() {
            Packet::PubRel(a) => assert_eq!(a.packet_id, pkid, "{v}"),
            other => panic!("{v}: expected PUBREL, got {other:?}"),
        }
        p.send(Packet::PubComp(ack(pkid.get())));
        p.expect_silence(Duration::from_millis(300));
        p.disconnect();
    }
}

#[test]
fn v5_session_survives_within_its_expiry_interval_and_ends_after_it() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    let mut p = open_expecting(&broker, persistent_for(V5, "expiry", 1), false);
    p.subscribe("expiry/t", QoS::AtLeastOnce);
    p.disconnect();
    publish_acked(&mut publ, "expiry/t", b"within", QoS::AtLeastOnce, 1);
    // [MQTT-3.1.2-23]: the session is stored after the connection closes while the Session
    // Expiry Interval (1 s) runs.
    std::thread::sleep(Duration::from_millis(300));
    let mut p = open_expecting(&broker, persistent_for(V5, "expiry", 1), true);
    assert_eq!(recv_and_ack(&mut p).payload, &b"within"[..]);
    p.disconnect();
    // [MQTT-4.1.0-2]: once the connection is closed and the interval has passed, the session
    // is discarded: no Session Present, no subscription, nothing queued.
    std::thread::sleep(Duration::from_millis(1500));
    publish_acked(&mut publ, "expiry/t", b"after", QoS::AtLeastOnce, 2);
    let mut p = open_expecting(&broker, persistent_for(V5, "expiry", 1), false);
    p.expect_silence(Duration::from_millis(200));
    publish_acked(&mut publ, "expiry/t", b"unsubscribed", QoS::AtLeastOnce, 3);
    p.expect_silence(Duration::from_millis(200));
}

#[test]
fn v5_session_expiry_is_capped_by_the_configured_maximum() {
    let broker = TestBroker::start_with(|cfg| cfg.mqtt.max_session_expiry_secs = Some(1));
    // Section 3.2.2.3.2: the server tells the client the Session Expiry Interval it uses
    // when it is not the one asked for.
    let (p, ack) = open(&broker, persistent_for(V5, "capped", 60));
    assert_eq!(ack.properties.session_expiry_interval, Some(1));
    p.disconnect();
    std::thread::sleep(Duration::from_millis(1500));
    open_expecting(&broker, persistent_for(V5, "capped", 60), false).disconnect();
}

#[test]
fn v5_disconnect_can_shorten_the_session_expiry_interval() {
    let broker = TestBroker::start();
    let mut p = open_expecting(&broker, persistent_for(V5, "shorten", 60), false);
    p.subscribe("shorten/t", QoS::AtLeastOnce);
    // Section 3.14.2.2.2: the Session Expiry Interval in DISCONNECT replaces CONNECT's; 0
    // ends the session with the connection.
    p.send(disconnect_with_expiry(0));
    assert_eq!(p.expect_closed(), vec![]);
    open_expecting(&broker, persistent_for(V5, "shorten", 60), false).disconnect();
}

#[test]
fn v5_disconnect_can_extend_the_session_expiry_interval() {
    let broker = TestBroker::start();
    let mut p = open_expecting(&broker, persistent_for(V5, "extend", 1), false);
    p.subscribe("extend/t", QoS::AtLeastOnce);
    // Section 3.14.2.2.2: 1 s in CONNECT, 30 s in DISCONNECT: the session outlives 1 s.
    p.send(disconnect_with_expiry(30));
    assert_eq!(p.expect_closed(), vec![]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut publ = broker.client(V5, "pub");
    let mut p = open_expecting(&broker, persistent_for(V5, "extend", 1), true);
    publish_acked(
        &mut publ,
        "extend/t",
        b"still subscribed",
        QoS::AtLeastOnce,
        1,
    );
    assert_eq!(recv_and_ack(&mut p).payload, &b"still subscribed"[..]);
}

#[test]
fn v5_disconnect_setting_expiry_after_zero_in_connect_is_a_protocol_error() {
    let broker = TestBroker::start();
    let mut watcher = broker.client(V5, "watcher");
    watcher.subscribe("zero-then/will", QoS::AtMostOnce);
    let mut c = connect(V5, "zero-then");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(0);
    c.will = Some(Will {
        topic: topic("zero-then/will"),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties::default(),
    });
    let mut p = open_expecting(&broker, c, false);
    p.subscribe("zero-then/t", QoS::AtLeastOnce);
    // Section 3.14.2.2.2: a non-zero Session Expiry Interval in DISCONNECT after 0 in
    // CONNECT is a Protocol Error; the server does not treat it as a valid DISCONNECT and
    // answers with DISCONNECT 0x82.
    p.send(disconnect_with_expiry(30));
    p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
    // Not a valid DISCONNECT: the will is published (section 3.1.2.5) and the session,
    // with its interval still 0, ended with the connection.
    assert_eq!(watcher.recv_publish().payload, &b"gone"[..]);
    open_expecting(&broker, persistent(V5, "zero-then"), false).disconnect();
}

#[test]
fn qos2_from_a_client_is_delivered_exactly_once() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let topic = format!("once/{}", v.level());
        let mut sub = broker.client(v, &format!("once-sub-{}", v.level()));
        sub.subscribe(&topic, QoS::ExactlyOnce);
        let mut publ = broker.client(v, &format!("once-pub-{}", v.level()));
        publ.send(publish(&topic, b"once", QoS::ExactlyOnce, 9));
        assert!(matches!(publ.recv(), Packet::PubRec(a) if a.packet_id == pid(9)));
        assert_eq!(recv_and_ack(&mut sub).payload, &b"once"[..]);

        // [MQTT-4.3.3-2] (3.1.1) / [MQTT-4.3.3-10] (5.0): until PUBREL, a PUBLISH with the
        // same Packet Identifier is answered with PUBREC and not delivered again.
        let mut again = publish(&topic, b"once", QoS::ExactlyOnce, 9);
        again.dup = true;
        publ.send(again);
        assert!(matches!(publ.recv(), Packet::PubRec(a) if a.packet_id == pid(9)));
        sub.expect_silence(Duration::from_millis(300));

        publ.send(Packet::PubRel(ack(9)));
        match publ.recv() {
            Packet::PubComp(a) => {
                assert_eq!(a.packet_id, pid(9));
                assert_eq!(a.reason_code, ReasonCode::SUCCESS);
            }
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
        // [MQTT-4.3.3-2] (3.1.1) / [MQTT-4.3.3-12] (5.0): after PUBCOMP the same Packet
        // Identifier is a new message.
        publish_acked(&mut publ, &topic, b"new", QoS::ExactlyOnce, 9);
        assert_eq!(recv_and_ack(&mut sub).payload, &b"new"[..]);
        sub.expect_silence(Duration::from_millis(200));
    }
}

#[test]
fn qos2_from_a_client_is_delivered_exactly_once_across_a_reconnect() {
    let broker = TestBroker::start();
    for v in [V3_1_1, V5] {
        let topic = format!("once-resumed/{}", v.level());
        let id = format!("once-resumed-pub-{}", v.level());
        let mut sub = broker.client(v, &format!("once-resumed-sub-{}", v.level()));
        sub.subscribe(&topic, QoS::ExactlyOnce);
        let mut publ = open_expecting(&broker, persistent(v, &id), false);
        publ.send(publish(&topic, b"once", QoS::ExactlyOnce, 7));
        assert!(matches!(publ.recv(), Packet::PubRec(a) if a.packet_id == pid(7)));
        assert_eq!(recv_and_ack(&mut sub).payload, &b"once"[..]);
        publ.drop_connection();

        // Section 4.1: the session state includes QoS 2 messages received from the client
        // and not completely acknowledged, so the exactly-once rule holds across the
        // reconnect ([MQTT-4.3.3-2] (3.1.1) / [MQTT-4.3.3-10] (5.0)).
        let mut publ = open_expecting(&broker, persistent(v, &id), true);
        let mut again = publish(&topic, b"once", QoS::ExactlyOnce, 7);
        again.dup = true;
        publ.send(again);
        assert!(matches!(publ.recv(), Packet::PubRec(a) if a.packet_id == pid(7)));
        publ.send(Packet::PubRel(ack(7)));
        match publ.recv() {
            Packet::PubComp(a) => {
                assert_eq!(a.packet_id, pid(7));
                assert_eq!(a.reason_code, ReasonCode::SUCCESS, "{v}: id known");
            }
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
        sub.expect_silence(Duration::from_millis(300));
        publ.disconnect();
    }
}

#[test]
fn v5_resent_messages_respect_the_new_receive_maximum_mqtt_3_3_4_9() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    let mut p = open_expecting(&broker, persistent(V5, "rm"), false);
    p.subscribe("rm/t", QoS::AtLeastOnce);
    for i in 0..5u8 {
        publish_acked(
            &mut publ,
            "rm/t",
            &[b'0' + i],
            QoS::AtLeastOnce,
            40 + u16::from(i),
        );
    }
    let first: Vec<Publish> = (0..5).map(|_| p.recv_publish()).collect();
    p.drop_connection();

    // Back with Receive Maximum 2: only two unacknowledged PUBLISH at a time, still in
    // order with their original identifiers [MQTT-4.4.0-1].
    let mut c = persistent(V5, "rm");
    c.properties.receive_maximum = std::num::NonZeroU16::new(2);
    let mut p = open_expecting(&broker, c, true);
    let mut got = Vec::new();
    for chunk in first.chunks(2) {
        let batch: Vec<Publish> = chunk.iter().map(|_| p.recv_publish()).collect();
        p.expect_silence(Duration::from_millis(200));
        for (m, orig) in batch.iter().zip(chunk) {
            assert_eq!((m.packet_id, m.dup), (orig.packet_id, true));
            p.send(Packet::PubAck(ack(m.packet_id.unwrap().get())));
            got.push(m.payload.clone());
        }
    }
    assert_eq!(
        got,
        first.iter().map(|m| m.payload.clone()).collect::<Vec<_>>()
    );
    p.disconnect();
}

#[test]
fn v5_unacknowledged_message_too_large_for_the_new_maximum_is_dropped_mqtt_3_1_2_25() {
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    let mut p = open_expecting(&broker, persistent(V5, "shrink"), false);
    p.subscribe("shrink/t", QoS::AtLeastOnce);
    publish_acked(&mut publ, "shrink/t", &[b'x'; 300], QoS::AtLeastOnce, 50);
    assert_eq!(p.recv_publish().payload.len(), 300);
    p.drop_connection();

    // Back with a Maximum Packet Size the unacknowledged message no longer fits, and a
    // Receive Maximum of 1: the big one is dropped, so the next message still flows.
    let mut c = persistent(V5, "shrink");
    c.properties.maximum_packet_size = std::num::NonZeroU32::new(100);
    c.properties.receive_maximum = std::num::NonZeroU16::new(1);
    let mut p = open_expecting(&broker, c, true);
    publish_acked(&mut publ, "shrink/t", b"small", QoS::AtLeastOnce, 51);
    let m = p.recv_publish();
    assert_eq!((&m.payload[..], m.dup), (&b"small"[..], false));
    p.disconnect();
}

#[test]
fn shared_qos1_message_of_a_lone_member_is_resent_with_its_id_and_dup_mqtt_4_4_0_1() {
    // No other member can take it, so it stays in flight for the member's return.
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    for v in [V3_1_1, V5] {
        let id = format!("lone-{}", v.level());
        let mut p = open_expecting(&broker, persistent(v, &id), false);
        p.subscribe(&format!("$share/g/lone/{}", v.level()), QoS::AtLeastOnce);
        publish_acked(
            &mut publ,
            &format!("lone/{}", v.level()),
            b"m",
            QoS::AtLeastOnce,
            60,
        );
        let first = p.recv_publish();
        p.drop_connection();
        let mut p = open_expecting(&broker, persistent(v, &id), true);
        let again = p.recv_publish();
        assert_eq!(
            (again.packet_id, again.dup, &again.payload[..]),
            (first.packet_id, true, &b"m"[..]),
            "{v}"
        );
        p.disconnect();
    }
}
