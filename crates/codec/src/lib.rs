//! A pure MQTT 3.1, 3.1.1 and 5.0 packet codec.
//!
//! This crate owns the wire format: the packet types, their validated building blocks
//! ([`TopicName`], [`TopicFilter`], [`PacketId`], [`QoS`], [`MqttString`], the MQTT 5
//! properties and reason codes), incremental decoding from a [`bytes::BytesMut`] and one-pass
//! encoding into one, and topic-filter matching.
//!
//! It deliberately does no I/O, keeps no connection state and knows nothing of tokio: the
//! broker's state machines (`halyard-core`) decide what a packet *means*; this crate only says
//! whether the bytes are a well-formed packet of the given protocol level, and rejects with a
//! [`DecodeError`] (which maps to the reason code the peer must be sent) everything the
//! specifications call malformed or a protocol error that can be seen from the bytes alone.
//!
//! Decoding copies no payload: a PUBLISH's topic, payload and string properties are
//! [`bytes::Bytes`] slices of the read buffer.
//!
//! ```
//! use bytes::BytesMut;
//! use halyard_codec::{decode, DecodeOptions, Packet, ProtocolVersion};
//!
//! let mut buf = BytesMut::from(&[0xC0u8, 0x00][..]); // PINGREQ
//! let opts = DecodeOptions::new(ProtocolVersion::V5);
//! assert_eq!(decode(&mut buf, &opts).unwrap(), Some(Packet::PingReq));
//! assert!(buf.is_empty());
//! ```

mod decode;
mod error;
mod packet;
mod packet_id;
mod properties;
mod qos;
mod reason;
mod string;
mod topic;
mod version;
mod wire;

pub use decode::{DecodeOptions, decode, peek_packet_size};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, Packet, PacketType, Publish, RetainHandling, SubAck,
    Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
pub use packet_id::PacketId;
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PayloadFormat, PublishProperties, SubscribeProperties, SubscriptionId, UnsubscribeProperties,
    UserProperty, WillProperties,
};
pub use qos::QoS;
pub use reason::ReasonCode;
pub use string::{MqttString, StringError};
pub use topic::{SharedFilter, TopicError, TopicFilter, TopicName, filter_matches};
pub use version::ProtocolVersion;
pub use wire::MAX_REMAINING_LENGTH;
