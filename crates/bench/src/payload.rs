//! The payload every benchmark message carries, and how subscribers account for it.
//!
//! The first 20 bytes are the publisher's number, the message's sequence number and the time
//! it was sent (nanoseconds since the run started); the rest is padding up to the chosen
//! size. A subscriber marks each (publisher, sequence) pair it sees, which gives loss and
//! duplicates exactly.

/// Bytes of the header at the start of every payload.
pub(crate) const HEADER: usize = 20;

/// Writes the header into the start of `payload` (at least [`HEADER`] bytes).
pub(crate) fn write_header(payload: &mut [u8], publisher: u32, seq: u64, sent_ns: u64) {
    let mut header = [0u8; HEADER];
    for (dst, src) in header.iter_mut().zip(
        publisher
            .to_be_bytes()
            .into_iter()
            .chain(seq.to_be_bytes())
            .chain(sent_ns.to_be_bytes()),
    ) {
        *dst = src;
    }
    if let Some(h) = payload.get_mut(..HEADER) {
        h.copy_from_slice(&header);
    }
}

/// Reads (publisher, sequence, sent_ns) from a payload.
pub(crate) fn read_header(payload: &[u8]) -> Option<(u32, u64, u64)> {
    let h = payload.get(..HEADER)?;
    let publisher = u32::from_be_bytes(h.get(..4)?.try_into().ok()?);
    let seq = u64::from_be_bytes(h.get(4..12)?.try_into().ok()?);
    let sent = u64::from_be_bytes(h.get(12..20)?.try_into().ok()?);
    Some((publisher, seq, sent))
}

/// Which sequence numbers of each publisher a subscriber has seen.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    bits: Vec<Vec<u64>>,
    /// Distinct messages seen.
    pub(crate) unique: u64,
    /// Messages seen more than once.
    pub(crate) duplicates: u64,
}

impl Seen {
    /// Records a message; returns whether it was new.
    pub(crate) fn mark(&mut self, publisher: u32, seq: u64) -> bool {
        let p = publisher as usize;
        if self.bits.len() <= p {
            self.bits.resize_with(p + 1, Vec::new);
        }
        let Some(words) = self.bits.get_mut(p) else {
            return false;
        };
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if words.len() <= word {
            words.resize(word + 1, 0);
        }
        let Some(w) = words.get_mut(word) else {
            return false;
        };
        if *w & (1 << bit) != 0 {
            self.duplicates += 1;
            false
        } else {
            *w |= 1 << bit;
            self.unique += 1;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_seen_counts_duplicates() {
        let mut p = [0u8; 64];
        write_header(&mut p, 7, 123_456, 99);
        assert_eq!(read_header(&p), Some((7, 123_456, 99)));
        assert_eq!(read_header(&p[..10]), None);
        let mut s = Seen::default();
        assert!(s.mark(7, 5));
        assert!(s.mark(7, 6));
        assert!(!s.mark(7, 5));
        assert!(s.mark(0, 5));
        assert_eq!((s.unique, s.duplicates), (3, 1));
    }
}
