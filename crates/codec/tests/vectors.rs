//! Byte-vector tests of the codec, worked out by hand from the OASIS MQTT Version 3.1.1 and
//! MQTT Version 5.0 specifications.
//!
//! Every packet type is decoded from exact bytes into the expected `Packet` and encoded back to
//! the same bytes at each protocol level where it exists; then come the rejections (each with
//! its `DecodeError` variant and the reason code it maps to) and incremental decoding.
//!
//! Normative statements are cited as `[MQTT-x.y.z-n]` together with the version whose
//! numbering they use (3.1.1 and 5.0 number some statements differently); otherwise the
//! section is cited. MQTT 5 properties are written in identifier order, the order the encoder
//! uses (the order has no significance on the wire, 5.0 section 2.2.2.2).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bytes::{Bytes, BytesMut};
use halyard_codec::{
    Ack, AckProperties, Auth, AuthProperties, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, DecodeError, DecodeOptions, Disconnect, DisconnectProperties, EncodeError,
    MqttString, Packet, PacketId, PayloadFormat, ProtocolVersion, Publish, PublishProperties, QoS,
    ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties, UserProperty, Will,
    WillProperties, decode,
};
use std::num::{NonZeroU16, NonZeroU32};

const V31: ProtocolVersion = ProtocolVersion::V3_1;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// The two 3.x levels, which share every packet layout but CONNECT's protocol name and level.
const V3: [ProtocolVersion; 2] = [V31, V311];
const ALL: [ProtocolVersion; 3] = [V31, V311, V5];

// Property identifiers, MQTT 5.0 section 2.2.2.2 (Table 2-4). User Property (0x26) is built by
// `p_user`.
const PAYLOAD_FORMAT: u8 = 0x01;
const MESSAGE_EXPIRY: u8 = 0x02;
const CONTENT_TYPE: u8 = 0x03;
const RESPONSE_TOPIC: u8 = 0x08;
const CORRELATION_DATA: u8 = 0x09;
const SUBSCRIPTION_ID: u8 = 0x0B;
const SESSION_EXPIRY: u8 = 0x11;
const ASSIGNED_CLIENT_ID: u8 = 0x12;
const SERVER_KEEP_ALIVE: u8 = 0x13;
const AUTH_METHOD: u8 = 0x15;
const AUTH_DATA: u8 = 0x16;
const REQUEST_PROBLEM_INFO: u8 = 0x17;
const WILL_DELAY: u8 = 0x18;
const REQUEST_RESPONSE_INFO: u8 = 0x19;
const RESPONSE_INFO: u8 = 0x1A;
const SERVER_REFERENCE: u8 = 0x1C;
const REASON_STRING: u8 = 0x1F;
const RECEIVE_MAXIMUM: u8 = 0x21;
const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
const TOPIC_ALIAS: u8 = 0x23;
const MAXIMUM_QOS: u8 = 0x24;
const RETAIN_AVAILABLE: u8 = 0x25;
const MAXIMUM_PACKET_SIZE: u8 = 0x27;
const WILDCARD_SUB_AVAILABLE: u8 = 0x28;
const SUB_ID_AVAILABLE: u8 = 0x29;
const SHARED_SUB_AVAILABLE: u8 = 0x2A;

// ---------------------------------------------------------------------------------------------
// Building byte vectors
// ---------------------------------------------------------------------------------------------

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A Variable Byte Integer: 3.1.1 section 2.2.3, 5.0 section 1.5.5.
fn vbi(value: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        let mut byte = u8::try_from(rest % 128).unwrap();
        rest /= 128;
        if rest > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if rest == 0 {
            return out;
        }
    }
}

/// A Two Byte Integer, big-endian.
fn be(n: u16) -> [u8; 2] {
    n.to_be_bytes()
}

/// A length-prefixed field: a UTF-8 string or binary data (3.1.1 1.5.3, 5.0 1.5.4 / 1.5.6).
fn lp(data: &[u8]) -> Vec<u8> {
    cat(&[&be(u16::try_from(data.len()).unwrap()), data])
}

/// A whole packet: the first byte, the Remaining Length, then the body.
fn pkt(first: u8, body: &[&[u8]]) -> Vec<u8> {
    let body = body.concat();
    cat(&[&[first], &vbi(body.len()), &body])
}

/// A property block: the Property Length, then the properties (5.0 section 2.2.2).
fn props(list: &[&[u8]]) -> Vec<u8> {
    let content = list.concat();
    cat(&[&vbi(content.len()), &content])
}

/// The property block at MQTT 5, nothing at 3.x.
fn pb(v: ProtocolVersion, list: &[&[u8]]) -> Vec<u8> {
    if v == V5 { props(list) } else { Vec::new() }
}

fn p_u8(id: u8, value: u8) -> Vec<u8> {
    vec![id, value]
}

fn p_u16(id: u8, value: u16) -> Vec<u8> {
    cat(&[&[id], &value.to_be_bytes()])
}

fn p_u32(id: u8, value: u32) -> Vec<u8> {
    cat(&[&[id], &value.to_be_bytes()])
}

fn p_vbi(id: u8, value: usize) -> Vec<u8> {
    cat(&[&[id], &vbi(value)])
}

fn p_bin(id: u8, value: &[u8]) -> Vec<u8> {
    cat(&[&[id], &lp(value)])
}

fn p_str(id: u8, value: &str) -> Vec<u8> {
    p_bin(id, value.as_bytes())
}

fn p_user(name: &str, value: &str) -> Vec<u8> {
    cat(&[&[0x26], &lp(name.as_bytes()), &lp(value.as_bytes())])
}

/// The protocol name and level a CONNECT carries at `v`.
fn name_and_level(v: ProtocolVersion) -> (&'static [u8], u8) {
    match v {
        ProtocolVersion::V3_1 => (b"MQIsdp", 3),
        ProtocolVersion::V3_1_1 => (b"MQTT", 4),
        ProtocolVersion::V5 => (b"MQTT", 5),
    }
}

/// A CONNECT at `v` with the given Connect Flags, Keep Alive 60, properties (5.0) and payload.
fn connect_bytes(
    v: ProtocolVersion,
    flags: u8,
    properties: &[&[u8]],
    payload: &[&[u8]],
) -> Vec<u8> {
    let (name, level) = name_and_level(v);
    pkt(
        0x10,
        &[
            &lp(name),
            &[level, flags],
            &be(60),
            &pb(v, properties),
            &payload.concat(),
        ],
    )
}

/// A PUBLISH with the given fixed-header flags and raw topic bytes; `rest` is everything after
/// the Topic Name (Packet Identifier, properties, payload).
fn publish_bytes(flags: u8, topic_name: &[u8], rest: &[&[u8]]) -> Vec<u8> {
    pkt(0x30 | flags, &[&lp(topic_name), &rest.concat()])
}

/// A QoS 0 PUBLISH of "x" to the raw `topic_name`, with `properties` at MQTT 5.
fn publish0(v: ProtocolVersion, topic_name: &[u8], properties: &[&[u8]]) -> Vec<u8> {
    publish_bytes(0, topic_name, &[&pb(v, properties), b"x"])
}

/// A packet whose variable header is a Packet Identifier then (5.0) properties: SUBSCRIBE
/// (0x82), SUBACK (0x90), UNSUBSCRIBE (0xA2) and UNSUBACK (0xB0).
fn with_packet_id(
    first: u8,
    v: ProtocolVersion,
    packet_id: u16,
    properties: &[&[u8]],
    payload: &[&[u8]],
) -> Vec<u8> {
    pkt(
        first,
        &[&be(packet_id), &pb(v, properties), &payload.concat()],
    )
}

/// One SUBSCRIBE payload entry: a Topic Filter and its options byte.
fn entry(filter_text: &str, options: u8) -> Vec<u8> {
    cat(&[&lp(filter_text.as_bytes()), &[options]])
}

/// A SUBSCRIBE with packet identifier 1 and no properties requesting `filter_text`.
fn subscribe1(v: ProtocolVersion, filter_text: &[u8], options: u8) -> Vec<u8> {
    with_packet_id(0x82, v, 1, &[], &[&lp(filter_text), &[options]])
}

/// An UNSUBSCRIBE with packet identifier 1 and no properties for `filter_text`.
fn unsubscribe1(v: ProtocolVersion, filter_text: &[u8]) -> Vec<u8> {
    with_packet_id(0xA2, v, 1, &[], &[&lp(filter_text)])
}

/// Builds the `Packet` variant of an acknowledgement.
type MakeAck = fn(Ack) -> Packet;

/// PUBACK, PUBREC, PUBREL and PUBCOMP: their first byte and their `Packet` variant.
fn acks() -> [(u8, MakeAck); 4] {
    [
        (0x40, Packet::PubAck),
        (0x50, Packet::PubRec),
        (0x62, Packet::PubRel),
        (0x70, Packet::PubComp),
    ]
}

// ---------------------------------------------------------------------------------------------
// Building expected values
// ---------------------------------------------------------------------------------------------

fn s(text: &str) -> MqttString {
    MqttString::new(text).unwrap()
}

fn topic(name: &str) -> TopicName {
    TopicName::new(name).unwrap()
}

fn filter(text: &str) -> TopicFilter {
    TopicFilter::new(text).unwrap()
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn user(name: &str, value: &str) -> UserProperty {
    (s(name), s(value))
}

fn nz16(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

fn nz32(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn bin(data: &'static [u8]) -> Bytes {
    Bytes::from_static(data)
}

fn rc(code: u8) -> ReasonCode {
    ReasonCode(code)
}

/// A CONNECT with Clean Session / Clean Start, Keep Alive 60 and nothing optional.
fn connect(protocol: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive_secs: 60,
        properties: ConnectProperties::default(),
        client_id: s(client_id),
        will: None,
        username: None,
        password: None,
    }
}

fn will(topic_name: &str, payload: &'static [u8], qos: QoS, retain: bool) -> Will {
    Will {
        topic: topic(topic_name),
        payload: bin(payload),
        qos,
        retain,
        properties: WillProperties::default(),
    }
}

fn publish(qos: QoS, topic_name: &str, packet_id: Option<u16>, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic(topic_name),
        packet_id: packet_id.map(pid),
        properties: PublishProperties::default(),
        payload: bin(payload),
    }
}

fn connack(session_present: bool, code: u8) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present,
        reason_code: rc(code),
        properties: ConnAckProperties::default(),
    })
}

fn ack(packet_id: u16, code: u8, properties: AckProperties) -> Ack {
    Ack {
        packet_id: pid(packet_id),
        reason_code: rc(code),
        properties,
    }
}

// ---------------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------------

fn try_decode(bytes: &[u8], v: ProtocolVersion) -> Result<Option<Packet>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    decode(&mut buf, &DecodeOptions::new(v))
}

/// Decodes one whole packet, checking that it took every byte of `bytes`.
fn decode_whole(bytes: &[u8], v: ProtocolVersion) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, &DecodeOptions::new(v))
        .unwrap_or_else(|e| panic!("{bytes:02x?} rejected at {v}: {e:?}"))
        .unwrap_or_else(|| panic!("{bytes:02x?} is incomplete at {v}"));
    assert!(buf.is_empty(), "{bytes:02x?} left {buf:02x?} at {v}");
    packet
}

fn encode(packet: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.encode(v, &mut buf).unwrap();
    buf.to_vec()
}

/// `bytes` decodes to `expected` at `v`, and `expected` encodes to exactly `bytes`.
fn round_trip(bytes: &[u8], v: ProtocolVersion, expected: &Packet) {
    assert_eq!(
        &decode_whole(bytes, v),
        expected,
        "decoding {bytes:02x?} at {v}"
    );
    assert_eq!(encode(expected, v), bytes, "encoding {expected:?} at {v}");
    assert_eq!(
        expected.encoded_len(v).unwrap(),
        bytes.len(),
        "encoded_len at {v}"
    );
}

fn rejection(bytes: &[u8], v: ProtocolVersion) -> DecodeError {
    match try_decode(bytes, v) {
        Err(e) => e,
        Ok(p) => panic!("{bytes:02x?} at {v} was not rejected: {p:?}"),
    }
}

/// A Malformed Packet: reason code 0x81.
fn assert_malformed(bytes: &[u8], v: ProtocolVersion) {
    let e = rejection(bytes, v);
    assert!(
        matches!(e, DecodeError::Malformed(_)),
        "{bytes:02x?} at {v}: {e:?}"
    );
    assert_eq!(e.reason_code(), rc(0x81));
}

/// A Protocol Error: reason code 0x82.
fn assert_protocol_error(bytes: &[u8], v: ProtocolVersion) {
    let e = rejection(bytes, v);
    assert!(
        matches!(e, DecodeError::ProtocolError(_)),
        "{bytes:02x?} at {v}: {e:?}"
    );
    assert_eq!(e.reason_code(), rc(0x82));
}

/// Feeds `bytes` one byte at a time: `Ok(None)` with the buffer untouched until the last byte.
fn decode_byte_by_byte(bytes: &[u8], v: ProtocolVersion) -> Packet {
    let opts = DecodeOptions::new(v);
    let mut buf = BytesMut::new();
    let (last, init) = bytes.split_last().unwrap();
    for (i, byte) in init.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        assert_eq!(decode(&mut buf, &opts), Ok(None), "after {} bytes", i + 1);
        assert_eq!(
            &buf[..],
            &bytes[..=i],
            "buffer changed after {} bytes",
            i + 1
        );
    }
    buf.extend_from_slice(&[*last]);
    let packet = decode(&mut buf, &opts).unwrap().unwrap();
    assert!(buf.is_empty());
    packet
}

// ---------------------------------------------------------------------------------------------
// CONNECT (section 3.1)
// ---------------------------------------------------------------------------------------------

#[test]
fn connect_3_1_1_minimal() {
    #[rustfmt::skip]
    const BYTES: [u8; 16] = [
        0x10, 0x0E,                         // CONNECT, Remaining Length 14
        0x00, 0x04, b'M', b'Q', b'T', b'T', // Protocol Name "MQTT"
        0x04,                               // Protocol Level 4
        0x02,                               // Connect Flags: Clean Session
        0x00, 0x3C,                         // Keep Alive 60
        0x00, 0x02, b'c', b'1',             // Client Identifier "c1"
    ];
    round_trip(
        &BYTES,
        V311,
        &Packet::Connect(Box::new(connect(V311, "c1"))),
    );
}

#[test]
fn connect_3_1_mqisdp_with_will_user_name_and_password() {
    // Flags 0xEE: User Name, Password, Will Retain, Will QoS 1, Will Flag, Clean Session.
    let bytes = pkt(
        0x10,
        &[
            &lp(b"MQIsdp"),
            &[0x03, 0xEE],
            &be(10),
            &lp(b"client"),
            &lp(b"w/t"),
            &lp(b"bye"),
            &lp(b"user"),
            &lp(b"pw"),
        ],
    );
    let mut c = connect(V31, "client");
    c.keep_alive_secs = 10;
    c.will = Some(will("w/t", b"bye", QoS::AtLeastOnce, true));
    c.username = Some(s("user"));
    c.password = Some(bin(b"pw"));
    round_trip(&bytes, V31, &Packet::Connect(Box::new(c)));
}

#[test]
fn connect_3_1_1_will_qos_2_and_user_name_without_password() {
    // Flags 0x94: User Name, Will QoS 2, Will Flag; Clean Session 0. The Will Payload is binary
    // data, so it may hold a zero byte.
    let bytes = connect_bytes(
        V311,
        0x94,
        &[],
        &[
            &lp(b"dev"),
            &lp(b"status/dev"),
            &lp(b"\x00\xFF"),
            &lp(b"alice"),
        ],
    );
    let mut c = connect(V311, "dev");
    c.clean_start = false;
    c.will = Some(will("status/dev", b"\x00\xFF", QoS::ExactlyOnce, false));
    c.username = Some(s("alice"));
    round_trip(&bytes, V311, &Packet::Connect(Box::new(c)));
}

#[test]
fn connect_5_minimal_with_empty_client_identifier() {
    #[rustfmt::skip]
    const BYTES: [u8; 15] = [
        0x10, 0x0D,                         // CONNECT, Remaining Length 13
        0x00, 0x04, b'M', b'Q', b'T', b'T', // Protocol Name "MQTT"
        0x05,                               // Protocol Version 5
        0x02,                               // Connect Flags: Clean Start
        0x00, 0x00,                         // Keep Alive 0
        0x00,                               // Property Length 0 [MQTT-2.2.2-1] (5.0)
        0x00, 0x00,                         // Client Identifier ""
    ];
    let mut c = connect(V5, "");
    c.keep_alive_secs = 0;
    round_trip(&BYTES, V5, &Packet::Connect(Box::new(c)));
}

#[test]
fn connect_5_with_properties_and_will_properties() {
    // Flags 0xCE: User Name, Password, Will QoS 1, Will Flag, Clean Start.
    let bytes = connect_bytes(
        V5,
        0xCE,
        &[
            &p_u32(SESSION_EXPIRY, 3600),
            &p_str(AUTH_METHOD, "SCRAM-SHA-1"),
            &p_bin(AUTH_DATA, b"\x01\x02"),
            &p_u8(REQUEST_PROBLEM_INFO, 0),
            &p_u8(REQUEST_RESPONSE_INFO, 1),
            &p_u16(RECEIVE_MAXIMUM, 20),
            &p_u16(TOPIC_ALIAS_MAXIMUM, 10),
            &p_user("k", "v"),
            &p_u32(MAXIMUM_PACKET_SIZE, 1024),
        ],
        &[
            &lp(b"c5"),
            &props(&[
                &p_u8(PAYLOAD_FORMAT, 1),
                &p_u32(MESSAGE_EXPIRY, 60),
                &p_str(CONTENT_TYPE, "text/plain"),
                &p_str(RESPONSE_TOPIC, "reply/t"),
                &p_bin(CORRELATION_DATA, b"corr"),
                &p_u32(WILL_DELAY, 5),
                &p_user("wk", "wv"),
            ]),
            &lp(b"will/t"),
            &lp(b"gone"),
            &lp(b"u"),
            &lp(b"p"),
        ],
    );
    let mut c = connect(V5, "c5");
    c.properties = ConnectProperties {
        session_expiry_interval: Some(3600),
        receive_maximum: Some(nz16(20)),
        maximum_packet_size: Some(nz32(1024)),
        topic_alias_maximum: Some(10),
        request_response_information: Some(true),
        request_problem_information: Some(false),
        user_properties: vec![user("k", "v")],
        authentication_method: Some(s("SCRAM-SHA-1")),
        authentication_data: Some(bin(b"\x01\x02")),
    };
    let mut w = will("will/t", b"gone", QoS::AtLeastOnce, false);
    w.properties = WillProperties {
        will_delay_interval: Some(5),
        payload_format: Some(PayloadFormat::Utf8),
        message_expiry_interval: Some(60),
        content_type: Some(s("text/plain")),
        response_topic: Some(topic("reply/t")),
        correlation_data: Some(bin(b"corr")),
        user_properties: vec![user("wk", "wv")],
    };
    c.will = Some(w);
    c.username = Some(s("u"));
    c.password = Some(bin(b"p"));
    round_trip(&bytes, V5, &Packet::Connect(Box::new(c)));
}

#[test]
fn connect_5_allows_a_password_without_a_user_name() {
    // 5.0 section 3.1.2.9 dropped the 3.1.1 rule [MQTT-3.1.2-22]. Flags 0x42: Password, Clean Start.
    let bytes = connect_bytes(V5, 0x42, &[], &[&lp(b"c"), &lp(b"secret")]);
    let mut c = connect(V5, "c");
    c.password = Some(bin(b"secret"));
    round_trip(&bytes, V5, &Packet::Connect(Box::new(c)));
}

#[test]
fn connect_is_decoded_at_the_level_it_names() {
    let bytes = connect_bytes(V5, 0x02, &[&p_u32(SESSION_EXPIRY, 7)], &[&lp(b"c")]);
    let mut c = connect(V5, "c");
    c.properties.session_expiry_interval = Some(7);
    assert_eq!(decode_whole(&bytes, V311), Packet::Connect(Box::new(c)));
}

// ---------------------------------------------------------------------------------------------
// CONNACK (section 3.2)
// ---------------------------------------------------------------------------------------------

#[test]
fn connack_3_x_accepted_with_and_without_session_present() {
    for v in V3 {
        round_trip(&[0x20, 0x02, 0x00, 0x00], v, &connack(false, 0x00));
        round_trip(&[0x20, 0x02, 0x01, 0x00], v, &connack(true, 0x00));
    }
}

#[test]
fn connack_3_x_return_codes_map_to_reason_codes() {
    // 3.1.1 Table 3.1 return codes 1-5, and the 5.0 reason codes that say the same.
    let table = [(1, 0x84), (2, 0x85), (3, 0x88), (4, 0x86), (5, 0x87)];
    for v in V3 {
        for (code, reason) in table {
            round_trip(&[0x20, 0x02, 0x00, code], v, &connack(false, reason));
        }
    }
}

#[test]
fn connack_5_refusal_without_properties() {
    round_trip(&[0x20, 0x03, 0x00, 0x87, 0x00], V5, &connack(false, 0x87));
}

#[test]
fn connack_5_with_properties() {
    let bytes = pkt(
        0x20,
        &[
            &[0x01, 0x00],
            &props(&[
                &p_u32(SESSION_EXPIRY, 120),
                &p_str(ASSIGNED_CLIENT_ID, "auto-1"),
                &p_u16(SERVER_KEEP_ALIVE, 30),
                &p_str(AUTH_METHOD, "SCRAM-SHA-1"),
                &p_bin(AUTH_DATA, b"server-final"),
                &p_str(RESPONSE_INFO, "resp/"),
                &p_str(SERVER_REFERENCE, "other:1883"),
                &p_str(REASON_STRING, "welcome"),
                &p_u16(RECEIVE_MAXIMUM, 100),
                &p_u16(TOPIC_ALIAS_MAXIMUM, 5),
                &p_u8(MAXIMUM_QOS, 1),
                &p_u8(RETAIN_AVAILABLE, 0),
                &p_user("a", "b"),
                &p_u32(MAXIMUM_PACKET_SIZE, 65536),
                &p_u8(WILDCARD_SUB_AVAILABLE, 1),
                &p_u8(SUB_ID_AVAILABLE, 0),
                &p_u8(SHARED_SUB_AVAILABLE, 1),
            ]),
        ],
    );
    let expected = ConnAck {
        session_present: true,
        reason_code: ReasonCode::SUCCESS,
        properties: ConnAckProperties {
            session_expiry_interval: Some(120),
            receive_maximum: Some(nz16(100)),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(nz32(65536)),
            assigned_client_identifier: Some(s("auto-1")),
            topic_alias_maximum: Some(5),
            reason_string: Some(s("welcome")),
            user_properties: vec![user("a", "b")],
            wildcard_subscription_available: Some(true),
            subscription_identifiers_available: Some(false),
            shared_subscription_available: Some(true),
            server_keep_alive: Some(30),
            response_information: Some(s("resp/")),
            server_reference: Some(s("other:1883")),
            authentication_method: Some(s("SCRAM-SHA-1")),
            authentication_data: Some(bin(b"server-final")),
        },
    };
    round_trip(&bytes, V5, &Packet::ConnAck(expected));
}

// ---------------------------------------------------------------------------------------------
// PUBLISH (section 3.3)
// ---------------------------------------------------------------------------------------------

#[test]
fn publish_3_x_qos_0() {
    #[rustfmt::skip]
    const BYTES: [u8; 9] = [
        0x30, 0x07,                   // PUBLISH QoS 0, Remaining Length 7
        0x00, 0x03, b'a', b'/', b'b', // Topic Name "a/b"
        b'h', b'i',                   // payload
    ];
    for v in V3 {
        round_trip(
            &BYTES,
            v,
            &Packet::Publish(publish(QoS::AtMostOnce, "a/b", None, b"hi")),
        );
    }
}

#[test]
fn publish_3_x_qos_1_retained() {
    #[rustfmt::skip]
    const BYTES: [u8; 10] = [
        0x33, 0x08,                   // PUBLISH QoS 1 RETAIN, Remaining Length 8
        0x00, 0x03, b'a', b'/', b'b', // Topic Name "a/b"
        0x00, 0x0A,                   // Packet Identifier 10
        b'x',                         // payload
    ];
    let mut p = publish(QoS::AtLeastOnce, "a/b", Some(10), b"x");
    p.retain = true;
    for v in V3 {
        round_trip(&BYTES, v, &Packet::Publish(p.clone()));
    }
}

#[test]
fn publish_3_x_qos_2_duplicate() {
    // 0x3C: DUP 1, QoS 2, RETAIN 0.
    let bytes = publish_bytes(0x0C, b"q/2", &[&be(0xFFFF), b"payload"]);
    let mut p = publish(QoS::ExactlyOnce, "q/2", Some(0xFFFF), b"payload");
    p.dup = true;
    for v in V3 {
        round_trip(&bytes, v, &Packet::Publish(p.clone()));
    }
}

#[test]
fn publish_3_x_retained_with_empty_payload() {
    let mut p = publish(QoS::AtMostOnce, "t", None, b"");
    p.retain = true;
    for v in V3 {
        round_trip(
            &[0x31, 0x03, 0x00, 0x01, b't'],
            v,
            &Packet::Publish(p.clone()),
        );
    }
}

#[test]
fn remaining_length_boundaries() {
    // 3.1.1 Table 2.4 / 5.0 Table 1-1: the first and last value of each encoded size. A QoS 0
    // PUBLISH to "t" has a Remaining Length of 3 plus its payload.
    let table: [(usize, &[u8]); 6] = [
        (127, &[0x7F]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xFF, 0x7F]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
    ];
    for (remaining, encoded) in table {
        let payload = Bytes::from(vec![0x5A; remaining - 3]);
        let bytes = publish_bytes(0, b"t", &[&payload]);
        assert_eq!(bytes[1..=encoded.len()], *encoded, "{remaining}");
        assert_eq!(bytes.len(), 1 + encoded.len() + remaining);
        let mut expected = publish(QoS::AtMostOnce, "t", None, b"");
        expected.payload = payload;
        round_trip(&bytes, V311, &Packet::Publish(expected));
    }
}

#[test]
fn publish_5_qos_0_with_empty_property_block() {
    #[rustfmt::skip]
    const BYTES: [u8; 10] = [
        0x30, 0x08,                   // PUBLISH QoS 0, Remaining Length 8
        0x00, 0x03, b'a', b'/', b'b', // Topic Name "a/b"
        0x00,                         // Property Length 0
        b'h', b'i',                   // payload
    ];
    round_trip(
        &BYTES,
        V5,
        &Packet::Publish(publish(QoS::AtMostOnce, "a/b", None, b"hi")),
    );
}

#[test]
fn publish_5_with_every_publish_property() {
    let bytes = publish_bytes(
        0x02,
        b"sensor/1",
        &[
            &be(1),
            &props(&[
                &p_u8(PAYLOAD_FORMAT, 1),
                &p_u32(MESSAGE_EXPIRY, 3600),
                &p_str(CONTENT_TYPE, "application/json"),
                &p_str(RESPONSE_TOPIC, "reply/to"),
                &p_bin(CORRELATION_DATA, b"\x00\x01"),
                &p_vbi(SUBSCRIPTION_ID, 5),
                &p_vbi(SUBSCRIPTION_ID, 268_435_455),
                &p_u16(TOPIC_ALIAS, 7),
                &p_user("k1", "v1"),
                &p_user("k1", "v2"),
            ]),
            b"{}",
        ],
    );
    let mut p = publish(QoS::AtLeastOnce, "sensor/1", Some(1), b"{}");
    p.properties = PublishProperties {
        payload_format: Some(PayloadFormat::Utf8),
        message_expiry_interval: Some(3600),
        topic_alias: Some(nz16(7)),
        response_topic: Some(topic("reply/to")),
        correlation_data: Some(bin(b"\x00\x01")),
        user_properties: vec![user("k1", "v1"), user("k1", "v2")],
        subscription_identifiers: vec![nz32(5), nz32(268_435_455)],
        content_type: Some(s("application/json")),
    };
    round_trip(&bytes, V5, &Packet::Publish(p));
}

#[test]
fn publish_5_topic_alias_with_empty_topic_name() {
    // 5.0 section 3.3.2.3.4: a zero length Topic Name with a Topic Alias.
    let bytes = publish_bytes(0, b"", &[&props(&[&p_u16(TOPIC_ALIAS, 3)]), b"x"]);
    let mut p = publish(QoS::AtMostOnce, "unused", None, b"x");
    p.topic = TopicName::empty_for_alias();
    p.properties.topic_alias = Some(nz16(3));
    round_trip(&bytes, V5, &Packet::Publish(p));
}

#[test]
fn publish_topic_keeps_a_byte_order_mark() {
    // 0xEF 0xBB 0xBF is U+FEFF and must not be stripped: [MQTT-1.5.3-3] (3.1.1),
    // [MQTT-1.5.4-3] (5.0).
    for v in ALL {
        let bytes = publish0(v, "\u{FEFF}a".as_bytes(), &[]);
        assert_eq!(bytes[4..7], [0xEF, 0xBB, 0xBF]);
        round_trip(
            &bytes,
            v,
            &Packet::Publish(publish(QoS::AtMostOnce, "\u{FEFF}a", None, b"x")),
        );
    }
}

#[test]
fn property_order_does_not_matter_when_decoding() {
    // 5.0 section 2.2.2.2: "There is no significance in the order of Properties with different
    // Identifiers". The encoder writes them in identifier order.
    let reversed = publish0(
        V5,
        b"t",
        &[&p_u16(TOPIC_ALIAS, 2), &p_u32(MESSAGE_EXPIRY, 9)],
    );
    let sorted = publish0(
        V5,
        b"t",
        &[&p_u32(MESSAGE_EXPIRY, 9), &p_u16(TOPIC_ALIAS, 2)],
    );
    let packet = decode_whole(&reversed, V5);
    assert_eq!(packet, decode_whole(&sorted, V5));
    assert_eq!(encode(&packet, V5), sorted);
}

// ---------------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP (sections 3.4 to 3.7)
// ---------------------------------------------------------------------------------------------

#[test]
fn acks_are_two_bytes_on_3_x_and_mean_success_on_5() {
    // 5.0 sections 3.4.2.1 to 3.7.2.1: a Remaining Length of 2 means Success, no properties.
    for (first, make) in acks() {
        for v in ALL {
            round_trip(&[first, 0x02, 0x12, 0x34], v, &make(Ack::new(pid(0x1234))));
        }
    }
}

#[test]
fn acks_5_remaining_length_3_is_a_reason_code_without_properties() {
    // "If the Remaining Length is less than 4 there is no Property Length".
    let codes = [0x10, 0x80, 0x92, 0x92];
    for ((first, make), code) in acks().into_iter().zip(codes) {
        let expected = make(ack(5, code, AckProperties::default()));
        round_trip(&[first, 0x03, 0x00, 0x05, code], V5, &expected);
    }
}

#[test]
fn acks_5_longer_forms_of_success_decode_to_success() {
    for (first, make) in acks() {
        for bytes in [
            vec![first, 0x03, 0x00, 0x05, 0x00],
            vec![first, 0x04, 0x00, 0x05, 0x00, 0x00],
        ] {
            let packet = decode_whole(&bytes, V5);
            assert_eq!(packet, make(Ack::new(pid(5))), "{bytes:02x?}");
            // The encoder uses the shortest form.
            assert_eq!(encode(&packet, V5), [first, 0x02, 0x00, 0x05]);
        }
    }
}

#[test]
fn acks_5_with_reason_code_and_properties() {
    let properties = AckProperties {
        reason_string: Some(s("why")),
        user_properties: vec![user("a", "b")],
    };
    let encoded = props(&[&p_str(REASON_STRING, "why"), &p_user("a", "b")]);
    for ((first, make), failure) in acks().into_iter().zip([0x10, 0x80, 0x92, 0x92]) {
        // Success with properties keeps its reason code byte.
        for code in [0x00, failure] {
            let bytes = pkt(first, &[&be(9), &[code], &encoded]);
            round_trip(&bytes, V5, &make(ack(9, code, properties.clone())));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE and SUBACK (sections 3.8 and 3.9)
// ---------------------------------------------------------------------------------------------

#[test]
fn subscribe_3_x_requested_qos() {
    #[rustfmt::skip]
    const BYTES: [u8; 20] = [
        0x82, 0x12,                         // SUBSCRIBE, Remaining Length 18
        0x00, 0x0A,                         // Packet Identifier 10
        0x00, 0x03, b'a', b'/', b'+', 0x01, // "a/+" QoS 1
        0x00, 0x03, b'b', b'/', b'#', 0x02, // "b/#" QoS 2
        0x00, 0x01, b'c', 0x00,             // "c"   QoS 0
    ];
    let expected = Subscribe {
        packet_id: pid(10),
        properties: SubscribeProperties::default(),
        filters: vec![
            (
                filter("a/+"),
                SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            ),
            (
                filter("b/#"),
                SubscriptionOptions::with_qos(QoS::ExactlyOnce),
            ),
            (filter("c"), SubscriptionOptions::with_qos(QoS::AtMostOnce)),
        ],
    };
    for v in V3 {
        round_trip(&BYTES, v, &Packet::Subscribe(expected.clone()));
    }
}

#[test]
fn subscribe_5_subscription_options_and_identifier() {
    // Options byte (5.0 section 3.8.3.1): bits 0-1 Maximum QoS, bit 2 No Local, bit 3 Retain As
    // Published, bits 4-5 Retain Handling.
    let bytes = with_packet_id(
        0x82,
        V5,
        11,
        // Subscription Identifier 300 is the Variable Byte Integer 0xAC 0x02.
        &[&[SUBSCRIPTION_ID, 0xAC, 0x02], &p_user("u", "1")],
        &[
            &entry("a/b", 0x05),
            &entry("c/+", 0x1A),
            &entry("$share/g/d/#", 0x21),
            &entry("#", 0x00),
        ],
    );
    let options = |qos, no_local, retain_as_published, retain_handling| SubscriptionOptions {
        qos,
        no_local,
        retain_as_published,
        retain_handling,
    };
    let expected = Subscribe {
        packet_id: pid(11),
        properties: SubscribeProperties {
            subscription_identifier: Some(nz32(300)),
            user_properties: vec![user("u", "1")],
        },
        filters: vec![
            (
                filter("a/b"),
                options(
                    QoS::AtLeastOnce,
                    true,
                    false,
                    RetainHandling::SendAtSubscribe,
                ),
            ),
            (
                filter("c/+"),
                options(QoS::ExactlyOnce, false, true, RetainHandling::SendIfNew),
            ),
            (
                filter("$share/g/d/#"),
                options(QoS::AtLeastOnce, false, false, RetainHandling::DoNotSend),
            ),
            (filter("#"), SubscriptionOptions::default()),
        ],
    };
    round_trip(&bytes, V5, &Packet::Subscribe(expected));
}

#[test]
fn suback_3_x_granted_qos_and_failure() {
    let expected = SubAck {
        packet_id: pid(10),
        properties: AckProperties::default(),
        reason_codes: vec![rc(0x00), rc(0x01), rc(0x02), rc(0x80)],
    };
    for v in V3 {
        round_trip(
            &[0x90, 0x06, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80],
            v,
            &Packet::SubAck(expected.clone()),
        );
    }
}

#[test]
fn suback_5_every_reason_code_and_properties() {
    // 5.0 section 3.9.3.
    let codes = [
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    let bytes = with_packet_id(0x90, V5, 10, &[&p_str(REASON_STRING, "partial")], &[&codes]);
    let expected = SubAck {
        packet_id: pid(10),
        properties: AckProperties {
            reason_string: Some(s("partial")),
            user_properties: Vec::new(),
        },
        reason_codes: codes.map(rc).to_vec(),
    };
    round_trip(&bytes, V5, &Packet::SubAck(expected));
}

// ---------------------------------------------------------------------------------------------
// UNSUBSCRIBE and UNSUBACK (sections 3.10 and 3.11)
// ---------------------------------------------------------------------------------------------

#[test]
fn unsubscribe_3_x() {
    #[rustfmt::skip]
    const BYTES: [u8; 14] = [
        0xA2, 0x0C,                   // UNSUBSCRIBE, Remaining Length 12
        0x00, 0x0B,                   // Packet Identifier 11
        0x00, 0x03, b'a', b'/', b'b', // "a/b"
        0x00, 0x03, b'c', b'/', b'#', // "c/#"
    ];
    let expected = Unsubscribe {
        packet_id: pid(11),
        properties: UnsubscribeProperties::default(),
        filters: vec![filter("a/b"), filter("c/#")],
    };
    for v in V3 {
        round_trip(&BYTES, v, &Packet::Unsubscribe(expected.clone()));
    }
}

#[test]
fn unsubscribe_5_with_user_property() {
    let bytes = with_packet_id(0xA2, V5, 11, &[&p_user("k", "v")], &[&lp(b"a/+")]);
    let expected = Unsubscribe {
        packet_id: pid(11),
        properties: UnsubscribeProperties {
            user_properties: vec![user("k", "v")],
        },
        filters: vec![filter("a/+")],
    };
    round_trip(&bytes, V5, &Packet::Unsubscribe(expected));
}

#[test]
fn unsuback_3_x_has_no_payload() {
    let expected = UnsubAck {
        packet_id: pid(11),
        properties: AckProperties::default(),
        reason_codes: Vec::new(),
    };
    for v in V3 {
        round_trip(
            &[0xB0, 0x02, 0x00, 0x0B],
            v,
            &Packet::UnsubAck(expected.clone()),
        );
    }
}

#[test]
fn unsuback_5_every_reason_code() {
    // 5.0 section 3.11.3.
    let codes = [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    let bytes = with_packet_id(0xB0, V5, 11, &[&p_str(REASON_STRING, "done")], &[&codes]);
    let expected = UnsubAck {
        packet_id: pid(11),
        properties: AckProperties {
            reason_string: Some(s("done")),
            user_properties: Vec::new(),
        },
        reason_codes: codes.map(rc).to_vec(),
    };
    round_trip(&bytes, V5, &Packet::UnsubAck(expected));
}

// ---------------------------------------------------------------------------------------------
// PINGREQ, PINGRESP, DISCONNECT, AUTH (sections 3.12 to 3.15)
// ---------------------------------------------------------------------------------------------

#[test]
fn pingreq_and_pingresp_at_every_level() {
    for v in ALL {
        round_trip(&[0xC0, 0x00], v, &Packet::PingReq);
        round_trip(&[0xD0, 0x00], v, &Packet::PingResp);
    }
}

#[test]
fn disconnect_3_x_is_empty() {
    for v in V3 {
        round_trip(&[0xE0, 0x00], v, &Packet::Disconnect(Disconnect::default()));
    }
}

#[test]
fn disconnect_5_short_forms() {
    // 5.0 section 3.14.2.1: Remaining Length 0 is Normal disconnection; with a Remaining Length
    // of 1 there is no Property Length (3.14.2.2.1).
    round_trip(
        &[0xE0, 0x00],
        V5,
        &Packet::Disconnect(Disconnect::default()),
    );
    round_trip(
        &[0xE0, 0x01, 0x04],
        V5,
        &Packet::Disconnect(Disconnect::new(rc(0x04))),
    );
}

#[test]
fn disconnect_5_with_reason_code_and_properties() {
    let bytes = pkt(
        0xE0,
        &[
            &[0x80],
            &props(&[
                &p_u32(SESSION_EXPIRY, 0),
                &p_str(SERVER_REFERENCE, "backup:1883"),
                &p_str(REASON_STRING, "moving"),
                &p_user("a", "b"),
            ]),
        ],
    );
    let expected = Disconnect {
        reason_code: rc(0x80),
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            reason_string: Some(s("moving")),
            user_properties: vec![user("a", "b")],
            server_reference: Some(s("backup:1883")),
        },
    };
    round_trip(&bytes, V5, &Packet::Disconnect(expected));
}

#[test]
fn auth_5_empty_is_success() {
    // 5.0 section 3.15.2.1: Remaining Length 0 is Success with no properties.
    round_trip(&[0xF0, 0x00], V5, &Packet::Auth(Auth::default()));
}

#[test]
fn auth_5_with_reason_code_and_properties() {
    for code in [0x00, 0x18, 0x19] {
        let bytes = pkt(
            0xF0,
            &[
                &[code],
                &props(&[
                    &p_str(AUTH_METHOD, "SCRAM-SHA-1"),
                    &p_bin(AUTH_DATA, b"client-first"),
                    &p_str(REASON_STRING, "step"),
                    &p_user("a", "b"),
                ]),
            ],
        );
        let expected = Auth {
            reason_code: rc(code),
            properties: AuthProperties {
                authentication_method: Some(s("SCRAM-SHA-1")),
                authentication_data: Some(bin(b"client-first")),
                reason_string: Some(s("step")),
                user_properties: vec![user("a", "b")],
            },
        };
        round_trip(&bytes, V5, &Packet::Auth(expected));
    }
}

#[test]
fn encoding_for_3_x_leaves_out_what_only_mqtt_5_carries() {
    // Properties and reason codes do not exist on 3.x; a failed subscription is 0x80 (3.1.1
    // section 3.9.3).
    let mut p = publish(QoS::AtLeastOnce, "a/b", Some(10), b"x");
    p.retain = true;
    p.properties.message_expiry_interval = Some(60);
    p.properties.user_properties = vec![user("k", "v")];
    let suback = SubAck {
        packet_id: pid(10),
        properties: AckProperties {
            reason_string: Some(s("quota")),
            user_properties: Vec::new(),
        },
        reason_codes: vec![rc(0x01), rc(0x97), rc(0xA2)],
    };
    let puback = ack(10, 0x10, AckProperties::default());
    let disconnect = Disconnect::new(rc(0x04));
    for v in V3 {
        assert_eq!(
            encode(&Packet::Publish(p.clone()), v),
            publish_bytes(0x03, b"a/b", &[&be(10), b"x"])
        );
        assert_eq!(
            encode(&Packet::SubAck(suback.clone()), v),
            [0x90, 0x05, 0x00, 0x0A, 0x01, 0x80, 0x80]
        );
        assert_eq!(
            encode(&Packet::PubAck(puback.clone()), v),
            [0x40, 0x02, 0x00, 0x0A]
        );
        assert_eq!(
            encode(&Packet::Disconnect(disconnect.clone()), v),
            [0xE0, 0x00]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections: the fixed header
// ---------------------------------------------------------------------------------------------

/// One well-formed packet of every type whose fixed-header flags are fixed, at `v`.
fn fixed_flag_samples(v: ProtocolVersion) -> Vec<Vec<u8>> {
    let mut samples = vec![
        connect_bytes(v, 0x02, &[], &[&lp(b"c")]),
        pkt(0x20, &[&[0x00, 0x00], &pb(v, &[])]),
        vec![0x40, 0x02, 0x00, 0x01],
        vec![0x50, 0x02, 0x00, 0x01],
        vec![0x62, 0x02, 0x00, 0x01],
        vec![0x70, 0x02, 0x00, 0x01],
        with_packet_id(0x82, v, 1, &[], &[&entry("a", 0)]),
        with_packet_id(0x90, v, 1, &[], &[&[0x00]]),
        with_packet_id(0xA2, v, 1, &[], &[&lp(b"a")]),
        with_packet_id(0xB0, v, 1, &[], &[]),
        vec![0xC0, 0x00],
        vec![0xD0, 0x00],
        vec![0xE0, 0x00],
    ];
    if v == V5 {
        samples.push(vec![0xF0, 0x00]);
    }
    samples
}

#[test]
fn reserved_fixed_header_flags_are_malformed() {
    // 3.1.1 [MQTT-2.2.2-1] [MQTT-2.2.2-2]; 5.0 [MQTT-2.1.3-1] "If invalid flags are received it
    // is a Malformed Packet"; PUBREL, SUBSCRIBE and UNSUBSCRIBE must carry 0010
    // ([MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]), the others 0000. (MQTT 3.1, which is
    // not an OASIS specification, also let those three carry DUP, so it is left out here.)
    for v in [V311, V5] {
        for sample in fixed_flag_samples(v) {
            decode_whole(&sample, v);
            let valid = sample[0] & 0x0F;
            for flags in (0..16).filter(|f| *f != valid) {
                let mut bad = sample.clone();
                bad[0] = (sample[0] & 0xF0) | flags;
                assert_malformed(&bad, v);
            }
        }
    }
}

#[test]
fn reserved_flags_are_refused_from_the_first_byte_alone() {
    // PUBREL with flags 0011 and PINGREQ with 0001: nothing after the first byte is needed.
    for v in ALL {
        assert_malformed(&[0x63], v);
        assert_malformed(&[0xC1], v);
    }
}

#[test]
fn reserved_packet_type_0_is_malformed() {
    for v in ALL {
        assert_malformed(&[0x00, 0x00], v);
        assert_malformed(&[0x00], v);
    }
}

#[test]
fn packet_type_15_is_reserved_on_3_x() {
    // 3.1.1 Table 2.1: 15 is Reserved; AUTH exists from 5.0 on.
    for v in V3 {
        assert_malformed(&[0xF0, 0x00], v);
    }
}

#[test]
fn publish_with_qos_3_is_malformed() {
    // [MQTT-3.3.1-4] (3.1.1 and 5.0).
    for v in [V311, V5] {
        for flags in [0x06, 0x07, 0x0E, 0x0F] {
            assert_malformed(&publish_bytes(flags, b"a", &[&be(1), &pb(v, &[]), b"x"]), v);
        }
    }
}

#[test]
fn dup_on_qos_0_is_a_protocol_error() {
    // [MQTT-3.3.1-2] (3.1.1 and 5.0): DUP MUST be 0 for QoS 0.
    for v in [V311, V5] {
        assert_protocol_error(&publish_bytes(0x08, b"a", &[&pb(v, &[]), b"x"]), v);
    }
}

#[test]
fn variable_byte_integer_of_five_bytes_is_malformed() {
    // 3.1.1 section 2.2.3 / 5.0 section 1.5.5: "The maximum number of bytes in the ... field is
    // four". For the Remaining Length the fourth byte with its continuation bit set is enough.
    for v in ALL {
        assert_malformed(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], v);
        assert_malformed(&[0x30, 0x80, 0x80, 0x80, 0x80], v);
    }
    let five = [0x80, 0x80, 0x80, 0x80, 0x01];
    assert_malformed(&publish_bytes(0, b"a", &[&five, b"x"]), V5); // Property Length
    let id = cat(&[&[SUBSCRIPTION_ID], &five]);
    assert_malformed(&publish0(V5, b"a", &[&id]), V5); // Subscription Identifier
}

#[test]
fn packet_larger_than_maximum_is_refused_from_the_fixed_header_alone() {
    // Only the fixed header is in the buffer; 5.0 reason code 0x95 Packet too large.
    let cases: [(&[u8], u32, u64); 4] = [
        (&[0x30, 0x7F], 128, 129),
        (&[0x30, 0xE8, 0x07], 100, 1003),
        (&[0x30, 0xFF, 0xFF, 0x7F], 2_097_154, 2_097_155),
        (&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], 1_000_000, 268_435_460),
    ];
    for v in ALL {
        for (header, max, size) in cases {
            let mut buf = BytesMut::from(header);
            let opts = DecodeOptions::new(v).with_max_packet_size(max);
            let e = decode(&mut buf, &opts).unwrap_err();
            assert_eq!(e, DecodeError::PacketTooLarge { size, max });
            assert_eq!(e.reason_code(), rc(0x95));
        }
    }
}

#[test]
fn packet_of_exactly_the_maximum_size_is_accepted() {
    let bytes = [0x30, 0x03, 0x00, 0x01, b'a'];
    for v in V3 {
        let opts = DecodeOptions::new(v).with_max_packet_size(5);
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(matches!(
            decode(&mut buf, &opts),
            Ok(Some(Packet::Publish(_)))
        ));
        let mut buf = BytesMut::from(&bytes[..]);
        let e = decode(&mut buf, &opts.with_max_packet_size(4)).unwrap_err();
        assert_eq!(e, DecodeError::PacketTooLarge { size: 5, max: 4 });
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections: data representations
// ---------------------------------------------------------------------------------------------

#[test]
fn fields_running_past_the_end_of_the_packet_are_malformed() {
    let v3_cases = [
        // Topic Name of 10 bytes, 3 present.
        pkt(0x30, &[&[0x00, 0x0A], b"abc"]),
        // Half a Packet Identifier.
        pkt(0x32, &[&lp(b"a"), &[0x00]]),
        // Client Identifier of 9 bytes, 3 present.
        connect_bytes(V311, 0x02, &[], &[&[0x00, 0x09], b"abc"]),
        // Password of 5 bytes, 1 present.
        connect_bytes(
            V311,
            0xC2,
            &[],
            &[&lp(b"c"), &lp(b"u"), &[0x00, 0x05, b'p']],
        ),
        // Will Flag set, Will Payload missing.
        connect_bytes(V311, 0x06, &[], &[&lp(b"c"), &lp(b"w")]),
        // CONNACK without its return code; PUBACK with one byte.
        vec![0x20, 0x01, 0x00],
        vec![0x40, 0x01, 0x00],
        // SUBSCRIBE entry without its options byte.
        pkt(0x82, &[&be(1), &lp(b"a")]),
        // Topic Filter of 4 bytes, 2 present.
        pkt(0xA2, &[&be(1), &[0x00, 0x04], b"ab"]),
    ];
    for bytes in v3_cases {
        assert_malformed(&bytes, V311);
    }
    let v5_cases = [
        // Property Length 5, one byte present.
        pkt(0x30, &[&lp(b"a"), &[0x05, 0x01]]),
        // A Content Type of 5 bytes running out of its 3-byte property block, though the packet
        // goes on.
        pkt(
            0x30,
            &[&lp(b"a"), &[0x03, CONTENT_TYPE, 0x00, 0x05], b"hello"],
        ),
        // Four Byte Integer cut short.
        pkt(0x30, &[&lp(b"a"), &[0x03, MESSAGE_EXPIRY, 0x00, 0x00]]),
        // CONNACK without Property Length.
        vec![0x20, 0x02, 0x00, 0x00],
        // SUBACK without Property Length.
        vec![0x90, 0x02, 0x00, 0x01],
    ];
    for bytes in v5_cases {
        assert_malformed(&bytes, V5);
    }
}

/// Ill-formed UTF-8: encoded surrogates U+D800 and U+DFFF, overlong U+0000 and U+007F, a byte
/// that never occurs, a truncated sequence, and a code point above U+10FFFF.
const ILL_FORMED: [&[u8]; 7] = [
    b"\xED\xA0\x80",
    b"\xED\xBF\xBF",
    b"\xC0\x80",
    b"\xC1\xBF",
    b"\xFF",
    b"a\xE2\x82",
    b"\xF4\x90\x80\x80",
];

/// The same `text` in a Topic Name, Client Identifier, User Name, Will Topic, the Topic Filter
/// of a SUBSCRIBE and of an UNSUBSCRIBE, and on 5.0 a User Property value and a Content Type.
fn strings_in_every_place(v: ProtocolVersion, text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![
        publish0(v, &cat(&[b"a/", text]), &[]),
        connect_bytes(v, 0x02, &[], &[&lp(text)]),
        connect_bytes(v, 0x82, &[], &[&lp(b"c"), &lp(text)]),
        connect_bytes(v, 0x06, &[], &[&lp(b"c"), &pb(v, &[]), &lp(text), &lp(b"")]),
        subscribe1(v, text, 0),
        unsubscribe1(v, text),
    ];
    if v == V5 {
        let pair = cat(&[&[0x26], &lp(b"k"), &lp(text)]);
        out.push(publish0(v, b"t", &[&pair]));
        out.push(publish0(v, b"t", &[&p_bin(CONTENT_TYPE, text)]));
    }
    out
}

#[test]
fn ill_formed_utf8_is_malformed() {
    // [MQTT-1.5.3-1] (3.1.1), [MQTT-1.5.4-1] (5.0).
    for v in ALL {
        for text in ILL_FORMED {
            for bytes in strings_in_every_place(v, text) {
                assert_malformed(&bytes, v);
            }
        }
    }
}

#[test]
fn null_character_is_malformed() {
    // [MQTT-1.5.3-2] (3.1.1), [MQTT-1.5.4-2] (5.0).
    for v in ALL {
        for bytes in strings_in_every_place(v, b"a\x00b") {
            assert_malformed(&bytes, v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections: CONNECT
// ---------------------------------------------------------------------------------------------

#[test]
fn connect_reserved_flag_is_malformed() {
    // [MQTT-3.1.2-3] (3.1.1 and 5.0).
    for v in ALL {
        assert_malformed(&connect_bytes(v, 0x03, &[], &[&lp(b"c")]), v);
    }
}

#[test]
fn connect_will_qos_3_is_malformed() {
    // 3.1.1 [MQTT-3.1.2-14]; 5.0 [MQTT-3.1.2-12] "A value of 3 (0x03) is a Malformed Packet".
    for v in ALL {
        let bytes = connect_bytes(
            v,
            0x1E,
            &[],
            &[&lp(b"c"), &pb(v, &[]), &lp(b"w"), &lp(b"x")],
        );
        assert_malformed(&bytes, v);
    }
}

#[test]
fn connect_will_qos_or_retain_without_will_flag_is_malformed() {
    // 3.1.1 [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]; 5.0 [MQTT-3.1.2-11]
    // [MQTT-3.1.2-13].
    for v in ALL {
        for flags in [0x0A, 0x12, 0x22, 0x3A] {
            assert_malformed(&connect_bytes(v, flags, &[], &[&lp(b"c")]), v);
        }
    }
}

#[test]
fn connect_3_x_password_without_user_name_is_malformed() {
    // 3.1.1 [MQTT-3.1.2-22]. (Allowed on 5.0: see connect_5_allows_a_password_without_...)
    for v in V3 {
        assert_malformed(&connect_bytes(v, 0x42, &[], &[&lp(b"c"), &lp(b"pw")]), v);
    }
}

#[test]
fn connect_with_unknown_protocol_name_is_refused_with_0x84() {
    // [MQTT-3.1.2-1] (3.1.1 and 5.0); 5.0 answers with 0x84 Unsupported Protocol Version.
    for (name, level) in [(&b"MQTX"[..], 4), (b"mqtt", 4), (b"MQTT\x00", 5), (b"", 4)] {
        let bytes = pkt(0x10, &[&lp(name), &[level, 0x02], &be(60), &lp(b"c")]);
        for v in ALL {
            let e = rejection(&bytes, v);
            assert_eq!(e, DecodeError::InvalidProtocolName, "{bytes:02x?}");
            assert_eq!(e.reason_code(), rc(0x84));
        }
    }
}

#[test]
fn connect_with_unsupported_protocol_level_is_refused_with_0x84() {
    // 3.1.1 [MQTT-3.1.2-2] (CONNACK return code 0x01); 5.0 [MQTT-3.1.2-2] (reason code 0x84).
    for level in [0, 1, 2, 6, 255] {
        let bytes = pkt(0x10, &[&lp(b"MQTT"), &[level, 0x02], &be(60), &lp(b"c")]);
        for v in ALL {
            let e = rejection(&bytes, v);
            assert_eq!(e, DecodeError::UnsupportedProtocolVersion(level));
            assert_eq!(e.reason_code(), rc(0x84));
        }
    }
}

#[test]
fn connect_with_trailing_bytes_is_malformed() {
    // Fields are present exactly when their flags say so: 3.1.1 [MQTT-3.1.2-18]
    // [MQTT-3.1.2-20]. Here the User Name and Password flags are 0 but a string follows.
    for v in ALL {
        assert_malformed(&connect_bytes(v, 0x02, &[], &[&lp(b"c"), &lp(b"u")]), v);
    }
}

#[test]
fn wildcards_in_a_will_topic_are_malformed() {
    // The Will Topic is a Topic Name; 3.1.1 [MQTT-4.7.1-1]: wildcards MUST NOT be used within a
    // Topic Name. An empty one breaks [MQTT-4.7.3-1].
    for v in ALL {
        for will_topic in [&b"w/#"[..], b"w/+", b"+", b""] {
            let payload: [&[u8]; 4] = [&lp(b"c"), &pb(v, &[]), &lp(will_topic), &lp(b"x")];
            assert_malformed(&connect_bytes(v, 0x06, &[], &payload), v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections: MQTT 5 properties (5.0 section 2.2.2)
// ---------------------------------------------------------------------------------------------

fn twice(property: &[u8]) -> Vec<u8> {
    cat(&[property, property])
}

#[test]
fn property_that_may_appear_once_appearing_twice_is_a_protocol_error() {
    let cases = [
        publish0(V5, b"t", &[&twice(&p_u32(MESSAGE_EXPIRY, 1))]),
        publish0(V5, b"t", &[&twice(&p_u16(TOPIC_ALIAS, 1))]),
        publish0(V5, b"t", &[&twice(&p_u8(PAYLOAD_FORMAT, 0))]),
        publish0(V5, b"t", &[&twice(&p_str(CONTENT_TYPE, "a"))]),
        connect_bytes(V5, 0x02, &[&twice(&p_u32(SESSION_EXPIRY, 1))], &[&lp(b"c")]),
        connect_bytes(
            V5,
            0x02,
            &[&twice(&p_u16(RECEIVE_MAXIMUM, 1))],
            &[&lp(b"c")],
        ),
        with_packet_id(
            0x82,
            V5,
            1,
            &[&twice(&p_vbi(SUBSCRIPTION_ID, 1))],
            &[&entry("a", 0)],
        ),
        pkt(
            0x40,
            &[
                &be(1),
                &[0x00],
                &props(&[&twice(&p_str(REASON_STRING, "r"))]),
            ],
        ),
        pkt(
            0x20,
            &[&[0x00, 0x00], &props(&[&twice(&p_u8(MAXIMUM_QOS, 0))])],
        ),
        pkt(
            0xF0,
            &[&[0x18], &props(&[&twice(&p_str(AUTH_METHOD, "m"))])],
        ),
    ];
    for bytes in cases {
        assert_protocol_error(&bytes, V5);
    }
}

#[test]
fn property_not_valid_for_the_packet_is_malformed() {
    // 5.0 section 2.2.2.2: "A Control Packet which contains an Identifier which is not valid for
    // its packet type ... is a Malformed Packet".
    let cases = [
        publish0(V5, b"t", &[&p_u32(SESSION_EXPIRY, 1)]),
        publish0(V5, b"t", &[&p_u32(WILL_DELAY, 1)]),
        connect_bytes(V5, 0x02, &[&p_u16(TOPIC_ALIAS, 1)], &[&lp(b"c")]),
        connect_bytes(V5, 0x02, &[&p_u8(MAXIMUM_QOS, 1)], &[&lp(b"c")]),
        connect_bytes(
            V5,
            0x06,
            &[],
            &[
                &lp(b"c"),
                &props(&[&p_u32(SESSION_EXPIRY, 1)]),
                &lp(b"w"),
                &lp(b""),
            ],
        ),
        pkt(
            0x40,
            &[&be(1), &[0x00], &props(&[&p_str(CONTENT_TYPE, "a")])],
        ),
        with_packet_id(0x82, V5, 1, &[&p_u16(TOPIC_ALIAS, 1)], &[&entry("a", 0)]),
        with_packet_id(0xA2, V5, 1, &[&p_vbi(SUBSCRIPTION_ID, 1)], &[&lp(b"a")]),
        pkt(0xE0, &[&[0x00], &props(&[&p_str(AUTH_METHOD, "m")])]),
        pkt(
            0xF0,
            &[
                &[0x18],
                &props(&[&p_str(AUTH_METHOD, "m"), &p_u32(WILL_DELAY, 1)]),
            ],
        ),
    ];
    for bytes in cases {
        assert_malformed(&bytes, V5);
    }
}

#[test]
fn unknown_property_identifier_is_malformed() {
    // 5.0 section 2.2.2.2; Table 2-4 defines no property 0x00, 0x04, 0x05, 0x7F or 128.
    for id in [&[0x00u8][..], &[0x04], &[0x05], &[0x7F], &[0x80, 0x01]] {
        assert_malformed(
            &publish0(V5, b"t", &[&cat(&[id, &[0x00, 0x00, 0x00, 0x00]])]),
            V5,
        );
    }
}

#[test]
fn property_values_out_of_range_are_protocol_errors() {
    let connect_with = |property: Vec<u8>| connect_bytes(V5, 0x02, &[&property], &[&lp(b"c")]);
    let connack_with = |property: Vec<u8>| pkt(0x20, &[&[0x00, 0x00], &props(&[&property])]);
    let cases = [
        // 3.1.2.11.3 Receive Maximum 0, 3.1.2.11.4 Maximum Packet Size 0.
        connect_with(p_u16(RECEIVE_MAXIMUM, 0)),
        connect_with(p_u32(MAXIMUM_PACKET_SIZE, 0)),
        // 3.1.2.11.6 / 3.1.2.11.7: other than 0 or 1.
        connect_with(p_u8(REQUEST_RESPONSE_INFO, 2)),
        connect_with(p_u8(REQUEST_PROBLEM_INFO, 2)),
        // 3.2.2.3.3 Receive Maximum 0, 3.2.2.3.4 Maximum QoS 2, 3.2.2.3.5 Retain Available 2,
        // 3.2.2.3.6 Maximum Packet Size 0, 3.2.2.3.11-13 availability flags 2.
        connack_with(p_u16(RECEIVE_MAXIMUM, 0)),
        connack_with(p_u8(MAXIMUM_QOS, 2)),
        connack_with(p_u8(RETAIN_AVAILABLE, 2)),
        connack_with(p_u32(MAXIMUM_PACKET_SIZE, 0)),
        connack_with(p_u8(WILDCARD_SUB_AVAILABLE, 2)),
        connack_with(p_u8(SUB_ID_AVAILABLE, 2)),
        connack_with(p_u8(SHARED_SUB_AVAILABLE, 2)),
        // 3.3.2.3.8 / 3.8.2.1.2: "It is a Protocol Error if the Subscription Identifier has a
        // value of 0".
        publish0(V5, b"t", &[&p_vbi(SUBSCRIPTION_ID, 0)]),
        with_packet_id(
            0x82,
            V5,
            1,
            &[&p_vbi(SUBSCRIPTION_ID, 0)],
            &[&entry("a", 0)],
        ),
        // 3.3.2.3.2 defines Payload Format Indicator values 0 and 1 only.
        publish0(V5, b"t", &[&p_u8(PAYLOAD_FORMAT, 2)]),
        // [MQTT-3.3.2-14] (5.0): the Response Topic MUST NOT contain wildcard characters.
        publish0(V5, b"t", &[&p_str(RESPONSE_TOPIC, "r/#")]),
    ];
    for bytes in cases {
        assert_protocol_error(&bytes, V5);
    }
}

#[test]
fn topic_alias_0_is_answered_with_topic_alias_invalid() {
    // 5.0 section 3.3.2.3.4: "A Topic Alias of 0 is not permitted" [MQTT-3.3.2-8]; section
    // 3.3.4: "A Topic Alias value of 0 ... is a Protocol Error, the receiver uses DISCONNECT
    // with Reason Code of 0x94 (Topic Alias invalid)".
    let e = rejection(&publish0(V5, b"t", &[&p_u16(TOPIC_ALIAS, 0)]), V5);
    assert_eq!(e, DecodeError::TopicAliasZero);
    assert_eq!(e.reason_code(), rc(0x94));
}

#[test]
fn authentication_data_without_authentication_method_is_a_protocol_error() {
    // 5.0 section 3.1.2.11.10.
    let bytes = connect_bytes(V5, 0x02, &[&p_bin(AUTH_DATA, b"x")], &[&lp(b"c")]);
    assert_protocol_error(&bytes, V5);
}

#[test]
fn auth_without_authentication_method_is_a_protocol_error() {
    // 5.0 section 3.15.2.2.2: "It is a Protocol Error to omit the Authentication Method". Only
    // the Remaining Length 0 form (Success, no properties, 3.15.2.1) carries none.
    assert_protocol_error(
        &pkt(0xF0, &[&[0x18], &props(&[&p_str(REASON_STRING, "more")])]),
        V5,
    );
    assert_protocol_error(&[0xF0, 0x02, 0x19, 0x00], V5);
    assert_protocol_error(&[0xF0, 0x01, 0x18], V5);
}

// ---------------------------------------------------------------------------------------------
// Rejections: PUBLISH topics and packet identifiers
// ---------------------------------------------------------------------------------------------

#[test]
fn packet_identifier_0_is_a_protocol_error() {
    // 3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3]: non-zero Packet Identifiers in SUBSCRIBE,
    // UNSUBSCRIBE and PUBLISH with QoS > 0; an acknowledgement of identifier 0 answers
    // nothing that could have been sent.
    for v in [V311, V5] {
        let mut cases = vec![
            publish_bytes(0x02, b"t", &[&be(0), &pb(v, &[]), b"x"]),
            publish_bytes(0x04, b"t", &[&be(0), &pb(v, &[]), b"x"]),
            with_packet_id(0x82, v, 0, &[], &[&entry("a", 0)]),
            with_packet_id(0xA2, v, 0, &[], &[&lp(b"a")]),
            with_packet_id(0x90, v, 0, &[], &[&[0x00]]),
            with_packet_id(0xB0, v, 0, &[], &[]),
        ];
        cases.extend(acks().map(|(first, _)| vec![first, 0x02, 0x00, 0x00]));
        for bytes in cases {
            assert_protocol_error(&bytes, v);
        }
    }
}

#[test]
fn wildcards_in_a_publish_topic_name_are_malformed() {
    // [MQTT-3.3.2-2] (3.1.1 and 5.0).
    for v in ALL {
        for name in [&b"a/+"[..], b"a/#", b"+", b"#", b"a+b", b"sport/tennis#"] {
            assert_malformed(&publish0(v, name, &[]), v);
        }
    }
}

#[test]
fn empty_topic_name_is_malformed_on_3_x() {
    // [MQTT-4.7.3-1] (3.1.1): Topic Names are at least one character long.
    for v in V3 {
        assert_malformed(&publish0(v, b"", &[]), v);
    }
}

#[test]
fn empty_topic_name_without_topic_alias_is_a_protocol_error_on_5() {
    // 5.0 section 3.3.2.1: "It is a Protocol Error if the Topic Name is zero length and there is
    // no Topic Alias".
    assert_protocol_error(&publish0(V5, b"", &[]), V5);
    assert_protocol_error(&publish0(V5, b"", &[&p_u32(MESSAGE_EXPIRY, 1)]), V5);
}

// ---------------------------------------------------------------------------------------------
// Rejections: SUBSCRIBE and UNSUBSCRIBE
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_topic_filters_are_rejected() {
    // 3.1.1 and 5.0 [MQTT-4.7.1-2] ('#' last and alone in its level), [MQTT-4.7.1-3] ('+'
    // occupies a whole level), [MQTT-4.7.3-1] (at least one character).
    let bad = [
        "a/#/b",
        "a+",
        "sport+",
        "#/",
        "sport/tennis#",
        "a/b+/c",
        "+a",
        "##",
        "",
    ];
    for v in ALL {
        for text in bad {
            assert_malformed(&subscribe1(v, text.as_bytes(), 0), v);
            assert_malformed(&unsubscribe1(v, text.as_bytes()), v);
        }
    }
}

#[test]
fn malformed_shared_subscription_filters_are_rejected_on_5() {
    // 5.0 [MQTT-4.8.2-1] (a ShareName of at least one character) and [MQTT-4.8.2-2] (no '/',
    // '+' or '#' in it, then '/' and a Topic Filter).
    let bad = [
        "$share/",
        "$share/g",
        "$share/g/",
        "$share//x",
        "$share/g+/x",
        "$share/+/x",
        "$share/#",
    ];
    for text in bad {
        assert_malformed(&subscribe1(V5, text.as_bytes(), 0), V5);
        assert_malformed(&unsubscribe1(V5, text.as_bytes()), V5);
    }
}

#[test]
fn dollar_share_filters_are_ordinary_topic_filters_on_3_x() {
    // 3.1.1 section 4.7: these follow every Topic Filter rule ([MQTT-4.7.1-2], [MQTT-4.7.1-3],
    // [MQTT-4.7.3-1]); the $share/{ShareName}/{filter} form only exists from 5.0 (4.8.2). A
    // 3.1.1 Server answers such a SUBSCRIBE with a SUBACK ([MQTT-3.8.4-1]), 0x80 if it refuses.
    for v in V3 {
        for text in [
            "$share/",
            "$share/g",
            "$share/g/",
            "$share//x",
            "$share/+/x",
            "$share/#",
        ] {
            let Packet::Subscribe(sub) = decode_whole(&subscribe1(v, text.as_bytes(), 0), v) else {
                panic!("not a SUBSCRIBE");
            };
            assert_eq!(sub.filters[0].0.as_str(), text);
            let Packet::Unsubscribe(unsub) = decode_whole(&unsubscribe1(v, text.as_bytes()), v)
            else {
                panic!("not an UNSUBSCRIBE");
            };
            assert_eq!(unsub.filters[0].as_str(), text);
        }
    }
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    // 5.0 [MQTT-3.8.3-4].
    assert_protocol_error(&subscribe1(V5, b"$share/g/x", 0x04), V5);
}

#[test]
fn reserved_bits_of_the_requested_qos_byte_are_malformed_on_3_x() {
    // 3.1.1 [MQTT-3.8.3-4]: reserved bits non-zero, or QoS not 0, 1 or 2.
    for v in V3 {
        for options in [0x03, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFC, 0xFD] {
            assert_malformed(&subscribe1(v, b"a", options), v);
        }
    }
}

#[test]
fn reserved_bits_of_the_subscription_options_are_malformed_on_5() {
    // 5.0 [MQTT-3.8.3-5]: bits 6 and 7 are reserved.
    for options in [0x40, 0x80, 0xC0, 0x41] {
        assert_malformed(&subscribe1(V5, b"a", options), V5);
    }
}

#[test]
fn retain_handling_3_is_a_protocol_error() {
    // 5.0 section 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3".
    assert_protocol_error(&subscribe1(V5, b"a", 0x30), V5);
}

#[test]
fn maximum_qos_3_in_subscription_options_is_a_protocol_error_on_5() {
    // 5.0 section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3".
    assert_protocol_error(&subscribe1(V5, b"a", 0x03), V5);
}

#[test]
fn empty_subscribe_or_unsubscribe_payload_is_a_protocol_error() {
    // SUBSCRIBE: 3.1.1 [MQTT-3.8.3-3] ("a protocol violation"), 5.0 [MQTT-3.8.3-2] ("a Protocol
    // Error"). UNSUBSCRIBE: [MQTT-3.10.3-2] (3.1.1 and 5.0).
    for v in ALL {
        assert_protocol_error(&with_packet_id(0x82, v, 1, &[], &[]), v);
        assert_protocol_error(&with_packet_id(0xA2, v, 1, &[], &[]), v);
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections: bodies and reason codes
// ---------------------------------------------------------------------------------------------

#[test]
fn pingreq_and_pingresp_with_a_body_are_malformed() {
    // Sections 3.12 and 3.13: no variable header, no payload.
    for v in ALL {
        assert_malformed(&[0xC0, 0x01, 0x00], v);
        assert_malformed(&[0xD0, 0x01, 0x00], v);
    }
}

#[test]
fn disconnect_with_a_body_is_malformed_on_3_x() {
    // 3.1.1 section 3.14: DISCONNECT has no variable header and no payload.
    for v in V3 {
        assert_malformed(&[0xE0, 0x01, 0x00], v);
        assert_malformed(&[0xE0, 0x02, 0x00, 0x00], v);
    }
}

#[test]
fn bytes_after_the_last_field_are_malformed() {
    for v in V3 {
        assert_malformed(&[0x20, 0x03, 0x00, 0x00, 0x00], v); // CONNACK
        assert_malformed(&[0x40, 0x03, 0x00, 0x01, 0x00], v); // PUBACK
        assert_malformed(&[0xB0, 0x03, 0x00, 0x01, 0x00], v); // UNSUBACK
    }
    assert_malformed(&[0xE0, 0x03, 0x00, 0x00, 0x00], V5); // DISCONNECT after its properties
    assert_malformed(&[0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00], V5); // PUBACK
}

#[test]
fn invalid_return_codes_are_malformed_on_3_x() {
    // 3.1.1 section 3.2.2.3: return codes 6-255 are reserved; [MQTT-3.9.3-2]: SUBACK return
    // codes other than 0x00, 0x01, 0x02 and 0x80 MUST NOT be used.
    for v in V3 {
        for code in [0x06, 0x80, 0xFF] {
            assert_malformed(&[0x20, 0x02, 0x00, code], v);
        }
        for code in [0x03, 0x04, 0x7F, 0x81, 0x87] {
            assert_malformed(&[0x90, 0x03, 0x00, 0x01, code], v);
        }
    }
}

#[test]
fn reason_codes_not_allowed_on_the_packet_are_malformed_on_5() {
    // 5.0 sections 3.2.2.2 (CONNACK), 3.4.2.1 to 3.7.2.1 (PUBACK to PUBCOMP), 3.9.3 (SUBACK),
    // 3.11.3 (UNSUBACK), 3.14.2.1 (DISCONNECT) and 3.15.2.1 (AUTH) list every code each packet
    // may carry.
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for code in [0x01, 0x04, 0x8B, 0x8E, 0x92, 0xFF] {
        cases.push(vec![0x20, 0x03, 0x00, code, 0x00]);
    }
    for first in [0x40, 0x50] {
        for code in [0x01, 0x11, 0x81, 0x92] {
            cases.push(vec![first, 0x03, 0x00, 0x01, code]);
        }
    }
    for first in [0x62, 0x70] {
        for code in [0x01, 0x10, 0x80, 0x91] {
            cases.push(vec![first, 0x03, 0x00, 0x01, code]);
        }
    }
    for code in [0x03, 0x04, 0x11, 0x81, 0x90] {
        cases.push(with_packet_id(0x90, V5, 1, &[], &[&[0x00, code]]));
    }
    for code in [0x01, 0x02, 0x10, 0x90] {
        cases.push(with_packet_id(0xB0, V5, 1, &[], &[&[0x00, code]]));
    }
    for code in [0x01, 0x10, 0x84, 0x91, 0xA3] {
        cases.push(vec![0xE0, 0x01, code]);
    }
    for code in [0x01, 0x80, 0x87] {
        cases.push(vec![0xF0, 0x02, code, 0x00]);
    }
    for bytes in cases {
        assert_malformed(&bytes, V5);
    }
}

#[test]
fn session_present_on_a_refused_connection_is_a_protocol_error() {
    // 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6]: a non-zero code means Session Present 0.
    for v in V3 {
        assert_protocol_error(&[0x20, 0x02, 0x01, 0x05], v);
    }
    assert_protocol_error(&[0x20, 0x03, 0x01, 0x87, 0x00], V5);
}

#[test]
fn reserved_connack_flags_are_malformed() {
    // 3.1.1 section 3.2.2.1 and 5.0 [MQTT-3.2.2-1]: bits 7-1 are reserved and MUST be 0.
    for flags in [0x02, 0x80, 0xFE] {
        for v in V3 {
            assert_malformed(&[0x20, 0x02, flags, 0x00], v);
        }
        assert_malformed(&[0x20, 0x03, flags, 0x00, 0x00], V5);
    }
}

// ---------------------------------------------------------------------------------------------
// Incremental decoding
// ---------------------------------------------------------------------------------------------

#[test]
fn one_byte_at_a_time_needs_the_whole_packet() {
    static PAYLOAD: [u8; 200] = [0xA5; 200];
    let publish5 = publish_bytes(
        0x02,
        b"a/b",
        &[&be(3), &props(&[&p_user("k", "v")]), &PAYLOAD],
    );
    let mut expected = publish(QoS::AtLeastOnce, "a/b", Some(3), &PAYLOAD);
    expected.properties.user_properties = vec![user("k", "v")];
    assert_eq!(
        decode_byte_by_byte(&publish5, V5),
        Packet::Publish(expected)
    );

    let connect5 = connect_bytes(
        V5,
        0xC2,
        &[&p_u32(SESSION_EXPIRY, 9)],
        &[&lp(b"c"), &lp(b"u"), &lp(b"p")],
    );
    assert_eq!(
        decode_byte_by_byte(&connect5, V5),
        decode_whole(&connect5, V5)
    );
    for v in ALL {
        assert_eq!(decode_byte_by_byte(&[0xC0, 0x00], v), Packet::PingReq);
    }
}

#[test]
fn packets_back_to_back_decode_in_order() {
    for v in ALL {
        let first = publish_bytes(0x02, b"a", &[&be(1), &pb(v, &[]), b"one"]);
        let second = vec![0x40, 0x02, 0x00, 0x01];
        let third = vec![0xC0, 0x00];
        let fourth = publish0(v, b"t", &[]);
        let mut buf = BytesMut::from(&cat(&[&first, &second, &third, &fourth[..3]])[..]);
        let opts = DecodeOptions::new(v);
        assert_eq!(
            decode(&mut buf, &opts).unwrap(),
            Some(decode_whole(&first, v))
        );
        assert_eq!(
            decode(&mut buf, &opts).unwrap(),
            Some(Packet::PubAck(Ack::new(pid(1))))
        );
        assert_eq!(decode(&mut buf, &opts).unwrap(), Some(Packet::PingReq));
        // The start of a fourth packet stays in the buffer until the rest arrives.
        assert_eq!(decode(&mut buf, &opts).unwrap(), None);
        assert_eq!(buf[..], fourth[..3]);
        buf.extend_from_slice(&fourth[3..]);
        assert_eq!(
            decode(&mut buf, &opts).unwrap(),
            Some(decode_whole(&fourth, v))
        );
        assert!(buf.is_empty());
        assert_eq!(decode(&mut buf, &opts).unwrap(), None);
    }
}

#[test]
fn publish_payload_and_topic_are_not_copied() {
    for v in [V311, V5] {
        let bytes = publish_bytes(0x02, b"a/b", &[&be(7), &pb(v, &[]), b"payload bytes"]);
        let mut buf = BytesMut::from(&bytes[..]);
        let start = buf.as_ptr() as usize;
        let Some(Packet::Publish(p)) = decode(&mut buf, &DecodeOptions::new(v)).unwrap() else {
            panic!("not a PUBLISH");
        };
        let payload_at = p.payload.as_ptr() as usize;
        assert_eq!(payload_at, start + bytes.len() - p.payload.len());
        assert_eq!(&p.payload[..], b"payload bytes");
        // Topic Name "a/b" starts after the fixed header (2 bytes) and its length (2 bytes).
        assert_eq!(
            p.topic.as_mqtt_string().as_bytes().as_ptr() as usize,
            start + 4
        );
    }
}

/// A peer's Maximum Packet Size counts the whole packet, fixed header included
/// ([MQTT-3.1.2-24] in 5.0: the server must not send a larger packet); over the limit,
/// nothing is written.
#[test]
fn encode_at_most_counts_the_whole_packet_and_writes_nothing_over_it() {
    let publish = Packet::Publish(Publish::new(
        TopicName::new("a/b").unwrap(),
        Bytes::from_static(b"hello"),
    ));
    // 1 byte of header, 1 of remaining length, 2 + 3 of topic, 5 of payload.
    let size = 12;
    assert_eq!(publish.encoded_len(ProtocolVersion::V3_1_1).unwrap(), size);
    let mut buf = BytesMut::from(&b"xy"[..]);
    assert_eq!(
        publish.encode_at_most(ProtocolVersion::V3_1_1, size - 1, &mut buf),
        Err(EncodeError::OverLimit {
            size,
            max: size - 1
        })
    );
    assert_eq!(&buf[..], b"xy");
    publish
        .encode_at_most(ProtocolVersion::V3_1_1, size, &mut buf)
        .unwrap();
    assert_eq!(buf.len(), 2 + size);
}
