//! A scripted-peer harness: a broker started in-process on 127.0.0.1 with a port of its own,
//! and raw MQTT peers over real sockets whose tests read like transcripts:
//!
//! ```ignore
//! let broker = TestBroker::start();
//! let mut peer = broker.peer(V5);
//! peer.send(connect(V5, "a"));
//! assert_eq!(peer.recv_connack().reason_code, ReasonCode::SUCCESS);
//! ```
//!
//! Every read has a deadline, so a test that waits for something that never comes fails
//! instead of hanging; the broker stops when the `TestBroker` is dropped.
#![allow(dead_code, unreachable_pub)]

use bytes::{Bytes, BytesMut};
use halyard_codec::*;
use halyard_server::{Config, ListenerConfig, RunningServer};
use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use halyard_codec::ProtocolVersion::{V3_1, V3_1_1, V5};

/// How long a peer waits for a packet it expects.
pub const WAIT: Duration = Duration::from_secs(5);

/// A broker running on its own runtime for the length of a test.
pub struct TestBroker {
    addr: SocketAddr,
    server: Option<RunningServer>,
    runtime: tokio::runtime::Runtime,
}

impl TestBroker {
    /// A broker with the default configuration.
    pub fn start() -> TestBroker {
        TestBroker::start_with(|_| {})
    }

    /// A broker with the default configuration changed by `f`.
    pub fn start_with(f: impl FnOnce(&mut Config)) -> TestBroker {
        TestBroker::start_with_auth(f, halyard_core::AuthHooks::default())
    }

    /// A broker with the configuration changed by `f` and the given authentication hooks.
    pub fn start_with_auth(
        f: impl FnOnce(&mut Config),
        auth: halyard_core::AuthHooks,
    ) -> TestBroker {
        let mut config = Config {
            listener: vec![ListenerConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                max_connections: None,
                tls: None,
            }],
            ..Config::default()
        };
        f(&mut config);
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2).enable_all();
        // As `halyard serve` runs it (see .cargo/config.toml).
        #[cfg(tokio_unstable)]
        builder.disable_lifo_slot();
        let runtime = builder.build().expect("runtime");
        let server = runtime
            .block_on(halyard_server::start_with_auth(config, auth))
            .expect("broker starts");
        let addr = server.local_addrs()[0];
        TestBroker {
            addr,
            server: Some(server),
            runtime,
        }
    }

    /// The address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker's shared state.
    pub fn broker(&self) -> &std::sync::Arc<halyard_core::Broker> {
        self.server.as_ref().expect("running").broker()
    }

    /// A raw peer connected to the broker (no CONNECT sent yet).
    pub fn peer(&self, version: ProtocolVersion) -> Peer {
        Peer::connect_to(self.addr, version)
    }

    /// A peer that has sent CONNECT with `client_id` (clean start) and received CONNACK.
    pub fn client(&self, version: ProtocolVersion, client_id: &str) -> Peer {
        let mut p = self.peer(version);
        p.send(connect(version, client_id));
        let ack = p.recv_connack();
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{client_id} connects");
        p
    }

    /// The error of a broker that fails to start with the default configuration changed by
    /// `f` (a bad file, say).
    pub fn start_error(f: impl FnOnce(&mut Config)) -> String {
        let mut config = Config {
            listener: vec![ListenerConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                max_connections: None,
                tls: None,
            }],
            ..Config::default()
        };
        f(&mut config);
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        match runtime.block_on(halyard_server::start(config)) {
            Ok(_) => panic!("the broker started"),
            Err(e) => e.to_string(),
        }
    }

    /// Reads the password and ACL files again (as SIGHUP does); returns the errors.
    pub fn reload(&self) -> Vec<String> {
        self.server.as_ref().expect("running").reload()
    }

    /// Stops the broker gracefully and waits for it.
    pub fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.shutdown());
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.shutdown());
        }
    }
}

/// What a peer talks over: a loopback socket, plain or TLS.
pub trait PeerStream: Read + Write + Send {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()>;
    fn shutdown(&self);
}

impl PeerStream for TcpStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, d)
    }
    fn shutdown(&self) {
        let _ = TcpStream::shutdown(self, std::net::Shutdown::Both);
    }
}

impl PeerStream for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        self.sock.set_read_timeout(d)
    }
    fn shutdown(&self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

/// A raw MQTT peer over a real loopback socket.
pub struct Peer {
    stream: Box<dyn PeerStream>,
    rx: BytesMut,
    /// The protocol level packets are encoded and decoded at.
    pub version: ProtocolVersion,
}

impl Peer {
    pub fn connect_to(addr: SocketAddr, version: ProtocolVersion) -> Peer {
        let stream = TcpStream::connect(addr).expect("connect to broker");
        stream.set_nodelay(true).expect("nodelay");
        Peer::over(Box::new(stream), version)
    }

    /// A peer over an established stream (TLS, say).
    pub fn over(stream: Box<dyn PeerStream>, version: ProtocolVersion) -> Peer {
        Peer {
            stream,
            rx: BytesMut::new(),
            version,
        }
    }

    /// Sends one packet.
    pub fn send(&mut self, p: impl Into<Packet>) {
        let p = p.into();
        let mut buf = BytesMut::new();
        let v = match &p {
            Packet::Connect(c) => c.protocol,
            _ => self.version,
        };
        p.encode(v, &mut buf).expect("test packet encodes");
        self.send_raw(&buf);
    }

    /// Sends raw bytes (for malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        // A broker that already closed may reset the socket; tests then see it in `recv`.
        let _ = self.stream.write_all(bytes);
    }

    /// The next packet, or `None` if the broker closed the connection; panics if nothing
    /// arrives within `timeout`.
    pub fn recv_or_closed(&mut self, timeout: Duration) -> Option<Packet> {
        let deadline = Instant::now() + timeout;
        loop {
            let opts = DecodeOptions::new(self.version);
            match decode(&mut self.rx, &opts) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => panic!("broker sent bytes that do not decode: {e}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no packet from the broker within {timeout:?}"
            );
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("no packet from the broker within {timeout:?}")
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// The next packet; panics if none arrives within [`WAIT`] or the connection closes.
    pub fn recv(&mut self) -> Packet {
        self.recv_or_closed(WAIT)
            .expect("broker closed the connection while a packet was expected")
    }

    /// Asserts that nothing arrives for `d` (and the connection stays open).
    pub fn expect_silence(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            let opts = DecodeOptions::new(self.version);
            if let Ok(Some(p)) = decode(&mut self.rx, &opts) {
                panic!("expected silence, got {p:?}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("expected silence, the broker closed the connection"),
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return;
                }
                Err(e) => panic!("expected silence, read failed: {e}"),
            }
        }
    }

    /// Reads until the broker closes the connection; returns the packets it sent first.
    pub fn expect_closed(&mut self) -> Vec<Packet> {
        let mut got = Vec::new();
        while let Some(p) = self.recv_or_closed(WAIT) {
            got.push(p);
        }
        got
    }

    /// Expects the broker to close the connection, with a DISCONNECT carrying `rc` first on
    /// MQTT 5 (and nothing on 3.x).
    pub fn expect_disconnect(&mut self, rc: ReasonCode) {
        let got = self.expect_closed();
        if self.version.is_v5() {
            match got.last() {
                Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, rc, "{got:?}"),
                other => panic!("expected DISCONNECT {rc:?} before close, got {other:?}"),
            }
        } else {
            assert!(got.is_empty(), "3.x gets no DISCONNECT, got {got:?}");
        }
    }

    pub fn recv_connack(&mut self) -> ConnAck {
        match self.recv() {
            Packet::ConnAck(a) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub fn recv_publish(&mut self) -> Publish {
        match self.recv() {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    pub fn recv_suback(&mut self) -> SubAck {
        match self.recv() {
            Packet::SubAck(a) => a,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Subscribes to one filter at `qos` and checks that it is granted.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(subscribe(1, filter, SubscriptionOptions::with_qos(qos)));
        let ack = self.recv_suback();
        assert_eq!(
            ack.reason_codes,
            vec![ReasonCode(qos.as_u8())],
            "SUBACK for {filter}"
        );
    }

    /// Sends DISCONNECT and waits for the broker to close.
    pub fn disconnect(mut self) {
        self.send(Disconnect::default());
        let rest = self.expect_closed();
        assert!(rest.is_empty(), "nothing after DISCONNECT, got {rest:?}");
    }

    /// Closes the socket without DISCONNECT.
    pub fn drop_connection(self) {
        self.stream.shutdown();
    }
}

/// CONNECT with clean start, keep-alive 60 and nothing else.
pub fn connect(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive_secs: 60,
        properties: ConnectProperties::default(),
        client_id: MqttString::new(client_id).expect("client id"),
        will: None,
        username: None,
        password: None,
    }
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet id")
}

pub fn topic(s: &str) -> TopicName {
    TopicName::new(s).expect("topic")
}

/// PUBLISH of `payload` to `t` at `qos` (packet id `id` for QoS 1 and 2).
pub fn publish(t: &str, payload: &[u8], qos: QoS, id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic(t),
        packet_id: (qos != QoS::AtMostOnce).then(|| pid(id)),
        properties: PublishProperties::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}

pub fn subscribe(id: u16, filter: &str, options: SubscriptionOptions) -> Subscribe {
    Subscribe {
        packet_id: pid(id),
        properties: SubscribeProperties::default(),
        filters: vec![(TopicFilter::new(filter).expect("filter"), options)],
    }
}

pub fn unsubscribe(id: u16, filter: &str) -> Unsubscribe {
    Unsubscribe {
        packet_id: pid(id),
        properties: UnsubscribeProperties::default(),
        filters: vec![TopicFilter::new(filter).expect("filter")],
    }
}

pub fn ack(id: u16) -> Ack {
    Ack::new(pid(id))
}

/// Sends `msg` and completes the publisher's side of its QoS flow. Returns the reason code of
/// the PUBACK or PUBREC (SUCCESS for QoS 0, and always on 3.1.1, which has none).
pub fn send_publish(p: &mut Peer, msg: Publish) -> ReasonCode {
    let qos = msg.qos;
    let id = msg.packet_id;
    p.send(msg);
    match qos {
        QoS::AtMostOnce => ReasonCode::SUCCESS,
        QoS::AtLeastOnce => match p.recv() {
            Packet::PubAck(a) if Some(a.packet_id) == id => a.reason_code,
            other => panic!("expected PUBACK for {id:?}, got {other:?}"),
        },
        QoS::ExactlyOnce => {
            let rc = match p.recv() {
                Packet::PubRec(a) if Some(a.packet_id) == id => a.reason_code,
                other => panic!("expected PUBREC for {id:?}, got {other:?}"),
            };
            if !rc.is_error() {
                p.send(Packet::PubRel(Ack::new(id.unwrap())));
                match p.recv() {
                    Packet::PubComp(a) if Some(a.packet_id) == id => {}
                    other => panic!("expected PUBCOMP for {id:?}, got {other:?}"),
                }
            }
            rc
        }
    }
}

/// Reads `n` PUBLISH packets, acknowledging each as its QoS requires (PUBACK; PUBREC, then
/// PUBCOMP for its PUBREL); returns them in arrival order once every flow is complete.
pub fn collect(p: &mut Peer, n: usize) -> Vec<Publish> {
    let mut got = Vec::new();
    let mut awaiting_rel = HashSet::new();
    while got.len() < n || !awaiting_rel.is_empty() {
        match p.recv() {
            Packet::Publish(m) => {
                assert!(got.len() < n, "more than {n} PUBLISH packets: {m:?}");
                match m.qos {
                    QoS::AtMostOnce => assert_eq!(m.packet_id, None),
                    QoS::AtLeastOnce => p.send(Packet::PubAck(Ack::new(m.packet_id.unwrap()))),
                    QoS::ExactlyOnce => {
                        let id = m.packet_id.unwrap();
                        assert!(awaiting_rel.insert(id), "packet id {id} reused in flight");
                        p.send(Packet::PubRec(Ack::new(id)));
                    }
                }
                got.push(m);
            }
            Packet::PubRel(a) => {
                assert!(
                    awaiting_rel.remove(&a.packet_id),
                    "PUBREL for {} not awaited",
                    a.packet_id
                );
                p.send(Packet::PubComp(Ack::new(a.packet_id)));
            }
            other => panic!("expected PUBLISH or PUBREL, got {other:?}"),
        }
    }
    got
}
