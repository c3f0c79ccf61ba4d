//! Access control lists in Mosquitto's ACL file syntax, parsed once and compiled into rules
//! per user, then checked on the paths a message takes.
//!
//! ```text
//! # Comments and blank lines are ignored.
//! topic read public/#            # before any `user` line: rules for anonymous clients
//! user alice
//! topic readwrite alice/#        # access: read, write, readwrite (the default) or deny
//! topic deny alice/secret
//! pattern write devices/%c/state # for every client: %c = client id, %u = user name
//! ```
//!
//! How a check decides, as Mosquitto's default ACL check does: the client's own rules (its
//! user's, or the anonymous ones) and then the patterns are looked at; a `deny` rule whose
//! filter matches the topic refuses whatever else says; otherwise the first rule that
//! matches and grants the access allows; nothing matching refuses. Filters match topics by
//! the MQTT rules, `$` included: `#` does not grant `$SYS/...` [MQTT-4.7.2-1]; only a rule
//! naming `$SYS` does.
//!
//! This module only parses and decides. It reads no file, and it does not know where its
//! decisions are enforced (`policy` and the broker call it).

use std::collections::HashMap;

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Receive messages on matching topics (and subscribe to them).
    Read,
    /// Publish to matching topics.
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Grant {
    fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Grant::ReadWrite, _) | (Grant::Read, Access::Read) | (Grant::Write, Access::Write)
        )
    }
}

#[derive(Debug, Clone)]
struct Rule {
    grant: Grant,
    filter: String,
    /// The filter contains `%c` or `%u` (patterns only).
    substitutes: bool,
    /// The filter, split into levels once, for the checks on every message.
    levels: Box<[Level]>,
}

/// One level of a compiled filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Exact(Box<str>),
    Plus,
    Hash,
    /// A pattern level with `%c` or `%u` in it.
    Substituted(Box<str>),
}

/// The rules of one user (or the anonymous ones, or the patterns), indexed by the first
/// level of their filter, so that a check looks only at the rules that can match its topic.
#[derive(Debug, Clone, Default)]
struct RuleSet {
    rules: Vec<Rule>,
    /// Rules whose filter starts with this exact level.
    by_first: HashMap<Box<str>, Vec<u32>, foldhash::fast::RandomState>,
    /// Rules whose filter starts with a wildcard or a substituted level.
    any_first: Vec<u32>,
}

impl RuleSet {
    fn push(&mut self, rule: Rule) {
        // At most one rule a line of the file: far below u32::MAX.
        let index = u32::try_from(self.rules.len()).unwrap_or(u32::MAX);
        match rule.levels.first() {
            Some(Level::Exact(first)) => {
                self.by_first.entry(first.clone()).or_default().push(index)
            }
            _ => self.any_first.push(index),
        }
        self.rules.push(rule);
    }

    /// The rules that can match a topic whose first level is `first`.
    fn candidates<'a>(&'a self, first: &str) -> impl Iterator<Item = &'a Rule> {
        let exact = self.by_first.get(first).map_or(&[][..], Vec::as_slice);
        exact
            .iter()
            .chain(&self.any_first)
            .filter_map(|&i| self.rules.get(i as usize))
    }
}

/// Who is asking: what a pattern's `%c` and `%u` stand for, and whose rules apply.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The client identifier.
    pub client_id: &'a str,
    /// The user name the client authenticated as, if any.
    pub username: Option<&'a str>,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    /// Unique per parsed file (never 0), so that decisions cached under one ACL are not
    /// taken for another's after a reload.
    generation: u64,
    anonymous: RuleSet,
    users: HashMap<Box<str>, RuleSet, foldhash::fast::RandomState>,
    patterns: RuleSet,
}

/// Why an ACL file was refused: the line (from 1) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    /// The line, counting from 1.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for AclError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for AclError {}

impl Acl {
    /// Parses the text of an ACL file.
    pub fn parse(text: &str) -> Result<Acl, AclError> {
        static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut acl = Acl {
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Acl::default()
        };
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| AclError {
                line: i + 1,
                reason,
            };
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(err("`user` needs a user name".into()));
                    }
                    acl.users.entry(rest.into()).or_default();
                    user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(rest, keyword == "pattern").map_err(err)?;
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(u) = &user {
                        acl.users.entry(u.as_str().into()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => return Err(err(format!("unknown keyword `{other}`"))),
            }
        }
        Ok(acl)
    }

    /// Identifies this parse of the rules (for caches of decisions).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The subject's own rules (its user's, or the anonymous ones).
    fn own(&self, who: &Subject<'_>) -> Option<&RuleSet> {
        match who.username {
            Some(u) => self.users.get(u),
            None => Some(&self.anonymous),
        }
    }

    /// The rules of the subject's user (or the anonymous rules), then the patterns.
    fn rules<'a>(&'a self, who: &Subject<'_>) -> impl Iterator<Item = &'a Rule> {
        let own = self.own(who).map_or(&[][..], |r| r.rules.as_slice());
        own.iter().chain(self.patterns.rules.iter())
    }

    /// Whether `who` may publish to (`Write`) or receive from (`Read`) `topic`. Checked on
    /// every message, so compiled: only the rules whose first level can match the topic's
    /// are looked at, each matched level by level without allocating.
    pub fn allows(&self, who: &Subject<'_>, topic: &str, access: Access) -> bool {
        let first = topic.split('/').next().unwrap_or_default();
        let own = self.own(who).into_iter().flat_map(|r| r.candidates(first));
        let mut allowed = false;
        for rule in own.chain(self.patterns.candidates(first)) {
            if !levels_match(&rule.levels, who, topic) {
                continue;
            }
            if rule.grant == Grant::Deny {
                return false;
            }
            allowed |= rule.grant.allows(access);
        }
        allowed
    }

    /// Whether `who` may subscribe to `filter`: some rule granting read covers a topic the
    /// filter can match, and no deny rule covers every topic it can match. Deliveries are
    /// still checked one by one ([`Acl::allows`] with `Read`): a subscription to `#` gets
    /// only what its subscriber may read.
    pub fn allows_subscribe(&self, who: &Subject<'_>, filter: &str) -> bool {
        let mut readable = false;
        for rule in self.rules(who) {
            if rule.grant == Grant::Deny {
                if rule_matches(rule, who, |f| filter_covers(f, filter)) {
                    return false;
                }
            } else if rule.grant.allows(Access::Read)
                && rule_matches(rule, who, |f| filters_overlap(f, filter))
            {
                readable = true;
            }
        }
        readable
    }
}

fn parse_rule(rest: &str, pattern: bool) -> Result<Rule, String> {
    let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let (grant, filter) = match first {
        "read" => (Grant::Read, after.trim()),
        "write" => (Grant::Write, after.trim()),
        "readwrite" => (Grant::ReadWrite, after.trim()),
        "deny" => (Grant::Deny, after.trim()),
        _ => (Grant::ReadWrite, rest),
    };
    if filter.is_empty() {
        return Err("a rule needs a topic filter".into());
    }
    if halyard_codec::TopicFilter::new(filter).is_err() {
        return Err(format!("`{filter}` is not a valid topic filter"));
    }
    let substitutes = pattern && (filter.contains("%c") || filter.contains("%u"));
    let levels = filter
        .split('/')
        .map(|l| match l {
            "+" => Level::Plus,
            "#" => Level::Hash,
            l if substitutes && (l.contains("%c") || l.contains("%u")) => {
                Level::Substituted(l.into())
            }
            l => Level::Exact(l.into()),
        })
        .collect();
    Ok(Rule {
        grant,
        filter: filter.to_owned(),
        substitutes,
        levels,
    })
}

/// Applies `test` to the rule's filter, with `%c` and `%u` replaced for a pattern. A pattern
/// naming `%u` never matches a client without a user name, and none matches when the
/// substituted value holds a wildcard or a separator (a client id `+` must not widen it).
fn rule_matches(rule: &Rule, who: &Subject<'_>, test: impl Fn(&str) -> bool) -> bool {
    if !rule.substitutes {
        return test(&rule.filter);
    }
    let unsafe_level = |s: &str| s.contains(['/', '+', '#']);
    if rule.filter.contains("%c") && unsafe_level(who.client_id) {
        return false;
    }
    let mut filter = rule.filter.replace("%c", who.client_id);
    if filter.contains("%u") {
        match who.username {
            Some(u) if !unsafe_level(u) => filter = filter.replace("%u", u),
            _ => return false,
        }
    }
    // A client id or user name starting with `$` does not carry a pattern into `$` topics.
    if filter.starts_with('$') && !rule.filter.starts_with('$') {
        return false;
    }
    test(&filter)
}

/// Whether a compiled filter matches `topic`, with `%c` and `%u` standing for the subject's
/// client id and user name, and the `$` rule of [MQTT-4.7.2-1].
fn levels_match(levels: &[Level], who: &Subject<'_>, topic: &str) -> bool {
    let dollar = topic.starts_with('$');
    let mut parts = topic.split('/');
    for (i, level) in levels.iter().enumerate() {
        match level {
            // `#` matches the parent level and everything below; not `$` topics at the root.
            Level::Hash => return !(i == 0 && dollar),
            Level::Plus => {
                if parts.next().is_none() || (i == 0 && dollar) {
                    return false;
                }
            }
            Level::Exact(e) => {
                if parts.next() != Some(&**e) {
                    return false;
                }
            }
            Level::Substituted(p) => match parts.next() {
                // A client id or user name starting with `$` must not carry a pattern into
                // `$` topics that its own text does not name.
                Some(_) if i == 0 && dollar && !p.starts_with('$') => return false,
                Some(part) if substituted_eq(p, who, part) => {}
                _ => return false,
            },
        }
    }
    parts.next().is_none()
}

/// Whether `level` equals `pattern` with `%c` and `%u` replaced, without building the
/// replaced string. A client id or user name with `/`, `+` or `#` matches nothing (it must
/// not widen a pattern), and `%u` nothing for a client without a user name.
fn substituted_eq(pattern: &str, who: &Subject<'_>, level: &str) -> bool {
    let safe = |s: &str| !s.contains(['/', '+', '#']);
    let mut rest = level;
    let mut p = pattern;
    while !p.is_empty() {
        let (value, skip) = if let Some(after) = p.strip_prefix("%c") {
            (Some(who.client_id), after)
        } else if let Some(after) = p.strip_prefix("%u") {
            match who.username {
                Some(u) => (Some(u), after),
                None => return false,
            }
        } else {
            (None, p)
        };
        match value {
            Some(v) => {
                if !safe(v) {
                    return false;
                }
                let Some(r) = rest.strip_prefix(v) else {
                    return false;
                };
                rest = r;
                p = skip;
            }
            None => {
                let mut chars = p.chars();
                let Some(c) = chars.next() else {
                    break;
                };
                let Some(r) = rest.strip_prefix(c) else {
                    return false;
                };
                rest = r;
                p = chars.as_str();
            }
        }
    }
    rest.is_empty()
}

/// Whether every topic `inner` matches is matched by `outer` (both valid filters).
fn filter_covers(outer: &str, inner: &str) -> bool {
    let mut o = outer.split('/');
    let mut i = inner.split('/');
    let mut first = true;
    loop {
        match (o.next(), i.next()) {
            (Some("#"), Some(lvl)) => {
                // A `#` at the root does not cover `$` topics [MQTT-4.7.2-1].
                return !(first && lvl.starts_with('$'));
            }
            (Some("#"), None) => return true,
            (Some("+"), Some(lvl)) => {
                if lvl == "#" || (first && lvl.starts_with('$')) {
                    return false;
                }
            }
            (Some(a), Some(b)) => {
                if a != b {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        first = false;
    }
}

/// Whether some topic is matched by both filters.
fn filters_overlap(a: &str, b: &str) -> bool {
    let mut x = a.split('/');
    let mut y = b.split('/');
    let mut first = true;
    loop {
        match (x.next(), y.next()) {
            (Some("#"), Some(l)) | (Some(l), Some("#")) => {
                // A root `#` or `+` reaches no `$` topic; two wildcards meet anywhere else.
                return !(first && l.starts_with('$'));
            }
            (Some("#"), None) | (None, Some("#")) => return true,
            (Some("+"), Some(l)) | (Some(l), Some("+")) => {
                if first && l.starts_with('$') {
                    return false;
                }
            }
            (Some(p), Some(q)) => {
                if p != q {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use halyard_codec::filter_matches;

    const FILE: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret
topic $SYS/broker/uptime

user bob
topic write bob/out

pattern readwrite devices/%c/#
pattern read users/%u/inbox
";

    fn who<'a>(client_id: &'a str, username: Option<&'a str>) -> Subject<'a> {
        Subject {
            client_id,
            username,
        }
    }

    #[test]
    fn user_rules_anonymous_rules_and_deny() {
        let acl = Acl::parse(FILE).unwrap();
        let anon = who("c", None);
        let alice = who("a1", Some("alice"));
        assert!(acl.allows(&anon, "public/news", Access::Read));
        assert!(!acl.allows(&anon, "public/news", Access::Write));
        assert!(
            !acl.allows(&alice, "public/news", Access::Read),
            "not alice's rule"
        );
        assert!(acl.allows(&alice, "alice/x", Access::Write));
        assert!(
            !acl.allows(&alice, "alice/secret", Access::Read),
            "deny wins"
        );
        assert!(!acl.allows(&who("b", Some("bob")), "bob/out", Access::Read));
        assert!(acl.allows(&who("b", Some("bob")), "bob/out", Access::Write));
        assert!(!acl.allows(&who("x", Some("mallory")), "alice/x", Access::Read));
    }

    #[test]
    fn patterns_substitute_client_id_and_user_name_and_refuse_wildcards_in_them() {
        let acl = Acl::parse(FILE).unwrap();
        assert!(acl.allows(&who("d7", None), "devices/d7/state", Access::Write));
        assert!(!acl.allows(&who("d7", None), "devices/d8/state", Access::Write));
        assert!(acl.allows(&who("c", Some("bob")), "users/bob/inbox", Access::Read));
        assert!(!acl.allows(&who("c", None), "users/bob/inbox", Access::Read));
        // A client id that is a wildcard cannot widen a pattern.
        assert!(!acl.allows(&who("+", None), "devices/d8/state", Access::Write));
        assert!(!acl.allows_subscribe(&who("#", None), "devices/#"));
    }

    #[test]
    fn a_dollar_client_id_does_not_carry_a_pattern_into_sys_topics() {
        let acl = Acl::parse("pattern read %c/#\npattern read %u/#\n").unwrap();
        assert!(!acl.allows(&who("$SYS", None), "$SYS/broker/uptime", Access::Read));
        assert!(!acl.allows(&who("c", Some("$SYS")), "$SYS/x", Access::Read));
        assert!(acl.allows(&who("c", Some("u")), "u/x", Access::Read));
        assert!(!acl.allows_subscribe(&who("$SYS", None), "$SYS/#"));
    }

    #[test]
    fn sys_topics_only_where_a_rule_names_them_mqtt_4_7_2_1() {
        let acl = Acl::parse("topic read #\n").unwrap();
        let anon = who("c", None);
        assert!(acl.allows(&anon, "a/b", Access::Read));
        assert!(!acl.allows(&anon, "$SYS/broker/uptime", Access::Read));
        let acl = Acl::parse(FILE).unwrap();
        let alice = who("a", Some("alice"));
        assert!(acl.allows(&alice, "$SYS/broker/uptime", Access::Read));
        assert!(!acl.allows(&alice, "$SYS/broker/clients", Access::Read));
    }

    #[test]
    fn subscriptions_need_something_readable_and_nothing_denying_all_of_it() {
        let acl = Acl::parse(FILE).unwrap();
        let alice = who("a", Some("alice"));
        assert!(
            acl.allows_subscribe(&alice, "#"),
            "alice/# is readable under it"
        );
        assert!(acl.allows_subscribe(&alice, "+/x"));
        assert!(!acl.allows_subscribe(&alice, "alice/secret"));
        assert!(!acl.allows_subscribe(&alice, "bob/#"));
        assert!(acl.allows_subscribe(&alice, "$SYS/#"));
        assert!(
            !acl.allows_subscribe(&who("b", Some("bob")), "bob/out"),
            "write only"
        );
        let interop = Acl::parse("topic readwrite #\ntopic deny test/nosubscribe\n").unwrap();
        let anon = who("c", None);
        assert!(!interop.allows_subscribe(&anon, "test/nosubscribe"));
        assert!(interop.allows_subscribe(&anon, "test/#"));
        assert!(!interop.allows(&anon, "test/nosubscribe", Access::Read));
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let e = Acl::parse("topic read a\nuser\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Acl::parse("\n\ntopic read a/#/b\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = Acl::parse("grant all\n").unwrap_err();
        assert!(e.reason.contains("grant"));
    }

    proptest::proptest! {
        /// The compiled matcher agrees with substituting and matching the filter string.
        #[test]
        fn compiled_rules_agree_with_the_string_matcher(
            filter in "(a|b|\\+|\\$s|%c|x%u|%c-%u)(/(a|b|\\+|%c|%u))*(/#)?",
            topic in "(a|b|c1|xu1|c1-u1|\\$s)(/(a|b|c1|u1))*",
            client in "(c1|c2|\\+|\\$s)",
            user in proptest::option::of("(u1|u2|a/b|\\$s)"),
        ) {
            proptest::prop_assume!(halyard_codec::TopicFilter::new(&filter).is_ok());
            let rule = parse_rule(&format!("read {filter}"), true).unwrap();
            let who = Subject { client_id: &client, username: user.as_deref() };
            let expected = rule_matches(&rule, &who, |f| filter_matches(f, &topic));
            proptest::prop_assert_eq!(levels_match(&rule.levels, &who, &topic), expected);
        }
    }

    #[test]
    fn overlap_and_cover_agree_with_the_matcher_on_samples() {
        let topics = ["a", "a/b", "a/b/c", "b/c", "$SYS/x", "a/$x"];
        let filters = [
            "#", "a/#", "+/b", "a/+/c", "a/b", "$SYS/#", "+", "+/+/#", "b/+",
        ];
        for a in filters {
            for b in filters {
                let both = topics
                    .iter()
                    .any(|t| filter_matches(a, t) && filter_matches(b, t));
                if both {
                    assert!(filters_overlap(a, b), "{a} and {b} share a topic");
                }
                if filter_covers(a, b) {
                    for t in topics {
                        assert!(
                            !filter_matches(b, t) || filter_matches(a, t),
                            "{a} ⊇ {b} at {t}"
                        );
                    }
                }
            }
        }
    }
}
