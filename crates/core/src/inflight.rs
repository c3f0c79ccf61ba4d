//! The outbound messages of one session sent but not yet fully acknowledged, in the order
//! they were first sent.
//!
//! Besides the ordered entries it keeps two things so that the delivery path does no scans:
//! how many entries still await a re-send after a reconnect, and, while the window is large,
//! a bitmap of the packet identifiers in use (allocated only then, freed when the window
//! empties, so idle sessions carry none).

use crate::session::Inflight;
use halyard_codec::PacketId;
use std::collections::VecDeque;

/// Entries from which a bitmap of identifiers is worth its 8 KiB.
const BITMAP_FROM: usize = 32;

#[derive(Debug, Default)]
pub(crate) struct InflightWindow {
    entries: VecDeque<Inflight>,
    resend_pending: usize,
    ids: Option<Box<[u64; 1024]>>,
}

impl InflightWindow {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries sent on this connection (not waiting to be re-sent).
    pub(crate) fn on_wire(&self) -> usize {
        self.entries.len() - self.resend_pending
    }

    pub(crate) fn resend_pending(&self) -> usize {
        self.resend_pending
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Inflight> {
        self.entries.iter()
    }

    /// Every in-flight delivery, to change its message (not its identity).
    pub(crate) fn deliveries_mut(&mut self) -> impl Iterator<Item = &mut crate::session::Delivery> {
        self.entries.iter_mut().map(|e| &mut e.delivery)
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Inflight> {
        self.entries.get(i)
    }

    pub(crate) fn position(&self, f: impl FnMut(&Inflight) -> bool) -> Option<usize> {
        self.entries.iter().position(f)
    }

    /// Whether a packet identifier is in use.
    pub(crate) fn contains_id(&self, id: PacketId) -> bool {
        match &self.ids {
            Some(bits) => {
                let v = usize::from(id.get());
                bits.get(v / 64).is_some_and(|w| w & (1 << (v % 64)) != 0)
            }
            None => self.entries.iter().any(|e| e.packet_id == id),
        }
    }

    fn set_bit(&mut self, id: PacketId, on: bool) {
        if let Some(bits) = &mut self.ids {
            let v = usize::from(id.get());
            if let Some(w) = bits.get_mut(v / 64) {
                if on {
                    *w |= 1 << (v % 64);
                } else {
                    *w &= !(1 << (v % 64));
                }
            }
        }
    }

    pub(crate) fn push(&mut self, entry: Inflight) {
        if entry.resend {
            self.resend_pending += 1;
        }
        if self.ids.is_none() && self.entries.len() + 1 >= BITMAP_FROM {
            let mut bits = Box::new([0u64; 1024]);
            for e in &self.entries {
                let v = usize::from(e.packet_id.get());
                if let Some(w) = bits.get_mut(v / 64) {
                    *w |= 1 << (v % 64);
                }
            }
            self.ids = Some(bits);
        }
        self.set_bit(entry.packet_id, true);
        self.entries.push_back(entry);
    }

    pub(crate) fn remove(&mut self, i: usize) -> Option<Inflight> {
        let e = self.entries.remove(i)?;
        if e.resend {
            self.resend_pending -= 1;
        }
        self.set_bit(e.packet_id, false);
        if self.entries.is_empty() {
            self.ids = None;
        }
        Some(e)
    }

    /// Changes the stage of entry `i`.
    pub(crate) fn set_stage(&mut self, i: usize, stage: crate::session::Stage) {
        if let Some(e) = self.entries.get_mut(i) {
            e.stage = stage;
        }
    }

    /// Entry `i` has been re-sent on this connection.
    pub(crate) fn mark_resent(&mut self, i: usize) {
        if let Some(e) = self.entries.get_mut(i)
            && e.resend
        {
            e.resend = false;
            self.resend_pending -= 1;
        }
    }

    /// Every entry is to be re-sent (a new connection resumed the session).
    pub(crate) fn mark_all_for_resend(&mut self) {
        for e in &mut self.entries {
            e.resend = true;
        }
        self.resend_pending = self.entries.len();
    }

    /// Takes out the entries `f` selects, keeping the others in order.
    pub(crate) fn take_where(&mut self, mut f: impl FnMut(&Inflight) -> bool) -> Vec<Inflight> {
        let old = std::mem::take(self);
        let mut taken = Vec::new();
        for e in old.entries {
            if f(&e) {
                taken.push(e);
            } else {
                self.push(e);
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::session::{Delivery, Stage};
    use bytes::Bytes;
    use halyard_codec::{PublishProperties, QoS, TopicName};
    use std::sync::Arc;

    fn entry(id: u16, resend: bool) -> Inflight {
        let msg = Arc::new(Message {
            topic: TopicName::new("t").unwrap(),
            payload: Bytes::new(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: PublishProperties::default(),
            expires_at: None,
            origin: None,
            packed_user_properties: bytes::Bytes::new(),
            held: crate::message::Held::none(),
        });
        Inflight {
            packet_id: PacketId::new(id).unwrap(),
            delivery: Delivery {
                msg,
                qos: QoS::AtLeastOnce,
                retain: false,
                sub_ids: Vec::new(),
                shared: None,
            },
            stage: Stage::Published,
            resend,
        }
    }

    #[test]
    fn identifiers_and_resend_counts_stay_consistent_across_the_bitmap_threshold() {
        let mut w = InflightWindow::default();
        for id in 1..=100u16 {
            w.push(entry(id, id % 3 == 0));
        }
        assert!(w.ids.is_some(), "bitmap in use for a large window");
        assert_eq!(w.resend_pending(), 33);
        for id in [1u16, 50, 100] {
            assert!(w.contains_id(PacketId::new(id).unwrap()));
        }
        assert!(!w.contains_id(PacketId::new(101).unwrap()));
        let p = w.position(|e| e.packet_id.get() == 50).unwrap();
        w.remove(p);
        assert!(!w.contains_id(PacketId::new(50).unwrap()));
        let taken = w.take_where(|e| e.packet_id.get() > 90);
        assert_eq!(taken.len(), 10);
        assert_eq!(w.len(), 89);
        assert!(!w.contains_id(PacketId::new(95).unwrap()));
        assert!(w.contains_id(PacketId::new(3).unwrap()));
        w.mark_all_for_resend();
        assert_eq!((w.resend_pending(), w.on_wire()), (89, 0));
        w.mark_resent(0);
        assert_eq!(w.on_wire(), 1);
        while w.len() > 0 {
            w.remove(0);
        }
        assert!(w.ids.is_none(), "bitmap freed when the window empties");
        assert_eq!(w.resend_pending(), 0);
    }
}
