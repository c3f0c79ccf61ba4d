//! An application message as the broker holds it: published once, shared by every subscriber
//! and queue it reaches (`Arc<Message>`), never copied per subscriber.
//!
//! A message the broker keeps carries a [`Held`] charge: its cost in bytes, added to the
//! broker's held-bytes meter while any queue, in-flight window or the retained tree holds it
//! and released when the last reference goes. The meter is what `memory_limit_bytes` is
//! checked against.

use bytes::{Bytes, BytesMut};
use halyard_codec::{MqttString, PublishProperties, QoS, TopicName, UserProperty};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Identifies one session for as long as the broker runs (client identifiers can be reused
/// by a new session after a clean start; session ids are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

/// What one User Property costs the broker besides its bytes: the two string handles.
const USER_PROPERTY_OVERHEAD: usize = 2 * std::mem::size_of::<MqttString>();

/// A message's charge on the broker's held-bytes meter: added when made, again for each
/// clone, released on drop. [`Held::none`] charges nothing (messages not kept).
#[derive(Debug, Default)]
pub struct Held(Option<(Arc<AtomicUsize>, usize)>);

impl Held {
    /// No charge.
    pub fn none() -> Held {
        Held(None)
    }

    /// Whether this is a charge (the message is a compact copy the broker keeps).
    pub fn is_charged(&self) -> bool {
        self.0.is_some()
    }

    /// The bytes charged (0 for none).
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |(_, b)| *b)
    }

    pub(crate) fn new(meter: &Arc<AtomicUsize>, bytes: usize) -> Held {
        meter.fetch_add(bytes, Ordering::Relaxed);
        Held(Some((meter.clone(), bytes)))
    }
}

impl Clone for Held {
    fn clone(&self) -> Held {
        match &self.0 {
            Some((meter, bytes)) => Held::new(meter, *bytes),
            None => Held(None),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some((meter, bytes)) = &self.0 {
            // Never more than was added by this charge.
            let _ = meter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(*bytes))
            });
        }
    }
}

impl PartialEq for Held {
    fn eq(&self, _: &Held) -> bool {
        // Accounting, not content.
        true
    }
}
impl Eq for Held {}

/// A message routed by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic it was published to.
    pub topic: TopicName,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// RETAIN flag it was published with.
    pub retain: bool,
    /// Properties forwarded to subscribers unchanged (MQTT 5), without Topic Alias and
    /// Subscription Identifiers, which are per connection.
    pub properties: PublishProperties,
    /// When the Message Expiry Interval runs out.
    pub expires_at: Option<Instant>,
    /// The session that published it (for No Local); `None` for wills and broker messages.
    pub origin: Option<SessionId>,
    /// The User Properties of a compact message, packed as the bytes of length-prefixed
    /// pairs (two bytes of length, then the string, for the name and then the value), in
    /// order; `properties.user_properties` is then empty. Packed, a small property costs its
    /// bytes and four more, not two 32-byte handles. Empty when there are none or the
    /// message is not compact. [`Message::delivery_properties`] unpacks them.
    pub packed_user_properties: Bytes,
    /// Its charge on the broker's held-bytes meter.
    pub held: Held,
}

impl Message {
    /// Whether the message has expired at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// Seconds left of the Message Expiry Interval at `now`, rounded up (never 0 for a live
    /// message), or `None` if it does not expire.
    pub fn remaining_expiry_secs(&self, now: Instant) -> Option<u32> {
        let t = self.expires_at?;
        let left = t.saturating_duration_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(secs.max(1)).unwrap_or(u32::MAX))
    }

    /// A copy that owns its bytes: topic, payload and every string property copied into one
    /// new allocation, each a slice of it, with the User Properties packed (see
    /// [`Message::packed_user_properties`]). A decoded message shares its publisher's read
    /// buffer; one kept for long (retained, queued for an offline client, a will) must not
    /// keep that whole buffer alive, and must not cost an allocation or two handles per
    /// property. The copy carries no charge (see [`Message::charged`]).
    pub fn compact(&self) -> Message {
        let p = &self.properties;
        let users = &p.user_properties;
        let mut len = self.topic.len() + self.payload.len();
        len += p.response_topic.as_ref().map_or(0, |t| t.len());
        len += p.correlation_data.as_ref().map_or(0, Bytes::len);
        len += p.content_type.as_ref().map_or(0, |c| c.len());
        len += self.packed_user_properties.len();
        len += users
            .iter()
            .map(|(k, v)| 4 + k.len() + v.len())
            .sum::<usize>();
        let mut buf = BytesMut::with_capacity(len);
        let mut spans = Vec::with_capacity(6);
        let mut put = |buf: &mut BytesMut, b: &[u8]| {
            let start = buf.len();
            buf.extend_from_slice(b);
            spans.push(start..buf.len());
        };
        put(&mut buf, self.topic.as_bytes());
        put(&mut buf, &self.payload);
        if let Some(t) = &p.response_topic {
            put(&mut buf, t.as_bytes());
        }
        if let Some(d) = &p.correlation_data {
            put(&mut buf, d);
        }
        if let Some(c) = &p.content_type {
            put(&mut buf, c.as_bytes());
        }
        let packed_start = buf.len();
        buf.extend_from_slice(&self.packed_user_properties);
        for (k, v) in users {
            pack_string(&mut buf, k);
            pack_string(&mut buf, v);
        }
        let packed_end = buf.len();
        let all = buf.freeze();
        let packed_user_properties = all.slice(packed_start..packed_end);
        let mut spans = spans.into_iter().map(|r| all.slice(r));
        let mut next = || spans.next().unwrap_or_default();
        // Each slice holds what the original held, which was valid: the fallbacks below
        // are never taken, and would only cost an allocation of their own.
        let string = |b: Bytes, orig: &MqttString| {
            MqttString::from_bytes(b).unwrap_or_else(|_| orig.compact())
        };
        let topic = {
            let b = next();
            TopicName::from_mqtt_string(string(b, self.topic.as_mqtt_string()))
                .unwrap_or_else(|_| self.topic.compact())
        };
        let payload = next();
        let response_topic = p.response_topic.as_ref().map(|t| {
            let b = next();
            TopicName::from_mqtt_string(string(b, t.as_mqtt_string()))
                .unwrap_or_else(|_| t.compact())
        });
        let correlation_data = p.correlation_data.as_ref().map(|_| next());
        let content_type = p.content_type.as_ref().map(|c| string(next(), c));
        Message {
            topic,
            payload,
            properties: PublishProperties {
                response_topic,
                correlation_data,
                content_type,
                user_properties: Vec::new(),
                ..p.clone()
            },
            packed_user_properties,
            held: Held::none(),
            ..self.clone()
        }
    }

    /// The properties to forward to a subscriber, with any packed User Properties unpacked
    /// (slices of the message's own bytes: no copy of their contents).
    pub fn delivery_properties(&self) -> PublishProperties {
        let mut p = self.properties.clone();
        if !self.packed_user_properties.is_empty() {
            p.user_properties = unpack(&self.packed_user_properties);
        }
        p
    }

    /// The message with a charge of its cost on `meter`.
    pub(crate) fn charged(self, meter: &Arc<AtomicUsize>) -> Message {
        let cost = self.cost_bytes();
        Message {
            held: Held::new(meter, cost),
            ..self
        }
    }

    /// What the message costs the broker to hold, as queues, budgets and the memory ceiling
    /// count it: topic, payload, and every property with the handles that hold it.
    pub fn cost_bytes(&self) -> usize {
        let p = &self.properties;
        let mut cost = self.payload.len() + self.topic.len() + self.packed_user_properties.len();
        if p.user_properties.is_empty()
            && p.response_topic.is_none()
            && p.correlation_data.is_none()
            && p.content_type.is_none()
        {
            return cost;
        }
        cost += p.response_topic.as_ref().map_or(0, |t| t.len());
        cost += p.correlation_data.as_ref().map_or(0, Bytes::len);
        cost += p.content_type.as_ref().map_or(0, |c| c.len());
        for (k, v) in &p.user_properties {
            cost += k.len() + v.len() + USER_PROPERTY_OVERHEAD;
        }
        cost
    }
}

/// Appends `s` as a packed string: two bytes of length, then its bytes.
fn pack_string(buf: &mut BytesMut, s: &MqttString) {
    // An MqttString is at most 65,535 bytes: its length fits.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes().get(..usize::from(len)).unwrap_or_default());
}

/// The User Properties packed in `packed` (see [`Message::packed_user_properties`]).
fn unpack(packed: &Bytes) -> Vec<UserProperty> {
    let mut out = Vec::new();
    let mut at = 0;
    let string = |at: &mut usize| -> Option<MqttString> {
        let len: [u8; 2] = packed.get(*at..*at + 2)?.try_into().ok()?;
        let len = usize::from(u16::from_be_bytes(len));
        let start = *at + 2;
        let end = start + len;
        if end > packed.len() {
            return None;
        }
        *at = end;
        MqttString::from_bytes(packed.slice(start..end)).ok()
    };
    // Packed by `compact` from valid strings: the walk ends exactly at the end.
    while at < packed.len() {
        let (Some(k), Some(v)) = (string(&mut at), string(&mut at)) else {
            break;
        };
        out.push((k, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        let s = |x: &str| MqttString::new(x).unwrap();
        Message {
            topic: TopicName::new("a/b").unwrap(),
            payload: Bytes::from_static(b"payload"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: PublishProperties {
                response_topic: Some(TopicName::new("r").unwrap()),
                correlation_data: Some(Bytes::from_static(b"cd")),
                content_type: Some(s("text")),
                user_properties: vec![(s("k1"), s("v1")), (s(""), s("v2"))],
                ..PublishProperties::default()
            },
            expires_at: None,
            origin: None,
            packed_user_properties: Bytes::new(),
            held: Held::none(),
        }
    }

    #[test]
    fn compact_keeps_every_field_in_one_allocation() {
        let m = msg();
        let c = m.compact();
        assert_eq!(c.topic, m.topic);
        assert_eq!(c.payload, m.payload);
        assert_eq!(c.delivery_properties(), m.properties);
        assert!(c.properties.user_properties.is_empty());
        // Packed: each pair costs its bytes and four, not two handles.
        assert_eq!(c.packed_user_properties.len(), 4 + 4 + 4 + 2);
        assert!(c.cost_bytes() < m.cost_bytes());
        // Compacting again keeps them.
        assert_eq!(c.compact().delivery_properties(), m.properties);
    }

    #[test]
    fn the_meter_counts_each_charge_until_dropped() {
        let meter = Arc::new(AtomicUsize::new(0));
        let m = msg().charged(&meter);
        let cost = m.cost_bytes();
        assert_eq!(meter.load(Ordering::Relaxed), cost);
        let copy = m.clone();
        assert_eq!(meter.load(Ordering::Relaxed), 2 * cost);
        drop(m);
        drop(copy);
        assert_eq!(meter.load(Ordering::Relaxed), 0);
    }
}
