//! Counters the broker keeps about itself: read by the network shell for metrics, `$SYS`
//! topics and tests. Plain atomics, so counting never takes a lock.

use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
