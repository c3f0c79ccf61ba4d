//! The flapping rule (EMQX's flapping detection): a client identifier that connects more
//! than `flapping_max_connects` times within `flapping_window_secs` is refused until its
//! window has passed. It owns the table of recent connections per identifier, which holds
//! only identifiers seen within about one window, each as a keyed 64-bit hash (an
//! identifier can be 64 KiB long: the table must not keep it), and never more than
//! [`MAX_ENTRIES`]; it decides, the caller counts and refuses.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// The most identifiers the table holds (24 MB at most). Past it the table starts again:
/// the rule fails open rather than growing.
const MAX_ENTRIES: usize = 1_000_000;

/// Recent connections per client identifier.
#[derive(Debug)]
pub(crate) struct Flapping {
    max: u32,
    window_ms: u64,
    /// Keys the identifiers' hashes (random per broker, so they cannot be made to collide).
    hasher: foldhash::quality::RandomState,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Per identifier: when its window began (ms) and connections since.
    by_id: HashMap<u64, (u64, u32), foldhash::fast::RandomState>,
    /// When windows that are over were last forgotten (ms).
    pruned_ms: u64,
}

impl Flapping {
    /// The rule with `max` connections per `window_secs`; `max` 0 admits everything.
    pub(crate) fn new(max: u32, window_secs: u32) -> Flapping {
        Flapping {
            max,
            window_ms: u64::from(window_secs) * 1000,
            hasher: foldhash::quality::RandomState::default(),
            table: Mutex::default(),
        }
    }

    /// Counts a connection of `client_id` at `now_ms` (any monotonic origin); whether it is
    /// within the rule.
    pub(crate) fn admit(&self, client_id: &str, now_ms: u64) -> bool {
        if self.max == 0 {
            return true;
        }
        let window = self.window_ms;
        let key = self.hasher.hash_one(client_id);
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        // Forget windows that are over, at most once per second.
        if now_ms.saturating_sub(t.pruned_ms) >= 1000 {
            t.by_id
                .retain(|_, (start, _)| now_ms.saturating_sub(*start) < window);
            t.pruned_ms = now_ms;
        }
        if t.by_id.len() >= MAX_ENTRIES {
            t.by_id.clear();
        }
        let entry = t.by_id.entry(key).or_insert((now_ms, 0));
        if now_ms.saturating_sub(entry.0) >= window {
            *entry = (now_ms, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.max
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().map(|t| t.by_id.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_past_the_maximum_until_the_window_passes() {
        let f = Flapping::new(3, 10);
        assert!((0..3).all(|i| f.admit("a", i)));
        assert!(!f.admit("a", 5));
        assert!(f.admit("b", 5), "other identifiers are not affected");
        assert!(f.admit("a", 10_000));
    }

    #[test]
    fn the_table_forgets_identifiers_whose_window_is_over() {
        let f = Flapping::new(3, 1);
        for i in 0..1000u64 {
            f.admit(&format!("id-{i}"), i);
        }
        f.admit("late", 5_000);
        assert_eq!(f.len(), 1);
    }
}
