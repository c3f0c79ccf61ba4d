//! The fifteen MQTT control packets: their types, and dispatch of decoding and encoding to the
//! module of each packet.
//!
//! Each packet module owns one packet's variable header and payload for every protocol level;
//! the fixed header (type, flags, remaining length) is handled here and in `crate::decode`.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod suback;
mod subscribe;
mod unsubscribe;

pub use ack::Ack;
pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use publish::Publish;
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, SubscriptionOptions};
pub use unsubscribe::{UnsubAck, Unsubscribe};

use crate::reason::ReasonContext;
use crate::wire::{MAX_REMAINING_LENGTH, Reader, put_varint, varint_len};
use crate::{DecodeError, EncodeError, PacketId, ProtocolVersion};
use bytes::{BufMut, Bytes, BytesMut};

/// The control packet types (the high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Client request to connect.
    Connect = 1,
    /// Connect acknowledgement.
    ConnAck = 2,
    /// Publish message.
    Publish = 3,
    /// Publish acknowledgement (QoS 1).
    PubAck = 4,
    /// Publish received (QoS 2, part 1).
    PubRec = 5,
    /// Publish release (QoS 2, part 2).
    PubRel = 6,
    /// Publish complete (QoS 2, part 3).
    PubComp = 7,
    /// Subscribe request.
    Subscribe = 8,
    /// Subscribe acknowledgement.
    SubAck = 9,
    /// Unsubscribe request.
    Unsubscribe = 10,
    /// Unsubscribe acknowledgement.
    UnsubAck = 11,
    /// Ping request.
    PingReq = 12,
    /// Ping response.
    PingResp = 13,
    /// Disconnect notification.
    Disconnect = 14,
    /// Authentication exchange (MQTT 5 only).
    Auth = 15,
}

impl PacketType {
    /// The type for a first-byte high nibble; `None` for the reserved value 0.
    pub const fn from_nibble(n: u8) -> Option<PacketType> {
        Some(match n {
            1 => PacketType::Connect,
            2 => PacketType::ConnAck,
            3 => PacketType::Publish,
            4 => PacketType::PubAck,
            5 => PacketType::PubRec,
            6 => PacketType::PubRel,
            7 => PacketType::PubComp,
            8 => PacketType::Subscribe,
            9 => PacketType::SubAck,
            10 => PacketType::Unsubscribe,
            11 => PacketType::UnsubAck,
            12 => PacketType::PingReq,
            13 => PacketType::PingResp,
            14 => PacketType::Disconnect,
            15 => PacketType::Auth,
            _ => return None,
        })
    }

    /// The packet's name as the specifications write it.
    pub const fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Auth => "AUTH",
        }
    }
}

impl std::fmt::Display for PacketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(Ack),
    /// PUBREC.
    PubRec(Ack),
    /// PUBREL.
    PubRel(Ack),
    /// PUBCOMP.
    PubComp(Ack),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5 only).
    Auth(Auth),
}

macro_rules! into_packet {
    ($($t:ident => $variant:ident),*) => {$(
        impl From<$t> for Packet {
            fn from(p: $t) -> Packet {
                Packet::$variant(p)
            }
        }
    )*};
}
into_packet!(ConnAck => ConnAck, Publish => Publish, Subscribe => Subscribe, SubAck => SubAck,
    Unsubscribe => Unsubscribe, UnsubAck => UnsubAck, Disconnect => Disconnect, Auth => Auth);

impl From<Connect> for Packet {
    fn from(c: Connect) -> Packet {
        Packet::Connect(Box::new(c))
    }
}

/// Lengths computed before encoding, so nothing is measured twice.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lengths {
    /// The remaining length: everything after the fixed header.
    pub(crate) body: usize,
    /// The content length of the packet's property block.
    pub(crate) props: usize,
    /// The content length of a second property block (CONNECT's Will Properties).
    pub(crate) will_props: usize,
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// Decodes a packet body (everything after the fixed header) whose fixed header was
    /// already checked by `crate::decode`.
    pub(crate) fn decode_body(
        ptype: PacketType,
        flags: u8,
        body: Bytes,
        version: ProtocolVersion,
    ) -> Result<Packet, DecodeError> {
        let mut r = Reader::new(body);
        let v = version;
        Ok(match ptype {
            PacketType::Connect => Packet::Connect(Box::new(Connect::decode(&mut r)?)),
            PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(&mut r, v)?),
            PacketType::Publish => Packet::Publish(Publish::decode(flags, &mut r, v)?),
            PacketType::PubAck => Packet::PubAck(Ack::decode(&mut r, v, ReasonContext::PubAck)?),
            PacketType::PubRec => Packet::PubRec(Ack::decode(&mut r, v, ReasonContext::PubRec)?),
            PacketType::PubRel => Packet::PubRel(Ack::decode(&mut r, v, ReasonContext::PubRel)?),
            PacketType::PubComp => Packet::PubComp(Ack::decode(&mut r, v, ReasonContext::PubComp)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(&mut r, v)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode(&mut r, v)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(&mut r, v)?),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(&mut r, v)?),
            PacketType::PingReq | PacketType::PingResp => {
                if !r.is_empty() {
                    return Err(DecodeError::Malformed(
                        "PINGREQ and PINGRESP have a remaining length of 0",
                    ));
                }
                if ptype == PacketType::PingReq {
                    Packet::PingReq
                } else {
                    Packet::PingResp
                }
            }
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(&mut r, v)?),
            PacketType::Auth => Packet::Auth(Auth::decode(&mut r)?),
        })
    }

    /// The first byte of the fixed header: type and flags.
    fn first_byte(&self) -> u8 {
        let flags = match self {
            Packet::Publish(p) => p.fixed_header_flags(),
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        ((self.packet_type() as u8) << 4) | flags
    }

    fn lengths(&self, version: ProtocolVersion) -> Result<Lengths, EncodeError> {
        let v = version;
        match self {
            Packet::Connect(p) => p.lengths(),
            Packet::ConnAck(p) => p.lengths(v),
            Packet::Publish(p) => p.lengths(v),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                Ok(p.lengths(v))
            }
            Packet::Subscribe(p) => p.lengths(v),
            Packet::SubAck(p) => Ok(p.lengths(v)),
            Packet::Unsubscribe(p) => p.lengths(v),
            Packet::UnsubAck(p) => Ok(p.lengths(v)),
            Packet::PingReq | Packet::PingResp => Ok(Lengths::default()),
            Packet::Disconnect(p) => Ok(p.lengths(v)),
            Packet::Auth(p) => p.lengths(v),
        }
    }

    fn write_body(&self, version: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        let v = version;
        match self {
            Packet::Connect(p) => p.write(len, buf),
            Packet::ConnAck(p) => p.write(v, len, buf),
            Packet::Publish(p) => p.write(v, len, buf),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.write(v, len, buf)
            }
            Packet::Subscribe(p) => p.write(v, len, buf),
            Packet::SubAck(p) => p.write(v, len, buf),
            Packet::Unsubscribe(p) => p.write(v, len, buf),
            Packet::UnsubAck(p) => p.write(v, len, buf),
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(p) => p.write(v, len, buf),
            Packet::Auth(p) => p.write(len, buf),
        }
    }

    /// The number of bytes [`Packet::encode`] writes for `version`, fixed header included
    /// (what MQTT 5 calls the packet size, compared with a peer's Maximum Packet Size).
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let len = self.checked_lengths(version)?;
        Ok(1 + varint_len(len.body) + len.body)
    }

    fn checked_lengths(&self, version: ProtocolVersion) -> Result<Lengths, EncodeError> {
        let len = self.lengths(version)?;
        if len.body > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge(len.body));
        }
        Ok(len)
    }

    /// Appends the packet, encoded for `version`, to `buf`. A CONNECT is always encoded at
    /// its own `protocol` level. Fields that `version` cannot carry (MQTT 5 properties and
    /// reason codes on 3.x) are left out; 3.x return codes are mapped from reason codes.
    /// On error nothing is written.
    pub fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_at_most(version, usize::MAX, buf)
    }

    /// Like [`Packet::encode`], but fails with [`EncodeError::OverLimit`] (writing
    /// nothing) when the packet, fixed header included, would be larger than `max` bytes: a
    /// peer's Maximum Packet Size. Sizes the packet once.
    pub fn encode_at_most(
        &self,
        version: ProtocolVersion,
        max: usize,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let len = self.checked_lengths(version)?;
        let total = 1 + varint_len(len.body) + len.body;
        if total > max {
            return Err(EncodeError::OverLimit { size: total, max });
        }
        buf.reserve(total);
        buf.put_u8(self.first_byte());
        put_varint(buf, len.body);
        self.write_body(version, &len, buf);
        Ok(())
    }
}

/// Reads a Packet Identifier, which must not be zero.
pub(crate) fn read_packet_id(r: &mut Reader) -> Result<PacketId, DecodeError> {
    PacketId::new(r.u16()?).ok_or(DecodeError::ProtocolError(
        "Packet Identifier of 0 [MQTT-2.3.1-1]",
    ))
}

/// The length of a property block on the wire (its length prefix and content), or 0 on 3.x.
pub(crate) fn props_wire_len(version: ProtocolVersion, content: usize) -> usize {
    if version.is_v5() {
        varint_len(content) + content
    } else {
        0
    }
}
