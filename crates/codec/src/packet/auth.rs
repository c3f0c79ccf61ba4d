//! AUTH (section 3.15): the enhanced authentication exchange, MQTT 5 only.

use super::Lengths;
use crate::properties::{PropertySet, decode_properties, properties_len, put_properties};
use crate::reason::ReasonContext;
use crate::wire::{Reader, varint_len};
use crate::{AuthProperties, DecodeError, EncodeError, ProtocolVersion, ReasonCode};
use bytes::{BufMut, BytesMut};

/// AUTH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// Authenticate Reason Code: Success, Continue authentication or Re-authenticate.
    pub reason_code: ReasonCode,
    /// Properties.
    pub properties: AuthProperties,
}

impl Auth {
    pub(super) fn decode(r: &mut Reader) -> Result<Auth, DecodeError> {
        let mut a = Auth::default();
        if r.is_empty() {
            // 3.15.2.1: Remaining Length 0 means Success with no properties.
            return Ok(a);
        }
        a.reason_code = ReasonCode(r.u8()?);
        if !a.reason_code.allowed_in(ReasonContext::Auth) {
            return Err(DecodeError::Malformed("invalid AUTH reason code"));
        }
        if !r.is_empty() {
            a.properties = decode_properties(r)?;
        }
        r.finish()?;
        if a.properties.authentication_method.is_none() {
            return Err(DecodeError::ProtocolError(
                "AUTH without an Authentication Method (section 3.15.2.2.2)",
            ));
        }
        Ok(a)
    }

    pub(super) fn lengths(&self, v: ProtocolVersion) -> Result<Lengths, EncodeError> {
        if !v.is_v5() {
            return Err(EncodeError::Invalid("AUTH exists only in MQTT 5"));
        }
        self.properties.check_encodable()?;
        let mut len = Lengths::default();
        if self.reason_code == ReasonCode::SUCCESS && self.properties.is_empty() {
            return Ok(len);
        }
        if self.properties.authentication_method.is_none() {
            return Err(EncodeError::Invalid(
                "AUTH needs an Authentication Method (section 3.15.2.2.2)",
            ));
        }
        len.props = properties_len(&self.properties);
        len.body = 1 + varint_len(len.props) + len.props;
        Ok(len)
    }

    pub(super) fn write(&self, len: &Lengths, buf: &mut BytesMut) {
        if len.body > 0 {
            buf.put_u8(self.reason_code.0);
            put_properties(buf, &self.properties, len.props);
        }
    }
}
