//! Back-pressure from subscribers to publishers.
//!
//! When a PUBLISH finds a subscriber's queue full while that subscriber is draining it, the
//! publisher's connection holds the message for that subscriber and stops taking packets
//! from its client (the shell stops reading its socket) until there is room, for at most
//! `publisher_wait_ms`; only then is the message dropped for that subscriber. The
//! acknowledgement owed to the publisher (PUBACK or PUBREC) goes out once every subscriber
//! has the message, so a QoS 1/2 publisher's own window slows it too. A subscriber that is
//! not draining its queue gets nothing held for it: its messages are dropped and counted, and
//! it is disconnected if it stays full (`slow_consumer_timeout_secs`).

use super::{Close, Connection};
use crate::session::{Delivery, Session};
use halyard_codec::Packet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A message waiting for room in some subscribers' queues.
#[derive(Debug)]
pub(super) struct Blocked {
    waiting: Vec<(Arc<Session>, Delivery)>,
    since: Instant,
    ack: Option<Packet>,
}

impl Connection {
    /// Sends the acknowledgement now, or holds it until the blocked deliveries are in.
    pub(super) fn ack_or_wait(
        &mut self,
        now: Instant,
        waiting: Vec<(Arc<Session>, Delivery)>,
        ack: Option<Packet>,
    ) {
        if waiting.is_empty() {
            if let Some(ack) = ack {
                self.send(&ack);
            }
            return;
        }
        self.register_space_waits(&waiting);
        self.blocked = Some(Box::new(Blocked {
            waiting,
            since: now,
            ack,
        }));
    }

    fn register_space_waits(&self, waiting: &[(Arc<Session>, Delivery)]) {
        if let Some(waker) = &self.waker {
            for (session, _) in waiting {
                session.wait_for_space(waker);
            }
        }
    }

    /// Whether a message is waiting for room: the shell then takes no more packets from
    /// this client.
    pub fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    /// When the wait for room ends (the shell calls [`Connection::retry_blocked`] then).
    pub fn blocked_deadline(&self) -> Option<Instant> {
        let wait = Duration::from_millis(u64::from(self.broker.config().publisher_wait_ms));
        self.blocked.as_ref().map(|b| b.since + wait)
    }

    /// Tries the waiting deliveries again (after a wake-up, or at the deadline, when those
    /// still without room are dropped); acknowledges the message once none is left.
    pub fn retry_blocked(&mut self, now: Instant) -> Result<(), Close> {
        let deadline = self.blocked_deadline();
        let Some(mut blocked) = self.blocked.take() else {
            return Ok(());
        };
        let may_wait = deadline.is_some_and(|d| now < d);
        let mut still = Vec::new();
        for (session, d) in blocked.waiting.drain(..) {
            if let Some(d) = self.broker.retry(&session, d, now, may_wait) {
                still.push((session, d));
            }
        }
        if still.is_empty() {
            if let Some(ack) = blocked.ack.take() {
                self.send(&ack);
            }
        } else {
            self.register_space_waits(&still);
            blocked.waiting = still;
            self.blocked = Some(blocked);
        }
        Ok(())
    }
}
