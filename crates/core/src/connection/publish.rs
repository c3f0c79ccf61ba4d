//! Inbound PUBLISH and the acknowledgements the broker owes for it: topic aliases, the
//! access rule for `$` topics, QoS 1 (PUBACK) and QoS 2 (PUBREC, PUBREL, PUBCOMP) with
//! exactly-once delivery, and the broker's Receive Maximum.

use super::{Close, Connection};
use crate::broker::Routed;
use crate::message::{Held, Message};
use crate::policy;
use crate::stats::Stats;
use halyard_codec::{Ack, Packet, Publish, QoS, ReasonCode};
use std::time::Instant;

impl Connection {
    pub(super) fn handle_publish(&mut self, now: Instant, mut p: Publish) -> Result<(), Close> {
        let broker = self.broker.clone();
        let cfg = broker.config();
        let v5 = self.peer.as_ref().is_some_and(|peer| peer.version.is_v5());
        let stats = broker.stats();
        Stats::add(&stats.messages_received, 1);
        if v5 && !p.properties.subscription_identifiers.is_empty() {
            return Err(self.violation(
                now,
                ReasonCode::PROTOCOL_ERROR,
                "Subscription Identifier in a PUBLISH from a client [MQTT-3.3.4-6]".into(),
            ));
        }
        if p.retain && !cfg.retain_available {
            return Err(self.violation(
                now,
                ReasonCode::RETAIN_NOT_SUPPORTED,
                "RETAIN set while Retain Available is 0 (section 3.3.1.3)".into(),
            ));
        }
        if let Some(alias) = p.properties.topic_alias.take() {
            let alias = alias.get();
            if alias > cfg.topic_alias_maximum {
                return Err(self.violation(
                    now,
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    format!("Topic Alias {alias} above the maximum [MQTT-3.3.2-9]"),
                ));
            }
            if p.topic.is_empty() {
                match self.aliases.as_ref().and_then(|a| a.inbound.get(&alias)) {
                    Some(t) => p.topic = t.clone(),
                    None => {
                        return Err(self.violation(
                            now,
                            ReasonCode::PROTOCOL_ERROR,
                            format!("unknown Topic Alias {alias} with an empty topic"),
                        ));
                    }
                }
            } else if policy::within_topic_limits(cfg, &p.topic) {
                // Only a topic within the limits is kept for an alias; one beyond them is
                // refused below like any other, and its alias keeps what it had.
                let aliases = self.aliases.get_or_insert_default();
                let replaced = aliases.inbound.get(&alias).map_or(0, |t| t.len());
                if let Err(rc) = policy::check_alias_bytes(
                    cfg,
                    stats,
                    aliases.inbound_bytes,
                    p.topic.len(),
                    replaced,
                ) {
                    return Err(self.violation(
                        now,
                        rc,
                        "topic aliases over the broker's byte limit (mqtt.max_topic_alias_bytes)"
                            .into(),
                    ));
                }
                aliases.inbound_bytes = aliases.inbound_bytes + p.topic.len() - replaced;
                aliases.inbound.insert(alias, p.topic.compact());
            }
        }

        let rejection = self.check_publish(&p).err();
        let packet_id = p.packet_id;
        let (ack, routed) = match (p.qos, packet_id) {
            (QoS::AtMostOnce, _) if rejection.is_none() => {
                (None, self.route(p, now).unwrap_or_default())
            }
            (QoS::AtLeastOnce, Some(id)) => {
                let (rc, routed) = match rejection {
                    Some(rc) => (rc, Routed::default()),
                    None => self.route_result(p, now),
                };
                let mut ack = Ack::new(id);
                ack.reason_code = rc;
                (Some(Packet::PubAck(ack)), routed)
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let Some(session) = self.session.clone() else {
                    return Ok(());
                };
                let (duplicate, full) = {
                    let st = session.lock();
                    let q2 = st.traffic_if_any().map(|t| &t.incoming_qos2);
                    let duplicate = q2.is_some_and(|q| q.contains(&id.get()));
                    let full = q2.map_or(0, |q| q.len()) >= usize::from(cfg.receive_maximum);
                    (duplicate, full)
                };
                let (rc, routed) = if duplicate {
                    // Section 4.3.3: a resent PUBLISH before PUBREL is not delivered again.
                    (ReasonCode::SUCCESS, Routed::default())
                } else if let Some(rc) = rejection {
                    (rc, Routed::default())
                } else {
                    if full && v5 {
                        return Err(self.violation(
                            now,
                            ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                            "more unacknowledged QoS 2 PUBLISH than Receive Maximum (section 3.3.4)"
                                .into(),
                        ));
                    }
                    let routed = self.route_result(p, now);
                    session.lock().traffic().incoming_qos2.insert(id.get());
                    routed
                };
                let mut ack = Ack::new(id);
                ack.reason_code = rc;
                (Some(Packet::PubRec(ack)), routed)
            }
            // Refused QoS 0, or (which the codec rules out) QoS 1/2 without a packet id.
            _ => (None, Routed::default()),
        };
        self.ack_or_wait(now, routed.blocked, ack);
        Ok(())
    }

    /// PUBREL: the client's QoS 2 message is released; answer PUBCOMP [MQTT-4.3.3-11].
    pub(super) fn handle_pubrel(&mut self, a: Ack) -> Result<(), Close> {
        let known = self.session.as_ref().is_some_and(|s| {
            s.lock()
                .traffic_mut_if_any()
                .is_some_and(|t| t.incoming_qos2.remove(&a.packet_id.get()))
        });
        let mut comp = Ack::new(a.packet_id);
        if !known {
            comp.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        }
        self.send(&Packet::PubComp(comp));
        Ok(())
    }

    /// Whether this client may publish this message (see `policy`): its topic, its User
    /// Properties, and the memory ceiling.
    fn check_publish(&self, p: &Publish) -> Result<(), ReasonCode> {
        let cfg = self.broker.config();
        let stats = self.broker.stats();
        policy::check_publish_topic(cfg, stats, &p.topic)?;
        self.check_acl_publish(&p.topic)?;
        policy::check_user_properties(cfg, stats, &p.properties.user_properties)?;
        // Clearing a retained message frees memory: the ceiling does not stop a plain one
        // (one with properties would still cost a copy in every offline queue it reaches).
        let props = &p.properties;
        let plain = props.user_properties.is_empty()
            && props.correlation_data.is_none()
            && props.response_topic.is_none()
            && props.content_type.is_none();
        if p.retain && p.payload.is_empty() && plain {
            return Ok(());
        }
        policy::check_memory(cfg, stats)
    }

    /// The access rules on a PUBLISH: refused with 0x87 Not authorized (on 3.1.1 it is
    /// acknowledged and dropped, as Mosquitto does).
    fn check_acl_publish(&self, topic: &str) -> Result<(), ReasonCode> {
        let Some(session) = &self.session else {
            return Ok(());
        };
        let generation = self.generation;
        let allowed = self.broker.with_acl(|acl| {
            acl.is_none_or(|acl| {
                let mut st = session.lock();
                // A connection whose session was taken over (by another user, perhaps)
                // publishes with no one's rights.
                st.connection == Some(generation)
                    && st.write_allowed(acl, session.client_id().as_str(), topic)
            })
        });
        if allowed {
            return Ok(());
        }
        Stats::add(&self.broker.stats().publish_denied, 1);
        self.broker.stats().limit_hit(crate::stats::Limit::Acl);
        Err(ReasonCode::NOT_AUTHORIZED)
    }

    /// Publishes a client's message; a refusal by the retained budgets routes nothing.
    fn route(&self, p: Publish, now: Instant) -> Result<Routed, ReasonCode> {
        let origin = self.session.as_ref().map(|s| s.id());
        let msg = Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties: p.properties,
            expires_at: None,
            origin,
            packed_user_properties: bytes::Bytes::new(),
            held: Held::none(),
        };
        self.broker
            .publish_from_client(msg, now, true)
            .map_err(|(rc, _)| rc)
    }

    /// Routes, with the reason code for the acknowledgement (0x10 when nobody was
    /// subscribed, on 5.0).
    fn route_result(&self, p: Publish, now: Instant) -> (ReasonCode, Routed) {
        match self.route(p, now) {
            Ok(routed) if routed.matched == 0 => (ReasonCode::NO_MATCHING_SUBSCRIBERS, routed),
            Ok(routed) => (ReasonCode::SUCCESS, routed),
            Err(rc) => (rc, Routed::default()),
        }
    }
}
