//! The broker's protocol settings and limits, with the defaults a new user gets.

use serde::Deserialize;

/// Protocol settings and per-client limits. Every field has a default (see [`Default`]);
/// the configuration file's `[mqtt]` table maps onto this struct.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Largest packet accepted from a client, in bytes (advertised as Maximum Packet Size).
    pub max_packet_size: u32,
    /// Unacknowledged QoS 1 and 2 PUBLISH packets a client may have outstanding towards the
    /// broker (advertised as Receive Maximum).
    pub receive_maximum: u16,
    /// Topic aliases a client may use towards the broker (advertised as Topic Alias Maximum).
    pub topic_alias_maximum: u16,
    /// Most unacknowledged QoS 1 and 2 messages the broker sends a client at once (for MQTT 5
    /// clients, also capped by their Receive Maximum).
    pub max_inflight: u16,
    /// Most messages queued for one session (online or offline) before new ones are dropped.
    pub max_queued_messages: usize,
    /// Most payload bytes queued for one session before new messages are dropped.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for offline persistent sessions (Mosquitto's
    /// `queue_qos0_messages`).
    pub queue_qos0_offline: bool,
    /// A client whose queue stays full this long is disconnected (0x97 Quota exceeded).
    pub slow_consumer_timeout_secs: u32,
    /// How long a publisher waits for room in the full queue of a subscriber that is
    /// draining it, before the message is dropped for that subscriber. Publishers are held up
    /// instead of losing messages to subscribers that keep up, if slowly; a subscriber that
    /// does not read costs them at most this once.
    pub publisher_wait_ms: u32,
    /// Largest keep-alive an MQTT 5 client may ask for; larger (or 0) is replaced by this
    /// value and announced as Server Keep Alive. MQTT 3.x clients cannot be told, so they
    /// keep their own. `None`: the client's value stands.
    pub max_keep_alive_secs: Option<u16>,
    /// Largest Session Expiry Interval granted, in seconds. `None`: the client's value stands.
    pub max_session_expiry_secs: Option<u32>,
    /// Longest topic name or filter accepted, in bytes.
    pub max_topic_length: usize,
    /// Most levels a topic name or filter may have.
    pub max_topic_levels: usize,
    /// Whether retained messages are supported (Retain Available).
    pub retain_available: bool,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: bool,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers_available: bool,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_packet_size: 1024 * 1024,
            receive_maximum: 64,
            topic_alias_maximum: 64,
            max_inflight: 256,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            queue_qos0_offline: false,
            slow_consumer_timeout_secs: 30,
            publisher_wait_ms: 100,
            max_keep_alive_secs: None,
            max_session_expiry_secs: None,
            max_topic_length: 65535,
            max_topic_levels: 128,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
        }
    }
}

impl BrokerConfig {
    /// Checks values that cannot work, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_packet_size < 64 {
            return Err("mqtt.max_packet_size must be at least 64 bytes".into());
        }
        if self.receive_maximum == 0 {
            return Err("mqtt.receive_maximum must be at least 1".into());
        }
        if self.max_inflight == 0 {
            return Err("mqtt.max_inflight must be at least 1".into());
        }
        if self.max_queued_messages == 0 {
            return Err("mqtt.max_queued_messages must be at least 1".into());
        }
        if self.max_topic_levels == 0 || self.max_topic_length == 0 {
            return Err("mqtt.max_topic_levels and mqtt.max_topic_length must be positive".into());
        }
        Ok(())
    }
}
