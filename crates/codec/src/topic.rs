//! Topic names, topic filters, shared subscriptions and matching (section 4.7 of both
//! specifications, 4.8.2 of 5.0).
//!
//! A [`TopicName`] is where a message is published: no wildcards. A [`TopicFilter`] is what a
//! subscription asks for: `+` stands for one whole level, `#` for the rest of the tree and must
//! come last. `$share/{group}/{filter}` is a shared subscription ([`TopicFilter::shared`]).
//! [`filter_matches`] is the reference matching rule; the broker's subscription trie must agree
//! with it.

use crate::{MqttString, StringError};
use bytes::Bytes;
use std::ops::Deref;

/// Why a string is not a valid topic name or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Topic names and filters are at least one character long [MQTT-4.7.3-1].
    #[error("topic must be at least one character long [MQTT-4.7.3-1]")]
    Empty,
    /// A topic name contains `+` or `#` [MQTT-3.3.2-2].
    #[error("topic name contains a wildcard character [MQTT-3.3.2-2]")]
    WildcardInName,
    /// `#` is not alone in the last level [MQTT-4.7.1-2].
    #[error("'#' must be the last character and occupy a whole level [MQTT-4.7.1-2]")]
    MisplacedMultiLevelWildcard,
    /// `+` shares its level with other characters [MQTT-4.7.1-3].
    #[error("'+' must occupy a whole level [MQTT-4.7.1-3]")]
    MisplacedSingleLevelWildcard,
    /// `$share/` is not followed by a share name and a filter [MQTT-4.8.2-1] / [MQTT-4.8.2-2].
    #[error(
        "shared subscription must be $share/{{ShareName}}/{{filter}} with a non-empty ShareName free of '/', '+' and '#' [MQTT-4.8.2-1] [MQTT-4.8.2-2]"
    )]
    InvalidSharedSubscription,
    /// The text is not a valid MQTT string.
    #[error(transparent)]
    String(#[from] StringError),
}

fn check_name(s: &str) -> Result<(), TopicError> {
    if s.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks a filter; `shared` also checks the `$share/{group}/{filter}` form (MQTT 5 and
/// brokers that offer shared subscriptions on 3.1.1), without which `$share/...` is a plain
/// filter like any other.
fn check_filter(s: &str, shared: bool) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    let mut levels = s.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    if shared && let Some(rest) = s.strip_prefix(SHARE_PREFIX) {
        split_shared(rest).ok_or(TopicError::InvalidSharedSubscription)?;
    }
    Ok(())
}

const SHARE_PREFIX: &str = "$share/";

/// Splits the part after `$share/` into (ShareName, filter), both non-empty; the share name
/// can hold no wildcard because `check_filter` only accepts wildcards as whole levels and the
/// share name is followed by `/`.
fn split_shared(rest: &str) -> Option<(&str, &str)> {
    let (group, filter) = rest.split_once('/')?;
    if group.is_empty() || filter.is_empty() || group == "+" || group == "#" {
        return None;
    }
    Some((group, filter))
}

/// A topic name: a valid MQTT string without wildcards.
///
/// It is at least one character long [MQTT-4.7.3-1], except the one from
/// [`TopicName::empty_for_alias`] for an MQTT 5 PUBLISH that names its topic by Topic Alias.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(MqttString);

impl TopicName {
    /// Validates a topic name.
    pub fn new(s: &str) -> Result<TopicName, TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        check_name(s)?;
        Ok(TopicName(MqttString::new(s)?))
    }

    /// Validates an already-checked MQTT string as a topic name, without copying it.
    pub fn from_mqtt_string(s: MqttString) -> Result<TopicName, TopicError> {
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        check_name(&s)?;
        Ok(TopicName(s))
    }

    /// The empty topic name of an MQTT 5 PUBLISH that names its topic by Topic Alias alone
    /// (3.3.2.3.4). Encoding refuses it without a Topic Alias.
    pub fn empty_for_alias() -> TopicName {
        TopicName(MqttString::empty())
    }

    /// Validates bytes from the wire (possibly empty, which the caller must allow).
    pub(crate) fn from_wire(bytes: Bytes) -> Result<TopicName, TopicError> {
        let s = MqttString::from_bytes(bytes)?;
        check_name(&s)?;
        Ok(TopicName(s))
    }

    /// The topic's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The underlying string, shared with the packet buffer.
    pub fn as_mqtt_string(&self) -> &MqttString {
        &self.0
    }

    /// A copy in an allocation of its own (see [`MqttString::compact`]).
    pub fn compact(&self) -> TopicName {
        TopicName(self.0.compact())
    }

    /// Whether the topic starts with `$` (and so is out of reach of leading wildcards).
    pub fn is_system(&self) -> bool {
        self.0.starts_with('$')
    }
}

/// A topic filter: a valid MQTT string whose wildcards stand as whole levels.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter(MqttString);

/// The parts of a `$share/{ShareName}/{filter}` subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    /// The ShareName: the group the subscribers share messages within.
    pub group: &'a str,
    /// The filter messages are matched against.
    pub filter: &'a str,
}

impl TopicFilter {
    /// Validates a topic filter, including the shared subscription form.
    pub fn new(s: &str) -> Result<TopicFilter, TopicError> {
        check_filter(s, true)?;
        Ok(TopicFilter(MqttString::new(s)?))
    }

    /// Validates an already-checked MQTT string as a filter, without copying it.
    pub fn from_mqtt_string(s: MqttString) -> Result<TopicFilter, TopicError> {
        check_filter(&s, true)?;
        Ok(TopicFilter(s))
    }

    /// Validates a filter as MQTT 3.1.1 does: a `$share/...` filter that is not a valid
    /// shared subscription is an ordinary filter ([`TopicFilter::shared`] is then `None`).
    pub fn from_mqtt_string_v3(s: MqttString) -> Result<TopicFilter, TopicError> {
        check_filter(&s, false)?;
        Ok(TopicFilter(s))
    }

    /// The filter's text, including any `$share/{group}/` prefix.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The underlying string.
    pub fn as_mqtt_string(&self) -> &MqttString {
        &self.0
    }

    /// A copy in an allocation of its own (see [`MqttString::compact`]).
    pub fn compact(&self) -> TopicFilter {
        TopicFilter(self.0.compact())
    }

    /// The share name and inner filter, if this is a shared subscription.
    pub fn shared(&self) -> Option<SharedFilter<'_>> {
        let rest = self.0.strip_prefix(SHARE_PREFIX)?;
        let (group, filter) = split_shared(rest)?;
        Some(SharedFilter { group, filter })
    }

    /// The filter messages are matched against (without any `$share/{group}/` prefix).
    pub fn match_filter(&self) -> &str {
        self.shared().map_or(self.as_str(), |s| s.filter)
    }

    /// Whether the filter has a `+` or `#` level.
    pub fn has_wildcards(&self) -> bool {
        self.match_filter()
            .split('/')
            .any(|level| level == "+" || level == "#")
    }

    /// Whether a message published to `topic` matches this filter.
    pub fn matches(&self, topic: &TopicName) -> bool {
        filter_matches(self.match_filter(), topic.as_str())
    }
}

/// Whether `topic` matches `filter` (both assumed valid), following section 4.7:
/// `+` matches exactly one level (which may be empty), `#` matches the parent level and any
/// number of child levels, and a filter starting with a wildcard does not match a topic
/// starting with `$` [MQTT-4.7.2-1].
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

macro_rules! string_like {
    ($t:ty) => {
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.as_str(), f)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
string_like!(TopicName);
string_like!(TopicFilter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_filters_mqtt_4_7_1() {
        for ok in [
            "#",
            "+",
            "/",
            "a/b/c",
            "sport/tennis/#",
            "sport/+/player1",
            "+/+",
            "/+",
            "+/tennis/#",
            "a//b",
            "$SYS/#",
            "$share/g/a/#",
            "$share/g/+",
            "$share/g//",
            "$share",
            "$sharex/a",
        ] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        let bad: &[(&str, TopicError)] = &[
            ("", TopicError::Empty),
            ("a/#/b", TopicError::MisplacedMultiLevelWildcard),
            ("sport/tennis#", TopicError::MisplacedMultiLevelWildcard),
            ("##", TopicError::MisplacedMultiLevelWildcard),
            ("a+", TopicError::MisplacedSingleLevelWildcard),
            ("sport+", TopicError::MisplacedSingleLevelWildcard),
            ("a/b+/c", TopicError::MisplacedSingleLevelWildcard),
            ("$share/", TopicError::InvalidSharedSubscription),
            ("$share//a", TopicError::InvalidSharedSubscription),
            ("$share/g", TopicError::InvalidSharedSubscription),
            ("$share/g/", TopicError::InvalidSharedSubscription),
            ("$share/+/a", TopicError::InvalidSharedSubscription),
            ("$share/#", TopicError::InvalidSharedSubscription),
            ("$share/g+/a", TopicError::MisplacedSingleLevelWildcard),
        ];
        for (filter, err) in bad {
            assert_eq!(TopicFilter::new(filter), Err(*err), "{filter}");
        }
    }

    #[test]
    fn topic_names_have_no_wildcards_mqtt_3_3_2_2() {
        assert!(TopicName::new("a/b").is_ok());
        assert!(TopicName::new("/").is_ok());
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a+b"), Err(TopicError::WildcardInName));
    }

    #[test]
    fn shared_filters_split_into_group_and_filter_mqtt_4_8_2() {
        let f = TopicFilter::new("$share/consumer1/sport/tennis/+").unwrap();
        let s = f.shared().unwrap();
        assert_eq!(s.group, "consumer1");
        assert_eq!(s.filter, "sport/tennis/+");
        assert_eq!(f.match_filter(), "sport/tennis/+");
        assert!(f.has_wildcards());
        assert!(TopicFilter::new("sport/#").unwrap().shared().is_none());
        assert!(TopicFilter::new("$share").unwrap().shared().is_none());
    }

    /// The matching table: (filter, topic, matches). Examples from section 4.7 of the
    /// specifications first, then edge cases.
    const MATCH_TABLE: &[(&str, &str, bool)] = &[
        // 4.7.1.2 multi-level wildcard
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/#", "sport", true),
        ("#", "sport/tennis", true),
        ("#", "/", true),
        ("#", "a", true),
        // 4.7.1.3 single-level wildcard
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+", "a", true),
        ("+", "a/b", false),
        ("+", "/finance", false),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+/tennis/#", "sport/tennis", true),
        ("+/tennis/#", "sport/tennis/x/y", true),
        ("+/tennis/#", "sport/golf", false),
        ("sport/+/player1", "sport/tennis/player1", true),
        ("+", "", true),
        ("a/+/c", "a//c", true),
        // exact
        ("a/b", "a/b", true),
        ("a/b", "a/b/c", false),
        ("a/b/c", "a/b", false),
        ("a/b", "A/b", false),
        ("/", "/", true),
        ("a//b", "a//b", true),
        ("a//b", "a/b", false),
        // 4.7.2 topics beginning with $ [MQTT-4.7.2-1]
        ("#", "$SYS/broker/uptime", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("+", "$SYS", false),
        ("a/#", "a/$b", true),
        ("a/+", "a/$b", true),
    ];

    #[test]
    fn matching_table_mqtt_4_7() {
        for (filter, topic, expected) in MATCH_TABLE {
            assert_eq!(
                filter_matches(filter, topic),
                *expected,
                "filter {filter:?} topic {topic:?}"
            );
        }
    }

    #[test]
    fn shared_filter_matches_on_inner_filter() {
        let f = TopicFilter::new("$share/g/sport/#").unwrap();
        assert!(f.matches(&TopicName::new("sport/tennis").unwrap()));
        assert!(!f.matches(&TopicName::new("$share/g/sport").unwrap()));
    }
}
