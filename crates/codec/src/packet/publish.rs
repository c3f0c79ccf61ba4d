//! PUBLISH (section 3.3): a message, in either direction.
//!
//! The topic, payload and string properties of a decoded PUBLISH are slices of the read
//! buffer: decoding copies no payload.

use super::{Lengths, props_wire_len, read_packet_id};
use crate::properties::{PropertySet, decode_properties, properties_len, put_properties};
use crate::topic::TopicError;
use crate::wire::{Reader, put_binary, string_error};
use crate::{
    DecodeError, EncodeError, PacketId, ProtocolVersion, PublishProperties, QoS, TopicName,
};
use bytes::{BufMut, Bytes, BytesMut};

/// PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP: this may be a re-delivery.
    pub dup: bool,
    /// QoS of this delivery.
    pub qos: QoS,
    /// RETAIN.
    pub retain: bool,
    /// Topic Name. Empty only in an MQTT 5 PUBLISH that names its topic by Topic Alias.
    pub topic: TopicName,
    /// Packet Identifier: present exactly when QoS is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// PUBLISH properties (MQTT 5).
    pub properties: PublishProperties,
    /// Application Message.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0 message with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            properties: PublishProperties::default(),
            payload: payload.into(),
        }
    }

    pub(super) fn decode(
        flags: u8,
        r: &mut Reader,
        v: ProtocolVersion,
    ) -> Result<Publish, DecodeError> {
        let dup = flags & 0b1000 != 0;
        let retain = flags & 0b0001 != 0;
        // The fixed header check in `crate::decode` already refused QoS 3 [MQTT-3.3.1-4].
        let qos = QoS::from_bits((flags >> 1) & 0b11)
            .ok_or(DecodeError::Malformed("PUBLISH with QoS 3 [MQTT-3.3.1-4]"))?;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::ProtocolError(
                "DUP flag set on a QoS 0 PUBLISH [MQTT-3.3.1-2]",
            ));
        }
        let topic = TopicName::from_wire(r.binary()?).map_err(|e| match e {
            TopicError::String(e) => string_error(e),
            _ => DecodeError::Malformed("Topic Name contains a wildcard character [MQTT-3.3.2-2]"),
        })?;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            Some(read_packet_id(r)?)
        };
        let properties: PublishProperties = if v.is_v5() {
            decode_properties(r)?
        } else {
            PublishProperties::default()
        };
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(if v.is_v5() {
                DecodeError::ProtocolError("empty Topic Name without a Topic Alias")
            } else {
                DecodeError::Malformed("empty Topic Name [MQTT-4.7.3-1]")
            });
        }
        Ok(Publish {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            properties,
            payload: r.rest(),
        })
    }

    pub(super) fn fixed_header_flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | (self.qos.as_u8() << 1) | u8::from(self.retain)
    }

    pub(super) fn lengths(&self, v: ProtocolVersion) -> Result<Lengths, EncodeError> {
        if (self.qos == QoS::AtMostOnce) != self.packet_id.is_none() {
            return Err(EncodeError::Invalid(
                "a PUBLISH has a Packet Identifier exactly when its QoS is 1 or 2",
            ));
        }
        if self.topic.is_empty() && !(v.is_v5() && self.properties.topic_alias.is_some()) {
            return Err(EncodeError::Invalid(
                "a PUBLISH without a Topic Name needs a Topic Alias (MQTT 5)",
            ));
        }
        let mut len = Lengths::default();
        if v.is_v5() {
            self.properties.check_encodable()?;
            len.props = properties_len(&self.properties);
        }
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        len.body =
            2 + self.topic.len() + id_len + props_wire_len(v, len.props) + self.payload.len();
        Ok(len)
    }

    pub(super) fn write(&self, v: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        put_binary(buf, self.topic.as_bytes());
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if v.is_v5() {
            put_properties(buf, &self.properties, len.props);
        }
        buf.put_slice(&self.payload);
    }
}
