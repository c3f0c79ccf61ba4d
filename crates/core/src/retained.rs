//! Retained messages, stored in a topic tree so that a wildcard SUBSCRIBE walks only the
//! branches its filter can match instead of scanning every retained message.
//!
//! The tree holds no topic deeper than [`MAX_TOPIC_LEVELS_LIMIT`] levels, whatever its
//! caller checked: its walks recurse once per level, and so stay within a small, known
//! stack. It keeps its own count and bytes so that the broker's retained budgets are cheap
//! to check.

use crate::config::MAX_TOPIC_LEVELS_LIMIT;
use crate::message::Message;
use crate::policy::levels;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Node {
    children: Map<Box<str>, Node>,
    message: Option<Arc<Message>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

/// The retained message of each topic that has one.
#[derive(Debug, Default)]
pub(crate) struct RetainedTree {
    root: Node,
    count: usize,
    /// The cost of every message held, with its levels (see [`entry_cost`]).
    bytes: usize,
    /// When expired messages were last swept out (see [`RetainedTree::set`]).
    swept_at: Option<Instant>,
}

/// What one level of a retained topic costs in the tree besides its bytes (a node with its
/// map, and its entry in its parent's): an estimate, counted so that deep topics use up
/// `max_retained_bytes` sooner than their bytes alone would.
const RETAINED_LEVEL_COST: usize = 256;

/// How often, at most, a full tree looks for expired messages to make room.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What a retained message counts against `max_retained_bytes`.
fn entry_cost(m: &Message) -> usize {
    m.cost_bytes() + levels(&m.topic) * RETAINED_LEVEL_COST
}

/// Why a retained message was not stored.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotStored {
    /// Its topic is deeper than the tree holds.
    TooDeep,
    /// A new topic would go over `max_messages` or `max_bytes`.
    OverBudget,
}

impl RetainedTree {
    /// Stores `msg` as the retained message of its topic, replacing any; an empty payload
    /// deletes it instead [MQTT-3.3.1-10] [MQTT-3.3.1-11]. A message that would take the tree
    /// over `max_messages` or `max_bytes` is not stored (a replacement that does not grow it
    /// always is).
    pub(crate) fn set(
        &mut self,
        msg: Arc<Message>,
        max_messages: usize,
        max_bytes: usize,
        now: Instant,
    ) -> Result<(), NotStored> {
        if levels(&msg.topic) > MAX_TOPIC_LEVELS_LIMIT {
            return Err(NotStored::TooDeep);
        }
        if msg.payload.is_empty() {
            self.remove(msg.topic.as_str());
            return Ok(());
        }
        let (mut count, mut bytes) = self.after_setting(&msg);
        if (count > max_messages || bytes > max_bytes) && bytes > self.bytes {
            // Expired messages nobody can receive any more may be taking the room: sweep
            // them out (a walk of the tree, so at most once a second) and look again.
            if self
                .swept_at
                .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
            {
                return Err(NotStored::OverBudget);
            }
            self.swept_at = Some(now);
            self.remove_expired(now);
            (count, bytes) = self.after_setting(&msg);
            if (count > max_messages || bytes > max_bytes) && bytes > self.bytes {
                return Err(NotStored::OverBudget);
            }
        }
        let mut node = &mut self.root;
        for level in msg.topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        node.message = Some(msg);
        self.count = count;
        self.bytes = bytes;
        Ok(())
    }

    /// The count and bytes the tree would hold with `msg` set.
    fn after_setting(&self, msg: &Message) -> (usize, usize) {
        let old_cost = self.get(&msg.topic).map(|m| entry_cost(m));
        let count = self.count + usize::from(old_cost.is_none());
        let bytes = (self.bytes + entry_cost(msg)).saturating_sub(old_cost.unwrap_or(0));
        (count, bytes)
    }

    /// Removes every message whose expiry has passed at `now`.
    fn remove_expired(&mut self, now: Instant) {
        let mut expired = Vec::new();
        visit_all(&self.root, &mut |m| {
            if m.is_expired(now) {
                expired.push(m.topic.clone());
            }
            true
        });
        for topic in expired {
            self.remove(&topic);
        }
    }

    /// The retained message of `topic`, if any.
    fn get(&self, topic: &str) -> Option<&Arc<Message>> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_ref()
    }

    fn remove(&mut self, topic: &str) {
        let levels: Vec<&str> = topic.split('/').collect();
        if let Some(m) = remove_at(&mut self.root, &levels) {
            self.count -= 1;
            self.bytes = self.bytes.saturating_sub(entry_cost(&m));
        }
    }

    /// Number of retained messages.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Cost in bytes of the retained messages.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Checks the count and bytes kept against a walk of the tree (for the simulation tests;
    /// it visits every node).
    pub(crate) fn check_counts(&self) -> Result<(), String> {
        let (mut count, mut bytes) = (0, 0);
        visit_all(&self.root, &mut |m| {
            count += 1;
            bytes += entry_cost(m);
            true
        });
        if (count, bytes) != (self.count, self.bytes) {
            return Err(format!(
                "retained tree counts {} messages, {} bytes; holds {count}, {bytes}",
                self.count, self.bytes
            ));
        }
        Ok(())
    }

    /// Calls `f` with each retained message whose topic matches `filter` (a filter without
    /// any `$share/` prefix), with the `$` rule of [MQTT-4.7.2-1], while `f` returns true.
    pub(crate) fn for_each_match(&self, filter: &str, mut f: impl FnMut(&Arc<Message>) -> bool) {
        let levels: Vec<&str> = filter.split('/').collect();
        visit(&self.root, &levels, true, &mut f);
    }
}

/// The walks below call `f` with each message found and go on while it returns true.
type Found<'f> = dyn FnMut(&Arc<Message>) -> bool + 'f;

fn visit(node: &Node, levels: &[&str], root: bool, f: &mut Found<'_>) -> bool {
    let Some((level, rest)) = levels.split_first() else {
        return node.message.as_ref().is_none_or(&mut *f);
    };
    match *level {
        "#" => {
            // `#` matches the parent level too ("a/#" matches "a").
            if let Some(m) = &node.message
                && !root
                && !f(m)
            {
                return false;
            }
            node.children
                .iter()
                .filter(|(name, _)| !(root && name.starts_with('$')))
                .all(|(_, child)| visit_all(child, f))
        }
        "+" => node
            .children
            .iter()
            .filter(|(name, _)| !(root && name.starts_with('$')))
            .all(|(_, child)| visit(child, rest, false, f)),
        exact => node
            .children
            .get(exact)
            .is_none_or(|child| visit(child, rest, false, f)),
    }
}

fn visit_all(node: &Node, f: &mut Found<'_>) -> bool {
    if let Some(m) = &node.message
        && !f(m)
    {
        return false;
    }
    node.children.values().all(|child| visit_all(child, f))
}

fn remove_at(node: &mut Node, levels: &[&str]) -> Option<Arc<Message>> {
    let Some((level, rest)) = levels.split_first() else {
        return node.message.take();
    };
    let child = node.children.get_mut(*level)?;
    let removed = remove_at(child, rest);
    if child.is_empty() {
        node.children.remove(*level);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use halyard_codec::{PublishProperties, QoS, TopicName, filter_matches};
    use proptest::prelude::*;

    fn msg(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message {
            topic: TopicName::new(topic).unwrap(),
            payload: Bytes::from_static(payload),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: PublishProperties::default(),
            expires_at: None,
            origin: None,
            packed_user_properties: bytes::Bytes::new(),
            held: crate::message::Held::none(),
        })
    }

    const NO_LIMIT: usize = usize::MAX;

    fn now() -> Instant {
        Instant::now()
    }

    fn matched(t: &RetainedTree, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        t.for_each_match(filter, |m| {
            out.push(m.topic.to_string());
            true
        });
        out.sort();
        out
    }

    #[test]
    fn set_replace_delete_mqtt_3_3_1_10() {
        let mut t = RetainedTree::default();
        t.set(msg("a/b", b"1"), NO_LIMIT, NO_LIMIT, now()).unwrap();
        t.set(msg("a/b", b"2"), NO_LIMIT, NO_LIMIT, now()).unwrap();
        assert_eq!(t.len(), 1);
        let mut payload = Vec::new();
        t.for_each_match("a/b", |m| {
            payload.push(m.payload.clone());
            true
        });
        assert_eq!(payload, vec![Bytes::from_static(b"2")]);
        t.set(msg("a/b", b""), NO_LIMIT, NO_LIMIT, now()).unwrap();
        assert_eq!(t.len(), 0);
        assert!(t.root.is_empty());
    }

    #[test]
    fn wildcards_and_dollar_topics() {
        let mut t = RetainedTree::default();
        for topic in ["a", "a/b", "a/b/c", "$SYS/x", "b/$y"] {
            t.set(msg(topic, b"x"), NO_LIMIT, NO_LIMIT, now()).unwrap();
        }
        assert_eq!(matched(&t, "#"), vec!["a", "a/b", "a/b/c", "b/$y"]);
        assert_eq!(matched(&t, "a/#"), vec!["a", "a/b", "a/b/c"]);
        assert_eq!(matched(&t, "+/b"), vec!["a/b"]);
        assert_eq!(matched(&t, "+"), vec!["a"]);
        assert_eq!(matched(&t, "$SYS/#"), vec!["$SYS/x"]);
        assert_eq!(matched(&t, "b/+"), vec!["b/$y"]);
    }

    #[test]
    fn budgets_refuse_new_topics_but_not_replacements() {
        let mut t = RetainedTree::default();
        let max = 2 * RETAINED_LEVEL_COST + 100;
        t.set(msg("a", b"12"), 2, max, now()).unwrap();
        t.set(msg("b", b"12"), 2, max, now()).unwrap();
        assert_eq!(
            t.set(msg("c", b"1"), 2, max, now()),
            Err(NotStored::OverBudget)
        );
        t.set(msg("b", b"1234"), 2, max, now()).unwrap();
        assert_eq!(t.bytes(), 2 * RETAINED_LEVEL_COST + 1 + 2 + 1 + 4);
        assert_eq!(
            t.set(msg("a", &[0; 200]), 2, max, now()),
            Err(NotStored::OverBudget)
        );
        t.set(msg("a", b""), 2, max, now()).unwrap();
        assert_eq!((t.len(), t.bytes()), (1, RETAINED_LEVEL_COST + 5));
        // Expired messages are swept out to make room.
        let mut expiring = (*msg("e", b"1")).clone();
        let t0 = now();
        expiring.expires_at = Some(t0);
        t.set(Arc::new(expiring), 2, max, t0).unwrap();
        assert_eq!(t.len(), 2);
        t.set(msg("f", b"1"), 2, max, t0 + Duration::from_secs(1))
            .unwrap();
        assert_eq!(matched(&t, "#"), vec!["b", "f"]);
        // Deep topics cost their levels.
        let deep = ["d"; 10].join("/");
        assert_eq!(
            t.set(msg(&deep, b"1"), 3, max, now()),
            Err(NotStored::OverBudget)
        );
    }

    #[test]
    fn deep_topics_are_refused_and_the_deepest_held_walk_in_a_small_stack() {
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| {
                let mut t = RetainedTree::default();
                let too_deep = vec!["a"; 32_000].join("/");
                assert_eq!(
                    t.set(msg(&too_deep, b"x"), NO_LIMIT, NO_LIMIT, now()),
                    Err(NotStored::TooDeep)
                );
                let deepest = vec!["a"; MAX_TOPIC_LEVELS_LIMIT].join("/");
                let leaked = deepest.as_str();
                t.set(msg(leaked, b"x"), NO_LIMIT, NO_LIMIT, now()).unwrap();
                assert_eq!(matched(&t, "#").len(), 1);
                assert_eq!(matched(&t, leaked).len(), 1);
                t.set(msg(leaked, b""), NO_LIMIT, NO_LIMIT, now()).unwrap();
                assert!(t.root.is_empty());
                t.set(msg(leaked, b"x"), NO_LIMIT, NO_LIMIT, now()).unwrap();
                drop(t);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    proptest! {
        #[test]
        fn tree_agrees_with_reference_matcher(
            topics in proptest::collection::btree_set("(a|b|\\$s|)(/(a|b|\\$s|)){0,3}", 1..12),
            filter in "(a|b|\\+|\\$s|)(/(a|b|\\+|))*(/#)?",
        ) {
            prop_assume!(halyard_codec::TopicFilter::new(&filter).is_ok());
            let mut t = RetainedTree::default();
            let mut expected = Vec::new();
            for topic in &topics {
                if topic.is_empty() { continue; }
                t.set(msg(topic, b"x"), NO_LIMIT, NO_LIMIT, now()).unwrap();
                if filter_matches(&filter, topic) {
                    expected.push(topic.clone());
                }
            }
            expected.sort();
            prop_assert_eq!(matched(&t, &filter), expected);
        }
    }
}
