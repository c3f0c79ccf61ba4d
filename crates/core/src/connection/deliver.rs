//! Outbound messages: draining the session queue into the transmit buffer within the
//! client's Receive Maximum, building each PUBLISH for this client (QoS, RETAIN, remaining
//! expiry, Subscription Identifiers, topic alias), and the acknowledgements the client sends
//! for them.

use super::{Close, Connection, TX_HIGH_WATER};
use crate::session::{Delivery, Inflight, Stage};
use crate::stats::Stats;
use halyard_codec::{Ack, Packet, PacketId, Publish, QoS, TopicName};
use std::collections::HashMap;
use std::time::Instant;

impl Connection {
    /// Moves queued messages into the transmit buffer while the client's window and the
    /// buffer allow, after checking whether the connection was asked to close.
    pub fn poll_deliveries(&mut self, now: Instant) -> Result<(), Close> {
        self.check_kick(now)?;
        let (Some(session), Some(peer)) = (self.session.clone(), self.peer.as_ref()) else {
            return Ok(());
        };
        let window = peer.send_window;
        let broker = self.broker.clone();
        let stats = broker.stats();
        session.clear_wake();
        let mut sent = 0u64;
        let mut guard = session.lock();
        self.tx_full = false;
        if guard.traffic_if_any().is_none() {
            // Nothing queued, nothing in flight.
            return Ok(());
        }
        let st = guard.traffic();
        let queued_before = st.queue.len();
        // First what an earlier connection sent and this one has not yet resent, in order.
        let mut on_wire = st.inflight.on_wire();
        let mut i = 0;
        while st.inflight.resend_pending() > 0
            && let Some(entry) = st.inflight.get(i)
        {
            if !entry.resend {
                i += 1;
                continue;
            }
            if on_wire >= window || self.tx.len() >= TX_HIGH_WATER {
                self.tx_full = self.tx.len() >= TX_HIGH_WATER;
                return Ok(());
            }
            let sent = match entry.stage {
                Stage::Released => self.send(&Packet::PubRel(Ack::new(entry.packet_id))),
                Stage::Published => {
                    self.send_publish(&entry.delivery, Some(entry.packet_id), true, now)
                }
            };
            if !sent {
                // Too large for the client's new Maximum Packet Size: dropped as if
                // delivered [MQTT-3.1.2-25].
                st.inflight.remove(i);
                Stats::add(&stats.dropped_too_large, 1);
                continue;
            }
            st.inflight.mark_resent(i);
            on_wire += 1;
            i += 1;
        }
        loop {
            if self.tx.len() >= TX_HIGH_WATER {
                // Resumed through `wants_refill` once the shell has written some of it.
                self.tx_full = !st.queue.is_empty();
                break;
            }
            let Some(front) = st.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && st.inflight.len() >= window {
                break;
            }
            let Some(d) = st.pop_queued() else {
                break;
            };
            if d.msg.is_expired(now) {
                Stats::add(&stats.dropped_expired, 1);
                continue;
            }
            let packet_id = if d.qos == QoS::AtMostOnce {
                None
            } else {
                st.allocate_packet_id()
            };
            if !self.send_publish(&d, packet_id, false, now) {
                // Larger than the client accepts: it is dropped as if delivered
                // [MQTT-3.1.2-25].
                Stats::add(&stats.dropped_too_large, 1);
                continue;
            }
            sent += 1;
            if let Some(packet_id) = packet_id {
                st.inflight.push(Inflight {
                    packet_id,
                    delivery: d,
                    stage: Stage::Published,
                    resend: false,
                });
            }
        }
        let popped = st.queue.len() < queued_before;
        if popped && st.queue.len() <= broker.config().max_queued_messages / 2 {
            st.full_since = None;
        }
        if popped {
            guard.last_drain = Some(now);
        }
        drop(guard);
        if popped {
            session.wake_space_waiters();
        }
        Stats::add(&stats.messages_sent, sent);
        Ok(())
    }

    /// Whether deliveries stopped because the transmit buffer was full and it now has room
    /// again: the shell then calls [`Connection::poll_deliveries`] after writing (nothing
    /// else would wake the connection for messages already queued).
    pub fn wants_refill(&self) -> bool {
        self.tx_full && self.tx.len() < TX_HIGH_WATER
    }

    /// Sends a delivery as this client is to receive it; returns false (and changes nothing)
    /// if it is larger than the client accepts.
    pub(super) fn send_publish(
        &mut self,
        d: &Delivery,
        packet_id: Option<PacketId>,
        dup: bool,
        now: Instant,
    ) -> bool {
        let (publish, new_alias) = self.build_publish(d, packet_id, dup, now);
        if !self.send(&Packet::Publish(publish)) {
            return false;
        }
        // Only a topic alias the client has actually received may be used alone later.
        if let Some(alias) = new_alias {
            let aliases = self.aliases.get_or_insert_default();
            aliases.outbound_bytes += d.msg.topic.len();
            aliases.outbound.insert(d.msg.topic.compact(), alias);
        }
        true
    }

    /// The PUBLISH for a delivery, and the new topic alias it establishes, if any.
    fn build_publish(
        &self,
        d: &Delivery,
        packet_id: Option<PacketId>,
        dup: bool,
        now: Instant,
    ) -> (Publish, Option<u16>) {
        let v5 = self.peer.as_ref().is_some_and(|p| p.version.is_v5());
        let mut properties = if v5 {
            d.msg.delivery_properties()
        } else {
            Default::default()
        };
        let mut topic = d.msg.topic.clone();
        let mut new_alias = None;
        if v5 {
            // [MQTT-3.3.2-6] The expiry sent is what is left of it.
            properties.message_expiry_interval = d.msg.remaining_expiry_secs(now);
            properties.subscription_identifiers = d.sub_ids.clone();
            if let Some((alias, known)) = self.alias_for(&topic) {
                properties.topic_alias = std::num::NonZeroU16::new(alias);
                if known {
                    topic = TopicName::empty_for_alias();
                } else {
                    new_alias = Some(alias);
                }
            }
        }
        let publish = Publish {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id,
            properties,
            payload: d.msg.payload.clone(),
        };
        (publish, new_alias)
    }

    /// The outbound alias for `topic` and whether the client already knows it; a new one
    /// while the client's Topic Alias Maximum allows.
    fn alias_for(&self, topic: &TopicName) -> Option<(u16, bool)> {
        let max = self.peer.as_ref()?.alias_max_out;
        if max == 0 {
            return None;
        }
        let known = self.aliases.as_ref().map(|a| &a.outbound);
        if let Some(&a) = known.and_then(|o| o.get(topic)) {
            return Some((a, true));
        }
        let next = u16::try_from(known.map_or(0, HashMap::len) + 1).ok()?;
        if next > max {
            return None;
        }
        // Within the byte budget of the alias table, or the topic goes out in full.
        let bytes = self.aliases.as_ref().map_or(0, |a| a.outbound_bytes);
        if bytes + topic.len() > self.broker.config().max_topic_alias_bytes {
            return None;
        }
        Some((next, false))
    }

    /// PUBACK: the QoS 1 flow is complete.
    pub(super) fn handle_puback(&mut self, now: Instant, a: Ack) -> Result<(), Close> {
        self.complete(a.packet_id, Stage::Published, QoS::AtLeastOnce);
        self.poll_deliveries(now)
    }

    /// PUBREC: answer PUBREL, or end the flow if the client refused the message.
    pub(super) fn handle_pubrec(&mut self, now: Instant, a: Ack) -> Result<(), Close> {
        let Some(session) = self.session.clone() else {
            return Ok(());
        };
        let found = {
            let mut guard = session.lock();
            // Nothing in flight at all: the identifier is not found.
            guard.traffic_mut_if_any().is_some_and(|st| {
                let pos = st.inflight.iter().position(|i| {
                    i.packet_id == a.packet_id
                        && i.delivery.qos == QoS::ExactlyOnce
                        && i.stage == Stage::Published
                });
                match pos {
                    Some(p) if a.reason_code.is_error() => {
                        st.inflight.remove(p);
                        false
                    }
                    Some(p) => {
                        st.inflight.set_stage(p, Stage::Released);
                        true
                    }
                    None => st
                        .inflight
                        .iter()
                        .any(|i| i.packet_id == a.packet_id && i.stage == Stage::Released),
                }
            })
        };
        if found {
            self.send(&Packet::PubRel(Ack::new(a.packet_id)));
        } else if !a.reason_code.is_error() {
            let mut rel = Ack::new(a.packet_id);
            rel.reason_code = halyard_codec::ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
            self.send(&Packet::PubRel(rel));
        }
        self.poll_deliveries(now)
    }

    /// PUBCOMP: the QoS 2 flow is complete.
    pub(super) fn handle_pubcomp(&mut self, now: Instant, a: Ack) -> Result<(), Close> {
        self.complete(a.packet_id, Stage::Released, QoS::ExactlyOnce);
        self.poll_deliveries(now)
    }

    fn complete(&mut self, id: PacketId, stage: Stage, qos: QoS) {
        if let Some(session) = &self.session {
            let mut guard = session.lock();
            let Some(st) = guard.traffic_mut_if_any() else {
                return;
            };
            let pos = st
                .inflight
                .position(|i| i.packet_id == id && i.stage == stage && i.delivery.qos == qos);
            if let Some(p) = pos {
                st.inflight.remove(p);
            }
        }
    }
}
