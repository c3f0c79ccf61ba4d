//! What the core benches share: a connection past its CONNECT.
// Each bench binary compiles this module and uses a part of it.
#![allow(dead_code)]

use halyard_codec::{Connect, ConnectProperties, MqttString, Packet, ProtocolVersion};
use halyard_core::{Broker, Connection};
use std::sync::Arc;
use std::time::Instant;

/// A 3.1.1 connection of client `id`, connected (its CONNACK already taken from `tx`).
pub(crate) fn connected(
    broker: &Arc<Broker>,
    id: &str,
    clean_start: bool,
    now: Instant,
) -> Connection {
    connected_as(broker, id, None, clean_start, now)
}

/// [`connected`], with a user name (whose access rules apply).
pub(crate) fn connected_as(
    broker: &Arc<Broker>,
    id: &str,
    username: Option<&str>,
    clean_start: bool,
    now: Instant,
) -> Connection {
    let mut conn = Connection::new(broker.clone(), now);
    let connect = Connect {
        protocol: ProtocolVersion::V3_1_1,
        clean_start,
        keep_alive_secs: 0,
        properties: ConnectProperties::default(),
        client_id: MqttString::new(id).unwrap(),
        will: None,
        username: username.map(|u| MqttString::new(u).unwrap()),
        password: None,
    };
    conn.handle_packet(now, Packet::from(connect)).unwrap();
    conn.tx().clear();
    conn
}
