//! Incremental decoding: the fixed header, the maximum packet size, and handing the body to the
//! packet's own decoder.
//!
//! [`decode`] looks at the front of a read buffer. With too few bytes it returns `Ok(None)` and
//! leaves the buffer alone (reserving room for the rest of the packet); with a whole packet it
//! splits it off the buffer, so the packet's `Bytes` share the buffer's memory. The packet type,
//! flags and announced size are checked as soon as the fixed header is in, so a peer cannot make
//! the receiver buffer a packet it will refuse.

use crate::packet::{Packet, PacketType};

use crate::{DecodeError, ProtocolVersion};
use bytes::{Buf, BytesMut};

/// The most [`decode`] reserves ahead for a packet still arriving.
const RESERVE_AHEAD_MAX: usize = 64 * 1024;

/// What the decoder needs to know about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The connection's protocol level (from its CONNECT). CONNECT itself is decoded at the
    /// level it names, whatever this says.
    pub version: ProtocolVersion,
    /// The largest packet accepted, fixed header included, in bytes.
    pub max_packet_size: u32,
}

impl DecodeOptions {
    /// Options for `version` with no limit beyond the protocol's own.
    pub const fn new(version: ProtocolVersion) -> DecodeOptions {
        DecodeOptions {
            version,
            max_packet_size: u32::MAX,
        }
    }

    /// The same options with a maximum packet size.
    pub const fn with_max_packet_size(mut self, max_packet_size: u32) -> DecodeOptions {
        self.max_packet_size = max_packet_size;
        self
    }
}

/// Checks the first byte: a packet type that exists at this level, with the flags its type
/// requires (section 2.1.3 / 2.2.2).
fn check_first_byte(first: u8, version: ProtocolVersion) -> Result<PacketType, DecodeError> {
    let ptype = PacketType::from_nibble(first >> 4)
        .ok_or(DecodeError::Malformed("reserved packet type 0"))?;
    if ptype == PacketType::Auth && !version.is_v5() {
        return Err(DecodeError::Malformed(
            "reserved packet type 15 on MQTT 3.x",
        ));
    }
    let flags = first & 0x0F;
    let ok = match ptype {
        PacketType::Publish => flags & 0b0110 != 0b0110,
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => {
            // MQTT 3.1 let these carry DUP; 3.1.1 and 5.0 fix the flags at 0010.
            flags == 0b0010 || (version == ProtocolVersion::V3_1 && flags == 0b1010)
        }
        _ => flags == 0,
    };
    if !ok {
        return Err(if ptype == PacketType::Publish {
            DecodeError::Malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
        } else {
            DecodeError::Malformed("invalid fixed header flags for the packet type [MQTT-2.2.2-2]")
        });
    }
    Ok(ptype)
}

/// Reads the Remaining Length after the first byte: `Ok(None)` if it is not complete yet,
/// otherwise the value and how many bytes it took.
fn remaining_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value: usize = 0;
    for (i, byte) in bytes.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        return Err(DecodeError::Malformed(
            "Remaining Length longer than four bytes (section 2.2.3)",
        ));
    }
    Ok(None)
}

/// The total size of the packet at the front of `buf` (fixed header included), once its
/// fixed header is complete; `Ok(None)` before that. Checks the first byte as `decode` does.
pub fn peek_packet_size(
    buf: &[u8],
    version: ProtocolVersion,
) -> Result<Option<usize>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    check_first_byte(first, version)?;
    Ok(remaining_length(rest)?.map(|(len, n)| 1 + n + len))
}

/// Decodes the packet at the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed (nothing is consumed), `Ok(Some(packet))`
/// after removing exactly that packet's bytes, or an error for a packet that must close the
/// connection (see [`DecodeError::reason_code`]). After an error the buffer's contents are
/// unspecified: the connection is over.
pub fn decode(buf: &mut BytesMut, opts: &DecodeOptions) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let ptype = check_first_byte(first, opts.version)?;
    let Some((body_len, len_bytes)) = remaining_length(buf.get(1..).unwrap_or_default())? else {
        return Ok(None);
    };
    let header_len = 1 + len_bytes;
    let total = header_len + body_len;
    if total as u64 > u64::from(opts.max_packet_size) {
        return Err(DecodeError::PacketTooLarge {
            size: total as u64,
            max: opts.max_packet_size,
        });
    }
    if buf.len() < total {
        // Room for the rest of the packet, so the caller's next read can take it in one go;
        // capped, so a peer announcing a huge packet cannot make us allocate it up front.
        buf.reserve((total - buf.len()).min(RESERVE_AHEAD_MAX));
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(header_len);
    Packet::decode_body(ptype, first & 0x0F, frame.freeze(), opts.version).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_needs_more_bytes_until_complete() {
        assert_eq!(remaining_length(&[]), Ok(None));
        assert_eq!(remaining_length(&[0x80]), Ok(None));
        assert_eq!(remaining_length(&[0x80, 0x80, 0x80]), Ok(None));
        assert_eq!(remaining_length(&[0x80, 0x01]), Ok(Some((128, 2))));
        assert!(remaining_length(&[0x80, 0x80, 0x80, 0x80]).is_err());
    }

    #[test]
    fn too_large_is_refused_from_the_fixed_header_alone() {
        // PUBLISH announcing 1000 bytes, only the fixed header present.
        let mut buf = BytesMut::from(&[0x30, 0xE8, 0x07][..]);
        let opts = DecodeOptions::new(ProtocolVersion::V5).with_max_packet_size(100);
        assert_eq!(
            decode(&mut buf, &opts),
            Err(DecodeError::PacketTooLarge {
                size: 1003,
                max: 100
            })
        );
    }
}
