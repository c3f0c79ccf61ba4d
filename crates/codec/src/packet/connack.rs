//! CONNACK (section 3.2): the server's answer to CONNECT.

use super::{Lengths, props_wire_len};
use crate::properties::{PropertySet, decode_properties, properties_len, put_properties};
use crate::reason::ReasonContext;
use crate::wire::Reader;
use crate::{ConnAckProperties, DecodeError, EncodeError, ProtocolVersion, ReasonCode};
use bytes::{BufMut, BytesMut};

/// CONNACK. On MQTT 3.x the reason code travels as the nearest 3.x return code (0 to 5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present.
    pub session_present: bool,
    /// Connect Reason Code (5.0) / Connect Return Code (3.x), as a reason code.
    pub reason_code: ReasonCode,
    /// CONNACK properties (MQTT 5).
    pub properties: ConnAckProperties,
}

impl ConnAck {
    pub(super) fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<ConnAck, DecodeError> {
        let flags = r.u8()?;
        if flags & 0xFE != 0 {
            return Err(DecodeError::Malformed(
                "reserved Connect Acknowledge Flags are not 0",
            ));
        }
        let code = r.u8()?;
        let reason_code = if v.is_v5() {
            let rc = ReasonCode(code);
            if !rc.allowed_in(ReasonContext::ConnAck) {
                return Err(DecodeError::Malformed("invalid CONNACK reason code"));
            }
            rc
        } else {
            ReasonCode::from_v3_connack(code)
                .ok_or(DecodeError::Malformed("invalid CONNACK return code"))?
        };
        let session_present = flags & 0x01 != 0;
        if session_present && reason_code != ReasonCode::SUCCESS {
            return Err(DecodeError::ProtocolError(
                "Session Present set on a refused connection [MQTT-3.2.2-4]",
            ));
        }
        let properties = if v.is_v5() {
            decode_properties(r)?
        } else {
            ConnAckProperties::default()
        };
        r.finish()?;
        Ok(ConnAck {
            session_present,
            reason_code,
            properties,
        })
    }

    pub(super) fn lengths(&self, v: ProtocolVersion) -> Result<Lengths, EncodeError> {
        let mut len = Lengths::default();
        if v.is_v5() {
            self.properties.check_encodable()?;
            len.props = properties_len(&self.properties);
        }
        len.body = 2 + props_wire_len(v, len.props);
        Ok(len)
    }

    pub(super) fn write(&self, v: ProtocolVersion, len: &Lengths, buf: &mut BytesMut) {
        buf.put_u8(u8::from(self.session_present));
        if v.is_v5() {
            buf.put_u8(self.reason_code.0);
            put_properties(buf, &self.properties, len.props);
        } else {
            buf.put_u8(self.reason_code.to_v3_connack());
        }
    }
}
