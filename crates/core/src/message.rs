//! An application message as the broker holds it: published once, shared by every subscriber
//! and queue it reaches (`Arc<Message>`), never copied per subscriber.

use bytes::Bytes;
use halyard_codec::{PublishProperties, QoS, TopicName};
use std::time::Instant;

/// Identifies one session for as long as the broker runs (client identifiers can be reused
/// by a new session after a clean start; session ids are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

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

    /// A copy whose topic, payload and properties have allocations of their own. A decoded
    /// message shares its publisher's read buffer; one kept for long (retained, or queued for
    /// an offline client) must not keep that whole buffer alive.
    pub fn compact(&self) -> Message {
        let p = &self.properties;
        let properties = halyard_codec::PublishProperties {
            response_topic: p.response_topic.as_ref().map(|t| t.compact()),
            correlation_data: p
                .correlation_data
                .as_ref()
                .map(|d| Bytes::copy_from_slice(d)),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| (k.compact(), v.compact()))
                .collect(),
            content_type: p.content_type.as_ref().map(|c| c.compact()),
            ..p.clone()
        };
        Message {
            topic: self.topic.compact(),
            payload: Bytes::copy_from_slice(&self.payload),
            properties,
            ..self.clone()
        }
    }

    /// The payload size used for queue accounting.
    pub fn cost_bytes(&self) -> usize {
        self.payload.len() + self.topic.len()
    }
}
