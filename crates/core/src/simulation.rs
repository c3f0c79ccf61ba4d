//! A deterministic simulation of several clients against one broker, driven by a byte
//! string: the broker fuzz target (`fuzz/fuzz_targets/broker.rs`) and the property test
//! below feed it arbitrary input. Each input byte picks a step (a packet from a client,
//! garbage bytes, time passing, a connection lost, the client reading what it was sent), the
//! following bytes its parameters. After every step the broker's and each connection's
//! invariants are checked, and every byte the broker sent must decode.
//!
//! The broker runs with small limits so that a short input reaches them. Time is simulated:
//! it only moves when the input says so. Not for production use: it exists for testing,
//! and reports a broken invariant by panicking (as a fuzz target must).
#![allow(clippy::panic, clippy::indexing_slicing)]

use crate::acl::Acl;
use crate::auth::AuthHooks;
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::connection::Connection;
use bytes::{Bytes, BytesMut};
use halyard_codec::{
    Ack, Connect, ConnectProperties, DecodeOptions, Disconnect, MqttString, Packet,
    ProtocolVersion, Publish, PublishProperties, QoS, ReasonCode, RetainHandling, Subscribe,
    SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, Unsubscribe,
    UnsubscribeProperties, Will, WillProperties, decode,
};
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;

/// The access rules of the simulated broker: anonymous clients, two users and a pattern,
/// with denials, over the topics the simulation uses.
const ACL: &str = "\
topic readwrite a/#
topic read r/#
topic deny a/b
user u1
topic readwrite #
topic deny r/2
user u2
topic write r/#
topic read b/#
pattern readwrite deep/%c/#
";

/// Small limits, so that short inputs reach them.
pub fn config() -> BrokerConfig {
    BrokerConfig {
        max_packet_size: 8192,
        max_connect_packet_size: 4096,
        receive_maximum: 4,
        topic_alias_maximum: 4,
        max_inflight: 4,
        max_queued_messages: 8,
        max_queued_bytes: 6000,
        max_topic_levels: 16,
        max_topic_length: 1024,
        max_user_properties: 4,
        max_topic_alias_bytes: 300,
        max_subscriptions_per_session: 3,
        max_subscription_bytes_per_session: 600,
        max_sessions: 3,
        max_retained_messages: 3,
        max_retained_bytes: 3000,
        memory_limit_bytes: 12_000,
        flapping_max_connects: 6,
        flapping_window_secs: 1,
        ..BrokerConfig::default()
    }
}

/// A cursor over the input: each read takes the next byte (0 once it is used up).
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        b
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        // Every caller passes a non-empty table.
        from[usize::from(self.byte()) % from.len()]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

const TOPICS: [&str; 8] = ["a", "a/b", "r/1", "r/2", "$SYS/x", "b/c/d", "r/3", "deep"];
const FILTERS: [&str; 8] = [
    "#",
    "a/+",
    "$share/g/a/#",
    "r/#",
    "+/+",
    "a/b",
    "deep",
    "$SYS/#",
];
const IDS: [&str; 5] = ["c0", "c1", "c2", "c3", "c4"];
const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

fn topic(name: &str) -> TopicName {
    let deep;
    let s = if name == "deep" {
        deep = vec!["d"; 40].join("/");
        deep.as_str()
    } else {
        name
    };
    TopicName::new(s).unwrap_or_else(|_| TopicName::empty_for_alias())
}

fn filter(name: &str) -> Option<TopicFilter> {
    if name == "deep" {
        return TopicFilter::new(&vec!["+"; 40].join("/")).ok();
    }
    TopicFilter::new(name).ok()
}

fn user_properties(n: u8) -> Vec<(MqttString, MqttString)> {
    (0..n % 8)
        .map(|_| (MqttString::default(), MqttString::default()))
        .collect()
}

/// One simulated client: its state machine and what its socket holds.
struct Client {
    conn: Connection,
    version: ProtocolVersion,
    /// Bytes sent by the client, not yet decoded by the broker.
    rx: BytesMut,
    open: bool,
}

/// Runs the simulation on `data`; panics when an invariant breaks. Returns the broker, to
/// look at its counters.
pub fn run(data: &[u8]) -> Arc<Broker> {
    let auth = AuthHooks {
        acl: Acl::parse(ACL).ok(),
        ..AuthHooks::default()
    };
    let broker = Broker::new(config(), auth);
    let mut now = Instant::now();
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|_| Client {
            conn: Connection::new(broker.clone(), now),
            version: ProtocolVersion::V5,
            rx: BytesMut::new(),
            open: true,
        })
        .collect();
    let mut input = Input { data };
    while !input.data.is_empty() {
        let which = usize::from(input.byte()) % CLIENTS;
        let op = input.byte() % 12;
        let Some(c) = clients.get_mut(which) else {
            continue;
        };
        match op {
            0 => {
                if c.open {
                    let _ = c.conn.handle_connection_lost(now);
                }
                *c = Client {
                    conn: Connection::new(broker.clone(), now),
                    version: ProtocolVersion::V5,
                    rx: BytesMut::new(),
                    open: true,
                };
            }
            1 => {
                let connect = connect_packet(&mut input);
                if c.conn.version().is_none() {
                    // The level the broker answers at (a second CONNECT changes nothing).
                    c.version = connect.protocol;
                }
                send(c, &Packet::from(connect), now);
            }
            2 => send(c, &Packet::Publish(publish_packet(&mut input)), now),
            3 => {
                let packet_id = NonZeroU16::new(u16::from(input.byte()) + 1)
                    .and_then(|n| halyard_codec::PacketId::new(n.get()));
                let f = filter(input.pick(&FILTERS));
                if let (Some(packet_id), Some(f)) = (packet_id, f) {
                    let options = SubscriptionOptions {
                        qos: input.pick(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]),
                        no_local: input.byte().is_multiple_of(2),
                        retain_as_published: input.byte().is_multiple_of(2),
                        retain_handling: input.pick(&[
                            RetainHandling::SendAtSubscribe,
                            RetainHandling::SendIfNew,
                            RetainHandling::DoNotSend,
                        ]),
                    };
                    let s = Subscribe {
                        packet_id,
                        properties: SubscribeProperties::default(),
                        filters: vec![(f, options)],
                    };
                    send(c, &Packet::Subscribe(s), now);
                }
            }
            4 => {
                let id = halyard_codec::PacketId::new(u16::from(input.byte()) + 1);
                if let (Some(packet_id), Some(f)) = (id, filter(input.pick(&FILTERS))) {
                    let u = Unsubscribe {
                        packet_id,
                        properties: UnsubscribeProperties::default(),
                        filters: vec![f],
                    };
                    send(c, &Packet::Unsubscribe(u), now);
                }
            }
            5 => {
                if let Some(id) = halyard_codec::PacketId::new(u16::from(input.byte() % 8) + 1) {
                    let ack = Ack::new(id);
                    let p = match input.byte() % 4 {
                        0 => Packet::PubAck(ack),
                        1 => Packet::PubRec(ack),
                        2 => Packet::PubRel(ack),
                        _ => Packet::PubComp(ack),
                    };
                    send(c, &p, now);
                }
            }
            6 => send(c, &Packet::PingReq, now),
            7 => {
                let rc = input.pick(&[
                    ReasonCode::SUCCESS,
                    ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
                ]);
                send(c, &Packet::Disconnect(Disconnect::new(rc)), now);
            }
            8 => {
                let n = usize::from(input.byte() % 16);
                let garbage = input.bytes(n);
                c.rx.extend_from_slice(&garbage);
                feed(c, now);
            }
            9 => {
                now += Duration::from_millis(u64::from(input.byte()) * 50);
                broker.tick(now);
                for c in clients.iter_mut().filter(|c| c.open) {
                    if c.conn.handle_timeout(now).is_err() {
                        c.open = false;
                    }
                }
            }
            10 => {
                if c.open {
                    let _ = c.conn.handle_connection_lost(now);
                    c.open = false;
                }
            }
            _ => {
                if c.open && c.conn.poll_deliveries(now).is_err() {
                    c.open = false;
                }
                read_sent(c);
            }
        }
        check(&broker, &clients);
    }
    for c in clients.iter_mut().filter(|c| c.open) {
        let _ = c.conn.handle_connection_lost(now);
    }
    now += Duration::from_secs(86_400 * 2);
    broker.tick(now);
    check(&broker, &clients);
    broker
}

fn check(broker: &Arc<Broker>, clients: &[Client]) {
    if let Err(e) = broker.check_invariants() {
        panic!("broker invariant broken: {e}");
    }
    for c in clients {
        if let Err(e) = c.conn.check_invariants() {
            panic!("connection invariant broken: {e}");
        }
    }
}

fn connect_packet(input: &mut Input<'_>) -> Connect {
    let protocol = input.pick(&VERSIONS);
    let v5 = protocol.is_v5();
    let will = (input.byte().is_multiple_of(3)).then(|| Will {
        topic: topic(input.pick(&TOPICS)),
        payload: {
            let n = usize::from(input.byte() % 4);
            Bytes::from(input.bytes(n))
        },
        qos: input.pick(&[QoS::AtMostOnce, QoS::AtLeastOnce]),
        retain: input.byte().is_multiple_of(2),
        properties: WillProperties {
            will_delay_interval: v5.then(|| u32::from(input.byte() % 3)),
            user_properties: if v5 {
                user_properties(input.byte())
            } else {
                Vec::new()
            },
            ..WillProperties::default()
        },
    });
    Connect {
        protocol,
        clean_start: input.byte().is_multiple_of(2),
        keep_alive_secs: u16::from(input.byte() % 4),
        properties: ConnectProperties {
            session_expiry_interval: v5.then(|| u32::from(input.byte() % 4)),
            topic_alias_maximum: v5.then(|| u16::from(input.byte() % 4)),
            ..ConnectProperties::default()
        },
        client_id: MqttString::new(input.pick(&IDS)).unwrap_or_default(),
        will,
        username: input
            .pick(&[None, Some("u1"), Some("u2")])
            .and_then(|u| MqttString::new(u).ok()),
        password: None,
    }
}

fn publish_packet(input: &mut Input<'_>) -> Publish {
    let qos = input.pick(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]);
    let alias = NonZeroU16::new(u16::from(input.byte() % 6));
    let topic = if alias.is_some() && input.byte().is_multiple_of(2) {
        TopicName::empty_for_alias()
    } else {
        topic(input.pick(&TOPICS))
    };
    let size = usize::from(input.byte()) * 8;
    Publish {
        dup: false,
        qos,
        retain: input.byte().is_multiple_of(2),
        topic,
        packet_id: (qos != QoS::AtMostOnce)
            .then(|| halyard_codec::PacketId::new(u16::from(input.byte() % 8) + 1))
            .flatten(),
        properties: PublishProperties {
            topic_alias: alias,
            message_expiry_interval: (input.byte().is_multiple_of(4)).then_some(1),
            user_properties: user_properties(input.byte()),
            ..PublishProperties::default()
        },
        payload: Bytes::from(vec![b'p'; size]),
    }
}

/// Encodes `p` as the client's bytes and lets the broker decode and handle them.
fn send(c: &mut Client, p: &Packet, now: Instant) {
    let version = match p {
        Packet::Connect(connect) => connect.protocol,
        _ => c.version,
    };
    // A packet the codec will not encode (its own rules) is simply not sent.
    if p.encode(version, &mut c.rx).is_ok() {
        feed(c, now);
    }
}

/// Decodes and handles whatever complete packets the client has sent.
fn feed(c: &mut Client, now: Instant) {
    while c.open {
        match decode(&mut c.rx, &c.conn.decode_options()) {
            Ok(Some(packet)) => {
                if c.conn.handle_packet(now, packet).is_err() {
                    c.open = false;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = c.conn.handle_decode_error(now, &e);
                c.open = false;
            }
        }
    }
    read_sent(c);
}

/// The client reads what the broker sent: every byte must decode at its level.
fn read_sent(c: &mut Client) {
    let tx = c.conn.tx();
    let mut sent = tx.split();
    let opts = DecodeOptions::new(c.version);
    while !sent.is_empty() {
        let before = sent.clone();
        match decode(&mut sent, &opts) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the broker sent a partial packet"),
            Err(e) => {
                // A refusal of a CONNECT whose level was not understood is written at 3.1.1.
                sent = before;
                let v311 = DecodeOptions::new(ProtocolVersion::V3_1_1);
                match decode(&mut sent, &v311) {
                    Ok(Some(Packet::ConnAck(_))) => {}
                    _ => panic!("the broker sent bytes that do not decode: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Stats;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Arbitrary step sequences keep every invariant (the fuzz target runs the same).
        #[test]
        fn arbitrary_steps_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            super::run(&data);
        }
    }

    #[test]
    fn a_scripted_run_reaches_the_limits() {
        // Connect four clients, subscribe, publish retained messages and let time pass.
        let mut data = Vec::new();
        for c in 0..4u8 {
            // CONNECT 5.0, no will, clean, as user u1 (pick 1).
            data.extend([c, 1, 2, 1, 0, 0, 0, 0, c, 1]);
            data.extend([c, 3, 1, 3, 1, 0, 0, 0]);
            // Retained QoS 1 messages to a, a/b, r/1 and b/c/d: one more than the budget.
            for t in [0u8, 1, 2, 5] {
                data.extend([c, 2, 1, 0, t, 40, 0, 1, 0, 3]);
            }
            data.extend([c, 11]);
        }
        data.extend([0, 9, 200]);
        let broker = super::run(&data);
        let stats = broker.stats();
        assert!(stats.limit_hits(crate::Limit::Sessions) >= 1);
        assert!(stats.limit_hits(crate::Limit::Retained) >= 1);
        assert!(Stats::get(&stats.messages_sent) > 0);
        // Every client gone and every session expired: nothing is held any more.
        assert_eq!(broker.session_count(), 0);
    }
}
