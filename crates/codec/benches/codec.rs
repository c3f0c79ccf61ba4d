//! Decoding and encoding throughput of the packets on the hot path: PUBLISH (64 B and 4 KiB
//! payloads, MQTT 3.1.1 and MQTT 5 with a few properties) and SUBSCRIBE.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use halyard_codec::{
    DecodeOptions, MqttString, Packet, PacketId, PayloadFormat, ProtocolVersion, Publish,
    PublishProperties, QoS, Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter,
    TopicName, decode,
};
use std::hint::black_box;
use std::num::NonZeroU32;

fn publish(payload_len: usize, v5: bool) -> Packet {
    let mut properties = PublishProperties::default();
    if v5 {
        properties.payload_format = Some(PayloadFormat::Utf8);
        properties.message_expiry_interval = Some(3600);
        properties.content_type = Some(MqttString::new("application/json").unwrap());
        properties.user_properties = vec![(
            MqttString::new("trace-id").unwrap(),
            MqttString::new("4bf92f3577b34da6").unwrap(),
        )];
    }
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TopicName::new("fleet/site-12/device-3481/telemetry").unwrap(),
        packet_id: PacketId::new(4711),
        properties,
        payload: Bytes::from(vec![0x5A; payload_len]),
    })
}

fn subscribe(v5: bool) -> Packet {
    let mut properties = SubscribeProperties::default();
    if v5 {
        properties.subscription_identifier = NonZeroU32::new(42);
    }
    let filters = [
        "fleet/+/+/telemetry",
        "fleet/site-12/#",
        "$share/workers/jobs/+",
    ]
    .iter()
    .map(|f| {
        (
            TopicFilter::new(f).unwrap(),
            SubscriptionOptions::with_qos(QoS::AtLeastOnce),
        )
    })
    .collect();
    Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(7).unwrap(),
        properties,
        filters,
    })
}

fn cases() -> Vec<(String, ProtocolVersion, Packet)> {
    let mut out = Vec::new();
    for (name, v, v5) in [
        ("3.1.1", ProtocolVersion::V3_1_1, false),
        ("5.0+props", ProtocolVersion::V5, true),
    ] {
        for len in [64, 4096] {
            out.push((format!("publish/{len}B/{name}"), v, publish(len, v5)));
        }
        out.push((format!("subscribe/3-filters/{name}"), v, subscribe(v5)));
    }
    out
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, v, packet) in cases() {
        let mut encoded = BytesMut::new();
        packet.encode(v, &mut encoded).unwrap();
        // A read buffer holding 64 copies, decoded until empty: the per-packet cost on a busy
        // connection, including splitting the packet off the buffer.
        let batch: Vec<u8> = encoded
            .iter()
            .copied()
            .cycle()
            .take(encoded.len() * 64)
            .collect();
        let opts = DecodeOptions::new(v);
        group.throughput(Throughput::Elements(64));
        group.bench_with_input(BenchmarkId::from_parameter(&name), &batch, |b, batch| {
            // Filling the read buffer is the socket's work, not the decoder's: it is set up
            // outside the timed part.
            b.iter_batched(
                || BytesMut::from(&batch[..]),
                |mut buf| {
                    while let Some(p) = decode(&mut buf, &opts).unwrap() {
                        black_box(p);
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, v, packet) in cases() {
        let mut buf = BytesMut::with_capacity(packet.encoded_len(v).unwrap() * 64);
        group.throughput(Throughput::Elements(64));
        group.bench_with_input(BenchmarkId::from_parameter(&name), &packet, |b, packet| {
            b.iter(|| {
                buf.clear();
                for _ in 0..64 {
                    packet.encode(v, &mut buf).unwrap();
                }
                black_box(&buf);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
