//! A session: the state of one client that outlives its connections (section 4.1).
//!
//! It holds the subscriptions (a copy of what the trie holds for it), the queue of messages
//! waiting to be sent, the in-flight outbound QoS 1/2 messages, the inbound QoS 2 packet
//! identifiers awaiting PUBREL, the will of the current connection, and the link to the
//! connection attached to it. Publishers push into the queue from their own tasks
//! ([`Session::enqueue`]); the attached connection drains it. Everything sits behind one
//! mutex, held only for short, non-blocking work.

use crate::acl::{Access, Acl, Subject};
use crate::config::BrokerConfig;
use crate::inflight::InflightWindow;
use crate::message::{Message, SessionId};
use crate::stats::Stats;
use halyard_codec::{
    MqttString, PacketId, QoS, ReasonCode, SubscriptionId, SubscriptionOptions, TopicFilter,
};
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

/// One message on its way to this session's client.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) msg: Arc<Message>,
    /// QoS of this delivery: min(published, granted).
    pub(crate) qos: QoS,
    /// RETAIN flag to send.
    pub(crate) retain: bool,
    /// Subscription Identifiers of the matching subscriptions (MQTT 5).
    pub(crate) sub_ids: Vec<SubscriptionId>,
    /// The shared subscription (`$share/...`) this delivery came through, if any: such a
    /// message can go to another member if this one leaves before acknowledging it.
    pub(crate) shared: Option<TopicFilter>,
}

/// Where an outbound QoS 1/2 message is in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent, waiting for PUBCOMP (QoS 2).
    Released,
}

/// An outbound QoS 1/2 message not yet fully acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) packet_id: PacketId,
    pub(crate) delivery: Delivery,
    pub(crate) stage: Stage,
    /// Sent on an earlier connection and not yet sent again on this one.
    pub(crate) resend: bool,
}

/// A subscription as the session remembers it.
#[derive(Debug, Clone)]
pub(crate) struct StoredSubscription {
    pub(crate) filter: TopicFilter,
    pub(crate) options: SubscriptionOptions,
    pub(crate) id: Option<SubscriptionId>,
}

/// The will of the connection attached to the session.
#[derive(Debug, Clone)]
pub(crate) struct PendingWill {
    pub(crate) msg: Message,
    pub(crate) delay_secs: u32,
}

/// What a session carries only while messages flow: the queue, the in-flight window, the
/// inbound QoS 2 identifiers. Allocated on first use and released once it empties out while
/// the client is idle ([`SessionState::trim`]), so that an idle session holds none of it.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) queue: VecDeque<Delivery>,
    pub(crate) queue_bytes: usize,
    pub(crate) inflight: InflightWindow,
    pub(crate) incoming_qos2: HashSet<u16, foldhash::fast::RandomState>,
    next_packet_id: u16,
    /// Since when the queue has been full (reset once it drains below half), for the
    /// slow-consumer rule.
    pub(crate) full_since: Option<Instant>,
    /// The last read decision of the access rules, for the topic it was made on: a
    /// subscriber usually gets many messages on one topic in a row.
    read_cache: DecisionCache,
    /// The same for the last write decision (a publisher usually publishes to one topic).
    write_cache: DecisionCache,
}

/// One cached access decision (see [`SessionState::allowed`]).
#[derive(Debug, Default)]
struct DecisionCache {
    /// The ACL generation it was made under (0: none).
    generation: u64,
    /// Its topic (a buffer of its own, reused: not a slice pinning a publisher's buffer).
    topic: String,
    allowed: bool,
}

impl DecisionCache {
    fn hit(&self, generation: u64, topic: &str) -> Option<bool> {
        (self.generation == generation && self.topic == topic).then_some(self.allowed)
    }
}

impl Traffic {
    fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.inflight.len() == 0 && self.incoming_qos2.is_empty()
    }

    /// The next packet identifier not used by an in-flight message.
    pub(crate) fn allocate_packet_id(&mut self) -> Option<PacketId> {
        for _ in 0..=u16::MAX {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            let Some(id) = PacketId::new(self.next_packet_id) else {
                continue;
            };
            if !self.inflight.contains_id(id) {
                return Some(id);
            }
        }
        None
    }

    /// Takes the next queued delivery and updates the byte count.
    pub(crate) fn pop_queued(&mut self) -> Option<Delivery> {
        let d = self.queue.pop_front()?;
        self.queue_bytes = self.queue_bytes.saturating_sub(d.msg.cost_bytes());
        Some(d)
    }

    /// Queues a delivery and counts its bytes.
    pub(crate) fn push(&mut self, d: Delivery) {
        self.queue_bytes += d.msg.cost_bytes();
        self.queue.push_back(d);
    }
}

/// The mutable part of a session.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    pub(crate) subscriptions: HashMap<Box<str>, StoredSubscription, foldhash::fast::RandomState>,
    /// Boxed: see [`Traffic`].
    traffic: Option<Box<Traffic>>,
    /// The generation of the attached connection, if any.
    pub(crate) connection: Option<NonZeroU64>,
    /// A request for the attached connection to close with this reason.
    pub(crate) kick: Option<(NonZeroU64, ReasonCode)>,
    /// Session Expiry Interval in force, seconds (`u32::MAX`: never).
    pub(crate) expiry_secs: u32,
    pub(crate) disconnected_at: Option<Instant>,
    /// When the broker's schedule will next look at this session, in the schedule's
    /// milliseconds; 0: no check pending (see `Broker::schedule`).
    pub(crate) next_check: u64,
    /// Boxed: most sessions have none, and it is the largest field.
    pub(crate) will: Option<Box<PendingWill>>,
    /// When the attached connection last took messages from the queue.
    pub(crate) last_drain: Option<Instant>,
    /// Set once the session is discarded; nothing is queued to it after that.
    pub(crate) ended: bool,
    /// The user name the attached (or last) connection authenticated as: whose access
    /// rules apply to what is delivered to it and to its will.
    pub(crate) username: Option<Arc<str>>,
}

impl SessionState {
    /// Whether this session's client may receive a message on `topic` under `acl`.
    pub(crate) fn read_allowed(&mut self, acl: &Acl, client_id: &str, topic: &str) -> bool {
        self.allowed(acl, client_id, topic, Access::Read)
    }

    /// Whether a delivery on `topic` may be queued for this session's client: always
    /// without access rules; a refusal is counted (`Stats::deliveries_denied`).
    fn may_receive(
        &mut self,
        acl: Option<&Acl>,
        client_id: &str,
        topic: &str,
        stats: &Stats,
    ) -> bool {
        let Some(acl) = acl else {
            return true;
        };
        let allowed = self.read_allowed(acl, client_id, topic);
        if !allowed {
            Stats::add(&stats.deliveries_denied, 1);
        }
        allowed
    }

    /// Whether this session's client may publish to `topic` under `acl`.
    pub(crate) fn write_allowed(&mut self, acl: &Acl, client_id: &str, topic: &str) -> bool {
        self.allowed(acl, client_id, topic, Access::Write)
    }

    /// The access rules' decision, remembering the last one for each access: only a new
    /// topic, a new ACL (reload) or a new identity (a reconnect clears them) is checked
    /// again, so the rules cost next to nothing on a stream of messages on one topic.
    fn allowed(&mut self, acl: &Acl, client_id: &str, topic: &str, access: Access) -> bool {
        let generation = acl.generation();
        let cached = |t: &Traffic| {
            match access {
                Access::Read => &t.read_cache,
                Access::Write => &t.write_cache,
            }
            .hit(generation, topic)
        };
        if let Some(allowed) = self.traffic.as_deref().and_then(cached) {
            return allowed;
        }
        let who = Subject {
            client_id,
            username: self.username.as_deref(),
        };
        let allowed = acl.allows(&who, topic, access);
        let t = self.traffic();
        let cache = match access {
            Access::Read => &mut t.read_cache,
            Access::Write => &mut t.write_cache,
        };
        cache.generation = generation;
        cache.topic.clear();
        cache.topic.push_str(topic);
        cache.allowed = allowed;
        allowed
    }

    /// Forgets cached access decisions (the identity they were made for has changed).
    pub(crate) fn forget_access_decisions(&mut self) {
        if let Some(t) = self.traffic.as_deref_mut() {
            t.read_cache = DecisionCache::default();
            t.write_cache = DecisionCache::default();
        }
    }

    /// What the session's subscriptions count against `max_subscription_bytes_per_session`
    /// (`policy::subscription_cost`). Summed when asked rather than kept: it is
    /// asked only on SUBSCRIBE, of at most `max_subscriptions_per_session` entries, and a
    /// counter would cost every idle session 8 bytes.
    pub(crate) fn subscription_bytes(&self) -> usize {
        self.subscriptions
            .keys()
            .map(|k| crate::policy::subscription_cost(k))
            .sum()
    }

    /// The traffic state, allocated if the session had none.
    pub(crate) fn traffic(&mut self) -> &mut Traffic {
        self.traffic.get_or_insert_default()
    }

    /// The traffic state, if there is any.
    pub(crate) fn traffic_if_any(&self) -> Option<&Traffic> {
        self.traffic.as_deref()
    }

    /// The traffic state, if there is any, to change (acknowledgements for nothing in
    /// flight allocate none).
    pub(crate) fn traffic_mut_if_any(&mut self) -> Option<&mut Traffic> {
        self.traffic.as_deref_mut()
    }

    /// Messages waiting in the queue.
    pub(crate) fn queue_len(&self) -> usize {
        self.traffic.as_ref().map_or(0, |t| t.queue.len())
    }

    /// Checks the queue and in-flight window against their limits and the queue's byte
    /// count against its contents (see `Broker::check_invariants`).
    pub(crate) fn check_traffic(
        &self,
        cfg: &BrokerConfig,
        acl: Option<&Acl>,
        client_id: &str,
    ) -> Result<(), String> {
        let Some(t) = self.traffic.as_deref() else {
            return Ok(());
        };
        // Nothing waits for a client that it may not read (the rules do not change here
        // while a session lives: a session is resumed only by its own user).
        if let Some(acl) = acl {
            let who = Subject {
                client_id,
                username: self.username.as_deref(),
            };
            let queued = t.queue.iter().map(|d| &d.msg);
            let inflight = t.inflight.iter().map(|e| &e.delivery.msg);
            if let Some(m) = queued
                .chain(inflight)
                .find(|m| !acl.allows(&who, &m.topic, Access::Read))
            {
                return Err(format!("holds {} it may not read", m.topic.as_str()));
            }
        }
        let bytes: usize = t.queue.iter().map(|d| d.msg.cost_bytes()).sum();
        if bytes != t.queue_bytes {
            return Err(format!(
                "queue counts {} bytes, holds {bytes}",
                t.queue_bytes
            ));
        }
        if t.queue.len() > cfg.max_queued_messages || t.queue_bytes > cfg.max_queued_bytes {
            return Err(format!(
                "queue of {} messages, {} bytes over its limits",
                t.queue.len(),
                t.queue_bytes
            ));
        }
        if t.inflight.len() > usize::from(cfg.max_inflight) {
            return Err(format!("{} in flight", t.inflight.len()));
        }
        Ok(())
    }

    /// Makes every queued and in-flight message a compact, charged copy (when the client
    /// goes offline): a message queued while it was online is a slice of its publisher's
    /// read buffer, which it must not pin for the session's whole expiry, and it must count
    /// against the memory ceiling like any message kept for long.
    pub(crate) fn compact_for_offline(&mut self, meter: &Arc<std::sync::atomic::AtomicUsize>) {
        let Some(t) = self.traffic.as_deref_mut() else {
            return;
        };
        let keep = |d: &mut Delivery| {
            if !d.msg.held.is_charged() {
                d.msg = Arc::new(d.msg.compact().charged(meter));
            }
        };
        t.queue.iter_mut().for_each(keep);
        t.inflight.deliveries_mut().for_each(keep);
        // Packed properties cost less than unpacked ones: count again.
        t.queue_bytes = t.queue.iter().map(|d| d.msg.cost_bytes()).sum();
    }

    /// Releases the traffic state if nothing is queued or in flight.
    pub(crate) fn trim(&mut self) {
        if self.traffic.as_ref().is_some_and(|t| t.is_empty()) {
            self.traffic = None;
        }
    }

    /// Takes out the deliveries another member of their shared subscription may take over
    /// (section 4.8.2), for which `has_taker` says another member exists: those not yet
    /// sent, and QoS 1 ones sent but not acknowledged. QoS 2 messages already sent stay: they
    /// must be completed with this client [MQTT-4.8.2-4] [MQTT-4.8.2-5].
    pub(crate) fn take_shared_deliveries(
        &mut self,
        has_taker: impl Fn(&TopicFilter) -> bool,
    ) -> Vec<Delivery> {
        let takeable = |d: &Delivery| d.shared.as_ref().is_some_and(&has_taker);
        let mut taken = Vec::new();
        let Some(t) = self.traffic.as_deref_mut() else {
            return taken;
        };
        taken.extend(
            t.inflight
                .take_where(|e| takeable(&e.delivery) && e.delivery.qos == QoS::AtLeastOnce)
                .into_iter()
                .map(|e| e.delivery),
        );
        let mut queue = VecDeque::with_capacity(t.queue.len());
        for d in t.queue.drain(..) {
            if takeable(&d) {
                t.queue_bytes = t.queue_bytes.saturating_sub(d.msg.cost_bytes());
                taken.push(d);
            } else {
                queue.push_back(d);
            }
        }
        t.queue = queue;
        taken
    }

    /// Drops everything queued or in flight (a clean start, or the end of the session).
    pub(crate) fn clear_messages(&mut self) {
        self.traffic = None;
    }
}

/// A session, shared between the registry, the subscription trie and the attached
/// connection.
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    client_id: MqttString,
    state: Mutex<SessionState>,
    connected: AtomicBool,
    wake_pending: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Publishers waiting for room in the queue.
    /// Boxed: most sessions never have a publisher waiting, and an empty `Vec` inline would
    /// cost every idle session 16 bytes more (the 256-byte budget of an idle session).
    #[allow(clippy::box_collection)]
    space_waiters: Mutex<Option<Box<Vec<Waker>>>>,
    has_space_waiters: AtomicBool,
}

/// What [`Session::enqueue`] did with a delivery.
#[derive(Debug)]
pub(crate) enum Enqueued {
    Queued,
    /// Not queued by rule (QoS 0 to an offline client, or the session has ended).
    Skipped,
    /// Dropped because the queue is full and its client is not draining it.
    Dropped,
    /// The queue is full but its client is draining it: the publisher may wait for room
    /// and try again (back-pressure instead of loss).
    Full(Delivery),
}

/// A client that took messages from its queue this recently is draining it: publishers
/// wait for room rather than drop.
const ACTIVE_DRAIN: Duration = Duration::from_millis(100);

impl Session {
    pub(crate) fn new(id: SessionId, client_id: MqttString) -> Session {
        Session {
            id,
            client_id,
            state: Mutex::new(SessionState::default()),
            connected: AtomicBool::new(false),
            wake_pending: AtomicBool::new(false),
            waker: Mutex::new(None),
            space_waiters: Mutex::new(None),
            has_space_waiters: AtomicBool::new(false),
        }
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The client identifier the session belongs to.
    pub fn client_id(&self) -> &MqttString {
        &self.client_id
    }

    /// Whether a connection is attached.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Locks the session state. A poisoned lock (a panic elsewhere while holding it) still
    /// yields the state: it is plain data, left consistent between statements.
    pub(crate) fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session's subscriptions: filter, options and Subscription Identifier.
    pub fn subscriptions(&self) -> Vec<(TopicFilter, SubscriptionOptions, Option<SubscriptionId>)> {
        self.lock()
            .subscriptions
            .values()
            .map(|s| (s.filter.clone(), s.options, s.id))
            .collect()
    }

    /// Messages waiting in the queue (for tests and metrics).
    pub fn queued_len(&self) -> usize {
        self.lock().queue_len()
    }

    /// Registers the waker of the attached connection's task. Messages queued before it was
    /// registered found no one to wake; wake now so they are not left waiting.
    pub(crate) fn set_waker(&self, waker: Option<Waker>) {
        let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        *slot = waker;
        if let Some(w) = slot.as_ref()
            && self.wake_pending.load(Ordering::Acquire)
        {
            w.wake_by_ref();
        }
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
    }

    /// Wakes the attached connection, once per batch of pushes.
    pub(crate) fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.wake_now();
        }
    }

    /// Wakes the attached connection even if a wake-up is already pending (at shutdown:
    /// the connection may have handled the pending one before the shutdown began).
    pub(crate) fn wake_now(&self) {
        if let Some(w) = self
            .waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            w.wake_by_ref();
        }
    }

    /// Called by the connection before it drains the queue: later pushes wake it again.
    pub(crate) fn clear_wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }

    /// Registers a publisher's waker, woken when the queue has room again.
    pub(crate) fn wait_for_space(&self, waker: &Waker) {
        let mut slot = self.space_waiters.lock().unwrap_or_else(|e| e.into_inner());
        let waiters = slot.get_or_insert_default();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        self.has_space_waiters.store(true, Ordering::Release);
    }

    /// Wakes the publishers waiting for room (after the connection drained the queue).
    pub(crate) fn wake_space_waiters(&self) {
        if !self.has_space_waiters.swap(false, Ordering::AcqRel) {
            return;
        }
        let waiters =
            std::mem::take(&mut *self.space_waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for w in waiters.into_iter().flat_map(|b| *b) {
            w.wake();
        }
    }

    /// Queues the retained messages a new subscription receives [MQTT-3.3.1-6], within the
    /// queue's limits like any message (a client that subscribes over and over to many
    /// retained messages holds no more than its queue allows). Those beyond the limits are
    /// dropped and counted. Returns how many were queued.
    pub(crate) fn enqueue_retained(
        &self,
        deliveries: impl IntoIterator<Item = Delivery>,
        cfg: &BrokerConfig,
        stats: &Stats,
        acl: Option<&Acl>,
    ) -> usize {
        let mut guard = self.lock();
        if guard.ended {
            return 0;
        }
        let st = &mut *guard;
        let client_id = self.client_id.as_str();
        let mut queued = 0;
        let mut dropped = 0u64;
        for d in deliveries {
            if !st.may_receive(acl, client_id, &d.msg.topic, stats) {
                continue;
            }
            let t = st.traffic();
            let cost = d.msg.cost_bytes();
            if t.queue.len() >= cfg.max_queued_messages
                || t.queue_bytes + cost > cfg.max_queued_bytes
            {
                dropped += 1;
                continue;
            }
            t.push(d);
            queued += 1;
        }
        Stats::add(&stats.dropped_queue_full, dropped);
        queued
    }

    /// Queues a delivery within the configured limits and wakes the connection. When the
    /// queue is full, `may_wait` lets a publisher wait for room if the client is draining it
    /// ([`Enqueued::Full`]); otherwise the message is dropped for this client and counted.
    /// An offline session queues `offline_copy`, a compact copy of the message made once for
    /// every offline session it reaches (unless the message is one already).
    // The routing context comes in as separate arguments; bundling them into one routing
    // context is left for the next change of this path.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enqueue(
        &self,
        d: Delivery,
        cfg: &BrokerConfig,
        now: Instant,
        stats: &Stats,
        may_wait: bool,
        offline_copy: &OnceCell<Arc<Message>>,
        acl: Option<&Acl>,
    ) -> Enqueued {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.ended {
            return Enqueued::Skipped;
        }
        // Every delivery passes the subscriber's read rule, so a subscription to `#` gets
        // only the topics its client may read.
        if !st.may_receive(acl, self.client_id.as_str(), &d.msg.topic, stats) {
            return Enqueued::Skipped;
        }
        let online = st.connection.is_some();
        if !online && d.qos == QoS::AtMostOnce && !cfg.queue_qos0_offline {
            return Enqueued::Skipped;
        }
        // QoS 0 gives way first: it is refused once the queue is half full, so the room left
        // goes to messages the client was promised.
        let limit = if d.qos == QoS::AtMostOnce {
            cfg.max_queued_messages.div_ceil(2)
        } else {
            cfg.max_queued_messages
        };
        let cost = d.msg.cost_bytes();
        let t = st.traffic.get_or_insert_default();
        if t.queue.len() >= limit || t.queue_bytes + cost > cfg.max_queued_bytes {
            let mut kick = false;
            let mut wait = false;
            if online {
                let since = *t.full_since.get_or_insert(now);
                let timeout = Duration::from_secs(u64::from(cfg.slow_consumer_timeout_secs));
                kick = now.duration_since(since) >= timeout;
                if kick && let Some(generation) = st.connection {
                    st.kick = Some((generation, ReasonCode::QUOTA_EXCEEDED));
                }
                wait = may_wait
                    && !kick
                    && st
                        .last_drain
                        .is_some_and(|t| now.saturating_duration_since(t) < ACTIVE_DRAIN);
            }
            drop(guard);
            if kick {
                self.wake();
            }
            if wait {
                return Enqueued::Full(d);
            }
            Stats::add(&stats.dropped_queue_full, 1);
            return Enqueued::Dropped;
        }
        if !online && !d.msg.held.is_charged() {
            // It may wait here for long: not as a slice of its publisher's read buffer, and
            // charged to the memory ceiling. One copy serves every offline session.
            let msg = offline_copy
                .get_or_init(|| Arc::new(d.msg.compact().charged(stats.held_meter())))
                .clone();
            t.push(Delivery { msg, ..d });
        } else {
            t.push(d);
        }
        drop(guard);
        if online {
            self.wake();
        }
        Enqueued::Queued
    }
}
