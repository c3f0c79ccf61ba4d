//! MQTT 5 properties (section 2.2.2 of the 5.0 specification).
//!
//! Each packet kind has its own property struct, so a packet cannot carry a property the
//! specification does not allow on it. Decoding reads every property into a [`Property`] and
//! hands it to the struct's `apply`, which rejects a property not valid for the packet
//! (Malformed Packet) and a second copy of a property that may appear once (Protocol Error).
//! Encoding walks each struct once with a [`Sink`]: first one that only counts bytes, then the
//! buffer itself, so the property length is known before anything is written.

use crate::wire::{Reader, check_u16_len, put_binary, put_varint, varint_len};
use crate::{DecodeError, EncodeError, MqttString, QoS, TopicName};
use bytes::{BufMut, Bytes, BytesMut};
use std::num::{NonZeroU16, NonZeroU32};

mod id {
    pub(super) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub(super) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub(super) const CONTENT_TYPE: u8 = 0x03;
    pub(super) const RESPONSE_TOPIC: u8 = 0x08;
    pub(super) const CORRELATION_DATA: u8 = 0x09;
    pub(super) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub(super) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub(super) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub(super) const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub(super) const AUTHENTICATION_METHOD: u8 = 0x15;
    pub(super) const AUTHENTICATION_DATA: u8 = 0x16;
    pub(super) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub(super) const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub(super) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub(super) const RESPONSE_INFORMATION: u8 = 0x1A;
    pub(super) const SERVER_REFERENCE: u8 = 0x1C;
    pub(super) const REASON_STRING: u8 = 0x1F;
    pub(super) const RECEIVE_MAXIMUM: u8 = 0x21;
    pub(super) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub(super) const TOPIC_ALIAS: u8 = 0x23;
    pub(super) const MAXIMUM_QOS: u8 = 0x24;
    pub(super) const RETAIN_AVAILABLE: u8 = 0x25;
    pub(super) const USER_PROPERTY: u8 = 0x26;
    pub(super) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub(super) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub(super) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub(super) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// The Payload Format Indicator (0x01): what the payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    Unspecified,
    /// 1: UTF-8 encoded character data.
    Utf8,
}

/// A User Property (0x26): a name/value string pair, forwarded unchanged.
pub type UserProperty = (MqttString, MqttString);

/// A Subscription Identifier (0x0B): 1 to 268,435,455.
pub type SubscriptionId = NonZeroU32;

/// The largest Subscription Identifier (a four-byte Variable Byte Integer).
const MAX_SUBSCRIPTION_ID: u32 = 268_435_455;

/// One decoded property, its value already checked against its allowed range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Property {
    PayloadFormatIndicator(PayloadFormat),
    MessageExpiryInterval(u32),
    ContentType(MqttString),
    ResponseTopic(TopicName),
    CorrelationData(Bytes),
    SubscriptionIdentifier(SubscriptionId),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(MqttString),
    ServerKeepAlive(u16),
    AuthenticationMethod(MqttString),
    AuthenticationData(Bytes),
    RequestProblemInformation(bool),
    WillDelayInterval(u32),
    RequestResponseInformation(bool),
    ResponseInformation(MqttString),
    ServerReference(MqttString),
    ReasonString(MqttString),
    ReceiveMaximum(NonZeroU16),
    TopicAliasMaximum(u16),
    TopicAlias(NonZeroU16),
    MaximumQos(QoS),
    RetainAvailable(bool),
    UserProperty(UserProperty),
    MaximumPacketSize(NonZeroU32),
    WildcardSubscriptionAvailable(bool),
    SubscriptionIdentifierAvailable(bool),
    SharedSubscriptionAvailable(bool),
}

fn flag(r: &mut Reader, what: &'static str) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::ProtocolError(what)),
    }
}

fn read_property(r: &mut Reader) -> Result<Property, DecodeError> {
    let pid = r.varint()?;
    let Ok(pid) = u8::try_from(pid) else {
        return Err(DecodeError::Malformed("unknown property identifier"));
    };
    Ok(match pid {
        id::PAYLOAD_FORMAT_INDICATOR => Property::PayloadFormatIndicator(match r.u8()? {
            0 => PayloadFormat::Unspecified,
            1 => PayloadFormat::Utf8,
            _ => {
                return Err(DecodeError::ProtocolError(
                    "Payload Format Indicator must be 0 or 1",
                ));
            }
        }),
        id::MESSAGE_EXPIRY_INTERVAL => Property::MessageExpiryInterval(r.u32()?),
        id::CONTENT_TYPE => Property::ContentType(r.string()?),
        id::RESPONSE_TOPIC => {
            let s = r.string()?;
            Property::ResponseTopic(TopicName::from_mqtt_string(s).map_err(|_| {
                DecodeError::ProtocolError(
                    "Response Topic must be a topic name without wildcards [MQTT-3.3.2-14]",
                )
            })?)
        }
        id::CORRELATION_DATA => Property::CorrelationData(r.binary()?),
        id::SUBSCRIPTION_IDENTIFIER => {
            let v = r.varint()?;
            Property::SubscriptionIdentifier(
                NonZeroU32::new(v)
                    .ok_or(DecodeError::ProtocolError("Subscription Identifier of 0"))?,
            )
        }
        id::SESSION_EXPIRY_INTERVAL => Property::SessionExpiryInterval(r.u32()?),
        id::ASSIGNED_CLIENT_IDENTIFIER => Property::AssignedClientIdentifier(r.string()?),
        id::SERVER_KEEP_ALIVE => Property::ServerKeepAlive(r.u16()?),
        id::AUTHENTICATION_METHOD => Property::AuthenticationMethod(r.string()?),
        id::AUTHENTICATION_DATA => Property::AuthenticationData(r.binary()?),
        id::REQUEST_PROBLEM_INFORMATION => Property::RequestProblemInformation(flag(
            r,
            "Request Problem Information must be 0 or 1",
        )?),
        id::WILL_DELAY_INTERVAL => Property::WillDelayInterval(r.u32()?),
        id::REQUEST_RESPONSE_INFORMATION => Property::RequestResponseInformation(flag(
            r,
            "Request Response Information must be 0 or 1",
        )?),
        id::RESPONSE_INFORMATION => Property::ResponseInformation(r.string()?),
        id::SERVER_REFERENCE => Property::ServerReference(r.string()?),
        id::REASON_STRING => Property::ReasonString(r.string()?),
        id::RECEIVE_MAXIMUM => Property::ReceiveMaximum(
            NonZeroU16::new(r.u16()?).ok_or(DecodeError::ProtocolError("Receive Maximum of 0"))?,
        ),
        id::TOPIC_ALIAS_MAXIMUM => Property::TopicAliasMaximum(r.u16()?),
        id::TOPIC_ALIAS => {
            Property::TopicAlias(NonZeroU16::new(r.u16()?).ok_or(DecodeError::TopicAliasZero)?)
        }
        id::MAXIMUM_QOS => Property::MaximumQos(match r.u8()? {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => return Err(DecodeError::ProtocolError("Maximum QoS must be 0 or 1")),
        }),
        id::RETAIN_AVAILABLE => {
            Property::RetainAvailable(flag(r, "Retain Available must be 0 or 1")?)
        }
        id::USER_PROPERTY => Property::UserProperty((r.string()?, r.string()?)),
        id::MAXIMUM_PACKET_SIZE => Property::MaximumPacketSize(
            NonZeroU32::new(r.u32()?)
                .ok_or(DecodeError::ProtocolError("Maximum Packet Size of 0"))?,
        ),
        id::WILDCARD_SUBSCRIPTION_AVAILABLE => Property::WildcardSubscriptionAvailable(flag(
            r,
            "Wildcard Subscription Available must be 0 or 1",
        )?),
        id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => Property::SubscriptionIdentifierAvailable(flag(
            r,
            "Subscription Identifier Available must be 0 or 1",
        )?),
        id::SHARED_SUBSCRIPTION_AVAILABLE => Property::SharedSubscriptionAvailable(flag(
            r,
            "Shared Subscription Available must be 0 or 1",
        )?),
        _ => return Err(DecodeError::Malformed("unknown property identifier")),
    })
}

const NOT_ALLOWED: DecodeError =
    DecodeError::Malformed("property not valid for this packet type [MQTT-2.2.2-2]");
const TWICE: DecodeError =
    DecodeError::ProtocolError("property that may appear once appears more than once");

fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(TWICE);
    }
    *slot = Some(value);
    Ok(())
}

/// Where encoding sends properties: a byte counter or the output buffer.
pub(crate) trait Sink {
    fn byte(&mut self, id: u8, v: u8);
    fn two(&mut self, id: u8, v: u16);
    fn four(&mut self, id: u8, v: u32);
    fn varint(&mut self, id: u8, v: u32);
    /// A string or binary value with its two-byte length.
    fn data(&mut self, id: u8, v: &[u8]);
    fn pair(&mut self, id: u8, k: &[u8], v: &[u8]);
}

/// Counts the bytes a property block's content takes.
#[derive(Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn byte(&mut self, _: u8, _: u8) {
        self.0 += 2;
    }
    fn two(&mut self, _: u8, _: u16) {
        self.0 += 3;
    }
    fn four(&mut self, _: u8, _: u32) {
        self.0 += 5;
    }
    fn varint(&mut self, _: u8, v: u32) {
        self.0 += 1 + varint_len(v as usize);
    }
    fn data(&mut self, _: u8, v: &[u8]) {
        self.0 += 3 + v.len();
    }
    fn pair(&mut self, _: u8, k: &[u8], v: &[u8]) {
        self.0 += 5 + k.len() + v.len();
    }
}

impl Sink for BytesMut {
    fn byte(&mut self, id: u8, v: u8) {
        self.put_u8(id);
        self.put_u8(v);
    }
    fn two(&mut self, id: u8, v: u16) {
        self.put_u8(id);
        self.put_u16(v);
    }
    fn four(&mut self, id: u8, v: u32) {
        self.put_u8(id);
        self.put_u32(v);
    }
    fn varint(&mut self, id: u8, v: u32) {
        self.put_u8(id);
        put_varint(self, v as usize);
    }
    fn data(&mut self, id: u8, v: &[u8]) {
        self.put_u8(id);
        put_binary(self, v);
    }
    fn pair(&mut self, id: u8, k: &[u8], v: &[u8]) {
        self.put_u8(id);
        put_binary(self, k);
        put_binary(self, v);
    }
}

/// The properties of one packet kind.
pub(crate) trait PropertySet: Default {
    /// Takes one decoded property, or rejects it.
    fn apply(&mut self, p: Property) -> Result<(), DecodeError>;
    /// Rules between properties, checked once all are read.
    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }
    /// Visits every property present, in identifier order.
    fn visit<S: Sink>(&self, s: &mut S);
    /// Checks lengths the types do not bound (binary data, identifiers).
    fn check_encodable(&self) -> Result<(), EncodeError> {
        Ok(())
    }
}

/// Reads a property block: its length, then properties up to that length.
pub(crate) fn decode_properties<P: PropertySet>(r: &mut Reader) -> Result<P, DecodeError> {
    let len = r.varint()? as usize;
    let mut block = r.sub(len)?;
    let mut props = P::default();
    while !block.is_empty() {
        props.apply(read_property(&mut block)?)?;
    }
    props.validate()?;
    Ok(props)
}

/// The length of a property block's content (without its own length prefix).
pub(crate) fn properties_len<P: PropertySet>(p: &P) -> usize {
    let mut c = Counter::default();
    p.visit(&mut c);
    c.0
}

/// Writes a property block whose content length `len` came from [`properties_len`].
pub(crate) fn put_properties<P: PropertySet>(buf: &mut BytesMut, p: &P, len: usize) {
    put_varint(buf, len);
    p.visit(buf);
}

fn visit_users<S: Sink>(s: &mut S, users: &[UserProperty]) {
    for (k, v) in users {
        s.pair(id::USER_PROPERTY, k.as_bytes(), v.as_bytes());
    }
}

fn put_str<S: Sink>(s: &mut S, pid: u8, v: &Option<MqttString>) {
    if let Some(v) = v {
        s.data(pid, v.as_bytes());
    }
}

fn put_bin<S: Sink>(s: &mut S, pid: u8, v: &Option<Bytes>) {
    if let Some(v) = v {
        s.data(pid, v);
    }
}

fn put_flag<S: Sink>(s: &mut S, pid: u8, v: Option<bool>) {
    if let Some(v) = v {
        s.byte(pid, u8::from(v));
    }
}

fn check_bin(v: &Option<Bytes>, what: &'static str) -> Result<(), EncodeError> {
    v.as_ref().map_or(Ok(()), |b| check_u16_len(b.len(), what))
}

fn check_subscription_id(v: SubscriptionId) -> Result<(), EncodeError> {
    if v.get() > MAX_SUBSCRIPTION_ID {
        return Err(EncodeError::Invalid(
            "Subscription Identifier above 268435455",
        ));
    }
    Ok(())
}

fn put_payload_format<S: Sink>(s: &mut S, v: Option<PayloadFormat>) {
    if let Some(v) = v {
        s.byte(
            id::PAYLOAD_FORMAT_INDICATOR,
            match v {
                PayloadFormat::Unspecified => 0,
                PayloadFormat::Utf8 => 1,
            },
        );
    }
}

/// Properties of PUBLISH (3.3.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// Payload Format Indicator (0x01).
    pub payload_format: Option<PayloadFormat>,
    /// Message Expiry Interval (0x02), seconds.
    pub message_expiry_interval: Option<u32>,
    /// Topic Alias (0x23).
    pub topic_alias: Option<NonZeroU16>,
    /// Response Topic (0x08).
    pub response_topic: Option<TopicName>,
    /// Correlation Data (0x09).
    pub correlation_data: Option<Bytes>,
    /// User Properties (0x26), in order.
    pub user_properties: Vec<UserProperty>,
    /// Subscription Identifiers (0x0B), server to client only; may repeat.
    pub subscription_identifiers: Vec<SubscriptionId>,
    /// Content Type (0x03).
    pub content_type: Option<MqttString>,
}

impl PropertySet for PublishProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::PayloadFormatIndicator(v) => once(&mut self.payload_format, v),
            Property::MessageExpiryInterval(v) => once(&mut self.message_expiry_interval, v),
            Property::TopicAlias(v) => once(&mut self.topic_alias, v),
            Property::ResponseTopic(v) => once(&mut self.response_topic, v),
            Property::CorrelationData(v) => once(&mut self.correlation_data, v),
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            Property::SubscriptionIdentifier(v) => {
                self.subscription_identifiers.push(v);
                Ok(())
            }
            Property::ContentType(v) => once(&mut self.content_type, v),
            _ => Err(NOT_ALLOWED),
        }
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        put_payload_format(s, self.payload_format);
        if let Some(v) = self.message_expiry_interval {
            s.four(id::MESSAGE_EXPIRY_INTERVAL, v);
        }
        put_str(s, id::CONTENT_TYPE, &self.content_type);
        if let Some(v) = &self.response_topic {
            s.data(id::RESPONSE_TOPIC, v.as_mqtt_string().as_bytes());
        }
        put_bin(s, id::CORRELATION_DATA, &self.correlation_data);
        for v in &self.subscription_identifiers {
            s.varint(id::SUBSCRIPTION_IDENTIFIER, v.get());
        }
        if let Some(v) = self.topic_alias {
            s.two(id::TOPIC_ALIAS, v.get());
        }
        visit_users(s, &self.user_properties);
    }

    fn check_encodable(&self) -> Result<(), EncodeError> {
        check_bin(&self.correlation_data, "Correlation Data")?;
        self.subscription_identifiers
            .iter()
            .try_for_each(|v| check_subscription_id(*v))
    }
}

/// Will Properties in the CONNECT payload (3.1.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WillProperties {
    /// Will Delay Interval (0x18), seconds.
    pub will_delay_interval: Option<u32>,
    /// Payload Format Indicator (0x01).
    pub payload_format: Option<PayloadFormat>,
    /// Message Expiry Interval (0x02), seconds.
    pub message_expiry_interval: Option<u32>,
    /// Content Type (0x03).
    pub content_type: Option<MqttString>,
    /// Response Topic (0x08).
    pub response_topic: Option<TopicName>,
    /// Correlation Data (0x09).
    pub correlation_data: Option<Bytes>,
    /// User Properties (0x26).
    pub user_properties: Vec<UserProperty>,
}

impl PropertySet for WillProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::WillDelayInterval(v) => once(&mut self.will_delay_interval, v),
            Property::PayloadFormatIndicator(v) => once(&mut self.payload_format, v),
            Property::MessageExpiryInterval(v) => once(&mut self.message_expiry_interval, v),
            Property::ContentType(v) => once(&mut self.content_type, v),
            Property::ResponseTopic(v) => once(&mut self.response_topic, v),
            Property::CorrelationData(v) => once(&mut self.correlation_data, v),
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            _ => Err(NOT_ALLOWED),
        }
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        put_payload_format(s, self.payload_format);
        if let Some(v) = self.message_expiry_interval {
            s.four(id::MESSAGE_EXPIRY_INTERVAL, v);
        }
        put_str(s, id::CONTENT_TYPE, &self.content_type);
        if let Some(v) = &self.response_topic {
            s.data(id::RESPONSE_TOPIC, v.as_mqtt_string().as_bytes());
        }
        put_bin(s, id::CORRELATION_DATA, &self.correlation_data);
        if let Some(v) = self.will_delay_interval {
            s.four(id::WILL_DELAY_INTERVAL, v);
        }
        visit_users(s, &self.user_properties);
    }

    fn check_encodable(&self) -> Result<(), EncodeError> {
        check_bin(&self.correlation_data, "Correlation Data")
    }
}

/// Properties of CONNECT (3.1.2.11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// Session Expiry Interval (0x11), seconds; absent means 0.
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum (0x21); absent means 65,535.
    pub receive_maximum: Option<NonZeroU16>,
    /// Maximum Packet Size (0x27); absent means no limit beyond the protocol's.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Topic Alias Maximum (0x22); absent means 0.
    pub topic_alias_maximum: Option<u16>,
    /// Request Response Information (0x19).
    pub request_response_information: Option<bool>,
    /// Request Problem Information (0x17); absent means true.
    pub request_problem_information: Option<bool>,
    /// User Properties (0x26).
    pub user_properties: Vec<UserProperty>,
    /// Authentication Method (0x15).
    pub authentication_method: Option<MqttString>,
    /// Authentication Data (0x16).
    pub authentication_data: Option<Bytes>,
}

const AUTH_DATA_WITHOUT_METHOD: DecodeError =
    DecodeError::ProtocolError("Authentication Data without an Authentication Method");

impl PropertySet for ConnectProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => once(&mut self.session_expiry_interval, v),
            Property::ReceiveMaximum(v) => once(&mut self.receive_maximum, v),
            Property::MaximumPacketSize(v) => once(&mut self.maximum_packet_size, v),
            Property::TopicAliasMaximum(v) => once(&mut self.topic_alias_maximum, v),
            Property::RequestResponseInformation(v) => {
                once(&mut self.request_response_information, v)
            }
            Property::RequestProblemInformation(v) => {
                once(&mut self.request_problem_information, v)
            }
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            Property::AuthenticationMethod(v) => once(&mut self.authentication_method, v),
            Property::AuthenticationData(v) => once(&mut self.authentication_data, v),
            _ => Err(NOT_ALLOWED),
        }
    }

    fn validate(&self) -> Result<(), DecodeError> {
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(AUTH_DATA_WITHOUT_METHOD);
        }
        Ok(())
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        if let Some(v) = self.session_expiry_interval {
            s.four(id::SESSION_EXPIRY_INTERVAL, v);
        }
        put_str(s, id::AUTHENTICATION_METHOD, &self.authentication_method);
        put_bin(s, id::AUTHENTICATION_DATA, &self.authentication_data);
        put_flag(
            s,
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        put_flag(
            s,
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        if let Some(v) = self.receive_maximum {
            s.two(id::RECEIVE_MAXIMUM, v.get());
        }
        if let Some(v) = self.topic_alias_maximum {
            s.two(id::TOPIC_ALIAS_MAXIMUM, v);
        }
        visit_users(s, &self.user_properties);
        if let Some(v) = self.maximum_packet_size {
            s.four(id::MAXIMUM_PACKET_SIZE, v.get());
        }
    }

    fn check_encodable(&self) -> Result<(), EncodeError> {
        check_bin(&self.authentication_data, "Authentication Data")
    }
}

/// Properties of CONNACK (3.2.2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnAckProperties {
    /// Session Expiry Interval (0x11) the server uses instead of the client's.
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum (0x21) of the server.
    pub receive_maximum: Option<NonZeroU16>,
    /// Maximum QoS (0x24) the server supports: 0 or 1 (absent means 2).
    pub maximum_qos: Option<QoS>,
    /// Retain Available (0x25).
    pub retain_available: Option<bool>,
    /// Maximum Packet Size (0x27) the server accepts.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Assigned Client Identifier (0x12).
    pub assigned_client_identifier: Option<MqttString>,
    /// Topic Alias Maximum (0x22) of the server.
    pub topic_alias_maximum: Option<u16>,
    /// Reason String (0x1F).
    pub reason_string: Option<MqttString>,
    /// User Properties (0x26).
    pub user_properties: Vec<UserProperty>,
    /// Wildcard Subscription Available (0x28).
    pub wildcard_subscription_available: Option<bool>,
    /// Subscription Identifiers Available (0x29).
    pub subscription_identifiers_available: Option<bool>,
    /// Shared Subscription Available (0x2A).
    pub shared_subscription_available: Option<bool>,
    /// Server Keep Alive (0x13), seconds.
    pub server_keep_alive: Option<u16>,
    /// Response Information (0x1A).
    pub response_information: Option<MqttString>,
    /// Server Reference (0x1C).
    pub server_reference: Option<MqttString>,
    /// Authentication Method (0x15).
    pub authentication_method: Option<MqttString>,
    /// Authentication Data (0x16).
    pub authentication_data: Option<Bytes>,
}

impl PropertySet for ConnAckProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => once(&mut self.session_expiry_interval, v),
            Property::ReceiveMaximum(v) => once(&mut self.receive_maximum, v),
            Property::MaximumQos(v) => once(&mut self.maximum_qos, v),
            Property::RetainAvailable(v) => once(&mut self.retain_available, v),
            Property::MaximumPacketSize(v) => once(&mut self.maximum_packet_size, v),
            Property::AssignedClientIdentifier(v) => once(&mut self.assigned_client_identifier, v),
            Property::TopicAliasMaximum(v) => once(&mut self.topic_alias_maximum, v),
            Property::ReasonString(v) => once(&mut self.reason_string, v),
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            Property::WildcardSubscriptionAvailable(v) => {
                once(&mut self.wildcard_subscription_available, v)
            }
            Property::SubscriptionIdentifierAvailable(v) => {
                once(&mut self.subscription_identifiers_available, v)
            }
            Property::SharedSubscriptionAvailable(v) => {
                once(&mut self.shared_subscription_available, v)
            }
            Property::ServerKeepAlive(v) => once(&mut self.server_keep_alive, v),
            Property::ResponseInformation(v) => once(&mut self.response_information, v),
            Property::ServerReference(v) => once(&mut self.server_reference, v),
            Property::AuthenticationMethod(v) => once(&mut self.authentication_method, v),
            Property::AuthenticationData(v) => once(&mut self.authentication_data, v),
            _ => Err(NOT_ALLOWED),
        }
    }

    fn validate(&self) -> Result<(), DecodeError> {
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(AUTH_DATA_WITHOUT_METHOD);
        }
        Ok(())
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        if let Some(v) = self.session_expiry_interval {
            s.four(id::SESSION_EXPIRY_INTERVAL, v);
        }
        put_str(
            s,
            id::ASSIGNED_CLIENT_IDENTIFIER,
            &self.assigned_client_identifier,
        );
        if let Some(v) = self.server_keep_alive {
            s.two(id::SERVER_KEEP_ALIVE, v);
        }
        put_str(s, id::AUTHENTICATION_METHOD, &self.authentication_method);
        put_bin(s, id::AUTHENTICATION_DATA, &self.authentication_data);
        put_str(s, id::RESPONSE_INFORMATION, &self.response_information);
        put_str(s, id::SERVER_REFERENCE, &self.server_reference);
        put_str(s, id::REASON_STRING, &self.reason_string);
        if let Some(v) = self.receive_maximum {
            s.two(id::RECEIVE_MAXIMUM, v.get());
        }
        if let Some(v) = self.topic_alias_maximum {
            s.two(id::TOPIC_ALIAS_MAXIMUM, v);
        }
        if let Some(v) = self.maximum_qos {
            s.byte(id::MAXIMUM_QOS, v.as_u8());
        }
        put_flag(s, id::RETAIN_AVAILABLE, self.retain_available);
        visit_users(s, &self.user_properties);
        if let Some(v) = self.maximum_packet_size {
            s.four(id::MAXIMUM_PACKET_SIZE, v.get());
        }
        put_flag(
            s,
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        put_flag(
            s,
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        put_flag(
            s,
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
    }

    fn check_encodable(&self) -> Result<(), EncodeError> {
        if self.maximum_qos == Some(QoS::ExactlyOnce) {
            return Err(EncodeError::Invalid(
                "Maximum QoS property can only be 0 or 1 [MQTT-3.2.2-9]",
            ));
        }
        check_bin(&self.authentication_data, "Authentication Data")
    }
}

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK: a Reason String and
/// User Properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckProperties {
    /// Reason String (0x1F).
    pub reason_string: Option<MqttString>,
    /// User Properties (0x26).
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    /// Whether no property is set (so a short form of the packet can be sent).
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}

impl PropertySet for AckProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::ReasonString(v) => once(&mut self.reason_string, v),
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            _ => Err(NOT_ALLOWED),
        }
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        put_str(s, id::REASON_STRING, &self.reason_string);
        visit_users(s, &self.user_properties);
    }
}

/// Properties of SUBSCRIBE (3.8.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeProperties {
    /// Subscription Identifier (0x0B).
    pub subscription_identifier: Option<SubscriptionId>,
    /// User Properties (0x26).
    pub user_properties: Vec<UserProperty>,
}

impl PropertySet for SubscribeProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::SubscriptionIdentifier(v) => once(&mut self.subscription_identifier, v),
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            _ => Err(NOT_ALLOWED),
        }
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        if let Some(v) = self.subscription_identifier {
            s.varint(id::SUBSCRIPTION_IDENTIFIER, v.get());
        }
        visit_users(s, &self.user_properties);
    }

    fn check_encodable(&self) -> Result<(), EncodeError> {
        self.subscription_identifier
            .map_or(Ok(()), check_subscription_id)
    }
}

/// Properties of UNSUBSCRIBE (3.10.2.1): User Properties only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsubscribeProperties {
    /// User Properties (0x26).
    pub user_properties: Vec<UserProperty>,
}

impl PropertySet for UnsubscribeProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            _ => Err(NOT_ALLOWED),
        }
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        visit_users(s, &self.user_properties);
    }
}

/// Properties of DISCONNECT (3.14.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectProperties {
    /// Session Expiry Interval (0x11), client to server only.
    pub session_expiry_interval: Option<u32>,
    /// Reason String (0x1F).
    pub reason_string: Option<MqttString>,
    /// User Properties (0x26).
    pub user_properties: Vec<UserProperty>,
    /// Server Reference (0x1C).
    pub server_reference: Option<MqttString>,
}

impl DisconnectProperties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        *self == DisconnectProperties::default()
    }
}

impl PropertySet for DisconnectProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => once(&mut self.session_expiry_interval, v),
            Property::ReasonString(v) => once(&mut self.reason_string, v),
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            Property::ServerReference(v) => once(&mut self.server_reference, v),
            _ => Err(NOT_ALLOWED),
        }
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        if let Some(v) = self.session_expiry_interval {
            s.four(id::SESSION_EXPIRY_INTERVAL, v);
        }
        put_str(s, id::SERVER_REFERENCE, &self.server_reference);
        put_str(s, id::REASON_STRING, &self.reason_string);
        visit_users(s, &self.user_properties);
    }
}

/// Properties of AUTH (3.15.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthProperties {
    /// Authentication Method (0x15).
    pub authentication_method: Option<MqttString>,
    /// Authentication Data (0x16).
    pub authentication_data: Option<Bytes>,
    /// Reason String (0x1F).
    pub reason_string: Option<MqttString>,
    /// User Properties (0x26).
    pub user_properties: Vec<UserProperty>,
}

impl AuthProperties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        *self == AuthProperties::default()
    }
}

impl PropertySet for AuthProperties {
    fn apply(&mut self, p: Property) -> Result<(), DecodeError> {
        match p {
            Property::AuthenticationMethod(v) => once(&mut self.authentication_method, v),
            Property::AuthenticationData(v) => once(&mut self.authentication_data, v),
            Property::ReasonString(v) => once(&mut self.reason_string, v),
            Property::UserProperty(v) => {
                self.user_properties.push(v);
                Ok(())
            }
            _ => Err(NOT_ALLOWED),
        }
    }

    fn validate(&self) -> Result<(), DecodeError> {
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(AUTH_DATA_WITHOUT_METHOD);
        }
        Ok(())
    }

    fn visit<S: Sink>(&self, s: &mut S) {
        put_str(s, id::AUTHENTICATION_METHOD, &self.authentication_method);
        put_bin(s, id::AUTHENTICATION_DATA, &self.authentication_data);
        put_str(s, id::REASON_STRING, &self.reason_string);
        visit_users(s, &self.user_properties);
    }

    fn check_encodable(&self) -> Result<(), EncodeError> {
        check_bin(&self.authentication_data, "Authentication Data")
    }
}
