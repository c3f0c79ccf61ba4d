//! The data representations of section 1.5: integers, variable byte integers, strings, binary
//! data and string pairs, read from a packet body and written into a buffer.
//!
//! [`Reader`] never reads past the packet it was given: every length is checked against what is
//! left, and running out is a malformed packet, never a panic.

use crate::{DecodeError, EncodeError, MqttString, StringError};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest value a Variable Byte Integer can carry (268,435,455), and so the largest
/// remaining length of a packet.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

const END: DecodeError = DecodeError::Malformed("a field runs past the end of the packet");

/// Reads one packet body (after the fixed header), front to back.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.buf.try_get_u8().map_err(|_| END)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.buf.try_get_u16().map_err(|_| END)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.buf.try_get_u32().map_err(|_| END)
    }

    /// A Variable Byte Integer (section 1.5.5): at most four bytes.
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let byte = self.u8()?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed(
            "Variable Byte Integer longer than four bytes (section 1.5.5)",
        ))
    }

    /// `n` bytes, shared with the packet buffer.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.buf.len() {
            return Err(END);
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Binary Data (section 1.5.6): a two-byte length, then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// A UTF-8 Encoded String (section 1.5.4).
    pub(crate) fn string(&mut self) -> Result<MqttString, DecodeError> {
        let bytes = self.binary()?;
        MqttString::from_bytes(bytes).map_err(string_error)
    }

    /// A body that must now be fully read; anything left over is malformed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                "bytes left over after the last field of the packet",
            ))
        }
    }

    /// A sub-reader over the next `n` bytes (a property block).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.take(n)?))
    }
}

pub(crate) fn string_error(e: StringError) -> DecodeError {
    match e {
        StringError::InvalidUtf8 => {
            DecodeError::Malformed("string is not well-formed UTF-8 [MQTT-1.5.4-1]")
        }
        StringError::NullCharacter => {
            DecodeError::Malformed("string contains U+0000 [MQTT-1.5.4-2]")
        }
        // A two-byte length cannot describe more than 65535 bytes.
        StringError::TooLong => DecodeError::Malformed("string is longer than 65535 bytes"),
    }
}

/// How many bytes `value` takes as a Variable Byte Integer.
pub(crate) const fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes a Variable Byte Integer; the caller has checked `value <= MAX_REMAINING_LENGTH`.
pub(crate) fn put_varint(buf: &mut BytesMut, value: usize) {
    let mut v = value;
    loop {
        // Truncation is the point: the low seven bits of what is left.
        let mut byte = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if v == 0 {
            break;
        }
    }
}

/// Checks that a length-prefixed field fits its two-byte prefix.
pub(crate) fn check_u16_len(len: usize, what: &'static str) -> Result<(), EncodeError> {
    if len > usize::from(u16::MAX) {
        Err(EncodeError::FieldTooLong(what))
    } else {
        Ok(())
    }
}

/// Writes Binary Data or a string; the caller has checked the length with `check_u16_len`
/// (strings are at most 65535 bytes by construction).
pub(crate) fn put_binary(buf: &mut BytesMut, bytes: &[u8]) {
    // Lengths were checked before encoding began; saturate rather than wrap if they were not.
    buf.put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    buf.put_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_bytes(v: usize) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_varint(&mut b, v);
        b.to_vec()
    }

    #[test]
    fn varint_boundaries_from_table_1_5_5() {
        let table: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for (value, bytes) in table {
            assert_eq!(varint_bytes(*value), *bytes, "{value}");
            assert_eq!(varint_len(*value), bytes.len());
            let mut r = Reader::new(Bytes::copy_from_slice(bytes));
            assert_eq!(r.varint().unwrap() as usize, *value);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn varint_of_five_bytes_is_malformed() {
        let mut r = Reader::new(Bytes::from_static(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]));
        assert!(matches!(r.varint(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn lengths_past_the_end_are_malformed() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x05, b'a', b'b']));
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
        let mut r = Reader::new(Bytes::from_static(&[0x00]));
        assert!(matches!(r.u16(), Err(DecodeError::Malformed(_))));
    }
}
