//! The subscription trie: topic filters stored level by level, so routing a message costs a
//! walk down the levels of its topic rather than a scan of every subscription.
//!
//! Each node has exact-level children, a `+` child and a `#` child. Subscribers hang on the
//! node their filter ends at; members of a shared subscription hang there too, under their
//! ShareName. The trie only stores and finds; who gets a message (overlaps, shared-group
//! picks, No Local) is decided by the broker.
//!
//! The trie holds no filter deeper than [`MAX_TOPIC_LEVELS_LIMIT`] levels, whatever its
//! caller checked, and a topic is matched only that deep: its walks recurse once per level
//! and so stay within a small, known stack.

use crate::config::MAX_TOPIC_LEVELS_LIMIT;
use crate::message::SessionId;
use crate::session::Session;
use halyard_codec::{SubscriptionId, SubscriptionOptions, TopicFilter};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One subscription of one session.
#[derive(Debug, Clone)]
pub(crate) struct Subscriber {
    pub(crate) session: Arc<Session>,
    pub(crate) options: SubscriptionOptions,
    pub(crate) id: Option<SubscriptionId>,
}

/// The members of one shared subscription (`$share/{group}/{filter}`).
#[derive(Debug)]
pub(crate) struct SharedGroup {
    /// The full filter, `$share/{group}/{filter}`.
    pub(crate) filter: TopicFilter,
    pub(crate) members: Vec<Subscriber>,
    /// Round-robin cursor; advanced under the trie's read lock, hence atomic.
    next: AtomicUsize,
}

impl SharedGroup {
    fn new(filter: TopicFilter) -> SharedGroup {
        SharedGroup {
            filter,
            members: Vec::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// The member whose turn it is, preferring members that are connected.
    pub(crate) fn pick(&self) -> Option<&Subscriber> {
        self.pick_excluding(None)
    }

    /// The member whose turn it is among those `ok` accepts (the access rules: a member
    /// that may not read the topic must not take the group's copy), preferring connected
    /// members.
    pub(crate) fn pick_where(&self, ok: impl Fn(&Subscriber) -> bool) -> Option<&Subscriber> {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut order = (0..n).filter_map(|i| self.members.get((start + i) % n));
        let online = order.clone().find(|m| m.session.is_connected() && ok(m));
        online.or_else(|| order.find(|m| ok(m)))
    }

    /// The member whose turn it is, other than `exclude`, preferring connected members.
    pub(crate) fn pick_excluding(&self, exclude: Option<SessionId>) -> Option<&Subscriber> {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let eligible = |i: &usize| {
            self.members
                .get(*i)
                .is_some_and(|m| Some(m.session.id()) != exclude)
        };
        let mut order = (0..n).map(|i| (start + i) % n);
        let online = order.clone().filter(eligible).find(|&i| {
            self.members
                .get(i)
                .is_some_and(|m| m.session.is_connected())
        });
        let any = order.find(eligible);
        online.or(any).and_then(|i| self.members.get(i))
    }
}

#[derive(Debug, Default)]
struct Node {
    children: Map<Box<str>, Node>,
    plus: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    subscribers: Map<SessionId, Subscriber>,
    shared: Map<Box<str>, SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.subscribers.is_empty()
            && self.shared.is_empty()
    }

    fn child_mut(&mut self, level: &str) -> &mut Node {
        match level {
            "+" => self.plus.get_or_insert_with(Box::default),
            "#" => self.hash.get_or_insert_with(Box::default),
            _ => self.children.entry(level.into()).or_default(),
        }
    }
}

/// What a topic matched: a plain subscription or a shared group to pick a member from.
pub(crate) enum Match<'a> {
    Direct(&'a Subscriber),
    Shared(&'a SharedGroup),
}

/// The subscription trie.
#[derive(Debug, Default)]
pub(crate) struct SubscriptionTrie {
    root: Node,
    count: usize,
}

impl SubscriptionTrie {
    /// Adds or replaces the subscription of `sub.session` to `filter`. Returns whether it
    /// replaced one, or `None` (and stores nothing) if the filter is deeper than the trie
    /// holds.
    pub(crate) fn insert(&mut self, filter: &TopicFilter, sub: Subscriber) -> Option<bool> {
        if crate::policy::levels(filter.match_filter()) > MAX_TOPIC_LEVELS_LIMIT {
            return None;
        }
        let shared = filter.shared();
        let mut node = &mut self.root;
        for level in filter.match_filter().split('/') {
            node = node.child_mut(level);
        }
        let sid = sub.session.id();
        let replaced = match shared {
            None => node.subscribers.insert(sid, sub).is_some(),
            Some(s) => {
                let group = node
                    .shared
                    .entry(s.group.into())
                    .or_insert_with(|| SharedGroup::new(filter.clone()));
                match group.members.iter_mut().find(|m| m.session.id() == sid) {
                    Some(existing) => {
                        *existing = sub;
                        true
                    }
                    None => {
                        group.members.push(sub);
                        false
                    }
                }
            }
        };
        if !replaced {
            self.count += 1;
        }
        Some(replaced)
    }

    /// Removes the subscription of `session` to `filter`. Returns whether one existed.
    pub(crate) fn remove(&mut self, filter: &TopicFilter, session: SessionId) -> bool {
        let group = filter.shared().map(|s| s.group);
        let levels: Vec<&str> = filter.match_filter().split('/').collect();
        let removed = remove_at(&mut self.root, &levels, group, session);
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// The shared group of a `$share/{group}/{filter}` filter, if it has members.
    pub(crate) fn shared_group(&self, filter: &TopicFilter) -> Option<&SharedGroup> {
        let group = filter.shared()?.group;
        let mut node = &self.root;
        for level in filter.match_filter().split('/') {
            node = match level {
                "+" => node.plus.as_deref()?,
                "#" => node.hash.as_deref()?,
                l => node.children.get(l)?,
            };
        }
        node.shared.get(group)
    }

    /// Number of subscriptions stored.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Calls `f` for every subscription whose filter matches `topic`, following section 4.7:
    /// a filter starting with a wildcard does not match a topic starting with `$`
    /// [MQTT-4.7.2-1].
    pub(crate) fn for_each_match<'a>(&'a self, topic: &str, mut f: impl FnMut(Match<'a>)) {
        let dollar = topic.starts_with('$');
        if crate::policy::levels(topic) > MAX_TOPIC_LEVELS_LIMIT {
            // No filter held is this deep, so only `#` filters could match: not worth a
            // walk of unbounded depth. Such topics are refused before they get here.
            return;
        }
        visit(&self.root, Some(topic), !dollar, &mut f);
    }
}

fn emit<'a>(node: &'a Node, f: &mut impl FnMut(Match<'a>)) {
    for s in node.subscribers.values() {
        f(Match::Direct(s));
    }
    for g in node.shared.values() {
        f(Match::Shared(g));
    }
}

/// Visits matches below `node` for the levels left in `rest` (`None` once all levels are
/// consumed). `wildcards` is false only at the root of a `$` topic.
fn visit<'a>(node: &'a Node, rest: Option<&str>, wildcards: bool, f: &mut impl FnMut(Match<'a>)) {
    if wildcards && let Some(h) = &node.hash {
        // `#` matches the parent level and every level below it.
        emit(h, f);
    }
    let Some(rest) = rest else {
        emit(node, f);
        return;
    };
    let (level, next) = match rest.split_once('/') {
        Some((l, n)) => (l, Some(n)),
        None => (rest, None),
    };
    if let Some(c) = node.children.get(level) {
        visit(c, next, true, f);
    }
    if wildcards && let Some(p) = &node.plus {
        visit(p, next, true, f);
    }
}

fn remove_at(node: &mut Node, levels: &[&str], group: Option<&str>, session: SessionId) -> bool {
    let Some((level, rest)) = levels.split_first() else {
        return match group {
            None => node.subscribers.remove(&session).is_some(),
            Some(g) => {
                let Some(members) = node.shared.get_mut(g) else {
                    return false;
                };
                let before = members.members.len();
                members.members.retain(|m| m.session.id() != session);
                let removed = members.members.len() != before;
                if members.members.is_empty() {
                    node.shared.remove(g);
                }
                removed
            }
        };
    };
    let child = match *level {
        "+" => node.plus.as_deref_mut(),
        "#" => node.hash.as_deref_mut(),
        l => node.children.get_mut(l),
    };
    let Some(child) = child else {
        return false;
    };
    let removed = remove_at(child, rest, group, session);
    if removed && child.is_empty() {
        match *level {
            "+" => node.plus = None,
            "#" => node.hash = None,
            l => {
                node.children.remove(l);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use halyard_codec::{MqttString, QoS, filter_matches};
    use proptest::prelude::*;

    fn session(n: u64) -> Arc<Session> {
        Arc::new(Session::new(
            SessionId(n),
            MqttString::new(&format!("c{n}")).unwrap(),
        ))
    }

    fn sub(s: &Arc<Session>) -> Subscriber {
        Subscriber {
            session: s.clone(),
            options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            id: None,
        }
    }

    fn matched(trie: &SubscriptionTrie, topic: &str) -> Vec<u64> {
        let mut out = Vec::new();
        trie.for_each_match(topic, |m| match m {
            Match::Direct(s) => out.push(s.session.id().0),
            Match::Shared(g) => out.extend(g.members.iter().map(|m| 1000 + m.session.id().0)),
        });
        out.sort_unstable();
        out
    }

    #[test]
    fn insert_match_remove() {
        let mut t = SubscriptionTrie::default();
        let (a, b) = (session(1), session(2));
        let f = |s: &str| TopicFilter::new(s).unwrap();
        assert_eq!(t.insert(&f("a/+/c"), sub(&a)), Some(false));
        assert_eq!(t.insert(&f("a/+/c"), sub(&a)), Some(true));
        t.insert(&f("a/#"), sub(&b));
        t.insert(&f("$share/g/a/b/c"), sub(&b));
        assert_eq!(t.len(), 3);
        assert_eq!(matched(&t, "a/b/c"), vec![1, 2, 1002]);
        assert_eq!(matched(&t, "a"), vec![2]);
        assert!(t.remove(&f("a/+/c"), a.id()));
        assert!(!t.remove(&f("a/+/c"), a.id()));
        assert!(t.remove(&f("$share/g/a/b/c"), b.id()));
        assert_eq!(matched(&t, "a/b/c"), vec![2]);
        assert!(t.remove(&f("a/#"), b.id()));
        assert_eq!(t.len(), 0);
        assert!(t.root.is_empty(), "empty nodes are pruned");
    }

    #[test]
    fn dollar_topics_escape_leading_wildcards_mqtt_4_7_2_1() {
        let mut t = SubscriptionTrie::default();
        let s = session(1);
        for (i, f) in ["#", "+/x", "$SYS/#"].iter().enumerate() {
            let other = session(10 + i as u64);
            t.insert(&TopicFilter::new(f).unwrap(), sub(&other));
        }
        t.insert(&TopicFilter::new("+").unwrap(), sub(&s));
        assert_eq!(matched(&t, "$SYS/x"), vec![12]);
        assert_eq!(matched(&t, "$x"), Vec::<u64>::new());
        assert_eq!(matched(&t, "y/x"), vec![10, 11]);
    }

    /// Filters deeper than the trie holds are refused; the deepest it holds is inserted,
    /// matched and removed in a thread with a 1 MiB stack (half a tokio worker's), unoptimized.
    #[test]
    fn deep_filters_are_refused_and_the_deepest_held_walk_in_a_small_stack() {
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| {
                let mut t = SubscriptionTrie::default();
                let s = session(1);
                let too_deep = vec!["+"; MAX_TOPIC_LEVELS_LIMIT + 1].join("/");
                let too_deep = TopicFilter::new(&too_deep).unwrap();
                assert_eq!(t.insert(&too_deep, sub(&s)), None);
                let deepest = vec!["+"; MAX_TOPIC_LEVELS_LIMIT].join("/");
                let deepest = TopicFilter::new(&deepest).unwrap();
                assert_eq!(t.insert(&deepest, sub(&s)), Some(false));
                let topic = vec!["a"; MAX_TOPIC_LEVELS_LIMIT].join("/");
                assert_eq!(matched(&t, &topic), vec![1]);
                assert!(t.remove(&deepest, s.id()));
                assert!(t.root.is_empty());
                t.insert(&deepest, sub(&s));
                drop(t);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    fn filter_strategy() -> impl Strategy<Value = String> {
        let level = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("".to_string()),
            Just("$s".to_string()),
            Just("+".to_string())
        ];
        (proptest::collection::vec(level, 1..4), any::<bool>()).prop_map(|(l, hash)| {
            let mut s = l.join("/");
            if hash {
                s.push_str("/#");
            }
            if s.is_empty() {
                // An empty filter is invalid [MQTT-4.7.3-1].
                s.push('+');
            }
            s
        })
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        let level = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("".to_string()),
            Just("$s".to_string())
        ];
        proptest::collection::vec(level, 1..5).prop_map(|l| l.join("/"))
    }

    proptest! {
        /// The trie finds exactly the filters the reference matcher accepts.
        #[test]
        fn trie_agrees_with_reference_matcher(
            filters in proptest::collection::vec(filter_strategy(), 1..20),
            topic in topic_strategy(),
        ) {
            let mut t = SubscriptionTrie::default();
            let mut expected = Vec::new();
            for (i, f) in filters.iter().enumerate() {
                let s = session(i as u64);
                t.insert(&TopicFilter::new(f).unwrap(), sub(&s));
                if filter_matches(f, &topic) {
                    expected.push(i as u64);
                }
            }
            prop_assert_eq!(matched(&t, &topic), expected);
        }
    }
}
