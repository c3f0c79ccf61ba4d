//! DISCONNECT (section 3.14): the last packet of a connection, in either direction on MQTT 5,
//! client to server only on 3.x.

use super::Lengths;
use crate::properties::{decode_properties, properties_len, put_properties};
use crate::reason::ReasonContext;
use crate::wire::{Reader, varint_len};
use crate::{DecodeError, DisconnectProperties, ProtocolVersion, ReasonCode};
use bytes::{BufMut, BytesMut};

/// DISCONNECT. On 3.x it has no body and its reason is always Normal disconnection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// Disconnect Reason Code (MQTT 5).
    pub reason_code: ReasonCode,
    /// Properties (MQTT 5).
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A DISCONNECT with the given reason and no properties.
    pub fn new(reason_code: ReasonCode) -> Disconnect {
        Disconnect {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }

    pub(super) fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Disconnect, DecodeError> {
        let mut d = Disconnect::default();
        if v.is_v5() && !r.is_empty() {
            d.reason_code = ReasonCode(r.u8()?);
            if !d.reason_code.allowed_in(ReasonContext::Disconnect) {
                return Err(DecodeError::Malformed("invalid DISCONNECT reason code"));
            }
            if !r.is_empty() {
                d.properties = decode_properties(r)?;
            }
        }
        if !r.is_empty() {
            return Err(DecodeError::Malformed(if v.is_v5() {
                "bytes left over after the last field of the packet"
            } else {
                "DISCONNECT has a remaining length of 0 on MQTT 3.x"
            }));
        }
        Ok(d)
    }

    pub(super) fn lengths(&self, v: ProtocolVersion) -> Lengths {
        let mut len = Lengths::default();
        if v.is_v5() {
            if !self.properties.is_empty() {
                len.props = properties_len(&self.properties);
                len.body = 1 + varint_len(len.props) + len.props;
            } else if self.reason_code != ReasonCode::NORMAL_DISCONNECTION {
                len.body = 1;
            }
        }
        len
    }

    pub(super) fn write(&self, v: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        if v.is_v5() && len.body > 0 {
            buf.put_u8(self.reason_code.0);
            if len.body > 1 {
                put_properties(buf, &self.properties, len.props);
            }
        }
    }
}
