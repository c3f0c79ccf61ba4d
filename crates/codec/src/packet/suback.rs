//! SUBACK (section 3.9): one reason code per requested subscription.

use super::{Lengths, props_wire_len, read_packet_id};
use crate::properties::{decode_properties, properties_len, put_properties};
use crate::reason::ReasonContext;
use crate::wire::Reader;
use crate::{AckProperties, DecodeError, PacketId, ProtocolVersion, ReasonCode};
use bytes::{BufMut, BytesMut};

/// SUBACK. On MQTT 3.x each code travels as the granted QoS or 0x80.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet Identifier of the SUBSCRIBE answered.
    pub packet_id: PacketId,
    /// Properties (MQTT 5).
    pub properties: AckProperties,
    /// One code per filter, in the order of the SUBSCRIBE.
    pub reason_codes: Vec<ReasonCode>,
}

impl SubAck {
    pub(super) fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<SubAck, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let properties = if v.is_v5() {
            decode_properties(r)?
        } else {
            AckProperties::default()
        };
        let mut reason_codes = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let code = r.u8()?;
            let rc = if v.is_v5() {
                Some(ReasonCode(code)).filter(|rc| rc.allowed_in(ReasonContext::SubAck))
            } else {
                ReasonCode::from_v3_suback(code)
            };
            reason_codes.push(rc.ok_or(DecodeError::Malformed("invalid SUBACK return code"))?);
        }
        Ok(SubAck {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(super) fn lengths(&self, v: ProtocolVersion) -> Lengths {
        let mut len = Lengths::default();
        if v.is_v5() {
            len.props = properties_len(&self.properties);
        }
        len.body = 2 + props_wire_len(v, len.props) + self.reason_codes.len();
        len
    }

    pub(super) fn write(&self, v: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() {
            put_properties(buf, &self.properties, len.props);
            for rc in &self.reason_codes {
                buf.put_u8(rc.0);
            }
        } else {
            for rc in &self.reason_codes {
                buf.put_u8(rc.to_v3_suback());
            }
        }
    }
}
