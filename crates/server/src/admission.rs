//! Admission of accepted sockets, before any byte is read: the open-connection counts
//! (overall `limits.max_connections`, and each listener's own), the rate of new
//! connections per source address (`limits.max_connection_rate_per_ip`), a token bucket
//! per address, and the brake on password guessing ([`AuthFailures`]: a growing delay on
//! the checks of an address that keeps failing, then a ban). It decides and counts; the
//! accept loop and the connections act on it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

/// Failed authentications from one address in one window before its checks are delayed.
const DELAY_AFTER: u32 = 3;
/// Failed authentications from one address in one window before it is banned.
const BAN_AFTER: u32 = 20;
/// The window failures are counted in.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a ban lasts.
const BAN: Duration = Duration::from_secs(300);
/// The longest delay put on one check.
const MAX_DELAY: Duration = Duration::from_secs(4);

/// Failed authentications, counted two ways. Per source address and user name: past
/// [`DELAY_AFTER`] in a window, each further check of that user name from that address waits
/// longer first (250 ms, doubling, at most [`MAX_DELAY`]); the wait is spent by the guessing
/// client's own check, so it slows nobody else's CONNECT. Per source address: past
/// [`BAN_AFTER`], new connections from it are closed at accept for [`BAN`], except from
/// loopback addresses (every local client shares them; a local guesser gets the delays).
/// The tables forget entries whose window and ban are over.
#[derive(Debug, Default)]
pub(crate) struct AuthFailures {
    hasher: std::hash::RandomState,
    table: Mutex<FailureTable>,
}

#[derive(Debug, Default)]
struct FailureTable {
    by_ip: HashMap<IpAddr, Failures>,
    by_user: HashMap<(IpAddr, u64), Failures>,
    last_prune: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
    banned_until: Option<Instant>,
}

impl Failures {
    fn new(now: Instant) -> Failures {
        Failures {
            since: now,
            count: 0,
            banned_until: None,
        }
    }

    /// Counts one more failure at `now` (a new window if the last is over).
    fn add(&mut self, now: Instant) {
        if now.saturating_duration_since(self.since) >= FAILURE_WINDOW {
            // A new window of counting; a ban in force stays.
            let banned_until = self.banned_until;
            *self = Failures::new(now);
            self.banned_until = banned_until;
        }
        self.count = self.count.saturating_add(1);
    }

    fn live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) < FAILURE_WINDOW
            || self.banned_until.is_some_and(|b| b > now)
    }
}

impl AuthFailures {
    fn lock(&self) -> std::sync::MutexGuard<'_, FailureTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn user_key(&self, ip: IpAddr, user: &str) -> (IpAddr, u64) {
        use std::hash::BuildHasher;
        (ip, self.hasher.hash_one(user))
    }

    /// Counts a failed authentication from `ip` (for `user`, if the client gave one);
    /// returns whether the address is now banned.
    pub(crate) fn record(&self, ip: IpAddr, user: Option<&str>, now: Instant) -> bool {
        let key = user.map(|u| self.user_key(ip, u));
        let mut t = self.lock();
        if t.last_prune
            .is_none_or(|p| now.saturating_duration_since(p) >= Duration::from_secs(1))
        {
            t.by_ip.retain(|_, f| f.live(now));
            t.by_user.retain(|_, f| f.live(now));
            t.last_prune = Some(now);
        }
        if let Some(key) = key {
            t.by_user
                .entry(key)
                .or_insert_with(|| Failures::new(now))
                .add(now);
        }
        let f = t.by_ip.entry(ip).or_insert_with(|| Failures::new(now));
        f.add(now);
        if f.count >= BAN_AFTER && !ip.is_loopback() {
            f.banned_until = Some(now + BAN);
        }
        f.banned_until.is_some_and(|b| b > now)
    }

    /// How long a check of `user` from `ip` waits before it runs.
    pub(crate) fn delay(&self, ip: IpAddr, user: &str, now: Instant) -> Duration {
        let key = self.user_key(ip, user);
        let t = self.lock();
        let Some(f) = t.by_user.get(&key) else {
            return Duration::ZERO;
        };
        if f.count < DELAY_AFTER || now.saturating_duration_since(f.since) >= FAILURE_WINDOW {
            return Duration::ZERO;
        }
        let doublings = (f.count - DELAY_AFTER).min(8);
        (Duration::from_millis(250) * (1 << doublings)).min(MAX_DELAY)
    }

    /// Whether new connections from `ip` are refused at accept.
    pub(crate) fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.lock()
            .by_ip
            .get(&ip)
            .and_then(|f| f.banned_until)
            .is_some_and(|b| b > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_delay_then_ban_one_address_only() {
        let f = AuthFailures::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..DELAY_AFTER {
            assert_eq!(f.delay(ip, "alice", t0), Duration::ZERO);
            f.record(ip, Some("alice"), t0);
        }
        assert_eq!(f.delay(ip, "alice", t0), Duration::from_millis(250));
        f.record(ip, Some("alice"), t0);
        assert_eq!(f.delay(ip, "alice", t0), Duration::from_millis(500));
        assert_eq!(
            f.delay(ip, "bob", t0),
            Duration::ZERO,
            "another user is not delayed"
        );
        assert_eq!(f.delay(other, "alice", t0), Duration::ZERO);
        let mut banned = false;
        for _ in 0..BAN_AFTER {
            banned = f.record(ip, None, t0);
        }
        assert!(banned && f.is_banned(ip, t0) && !f.is_banned(other, t0));
        assert!(!f.is_banned(ip, t0 + BAN + Duration::from_secs(1)));
        assert_eq!(f.delay(ip, "alice", t0 + FAILURE_WINDOW), Duration::ZERO);
        // Loopback is never banned (every local client shares it).
        let local: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..2 * BAN_AFTER {
            assert!(!f.record(local, Some("alice"), t0));
        }
        assert!(!f.is_banned(local, t0));
        assert_eq!(f.delay(local, "alice", t0), MAX_DELAY);
    }

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
