//! Limits over the wire: a subscriber that does not keep up slows nobody else, one that stays
//! over its queue limit is disconnected (0x97), and `limits.max_connections` refuses
//! connections beyond it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use bytes::BytesMut;
use halyard_codec::{
    Ack, DecodeOptions, Packet, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe,
    SubscribeProperties, SubscriptionOptions, TopicFilter, decode,
};
use harness::{Peer, TestBroker, V3_1_1, V5, WAIT, connect, pid, publish};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const VERSIONS: [ProtocolVersion; 2] = [V3_1_1, V5];

/// A raw client that can stop reading and later read whatever the broker sent, until the
/// broker goes quiet. It never reads on its own, so its socket buffers stay at their initial
/// size (the kernel grows them only for a reading application) and fill after a few hundred
/// kilobytes.
struct SlowPeer {
    stream: TcpStream,
    rx: BytesMut,
    version: ProtocolVersion,
}

impl SlowPeer {
    /// Connects, sends CONNECT for `client_id` and subscribes to `filter` at `qos`.
    fn connect(
        addr: SocketAddr,
        version: ProtocolVersion,
        client_id: &str,
        filter: &str,
        qos: QoS,
    ) -> SlowPeer {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut p = SlowPeer {
            stream,
            rx: BytesMut::new(),
            version,
        };
        p.send(connect(version, client_id).into());
        match p.recv_or_closed(WAIT) {
            Some(Packet::ConnAck(a)) => assert_eq!(a.reason_code, ReasonCode::SUCCESS),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        p.send(Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: SubscribeProperties::default(),
            filters: vec![(
                TopicFilter::new(filter).unwrap(),
                SubscriptionOptions::with_qos(qos),
            )],
        }));
        match p.recv_or_closed(WAIT) {
            Some(Packet::SubAck(a)) => assert_eq!(a.reason_codes, [ReasonCode(qos.as_u8())]),
            other => panic!("expected SUBACK, got {other:?}"),
        }
        p
    }

    fn send(&mut self, p: Packet) {
        let mut buf = BytesMut::new();
        p.encode(self.version, &mut buf).unwrap();
        self.stream.write_all(&buf).unwrap();
    }

    /// The next packet, or `None` once the broker closed the connection; panics if nothing
    /// arrives within `timeout`.
    fn recv_or_closed(&mut self, timeout: Duration) -> Option<Packet> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = decode(&mut self.rx, &DecodeOptions::new(self.version)).unwrap() {
                return Some(p);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no packet from the broker within {timeout:?}"
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("no packet from the broker within {timeout:?}")
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Reads everything the broker sends until it has been quiet for `quiet`.
    fn drain(&mut self, quiet: Duration) -> Vec<Packet> {
        let mut got = Vec::new();
        loop {
            if let Some(p) = decode(&mut self.rx, &DecodeOptions::new(self.version)).unwrap() {
                got.push(p);
                continue;
            }
            self.stream.set_read_timeout(Some(quiet)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return got;
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

/// A QoS 1 PUBLISH of `size` bytes of payload whose first eight bytes number it.
fn numbered(t: &str, n: u64, size: usize) -> Publish {
    let mut payload = vec![0u8; size];
    payload[..8].copy_from_slice(&n.to_be_bytes());
    publish(t, &payload, QoS::AtLeastOnce, 1 + (n % 65_000) as u16)
}

fn number(p: &Publish) -> u64 {
    u64::from_be_bytes(p.payload[..8].try_into().unwrap())
}

/// Sends a QoS 1 PUBLISH and returns its PUBACK's reason code.
fn publish_acked(p: &mut Peer, m: Publish) -> ReasonCode {
    let id = m.packet_id;
    p.send(m);
    match p.recv() {
        Packet::PubAck(a) if Some(a.packet_id) == id => a.reason_code,
        other => panic!("expected PUBACK for {id:?}, got {other:?}"),
    }
}

#[test]
fn a_subscriber_that_stops_reading_slows_neither_the_publisher_nor_other_subscribers() {
    // With the default limits the slow subscriber's queue holds 500 QoS 0 messages (half of
    // `max_queued_messages`), about 4 MB here; its socket holds a few hundred kilobytes more.
    const N: u64 = 1500;
    const SIZE: usize = 8 * 1024;
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut slow = SlowPeer::connect(broker.addr(), v, "slow", "flood", QoS::AtMostOnce);
        let mut fast = broker.client(v, "fast");
        fast.subscribe("flood", QoS::AtLeastOnce);
        let reader = std::thread::spawn(move || {
            let got: Vec<u64> = (0..N)
                .map(|_| {
                    let m = fast.recv_publish();
                    fast.send(Packet::PubAck(Ack::new(m.packet_id.unwrap())));
                    number(&m)
                })
                .collect();
            (fast, got)
        });

        let mut publ = broker.client(v, "pub");
        let start = Instant::now();
        for n in 0..N {
            // Each PUBACK arrives within the harness's deadline: the publisher is not held up.
            publish_acked(&mut publ, numbered("flood", n, SIZE));
        }
        let elapsed = start.elapsed();
        let (_fast, got) = reader.join().unwrap();
        assert_eq!(
            got,
            (0..N).collect::<Vec<_>>(),
            "{v}: the reading subscriber got all"
        );
        assert!(
            elapsed < Duration::from_secs(30),
            "{v}: publishing {N} messages took {elapsed:?}"
        );

        // The slow subscriber really was behind: what it can still read is a bounded, ordered
        // part of the stream.
        let late: Vec<u64> = slow
            .drain(Duration::from_millis(500))
            .iter()
            .map(|p| match p {
                Packet::Publish(m) => number(m),
                other => panic!("{v}: unexpected {other:?}"),
            })
            .collect();
        // Loopback socket buffers hold several megabytes, so how many still arrive depends on
        // the kernel; what must hold is that not everything was kept for it.
        assert!(
            late.len() < N as usize,
            "{v}: all {N} messages were held for a client that did not read"
        );
        let dropped = halyard_core::Stats::get(&broker.broker().stats().dropped_queue_full);
        assert!(
            dropped > 0,
            "{v}: the slow subscriber's queue overflowed and dropped"
        );
        assert!(late.windows(2).all(|w| w[0] < w[1]), "{v}: in order");
    }
}

#[test]
fn a_subscriber_that_falls_behind_gets_its_backlog_once_it_reads() {
    // Nothing is dropped here (the queue has room for all of it): the subscriber only reads
    // late, and then must get every message, in order ([MQTT-4.6.0-6]).
    const N: u64 = 120;
    for v in VERSIONS {
        let broker = TestBroker::start();
        let mut s = SlowPeer::connect(broker.addr(), v, "late", "backlog", QoS::AtMostOnce);
        let mut publ = broker.client(v, "pub");
        for n in 0..N {
            publish_acked(&mut publ, numbered("backlog", n, 8 * 1024));
        }
        let got: Vec<u64> = (0..N)
            .map(|_| match s.recv_or_closed(WAIT) {
                Some(Packet::Publish(m)) => number(&m),
                other => panic!("{v}: expected PUBLISH, got {other:?}"),
            })
            .collect();
        assert_eq!(got, (0..N).collect::<Vec<_>>(), "{v}");
    }
}

#[test]
fn a_v5_subscriber_that_stays_over_its_queue_limit_gets_0x97() {
    // Section 4.13 / Table 2-6: 0x97 Quota exceeded. The subscriber stops reading; once the
    // broker has dropped messages for it for `slow_consumer_timeout_secs`, it is disconnected.
    let broker = TestBroker::start_with(|cfg| {
        cfg.mqtt.max_queued_messages = 4;
        cfg.mqtt.slow_consumer_timeout_secs = 1;
    });
    let mut slow = SlowPeer::connect(broker.addr(), V5, "slow", "flood", QoS::AtMostOnce);
    let mut publ = broker.client(V5, "pub");
    let session = broker.broker().session("slow").unwrap();
    // Fill the subscriber's socket, the broker's transmit buffer and then its queue (two QoS
    // 0 messages, half of `max_queued_messages`). The queue is looked at only to know when to
    // stop: when it is still full after a pause, the connection cannot drain it any more.
    const SIZE: usize = 64 * 1024;
    let mut n = 0;
    loop {
        publish_acked(&mut publ, numbered("flood", n, SIZE));
        n += 1;
        if n % 4 == 0 {
            std::thread::sleep(Duration::from_millis(10));
            if session.queued_len() >= 2 {
                break;
            }
        }
        assert!(n < 5_000, "the subscriber's queue never stayed full");
    }
    // From now on messages are dropped for the slow subscriber...
    for _ in 0..2 {
        publish_acked(&mut publ, numbered("flood", n, SIZE));
        n += 1;
    }
    // ... for longer than the timeout, and one more drop disconnects it.
    std::thread::sleep(Duration::from_millis(1200));
    publish_acked(&mut publ, numbered("flood", n, SIZE));
    n += 1;

    let mut got = Vec::new();
    while let Some(p) = slow.recv_or_closed(WAIT) {
        got.push(p);
    }
    let (last, before) = got.split_last().expect("packets before the close");
    assert!(
        matches!(last, Packet::Disconnect(d) if d.reason_code == ReasonCode::QUOTA_EXCEEDED),
        "expected DISCONNECT 0x97 last, got {last:?}"
    );
    assert!(before.iter().all(|p| matches!(p, Packet::Publish(_))));
    assert!(before.len() < n as usize, "some messages were dropped");
    // The publisher was not affected.
    assert_eq!(
        publish_acked(&mut publ, numbered("other", 0, 8)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
}

#[test]
fn a_subscriber_that_stays_over_its_queue_limit_is_disconnected() {
    // The same rule for a subscriber that reads but never acknowledges: with
    // `max_inflight = 1` one message is in flight and the rest wait in its queue. 5.0 gets
    // DISCONNECT 0x97 first; 3.1.1 has no server DISCONNECT.
    for v in VERSIONS {
        let broker = TestBroker::start_with(|cfg| {
            cfg.mqtt.max_inflight = 1;
            cfg.mqtt.max_queued_messages = 3;
            cfg.mqtt.slow_consumer_timeout_secs = 1;
        });
        let mut s = broker.client(v, "s");
        s.subscribe("k", QoS::AtLeastOnce);
        let mut publ = broker.client(v, "pub");
        publish_acked(&mut publ, numbered("k", 0, 16));
        assert_eq!(
            number(&s.recv_publish()),
            0,
            "{v}: in flight, never acknowledged"
        );
        for n in 1..5 {
            // Three queued, then the first drop.
            publish_acked(&mut publ, numbered("k", n, 16));
        }
        s.expect_silence(Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(1000));
        publish_acked(&mut publ, numbered("k", 5, 16));
        s.expect_disconnect(ReasonCode::QUOTA_EXCEEDED);
        // Others carry on.
        let mut other = broker.client(v, "other");
        other.subscribe("k", QoS::AtLeastOnce);
        publish_acked(&mut publ, numbered("k", 6, 16));
        assert_eq!(number(&other.recv_publish()), 6, "{v}");
    }
}

#[test]
fn a_subscriber_briefly_over_its_limit_is_not_disconnected() {
    // The rule needs the queue to stay full for the whole timeout: a subscriber that catches
    // up in time keeps its connection.
    let broker = TestBroker::start_with(|cfg| {
        cfg.mqtt.max_inflight = 1;
        cfg.mqtt.max_queued_messages = 2;
        cfg.mqtt.slow_consumer_timeout_secs = 1;
    });
    let mut s = broker.client(V5, "s");
    s.subscribe("k", QoS::AtLeastOnce);
    let mut publ = broker.client(V5, "pub");
    publish_acked(&mut publ, numbered("k", 0, 16));
    let first = s.recv_publish();
    for n in 1..4 {
        // Two queued behind the one in flight, then a drop.
        publish_acked(&mut publ, numbered("k", n, 16));
    }
    // Catch up: acknowledge everything that arrives.
    s.send(Packet::PubAck(Ack::new(first.packet_id.unwrap())));
    for n in 1..3 {
        let m = s.recv_publish();
        assert_eq!(number(&m), n);
        s.send(Packet::PubAck(Ack::new(m.packet_id.unwrap())));
    }
    std::thread::sleep(Duration::from_millis(1200));
    publish_acked(&mut publ, numbered("k", 9, 16));
    let m = s.recv_publish();
    assert_eq!(number(&m), 9, "still connected and served");
    s.send(Packet::PubAck(Ack::new(m.packet_id.unwrap())));
    s.expect_silence(Duration::from_millis(200));
}

#[test]
fn a_message_dropped_for_a_full_queue_is_not_reported_as_no_matching_subscribers() {
    // Table 3-4 (section 3.4.2.1): 0x10 means "The message is accepted but there are no
    // subscribers"; here there is one.
    let broker = TestBroker::start_with(|cfg| {
        cfg.mqtt.max_inflight = 1;
        cfg.mqtt.max_queued_messages = 1;
    });
    let mut s = broker.client(V5, "s");
    s.subscribe("full", QoS::AtLeastOnce);
    let mut publ = broker.client(V5, "pub");
    assert_eq!(
        publish_acked(&mut publ, numbered("full", 0, 16)),
        ReasonCode::SUCCESS
    );
    assert_eq!(
        number(&s.recv_publish()),
        0,
        "in flight, never acknowledged"
    );
    assert_eq!(
        publish_acked(&mut publ, numbered("full", 1, 16)),
        ReasonCode::SUCCESS
    );
    let rc = publish_acked(&mut publ, numbered("full", 2, 16));
    assert_ne!(
        rc,
        ReasonCode::NO_MATCHING_SUBSCRIBERS,
        "there is a matching subscriber"
    );
}

#[test]
fn max_connections_refuses_a_third_connection_while_two_are_open() {
    let broker = TestBroker::start_with(|cfg| cfg.limits.max_connections = 2);
    let mut a = broker.client(V5, "a");
    let b = broker.client(V3_1_1, "b");
    for v in VERSIONS {
        let mut c = broker.peer(v);
        c.send(connect(v, "c"));
        assert_eq!(
            c.recv_or_closed(WAIT),
            None,
            "{v}: closed without CONNACK while two connections are open"
        );
    }
    // The two open ones are unaffected.
    a.send(Packet::PingReq);
    assert_eq!(a.recv(), Packet::PingResp);
    // Once one closes, a new connection is accepted (the slot frees when the broker has
    // finished with the old socket).
    b.disconnect();
    let deadline = Instant::now() + Duration::from_secs(3);
    let _d = loop {
        let mut d = broker.peer(V5);
        d.send(connect(V5, "d"));
        match d.recv_or_closed(WAIT) {
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
                break d;
            }
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("a slot should have freed, got {other:?}"),
        }
    };
    // And with two open again, the next is refused.
    let mut e = broker.peer(V5);
    e.send(connect(V5, "e"));
    assert_eq!(e.recv_or_closed(WAIT), None);
}

/// Back-pressure: a subscriber that reads steadily, if slower than the publisher, loses
/// nothing; the publisher is held up instead (its PUBACKs come as the subscriber makes room).
#[test]
fn a_slow_but_reading_subscriber_loses_nothing_the_publisher_waits() {
    const N: u64 = 300;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let broker = TestBroker::start_with(|cfg| cfg.mqtt.max_queued_messages = 8);
        let mut sub = broker.client(V5, "steady");
        sub.subscribe("steady", QoS::AtLeastOnce);
        let reader = std::thread::spawn(move || {
            let got: Vec<u64> = (0..N)
                .map(|i| {
                    let m = match sub.recv_or_closed(Duration::from_secs(3)) {
                        Some(Packet::Publish(m)) => m,
                        other => panic!("{qos:?}: message {i}: {other:?}"),
                    };
                    if let Some(id) = m.packet_id {
                        sub.send(Packet::PubAck(Ack::new(id)));
                    }
                    // Slower than the publisher: a little pause now and then.
                    if number(&m).is_multiple_of(20) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    number(&m)
                })
                .collect();
            got
        });
        let mut publ = broker.client(V5, "fast");
        for n in 0..N {
            let mut m = numbered("steady", n, 1024);
            m.qos = qos;
            m.packet_id = (qos != QoS::AtMostOnce).then(|| pid(1 + (n % 1000) as u16));
            if qos == QoS::AtMostOnce {
                publ.send(Packet::Publish(m));
            } else {
                publish_acked(&mut publ, m);
            }
        }
        let got = reader.join().unwrap();
        assert_eq!(
            got,
            (0..N).collect::<Vec<_>>(),
            "{qos:?}: every message, in order"
        );
        let dropped = halyard_core::Stats::get(&broker.broker().stats().dropped_queue_full);
        assert_eq!(dropped, 0, "{qos:?}: nothing dropped");
    }
}
