//! Admission of accepted sockets, before any byte is read: the open-connection counts
//! (overall `limits.max_connections`, and each listener's own), and the rate of new
//! connections per source address (`limits.max_connection_rate_per_ip`), a token bucket
//! per address. It decides and counts; the accept loop closes what it refuses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The open-connection count of one listener and its limit.
#[derive(Debug)]
pub(crate) struct ListenerCount {
    open: AtomicUsize,
    max: usize,
}

impl ListenerCount {
    pub(crate) fn new(max: Option<usize>) -> ListenerCount {
        ListenerCount {
            open: AtomicUsize::new(0),
            max: max.unwrap_or(usize::MAX),
        }
    }

    /// Counts a new connection unless the listener is at its limit.
    pub(crate) fn try_open(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn closed(&self) {
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// New connections per second per source address: a token bucket each, holding one
/// second's worth. Addresses whose bucket is full again are forgotten, so the table holds
/// only the addresses that connected within about the last second.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_sec: f64,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_ip: HashMap<IpAddr, (f64, Instant)>,
    last_prune: Option<Instant>,
}

impl RateLimiter {
    /// A limiter of `per_sec` new connections per second per address; 0 admits all.
    pub(crate) fn new(per_sec: u32) -> RateLimiter {
        RateLimiter {
            per_sec: f64::from(per_sec),
            buckets: Mutex::default(),
        }
    }

    /// Whether a new connection from `ip` at `now` is within the rate.
    pub(crate) fn admit(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_sec == 0.0 {
            return true;
        }
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let per_sec = self.per_sec;
        let refill = |tokens: f64, since: Instant| {
            let elapsed = now.saturating_duration_since(since).as_secs_f64();
            (tokens + elapsed * per_sec).min(per_sec)
        };
        if b.last_prune
            .is_none_or(|t| now.saturating_duration_since(t).as_secs() >= 1)
        {
            b.by_ip
                .retain(|_, (tokens, since)| refill(*tokens, *since) < per_sec);
            b.last_prune = Some(now);
        }
        let (tokens, since) = b.by_ip.entry(ip).or_insert((per_sec, now));
        let available = refill(*tokens, *since);
        *since = now;
        if available >= 1.0 {
            *tokens = available - 1.0;
            true
        } else {
            *tokens = available;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_beyond_the_rate_is_refused_and_the_bucket_refills() {
        let limiter = RateLimiter::new(10);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        let t0 = Instant::now();
        let admitted = (0..50).filter(|_| limiter.admit(ip, t0)).count();
        assert_eq!(admitted, 10);
        assert!(
            limiter.admit(other, t0),
            "another address has its own bucket"
        );
        assert!(limiter.admit(ip, t0 + Duration::from_millis(150)));
        assert!(!limiter.admit(ip, t0 + Duration::from_millis(160)));
        let later = t0 + Duration::from_secs(5);
        assert_eq!((0..50).filter(|_| limiter.admit(ip, later)).count(), 10);
    }

    #[test]
    fn listener_count_stops_at_its_limit() {
        let c = ListenerCount::new(Some(2));
        assert!(c.try_open() && c.try_open() && !c.try_open());
        c.closed();
        assert!(c.try_open());
    }
}
