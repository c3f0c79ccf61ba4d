//! Hardening over the wire: no input crashes the broker or makes it hold more than its
//! budgets. Each limit is checked with the reason code its refusal carries, and that the
//! broker goes on serving a bystander (docs/security.md lists the limits).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use bytes::Bytes;
use halyard_codec::{
    Packet, ProtocolVersion, PublishProperties, QoS, ReasonCode, SubscriptionOptions, Will,
    WillProperties,
};
use halyard_core::Limit;
use harness::*;
use std::num::NonZeroU16;
use std::time::Duration;

const VERSIONS: [ProtocolVersion; 2] = [V3_1_1, V5];

/// The CONNACK code a refusal with `rc` carries at `v` (3.x has six codes).
fn refusal(v: ProtocolVersion, rc: ReasonCode) -> ReasonCode {
    if v.is_v5() {
        rc
    } else {
        ReasonCode::from_v3_connack(rc.to_v3_connack()).unwrap()
    }
}

/// A QoS 1 round trip through the broker on a topic of its own: the broker still serves
/// everyone else.
fn bystander_round_trip(broker: &TestBroker, tag: &str) {
    let mut p = broker.client(V5, &format!("bystander-{tag}"));
    p.subscribe(&format!("bystander/{tag}"), QoS::AtLeastOnce);
    let rc = send_publish(
        &mut p,
        publish(&format!("bystander/{tag}"), b"ping", QoS::AtLeastOnce, 7),
    );
    assert_eq!(rc, ReasonCode::SUCCESS);
    assert_eq!(collect(&mut p, 1)[0].payload, Bytes::from_static(b"ping"));
    p.disconnect();
}

fn deep_will(levels: usize, payload: &'static [u8]) -> Will {
    Will {
        topic: topic(&vec!["a"; levels].join("/")),
        payload: Bytes::from_static(payload),
        qos: QoS::AtMostOnce,
        retain: true,
        properties: WillProperties::default(),
    }
}

/// The deep-will crash: a retained will with ~32,000 levels, then one with an empty
/// payload, then a `#` subscriber, once overflowed a worker's stack. Wills now pass the
/// topic checks a PUBLISH passes (mqtt.max_topic_levels): CONNECT is refused with 0x90
/// Topic Name invalid [MQTT-3.2.2-8] and the broker goes on.
#[test]
fn a_will_topic_beyond_the_level_limit_is_refused_and_the_broker_survives() {
    let broker = TestBroker::start();
    for v in VERSIONS {
        for payload in [&b"x"[..], b""] {
            let mut p = broker.peer(v);
            let mut c = connect(v, "deep-will");
            c.will = Some(deep_will(32_000, payload));
            p.send(c);
            let ack = p.recv_connack();
            assert_eq!(ack.reason_code, refusal(v, ReasonCode::TOPIC_NAME_INVALID));
            assert!(p.expect_closed().is_empty());
        }
        let mut sub = broker.client(v, "hash-subscriber");
        sub.subscribe("#", QoS::AtMostOnce);
        sub.disconnect();
    }
    assert_eq!(broker.broker().retained_count(), 0);
    assert!(broker.broker().stats().limit_hits(Limit::TopicSize) >= 4);
    bystander_round_trip(&broker, "deep-will");
}

/// A will at the level limit is accepted and published when its connection is lost.
#[test]
fn a_will_at_the_level_limit_is_accepted() {
    let broker = TestBroker::start();
    let levels = broker.broker().config().max_topic_levels;
    let mut p = broker.peer(V5);
    let mut c = connect(V5, "deepest-will");
    c.will = Some(deep_will(levels, b"bye"));
    p.send(c);
    assert_eq!(p.recv_connack().reason_code, ReasonCode::SUCCESS);
    p.drop_connection();
    let mut sub = broker.client(V5, "will-reader");
    sub.subscribe("#", QoS::AtMostOnce);
    let got = sub.recv_publish();
    assert_eq!(got.payload, Bytes::from_static(b"bye"));
}

fn with_user_properties(mut p: halyard_codec::Publish, n: usize) -> halyard_codec::Publish {
    let s = |x: &str| halyard_codec::MqttString::new(x).unwrap();
    p.properties.user_properties = (0..n).map(|_| (s("k"), s("v"))).collect();
    p
}

/// More User Properties than mqtt.max_user_properties: the PUBLISH is refused with 0x83
/// (a reason code PUBACK may carry, section 3.4.2.1) and reaches nobody.
#[test]
fn a_publish_over_the_user_property_limit_is_refused_with_0x83() {
    let broker = TestBroker::start_with(|c| c.mqtt.max_user_properties = 8);
    let mut sub = broker.client(V5, "props-sub");
    sub.subscribe("props", QoS::AtLeastOnce);
    let mut publisher = broker.client(V5, "props-pub");
    let over = with_user_properties(publish("props", b"no", QoS::AtLeastOnce, 1), 9);
    assert_eq!(
        send_publish(&mut publisher, over),
        ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
    );
    let at = with_user_properties(publish("props", b"yes", QoS::AtLeastOnce, 2), 8);
    assert_eq!(send_publish(&mut publisher, at), ReasonCode::SUCCESS);
    let got = collect(&mut sub, 1);
    assert_eq!(got[0].payload, Bytes::from_static(b"yes"));
    assert_eq!(got[0].properties.user_properties.len(), 8);
    assert_eq!(broker.broker().stats().limit_hits(Limit::UserProperties), 1);
}

/// Topic aliases are bounded in bytes (mqtt.max_topic_alias_bytes): the alias that would
/// take the table over it ends the connection with 0x97 Quota exceeded.
#[test]
fn topic_aliases_over_their_byte_budget_end_the_connection_with_0x97() {
    let broker = TestBroker::start_with(|c| c.mqtt.max_topic_alias_bytes = 3000);
    let mut p = broker.client(V5, "aliases");
    let long = |i: u8| format!("{}/{i}", "t".repeat(1000));
    for i in 1..=2u8 {
        let mut m = publish(&long(i), b"x", QoS::AtLeastOnce, u16::from(i));
        m.properties.topic_alias = NonZeroU16::new(u16::from(i));
        assert_eq!(send_publish(&mut p, m), ReasonCode::NO_MATCHING_SUBSCRIBERS);
    }
    // Replacing an alias's topic does not grow the table.
    let mut m = publish(&long(9), b"x", QoS::AtLeastOnce, 3);
    m.properties.topic_alias = NonZeroU16::new(2);
    assert_eq!(send_publish(&mut p, m), ReasonCode::NO_MATCHING_SUBSCRIBERS);
    let mut m = publish(&long(3), b"x", QoS::AtLeastOnce, 4);
    m.properties.topic_alias = NonZeroU16::new(3);
    p.send(m);
    p.expect_disconnect(ReasonCode::QUOTA_EXCEEDED);
    bystander_round_trip(&broker, "aliases");
}

/// mqtt.max_subscriptions_per_session: a filter beyond it is refused in SUBACK (0x97 on
/// 5.0, 0x80 on 3.1.1 [MQTT-3.9.3-2]); replacing an existing subscription still works.
#[test]
fn subscriptions_beyond_the_session_budget_are_refused_in_suback() {
    let broker = TestBroker::start_with(|c| c.mqtt.max_subscriptions_per_session = 3);
    for v in VERSIONS {
        let mut p = broker.client(v, "many-subs");
        for f in ["a", "b", "c"] {
            p.subscribe(f, QoS::AtMostOnce);
        }
        p.send(subscribe(
            9,
            "d",
            SubscriptionOptions::with_qos(QoS::AtMostOnce),
        ));
        let code = p.recv_suback().reason_codes[0];
        let expected = if v.is_v5() {
            ReasonCode::QUOTA_EXCEEDED
        } else {
            ReasonCode::UNSPECIFIED_ERROR
        };
        assert_eq!(code, expected);
        p.subscribe("a", QoS::AtLeastOnce);
        p.disconnect();
    }
    bystander_round_trip(&broker, "subs");
}

/// mqtt.max_sessions: a new client identifier beyond it is refused (0x97 on 5.0, 0x03
/// Server unavailable on 3.1.1); clients whose sessions exist still connect.
#[test]
fn sessions_beyond_the_limit_are_refused() {
    let broker = TestBroker::start_with(|c| c.mqtt.max_sessions = 2);
    let a = broker.client(V5, "s1");
    let _b = broker.client(V5, "s2");
    for v in VERSIONS {
        let mut p = broker.peer(v);
        p.send(connect(v, "s3"));
        assert_eq!(
            p.recv_connack().reason_code,
            refusal(v, ReasonCode::QUOTA_EXCEEDED)
        );
    }
    a.disconnect();
    // s1's clean session ended with it: there is room again.
    let c = broker.client(V3_1_1, "s3");
    c.disconnect();
}

/// mqtt.max_retained_messages: a new retained topic beyond it is refused with 0x97 and
/// not published; replacing and deleting retained messages still work.
#[test]
fn retained_messages_beyond_the_budget_are_refused_with_0x97() {
    let broker = TestBroker::start_with(|c| c.mqtt.max_retained_messages = 2);
    let mut p = broker.client(V5, "retainer");
    let retained = |t: &str, payload: &[u8], id: u16| {
        let mut m = publish(t, payload, QoS::AtLeastOnce, id);
        m.retain = true;
        m
    };
    assert_eq!(
        send_publish(&mut p, retained("r/1", b"1", 1)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    assert_eq!(
        send_publish(&mut p, retained("r/2", b"2", 2)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    let mut sub = broker.client(V5, "retained-sub");
    sub.subscribe("r/#", QoS::AtLeastOnce);
    assert_eq!(collect(&mut sub, 2).len(), 2);
    assert_eq!(
        send_publish(&mut p, retained("r/3", b"3", 3)),
        ReasonCode::QUOTA_EXCEEDED
    );
    assert_eq!(
        send_publish(&mut p, retained("r/2", b"two", 4)),
        ReasonCode::SUCCESS
    );
    let got = collect(&mut sub, 1);
    assert_eq!(
        got[0].payload,
        Bytes::from_static(b"two"),
        "r/3 never arrives"
    );
    assert_eq!(
        send_publish(&mut p, retained("r/1", b"", 5)),
        ReasonCode::SUCCESS
    );
    collect(&mut sub, 1);
    assert_eq!(
        send_publish(&mut p, retained("r/3", b"3", 6)),
        ReasonCode::SUCCESS
    );
    assert_eq!(broker.broker().retained_count(), 2);
}

/// mqtt.memory_limit_bytes: once the messages the broker holds pass the ceiling, clients'
/// publishes are refused with 0x97 until it falls again.
#[test]
fn publishes_over_the_memory_ceiling_are_refused_with_0x97() {
    let broker = TestBroker::start_with(|c| c.mqtt.memory_limit_bytes = 20_000);
    let mut p = broker.client(V5, "filler");
    let big = vec![b'x'; 8_000];
    for i in 1..=3u16 {
        let mut m = publish(&format!("fill/{i}"), &big, QoS::AtLeastOnce, i);
        m.retain = true;
        assert_eq!(send_publish(&mut p, m), ReasonCode::NO_MATCHING_SUBSCRIBERS);
    }
    assert!(broker.broker().stats().held_bytes() >= 20_000);
    assert_eq!(
        send_publish(&mut p, publish("other", b"x", QoS::AtLeastOnce, 4)),
        ReasonCode::QUOTA_EXCEEDED
    );
    // Clearing a retained message frees memory, so the ceiling lets it through.
    let mut m = publish("fill/1", b"", QoS::AtLeastOnce, 5);
    m.retain = true;
    assert_eq!(send_publish(&mut p, m), ReasonCode::NO_MATCHING_SUBSCRIBERS);
    assert_eq!(
        send_publish(&mut p, publish("other", b"x", QoS::AtLeastOnce, 6)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    assert_eq!(broker.broker().stats().limit_hits(Limit::Memory), 1);
}

/// Offline sessions share one compact copy of a message: 20 offline sessions and a 100 KB
/// message cost about 100 KB of held bytes, not 2 MB.
#[test]
fn offline_sessions_share_one_copy_of_a_message() {
    let broker = TestBroker::start();
    for i in 0..20 {
        let mut p = broker.peer(V3_1_1);
        let mut c = connect(V3_1_1, &format!("offline-{i}"));
        c.clean_start = false;
        p.send(c);
        assert_eq!(p.recv_connack().reason_code, ReasonCode::SUCCESS);
        p.subscribe("shared/copy", QoS::AtLeastOnce);
        p.disconnect();
    }
    let before = broker.broker().stats().held_bytes();
    let mut publisher = broker.client(V5, "copy-pub");
    let payload = vec![7u8; 100_000];
    assert_eq!(
        send_publish(
            &mut publisher,
            publish("shared/copy", &payload, QoS::AtLeastOnce, 1)
        ),
        ReasonCode::SUCCESS
    );
    let held = broker.broker().stats().held_bytes() - before;
    assert!(
        (100_000..200_000).contains(&held),
        "20 offline sessions hold {held} bytes for one 100 KB message"
    );
    for i in 0..20 {
        assert_eq!(
            broker
                .broker()
                .session(&format!("offline-{i}"))
                .unwrap()
                .queued_len(),
            1
        );
    }
}

/// Retained messages sent on SUBSCRIBE go through the session's queue limits: a client that
/// subscribes over and over to many retained messages and never reads holds no more than
/// mqtt.max_queued_messages.
#[test]
fn retained_messages_on_subscribe_stay_within_the_queue_limits() {
    let broker = TestBroker::start_with(|c| c.mqtt.max_queued_messages = 10);
    let mut p = broker.client(V5, "retained-filler");
    for i in 0..100u16 {
        let mut m = publish(&format!("many/{i}"), &[1u8; 1000], QoS::AtMostOnce, 0);
        m.retain = true;
        send_publish(&mut p, m);
    }
    let mut greedy = broker.client(V5, "greedy");
    for i in 0..30u16 {
        greedy.send(subscribe(
            i + 1,
            "many/#",
            SubscriptionOptions::with_qos(QoS::AtLeastOnce),
        ));
    }
    // Whatever the client has not read sits in the socket, its transmit buffer (at most
    // 64 KiB past the window) or its queue; the queue stays within its limit.
    std::thread::sleep(Duration::from_millis(300));
    let session = broker.broker().session("greedy").unwrap();
    assert!(session.queued_len() <= 10, "{}", session.queued_len());
    bystander_round_trip(&broker, "retained-queue");
}

/// Flapping: a client identifier connecting more than mqtt.flapping_max_connects times in
/// its window is refused with 0x9F Connection rate exceeded (0x03 on 3.1.1); other
/// identifiers are not affected.
#[test]
fn a_client_id_reconnecting_in_a_tight_loop_is_refused_with_0x9f() {
    let broker = TestBroker::start_with(|c| c.mqtt.flapping_max_connects = 3);
    for v in VERSIONS {
        let id = format!("flapper-{v:?}");
        for _ in 0..3 {
            broker.client(v, &id).disconnect();
        }
        let mut p = broker.peer(v);
        p.send(connect(v, &id));
        assert_eq!(
            p.recv_connack().reason_code,
            refusal(v, ReasonCode::CONNECTION_RATE_EXCEEDED)
        );
    }
    bystander_round_trip(&broker, "flapping");
}

/// mqtt.persistent_session_expiry_secs: a 3.1.1 persistent session (which cannot ask for
/// an expiry) ends that long after its client disconnects [MQTT-3.1.2-4 is about resuming
/// it while it exists].
#[test]
fn a_3_1_1_persistent_session_expires_after_the_configured_time() {
    let broker = TestBroker::start_with(|c| c.mqtt.persistent_session_expiry_secs = 1);
    let persistent = |present: bool| {
        let mut p = broker.peer(V3_1_1);
        let mut c = connect(V3_1_1, "expiring");
        c.clean_start = false;
        p.send(c);
        let ack = p.recv_connack();
        assert_eq!(ack.session_present, present);
        p
    };
    let mut p = persistent(false);
    p.subscribe("x", QoS::AtLeastOnce);
    p.disconnect();
    persistent(true).disconnect();
    std::thread::sleep(Duration::from_millis(1600));
    persistent(false).disconnect();
}

/// mqtt.max_keep_alive_secs: an MQTT 5 client asking for keep-alive 0 gets Server Keep
/// Alive [MQTT-3.2.2-21] and is held to it [MQTT-3.1.2-22].
#[test]
fn a_v5_client_asking_for_no_keep_alive_gets_the_maximum_and_is_held_to_it() {
    let broker = TestBroker::start_with(|c| c.mqtt.max_keep_alive_secs = Some(1));
    let mut p = broker.peer(V5);
    let mut c = connect(V5, "silent");
    c.keep_alive_secs = 0;
    p.send(c);
    assert_eq!(p.recv_connack().properties.server_keep_alive, Some(1));
    p.expect_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT);
}

/// A listener's own max_connections: connections beyond it are closed at once, without a
/// CONNACK; the open ones keep working.
#[test]
fn a_listener_closes_connections_beyond_its_own_limit() {
    let broker = TestBroker::start_with(|c| c.listener[0].max_connections = Some(2));
    let a = broker.client(V5, "l1");
    let b = broker.client(V5, "l2");
    let mut third = broker.peer(V5);
    third.send(connect(V5, "l3"));
    assert!(third.expect_closed().is_empty());
    assert_eq!(broker.broker().stats().limit_hits(Limit::Connections), 1);
    drop(a);
    b.disconnect();
}

/// limits.max_connection_rate_per_ip: a burst of new connections from one address beyond
/// the rate is closed at once.
#[test]
fn a_burst_of_connections_beyond_the_rate_per_address_is_closed() {
    let broker = TestBroker::start_with(|c| c.limits.max_connection_rate_per_ip = 5);
    let peers: Vec<Peer> = (0..20).map(|_| broker.peer(V5)).collect();
    let mut connected = 0;
    for (i, mut p) in peers.into_iter().enumerate() {
        p.send(connect(V5, &format!("burst-{i}")));
        if p.recv_or_closed(WAIT).is_some() {
            connected += 1;
        }
    }
    assert!((5..20).contains(&connected), "{connected} of 20 connected");
    assert!(broker.broker().stats().limit_hits(Limit::ConnectionRate) > 0);
}

/// mqtt.max_connect_packet_size: a socket that has not connected cannot make the broker
/// buffer a large packet; the connection is closed from the fixed header.
#[test]
fn a_connect_larger_than_the_connect_limit_is_refused_from_its_header() {
    let broker = TestBroker::start();
    let mut p = broker.peer(V5);
    // CONNECT announcing 1 MB (within max_packet_size, beyond max_connect_packet_size).
    p.send_raw(&[0x10, 0x80, 0x80, 0x40]);
    assert!(p.expect_closed().is_empty());
    bystander_round_trip(&broker, "big-connect");
}

/// A PUBLISH whose topic is over mqtt.max_topic_levels is refused with 0x90 (section
/// 3.4.2.1) and a subscriber of `#` gets nothing.
#[test]
fn a_publish_topic_beyond_the_level_limit_is_refused() {
    let broker = TestBroker::start();
    let mut sub = broker.client(V5, "hash");
    sub.subscribe("#", QoS::AtLeastOnce);
    let mut p = broker.client(V5, "deep-pub");
    let deep = vec!["a"; 1000].join("/");
    let mut m = publish(&deep, b"x", QoS::AtLeastOnce, 1);
    m.retain = true;
    m.properties = PublishProperties::default();
    assert_eq!(send_publish(&mut p, m), ReasonCode::TOPIC_NAME_INVALID);
    sub.expect_silence(Duration::from_millis(200));
    assert_eq!(broker.broker().retained_count(), 0);
    p.send(Packet::PingReq);
    assert_eq!(p.recv(), Packet::PingResp);
}

/// A topic beyond the limits is never kept for a Topic Alias: its PUBLISH is refused with
/// 0x90 like any other, the connection stays, and the alias is not defined by it (using it
/// alone is then a protocol error, section 3.3.2.3.4).
#[test]
fn a_topic_beyond_the_limits_is_not_kept_for_an_alias() {
    let broker = TestBroker::start();
    let mut p = broker.client(V5, "alias-deep");
    let deep = vec!["a"; 200].join("/");
    let mut m = publish(&deep, b"x", QoS::AtLeastOnce, 1);
    m.properties.topic_alias = NonZeroU16::new(1);
    assert_eq!(send_publish(&mut p, m), ReasonCode::TOPIC_NAME_INVALID);
    let mut m = publish("ok", b"x", QoS::AtLeastOnce, 2);
    m.topic = halyard_codec::TopicName::empty_for_alias();
    m.properties.topic_alias = NonZeroU16::new(1);
    p.send(m);
    p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
}

/// The remaining length of a packet as the variable byte integer of section 1.5.5.
fn remaining_length(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

/// A large packet read slowly is charged to mqtt.memory_limit_bytes while it is buffered:
/// a client whose unfinished packet would take the broker over the ceiling is disconnected
/// with 0x97, and the broker's meter is back where it was.
#[test]
fn an_unfinished_large_packet_counts_against_the_memory_ceiling() {
    let broker = TestBroker::start_with(|c| c.mqtt.memory_limit_bytes = 150_000);
    let mut p = broker.client(V5, "slow-big");
    // PUBLISH QoS 0 to "t", no properties, announcing 500,000 bytes; 200,000 of them sent.
    let mut bytes = vec![0x30];
    bytes.extend(remaining_length(500_000));
    bytes.extend([0, 1, b't', 0]);
    bytes.extend(vec![b'x'; 200_000]);
    p.send_raw(&bytes);
    p.expect_disconnect(ReasonCode::QUOTA_EXCEEDED);
    assert_eq!(broker.broker().stats().held_bytes(), 0);
    assert_eq!(broker.broker().stats().limit_hits(Limit::Memory), 1);
    bystander_round_trip(&broker, "big-partial");
}

/// Under the ceiling, the same unfinished packet is simply waited for, and delivered whole.
#[test]
fn an_unfinished_large_packet_under_the_ceiling_is_completed() {
    let broker = TestBroker::start();
    let mut sub = broker.client(V5, "big-sub");
    sub.subscribe("t", QoS::AtMostOnce);
    let mut p = broker.client(V5, "slow-big-ok");
    let mut bytes = vec![0x30];
    bytes.extend(remaining_length(500_000));
    bytes.extend([0, 1, b't', 0]);
    bytes.extend(vec![b'x'; 500_000 - 4]);
    let (first, rest) = bytes.split_at(200_000);
    p.send_raw(first);
    std::thread::sleep(Duration::from_millis(100));
    assert!(broker.broker().stats().held_bytes() >= 200_000);
    p.send_raw(rest);
    assert_eq!(sub.recv_publish().payload.len(), 500_000 - 4);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(broker.broker().stats().held_bytes(), 0);
}

/// Messages queued or in flight while a client was connected are compacted and charged to
/// the memory ceiling when it goes offline: they no longer pin their publishers' read
/// buffers for the session's whole expiry, uncounted.
#[test]
fn messages_kept_for_a_client_that_went_offline_are_charged() {
    let broker = TestBroker::start();
    let mut sub = broker.peer(V5);
    let mut c = connect(V5, "goes-offline");
    c.properties.session_expiry_interval = Some(300);
    sub.send(c);
    assert_eq!(sub.recv_connack().reason_code, ReasonCode::SUCCESS);
    sub.subscribe("kept", QoS::AtLeastOnce);
    let mut publisher = broker.client(V5, "kept-pub");
    for i in 1..=5u16 {
        let rc = send_publish(
            &mut publisher,
            publish("kept", &[b'k'; 1000], QoS::AtLeastOnce, i),
        );
        assert_eq!(rc, ReasonCode::SUCCESS);
    }
    assert_eq!(
        broker.broker().stats().held_bytes(),
        0,
        "online: not charged"
    );
    sub.drop_connection();
    std::thread::sleep(Duration::from_millis(200));
    let held = broker.broker().stats().held_bytes();
    assert_eq!(held, 5 * (1000 + "kept".len()));
}

/// A will is a message the broker keeps: over the memory ceiling, a CONNECT with a will is
/// refused with 0x97 (a CONNECT without one is not).
#[test]
fn a_will_over_the_memory_ceiling_is_refused_with_0x97() {
    let broker = TestBroker::start_with(|c| c.mqtt.memory_limit_bytes = 10_000);
    let mut p = broker.client(V5, "filler");
    let mut m = publish("fill", &[b'x'; 12_000], QoS::AtLeastOnce, 1);
    m.retain = true;
    assert_eq!(send_publish(&mut p, m), ReasonCode::NO_MATCHING_SUBSCRIBERS);
    let mut w = broker.peer(V5);
    let mut c = connect(V5, "with-will");
    c.will = Some(Will {
        topic: topic("w"),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties::default(),
    });
    w.send(c);
    assert_eq!(w.recv_connack().reason_code, ReasonCode::QUOTA_EXCEEDED);
    broker.client(V5, "no-will").disconnect();
}
