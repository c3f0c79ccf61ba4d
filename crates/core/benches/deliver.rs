//! Cost of the delivery path, without I/O: a client's PUBLISH handled by its connection,
//! routed through the trie into subscribers' session queues, taken out by each subscriber's
//! connection and encoded into its transmit buffer (which is then cleared, as the network
//! shell would after writing it). At QoS 1 the subscriber's PUBACK and the publisher's are
//! part of the path too. Measured per delivery, for 1 and for 100 subscribers.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod common;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use halyard_codec::{
    Ack, Packet, PacketId, Publish, QoS, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, TopicName,
};
use halyard_core::{Acl, AuthHooks, Broker, BrokerConfig, Connection};
use std::time::Instant;

/// An ACL of 1,000 users with 10 rules each (the security issue's case), plus two
/// patterns; user `u{i}` may write `bench/t` and read it, among rules for other topics.
fn big_acl() -> Acl {
    let mut text = String::from("pattern read devices/%c/#\npattern write devices/%c/state\n");
    for u in 0..1000 {
        text.push_str(&format!("user u{u}\n"));
        for r in 0..8 {
            text.push_str(&format!("topic readwrite site/{u}/area/{r}/#\n"));
        }
        text.push_str("topic deny bench/secret\ntopic readwrite bench/#\n");
    }
    Acl::parse(&text).unwrap()
}

/// A publisher and `n` subscribers to `bench/t` at `qos`, all connected; with `acl`, under
/// [`big_acl`], each as a user of its own.
fn setup(n: usize, qos: QoS, acl: bool) -> (Connection, Vec<Connection>) {
    let auth = AuthHooks {
        acl: acl.then(big_acl),
        ..AuthHooks::default()
    };
    let broker = Broker::new(BrokerConfig::default(), auth);
    let now = Instant::now();
    let user = |i: usize| acl.then(|| format!("u{}", i % 1000));
    let publisher = common::connected_as(&broker, "pub", user(999).as_deref(), true, now);
    let subscribers = (0..n)
        .map(|i| {
            let id = format!("sub{i}");
            let mut s = common::connected_as(&broker, &id, user(i).as_deref(), true, now);
            let subscribe = Subscribe {
                packet_id: PacketId::new(1).unwrap(),
                properties: SubscribeProperties::default(),
                filters: vec![(
                    TopicFilter::new("bench/t").unwrap(),
                    SubscriptionOptions::with_qos(qos),
                )],
            };
            s.handle_packet(now, Packet::from(subscribe)).unwrap();
            s.tx().clear();
            s
        })
        .collect();
    (publisher, subscribers)
}

fn bench_deliver(c: &mut Criterion) {
    let mut group = c.benchmark_group("deliver");
    for (qos, n, acl) in [
        (QoS::AtMostOnce, 1, false),
        (QoS::AtMostOnce, 100, false),
        (QoS::AtLeastOnce, 1, false),
        (QoS::AtLeastOnce, 100, false),
        (QoS::AtMostOnce, 1, true),
        (QoS::AtMostOnce, 100, true),
    ] {
        {
            let (mut publisher, mut subscribers) = setup(n, qos, acl);
            let mut publish = Publish::new(
                TopicName::new("bench/t").unwrap(),
                Bytes::from_static(&[0x5a; 64]),
            );
            publish.qos = qos;
            // Packet identifiers in use: the publisher's, and (one at a time per subscriber,
            // so the broker's allocation is sequential) each subscriber's.
            let mut pub_id: u16 = 0;
            let mut sub_id: u16 = 0;
            group.throughput(Throughput::Elements(n as u64));
            let acl_name = if acl { "-acl-1000x10" } else { "" };
            let name = format!("qos{}/{n}-subscribers{acl_name}", qos.as_u8());
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    let now = Instant::now();
                    let mut p = publish.clone();
                    if qos != QoS::AtMostOnce {
                        pub_id = pub_id.checked_add(1).unwrap_or(1);
                        p.packet_id = PacketId::new(pub_id);
                    }
                    publisher.handle_packet(now, Packet::Publish(p)).unwrap();
                    publisher.tx().clear();
                    if qos != QoS::AtMostOnce {
                        sub_id = sub_id.checked_add(1).unwrap_or(1);
                    }
                    for s in &mut subscribers {
                        s.poll_deliveries(now).unwrap();
                        assert!(!s.tx().is_empty());
                        s.tx().clear();
                        if qos != QoS::AtMostOnce {
                            let ack = Ack::new(PacketId::new(sub_id).unwrap());
                            s.handle_packet(now, Packet::PubAck(ack)).unwrap();
                        }
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_deliver);
criterion_main!(benches);
