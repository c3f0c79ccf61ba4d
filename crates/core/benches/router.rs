//! Routing cost of one PUBLISH through the subscription trie, with 1k and 100k
//! subscriptions, exact and with wildcards. Each subscriber's session is persistent and
//! offline, so a QoS 0 message is matched and then skipped: what is measured is the lookup,
//! not queueing.
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
    Packet, PacketId, PublishProperties, QoS, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, TopicName,
};
use halyard_core::{AuthHooks, Broker, BrokerConfig, Message};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// A broker with `n` offline persistent sessions, session `i` subscribed to
/// `site/{i}/dev/temp`, or `site/{i}/+/temp` with `wildcard`.
fn broker_with(n: usize, wildcard: bool) -> Arc<Broker> {
    let broker = Broker::new(BrokerConfig::default(), AuthHooks::default());
    let now = Instant::now();
    for i in 0..n {
        let mut conn = common::connected(&broker, &format!("c{i}"), false, now);
        let filter = if wildcard {
            format!("site/{i}/+/temp")
        } else {
            format!("site/{i}/dev/temp")
        };
        let subscribe = Subscribe {
            packet_id: PacketId::new(1).unwrap(),
            properties: SubscribeProperties::default(),
            filters: vec![(
                TopicFilter::new(&filter).unwrap(),
                SubscriptionOptions::with_qos(QoS::AtMostOnce),
            )],
        };
        conn.handle_packet(now, Packet::from(subscribe)).unwrap();
        // Offline from here on; the persistent session and its subscription stay.
        let _ = conn.handle_connection_lost(now);
    }
    assert_eq!(broker.subscription_count(), n);
    broker
}

fn bench_route(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));
    for n in [1_000usize, 100_000] {
        for wildcard in [false, true] {
            let broker = broker_with(n, wildcard);
            let topics: Vec<TopicName> = (0..1024)
                .map(|k| TopicName::new(&format!("site/{}/dev/temp", (k * 7919) % n)).unwrap())
                .collect();
            let name = format!("{n}-subs/{}", if wildcard { "wildcard" } else { "exact" });
            let mut k = 0;
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    k = (k + 1) % topics.len();
                    let msg = Message {
                        topic: topics[k].clone(),
                        payload: Bytes::from_static(b"21.5"),
                        qos: QoS::AtMostOnce,
                        retain: false,
                        properties: PublishProperties::default(),
                        expires_at: None,
                        origin: None,
                        packed_user_properties: bytes::Bytes::new(),
                        held: halyard_core::Held::none(),
                    };
                    black_box(broker.publish(msg, Instant::now()))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_route);
criterion_main!(benches);
