//! CONNECT (section 3.1): the first packet a client sends.
//!
//! CONNECT carries its own protocol level, so it is decoded without knowing the connection's
//! level and sets it for everything after.

use super::Lengths;
use crate::properties::{PropertySet, decode_properties, properties_len, put_properties};
use crate::wire::{Reader, check_u16_len, put_binary, varint_len};
use crate::{
    ConnectProperties, DecodeError, EncodeError, MqttString, ProtocolVersion, QoS, TopicName,
    WillProperties,
};
use bytes::{BufMut, Bytes, BytesMut};

/// A Will Message: published by the server if the connection ends without a normal
/// DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Will Topic.
    pub topic: TopicName,
    /// Will Payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will Retain.
    pub retain: bool,
    /// Will Properties (MQTT 5).
    pub properties: WillProperties,
}

/// CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol level the client speaks.
    pub protocol: ProtocolVersion,
    /// Clean Session (3.x) / Clean Start (5.0).
    pub clean_start: bool,
    /// Keep Alive, in seconds; 0 turns the mechanism off.
    pub keep_alive_secs: u16,
    /// CONNECT properties (MQTT 5).
    pub properties: ConnectProperties,
    /// Client Identifier; may be empty.
    pub client_id: MqttString,
    /// The Will Message, if the Will Flag is set.
    pub will: Option<Will>,
    /// User Name, if the User Name Flag is set.
    pub username: Option<MqttString>,
    /// Password, if the Password Flag is set.
    pub password: Option<Bytes>,
}

mod flag {
    pub(super) const RESERVED: u8 = 0x01;
    pub(super) const CLEAN_START: u8 = 0x02;
    pub(super) const WILL: u8 = 0x04;
    pub(super) const WILL_QOS_SHIFT: u8 = 3;
    pub(super) const WILL_RETAIN: u8 = 0x20;
    pub(super) const PASSWORD: u8 = 0x40;
    pub(super) const USERNAME: u8 = 0x80;
}

fn read_protocol(r: &mut Reader) -> Result<ProtocolVersion, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    match (&name[..], level) {
        (b"MQTT", 4) => Ok(ProtocolVersion::V3_1_1),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQIsdp", 3) => Ok(ProtocolVersion::V3_1),
        (b"MQTT" | b"MQIsdp", _) => Err(DecodeError::UnsupportedProtocolVersion(level)),
        _ => Err(DecodeError::InvalidProtocolName),
    }
}

impl Connect {
    pub(super) fn decode(r: &mut Reader) -> Result<Connect, DecodeError> {
        let protocol = read_protocol(r)?;
        let flags = r.u8()?;
        if flags & flag::RESERVED != 0 {
            return Err(DecodeError::Malformed(
                "reserved CONNECT flag is not 0 [MQTT-3.1.2-3]",
            ));
        }
        let has_will = flags & flag::WILL != 0;
        let will_qos = QoS::from_bits((flags >> flag::WILL_QOS_SHIFT) & 0b11).ok_or(
            DecodeError::Malformed(
                "Will QoS of 3 ([MQTT-3.1.2-14] in 3.1.1, [MQTT-3.1.2-12] in 5.0)",
            ),
        )?;
        let will_retain = flags & flag::WILL_RETAIN != 0;
        if !has_will && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(DecodeError::Malformed(
                "Will QoS or Will Retain set without the Will Flag [MQTT-3.1.2-11]",
            ));
        }
        let has_username = flags & flag::USERNAME != 0;
        let has_password = flags & flag::PASSWORD != 0;
        if !protocol.is_v5() && has_password && !has_username {
            return Err(DecodeError::Malformed(
                "Password Flag set without the User Name Flag [MQTT-3.1.2-22]",
            ));
        }
        let keep_alive_secs = r.u16()?;
        let properties = if protocol.is_v5() {
            decode_properties(r)?
        } else {
            ConnectProperties::default()
        };
        let client_id = r.string()?;
        let will = if has_will {
            let properties = if protocol.is_v5() {
                decode_properties(r)?
            } else {
                WillProperties::default()
            };
            let topic = TopicName::from_mqtt_string(r.string()?).map_err(|_| {
                DecodeError::Malformed(
                    "Will Topic must be a non-empty topic name without wildcards (section 3.1.3.3)",
                )
            })?;
            let payload = r.binary()?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary()?)
        } else {
            None
        };
        r.finish()?;
        Ok(Connect {
            protocol,
            clean_start: flags & flag::CLEAN_START != 0,
            keep_alive_secs,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    fn flags(&self) -> u8 {
        let mut f = 0;
        if self.clean_start {
            f |= flag::CLEAN_START;
        }
        if let Some(will) = &self.will {
            f |= flag::WILL | (will.qos.as_u8() << flag::WILL_QOS_SHIFT);
            if will.retain {
                f |= flag::WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            f |= flag::USERNAME;
        }
        if self.password.is_some() {
            f |= flag::PASSWORD;
        }
        f
    }

    pub(super) fn lengths(&self) -> Result<Lengths, EncodeError> {
        let v5 = self.protocol.is_v5();
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::Invalid(
                "MQTT 3.x cannot send a password without a user name",
            ));
        }
        let mut len = Lengths::default();
        let name = self.protocol.protocol_name();
        // protocol name, level, flags, keep alive
        let mut body = 2 + name.len() + 1 + 1 + 2;
        if v5 {
            self.properties.check_encodable()?;
            len.props = properties_len(&self.properties);
            body += varint_len(len.props) + len.props;
        }
        body += 2 + self.client_id.len();
        if let Some(will) = &self.will {
            check_u16_len(will.payload.len(), "Will Payload")?;
            if v5 {
                will.properties.check_encodable()?;
                len.will_props = properties_len(&will.properties);
                body += varint_len(len.will_props) + len.will_props;
            }
            body += 2 + will.topic.len() + 2 + will.payload.len();
        }
        if let Some(u) = &self.username {
            body += 2 + u.len();
        }
        if let Some(p) = &self.password {
            check_u16_len(p.len(), "Password")?;
            body += 2 + p.len();
        }
        len.body = body;
        Ok(len)
    }

    pub(super) fn write(&self, len: &Lengths, buf: &mut BytesMut) {
        let v5 = self.protocol.is_v5();
        put_binary(buf, self.protocol.protocol_name().as_bytes());
        buf.put_u8(self.protocol.level());
        buf.put_u8(self.flags());
        buf.put_u16(self.keep_alive_secs);
        if v5 {
            put_properties(buf, &self.properties, len.props);
        }
        put_binary(buf, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                put_properties(buf, &will.properties, len.will_props);
            }
            put_binary(buf, will.topic.as_bytes());
            put_binary(buf, &will.payload);
        }
        if let Some(u) = &self.username {
            put_binary(buf, u.as_bytes());
        }
        if let Some(p) = &self.password {
            put_binary(buf, p);
        }
    }
}
