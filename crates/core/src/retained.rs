//! Retained messages, stored in a topic tree so that a wildcard SUBSCRIBE walks only the
//! branches its filter can match instead of scanning every retained message.

use crate::message::Message;
use std::collections::HashMap;
use std::sync::Arc;

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
}

impl RetainedTree {
    /// Stores `msg` as the retained message of its topic, replacing any; an empty payload
    /// deletes it instead [MQTT-3.3.1-10] [MQTT-3.3.1-11].
    pub(crate) fn set(&mut self, msg: Arc<Message>) {
        if msg.payload.is_empty() {
            self.remove(msg.topic.as_str());
            return;
        }
        let mut node = &mut self.root;
        for level in msg.topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        if node.message.replace(msg).is_none() {
            self.count += 1;
        }
    }

    fn remove(&mut self, topic: &str) {
        let levels: Vec<&str> = topic.split('/').collect();
        if remove_at(&mut self.root, &levels) {
            self.count -= 1;
        }
    }

    /// Number of retained messages.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Calls `f` with each retained message whose topic matches `filter` (a filter without
    /// any `$share/` prefix), with the `$` rule of [MQTT-4.7.2-1].
    pub(crate) fn for_each_match(&self, filter: &str, mut f: impl FnMut(&Arc<Message>)) {
        let levels: Vec<&str> = filter.split('/').collect();
        visit(&self.root, &levels, true, &mut f);
    }
}

fn visit(node: &Node, levels: &[&str], root: bool, f: &mut impl FnMut(&Arc<Message>)) {
    let Some((level, rest)) = levels.split_first() else {
        if let Some(m) = &node.message {
            f(m);
        }
        return;
    };
    match *level {
        "#" => {
            // `#` matches the parent level too ("a/#" matches "a").
            if let Some(m) = &node.message
                && !root
            {
                f(m);
            }
            for (name, child) in &node.children {
                if !(root && name.starts_with('$')) {
                    visit_all(child, f);
                }
            }
        }
        "+" => {
            for (name, child) in &node.children {
                if !(root && name.starts_with('$')) {
                    visit(child, rest, false, f);
                }
            }
        }
        exact => {
            if let Some(child) = node.children.get(exact) {
                visit(child, rest, false, f);
            }
        }
    }
}

fn visit_all(node: &Node, f: &mut impl FnMut(&Arc<Message>)) {
    if let Some(m) = &node.message {
        f(m);
    }
    for child in node.children.values() {
        visit_all(child, f);
    }
}

fn remove_at(node: &mut Node, levels: &[&str]) -> bool {
    let Some((level, rest)) = levels.split_first() else {
        return node.message.take().is_some();
    };
    let Some(child) = node.children.get_mut(*level) else {
        return false;
    };
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
        })
    }

    fn matched(t: &RetainedTree, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        t.for_each_match(filter, |m| out.push(m.topic.to_string()));
        out.sort();
        out
    }

    #[test]
    fn set_replace_delete_mqtt_3_3_1_10() {
        let mut t = RetainedTree::default();
        t.set(msg("a/b", b"1"));
        t.set(msg("a/b", b"2"));
        assert_eq!(t.len(), 1);
        let mut payload = Vec::new();
        t.for_each_match("a/b", |m| payload.push(m.payload.clone()));
        assert_eq!(payload, vec![Bytes::from_static(b"2")]);
        t.set(msg("a/b", b""));
        assert_eq!(t.len(), 0);
        assert!(t.root.is_empty());
    }

    #[test]
    fn wildcards_and_dollar_topics() {
        let mut t = RetainedTree::default();
        for topic in ["a", "a/b", "a/b/c", "$SYS/x", "b/$y"] {
            t.set(msg(topic, b"x"));
        }
        assert_eq!(matched(&t, "#"), vec!["a", "a/b", "a/b/c", "b/$y"]);
        assert_eq!(matched(&t, "a/#"), vec!["a", "a/b", "a/b/c"]);
        assert_eq!(matched(&t, "+/b"), vec!["a/b"]);
        assert_eq!(matched(&t, "+"), vec!["a"]);
        assert_eq!(matched(&t, "$SYS/#"), vec!["$SYS/x"]);
        assert_eq!(matched(&t, "b/+"), vec!["b/$y"]);
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
                t.set(msg(topic, b"x"));
                if filter_matches(&filter, topic) {
                    expected.push(topic.clone());
                }
            }
            expected.sort();
            prop_assert_eq!(matched(&t, &filter), expected);
        }
    }
}
