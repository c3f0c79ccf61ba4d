//! What the core benches share: a connection past its CONNECT.

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
    let mut conn = Connection::new(broker.clone(), now);
    let connect = Connect {
        protocol: ProtocolVersion::V3_1_1,
        clean_start,
        keep_alive_secs: 0,
        properties: ConnectProperties::default(),
        client_id: MqttString::new(id).unwrap(),
        will: None,
        username: None,
        password: None,
    };
    conn.handle_packet(now, Packet::from(connect)).unwrap();
    conn.tx().clear();
    conn
}
