//! Publish and subscribe over the wire: `+` and `#`, `$` topics, overlapping subscriptions,
//! UNSUBSCRIBE, the QoS a subscriber gets, packet identifiers, ordering, SUBACK codes and
//! invalid filters; on MQTT 3.1.1 and 5.0 wherever both apply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use halyard_codec::{
    Ack, Packet, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe, SubscribeProperties,
    SubscriptionId, SubscriptionOptions, TopicFilter, Unsubscribe, UnsubscribeProperties,
};
use harness::{Peer, TestBroker, V3_1_1, V5, WAIT, collect, pid, publish, send_publish};
use std::collections::HashSet;
use std::time::Duration;

const VERSIONS: [ProtocolVersion; 2] = [V3_1_1, V5];

/// How long a subscriber must stay quiet to show that nothing more is coming.
const QUIET: Duration = Duration::from_millis(300);

/// SUBSCRIBE with every filter in `filters` (at its QoS) and, on 5.0, Subscription
/// Identifier `sub_id`; returns the SUBACK's codes after checking its packet identifier.
fn subscribe_all(
    p: &mut Peer,
    id: u16,
    filters: &[(&str, QoS)],
    sub_id: Option<u32>,
) -> Vec<ReasonCode> {
    let s = Subscribe {
        packet_id: pid(id),
        properties: SubscribeProperties {
            subscription_identifier: sub_id.map(|n| SubscriptionId::new(n).unwrap()),
            ..Default::default()
        },
        filters: filters
            .iter()
            .map(|(f, q)| {
                (
                    TopicFilter::new(f).unwrap(),
                    SubscriptionOptions::with_qos(*q),
                )
            })
            .collect(),
    };
    p.send(s);
    let ack = p.recv_suback();
    assert_eq!(
        ack.packet_id,
        pid(id),
        "SUBACK echoes the packet identifier"
    );
    ack.reason_codes
}

/// UNSUBSCRIBE from `filters`; returns the UNSUBACK's codes (empty on 3.1.1).
fn unsubscribe_all(p: &mut Peer, id: u16, filters: &[&str]) -> Vec<ReasonCode> {
    p.send(Unsubscribe {
        packet_id: pid(id),
        properties: UnsubscribeProperties::default(),
        filters: filters
            .iter()
            .map(|f| TopicFilter::new(f).unwrap())
            .collect(),
    });
    match p.recv() {
        Packet::UnsubAck(a) => {
            assert_eq!(
                a.packet_id,
                pid(id),
                "UNSUBACK echoes the packet identifier"
            );
            a.reason_codes
        }
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// Publishes `payload` to `t` at `qos` and completes the flow.
fn pub_msg(p: &mut Peer, t: &str, payload: &[u8], qos: QoS, id: u16) -> ReasonCode {
    send_publish(p, publish(t, payload, qos, id))
}

fn topics(msgs: &[Publish]) -> Vec<String> {
    msgs.iter().map(|m| m.topic.as_str().to_owned()).collect()
}

/// A SUBSCRIBE for one filter, encoded by hand so that filters the codec refuses to build can
/// be sent.
fn raw_subscribe(v: ProtocolVersion, id: u16, filter: &str, options: u8) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    if v.is_v5() {
        body.push(0); // no properties
    }
    body.extend_from_slice(&u16::try_from(filter.len()).unwrap().to_be_bytes());
    body.extend_from_slice(filter.as_bytes());
    body.push(options);
    assert!(body.len() < 128, "one-byte remaining length");
    let mut packet = vec![0x82, u8::try_from(body.len()).unwrap()];
    packet.extend_from_slice(&body);
    packet
}

#[test]
fn plus_and_hash_match_whole_levels() {
    // Section 4.7.1: `+` matches exactly one level (possibly empty), `#` the parent level and
    // any number of levels below it. Section 4.7.2 / [MQTT-4.7.2-1] (5.0): a filter starting
    // with a wildcard does not match a topic starting with `$`.
    let published = [
        "a", "a/b", "a/b/c", "a/c", "b/b", "/a", "a/", "$x", "$app/x", "$app/x/y",
    ];
    let all_plain: &[&str] = &["a", "a/b", "a/b/c", "a/c", "b/b", "/a", "a/"];
    let cases: &[(&str, &[&str])] = &[
        ("a/+", &["a/b", "a/c", "a/"]),
        ("a/#", &["a", "a/b", "a/b/c", "a/c", "a/"]),
        ("+/b", &["a/b", "b/b"]),
        ("a/+/c", &["a/b/c"]),
        ("+", &["a"]),
        ("+/+", &["a/b", "a/c", "b/b", "/a", "a/"]),
        ("/+", &["/a"]),
        ("#", all_plain),
        ("+/#", all_plain),
        ("+/x", &[]),
        ("+/+/y", &[]),
        ("$app/#", &["$app/x", "$app/x/y"]),
        ("$app/+", &["$app/x"]),
        ("$x", &["$x"]),
        ("a/b/c", &["a/b/c"]),
    ];
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut subs: Vec<Peer> = cases
            .iter()
            .enumerate()
            .map(|(i, (filter, _))| {
                let mut s = broker.client(v, &format!("s{i}"));
                s.subscribe(filter, QoS::AtMostOnce);
                s
            })
            .collect();
        let mut publ = broker.client(v, "pub");
        for (i, t) in published.iter().enumerate() {
            // QoS 1 so that each message is routed before the next one is sent.
            pub_msg(&mut publ, t, t.as_bytes(), QoS::AtLeastOnce, 1 + i as u16);
        }
        for (s, (filter, expected)) in subs.iter_mut().zip(cases) {
            let got = collect(s, expected.len());
            assert_eq!(topics(&got), *expected, "{v}: filter {filter}");
            for m in &got {
                assert_eq!(m.payload, m.topic.as_str().as_bytes(), "{v}: payload");
            }
        }
        // Anything left over would be in the sockets by the end of the first wait.
        for (i, s) in subs.iter_mut().enumerate() {
            s.expect_silence(if i == 0 {
                QUIET
            } else {
                Duration::from_millis(10)
            });
        }
    }
}

#[test]
fn dollar_topics_escape_leading_wildcards_but_not_dollar_filters() {
    // [MQTT-4.7.2-1] (5.0; section 4.7.2 in 3.1.1).
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut hash = broker.client(v, "hash");
        assert_eq!(
            subscribe_all(
                &mut hash,
                1,
                &[("#", QoS::AtMostOnce), ("+/status", QoS::AtMostOnce)],
                None
            ),
            vec![ReasonCode::GRANTED_QOS_0; 2]
        );
        let mut dollar = broker.client(v, "dollar");
        dollar.subscribe("$monitor/#", QoS::AtMostOnce);
        let mut publ = broker.client(v, "pub");
        pub_msg(&mut publ, "$monitor/status", b"d", QoS::AtLeastOnce, 1);
        pub_msg(&mut publ, "plain/status", b"p", QoS::AtLeastOnce, 2);
        // The `$` message reached only the `$monitor/#` subscriber; the `#` subscriber's next
        // (single, the two filters overlap) message is the plain one.
        let m = dollar.recv_publish();
        assert_eq!(m.topic.as_str(), "$monitor/status", "{v}");
        let m = hash.recv_publish();
        assert_eq!(m.topic.as_str(), "plain/status", "{v}");
        hash.expect_silence(QUIET);
        dollar.expect_silence(Duration::from_millis(10));
    }
}

#[test]
fn clients_may_not_publish_to_sys_topics() {
    // Section 4.7.2: `$SYS/` is the Server's. 5.0 answers 0x87 (Not authorized, Table 3-4);
    // 3.1.1 either acknowledges as usual or closes the connection [MQTT-3.3.5-2].
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut watcher = broker.client(v, "watcher");
        assert_eq!(
            subscribe_all(
                &mut watcher,
                1,
                &[("$SYS/#", QoS::ExactlyOnce), ("sync", QoS::AtMostOnce)],
                None
            ),
            vec![ReasonCode::GRANTED_QOS_2, ReasonCode::GRANTED_QOS_0]
        );
        let mut p = broker.client(v, "p");
        p.send(publish("$SYS/broker/fake", b"0", QoS::AtMostOnce, 0));
        p.send(publish("$SYS/broker/fake", b"1", QoS::AtLeastOnce, 1));
        match p.recv_or_closed(WAIT) {
            Some(Packet::PubAck(a)) => {
                assert_eq!(a.packet_id, pid(1));
                if v.is_v5() {
                    assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED, "{v}: PUBACK");
                }
            }
            None if !v.is_v5() => p = broker.client(v, "p"),
            other => panic!("{v}: expected PUBACK, got {other:?}"),
        }
        p.send(publish("$SYS/broker/fake", b"2", QoS::ExactlyOnce, 2));
        match p.recv_or_closed(WAIT) {
            Some(Packet::PubRec(a)) => {
                assert_eq!(a.packet_id, pid(2));
                if v.is_v5() {
                    assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED, "{v}: PUBREC");
                } else {
                    // A positive acknowledgement "according to the normal QoS rules".
                    p.send(Packet::PubRel(Ack::new(pid(2))));
                    assert!(
                        matches!(p.recv(), Packet::PubComp(a) if a.packet_id == pid(2)),
                        "{v}: PUBCOMP"
                    );
                }
            }
            None if !v.is_v5() => p = broker.client(v, "p"),
            other => panic!("{v}: expected PUBREC, got {other:?}"),
        }
        pub_msg(&mut p, "sync", b"s", QoS::AtMostOnce, 0);
        // Nothing of the three `$SYS` messages came before the sync message.
        let m = watcher.recv_publish();
        assert_eq!(m.topic.as_str(), "sync", "{v}: {m:?}");
        // The publisher is still connected and may publish elsewhere.
        assert_eq!(
            pub_msg(&mut p, "sync", b"t", QoS::AtLeastOnce, 3),
            ReasonCode::SUCCESS
        );
        assert_eq!(watcher.recv_publish().payload, &b"t"[..]);
    }
}

#[test]
fn overlapping_subscriptions_give_one_copy_at_the_highest_qos() {
    // 3.1.1 [MQTT-3.3.5-1]; 5.0 [MQTT-3.3.4-2], with every matching Subscription Identifier
    // in that one copy [MQTT-3.3.4-3] [MQTT-3.3.4-4].
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut s = broker.client(v, "s");
        let id = |n| v.is_v5().then_some(n);
        assert_eq!(
            subscribe_all(&mut s, 1, &[("ov/+", QoS::AtMostOnce)], id(1)),
            [ReasonCode::GRANTED_QOS_0]
        );
        assert_eq!(
            subscribe_all(&mut s, 2, &[("ov/#", QoS::ExactlyOnce)], id(2)),
            [ReasonCode::GRANTED_QOS_2]
        );
        assert_eq!(
            subscribe_all(&mut s, 3, &[("ov/t", QoS::AtLeastOnce)], id(3)),
            [ReasonCode::GRANTED_QOS_1]
        );
        assert_eq!(
            subscribe_all(&mut s, 4, &[("sync", QoS::AtMostOnce)], None),
            [ReasonCode::GRANTED_QOS_0]
        );
        let mut publ = broker.client(v, "pub");
        pub_msg(&mut publ, "ov/t", b"all three", QoS::ExactlyOnce, 1);
        pub_msg(&mut publ, "ov/u", b"two", QoS::AtLeastOnce, 2);
        pub_msg(&mut publ, "ov/u/v", b"one", QoS::ExactlyOnce, 3);
        pub_msg(&mut publ, "sync", b"end", QoS::AtMostOnce, 0);
        let got = collect(&mut s, 4);
        let seen: Vec<(&str, QoS)> = got.iter().map(|m| (m.topic.as_str(), m.qos)).collect();
        assert_eq!(
            seen,
            [
                ("ov/t", QoS::ExactlyOnce),
                ("ov/u", QoS::AtLeastOnce),
                ("ov/u/v", QoS::ExactlyOnce),
                ("sync", QoS::AtMostOnce),
            ],
            "{v}: one copy each, at the highest granted QoS"
        );
        let ids: Vec<Vec<u32>> = got
            .iter()
            .map(|m| {
                let mut ids: Vec<u32> = m
                    .properties
                    .subscription_identifiers
                    .iter()
                    .map(|i| i.get())
                    .collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        if v.is_v5() {
            assert_eq!(ids, [vec![1, 2, 3], vec![1, 2], vec![2], vec![]], "{v}");
        } else {
            assert!(ids.iter().all(Vec::is_empty));
        }
        s.expect_silence(QUIET);
    }
}

#[test]
fn unsubscribe_stops_delivery() {
    // 3.1.1 [MQTT-3.10.4-2]; 5.0 [MQTT-3.10.4-2], with one UNSUBACK code per filter in order
    // [MQTT-3.11.3-1]: 0x00, or 0x11 (No subscription existed, section 3.11.3).
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut s = broker.client(v, "s");
        assert_eq!(
            subscribe_all(
                &mut s,
                1,
                &[
                    ("u/a", QoS::AtLeastOnce),
                    ("u/b", QoS::AtLeastOnce),
                    ("sync", QoS::AtMostOnce)
                ],
                None
            ),
            [
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::GRANTED_QOS_0
            ]
        );
        let mut publ = broker.client(v, "pub");
        pub_msg(&mut publ, "u/a", b"before", QoS::AtLeastOnce, 1);
        assert_eq!(collect(&mut s, 1)[0].payload, &b"before"[..]);

        let codes = unsubscribe_all(&mut s, 2, &["u/a", "never/subscribed", "u/b"]);
        if v.is_v5() {
            assert_eq!(
                codes,
                [
                    ReasonCode::SUCCESS,
                    ReasonCode::NO_SUBSCRIPTION_EXISTED,
                    ReasonCode::SUCCESS
                ]
            );
        } else {
            assert!(codes.is_empty());
        }
        let rc = pub_msg(&mut publ, "u/a", b"after", QoS::AtLeastOnce, 2);
        if v.is_v5() {
            // Nobody is subscribed any more (Table 3-4).
            assert_eq!(rc, ReasonCode::NO_MATCHING_SUBSCRIBERS);
        }
        pub_msg(&mut publ, "u/b", b"after", QoS::AtLeastOnce, 3);
        pub_msg(&mut publ, "sync", b"end", QoS::AtMostOnce, 0);
        let m = s.recv_publish();
        assert_eq!(
            m.topic.as_str(),
            "sync",
            "{v}: nothing after UNSUBSCRIBE, got {m:?}"
        );

        let codes = unsubscribe_all(&mut s, 3, &["u/a"]);
        if v.is_v5() {
            assert_eq!(codes, [ReasonCode::NO_SUBSCRIPTION_EXISTED]);
        }
        s.expect_silence(QUIET);
    }
}

#[test]
fn delivered_qos_is_the_minimum_of_published_and_granted() {
    // 3.1.1 [MQTT-3.8.4-6]; 5.0 [MQTT-3.8.4-8].
    let levels = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut subs: Vec<(QoS, Peer)> = levels
            .iter()
            .map(|&g| {
                let mut s = broker.client(v, &format!("granted{g}"));
                s.subscribe("q/t", g);
                (g, s)
            })
            .collect();
        let mut publ = broker.client(v, "pub");
        for (i, &published) in levels.iter().enumerate() {
            pub_msg(&mut publ, "q/t", &[i as u8], published, 1 + i as u16);
            for (granted, s) in &mut subs {
                let m = &collect(s, 1)[0];
                assert_eq!(m.payload, &[i as u8][..]);
                assert_eq!(
                    m.qos,
                    published.min(*granted),
                    "{v}: published at {published}, granted {granted}"
                );
            }
        }
    }
}

#[test]
fn packet_identifiers_towards_a_subscriber_are_non_zero_and_unique_in_flight() {
    // 3.1.1 [MQTT-2.3.1-1] and section 2.3.1; 5.0 [MQTT-2.2.1-4].
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut s = broker.client(v, "s");
        s.subscribe("id/#", QoS::ExactlyOnce);
        let mut publ = broker.client(v, "pub");
        for i in 0..20u16 {
            let (t, q) = if i % 2 == 0 {
                ("id/2", QoS::ExactlyOnce)
            } else {
                ("id/1", QoS::AtLeastOnce)
            };
            pub_msg(&mut publ, t, &i.to_be_bytes(), q, 1 + i);
        }
        // Twenty messages in flight, none acknowledged.
        let first: Vec<Publish> = (0..20).map(|_| s.recv_publish()).collect();
        let ids: HashSet<u16> = first.iter().map(|m| m.packet_id.unwrap().get()).collect();
        assert_eq!(ids.len(), 20, "{v}: identifiers in flight repeat: {ids:?}");
        assert!(!ids.contains(&0));

        // The QoS 2 messages move on to PUBREL and stay in flight until PUBCOMP; the QoS 1
        // ones are done.
        let mut qos2_ids = HashSet::new();
        for m in &first {
            let id = m.packet_id.unwrap();
            if m.qos == QoS::ExactlyOnce {
                qos2_ids.insert(id.get());
                s.send(Packet::PubRec(Ack::new(id)));
            } else {
                s.send(Packet::PubAck(Ack::new(id)));
            }
        }
        for _ in 0..qos2_ids.len() {
            match s.recv() {
                Packet::PubRel(a) => assert!(qos2_ids.contains(&a.packet_id.get())),
                other => panic!("{v}: expected PUBREL, got {other:?}"),
            }
        }
        for i in 20..45u16 {
            pub_msg(&mut publ, "id/1", &i.to_be_bytes(), QoS::AtLeastOnce, 1 + i);
        }
        let second: Vec<Publish> = (0..25).map(|_| s.recv_publish()).collect();
        let new_ids: HashSet<u16> = second.iter().map(|m| m.packet_id.unwrap().get()).collect();
        assert_eq!(new_ids.len(), 25, "{v}: identifiers in flight repeat");
        assert!(
            new_ids.is_disjoint(&qos2_ids),
            "{v}: an identifier still awaiting PUBCOMP was reused: {:?}",
            new_ids.intersection(&qos2_ids).collect::<Vec<_>>()
        );
        for id in qos2_ids {
            s.send(Packet::PubComp(Ack::new(pid(id))));
        }
        for m in &second {
            s.send(Packet::PubAck(Ack::new(m.packet_id.unwrap())));
        }
        s.expect_silence(QUIET);
    }
}

#[test]
fn messages_from_one_publisher_arrive_in_order() {
    // 3.1.1 [MQTT-4.6.0-6]; 5.0 [MQTT-4.6.0-5] [MQTT-4.6.0-6] (same topic and QoS).
    const N: u16 = 40;
    for v in VERSIONS {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let broker = TestBroker::start();
            let mut s = broker.client(v, "s");
            s.subscribe("ord", QoS::ExactlyOnce);
            let mut publ = broker.client(v, "pub");
            // Sent back to back, without waiting for acknowledgements in between.
            for i in 0..N {
                publ.send(publish("ord", &i.to_be_bytes(), qos, 1 + i));
            }
            let (mut acked, mut completed) = (0, 0);
            let (need_acks, need_comps) = match qos {
                QoS::AtMostOnce => (0, 0),
                QoS::AtLeastOnce => (N, 0),
                QoS::ExactlyOnce => (N, N),
            };
            while acked < need_acks || completed < need_comps {
                match publ.recv() {
                    Packet::PubAck(_) if qos == QoS::AtLeastOnce => acked += 1,
                    Packet::PubRec(a) if qos == QoS::ExactlyOnce => {
                        acked += 1;
                        publ.send(Packet::PubRel(Ack::new(a.packet_id)));
                    }
                    Packet::PubComp(_) if qos == QoS::ExactlyOnce => completed += 1,
                    other => panic!("{v}: unexpected {other:?}"),
                }
            }
            let got: Vec<u16> = collect(&mut s, usize::from(N))
                .iter()
                .map(|m| u16::from_be_bytes([m.payload[0], m.payload[1]]))
                .collect();
            assert_eq!(got, (0..N).collect::<Vec<_>>(), "{v}, QoS {qos}");
        }
    }
}

#[test]
fn v5_puback_says_no_matching_subscribers_when_nobody_subscribed() {
    // 5.0 Table 3-4 (section 3.4.2.1) and Table 3-5 (section 3.5.2.1): 0x10.
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    assert_eq!(
        pub_msg(&mut publ, "nobody/here", b"1", QoS::AtLeastOnce, 1),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    assert_eq!(
        pub_msg(&mut publ, "nobody/here", b"2", QoS::ExactlyOnce, 2),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    let mut s = broker.client(V5, "s");
    s.subscribe("nobody/+", QoS::AtMostOnce);
    assert_eq!(
        pub_msg(&mut publ, "nobody/here", b"3", QoS::AtLeastOnce, 3),
        ReasonCode::SUCCESS
    );
    assert_eq!(
        pub_msg(&mut publ, "nobody/here", b"4", QoS::ExactlyOnce, 4),
        ReasonCode::SUCCESS
    );
    assert_eq!(topics(&collect(&mut s, 2)), ["nobody/here"; 2]);
}

#[test]
fn one_suback_code_per_filter_in_order() {
    // 3.1.1 [MQTT-3.8.4-4] [MQTT-3.8.4-5] [MQTT-3.9.3-1]; 5.0 [MQTT-3.8.4-5] [MQTT-3.8.4-6]
    // [MQTT-3.8.4-7] [MQTT-3.9.3-1]. The broker is set to refuse filters of more than three
    // levels: 0x8F on 5.0, 0x80 on 3.1.1.
    for v in VERSIONS {
        let broker = TestBroker::start_with(|cfg| cfg.mqtt.max_topic_levels = 3);
        let mut s = broker.client(v, "s");
        let codes = subscribe_all(
            &mut s,
            7,
            &[
                ("m/a", QoS::ExactlyOnce),
                ("m/+/x", QoS::AtMostOnce),
                ("m/b/c/d", QoS::AtLeastOnce),
                ("n/#", QoS::AtLeastOnce),
            ],
            None,
        );
        let refused = if v.is_v5() {
            ReasonCode::TOPIC_FILTER_INVALID
        } else {
            ReasonCode(0x80)
        };
        assert_eq!(
            codes,
            [
                ReasonCode::GRANTED_QOS_2,
                ReasonCode::GRANTED_QOS_0,
                refused,
                ReasonCode::GRANTED_QOS_1
            ],
            "{v}"
        );
        // Each accepted filter works as if subscribed on its own.
        let mut publ = broker.client(v, "pub");
        pub_msg(&mut publ, "m/a", b"1", QoS::ExactlyOnce, 1);
        pub_msg(&mut publ, "m/y/x", b"2", QoS::ExactlyOnce, 2);
        pub_msg(&mut publ, "n/z", b"3", QoS::ExactlyOnce, 3);
        let got: Vec<(String, QoS)> = collect(&mut s, 3)
            .into_iter()
            .map(|m| (m.topic.as_str().to_owned(), m.qos))
            .collect();
        assert_eq!(
            got,
            [
                ("m/a".to_owned(), QoS::ExactlyOnce),
                ("m/y/x".to_owned(), QoS::AtMostOnce),
                ("n/z".to_owned(), QoS::AtLeastOnce)
            ],
            "{v}"
        );
    }
}

#[test]
fn an_invalid_topic_filter_closes_the_connection() {
    // Section 4.7.1 (`#` only as the whole last level, `+` only as a whole level): a
    // SUBSCRIBE carrying such a filter is malformed; 5.0 sends DISCONNECT 0x81 first (section
    // 4.13), 3.1.1 just closes (section 4.8). No SUBACK is sent.
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut good = broker.client(v, "good");
        good.subscribe("fine/#", QoS::AtMostOnce);
        for (i, bad) in ["a/#/b", "a/b#", "a+/b", "#/a", "a/+b"].iter().enumerate() {
            let mut p = broker.client(v, &format!("bad{i}"));
            p.send_raw(&raw_subscribe(v, 1, bad, 0));
            p.expect_disconnect(ReasonCode::MALFORMED_PACKET);
        }
        // The broker and the other client are unaffected.
        let mut publ = broker.client(v, "pub");
        pub_msg(&mut publ, "fine/x", b"ok", QoS::AtLeastOnce, 1);
        assert_eq!(good.recv_publish().payload, &b"ok"[..], "{v}");
    }
}
