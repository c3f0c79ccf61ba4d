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
use halyard_core::{AuthHooks, Broker, BrokerConfig, Connection};
use std::time::Instant;

/// A publisher and `n` subscribers to `bench/t` at `qos`, all connected.
fn setup(n: usize, qos: QoS) -> (Connection, Vec<Connection>) {
    let broker = Broker::new(BrokerConfig::default(), AuthHooks::default());
    let now = Instant::now();
    let publisher = common::connected(&broker, "pub", true, now);
    let subscribers = (0..n)
        .map(|i| {
            let mut s = common::connected(&broker, &format!("sub{i}"), true, now);
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
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        for n in [1usize, 100] {
            let (mut publisher, mut subscribers) = setup(n, qos);
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
            let name = format!("qos{}/{n}-subscribers", qos.as_u8());
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
