//! Counters the broker keeps about itself: read by the network shell for metrics, `$SYS`
//! topics and tests. Plain atomics, so counting never takes a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A limit the broker enforces; each refusal is counted per limit, so that the shell can log
/// each limit at most once per interval and export the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A topic name or filter over `max_topic_length` or `max_topic_levels`.
    TopicSize,
    /// More User Properties than `max_user_properties`.
    UserProperties,
    /// Topic aliases over `max_topic_alias_bytes`.
    TopicAliasBytes,
    /// Subscriptions over `max_subscriptions_per_session` or
    /// `max_subscription_bytes_per_session`.
    Subscriptions,
    /// Sessions over `max_sessions`.
    Sessions,
    /// Retained messages over `max_retained_messages` or `max_retained_bytes`.
    Retained,
    /// Held message bytes over `memory_limit_bytes`.
    Memory,
    /// A client identifier connecting more than `flapping_max_connects` times in its window.
    Flapping,
    /// Connections over `max_connections` (the shell counts these).
    Connections,
    /// New connections from one address over `max_connection_rate_per_ip` (the shell).
    ConnectionRate,
    /// A PUBLISH or SUBSCRIBE the access rules (`auth.acl_file`) refused.
    Acl,
    /// A failed authentication, or a connection from an address banned for failing (the
    /// shell counts these).
    AuthFailures,
}

impl Limit {
    /// Every limit, in a fixed order.
    pub const ALL: [Limit; 12] = [
        Limit::TopicSize,
        Limit::UserProperties,
        Limit::TopicAliasBytes,
        Limit::Subscriptions,
        Limit::Sessions,
        Limit::Retained,
        Limit::Memory,
        Limit::Flapping,
        Limit::Connections,
        Limit::ConnectionRate,
        Limit::Acl,
        Limit::AuthFailures,
    ];

    /// The setting that sets this limit, as the configuration file names it.
    pub fn setting(self) -> &'static str {
        match self {
            Limit::TopicSize => "mqtt.max_topic_length / mqtt.max_topic_levels",
            Limit::UserProperties => "mqtt.max_user_properties",
            Limit::TopicAliasBytes => "mqtt.max_topic_alias_bytes",
            Limit::Subscriptions => {
                "mqtt.max_subscriptions_per_session / mqtt.max_subscription_bytes_per_session"
            }
            Limit::Sessions => "mqtt.max_sessions",
            Limit::Retained => "mqtt.max_retained_messages / mqtt.max_retained_bytes",
            Limit::Memory => "mqtt.memory_limit_bytes",
            Limit::Flapping => "mqtt.flapping_max_connects",
            Limit::Connections => "limits.max_connections",
            Limit::ConnectionRate => "limits.max_connection_rate_per_ip",
            Limit::Acl => "auth.acl_file",
            Limit::AuthFailures => "the failed-authentication brake (docs/security.md)",
        }
    }

    /// A short stable label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Limit::TopicSize => "topic_size",
            Limit::UserProperties => "user_properties",
            Limit::TopicAliasBytes => "topic_alias_bytes",
            Limit::Subscriptions => "subscriptions",
            Limit::Sessions => "sessions",
            Limit::Retained => "retained",
            Limit::Memory => "memory",
            Limit::Flapping => "flapping",
            Limit::Connections => "connections",
            Limit::ConnectionRate => "connection_rate",
            Limit::Acl => "acl",
            Limit::AuthFailures => "auth_failures",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Broker-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// PUBLISH packets received from clients.
    pub messages_received: AtomicU64,
    /// PUBLISH packets sent to clients.
    pub messages_sent: AtomicU64,
    /// Messages dropped because a session's queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Messages dropped because they expired before delivery.
    pub dropped_expired: AtomicU64,
    /// Messages not sent because they exceeded the client's Maximum Packet Size.
    pub dropped_too_large: AtomicU64,
    /// Publishes refused by the access rules.
    pub publish_denied: AtomicU64,
    /// Deliveries not made because the subscriber may not read the topic (ACL).
    pub deliveries_denied: AtomicU64,
    /// Refusals per limit (see [`Limit`]).
    limit_hits: [AtomicU64; Limit::ALL.len()],
    /// Bytes of the messages the broker holds (queued, in flight, retained, pending wills),
    /// each message counted once however many queues share it.
    held_bytes: Arc<AtomicUsize>,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts one refusal by `limit`.
    pub fn limit_hit(&self, limit: Limit) {
        if let Some(c) = self.limit_hits.get(limit.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Refusals by `limit` so far.
    pub fn limit_hits(&self, limit: Limit) -> u64 {
        self.limit_hits
            .get(limit.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Bytes of the messages the broker holds now.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes.load(Ordering::Relaxed)
    }

    /// A charge of `bytes` on the held-bytes meter, released when dropped: for memory the
    /// network shell holds for a client (a large packet being read), so that the memory
    /// ceiling counts it too.
    pub fn charge(&self, bytes: usize) -> crate::message::Held {
        crate::message::Held::new(&self.held_bytes, bytes)
    }

    /// The meter messages charge (see `message::Held`).
    pub(crate) fn held_meter(&self) -> &Arc<AtomicUsize> {
        &self.held_bytes
    }
}
