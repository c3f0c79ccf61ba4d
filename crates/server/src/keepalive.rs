//! The keep-alive clock of parked connections, which have no task and no timer of their own.
//!
//! A wheel of [`TICK`]-long slots. Each slot is a list threaded through the connections'
//! handles ([`WheelLink`]), so being on the wheel allocates nothing. A handle is on the wheel
//! at most once: a keep-alive deadline only ever moves later, so a connection that parks
//! again while its entry is pending leaves that entry; when it fires, the woken connection
//! checks its real deadline and, if still alive, parks again with a new entry. Deadlines are
//! rounded up to the next tick, so nobody is woken early; the sweeper runs every tick, so a
//! keep-alive timeout is noticed at most about two ticks after it ran out.
//!
//! Lock order: a handle's lock, then the wheel's. The sweeper never holds the wheel's lock
//! while it takes a handle's.

use crate::connection::ConnectionHandle;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Wake;
use std::time::{Duration, Instant};

/// How long one slot of the wheel lasts, and how often the sweeper runs.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// Slots on the wheel (about 100 s); a deadline further away goes round more than once.
const SLOTS: u32 = 2048;

/// A handle's place on the wheel, kept under the handle's lock.
#[derive(Default)]
pub(crate) struct WheelLink {
    next: Option<Arc<ConnectionHandle>>,
    /// The tick it is due at; 0: not on the wheel.
    at: u32,
}

pub(crate) struct KeepAliveWheel {
    epoch: Instant,
    slots: Mutex<Vec<Option<Arc<ConnectionHandle>>>>,
}

impl std::fmt::Debug for KeepAliveWheel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAliveWheel").finish_non_exhaustive()
    }
}

impl KeepAliveWheel {
    pub(crate) fn new() -> KeepAliveWheel {
        KeepAliveWheel {
            epoch: Instant::now(),
            slots: Mutex::new(vec![None; SLOTS as usize]),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Option<Arc<ConnectionHandle>>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whole ticks since the wheel started, at `t`.
    fn tick(&self, t: Instant) -> u32 {
        let since = t.saturating_duration_since(self.epoch);
        u32::try_from(since.as_millis() / TICK.as_millis()).unwrap_or(u32::MAX)
    }

    /// Links `handle` into the slot of tick `at`.
    fn push(&self, handle: &Arc<ConnectionHandle>, link: &mut WheelLink, at: u32) {
        link.at = at;
        if let Some(slot) = self.lock().get_mut((at % SLOTS) as usize) {
            link.next = slot.replace(handle.clone());
        }
    }

    /// Puts a parked connection on the wheel for `deadline`, unless it is on it already.
    /// `link` is the handle's own, under the handle's lock.
    pub(crate) fn insert(
        &self,
        handle: &Arc<ConnectionHandle>,
        link: &mut WheelLink,
        deadline: Instant,
    ) {
        if link.at != 0 {
            return;
        }
        // Rounded up (never early), and never 0.
        let at = self.tick(deadline).saturating_add(1);
        self.push(handle, link, at);
    }

    /// Wakes the connections due by `now`, from tick `*next` on; advances `*next`.
    pub(crate) fn sweep(&self, next: &mut u32, now: Instant) {
        let now_s = self.tick(now);
        while *next <= now_s {
            let s = *next;
            *next += 1;
            let mut head = self
                .lock()
                .get_mut((s % SLOTS) as usize)
                .and_then(Option::take);
            while let Some(h) = head {
                let mut state = h.lock();
                head = state.wheel.next.take();
                let at = state.wheel.at;
                if at > now_s {
                    // Due on a later turn of the wheel.
                    self.push(&h, &mut state.wheel, at);
                } else {
                    state.wheel.at = 0;
                    drop(state);
                    h.wake_by_ref();
                }
            }
        }
    }

    /// Takes every handle off the wheel (at shutdown: the handles refer to the server).
    pub(crate) fn clear(&self) {
        let heads: Vec<_> = self.lock().iter_mut().filter_map(Option::take).collect();
        for mut head in heads.into_iter().map(Some) {
            // One by one: dropping a long list at once would recurse through it.
            while let Some(h) = head {
                let mut state = h.lock();
                head = state.wheel.next.take();
                state.wheel.at = 0;
            }
        }
    }
}
