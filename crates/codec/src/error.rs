//! Decoding and encoding errors, and the reason code each one puts on the wire.

use crate::ReasonCode;

/// Why bytes from a peer are not an acceptable packet.
///
/// Every variant maps to the reason code the receiver must answer with
/// ([`DecodeError::reason_code`]); the messages name the normative statement broken where the
/// specifications give one, so a log line says exactly what the peer did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The fixed header announces a packet larger than the receiver accepts
    /// (MQTT 5 Maximum Packet Size). Detected before the body is buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Total size the fixed header announces, header included.
        size: u64,
        /// The limit in force.
        max: u32,
    },
    /// The bytes do not follow the packet format (reason code 0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The bytes are well formed but break a rule of the protocol (reason code 0x82).
    #[error("protocol error: {0}")]
    ProtocolError(&'static str),
    /// A Topic Alias of 0 (reason code 0x94, Topic Alias invalid) [MQTT-3.3.2-8].
    #[error("Topic Alias of 0 [MQTT-3.3.2-8]")]
    TopicAliasZero,
    /// A CONNECT names a protocol level this codec does not speak (reason code 0x84, or CONNACK
    /// return code 0x01 for MQTT 3.x).
    #[error("unsupported protocol level {0} [MQTT-3.1.2-2]")]
    UnsupportedProtocolVersion(u8),
    /// A CONNECT names a protocol other than "MQTT" (or "MQIsdp" at level 3) [MQTT-3.1.2-1].
    #[error("invalid protocol name in CONNECT [MQTT-3.1.2-1]")]
    InvalidProtocolName,
}

impl DecodeError {
    /// The reason code to send the peer (in a CONNACK or DISCONNECT) before closing.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::Malformed(_) => ReasonCode::MALFORMED_PACKET,
            DecodeError::ProtocolError(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::TopicAliasZero => ReasonCode::TOPIC_ALIAS_INVALID,
            DecodeError::UnsupportedProtocolVersion(_) | DecodeError::InvalidProtocolName => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
        }
    }
}

/// Why a packet value cannot be written to the wire.
///
/// These are mistakes of the caller (the broker or client built an impossible packet), not of a
/// peer; the broker treats them as bugs to log, and never sends half a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet would need a remaining length above 268,435,455 bytes.
    #[error("packet too large to encode: remaining length {0} exceeds 268435455")]
    PacketTooLarge(usize),
    /// The packet would be larger than the limit it was encoded for (a peer's Maximum
    /// Packet Size).
    #[error("packet of {size} bytes exceeds the limit of {max}")]
    OverLimit {
        /// Its size, fixed header included.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A length-prefixed field is over 65,535 bytes.
    #[error("{0} is longer than 65535 bytes")]
    FieldTooLong(&'static str),
    /// The packet's fields contradict each other or the protocol level.
    #[error("invalid packet: {0}")]
    Invalid(&'static str),
}
