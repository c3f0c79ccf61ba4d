//! MQTT 5 features over the wire: topic aliases both ways, Receive Maximum both ways, Maximum
//! Packet Size both ways, Subscription Identifiers, No Local, shared subscriptions, forwarded
//! properties and the Message Expiry Interval.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use bytes::Bytes;
use halyard_codec::{
    Ack, ConnAck, Connect, MqttString, Packet, PayloadFormat, Publish, QoS, ReasonCode, Subscribe,
    SubscribeProperties, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName,
};
use harness::{Peer, TestBroker, V3_1_1, V5, collect, connect, pid, publish, send_publish, topic};
use std::collections::BTreeSet;
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

/// A 5.0 client whose CONNECT was changed by `f`; returns it with its CONNACK.
fn client_with(broker: &TestBroker, id: &str, f: impl FnOnce(&mut Connect)) -> (Peer, ConnAck) {
    let mut c = connect(V5, id);
    f(&mut c);
    let mut p = broker.peer(V5);
    p.send(c);
    let ack = p.recv_connack();
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{id} connects");
    (p, ack)
}

/// SUBSCRIBE with each `(filter, options)` and an optional Subscription Identifier; returns
/// the SUBACK codes.
fn subscribe_with(
    p: &mut Peer,
    id: u16,
    filters: &[(&str, SubscriptionOptions)],
    sub_id: Option<u32>,
) -> Vec<ReasonCode> {
    p.send(Subscribe {
        packet_id: pid(id),
        properties: SubscribeProperties {
            subscription_identifier: sub_id.map(|n| SubscriptionId::new(n).unwrap()),
            ..Default::default()
        },
        filters: filters
            .iter()
            .map(|(f, o)| (TopicFilter::new(f).unwrap(), *o))
            .collect(),
    });
    let ack = p.recv_suback();
    assert_eq!(ack.packet_id, pid(id));
    ack.reason_codes
}

fn qos(q: QoS) -> SubscriptionOptions {
    SubscriptionOptions::with_qos(q)
}

fn pub_msg(p: &mut Peer, t: &str, payload: &[u8], q: QoS, id: u16) -> ReasonCode {
    send_publish(p, publish(t, payload, q, id))
}

fn payloads(msgs: &[Publish]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
        .collect()
}

/// A PUBLISH that names its topic by Topic Alias `alias`, with `t` as its topic ("" for the
/// alias alone).
fn aliased(t: &str, alias: u16, payload: &[u8], q: QoS, id: u16) -> Publish {
    let mut p = publish("placeholder", payload, q, id);
    p.topic = if t.is_empty() {
        TopicName::empty_for_alias()
    } else {
        topic(t)
    };
    p.properties.topic_alias = NonZeroU16::new(alias);
    p
}

// ---------------------------------------------------------------------------------------------
// Topic aliases

#[test]
fn topic_alias_from_the_client_is_set_then_used() {
    // Section 3.3.2.3.4 and the rules of section 3.3.4; [MQTT-3.3.2-12] the Server accepts
    // every alias from 1 to the Topic Alias Maximum it returned.
    let broker = TestBroker::start();
    let mut s = broker.client(V5, "s");
    s.subscribe("al/+", QoS::AtLeastOnce);
    let (mut p, ack) = client_with(&broker, "p", |_| {});
    assert_eq!(ack.properties.topic_alias_maximum, Some(64));
    for (i, msg) in [
        aliased("al/a", 1, b"set 1", QoS::AtLeastOnce, 1),
        aliased("", 1, b"use 1", QoS::AtLeastOnce, 2),
        aliased("al/b", 64, b"set 64", QoS::AtMostOnce, 0),
        aliased("", 64, b"use 64", QoS::ExactlyOnce, 3),
        aliased("al/c", 1, b"remap 1", QoS::AtLeastOnce, 4),
        aliased("", 1, b"use 1 again", QoS::AtLeastOnce, 5),
        aliased("", 64, b"64 unchanged", QoS::AtLeastOnce, 6),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            send_publish(&mut p, msg),
            ReasonCode::SUCCESS,
            "message {i}"
        );
    }
    let got: Vec<(String, String)> = collect(&mut s, 7)
        .into_iter()
        .map(|m| {
            assert_eq!(
                m.properties.topic_alias, None,
                "the subscriber asked for no aliases"
            );
            (
                m.topic.as_str().to_owned(),
                String::from_utf8(m.payload.to_vec()).unwrap(),
            )
        })
        .collect();
    let expected = [
        ("al/a", "set 1"),
        ("al/a", "use 1"),
        ("al/b", "set 64"),
        ("al/b", "use 64"),
        ("al/c", "remap 1"),
        ("al/c", "use 1 again"),
        ("al/b", "64 unchanged"),
    ];
    assert_eq!(
        got,
        expected.map(|(t, p)| (t.to_owned(), p.to_owned())),
        "aliases resolved to their topics"
    );
}

#[test]
fn topic_alias_above_the_maximum_or_zero_is_0x94() {
    // Section 3.3.4, rule 1: "A Topic Alias value of 0 or greater than the Maximum Topic Alias
    // is a Protocol Error, the receiver uses DISCONNECT with Reason Code of 0x94"
    // ([MQTT-3.2.2-17] and [MQTT-3.3.2-8] bind the client).
    let broker = TestBroker::start();
    let mut s = broker.client(V5, "s");
    s.subscribe("al/#", QoS::AtMostOnce);
    let (mut p, ack) = client_with(&broker, "p", |_| {});
    assert_eq!(ack.properties.topic_alias_maximum, Some(64));
    p.send(aliased("al/x", 65, b"too high", QoS::AtMostOnce, 0));
    p.expect_disconnect(ReasonCode::TOPIC_ALIAS_INVALID);

    // Alias 0, encoded by hand (the codec will not build it): PUBLISH QoS 0, topic "al/x",
    // properties: Topic Alias (0x23) = 0.
    let (mut p, _) = client_with(&broker, "p0", |_| {});
    let body = [
        &[0x00, 0x04][..],
        b"al/x",
        &[0x03, 0x23, 0x00, 0x00],
        b"zero",
    ]
    .concat();
    let mut raw = vec![0x30, u8::try_from(body.len()).unwrap()];
    raw.extend_from_slice(&body);
    p.send_raw(&raw);
    p.expect_disconnect(ReasonCode::TOPIC_ALIAS_INVALID);

    // Neither message was delivered.
    let (mut ok, _) = client_with(&broker, "ok", |_| {});
    pub_msg(&mut ok, "al/y", b"after", QoS::AtLeastOnce, 1);
    assert_eq!(s.recv_publish().topic.as_str(), "al/y");
}

#[test]
fn unknown_topic_alias_with_an_empty_topic_is_a_protocol_error() {
    // Section 3.3.4, rule 3a: no mapping and a zero length Topic Name: DISCONNECT 0x82.
    // Mappings do not carry over to a new connection either [MQTT-3.3.2-7].
    let broker = TestBroker::start();
    let (mut p, _) = client_with(&broker, "p", |_| {});
    p.send(aliased("", 5, b"unknown", QoS::AtLeastOnce, 1));
    p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);

    let (mut p, _) = client_with(&broker, "q", |c| {
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(60);
    });
    assert_eq!(
        send_publish(&mut p, aliased("al/t", 3, b"set", QoS::AtLeastOnce, 1)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    p.send(halyard_codec::Disconnect::default());
    assert!(p.expect_closed().is_empty());
    let (mut p, ack) = client_with(&broker, "q", |c| {
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(60);
    });
    assert!(ack.session_present);
    p.send(aliased("", 3, b"old mapping", QoS::AtLeastOnce, 2));
    p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
}

#[test]
fn topic_aliases_towards_a_client_that_asks_for_them() {
    // Section 3.3.2.3.4; [MQTT-3.1.2-26] [MQTT-3.3.2-11]: never above the client's Topic Alias
    // Maximum; [MQTT-3.1.2-27]: none at all to a client that set none.
    let broker = TestBroker::start();
    let (mut s, _) = client_with(&broker, "s", |c| c.properties.topic_alias_maximum = Some(2));
    subscribe_with(&mut s, 1, &[("ta/#", qos(QoS::AtLeastOnce))], None);
    let mut none = broker.client(V5, "none");
    none.subscribe("ta/#", QoS::AtLeastOnce);
    let mut publ = broker.client(V5, "pub");
    let sent = [
        "ta/a", "ta/a", "ta/b", "ta/a", "ta/b", "ta/c", "ta/c", "ta/a",
    ];
    for (i, t) in sent.iter().enumerate() {
        pub_msg(&mut publ, t, t.as_bytes(), QoS::AtLeastOnce, 1 + i as u16);
    }
    let got = collect(&mut s, sent.len());
    let mut known: std::collections::HashMap<u16, String> = Default::default();
    for (m, t) in got.iter().zip(sent) {
        assert_eq!(m.payload, t.as_bytes());
        let resolved = match m.properties.topic_alias.map(NonZeroU16::get) {
            None => m.topic.as_str().to_owned(),
            Some(a) => {
                assert!(a <= 2, "alias {a} above the client's maximum of 2");
                if m.topic.as_str().is_empty() {
                    known
                        .get(&a)
                        .unwrap_or_else(|| panic!("alias {a} used before it was set: {m:?}"))
                        .clone()
                } else {
                    known.insert(a, m.topic.as_str().to_owned());
                    m.topic.as_str().to_owned()
                }
            }
        };
        assert_eq!(resolved, t, "{m:?}");
    }
    // The repeat of the first topic on the connection came by alias alone.
    assert!(
        got[1].topic.as_str().is_empty(),
        "second ta/a uses the alias: {:?}",
        got[1]
    );
    assert_eq!(got[1].properties.topic_alias, got[0].properties.topic_alias);
    assert!(got[0].properties.topic_alias.is_some());

    for m in collect(&mut none, sent.len()) {
        assert_eq!(m.properties.topic_alias, None);
        assert!(!m.topic.as_str().is_empty());
    }
}

#[test]
fn topic_aliases_towards_the_client_start_afresh_on_each_connection() {
    // [MQTT-3.3.2-7]: no mapping is carried from one Network Connection to another.
    let broker = TestBroker::start();
    let persistent = |c: &mut Connect| {
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(60);
        c.properties.topic_alias_maximum = Some(5);
    };
    let (mut s, _) = client_with(&broker, "s", persistent);
    subscribe_with(&mut s, 1, &[("fresh/t", qos(QoS::AtLeastOnce))], None);
    let mut publ = broker.client(V5, "pub");
    pub_msg(&mut publ, "fresh/t", b"1", QoS::AtLeastOnce, 1);
    pub_msg(&mut publ, "fresh/t", b"2", QoS::AtLeastOnce, 2);
    let got = collect(&mut s, 2);
    assert!(
        got[1].topic.as_str().is_empty(),
        "aliased on the first connection"
    );
    s.disconnect();
    let (mut s, ack) = client_with(&broker, "s", persistent);
    assert!(ack.session_present);
    pub_msg(&mut publ, "fresh/t", b"3", QoS::AtLeastOnce, 3);
    let m = &collect(&mut s, 1)[0];
    assert_eq!(
        m.topic.as_str(),
        "fresh/t",
        "a new connection knows no alias: {m:?}"
    );
}

#[test]
fn topic_alias_is_not_used_for_a_mapping_the_client_never_received() {
    // Section 3.3.4 rule 3a makes an alias the receiver does not know, with an empty topic, a
    // Protocol Error at the client; [MQTT-3.1.2-25] says a too-large packet is not sent.
    let broker = TestBroker::start();
    let (mut s, _) = client_with(&broker, "s", |c| {
        c.properties.topic_alias_maximum = Some(4);
        c.properties.maximum_packet_size = NonZeroU32::new(200);
    });
    subscribe_with(&mut s, 1, &[("big/t", qos(QoS::AtLeastOnce))], None);
    let mut publ = broker.client(V5, "pub");
    pub_msg(&mut publ, "big/t", &[b'x'; 400], QoS::AtLeastOnce, 1);
    pub_msg(&mut publ, "big/t", b"small", QoS::AtLeastOnce, 2);
    let m = &collect(&mut s, 1)[0];
    assert_eq!(m.payload, &b"small"[..]);
    assert_eq!(
        m.topic.as_str(),
        "big/t",
        "the first message the client receives on this topic must name it: {m:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Receive Maximum

#[test]
fn receive_maximum_towards_the_client_limits_unacknowledged_qos1() {
    // [MQTT-3.3.4-9]: no more than Receive Maximum unacknowledged QoS 1 and 2 PUBLISH
    // packets; section 4.9. Order is kept ([MQTT-4.6.0-6]).
    let broker = TestBroker::start();
    let (mut s, _) = client_with(&broker, "s", |c| {
        c.properties.receive_maximum = NonZeroU16::new(2);
    });
    subscribe_with(&mut s, 1, &[("rm/t", qos(QoS::AtLeastOnce))], None);
    let mut publ = broker.client(V5, "pub");
    for i in 0..6u16 {
        pub_msg(
            &mut publ,
            "rm/t",
            i.to_string().as_bytes(),
            QoS::AtLeastOnce,
            1 + i,
        );
    }
    let a = s.recv_publish();
    let b = s.recv_publish();
    assert_eq!(payloads(&[a.clone(), b.clone()]), ["0", "1"]);
    s.expect_silence(QUIET);
    // The window stays full until a PUBACK; PINGREQ is still answered ([MQTT-3.3.4-10]).
    s.send(Packet::PingReq);
    assert_eq!(s.recv(), Packet::PingResp);
    s.send(Packet::PubAck(Ack::new(a.packet_id.unwrap())));
    let c = s.recv_publish();
    assert_eq!(c.payload, &b"2"[..]);
    s.expect_silence(Duration::from_millis(150));
    s.send(Packet::PubAck(Ack::new(b.packet_id.unwrap())));
    s.send(Packet::PubAck(Ack::new(c.packet_id.unwrap())));
    let rest = collect(&mut s, 3);
    assert_eq!(payloads(&rest), ["3", "4", "5"]);
}

#[test]
fn receive_maximum_towards_the_client_counts_qos2_until_pubcomp() {
    // [MQTT-3.3.4-9]: a QoS 2 PUBLISH counts until PUBCOMP, or a PUBREC with a Reason Code of
    // 0x80 or greater.
    let broker = TestBroker::start();
    let (mut s, _) = client_with(&broker, "s", |c| {
        c.properties.receive_maximum = NonZeroU16::new(1);
    });
    subscribe_with(&mut s, 1, &[("rm2/t", qos(QoS::ExactlyOnce))], None);
    let mut publ = broker.client(V5, "pub");
    for i in 0..3u16 {
        pub_msg(
            &mut publ,
            "rm2/t",
            i.to_string().as_bytes(),
            QoS::ExactlyOnce,
            1 + i,
        );
    }
    let m0 = s.recv_publish();
    assert_eq!(m0.payload, &b"0"[..]);
    let id0 = m0.packet_id.unwrap();
    s.expect_silence(Duration::from_millis(200));
    s.send(Packet::PubRec(Ack::new(id0)));
    assert_eq!(s.recv(), Packet::PubRel(Ack::new(id0)));
    s.expect_silence(QUIET);
    s.send(Packet::PubComp(Ack::new(id0)));
    let m1 = s.recv_publish();
    assert_eq!(m1.payload, &b"1"[..]);
    let mut refuse = Ack::new(m1.packet_id.unwrap());
    refuse.reason_code = ReasonCode::UNSPECIFIED_ERROR;
    s.send(Packet::PubRec(refuse));
    // The refused message ends its flow (no PUBREL) and frees the slot.
    let m2 = s.recv_publish();
    assert_eq!(m2.payload, &b"2"[..], "{m2:?}");
}

#[test]
fn client_exceeding_the_broker_receive_maximum_gets_0x93() {
    // Section 3.3.4: more than Receive Maximum QoS 2 PUBLISH packets without PUBCOMP: the
    // Server uses DISCONNECT 0x93 ([MQTT-3.3.4-7] binds the client).
    let broker = TestBroker::start_with(|cfg| cfg.mqtt.receive_maximum = 2);
    let mut s = broker.client(V5, "s");
    s.subscribe("q2/#", QoS::ExactlyOnce);
    let (mut p, ack) = client_with(&broker, "p", |_| {});
    assert_eq!(ack.properties.receive_maximum, NonZeroU16::new(2));
    for id in 1..=2 {
        p.send(publish("q2/t", b"x", QoS::ExactlyOnce, id));
        assert!(matches!(p.recv(), Packet::PubRec(a) if a.packet_id == pid(id)));
    }
    p.send(publish("q2/t", b"third", QoS::ExactlyOnce, 3));
    p.expect_disconnect(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
    // The third message was not delivered.
    let got = collect(&mut s, 2);
    assert_eq!(payloads(&got), ["x", "x"]);
    s.expect_silence(QUIET);
}

#[test]
fn client_within_the_broker_receive_maximum_is_not_disconnected() {
    // Completing one QoS 2 flow frees its place (section 3.3.4: "where it has not sent a
    // PUBACK or PUBCOMP in response").
    let broker = TestBroker::start_with(|cfg| cfg.mqtt.receive_maximum = 2);
    let (mut p, _) = client_with(&broker, "p", |_| {});
    for id in 1..=2 {
        p.send(publish("q2/t", b"x", QoS::ExactlyOnce, id));
        assert!(matches!(p.recv(), Packet::PubRec(a) if a.packet_id == pid(id)));
    }
    p.send(Packet::PubRel(Ack::new(pid(1))));
    assert!(matches!(p.recv(), Packet::PubComp(a) if a.packet_id == pid(1)));
    p.send(publish("q2/t", b"x", QoS::ExactlyOnce, 3));
    assert!(matches!(p.recv(), Packet::PubRec(a) if a.packet_id == pid(3)));
    // QoS 1 is acknowledged at once and never counts.
    for id in 10..20 {
        assert_ne!(
            pub_msg(&mut p, "q1/t", b"y", QoS::AtLeastOnce, id),
            ReasonCode::RECEIVE_MAXIMUM_EXCEEDED
        );
    }
    for id in [2, 3] {
        p.send(Packet::PubRel(Ack::new(pid(id))));
        assert!(matches!(p.recv(), Packet::PubComp(a) if a.packet_id == pid(id)));
    }
}

// ---------------------------------------------------------------------------------------------
// Maximum Packet Size

/// A QoS 1 PUBLISH to `t` whose encoded size is exactly `size` bytes.
fn publish_of_size(t: &str, size: usize, id: u16) -> Publish {
    (0..size)
        .map(|n| publish(t, &vec![b'p'; n], QoS::AtLeastOnce, id))
        .find(|p| Packet::Publish(p.clone()).encoded_len(V5).unwrap() == size)
        .unwrap()
}

#[test]
fn packet_above_the_broker_maximum_packet_size_is_0x95() {
    // Section 3.2.2.3.6: a packet larger than the Maximum Packet Size the Server announced is
    // a Protocol Error answered with DISCONNECT 0x95 ([MQTT-3.2.2-15] binds the client).
    let broker = TestBroker::start_with(|cfg| cfg.mqtt.max_packet_size = 1024);
    let mut s = broker.client(V5, "s");
    s.subscribe("mps/#", QoS::AtLeastOnce);
    let (mut p, ack) = client_with(&broker, "p", |_| {});
    assert_eq!(ack.properties.maximum_packet_size, NonZeroU32::new(1024));
    let exact = publish_of_size("mps/t", 1024, 1);
    assert_eq!(send_publish(&mut p, exact.clone()), ReasonCode::SUCCESS);
    assert_eq!(
        collect(&mut s, 1)[0].payload,
        exact.payload,
        "1024 bytes is allowed"
    );
    p.send(publish_of_size("mps/t", 1025, 2));
    p.expect_disconnect(ReasonCode::PACKET_TOO_LARGE);
    s.expect_silence(QUIET);
}

#[test]
fn messages_larger_than_the_client_maximum_packet_size_are_not_sent_to_it() {
    // [MQTT-3.1.2-24]: not sent; [MQTT-3.1.2-25]: discarded as if sent, so it does not hold a
    // place in the client's Receive Maximum either.
    let broker = TestBroker::start();
    let (mut s, _) = client_with(&broker, "s", |c| {
        c.properties.maximum_packet_size = NonZeroU32::new(300);
        c.properties.receive_maximum = NonZeroU16::new(1);
    });
    subscribe_with(&mut s, 1, &[("lim/#", qos(QoS::AtLeastOnce))], None);
    let mut big = broker.client(V5, "big");
    big.subscribe("lim/#", QoS::AtLeastOnce);
    let mut publ = broker.client(V5, "pub");
    let small1 = vec![b'a'; 100];
    let large = vec![b'b'; 400];
    let small2 = vec![b'c'; 50];
    let fits = publish_of_size("lim/t", 300, 4);
    for (i, payload) in [&small1, &large, &small2].iter().enumerate() {
        pub_msg(&mut publ, "lim/t", payload, QoS::AtLeastOnce, 1 + i as u16);
    }
    send_publish(&mut publ, fits.clone());
    let got = collect(&mut s, 3);
    let got: Vec<&[u8]> = got.iter().map(|m| &m.payload[..]).collect();
    assert_eq!(got, [&small1[..], &small2[..], &fits.payload[..]]);
    s.expect_silence(QUIET);
    // A client without the limit got all four.
    assert_eq!(collect(&mut big, 4)[1].payload, &large[..]);
}

// ---------------------------------------------------------------------------------------------
// Subscription Identifiers, No Local

fn sub_ids(m: &Publish) -> Vec<u32> {
    let mut ids: Vec<u32> = m
        .properties
        .subscription_identifiers
        .iter()
        .map(|i| i.get())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn subscription_identifiers_on_delivered_messages() {
    // Section 3.3.4: the PUBLISH carries the Subscription Identifier of the SUBSCRIBE;
    // [MQTT-3.3.4-3] [MQTT-3.3.4-4] every matching one; [MQTT-3.8.4-3] a repeated filter
    // replaces the subscription (and its identifier). Up to 268,435,455 (section 3.3.2.3.8).
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    let mut r = publish("si/r", b"retained", QoS::AtLeastOnce, 100);
    r.retain = true;
    send_publish(&mut publ, r);
    let mut s = broker.client(V5, "s");
    subscribe_with(&mut s, 1, &[("si/+", qos(QoS::AtLeastOnce))], Some(7));
    // The retained message sent for this subscription carries its identifier.
    let m = &collect(&mut s, 1)[0];
    assert_eq!((m.topic.as_str(), sub_ids(m)), ("si/r", vec![7]));
    subscribe_with(&mut s, 2, &[("si/x", qos(QoS::AtLeastOnce))], None);
    subscribe_with(&mut s, 3, &[("other", qos(QoS::AtLeastOnce))], None);
    subscribe_with(
        &mut s,
        4,
        &[("si/max", qos(QoS::AtLeastOnce))],
        Some(268_435_455),
    );

    pub_msg(&mut publ, "si/x", b"1", QoS::AtLeastOnce, 1);
    pub_msg(&mut publ, "si/y", b"2", QoS::AtLeastOnce, 2);
    pub_msg(&mut publ, "other", b"3", QoS::AtLeastOnce, 3);
    pub_msg(&mut publ, "si/max", b"4", QoS::AtLeastOnce, 4);
    let got: Vec<Vec<u32>> = collect(&mut s, 4).iter().map(sub_ids).collect();
    assert_eq!(got, [vec![7], vec![7], vec![], vec![7, 268_435_455]]);

    // Subscribing to `si/+` again replaces it, identifier included; the retained message is
    // sent again (Retain Handling 0) with the new one.
    subscribe_with(&mut s, 5, &[("si/+", qos(QoS::AtLeastOnce))], Some(9));
    let m = &collect(&mut s, 1)[0];
    assert_eq!((m.topic.as_str(), sub_ids(m)), ("si/r", vec![9]));
    pub_msg(&mut publ, "si/x", b"5", QoS::AtLeastOnce, 5);
    assert_eq!(sub_ids(&collect(&mut s, 1)[0]), [9]);
}

#[test]
fn subscription_identifier_in_a_publish_from_a_client_is_0x82() {
    // [MQTT-3.3.4-6]; a Protocol Error, so DISCONNECT 0x82 (section 4.13).
    let broker = TestBroker::start();
    let mut s = broker.client(V5, "s");
    s.subscribe("sid/#", QoS::AtMostOnce);
    let mut p = broker.client(V5, "p");
    let mut m = publish("sid/t", b"bad", QoS::AtLeastOnce, 1);
    m.properties.subscription_identifiers = vec![SubscriptionId::new(1).unwrap()];
    p.send(m);
    p.expect_disconnect(ReasonCode::PROTOCOL_ERROR);
    let mut q = broker.client(V5, "q");
    pub_msg(&mut q, "sid/t", b"good", QoS::AtLeastOnce, 1);
    assert_eq!(
        s.recv_publish().payload,
        &b"good"[..],
        "the bad one was not delivered"
    );
}

#[test]
fn no_local_keeps_a_client_from_its_own_messages() {
    // [MQTT-3.8.3-3].
    let broker = TestBroker::start();
    let mut a = broker.client(V5, "a");
    let no_local = SubscriptionOptions {
        no_local: true,
        ..qos(QoS::AtLeastOnce)
    };
    subscribe_with(
        &mut a,
        1,
        &[("nl/t", no_local), ("nl/sync", qos(QoS::AtMostOnce))],
        None,
    );
    let mut c = broker.client(V5, "c");
    c.subscribe("nl/t", QoS::AtLeastOnce);
    pub_msg(&mut a, "nl/t", b"own", QoS::AtLeastOnce, 1);
    pub_msg(&mut a, "nl/sync", b"sync", QoS::AtMostOnce, 0);
    let m = a.recv_publish();
    assert_eq!(
        m.topic.as_str(),
        "nl/sync",
        "own message not forwarded back: {m:?}"
    );
    // Others still get it, and a gets other clients' messages.
    assert_eq!(collect(&mut c, 1)[0].payload, &b"own"[..]);
    let mut b = broker.client(V5, "b");
    pub_msg(&mut b, "nl/t", b"theirs", QoS::AtLeastOnce, 1);
    assert_eq!(collect(&mut a, 1)[0].payload, &b"theirs"[..]);
}

// ---------------------------------------------------------------------------------------------
// Shared subscriptions

#[test]
fn shared_subscription_members_take_turns() {
    // Section 4.8.2: each message goes to one member of the group; the broker alternates.
    let broker = TestBroker::start();
    let mut a = broker.client(V5, "a");
    a.subscribe("$share/g/sh/t", QoS::AtLeastOnce);
    let mut b = broker.client(V5, "b");
    b.subscribe("$share/g/sh/t", QoS::AtLeastOnce);
    let mut publ = broker.client(V5, "pub");
    for i in 0..10u16 {
        assert_eq!(
            pub_msg(&mut publ, "sh/t", &[i as u8], QoS::AtLeastOnce, 1 + i),
            ReasonCode::SUCCESS
        );
    }
    let got_a: Vec<u8> = collect(&mut a, 5).iter().map(|m| m.payload[0]).collect();
    let got_b: Vec<u8> = collect(&mut b, 5).iter().map(|m| m.payload[0]).collect();
    a.expect_silence(QUIET);
    b.expect_silence(Duration::from_millis(10));
    let all: BTreeSet<u8> = got_a.iter().chain(&got_b).copied().collect();
    assert_eq!(
        all,
        (0..10).collect(),
        "each message once: {got_a:?} {got_b:?}"
    );
    let parity = got_a[0] % 2;
    assert!(
        got_a.iter().all(|n| n % 2 == parity) && got_b.iter().all(|n| n % 2 != parity),
        "members alternate: {got_a:?} {got_b:?}"
    );
}

#[test]
fn each_shared_group_and_each_plain_subscriber_gets_a_copy() {
    // Section 4.8.2: a message goes to one member of every matching group, and to every
    // non-shared subscription as usual.
    let broker = TestBroker::start();
    let mut g1: Vec<Peer> = ["g1a", "g1b"]
        .iter()
        .map(|n| {
            let mut p = broker.client(V5, n);
            p.subscribe("$share/one/grp/+", QoS::AtLeastOnce);
            p
        })
        .collect();
    let mut g2 = broker.client(V5, "g2");
    g2.subscribe("$share/two/grp/#", QoS::AtLeastOnce);
    let mut plain = broker.client(V5, "plain");
    plain.subscribe("grp/+", QoS::AtLeastOnce);
    let mut publ = broker.client(V5, "pub");
    for i in 0..6u16 {
        pub_msg(&mut publ, "grp/t", &[i as u8], QoS::AtLeastOnce, 1 + i);
    }
    let all: Vec<u8> = (0..6).collect();
    let seq = |p: &mut Peer, n| {
        collect(p, n)
            .iter()
            .map(|m| m.payload[0])
            .collect::<Vec<u8>>()
    };
    assert_eq!(seq(&mut g2, 6), all, "group two's only member gets all");
    assert_eq!(seq(&mut plain, 6), all, "the plain subscriber gets all");
    let mut shared: Vec<u8> = seq(&mut g1[0], 3);
    shared.extend(seq(&mut g1[1], 3));
    shared.sort_unstable();
    assert_eq!(shared, all, "group one's members share the six");
    for p in g1.iter_mut().chain([&mut g2, &mut plain]) {
        p.expect_silence(Duration::from_millis(100));
    }
}

#[test]
fn a_departing_members_queued_messages_go_to_the_rest_of_the_group() {
    // Section 4.8.2: "If the Client's Session terminates before the Client reconnects, the
    // Server SHOULD send the Application Message to another Client that is subscribed to the
    // same Shared Subscription." Each member gets its own Subscription Identifier only
    // (section 3.3.4).
    let broker = TestBroker::start();
    let (mut a, _) = client_with(&broker, "a", |c| {
        c.properties.receive_maximum = NonZeroU16::new(1);
    });
    subscribe_with(
        &mut a,
        1,
        &[("$share/g/dep/t", qos(QoS::AtLeastOnce))],
        Some(5),
    );
    let mut b = broker.client(V5, "b");
    subscribe_with(
        &mut b,
        1,
        &[("$share/g/dep/t", qos(QoS::AtLeastOnce))],
        Some(6),
    );
    let mut publ = broker.client(V5, "pub");
    for i in 0..6u16 {
        pub_msg(&mut publ, "dep/t", &[i as u8], QoS::AtLeastOnce, 1 + i);
    }
    // a took one message and does not acknowledge it; its other turns wait in its queue.
    let first = a.recv_publish();
    assert_eq!(sub_ids(&first), [5]);
    let mut seen = BTreeSet::from([first.payload[0]]);
    for m in collect(&mut b, 3) {
        assert_eq!(sub_ids(&m), [6]);
        seen.insert(m.payload[0]);
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    // a leaves for good (Session Expiry Interval 0); b gets what a did not (and perhaps the
    // one a never acknowledged, again).
    a.disconnect();
    while seen.len() < 6 {
        let m = &collect(&mut b, 1)[0];
        assert_eq!(sub_ids(m), [6], "{m:?}");
        seen.insert(m.payload[0]);
    }
    assert_eq!(
        seen,
        (0..6).collect::<BTreeSet<u8>>(),
        "no message lost for the group"
    );
}

#[test]
fn shared_subscriptions_follow_the_dollar_rule_and_get_no_retained_messages() {
    // [MQTT-4.7.2-1] applies to the filter after `$share/{ShareName}/`; section 3.3.1.3 sends
    // retained messages for new Non-shared Subscriptions only.
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    let mut r = publish("shr/t", b"retained", QoS::AtLeastOnce, 1);
    r.retain = true;
    send_publish(&mut publ, r);
    let mut s = broker.client(V5, "s");
    subscribe_with(
        &mut s,
        1,
        &[
            ("$share/g/#", qos(QoS::AtLeastOnce)),
            ("$share/h/$app/+", qos(QoS::AtLeastOnce)),
        ],
        None,
    );
    s.expect_silence(QUIET);
    pub_msg(&mut publ, "$app/x", b"dollar", QoS::AtLeastOnce, 2);
    pub_msg(&mut publ, "shr/t", b"plain", QoS::AtLeastOnce, 3);
    let got: Vec<(String, String)> = collect(&mut s, 2)
        .iter()
        .map(|m| {
            (
                m.topic.as_str().to_owned(),
                String::from_utf8(m.payload.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("$app/x".to_owned(), "dollar".to_owned()),
            ("shr/t".to_owned(), "plain".to_owned())
        ],
        "`$share/g/#` does not take `$app/x`; `$share/h/$app/+` does"
    );
    s.expect_silence(Duration::from_millis(100));
}

// ---------------------------------------------------------------------------------------------
// Forwarded properties, Message Expiry Interval

#[test]
fn application_message_properties_are_forwarded_unchanged() {
    // [MQTT-3.3.2-4] Payload Format Indicator, [MQTT-3.3.2-15] Response Topic,
    // [MQTT-3.3.2-16] Correlation Data, [MQTT-3.3.2-17] [MQTT-3.3.2-18] User Properties in
    // order, [MQTT-3.3.2-20] Content Type.
    let broker = TestBroker::start();
    let mut s = broker.client(V5, "s");
    s.subscribe("pr/#", QoS::ExactlyOnce);
    let mut v3 = broker.client(V3_1_1, "v3");
    v3.subscribe("pr/#", QoS::ExactlyOnce);
    let mut publ = broker.client(V5, "pub");
    let s_ = |x: &str| MqttString::new(x).unwrap();
    for (i, q) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let mut m = publish("pr/t", "{\"ok\":true}".as_bytes(), q, 1 + i as u16);
        let p = &mut m.properties;
        p.payload_format = Some(PayloadFormat::Utf8);
        p.response_topic = Some(topic("pr/reply/42"));
        p.correlation_data = Some(Bytes::from_static(b"\x00\x01corr\xff"));
        p.content_type = Some(s_("application/json"));
        p.user_properties = vec![
            (s_("k"), s_("v1")),
            (s_("z"), s_("last?")),
            (s_("k"), s_("v2")),
            (s_("a"), s_("")),
        ];
        let expected = m.properties.clone();
        send_publish(&mut publ, m);
        let got = &collect(&mut s, 1)[0];
        let mut props = got.properties.clone();
        assert_eq!(props.subscription_identifiers, vec![]);
        props.message_expiry_interval = None;
        assert_eq!(props, expected, "QoS {q}");
        assert_eq!(got.payload, &b"{\"ok\":true}"[..]);
        // A 3.1.1 subscriber gets the message without them.
        assert_eq!(collect(&mut v3, 1)[0].payload, &b"{\"ok\":true}"[..]);
    }
    let mut unspecified = publish("pr/u", b"\xff\xfe", QoS::AtLeastOnce, 9);
    unspecified.properties.payload_format = Some(PayloadFormat::Unspecified);
    send_publish(&mut publ, unspecified);
    assert_eq!(
        collect(&mut s, 1)[0].properties.payload_format,
        Some(PayloadFormat::Unspecified)
    );
}

fn persistent(c: &mut Connect) {
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
}

#[test]
fn expired_messages_are_not_delivered_to_a_returning_session() {
    // [MQTT-3.3.2-5]: expired before onward delivery started: deleted; [MQTT-3.3.2-6]: the
    // interval sent is the received one minus the time waited.
    let broker = TestBroker::start();
    let (mut s, _) = client_with(&broker, "s", persistent);
    subscribe_with(&mut s, 1, &[("ex/#", qos(QoS::AtLeastOnce))], None);
    s.disconnect();
    let mut online = broker.client(V5, "online");
    online.subscribe("ex/#", QoS::AtLeastOnce);

    let mut publ = broker.client(V5, "pub");
    for (i, (t, expiry)) in [
        ("ex/short", Some(1)),
        ("ex/long", Some(10)),
        ("ex/none", None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = publish(t, t.as_bytes(), QoS::AtLeastOnce, 1 + i as u16);
        m.properties.message_expiry_interval = expiry;
        send_publish(&mut publ, m);
    }
    // Delivered at once: the interval is at most the one published.
    let now: Vec<(String, Option<u32>)> = collect(&mut online, 3)
        .iter()
        .map(|m| {
            (
                m.topic.as_str().to_owned(),
                m.properties.message_expiry_interval,
            )
        })
        .collect();
    assert!(matches!(now[0].1, Some(1)), "{now:?}");
    assert!(matches!(now[1].1, Some(1..=10)), "{now:?}");
    assert_eq!(now[2].1, None);

    std::thread::sleep(Duration::from_millis(1500));
    let (mut s, ack) = client_with(&broker, "s", persistent);
    assert!(ack.session_present);
    let got = collect(&mut s, 2);
    let seen: Vec<(&str, Option<u32>)> = got
        .iter()
        .map(|m| (m.topic.as_str(), m.properties.message_expiry_interval))
        .collect();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].0, "ex/long",
        "ex/short expired while queued: {seen:?}"
    );
    assert!(
        matches!(seen[0].1, Some(1..=9)),
        "the interval left is lower than the 10 s published: {seen:?}"
    );
    assert_eq!(seen[1], ("ex/none", None));
    s.expect_silence(QUIET);
}

#[test]
fn a_message_that_expires_while_queued_behind_the_receive_maximum_is_dropped() {
    // [MQTT-3.3.2-5], for a connected client whose Receive Maximum holds the message back.
    let broker = TestBroker::start();
    let (mut s, _) = client_with(&broker, "s", |c| {
        c.properties.receive_maximum = NonZeroU16::new(1);
    });
    subscribe_with(&mut s, 1, &[("exq/t", qos(QoS::AtLeastOnce))], None);
    let mut publ = broker.client(V5, "pub");
    pub_msg(&mut publ, "exq/t", b"first", QoS::AtLeastOnce, 1);
    let first = s.recv_publish();
    let mut m = publish("exq/t", b"expires", QoS::AtLeastOnce, 2);
    m.properties.message_expiry_interval = Some(1);
    send_publish(&mut publ, m);
    pub_msg(&mut publ, "exq/t", b"last", QoS::AtLeastOnce, 3);
    std::thread::sleep(Duration::from_millis(1300));
    s.send(Packet::PubAck(Ack::new(first.packet_id.unwrap())));
    let got = collect(&mut s, 1);
    assert_eq!(payloads(&got), ["last"]);
    s.expect_silence(QUIET);
}

#[test]
fn qos0_messages_are_not_queued_for_an_offline_session_by_default() {
    // Section 4.1: QoS 1 messages pending transmission are Session State, QoS 0 ones only
    // optionally; the broker's default (`queue_qos0_offline = false`) leaves them out.
    let broker = TestBroker::start();
    let (mut s, _) = client_with(&broker, "s", persistent);
    subscribe_with(&mut s, 1, &[("off/#", qos(QoS::AtLeastOnce))], None);
    s.disconnect();
    let mut publ = broker.client(V5, "pub");
    pub_msg(&mut publ, "off/t", b"zero", QoS::AtMostOnce, 0);
    pub_msg(&mut publ, "off/t", b"one", QoS::AtLeastOnce, 1);
    let (mut s, _) = client_with(&broker, "s", persistent);
    assert_eq!(payloads(&collect(&mut s, 1)), ["one"]);
    s.expect_silence(QUIET);
}

#[test]
fn acknowledgements_for_unknown_packet_identifiers_get_0x92_or_are_ignored() {
    let broker = TestBroker::start();
    let mut p = broker.client(V5, "unknown-ids");
    let not_found = |id: u16| {
        let mut a = harness::ack(id);
        a.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        a
    };
    // PUBREL for a QoS 2 message the broker never received: PUBCOMP 0x92 (Packet Identifier
    // not found, section 3.7.2.1) [MQTT-3.7.2-1].
    p.send(Packet::PubRel(harness::ack(7)));
    assert_eq!(p.recv(), Packet::PubComp(not_found(7)));
    // PUBREC for a message the broker never sent: PUBREL 0x92 (section 3.6.2.1)
    // [MQTT-3.6.2-1].
    p.send(Packet::PubRec(harness::ack(9)));
    assert_eq!(p.recv(), Packet::PubRel(not_found(9)));
    // PUBACK and PUBCOMP for nothing in flight have no answer; the connection stays and
    // still works.
    p.send(Packet::PubAck(harness::ack(11)));
    p.send(Packet::PubComp(harness::ack(12)));
    p.send(Packet::PingReq);
    assert_eq!(p.recv(), Packet::PingResp);
}
