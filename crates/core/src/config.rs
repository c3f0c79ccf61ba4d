//! The broker's protocol settings and limits, with the defaults a new user gets.

use serde::Deserialize;

/// The most levels any topic tree may have: `max_topic_levels` cannot be set above it, and
/// the trees refuse deeper topics whatever the setting. The trees' walks recurse once per
/// level, so this bounds their stack use (under 1 KiB a level even unoptimized) below half
/// of a tokio worker thread's 2 MiB stack.
pub const MAX_TOPIC_LEVELS_LIMIT: usize = 1024;

/// Protocol settings and per-client limits. Every field has a default (see [`Default`]);
/// the configuration file's `[mqtt]` table maps onto this struct.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Largest packet accepted from a client, in bytes (advertised as Maximum Packet Size).
    pub max_packet_size: u32,
    /// Largest CONNECT accepted, in bytes (at most `max_packet_size`): a socket that has not
    /// connected yet holds no more than this while it sends its CONNECT, however slowly.
    pub max_connect_packet_size: u32,
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
    /// value and announced as Server Keep Alive, so no MQTT 5 connection goes unwatched.
    /// MQTT 3.x clients cannot be told, so they keep their own (TCP keep-alive, in
    /// `[limits]`, catches their vanished peers). `None`: the client's value stands.
    pub max_keep_alive_secs: Option<u16>,
    /// Largest Session Expiry Interval granted, in seconds: no session outlives its client
    /// by more (sessions count against `max_sessions`, so ones that never expire could fill
    /// it for good). `None`: the client's value stands.
    pub max_session_expiry_secs: Option<u32>,
    /// Session expiry for MQTT 3.x clients with a persistent session (clean session 0),
    /// which cannot ask for one: seconds after they disconnect (Mosquitto's
    /// `persistent_client_expiration`). 4294967295 means never.
    pub persistent_session_expiry_secs: u32,
    /// Longest topic name or filter accepted, in bytes, by every path (PUBLISH, wills,
    /// SUBSCRIBE, topic aliases).
    pub max_topic_length: usize,
    /// Most levels a topic name or filter may have, by every path; at most
    /// [`MAX_TOPIC_LEVELS_LIMIT`].
    pub max_topic_levels: usize,
    /// Most User Properties one PUBLISH, will or CONNECT may carry.
    pub max_user_properties: usize,
    /// Most bytes of topic names one connection's topic aliases may hold, in each direction.
    pub max_topic_alias_bytes: usize,
    /// Most subscriptions one session may hold.
    pub max_subscriptions_per_session: usize,
    /// Most bytes of topic filters one session's subscriptions may hold.
    pub max_subscription_bytes_per_session: usize,
    /// Most sessions (connected or not) the broker holds; a new client beyond it is refused
    /// (0x97 Quota exceeded).
    pub max_sessions: usize,
    /// Most retained messages held; a new retained topic beyond it is refused (0x97).
    pub max_retained_messages: usize,
    /// Most bytes (topic, payload, properties) of retained messages held.
    pub max_retained_bytes: usize,
    /// Ceiling on the bytes of the messages the broker keeps (retained, queued or in flight
    /// for offline sessions, wills waiting) and of read buffers holding large unfinished
    /// packets. Above it, publishes from clients are refused with 0x97 until it falls
    /// (Mosquitto's `memory_limit`). 0: no ceiling.
    pub memory_limit_bytes: usize,
    /// Connections of one client identifier allowed within `flapping_window_secs`; more are
    /// refused (0x9F Connection rate exceeded) until the window has passed. 0: no limit.
    pub flapping_max_connects: u32,
    /// The window of `flapping_max_connects`, in seconds.
    pub flapping_window_secs: u32,
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
            max_connect_packet_size: 64 * 1024,
            receive_maximum: 64,
            topic_alias_maximum: 64,
            max_inflight: 256,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            queue_qos0_offline: false,
            slow_consumer_timeout_secs: 30,
            publisher_wait_ms: 100,
            max_keep_alive_secs: Some(7200),
            max_session_expiry_secs: Some(7 * 86_400),
            persistent_session_expiry_secs: 86_400,
            max_topic_length: 65535,
            max_topic_levels: 128,
            max_user_properties: 128,
            max_topic_alias_bytes: 64 * 1024,
            max_subscriptions_per_session: 1000,
            max_subscription_bytes_per_session: 1024 * 1024,
            max_sessions: 100_000,
            max_retained_messages: 100_000,
            max_retained_bytes: 256 * 1024 * 1024,
            memory_limit_bytes: 1024 * 1024 * 1024,
            flapping_max_connects: 60,
            flapping_window_secs: 60,
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
        if self.max_connect_packet_size < 64 {
            return Err("mqtt.max_connect_packet_size must be at least 64 bytes".into());
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
        if self.max_topic_levels > MAX_TOPIC_LEVELS_LIMIT {
            return Err(format!(
                "mqtt.max_topic_levels must be at most {MAX_TOPIC_LEVELS_LIMIT}"
            ));
        }
        if self.max_keep_alive_secs == Some(0) {
            return Err("mqtt.max_keep_alive_secs must be at least 1 (or left out)".into());
        }
        if self.max_sessions == 0 {
            return Err("mqtt.max_sessions must be at least 1".into());
        }
        if self.flapping_max_connects > 0 && self.flapping_window_secs == 0 {
            return Err("mqtt.flapping_window_secs must be at least 1".into());
        }
        Ok(())
    }
}
