//! proptest strategies that build every packet a protocol level can carry, with every field
//! and property the specifications allow on it.

use bytes::Bytes;
use halyard_codec::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use std::num::{NonZeroU16, NonZeroU32};

pub(crate) fn any_version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![
        Just(ProtocolVersion::V3_1),
        Just(ProtocolVersion::V3_1_1),
        Just(ProtocolVersion::V5),
    ]
}

fn text() -> impl Strategy<Value = MqttString> {
    "\\PC{0,12}".prop_map(|s| MqttString::new(&s).unwrap())
}

fn data() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9]{0,4}", "\\$[A-Z]{1,3}", "[é日x ]{1,3}"]
}

pub(crate) fn topic_name() -> impl Strategy<Value = TopicName> {
    vec(level(), 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("non-empty", |s| !s.is_empty())
        .prop_map(|s| TopicName::new(&s).unwrap())
}

pub(crate) fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let filter_level = prop_oneof![3 => level(), 1 => Just("+".to_string())];
    (vec(filter_level, 1..5), any::<bool>(), of("[a-z]{1,4}"))
        .prop_map(|(levels, hash, share)| {
            let mut s = levels.join("/");
            if hash {
                s.push_str(if s.is_empty() { "#" } else { "/#" });
            }
            if s.is_empty() {
                s.push('+');
            }
            if let Some(group) = share {
                s = format!("$share/{group}/{s}");
            }
            s
        })
        .prop_map(|s| TopicFilter::new(&s).unwrap())
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|v| PacketId::new(v).unwrap())
}

fn users() -> impl Strategy<Value = Vec<UserProperty>> {
    vec((text(), text()), 0..3)
}

fn nz16() -> impl Strategy<Value = NonZeroU16> {
    (1..=u16::MAX).prop_map(|v| NonZeroU16::new(v).unwrap())
}

fn nz32() -> impl Strategy<Value = NonZeroU32> {
    (1..=u32::MAX).prop_map(|v| NonZeroU32::new(v).unwrap())
}

fn subscription_id() -> impl Strategy<Value = SubscriptionId> {
    (1..=268_435_455u32).prop_map(|v| NonZeroU32::new(v).unwrap())
}

fn payload_format() -> impl Strategy<Value = PayloadFormat> {
    prop_oneof![Just(PayloadFormat::Unspecified), Just(PayloadFormat::Utf8)]
}

/// (method, data) with data only when there is a method.
fn auth_pair() -> impl Strategy<Value = (Option<MqttString>, Option<Bytes>)> {
    of((text(), of(data()))).prop_map(|o| match o {
        Some((m, d)) => (Some(m), d),
        None => (None, None),
    })
}

/// Picks one of the listed reason codes.
fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(codes).prop_map(ReasonCode)
}

const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
/// The reason codes 3.x CONNACK return codes 0 to 5 stand for.
const CONNACK_V3_CODES: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const SUBACK_V3_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        of(payload_format()),
        of(any::<u32>()),
        of(nz16()),
        of(topic_name()),
        of(data()),
        users(),
        vec(subscription_id(), 0..3),
        of(text()),
    )
        .prop_map(|(pf, mei, ta, rt, cd, up, si, ct)| PublishProperties {
            payload_format: pf,
            message_expiry_interval: mei,
            topic_alias: ta,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up,
            subscription_identifiers: si,
            content_type: ct,
        })
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        of(any::<u32>()),
        of(payload_format()),
        of(any::<u32>()),
        of(text()),
        of(topic_name()),
        of(data()),
        users(),
    )
        .prop_map(|(wd, pf, mei, ct, rt, cd, up)| WillProperties {
            will_delay_interval: wd,
            payload_format: pf,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up,
        })
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        of(any::<u32>()),
        of(nz16()),
        of(nz32()),
        of(any::<u16>()),
        of(any::<bool>()),
        of(any::<bool>()),
        users(),
        auth_pair(),
    )
        .prop_map(
            |(se, rm, mps, tam, rri, rpi, up, (am, ad))| ConnectProperties {
                session_expiry_interval: se,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties: up,
                authentication_method: am,
                authentication_data: ad,
            },
        )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let limits = (
        of(any::<u32>()),
        of(nz16()),
        of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
        of(any::<bool>()),
        of(nz32()),
        of(any::<u16>()),
        of(any::<u16>()),
    );
    let info = (
        of(text()),
        of(text()),
        users(),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(text()),
        of(text()),
        auth_pair(),
    );
    (limits, info).prop_map(
        |((se, rm, mq, ra, mps, tam, ska), (aci, rs, up, wsa, sia, ssa, ri, sr, (am, ad)))| {
            ConnAckProperties {
                session_expiry_interval: se,
                receive_maximum: rm,
                maximum_qos: mq,
                retain_available: ra,
                maximum_packet_size: mps,
                assigned_client_identifier: aci,
                topic_alias_maximum: tam,
                reason_string: rs,
                user_properties: up,
                wildcard_subscription_available: wsa,
                subscription_identifiers_available: sia,
                shared_subscription_available: ssa,
                server_keep_alive: ska,
                response_information: ri,
                server_reference: sr,
                authentication_method: am,
                authentication_data: ad,
            }
        },
    )
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (of(text()), users()).prop_map(|(rs, up)| AckProperties {
        reason_string: rs,
        user_properties: up,
    })
}

/// Properties for `v`: the strategy's value at 5.0, the default at 3.x.
fn props_for<T: Default + Clone + std::fmt::Debug + 'static>(
    v: ProtocolVersion,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if v.is_v5() {
        s.boxed()
    } else {
        Just(T::default()).boxed()
    }
}

fn connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let will = (
        topic_name(),
        data(),
        qos(),
        any::<bool>(),
        props_for(v, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    (
        any::<bool>(),
        any::<u16>(),
        props_for(v, connect_properties()),
        text(),
        of(will),
        of(text()),
        of(data()),
    )
        .prop_map(
            move |(
                clean_start,
                keep_alive_secs,
                properties,
                client_id,
                will,
                username,
                password,
            )| {
                // 3.x cannot carry a password without a user name [MQTT-3.1.2-22].
                let password = if v.is_v5() || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive_secs,
                    properties,
                    client_id,
                    will,
                    username,
                    password,
                }))
            },
        )
}

fn connack(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if v.is_v5() {
        CONNACK_CODES
    } else {
        CONNACK_V3_CODES
    };
    (
        any::<bool>(),
        reason(codes),
        props_for(v, connack_properties()),
    )
        .prop_map(|(sp, reason_code, properties)| {
            Packet::ConnAck(ConnAck {
                session_present: sp && reason_code == ReasonCode::SUCCESS,
                reason_code,
                properties,
            })
        })
}

fn publish(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        any::<bool>(),
        packet_id(),
        props_for(v, publish_properties()),
        data(),
    )
        .prop_map(
            move |(qos, dup, retain, topic, alias_only, id, properties, payload)| {
                let alias_only = alias_only && properties.topic_alias.is_some();
                Packet::Publish(Publish {
                    dup: dup && qos != QoS::AtMostOnce,
                    qos,
                    retain,
                    topic: if alias_only {
                        TopicName::empty_for_alias()
                    } else {
                        topic
                    },
                    packet_id: (qos != QoS::AtMostOnce).then_some(id),
                    properties,
                    payload,
                })
            },
        )
}

fn ack(v: ProtocolVersion, codes: &'static [u8]) -> impl Strategy<Value = Ack> {
    let codes: &'static [u8] = if v.is_v5() { codes } else { &[0x00] };
    (packet_id(), reason(codes), props_for(v, ack_properties())).prop_map(
        |(packet_id, reason_code, properties)| Ack {
            packet_id,
            reason_code,
            properties,
        },
    )
}

fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let options =
        (qos(), any::<bool>(), any::<bool>(), 0..3u8).prop_map(move |(q, nl, rap, rh)| {
            if !v.is_v5() {
                return SubscriptionOptions::with_qos(q);
            }
            SubscriptionOptions {
                qos: q,
                no_local: nl,
                retain_as_published: rap,
                retain_handling: match rh {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                },
            }
        });
    let props = (of(subscription_id()), users()).prop_map(|(si, up)| SubscribeProperties {
        subscription_identifier: si,
        user_properties: up,
    });
    (
        packet_id(),
        props_for(v, props),
        vec((topic_filter(), options), 1..4),
    )
        .prop_map(|(packet_id, properties, filters)| {
            let filters = filters
                .into_iter()
                .map(|(f, mut o)| {
                    // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
                    o.no_local &= f.shared().is_none();
                    (f, o)
                })
                .collect();
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        })
}

fn suback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if v.is_v5() {
        SUBACK_CODES
    } else {
        SUBACK_V3_CODES
    };
    (
        packet_id(),
        props_for(v, ack_properties()),
        vec(reason(codes), 1..4),
    )
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reason_codes,
            })
        })
}

fn unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let props = users().prop_map(|up| UnsubscribeProperties {
        user_properties: up,
    });
    (packet_id(), props_for(v, props), vec(topic_filter(), 1..4)).prop_map(
        |(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        },
    )
}

fn unsuback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if v.is_v5() {
        vec(reason(UNSUBACK_CODES), 1..4).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (packet_id(), props_for(v, ack_properties()), codes).prop_map(
        |(packet_id, properties, reason_codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reason_codes,
            })
        },
    )
}

fn disconnect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes: &'static [u8] = if v.is_v5() { DISCONNECT_CODES } else { &[0x00] };
    let props = (of(any::<u32>()), of(text()), users(), of(text())).prop_map(|(se, rs, up, sr)| {
        DisconnectProperties {
            session_expiry_interval: se,
            reason_string: rs,
            user_properties: up,
            server_reference: sr,
        }
    });
    (reason(codes), props_for(v, props)).prop_map(|(reason_code, properties)| {
        Packet::Disconnect(Disconnect {
            reason_code,
            properties,
        })
    })
}

fn auth() -> impl Strategy<Value = Packet> {
    let props =
        (text(), of(data()), of(text()), users()).prop_map(|(am, ad, rs, up)| AuthProperties {
            authentication_method: Some(am),
            authentication_data: ad,
            reason_string: rs,
            user_properties: up,
        });
    (reason(AUTH_CODES), props).prop_map(|(reason_code, properties)| {
        Packet::Auth(Auth {
            reason_code,
            properties,
        })
    })
}

/// Any packet that can travel at protocol level `v`.
pub(crate) fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        1 => connect(v),
        1 => connack(v),
        3 => publish(v),
        1 => ack(v, PUBACK_CODES).prop_map(Packet::PubAck),
        1 => ack(v, PUBACK_CODES).prop_map(Packet::PubRec),
        1 => ack(v, PUBREL_CODES).prop_map(Packet::PubRel),
        1 => ack(v, PUBREL_CODES).prop_map(Packet::PubComp),
        1 => subscribe(v),
        1 => suback(v),
        1 => unsubscribe(v),
        1 => unsuback(v),
        1 => Just(Packet::PingReq),
        1 => Just(Packet::PingResp),
        1 => disconnect(v),
    ];
    if v.is_v5() {
        prop_oneof![14 => common, 1 => auth()].boxed()
    } else {
        common.boxed()
    }
}
