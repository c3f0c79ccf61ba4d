//! Retained messages over the wire: set, replace, delete; the RETAIN flag on delivery; wildcard
//! subscriptions; Retain Handling and Retain As Published (5.0); the QoS they are delivered at;
//! and their Message Expiry Interval (5.0).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use halyard_codec::{
    Ack, Packet, ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, Subscribe,
    SubscribeProperties, SubscriptionOptions, TopicFilter,
};
use harness::{Peer, TestBroker, V3_1_1, V5, collect, pid, publish};
use std::collections::BTreeSet;
use std::time::Duration;

const VERSIONS: [ProtocolVersion; 2] = [V3_1_1, V5];

/// A retained message kept on a `$` topic, which no leading wildcard matches: subscribing to
/// it along with a filter under test marks the end of that filter's retained messages.
const SENTINEL: &str = "$sentinel/r";

const QUIET: Duration = Duration::from_millis(300);

/// SUBSCRIBE with each `(filter, options)`; returns the SUBACK codes.
fn subscribe_with(
    p: &mut Peer,
    id: u16,
    filters: &[(&str, SubscriptionOptions)],
) -> Vec<ReasonCode> {
    p.send(Subscribe {
        packet_id: pid(id),
        properties: SubscribeProperties::default(),
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

fn handling(q: QoS, rh: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        retain_handling: rh,
        ..qos(q)
    }
}

/// A PUBLISH with RETAIN set.
fn retained(t: &str, payload: &[u8], q: QoS, id: u16) -> Publish {
    Publish {
        retain: true,
        ..publish(t, payload, q, id)
    }
}

/// Sends `msg` and completes the publisher's side of its QoS flow.
fn send_publish(p: &mut Peer, msg: Publish) {
    let q = msg.qos;
    let id = msg.packet_id;
    p.send(msg);
    match q {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => match p.recv() {
            Packet::PubAck(a) if Some(a.packet_id) == id => {}
            other => panic!("expected PUBACK, got {other:?}"),
        },
        QoS::ExactlyOnce => {
            match p.recv() {
                Packet::PubRec(a) if Some(a.packet_id) == id => {}
                other => panic!("expected PUBREC, got {other:?}"),
            }
            p.send(Packet::PubRel(Ack::new(id.unwrap())));
            match p.recv() {
                Packet::PubComp(a) if Some(a.packet_id) == id => {}
                other => panic!("expected PUBCOMP, got {other:?}"),
            }
        }
    }
}

/// Reads PUBLISH packets up to and including the sentinel; returns those before it.
fn until_sentinel(p: &mut Peer) -> Vec<Publish> {
    let mut got = Vec::new();
    loop {
        let m = collect(p, 1).pop().unwrap();
        if m.topic.as_str() == SENTINEL {
            assert!(m.retain, "the sentinel is a retained message: {m:?}");
            return got;
        }
        got.push(m);
    }
}

fn store_sentinel(p: &mut Peer) {
    send_publish(p, retained(SENTINEL, b"end", QoS::AtLeastOnce, 999));
}

#[test]
fn retained_message_is_set_replaced_and_deleted() {
    // 3.1.1 [MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-10] [MQTT-3.3.1-11] [MQTT-3.3.1-12];
    // 5.0 [MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-7] [MQTT-3.3.1-8].
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut publ = broker.client(v, "pub");
        store_sentinel(&mut publ);
        let probe = |name: &str| {
            let mut s = broker.client(v, name);
            subscribe_with(
                &mut s,
                1,
                &[
                    ("r/t", qos(QoS::AtLeastOnce)),
                    (SENTINEL, qos(QoS::AtMostOnce)),
                ],
            );
            let got = until_sentinel(&mut s);
            got.iter()
                .map(|m| {
                    assert_eq!(m.topic.as_str(), "r/t");
                    assert!(
                        m.retain,
                        "{v}: sent because of a new subscription: RETAIN 1"
                    );
                    String::from_utf8(m.payload.to_vec()).unwrap()
                })
                .collect::<Vec<_>>()
        };

        assert!(probe("before").is_empty(), "{v}: nothing retained yet");
        let mut live = broker.client(v, "live");
        live.subscribe("r/t", QoS::AtLeastOnce);

        send_publish(&mut publ, retained("r/t", b"v1", QoS::AtLeastOnce, 1));
        assert_eq!(probe("p1"), ["v1"], "{v}: stored");
        send_publish(&mut publ, retained("r/t", b"v2", QoS::AtLeastOnce, 2));
        assert_eq!(probe("p2"), ["v2"], "{v}: replaced, not added");
        send_publish(
            &mut publ,
            publish("r/t", b"not retained", QoS::AtLeastOnce, 3),
        );
        assert_eq!(
            probe("p3"),
            ["v2"],
            "{v}: RETAIN 0 neither stores nor replaces"
        );
        send_publish(&mut publ, retained("r/t", b"", QoS::AtLeastOnce, 4));
        assert!(probe("p4").is_empty(), "{v}: an empty payload deletes it");
        send_publish(&mut publ, retained("r/t", b"", QoS::AtLeastOnce, 5));
        assert!(probe("p5").is_empty(), "{v}: and is not stored itself");

        // The subscriber already there got every message as usual, RETAIN 0, the empty one
        // included (3.1.1 [MQTT-3.3.1-10] "processed as normal").
        let got = collect(&mut live, 5);
        let seen: Vec<(&[u8], bool)> = got.iter().map(|m| (&m.payload[..], m.retain)).collect();
        assert_eq!(
            seen,
            [
                (&b"v1"[..], false),
                (b"v2", false),
                (b"not retained", false),
                (b"", false),
                (b"", false)
            ],
            "{v}"
        );
    }
}

#[test]
fn retain_flag_on_delivery() {
    // 3.1.1: RETAIN 1 when sent because of a new subscription [MQTT-3.3.1-8], 0 to an
    // established one [MQTT-3.3.1-9]. 5.0: RETAIN 1 for messages sent at SUBSCRIBE (section
    // 3.3.1.3); to established subscriptions it follows Retain As Published: 0 clears it
    // [MQTT-3.3.1-12], 1 keeps it [MQTT-3.3.1-13].
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut plain = broker.client(v, "plain");
        plain.subscribe("f/#", QoS::AtLeastOnce);
        let mut rap = broker.client(v, "rap");
        if v.is_v5() {
            let o = SubscriptionOptions {
                retain_as_published: true,
                ..qos(QoS::AtLeastOnce)
            };
            assert_eq!(
                subscribe_with(&mut rap, 1, &[("f/#", o)]),
                [ReasonCode::GRANTED_QOS_1]
            );
        }
        let mut publ = broker.client(v, "pub");
        send_publish(&mut publ, retained("f/a", b"r", QoS::AtLeastOnce, 1));
        send_publish(&mut publ, publish("f/a", b"n", QoS::AtLeastOnce, 2));
        let flags =
            |p: &mut Peer| -> Vec<bool> { collect(p, 2).iter().map(|m| m.retain).collect() };
        assert_eq!(
            flags(&mut plain),
            [false, false],
            "{v}: forwarded with RETAIN 0"
        );
        if v.is_v5() {
            assert_eq!(flags(&mut rap), [true, false], "{v}: Retain As Published");
        }
        // A new subscription gets the stored message with RETAIN 1, with either setting.
        let mut late = broker.client(v, "late");
        late.subscribe("f/#", QoS::AtLeastOnce);
        let m = &collect(&mut late, 1)[0];
        assert_eq!((&m.payload[..], m.retain), (&b"r"[..], true), "{v}");
        if v.is_v5() {
            let mut late_rap = broker.client(v, "late_rap");
            let o = SubscriptionOptions {
                retain_as_published: true,
                ..qos(QoS::AtLeastOnce)
            };
            subscribe_with(&mut late_rap, 1, &[("f/#", o)]);
            let m = &collect(&mut late_rap, 1)[0];
            assert_eq!((&m.payload[..], m.retain), (&b"r"[..], true));
        }
    }
}

#[test]
fn wildcard_subscription_receives_every_matching_retained_message() {
    // 3.1.1 [MQTT-3.3.1-6]; 5.0 [MQTT-3.3.1-9]; `$` topics are not matched by a leading
    // wildcard (5.0 [MQTT-4.7.2-1]; section 4.7.2 in 3.1.1).
    let stored = ["w/a", "w/b", "w/b/c", "x/y", "$app/r", "$app/q/z"];
    let cases: &[(&str, &[&str])] = &[
        ("w/#", &["w/a", "w/b", "w/b/c"]),
        ("w/+", &["w/a", "w/b"]),
        ("#", &["w/a", "w/b", "w/b/c", "x/y"]),
        ("+/y", &["x/y"]),
        ("+/r", &[]),
        ("+/+/z", &[]),
        ("$app/#", &["$app/r", "$app/q/z"]),
        ("$app/+", &["$app/r"]),
    ];
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut publ = broker.client(v, "pub");
        for (i, t) in stored.iter().enumerate() {
            send_publish(
                &mut publ,
                retained(t, t.as_bytes(), QoS::AtLeastOnce, 1 + i as u16),
            );
        }
        store_sentinel(&mut publ);
        for (i, (filter, expected)) in cases.iter().enumerate() {
            let mut s = broker.client(v, &format!("s{i}"));
            subscribe_with(
                &mut s,
                1,
                &[
                    (filter, qos(QoS::AtLeastOnce)),
                    (SENTINEL, qos(QoS::AtMostOnce)),
                ],
            );
            let got = until_sentinel(&mut s);
            assert!(got.iter().all(|m| m.retain), "{v}: {filter}");
            assert!(got.iter().all(|m| m.payload == m.topic.as_str().as_bytes()));
            let topics: BTreeSet<&str> = got.iter().map(|m| m.topic.as_str()).collect();
            assert_eq!(got.len(), topics.len(), "{v}: {filter}: one copy each");
            assert_eq!(
                topics,
                expected.iter().copied().collect::<BTreeSet<_>>(),
                "{v}: filter {filter}"
            );
        }
    }
}

#[test]
fn v5_retain_handling() {
    // [MQTT-3.3.1-9] 0: always; [MQTT-3.8.4-4] also when the subscription is replaced;
    // [MQTT-3.3.1-10] 1: only if the subscription did not exist; [MQTT-3.3.1-11] 2: never.
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    send_publish(&mut publ, retained("rh/t", b"kept", QoS::AtLeastOnce, 1));
    store_sentinel(&mut publ);
    let sub_topics = |p: &mut Peer, id: u16, rh: RetainHandling| -> Vec<String> {
        subscribe_with(
            p,
            id,
            &[
                ("rh/t", handling(QoS::AtLeastOnce, rh)),
                (SENTINEL, qos(QoS::AtMostOnce)),
            ],
        );
        until_sentinel(p)
            .iter()
            .map(|m| {
                assert!(m.retain);
                m.topic.as_str().to_owned()
            })
            .collect()
    };

    let mut always = broker.client(V5, "always");
    assert_eq!(
        sub_topics(&mut always, 1, RetainHandling::SendAtSubscribe),
        ["rh/t"]
    );
    assert_eq!(
        sub_topics(&mut always, 2, RetainHandling::SendAtSubscribe),
        ["rh/t"]
    );

    let mut if_new = broker.client(V5, "if_new");
    assert_eq!(
        sub_topics(&mut if_new, 1, RetainHandling::SendIfNew),
        ["rh/t"]
    );
    assert!(sub_topics(&mut if_new, 2, RetainHandling::SendIfNew).is_empty());

    let mut never = broker.client(V5, "never");
    assert!(sub_topics(&mut never, 1, RetainHandling::DoNotSend).is_empty());
    assert!(sub_topics(&mut never, 2, RetainHandling::DoNotSend).is_empty());

    // Retain Handling affects only retained messages at SUBSCRIBE: new messages still flow.
    send_publish(&mut publ, retained("rh/t", b"new", QoS::AtLeastOnce, 2));
    for p in [&mut always, &mut if_new, &mut never] {
        let m = &collect(p, 1)[0];
        assert_eq!((&m.payload[..], m.retain), (&b"new"[..], false));
    }
}

#[test]
fn retained_messages_are_delivered_at_the_minimum_qos() {
    // 3.1.1 [MQTT-3.8.4-6]; 5.0 [MQTT-3.8.4-8]. The retained QoS is stored with the message
    // (3.1.1 [MQTT-3.3.1-5]).
    let levels = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut publ = broker.client(v, "pub");
        for (i, &q) in levels.iter().enumerate() {
            send_publish(
                &mut publ,
                retained(&format!("rq/{i}"), b"x", q, 1 + i as u16),
            );
        }
        for &granted in &levels {
            let mut s = broker.client(v, &format!("g{granted}"));
            s.subscribe("rq/+", granted);
            let mut got: Vec<(String, QoS)> = collect(&mut s, 3)
                .into_iter()
                .map(|m| {
                    assert!(m.retain);
                    (m.topic.as_str().to_owned(), m.qos)
                })
                .collect();
            got.sort();
            let expected: Vec<(String, QoS)> = levels
                .iter()
                .enumerate()
                .map(|(i, &q)| (format!("rq/{i}"), q.min(granted)))
                .collect();
            assert_eq!(got, expected, "{v}: granted {granted}");
            s.expect_silence(Duration::from_millis(100));
        }
    }
}

#[test]
fn expired_retained_message_is_not_sent() {
    // 5.0 section 3.3.1.3: "If the current retained message for a Topic expires, it is
    // discarded and there will be no retained message for that topic"; [MQTT-3.3.2-6] the
    // interval sent is what is left of it.
    let broker = TestBroker::start();
    let mut publ = broker.client(V5, "pub");
    let mut short = retained("re/short", b"s", QoS::AtLeastOnce, 1);
    short.properties.message_expiry_interval = Some(1);
    send_publish(&mut publ, short);
    let mut long = retained("re/long", b"l", QoS::AtLeastOnce, 2);
    long.properties.message_expiry_interval = Some(100);
    send_publish(&mut publ, long);
    store_sentinel(&mut publ);

    let retained_now = |name: &str, v: ProtocolVersion| -> Vec<(String, Option<u32>)> {
        let mut s = broker.client(v, name);
        subscribe_with(
            &mut s,
            1,
            &[
                ("re/+", qos(QoS::AtLeastOnce)),
                (SENTINEL, qos(QoS::AtMostOnce)),
            ],
        );
        let mut got: Vec<(String, Option<u32>)> = until_sentinel(&mut s)
            .into_iter()
            .map(|m| {
                (
                    m.topic.as_str().to_owned(),
                    m.properties.message_expiry_interval,
                )
            })
            .collect();
        got.sort();
        got
    };
    let before = retained_now("before", V5);
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(before[0].0, "re/long");
    assert!(matches!(before[0].1, Some(1..=100)), "{before:?}");
    assert_eq!(before[1], ("re/short".to_owned(), Some(1)));

    std::thread::sleep(Duration::from_millis(1500));
    for v in VERSIONS {
        let after = retained_now(&format!("after{v}"), v);
        assert_eq!(after.len(), 1, "{v}: only the unexpired one: {after:?}");
        assert_eq!(after[0].0, "re/long");
        if v.is_v5() {
            assert!(
                matches!(after[0].1, Some(1..=99)),
                "{v}: the interval counts down: {after:?}"
            );
        } else {
            assert_eq!(after[0].1, None, "3.1.1 has no properties");
        }
    }
    // Nothing else arrives for a subscriber that asked late.
    let mut s = broker.client(V5, "quiet");
    s.subscribe("re/short", QoS::AtLeastOnce);
    s.expect_silence(QUIET);
}
