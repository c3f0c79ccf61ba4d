//! The first transcripts: connect, subscribe, publish at each QoS, on 3.1.1 and 5.0.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use halyard_codec::{Packet, QoS, ReasonCode};
use harness::*;

#[test]
fn publish_reaches_subscriber_at_each_qos() {
    for v in [V3_1_1, V5] {
        let broker = TestBroker::start();
        let mut sub = broker.client(v, "sub");
        sub.subscribe("a/+", QoS::ExactlyOnce);
        let mut publ = broker.client(v, "pub");
        publ.send(publish("a/b", b"zero", QoS::AtMostOnce, 0));
        assert_eq!(sub.recv_publish().payload, &b"zero"[..]);

        publ.send(publish("a/b", b"one", QoS::AtLeastOnce, 7));
        assert!(matches!(publ.recv(), Packet::PubAck(a) if a.packet_id == pid(7)));
        let p = sub.recv_publish();
        assert_eq!((p.qos, &p.payload[..]), (QoS::AtLeastOnce, &b"one"[..]));
        sub.send(Packet::PubAck(ack(p.packet_id.unwrap().get())));

        publ.send(publish("a/b", b"two", QoS::ExactlyOnce, 8));
        assert!(matches!(publ.recv(), Packet::PubRec(a) if a.packet_id == pid(8)));
        publ.send(Packet::PubRel(ack(8)));
        assert!(matches!(publ.recv(), Packet::PubComp(a) if a.packet_id == pid(8)));
        let p = sub.recv_publish();
        assert_eq!((p.qos, &p.payload[..]), (QoS::ExactlyOnce, &b"two"[..]));
        let id = p.packet_id.unwrap().get();
        sub.send(Packet::PubRec(ack(id)));
        assert!(matches!(sub.recv(), Packet::PubRel(a) if a.packet_id == pid(id)));
        sub.send(Packet::PubComp(ack(id)));
        sub.disconnect();
        publ.disconnect();
    }
}

#[test]
fn malformed_packet_closes_only_that_connection() {
    let broker = TestBroker::start();
    let mut good = broker.client(V5, "good");
    good.subscribe("t", QoS::AtMostOnce);
    let mut bad = broker.client(V5, "bad");
    // PUBLISH with QoS 3 [MQTT-3.3.1-4].
    bad.send_raw(&[0x36, 0x03, 0x00, 0x01, b't']);
    bad.expect_disconnect(ReasonCode::MALFORMED_PACKET);
    let mut other = broker.client(V5, "other");
    other.send(publish("t", b"still here", QoS::AtMostOnce, 0));
    assert_eq!(good.recv_publish().payload, &b"still here"[..]);
}
