//! Packet identifiers.

use std::num::NonZeroU16;

/// A packet identifier: never zero ([MQTT-2.2.1-3] / [MQTT-2.3.1-1]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The identifier for `value`, or `None` for zero.
    pub const fn new(value: u16) -> Option<PacketId> {
        match NonZeroU16::new(value) {
            Some(v) => Some(PacketId(v)),
            None => None,
        }
    }

    /// The identifier as a number, 1 to 65535.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The identifier after this one, wrapping from 65535 to 1.
    pub const fn next(self) -> PacketId {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(v) => PacketId(v),
            None => PacketId(NonZeroU16::MIN),
        }
    }
}

impl From<NonZeroU16> for PacketId {
    fn from(v: NonZeroU16) -> Self {
        PacketId(v)
    }
}

impl std::fmt::Display for PacketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_not_a_packet_id() {
        assert_eq!(PacketId::new(0), None);
        assert_eq!(PacketId::new(1).map(PacketId::get), Some(1));
    }

    #[test]
    fn next_wraps_past_zero() {
        assert_eq!(PacketId::new(65535).map(PacketId::next), PacketId::new(1));
        assert_eq!(PacketId::new(7).map(PacketId::next), PacketId::new(8));
    }
}
