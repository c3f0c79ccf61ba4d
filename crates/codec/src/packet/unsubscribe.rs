//! UNSUBSCRIBE and UNSUBACK (sections 3.10 and 3.11).

use super::subscribe::read_filter;
use super::{Lengths, props_wire_len, read_packet_id};
use crate::properties::{decode_properties, properties_len, put_properties};
use crate::reason::ReasonContext;
use crate::wire::{Reader, put_binary};
use crate::{
    AckProperties, DecodeError, EncodeError, PacketId, ProtocolVersion, ReasonCode, TopicFilter,
    UnsubscribeProperties,
};
use bytes::{BufMut, BytesMut};

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet Identifier.
    pub packet_id: PacketId,
    /// UNSUBSCRIBE properties (MQTT 5).
    pub properties: UnsubscribeProperties,
    /// The filters to remove, at least one.
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    pub(super) fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Unsubscribe, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if v.is_v5() {
            decode_properties(r)?
        } else {
            UnsubscribeProperties::default()
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(read_filter(r, v)?);
        }
        if filters.is_empty() {
            return Err(DecodeError::ProtocolError(
                "UNSUBSCRIBE without a Topic Filter [MQTT-3.10.3-2]",
            ));
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(super) fn lengths(&self, v: ProtocolVersion) -> Result<Lengths, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid(
                "UNSUBSCRIBE needs at least one filter",
            ));
        }
        let mut len = Lengths::default();
        if v.is_v5() {
            len.props = properties_len(&self.properties);
        }
        let payload: usize = self.filters.iter().map(|f| 2 + f.len()).sum();
        len.body = 2 + props_wire_len(v, len.props) + payload;
        Ok(len)
    }

    pub(super) fn write(&self, v: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() {
            put_properties(buf, &self.properties, len.props);
        }
        for filter in &self.filters {
            put_binary(buf, filter.as_bytes());
        }
    }
}

/// UNSUBACK. On MQTT 3.x it carries only the Packet Identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet Identifier of the UNSUBSCRIBE answered.
    pub packet_id: PacketId,
    /// Properties (MQTT 5).
    pub properties: AckProperties,
    /// One code per filter (MQTT 5; empty on 3.x).
    pub reason_codes: Vec<ReasonCode>,
}

impl UnsubAck {
    pub(super) fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let mut ack = UnsubAck {
            packet_id,
            properties: AckProperties::default(),
            reason_codes: Vec::new(),
        };
        if v.is_v5() {
            ack.properties = decode_properties(r)?;
            while !r.is_empty() {
                let rc = ReasonCode(r.u8()?);
                if !rc.allowed_in(ReasonContext::UnsubAck) {
                    return Err(DecodeError::Malformed("invalid UNSUBACK reason code"));
                }
                ack.reason_codes.push(rc);
            }
        }
        r.finish()?;
        Ok(ack)
    }

    pub(super) fn lengths(&self, v: ProtocolVersion) -> Lengths {
        let mut len = Lengths {
            body: 2,
            ..Lengths::default()
        };
        if v.is_v5() {
            len.props = properties_len(&self.properties);
            len.body += props_wire_len(v, len.props) + self.reason_codes.len();
        }
        len
    }

    pub(super) fn write(&self, v: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() {
            put_properties(buf, &self.properties, len.props);
            for rc in &self.reason_codes {
                buf.put_u8(rc.0);
            }
        }
    }
}
