//! What the listeners and every connection of one server share: the broker, the limits,
//! the shutdown signal, the runtime to spawn connection tasks on, and the count of open
//! connections (which enforces `limits.max_connections` and lets shutdown wait for all).

use crate::admission::{AuthFailures, ListenerCount, RateLimiter};
use crate::config::ServerLimits;
use crate::keepalive::KeepAliveWheel;
use crate::tls::TlsListener;
use halyard_core::Broker;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::{Notify, watch};

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) broker: Arc<Broker>,
    pub(crate) limits: ServerLimits,
    /// Changes to `true` once, at shutdown (running tasks wait on it).
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Set at shutdown before parked connections are woken (they check it).
    shutting_down: AtomicBool,
    pub(crate) runtime: tokio::runtime::Handle,
    /// The keep-alive clock of parked connections.
    pub(crate) keep_alive: KeepAliveWheel,
    open: AtomicUsize,
    all_closed: Notify,
    /// Each listener's own open-connection count, by listener index.
    listeners: Vec<ListenerCount>,
    /// New connections per second per source address.
    pub(crate) rate: RateLimiter,
    /// Slow authentication checks (password hashes) running at once: at most twice the
    /// cores, so a flood of CONNECTs with passwords queues rather than taking every thread.
    pub(crate) verify_permits: Arc<tokio::sync::Semaphore>,
    /// Failed authentications per source address (delays, then bans).
    pub(crate) auth_failures: AuthFailures,
    /// Each listener's TLS, by listener index (none: plain TCP).
    tls: Vec<Option<Arc<TlsListener>>>,
}

impl Shared {
    pub(crate) fn new(
        broker: Arc<Broker>,
        limits: ServerLimits,
        listener_limits: &[Option<usize>],
        tls: Vec<Option<Arc<TlsListener>>>,
        shutdown: watch::Receiver<bool>,
        runtime: tokio::runtime::Handle,
    ) -> Shared {
        Shared {
            tls,
            listeners: listener_limits
                .iter()
                .map(|&m| ListenerCount::new(m))
                .collect(),
            rate: RateLimiter::new(limits.max_connection_rate_per_ip),
            auth_failures: AuthFailures::default(),
            verify_permits: Arc::new(tokio::sync::Semaphore::new(
                2 * std::thread::available_parallelism().map_or(2, usize::from),
            )),
            broker,
            limits,
            shutdown,
            shutting_down: AtomicBool::new(false),
            runtime,
            keep_alive: KeepAliveWheel::new(),
            open: AtomicUsize::new(0),
            all_closed: Notify::new(),
        }
    }

    /// Listener `listener`'s TLS, if it has TLS.
    pub(crate) fn tls(&self, listener: u16) -> Option<Arc<TlsListener>> {
        self.tls.get(usize::from(listener)).cloned().flatten()
    }

    /// The TLS of every listener that has it (for reload).
    pub(crate) fn tls_listeners(&self) -> impl Iterator<Item = &Arc<TlsListener>> {
        self.tls.iter().flatten()
    }

    /// Counts a new connection on listener `listener`, unless `limits.max_connections` are
    /// open already, or that listener's own limit.
    pub(crate) fn try_open_connection(&self, listener: usize) -> bool {
        let Some(count) = self.listeners.get(listener) else {
            return false;
        };
        if !count.try_open() {
            return false;
        }
        let opened = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limits.max_connections).then_some(n + 1)
            })
            .is_ok();
        if !opened {
            count.closed();
        }
        opened
    }

    pub(crate) fn connection_closed(&self, listener: usize) {
        if let Some(count) = self.listeners.get(listener) {
            count.closed();
        }
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_closed.notify_waiters();
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Tells every connection, running or parked, to say goodbye; waits until all closed.
    pub(crate) async fn shut_down_connections(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.broker.wake_connections();
        loop {
            let closed = self.all_closed.notified();
            if self.open.load(Ordering::Acquire) == 0 {
                self.keep_alive.clear();
                return;
            }
            closed.await;
        }
    }
}
