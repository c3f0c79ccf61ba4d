//! PUBACK, PUBREC, PUBREL and PUBCOMP (sections 3.4 to 3.7): the acknowledgements of the QoS 1
//! and QoS 2 flows, which share one layout.

use super::{Lengths, read_packet_id};
use crate::properties::{decode_properties, properties_len, put_properties};
use crate::reason::ReasonContext;
use crate::wire::{Reader, varint_len};
use crate::{AckProperties, DecodeError, PacketId, ProtocolVersion, ReasonCode};
use bytes::{BufMut, BytesMut};

/// The body of PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The Packet Identifier of the flow this acknowledges.
    pub packet_id: PacketId,
    /// Reason code (MQTT 5; always Success on 3.x).
    pub reason_code: ReasonCode,
    /// Properties (MQTT 5).
    pub properties: AckProperties,
}

impl Ack {
    /// A successful acknowledgement with no properties.
    pub fn new(packet_id: PacketId) -> Ack {
        Ack {
            packet_id,
            reason_code: ReasonCode::SUCCESS,
            properties: AckProperties::default(),
        }
    }

    pub(super) fn decode(
        r: &mut Reader,
        v: ProtocolVersion,
        ctx: ReasonContext,
    ) -> Result<Ack, DecodeError> {
        let packet_id = read_packet_id(r)?;
        let mut ack = Ack::new(packet_id);
        if v.is_v5() && !r.is_empty() {
            // [MQTT-3.4.2-1] and siblings: the reason code and properties may be omitted.
            ack.reason_code = ReasonCode(r.u8()?);
            if !ack.reason_code.allowed_in(ctx) {
                return Err(DecodeError::Malformed(
                    "reason code not valid for this acknowledgement",
                ));
            }
            if !r.is_empty() {
                ack.properties = decode_properties(r)?;
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
            // The short forms of 3.4.2.1: omit properties when there are none, and the reason
            // code too when it is Success.
            if !self.properties.is_empty() {
                len.props = properties_len(&self.properties);
                len.body += 1 + varint_len(len.props) + len.props;
            } else if self.reason_code != ReasonCode::SUCCESS {
                len.body += 1;
            }
        }
        len
    }

    pub(super) fn write(&self, v: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() && len.body > 2 {
            buf.put_u8(self.reason_code.0);
            if len.body > 3 {
                put_properties(buf, &self.properties, len.props);
            }
        }
    }
}
