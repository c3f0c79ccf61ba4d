//! Policy: every rule about what a client may put into the broker, in one place.
//!
//! Each path by which a topic, filter or property enters the broker (PUBLISH, wills, topic
//! aliases, SUBSCRIBE with plain and shared filters, retained messages) calls these checks,
//! so a limit cannot be skipped by taking another path, and the authorization rules of a
//! later access-control layer have one place to plug in. This module decides and counts
//! (`Stats::limit_hit`); it does not send anything or change any state.

use crate::config::BrokerConfig;
use crate::stats::{Limit, Stats};
use halyard_codec::{ReasonCode, TopicFilter, TopicName, UserProperty};

/// Number of levels of a topic name or filter (one more than its separators).
pub(crate) fn levels(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count() + 1
}

/// Whether `s` is within `max_topic_length` and `max_topic_levels`.
pub(crate) fn within_topic_limits(cfg: &BrokerConfig, s: &str) -> bool {
    // The length first: it is free, and bounds the count of levels.
    s.len() <= cfg.max_topic_length && levels(s) <= cfg.max_topic_levels
}

/// Checks a topic a client publishes to, by PUBLISH or as a will: the size limits (0x90
/// Topic Name invalid), and the `$SYS` rule: clients do not publish to the broker's own
/// topics (0x87 Not authorized).
pub(crate) fn check_publish_topic(
    cfg: &BrokerConfig,
    stats: &Stats,
    topic: &TopicName,
) -> Result<(), ReasonCode> {
    if !within_topic_limits(cfg, topic) {
        stats.limit_hit(Limit::TopicSize);
        return Err(ReasonCode::TOPIC_NAME_INVALID);
    }
    if topic.starts_with("$SYS") {
        Stats::add(&stats.publish_denied, 1);
        return Err(ReasonCode::NOT_AUTHORIZED);
    }
    Ok(())
}

/// Checks the count of User Properties of a PUBLISH, will or CONNECT (0x83
/// Implementation specific error: valid, but more than this broker keeps).
pub(crate) fn check_user_properties(
    cfg: &BrokerConfig,
    stats: &Stats,
    props: &[UserProperty],
) -> Result<(), ReasonCode> {
    if props.len() > cfg.max_user_properties {
        stats.limit_hit(Limit::UserProperties);
        return Err(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR);
    }
    Ok(())
}

/// Checks a filter of a SUBSCRIBE, plain or shared: features switched off, and the size
/// limits over the whole filter (0x8F Topic Filter invalid).
pub(crate) fn check_filter(
    cfg: &BrokerConfig,
    stats: &Stats,
    filter: &TopicFilter,
) -> Result<(), ReasonCode> {
    if filter.shared().is_some() && !cfg.shared_subscription_available {
        return Err(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
    }
    if filter.has_wildcards() && !cfg.wildcard_subscription_available {
        return Err(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
    }
    if !within_topic_limits(cfg, filter) {
        stats.limit_hit(Limit::TopicSize);
        return Err(ReasonCode::TOPIC_FILTER_INVALID);
    }
    Ok(())
}

/// Checks one more subscription for a session that holds `count` of them, whose filters
/// cost `bytes()` (asked only once the count is within its limit: it is a sum over them).
/// Each filter costs its bytes and [`SUBSCRIPTION_LEVEL_COST`] per level (0x97 Quota
/// exceeded).
pub(crate) fn check_subscription_budget(
    cfg: &BrokerConfig,
    stats: &Stats,
    count: usize,
    bytes: impl FnOnce() -> usize,
    filter: &TopicFilter,
) -> Result<(), ReasonCode> {
    if count >= cfg.max_subscriptions_per_session
        || bytes().saturating_add(subscription_cost(filter))
            > cfg.max_subscription_bytes_per_session
    {
        stats.limit_hit(Limit::Subscriptions);
        return Err(ReasonCode::QUOTA_EXCEEDED);
    }
    Ok(())
}

/// What one level of a filter costs in the subscription trie besides its bytes (a node, and
/// its entry in its parent's map): an estimate, counted so that deep filters use up a
/// session's subscription budget sooner than their bytes alone would.
pub(crate) const SUBSCRIPTION_LEVEL_COST: usize = 128;

/// What a subscription to `filter` counts against `max_subscription_bytes_per_session`.
pub(crate) fn subscription_cost(filter: &str) -> usize {
    filter.len() + levels(filter) * SUBSCRIPTION_LEVEL_COST
}

/// Checks a topic alias table that holds `bytes` bytes of topics before `added` more are
/// mapped (and `replaced` unmapped).
pub(crate) fn check_alias_bytes(
    cfg: &BrokerConfig,
    stats: &Stats,
    bytes: usize,
    added: usize,
    replaced: usize,
) -> Result<(), ReasonCode> {
    if (bytes + added).saturating_sub(replaced) > cfg.max_topic_alias_bytes {
        stats.limit_hit(Limit::TopicAliasBytes);
        return Err(ReasonCode::QUOTA_EXCEEDED);
    }
    Ok(())
}

/// Checks the memory ceiling before a client's message is taken in (0x97 Quota exceeded).
pub(crate) fn check_memory(cfg: &BrokerConfig, stats: &Stats) -> Result<(), ReasonCode> {
    if cfg.memory_limit_bytes != 0 && stats.held_bytes() >= cfg.memory_limit_bytes {
        stats.limit_hit(Limit::Memory);
        return Err(ReasonCode::QUOTA_EXCEEDED);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_over_the_limits_are_refused_whatever_their_path() {
        let cfg = BrokerConfig::default();
        let stats = Stats::default();
        let deep = vec!["a"; cfg.max_topic_levels + 1].join("/");
        let ok = vec!["a"; cfg.max_topic_levels].join("/");
        let t = |s: &str| TopicName::new(s).unwrap();
        assert_eq!(
            check_publish_topic(&cfg, &stats, &t(&deep)),
            Err(ReasonCode::TOPIC_NAME_INVALID)
        );
        assert_eq!(check_publish_topic(&cfg, &stats, &t(&ok)), Ok(()));
        assert_eq!(
            check_publish_topic(&cfg, &stats, &t("$SYS/x")),
            Err(ReasonCode::NOT_AUTHORIZED)
        );
        let shared = TopicFilter::new(&format!("$share/g/{deep}")).unwrap();
        assert_eq!(
            check_filter(&cfg, &stats, &shared),
            Err(ReasonCode::TOPIC_FILTER_INVALID)
        );
        assert_eq!(stats.limit_hits(Limit::TopicSize), 2);
    }
}
