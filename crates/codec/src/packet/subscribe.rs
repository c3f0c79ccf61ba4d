//! SUBSCRIBE (section 3.8): topic filters with their subscription options.

use super::{Lengths, props_wire_len, read_packet_id};
use crate::properties::{PropertySet, decode_properties, properties_len, put_properties};
use crate::topic::TopicError;
use crate::wire::{Reader, put_binary, string_error};
use crate::{
    DecodeError, EncodeError, PacketId, ProtocolVersion, QoS, SubscribeProperties, TopicFilter,
};
use bytes::{BufMut, BytesMut};

/// Retain Handling (MQTT 5 subscription option): when retained messages are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe,
    /// 1: send them only if the subscription did not already exist.
    SendIfNew,
    /// 2: do not send them.
    DoNotSend,
}

/// The options of one subscription. On MQTT 3.x only `qos` exists on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local: do not send the subscriber its own messages.
    pub no_local: bool,
    /// Retain As Published: keep the RETAIN flag of forwarded messages.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with the given maximum QoS and everything else at its default.
    pub fn with_qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        }
    }

    fn decode(byte: u8, v: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
        let qos = QoS::from_bits(byte & 0b11).ok_or(if v.is_v5() {
            // 5.0 section 3.8.3.1.
            DecodeError::ProtocolError("subscription Maximum QoS of 3")
        } else {
            DecodeError::Malformed("subscription QoS of 3 [MQTT-3.8.3-4]")
        })?;
        if !v.is_v5() {
            if byte & 0xFC != 0 {
                return Err(DecodeError::Malformed(
                    "reserved bits of the requested QoS byte are not 0 [MQTT-3.8.3-4]",
                ));
            }
            return Ok(SubscriptionOptions::with_qos(qos));
        }
        if byte & 0xC0 != 0 {
            return Err(DecodeError::Malformed(
                "reserved bits of the Subscription Options are not 0 [MQTT-3.8.3-5]",
            ));
        }
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::ProtocolError("Retain Handling of 3")),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        })
    }

    fn encode(&self, v: ProtocolVersion) -> u8 {
        let mut b = self.qos.as_u8();
        if v.is_v5() {
            b |= u8::from(self.no_local) << 2;
            b |= u8::from(self.retain_as_published) << 3;
            b |= match self.retain_handling {
                RetainHandling::SendAtSubscribe => 0,
                RetainHandling::SendIfNew => 1,
                RetainHandling::DoNotSend => 2,
            } << 4;
        }
        b
    }
}

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet Identifier.
    pub packet_id: PacketId,
    /// SUBSCRIBE properties (MQTT 5).
    pub properties: SubscribeProperties,
    /// The requested subscriptions, at least one, in order.
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
}

/// Reads a topic filter, mapping a bad one to a malformed packet.
pub(super) fn read_filter(r: &mut Reader, v: ProtocolVersion) -> Result<TopicFilter, DecodeError> {
    let s = r.string()?;
    let filter = if v.is_v5() {
        TopicFilter::from_mqtt_string(s)
    } else {
        TopicFilter::from_mqtt_string_v3(s)
    };
    filter.map_err(|e| match e {
        TopicError::String(e) => string_error(e),
        TopicError::Empty => DecodeError::Malformed("empty Topic Filter [MQTT-4.7.3-1]"),
        TopicError::MisplacedMultiLevelWildcard => DecodeError::Malformed(
            "'#' not alone in the last level of a Topic Filter [MQTT-4.7.1-2]",
        ),
        TopicError::MisplacedSingleLevelWildcard => {
            DecodeError::Malformed("'+' not alone in its level of a Topic Filter [MQTT-4.7.1-3]")
        }
        _ => DecodeError::Malformed(
            "shared subscription without a valid ShareName and filter [MQTT-4.8.2-1]",
        ),
    })
}

impl Subscribe {
    pub(super) fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Subscribe, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if v.is_v5() {
            decode_properties(r)?
        } else {
            SubscribeProperties::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = read_filter(r, v)?;
            let options = SubscriptionOptions::decode(r.u8()?, v)?;
            if options.no_local && filter.shared().is_some() {
                return Err(DecodeError::ProtocolError(
                    "No Local set on a shared subscription [MQTT-3.8.3-4]",
                ));
            }
            filters.push((filter, options));
        }
        if filters.is_empty() {
            return Err(DecodeError::ProtocolError(
                "SUBSCRIBE without a Topic Filter ([MQTT-3.8.3-3] in 3.1.1, [MQTT-3.8.3-2] in 5.0)",
            ));
        }
        Ok(Subscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(super) fn lengths(&self, v: ProtocolVersion) -> Result<Lengths, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid("SUBSCRIBE needs at least one filter"));
        }
        let mut len = Lengths::default();
        if v.is_v5() {
            self.properties.check_encodable()?;
            len.props = properties_len(&self.properties);
        }
        let payload: usize = self.filters.iter().map(|(f, _)| 2 + f.len() + 1).sum();
        len.body = 2 + props_wire_len(v, len.props) + payload;
        Ok(len)
    }

    pub(super) fn write(&self, v: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() {
            put_properties(buf, &self.properties, len.props);
        }
        for (filter, options) in &self.filters {
            put_binary(buf, filter.as_bytes());
            buf.put_u8(options.encode(v));
        }
    }
}
