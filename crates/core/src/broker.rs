//! The state every connection shares: the subscription trie, retained messages, the session
//! registry and the schedule of delayed wills and session expiries.
//!
//! Its methods are synchronous and hold each lock only for a lookup or an update; routing a
//! message takes the trie's read lock and, for each target, that session's lock in turn.
//! Lock order: registry, then trie or retained tree, then one session.

use crate::acl::{Access, Acl, Subject};
use crate::auth::{AuthHooks, Authenticator, EnhancedAuthenticator};
use crate::config::BrokerConfig;
use crate::flapping::Flapping;
use crate::message::{Message, SessionId};
use crate::policy;
use crate::retained::{NotStored, RetainedTree};
use crate::session::{Delivery, Enqueued, PendingWill, Session};
use crate::stats::{Limit, Stats};
use crate::trie::{Match, Subscriber, SubscriptionTrie};
use halyard_codec::{MqttString, ReasonCode, SubscriptionId, SubscriptionOptions, TopicFilter};
use std::borrow::Borrow;
use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};

/// A session to look at again at a given time (its will delay or expiry may have run out).
/// The time is milliseconds since the broker started, which keeps an entry to 16 bytes.
struct Due {
    at_ms: u64,
    session: Weak<Session>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at_ms == other.at_ms
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at_ms.cmp(&other.at_ms)
    }
}

/// A registry entry: a session, found by its client identifier, which the session holds
/// (so the identifier is not stored twice for every client).
#[derive(Debug, Clone)]
struct ByClientId(Arc<Session>);

impl ByClientId {
    fn key(&self) -> &str {
        self.0.client_id().as_str()
    }
}

impl Borrow<str> for ByClientId {
    fn borrow(&self) -> &str {
        self.key()
    }
}

impl Hash for ByClientId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for ByClientId {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ByClientId {}

/// The schedule is not pruned below this length (see `Broker::prune_schedule`).
const SCHEDULE_PRUNE_FROM: usize = 1024;

/// What publishing a message did.
#[derive(Debug, Default)]
pub(crate) struct Routed {
    /// Subscriptions that matched.
    pub(crate) matched: usize,
    /// Deliveries whose subscriber's queue was full while it was draining it: the
    /// publisher should wait for room and try them again.
    pub(crate) blocked: Vec<(Arc<Session>, Delivery)>,
}

/// The result of opening a session for a new connection.
pub(crate) struct Opened {
    pub(crate) session: Arc<Session>,
    pub(crate) present: bool,
}

/// The shared broker state.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    stats: Stats,
    auth: AuthHooks,
    trie: RwLock<SubscriptionTrie>,
    retained: RwLock<RetainedTree>,
    sessions: Mutex<HashSet<ByClientId, foldhash::fast::RandomState>>,
    schedule: Mutex<BinaryHeap<Reverse<Due>>>,
    /// The access rules in force (`None`: everything allowed); replaced at reload.
    acl: RwLock<Option<Arc<Acl>>>,
    /// Whether `acl` holds rules (read without the lock on every PUBLISH).
    acl_enabled: std::sync::atomic::AtomicBool,
    /// The schedule's length past which `prune_schedule` looks for stale entries.
    schedule_prune_above: std::sync::atomic::AtomicUsize,
    /// Recent connections per client identifier, for the flapping rule.
    flapping: Flapping,
    /// The origin of the schedule's times.
    epoch: Instant,
    next_id: AtomicU64,
    id_salt: u64,
}

impl std::fmt::Debug for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Due({:?})", self.at_ms)
    }
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // The protected data is left consistent between statements, so a poisoned lock (a panic
    // elsewhere) still holds usable state.
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broker {
    /// A broker with the given settings and authentication.
    pub fn new(config: BrokerConfig, mut auth: AuthHooks) -> Arc<Broker> {
        use std::hash::BuildHasher;
        let id_salt = std::collections::hash_map::RandomState::new().hash_one(0x4841_4c59u32);
        let flapping = Flapping::new(config.flapping_max_connects, config.flapping_window_secs);
        let acl = auth.acl.take().map(Arc::new);
        let acl_enabled = std::sync::atomic::AtomicBool::new(acl.is_some());
        let acl = RwLock::new(acl);
        Arc::new(Broker {
            config,
            stats: Stats::default(),
            auth,
            trie: RwLock::default(),
            retained: RwLock::default(),
            sessions: Mutex::default(),
            schedule: Mutex::default(),
            acl,
            acl_enabled,
            schedule_prune_above: std::sync::atomic::AtomicUsize::new(SCHEDULE_PRUNE_FROM),
            flapping,
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
            id_salt,
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The broker's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn authenticator(&self) -> &dyn Authenticator {
        self.auth.authenticator.as_ref()
    }

    /// The authenticator, for the shell to run its slow checks (`Authenticator::verify`) on
    /// its blocking pool.
    pub fn authenticator_handle(&self) -> Arc<dyn Authenticator> {
        self.auth.authenticator.clone()
    }

    /// The enhanced authentication method called `name`, if the broker has one.
    pub(crate) fn auth_method(&self, name: &str) -> Option<&dyn EnhancedAuthenticator> {
        self.auth
            .methods
            .iter()
            .find(|m| m.method() == name)
            .map(|m| m.as_ref())
    }

    /// A number unique for this broker's lifetime (session ids, connection generations).
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A client identifier for a client that sent none: unique, and unlikely to repeat
    /// across restarts.
    pub(crate) fn assign_client_id(&self) -> MqttString {
        loop {
            let n = self.next_id() ^ self.id_salt;
            let id = MqttString::try_from(format!("halyard-{n:016x}")).unwrap_or_default();
            // Unique among the sessions that exist [MQTT-3.2.2-16].
            if !lock(&self.sessions).contains(id.as_str()) {
                return id;
            }
        }
    }

    /// Wakes the connection attached to every session (at shutdown, so that parked
    /// connections notice it).
    pub fn wake_connections(&self) {
        let all: Vec<Arc<Session>> = lock(&self.sessions).iter().map(|e| e.0.clone()).collect();
        for s in all {
            s.wake_now();
        }
    }

    /// Number of sessions in the registry.
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// The session of `client_id`, if one exists.
    pub fn session(&self, client_id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(client_id).map(|e| e.0.clone())
    }

    /// Number of subscriptions in the trie.
    pub fn subscription_count(&self) -> usize {
        read(&self.trie).len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        read(&self.retained).len()
    }

    /// Publishes a message: updates the retained store if it is retained, then routes it to
    /// every matching subscription. Returns how many subscriptions matched (whether or not
    /// every one could take it). A subscriber whose queue is full drops it; a retained
    /// message the retained budgets refuse is still routed (wills and broker messages have
    /// no one to tell).
    pub fn publish(&self, msg: Message, now: Instant) -> usize {
        match self.publish_from_client(msg, now, false) {
            Ok(routed) => routed.matched,
            Err((_, routed)) => routed.matched,
        }
    }

    /// Publishes a will, if its client may publish to its topic [MQTT-3.1.2-8]: the access
    /// rules are checked when it is published (they may have changed since CONNECT), with
    /// the identity the client connected with.
    fn publish_will(&self, client_id: &str, username: Option<&str>, msg: Message, now: Instant) {
        if let Some(acl) = self.acl() {
            let who = Subject {
                client_id,
                username,
            };
            if !acl.allows(&who, &msg.topic, Access::Write) {
                Stats::add(&self.stats.publish_denied, 1);
                return;
            }
        }
        self.publish(msg, now);
    }

    /// The access rules in force, if any. Without any, this is one relaxed load: the
    /// PUBLISH path pays nothing for access control it does not use.
    pub(crate) fn acl(&self) -> Option<Arc<Acl>> {
        if !self.acl_enabled.load(Ordering::Relaxed) {
            return None;
        }
        read(&self.acl).clone()
    }

    /// Calls `f` with the access rules in force, if any, under their lock (no reference
    /// count taken: the PUBLISH path's way). Lock order: the rules' lock before the trie's
    /// and the sessions'; only a reload takes it for writing, and holds nothing else then.
    pub(crate) fn with_acl<R>(&self, f: impl FnOnce(Option<&Acl>) -> R) -> R {
        if !self.acl_enabled.load(Ordering::Relaxed) {
            return f(None);
        }
        f(read(&self.acl).as_deref())
    }

    /// Replaces the access rules (at reload); decisions from now on use the new ones.
    pub fn set_acl(&self, acl: Option<Acl>) {
        let mut slot = write(&self.acl);
        self.acl_enabled.store(acl.is_some(), Ordering::Relaxed);
        *slot = acl.map(Arc::new);
    }

    /// The SUBACK reason code for a filter the access rules refuse (MQTT 5).
    pub(crate) fn subscribe_denied(&self) -> ReasonCode {
        self.auth.subscribe_denied
    }

    /// [`Broker::publish`] for a client's message: with `may_wait`, deliveries to
    /// subscribers whose full queue they are draining come back in `blocked` instead of
    /// being dropped. A retained message the retained tree refuses (its budgets, 0x97) is
    /// an error, and a client's message then goes nowhere; [`Broker::publish`] routes it
    /// all the same.
    pub(crate) fn publish_from_client(
        &self,
        mut msg: Message,
        now: Instant,
        may_wait: bool,
    ) -> Result<Routed, (ReasonCode, Routed)> {
        if msg.expires_at.is_none()
            && let Some(secs) = msg.properties.message_expiry_interval
        {
            // The Message Expiry Interval runs from when the broker publishes the message.
            msg.expires_at = Some(now + Duration::from_secs(u64::from(secs)));
        }
        let mut refused = None;
        let msg = if msg.retain && self.config.retain_available {
            // Kept for long: one compact copy, held by the tree and routed, so offline
            // queues share it too.
            let kept = if msg.payload.is_empty() {
                Arc::new(msg)
            } else {
                Arc::new(msg.compact().charged(self.stats.held_meter()))
            };
            let stored = write(&self.retained).set(
                kept.clone(),
                self.config.max_retained_messages,
                self.config.max_retained_bytes,
                now,
            );
            if let Err(e) = stored {
                self.stats.limit_hit(match e {
                    NotStored::TooDeep => Limit::TopicSize,
                    NotStored::OverBudget => Limit::Retained,
                });
                refused = Some(ReasonCode::QUOTA_EXCEEDED);
            }
            kept
        } else {
            Arc::new(msg)
        };
        match refused {
            Some(rc) if may_wait => Err((rc, Routed::default())),
            Some(rc) => Err((rc, self.route(&msg, now, false))),
            None => Ok(self.route(&msg, now, may_wait)),
        }
    }

    /// Queues `msg` for every session with a matching subscription: one copy per session at
    /// the highest QoS of its overlapping subscriptions, with all their Subscription
    /// Identifiers [MQTT-3.3.4-2] [MQTT-3.3.4-3], and one copy per shared group to a member
    /// picked in turn.
    fn route(&self, msg: &Arc<Message>, now: Instant, may_wait: bool) -> Routed {
        self.with_acl(|acl| self.route_under(msg, now, may_wait, acl))
    }

    /// [`Broker::route`] with the access rules in force.
    fn route_under(
        &self,
        msg: &Arc<Message>,
        now: Instant,
        may_wait: bool,
        acl: Option<&Acl>,
    ) -> Routed {
        let trie = read(&self.trie);
        let mut direct: Vec<&Subscriber> = Vec::new();
        let mut shared: Vec<(&Subscriber, &TopicFilter)> = Vec::new();
        trie.for_each_match(&msg.topic, |m| match m {
            Match::Direct(s) => {
                // [MQTT-3.8.3-3] No Local: not back to the publisher's own session.
                if !(s.options.no_local && msg.origin == Some(s.session.id())) {
                    direct.push(s);
                }
            }
            Match::Shared(g) => {
                let picked = match acl {
                    None => g.pick(),
                    Some(acl) => g.pick_where(|s| {
                        let client_id = s.session.client_id().as_str();
                        s.session.lock().read_allowed(acl, client_id, &msg.topic)
                    }),
                };
                if let Some(s) = picked {
                    shared.push((s, &g.filter));
                }
            }
        });
        if direct.len() > 1 {
            direct.sort_by_key(|s| s.session.id());
        }
        let mut routed = Routed::default();
        // One compact copy for every offline session that queues it, made on first need.
        let offline_copy = OnceCell::new();
        let mut i = 0;
        while let Some(first) = direct.get(i) {
            let session = &first.session;
            let mut granted = first.options.qos;
            let mut rap = first.options.retain_as_published;
            let mut ids: Vec<SubscriptionId> = first.id.into_iter().collect();
            i += 1;
            while let Some(next) = direct.get(i).filter(|s| s.session.id() == session.id()) {
                granted = granted.max(next.options.qos);
                rap |= next.options.retain_as_published;
                ids.extend(next.id);
                i += 1;
            }
            let d = Delivery {
                msg: msg.clone(),
                qos: msg.qos.min(granted),
                // [MQTT-3.3.1-12] / [MQTT-3.3.1-13]: RETAIN is kept only with Retain As
                // Published.
                retain: rap && msg.retain,
                sub_ids: ids,
                shared: None,
            };
            self.deliver(session, d, (now, may_wait, acl), &offline_copy, &mut routed);
        }
        for (s, filter) in shared {
            let d = Delivery {
                msg: msg.clone(),
                qos: msg.qos.min(s.options.qos),
                retain: false,
                sub_ids: s.id.into_iter().collect(),
                shared: Some(filter.clone()),
            };
            self.deliver(
                &s.session,
                d,
                (now, may_wait, acl),
                &offline_copy,
                &mut routed,
            );
        }
        routed
    }

    /// Queues a delivery; counts one matching subscriber whatever its queue did with it.
    fn deliver(
        &self,
        session: &Arc<Session>,
        d: Delivery,
        (now, may_wait, acl): (Instant, bool, Option<&Acl>),
        offline_copy: &OnceCell<Arc<Message>>,
        routed: &mut Routed,
    ) {
        routed.matched += 1;
        let queued = session.enqueue(
            d,
            &self.config,
            now,
            &self.stats,
            may_wait,
            offline_copy,
            acl,
        );
        if let Enqueued::Full(d) = queued {
            routed.blocked.push((session.clone(), d));
        }
    }

    /// Tries again a delivery that found its subscriber's queue full; `may_wait` false drops
    /// it if the queue is still full. Returns it if the publisher should keep waiting.
    pub(crate) fn retry(
        &self,
        session: &Session,
        d: Delivery,
        now: Instant,
        may_wait: bool,
    ) -> Option<Delivery> {
        let acl = self.acl();
        match session.enqueue(
            d,
            &self.config,
            now,
            &self.stats,
            may_wait,
            &OnceCell::new(),
            acl.as_deref(),
        ) {
            Enqueued::Full(d) => Some(d),
            _ => None,
        }
    }

    /// Gives the shared-subscription messages of a departing member to other members of
    /// their groups; what no other member can take stays with the session as it was.
    fn redistribute_shared(&self, session: &Arc<Session>, now: Instant) {
        let acl = self.acl();
        let trie = read(&self.trie);
        let other = |f: &TopicFilter| {
            trie.shared_group(f)
                .and_then(|g| g.pick_excluding(Some(session.id())))
        };
        let taken = session
            .lock()
            .take_shared_deliveries(|f| other(f).is_some());
        for d in taken {
            // Membership cannot change while the trie's read lock is held.
            if let Some(member) = d.shared.as_ref().and_then(other) {
                let d = Delivery {
                    qos: d.msg.qos.min(member.options.qos),
                    sub_ids: member.id.into_iter().collect(),
                    ..d
                };
                member.session.enqueue(
                    d,
                    &self.config,
                    now,
                    &self.stats,
                    false,
                    &OnceCell::new(),
                    acl.as_deref(),
                );
            }
        }
    }

    /// Adds or replaces a subscription. Returns whether the session already had one to the
    /// same filter, or why it was refused: the session's subscription budget (0x97), a
    /// filter deeper than the trie holds (0x8F), or a session that has ended (taken over
    /// while its old connection still sent SUBSCRIBE: 0x80).
    ///
    /// The trie's write lock is held across the session's update (lock order: trie, then
    /// session), so a session ending meanwhile either is seen as ended here or finds this
    /// subscription when it clears its own: none is left in the trie for a dead session.
    pub(crate) fn subscribe(
        &self,
        session: &Arc<Session>,
        filter: &TopicFilter,
        options: SubscriptionOptions,
        id: Option<SubscriptionId>,
    ) -> Result<bool, ReasonCode> {
        // Kept for the subscription's life: not a slice of the read buffer.
        let filter = &filter.compact();
        let mut trie = write(&self.trie);
        let mut st = session.lock();
        if st.ended {
            return Err(ReasonCode::UNSPECIFIED_ERROR);
        }
        if !st.subscriptions.contains_key(filter.as_str()) {
            policy::check_subscription_budget(
                &self.config,
                &self.stats,
                st.subscriptions.len(),
                || st.subscription_bytes(),
                filter,
            )?;
        }
        let sub = Subscriber {
            session: session.clone(),
            options,
            id,
        };
        let Some(existed) = trie.insert(filter, sub) else {
            self.stats.limit_hit(Limit::TopicSize);
            return Err(ReasonCode::TOPIC_FILTER_INVALID);
        };
        let stored = crate::session::StoredSubscription {
            filter: filter.clone(),
            options,
            id,
        };
        st.subscriptions.insert(filter.as_str().into(), stored);
        Ok(existed)
    }

    /// Removes a subscription. Returns whether it existed.
    pub(crate) fn unsubscribe(&self, session: &Arc<Session>, filter: &TopicFilter) -> bool {
        let removed = write(&self.trie).remove(filter, session.id());
        session.lock().subscriptions.remove(filter.as_str());
        removed
    }

    /// Checks the broker's invariants: the registry, the trie and each session agree and
    /// keep within their budgets; the retained tree's counts are right. For the simulation
    /// tests and the fuzz target (it walks everything: not for production paths).
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let cfg = &self.config;
        let sessions: Vec<Arc<Session>> =
            lock(&self.sessions).iter().map(|e| e.0.clone()).collect();
        if sessions.len() > cfg.max_sessions {
            return Err(format!("{} sessions over max_sessions", sessions.len()));
        }
        let mut subscriptions = 0;
        for s in &sessions {
            let st = s.lock();
            if st.ended {
                return Err(format!("ended session {} still registered", s.client_id()));
            }
            subscriptions += st.subscriptions.len();
            if st.subscriptions.len() > cfg.max_subscriptions_per_session
                || st.subscription_bytes() > cfg.max_subscription_bytes_per_session
            {
                return Err(format!("{} over its subscription budget", s.client_id()));
            }
            let acl = read(&self.acl).clone();
            st.check_traffic(cfg, acl.as_deref(), s.client_id().as_str())
                .map_err(|e| format!("{}: {e}", s.client_id()))?;
        }
        let in_trie = read(&self.trie).len();
        if in_trie != subscriptions {
            return Err(format!(
                "trie holds {in_trie} subscriptions, sessions {subscriptions}"
            ));
        }
        let retained = read(&self.retained);
        retained.check_counts()?;
        if retained.len() > cfg.max_retained_messages || retained.bytes() > cfg.max_retained_bytes {
            return Err("retained messages over their budget".into());
        }
        Ok(())
    }

    /// Whether `extra` more bytes fit under the memory ceiling (`memory_limit_bytes`);
    /// counts a refusal when they do not. For the shell, before it buffers more of a large
    /// packet.
    pub fn memory_available(&self, extra: usize) -> bool {
        let limit = self.config.memory_limit_bytes;
        if limit == 0 || self.stats.held_bytes().saturating_add(extra) <= limit {
            return true;
        }
        self.stats.limit_hit(Limit::Memory);
        false
    }

    /// Cost in bytes of the retained messages held.
    pub fn retained_bytes(&self) -> usize {
        read(&self.retained).bytes()
    }

    /// The flapping rule: counts a connection of `client_id` at `now`, and refuses it
    /// (0x9F Connection rate exceeded) past `flapping_max_connects` in one window.
    pub(crate) fn check_flapping(&self, client_id: &str, now: Instant) -> Result<(), ReasonCode> {
        let now_ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        if self.flapping.admit(client_id, now_ms) {
            Ok(())
        } else {
            self.stats.limit_hit(Limit::Flapping);
            Err(ReasonCode::CONNECTION_RATE_EXCEEDED)
        }
    }

    /// Up to `most` live retained messages matching `filter`.
    pub(crate) fn retained_matches(
        &self,
        filter: &str,
        now: Instant,
        most: usize,
    ) -> Vec<Arc<Message>> {
        let mut found = Vec::new();
        if most == 0 {
            return found;
        }
        read(&self.retained).for_each_match(filter, |m| {
            if !m.is_expired(now) {
                found.push(m.clone());
            }
            found.len() < most
        });
        found
    }

    /// Finds or creates the session for a connecting client (section 3.1.2.4). A session
    /// still attached to another connection is taken over: that connection is asked to close
    /// with 0x8E, and its will is published now if it had no delay or the session ends.
    pub(crate) fn open_session(
        &self,
        client_id: &MqttString,
        username: Option<Arc<str>>,
        clean_start: bool,
        generation: NonZeroU64,
        now: Instant,
    ) -> Result<Opened, ReasonCode> {
        let mut wills = Vec::new();
        let mut ended = None;
        let opened = {
            let mut registry = lock(&self.sessions);
            let existing = registry.get(client_id.as_str()).map(|e| e.0.clone());
            if existing.is_none() && registry.len() >= self.config.max_sessions {
                self.stats.limit_hit(Limit::Sessions);
                return Err(ReasonCode::QUOTA_EXCEEDED);
            }
            // A session whose expiry is 0 ends with the connection being taken over, so it
            // cannot be resumed [MQTT-3.1.2-6] [MQTT-4.1.0-2].
            // Nor does another user resume a session: its queued messages passed its owner's
            // read rules, not the newcomer's (the old session ends instead).
            let resumable = existing.as_ref().is_some_and(|s| {
                let st = s.lock();
                !(st.connection.is_some() && st.expiry_secs == 0) && st.username == username
            });
            match existing {
                Some(session) if !clean_start && resumable => {
                    let mut st = session.lock();
                    if let Some(old) = st.connection {
                        st.kick = Some((old, ReasonCode::SESSION_TAKEN_OVER));
                    }
                    // A new connection before the Will Delay Interval ends cancels the will
                    // [MQTT-3.1.3-9]; one with no delay is due now.
                    if let Some(w) = st.will.take()
                        && st.connection.is_some()
                        && w.delay_secs == 0
                    {
                        wills.push((w.msg, st.username.clone()));
                    }
                    st.connection = Some(generation);
                    st.disconnected_at = None;
                    st.forget_access_decisions();
                    drop(st);
                    session.wake();
                    Opened {
                        session,
                        present: true,
                    }
                }
                other => {
                    if let Some(old) = other {
                        let mut st = old.lock();
                        if let Some(g) = st.connection {
                            st.kick = Some((g, ReasonCode::SESSION_TAKEN_OVER));
                        }
                        if let Some(w) = st.will.take() {
                            wills.push((w.msg, st.username.clone()));
                        }
                        drop(st);
                        old.wake();
                        ended = Some(old);
                    }
                    // A plain copy of the identifier: a clone would add a shared header.
                    let session =
                        Arc::new(Session::new(SessionId(self.next_id()), client_id.compact()));
                    {
                        let mut st = session.lock();
                        st.connection = Some(generation);
                        st.username = username;
                    }
                    registry.replace(ByClientId(session.clone()));
                    Opened {
                        session,
                        present: false,
                    }
                }
            }
        };
        if let Some(old) = ended {
            self.discard(&old);
        }
        for (w, username) in wills {
            self.publish_will(client_id.as_str(), username.as_deref(), w, now);
        }
        Ok(opened)
    }

    /// Ends a session: out of the registry (if still registered), out of the trie, nothing
    /// queued to it any more. Its pending will, if any, is published.
    pub(crate) fn end_session(&self, session: &Arc<Session>, now: Instant) {
        {
            let mut registry = lock(&self.sessions);
            let key = session.client_id().as_str();
            if registry
                .get(key)
                .is_some_and(|e| Arc::ptr_eq(&e.0, session))
            {
                registry.remove(key);
            }
        }
        let (will, username) = {
            let mut st = session.lock();
            (st.will.take(), st.username.clone())
        };
        self.discard(session);
        if let Some(w) = will {
            let client_id = session.client_id().as_str();
            self.publish_will(client_id, username.as_deref(), w.msg, now);
        }
    }

    /// Marks a session ended and removes its subscriptions from the trie.
    fn discard(&self, session: &Arc<Session>) {
        let subs: Vec<TopicFilter> = {
            let mut st = session.lock();
            st.ended = true;
            st.clear_messages();
            st.subscriptions.drain().map(|(_, s)| s.filter).collect()
        };
        let mut trie = write(&self.trie);
        for f in subs {
            trie.remove(&f, session.id());
        }
    }

    /// Asks `tick` to look at `session` at `at`.
    ///
    /// A session has at most one check pending unless a new one is earlier: a client that
    /// connects and disconnects over and over cannot grow the schedule (a pending check that
    /// finds nothing due schedules the next one itself).
    pub(crate) fn schedule(&self, session: &Arc<Session>, at: Instant) {
        // Rounded up, so that nothing is looked at early; never 0 (which means "none").
        let since = at.saturating_duration_since(self.epoch);
        let at_ms = u64::try_from(since.as_nanos().div_ceil(1_000_000))
            .unwrap_or(u64::MAX)
            .max(1);
        {
            let mut st = session.lock();
            if st.next_check != 0 && st.next_check <= at_ms {
                return;
            }
            st.next_check = at_ms;
        }
        lock(&self.schedule).push(Reverse(Due {
            at_ms,
            session: Arc::downgrade(session),
        }));
    }

    /// Publishes delayed wills and ends expired sessions that are due at `now`. Returns when
    /// it next has work, so the caller can sleep until then.
    pub fn tick(&self, now: Instant) -> Option<Instant> {
        let now_ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        self.prune_schedule();
        loop {
            let due = {
                let mut schedule = lock(&self.schedule);
                match schedule.peek() {
                    Some(Reverse(d)) if d.at_ms <= now_ms => schedule.pop(),
                    Some(Reverse(d)) => return Some(self.epoch + Duration::from_millis(d.at_ms)),
                    None => return None,
                }
            };
            if let Some(Reverse(d)) = due
                && let Some(session) = d.session.upgrade()
            {
                {
                    let mut st = session.lock();
                    if st.next_check == d.at_ms {
                        st.next_check = 0;
                    }
                }
                self.check_offline_session(&session, now);
            }
        }
    }

    /// Drops the schedule's stale entries once they may be most of it: those of sessions
    /// that have gone (ended, or replaced by a clean start), whose `Weak` holds the dead
    /// session's allocation until they come due (with a long expiry, never), and those a
    /// later, earlier check superseded. A client churning sessions or shortening its expiry
    /// over and over would otherwise grow the schedule without bound. It runs when the
    /// schedule has doubled since the last prune: amortized O(1) per entry. Lock order here:
    /// the schedule, then one session at a time (nothing takes them the other way round).
    fn prune_schedule(&self) {
        let mut schedule = lock(&self.schedule);
        if schedule.len() <= self.schedule_prune_above.load(Ordering::Relaxed) {
            return;
        }
        schedule.retain(|Reverse(d)| {
            d.session
                .upgrade()
                .is_some_and(|s| s.lock().next_check == d.at_ms)
        });
        let above = (2 * schedule.len()).max(SCHEDULE_PRUNE_FROM);
        self.schedule_prune_above.store(above, Ordering::Relaxed);
    }

    /// Schedule entries (for tests).
    #[doc(hidden)]
    pub fn schedule_len(&self) -> usize {
        lock(&self.schedule).len()
    }

    /// Fires the will of an offline session whose delay ran out, and ends the session if its
    /// expiry ran out (which also fires a will still waiting) [MQTT-3.1.2-8].
    fn check_offline_session(&self, session: &Arc<Session>, now: Instant) {
        let (will, expired, next) = {
            let mut st = session.lock();
            let Some(since) = st.disconnected_at.filter(|_| st.connection.is_none()) else {
                return;
            };
            let expiry = Duration::from_secs(u64::from(st.expiry_secs));
            let expired = st.expiry_secs != u32::MAX && now >= since + expiry;
            let will_due = st
                .will
                .as_ref()
                .is_some_and(|w| now >= since + Duration::from_secs(u64::from(w.delay_secs)));
            let will = if will_due || expired {
                st.will.take()
            } else {
                None
            };
            // What is due next: a will still waiting, or the session's expiry.
            let will_at = st
                .will
                .as_ref()
                .map(|w| since + Duration::from_secs(u64::from(w.delay_secs)));
            let expires_at = (!expired && st.expiry_secs != u32::MAX).then(|| since + expiry);
            let next = match (will_at, expires_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (will.map(|w| (w, st.username.clone())), expired, next)
        };
        if let Some((w, username)) = will {
            let client_id = session.client_id().as_str();
            self.publish_will(client_id, username.as_deref(), w.msg, now);
        }
        if expired {
            self.end_session(session, now);
        } else if let Some(at) = next {
            self.schedule(session, at);
        }
    }

    /// Handles a connection leaving its session: the will (now, later or never), and the
    /// session's end or its expiry schedule.
    pub(crate) fn detach(
        &self,
        session: &Arc<Session>,
        generation: NonZeroU64,
        publish_will: bool,
        now: Instant,
    ) {
        if session.lock().connection != Some(generation) {
            // Taken over: the new connection owns the session and decided about the will.
            return;
        }
        self.redistribute_shared(session, now);
        let (will_now, ends, next_check) = {
            let mut st = session.lock();
            if st.connection != Some(generation) {
                return;
            }
            st.connection = None;
            st.kick = None;
            st.disconnected_at = Some(now);
            session.set_connected(false);
            session.set_waker(None);
            if !publish_will {
                st.will = None;
            }
            let ends = st.expiry_secs == 0;
            if !ends {
                st.compact_for_offline(self.stats.held_meter());
            }
            let will_now = match &st.will {
                Some(w) if w.delay_secs == 0 || ends => st.will.take(),
                _ => None,
            };
            let mut next: Option<Instant> = None;
            if let Some(w) = &st.will {
                next = Some(now + Duration::from_secs(u64::from(w.delay_secs)));
            }
            if !ends && st.expiry_secs != u32::MAX {
                let at = now + Duration::from_secs(u64::from(st.expiry_secs));
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            let username = st.username.clone();
            (
                will_now.map(|w: Box<PendingWill>| (w.msg, username)),
                ends,
                next,
            )
        };
        if let Some((w, username)) = will_now {
            let client_id = session.client_id().as_str();
            self.publish_will(client_id, username.as_deref(), w, now);
        }
        if ends {
            self.end_session(session, now);
        } else if let Some(at) = next_check {
            self.schedule(session, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Connection;
    use halyard_codec::{Connect, ConnectProperties, Packet, ProtocolVersion};

    /// CONNECT 5.0 of `id`, clean start, no keep-alive.
    fn connect(id: &str) -> Connect {
        Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive_secs: 0,
            properties: ConnectProperties::default(),
            client_id: MqttString::new(id).unwrap(),
            will: None,
            username: None,
            password: None,
        }
    }

    /// Found by the simulation (regression in proptest-regressions/simulation.txt): a
    /// connection whose session was taken over could still SUBSCRIBE before it noticed,
    /// leaving a subscription of a dead session in the trie for ever.
    #[test]
    fn a_taken_over_connection_cannot_leave_a_subscription_behind() {
        let broker = Broker::new(BrokerConfig::default(), AuthHooks::default());
        let now = Instant::now();
        let mut old = Connection::new(broker.clone(), now);
        old.handle_packet(now, Packet::from(connect("x"))).unwrap();
        let mut new = Connection::new(broker.clone(), now);
        new.handle_packet(now, Packet::from(connect("x"))).unwrap();
        let subscribe = halyard_codec::Subscribe {
            packet_id: halyard_codec::PacketId::new(1).unwrap(),
            properties: Default::default(),
            filters: vec![(
                TopicFilter::new("a").unwrap(),
                SubscriptionOptions::with_qos(halyard_codec::QoS::AtMostOnce),
            )],
        };
        let _ = old.handle_packet(now, Packet::Subscribe(subscribe));
        assert_eq!(broker.subscription_count(), 0);
        broker.check_invariants().unwrap();
    }

    /// A broker without the flapping rule (these tests reconnect in a tight loop on purpose).
    fn broker_without_flapping() -> Arc<Broker> {
        let config = BrokerConfig {
            flapping_max_connects: 0,
            ..BrokerConfig::default()
        };
        Broker::new(config, AuthHooks::default())
    }

    /// Connects `id` (5.0, with `expiry`) at `t`, then loses the connection.
    fn connect_and_lose(
        broker: &Arc<Broker>,
        id: &str,
        clean_start: bool,
        expiry: u32,
        t: Instant,
    ) {
        let mut conn = Connection::new(broker.clone(), t);
        let mut connect = connect(id);
        connect.clean_start = clean_start;
        connect.properties.session_expiry_interval = Some(expiry);
        conn.handle_packet(t, Packet::from(connect)).unwrap();
        assert!(conn.is_active());
        let _ = conn.handle_connection_lost(t);
    }

    /// Sessions replaced by a clean start leave their schedule entries behind (due in a
    /// day here); the ticker prunes them once they are most of the schedule.
    #[test]
    fn churned_sessions_do_not_grow_the_schedule_without_bound() {
        let broker = broker_without_flapping();
        let now = Instant::now();
        for i in 0..10_000u64 {
            let t = now + Duration::from_micros(i);
            connect_and_lose(&broker, "churn", true, 86_400, t);
            broker.tick(t);
        }
        assert_eq!(broker.session_count(), 1);
        assert!(broker.schedule_len() <= 1025, "{}", broker.schedule_len());
    }

    /// A live session whose client keeps shortening its expiry pushes an earlier check each
    /// time; the later ones it supersedes are pruned too.
    #[test]
    fn superseded_checks_do_not_grow_the_schedule_without_bound() {
        let broker = broker_without_flapping();
        let now = Instant::now();
        for i in 0..10_000u32 {
            let t = now + Duration::from_micros(u64::from(i));
            connect_and_lose(&broker, "shrinking", false, 1_000_000 - i, t);
            broker.tick(t);
        }
        assert!(broker.schedule_len() <= 1025, "{}", broker.schedule_len());
    }

    #[test]
    fn reconnecting_over_and_over_does_not_grow_the_schedule() {
        let broker = broker_without_flapping();
        let now = Instant::now();
        for i in 0..1000u64 {
            let t = now + Duration::from_millis(i);
            connect_and_lose(&broker, "flapping", false, 86_400, t);
        }
        assert_eq!(lock(&broker.schedule).len(), 1);
    }
}
