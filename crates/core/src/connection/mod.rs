//! One client connection as a state machine: packets and time in, bytes to send and a
//! verdict out.
//!
//! The network shell owns a [`Connection`] per socket. It feeds decoded packets to
//! [`Connection::handle_packet`], calls [`Connection::poll_deliveries`] when the session's
//! waker fires, [`Connection::handle_timeout`] at [`Connection::keep_alive_deadline`], and
//! writes whatever [`Connection::tx`] holds. Every path that ends the connection returns a
//! [`Close`] after the connection has queued its last packet (CONNACK or DISCONNECT) and
//! settled its will and session; the shell then flushes and closes the socket.

mod auth;
mod backpressure;
mod connect;
mod deliver;
mod publish;
mod subscribe;

use crate::broker::Broker;
use crate::session::Session;
use bytes::BytesMut;
use halyard_codec::{
    DecodeError, DecodeOptions, Disconnect, MqttString, Packet, ProtocolVersion, ReasonCode,
    TopicName,
};
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Why a connection ended: one per connection, for its log line and its metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// The socket closed or failed without DISCONNECT.
    ConnectionLost,
    /// The client broke the protocol; the reason code sent (5.0) and what it did.
    ProtocolViolation(ReasonCode, String),
    /// CONNECT was refused with this reason code.
    ConnectRefused(ReasonCode),
    /// No packet within 1.5 times the keep-alive ([MQTT-3.1.2-24] in 3.1.1, [MQTT-3.1.2-22]
    /// in 5.0).
    KeepAliveTimeout,
    /// Another connection took over the session [MQTT-3.1.4-3].
    TakenOver,
    /// The client did not keep up with its messages (0x97).
    SlowConsumer,
    /// The broker was over its memory ceiling (`memory_limit_bytes`) when the client's
    /// packet needed more (0x97).
    MemoryLimit,
    /// The broker is shutting down (0x8B).
    Shutdown,
}

impl CloseReason {
    /// A short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::ClientDisconnect => "client_disconnect",
            CloseReason::ConnectionLost => "connection_lost",
            CloseReason::ProtocolViolation(..) => "protocol_error",
            CloseReason::ConnectRefused(_) => "connect_refused",
            CloseReason::KeepAliveTimeout => "keep_alive_timeout",
            CloseReason::TakenOver => "taken_over",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::MemoryLimit => "memory_limit",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::ProtocolViolation(rc, what) => write!(f, "protocol error {rc}: {what}"),
            CloseReason::ConnectRefused(rc) => write!(f, "connect refused: {rc}"),
            other => f.write_str(other.label()),
        }
    }
}

/// The connection is over; flush [`Connection::tx`] and close the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// Why.
    pub reason: CloseReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitConnect,
    /// CONNECT waits for the answer of a slow authentication check (a password hash).
    Verifying,
    /// CONNECT named an Authentication Method; AUTH packets go back and forth.
    Authenticating,
    Active,
    Closed,
}

/// What the client told us about itself in CONNECT, and per-connection protocol state.
#[derive(Debug)]
struct Peer {
    version: ProtocolVersion,
    /// Keep-alive in force (after any Server Keep Alive), 0 = off.
    keep_alive_secs: u16,
    /// Largest packet the client accepts.
    max_packet_size: u32,
    /// Most unacknowledged QoS 1/2 messages we may send (min of ours and its Receive Maximum).
    send_window: usize,
    /// Topic Alias Maximum the client accepts from us.
    alias_max_out: u16,
    /// Whether the client asked for reason strings and user properties on errors.
    problem_information: bool,
    /// Session Expiry Interval requested in CONNECT (for the DISCONNECT rule).
    connect_expiry_secs: u32,
}

/// Authentication under way.
#[derive(Debug)]
enum Pending {
    /// An enhanced authentication exchange (section 4.12).
    Exchange(auth::PendingAuth),
    /// A CONNECT waiting for the answer of a slow check (`AuthDecision::Verify`).
    Verify(connect::Verifying),
    /// Before CONNECT: the client's verified TLS certificate, for CONNECT's authentication.
    Certificate(crate::auth::ClientCertificate),
}

/// The topic aliases of one connection, section 3.3.2.3.4.
#[derive(Debug, Default)]
struct TopicAliases {
    /// Inbound: alias -> topic.
    inbound: HashMap<u16, TopicName>,
    /// Bytes of the topics in `inbound` (bounded by `max_topic_alias_bytes`).
    inbound_bytes: usize,
    /// Outbound: topic -> alias.
    outbound: HashMap<TopicName, u16>,
    /// Bytes of the topics in `outbound` (bounded by `max_topic_alias_bytes`).
    outbound_bytes: usize,
}

/// One client connection.
#[derive(Debug)]
pub struct Connection {
    broker: Arc<Broker>,
    generation: NonZeroU64,
    phase: Phase,
    peer: Option<Peer>,
    session: Option<Arc<Session>>,
    last_received: Instant,
    tx: BytesMut,
    /// Topic aliases in both directions; boxed (and allocated on first use) because most
    /// clients use none, and every idle connection would carry two empty maps.
    aliases: Option<Box<TopicAliases>>,
    /// The authentication under way: an enhanced exchange (at CONNECT or
    /// re-authenticating), a CONNECT waiting for a slow check, or (before CONNECT) the
    /// client's TLS certificate. One boxed field for all, as an idle connection carries none.
    auth: Option<Box<Pending>>,
    /// The Authentication Method the client connected with, if any (boxed: rarely set).
    auth_method: Option<Box<MqttString>>,
    /// Deliveries stopped because the transmit buffer was full.
    tx_full: bool,
    /// The waker of the connection's task (for messages queued, and room to publish).
    waker: Option<Waker>,
    /// A message waiting for room in subscribers' queues, holding up this publisher.
    blocked: Option<Box<backpressure::Blocked>>,
}

/// Stop encoding deliveries into the transmit buffer past this many bytes, until the shell
/// has written them: the session queue, which is bounded, holds the rest.
pub(crate) const TX_HIGH_WATER: usize = 64 * 1024;

impl Connection {
    /// A new connection, waiting for CONNECT.
    pub fn new(broker: Arc<Broker>, now: Instant) -> Connection {
        // Ids start at 1 and would take centuries to wrap.
        let generation = NonZeroU64::new(broker.next_id()).unwrap_or(NonZeroU64::MAX);
        Connection {
            broker,
            generation,
            phase: Phase::AwaitConnect,
            peer: None,
            session: None,
            last_received: now,
            tx: BytesMut::new(),
            aliases: None,
            auth: None,
            auth_method: None,
            tx_full: false,
            waker: None,
            blocked: None,
        }
    }

    /// The client's TLS certificate, verified by the shell during the handshake: given to
    /// the authenticator at CONNECT (and, with `as_username`, its identity becomes the user
    /// name). Call before the first packet.
    pub fn set_client_certificate(&mut self, certificate: crate::auth::ClientCertificate) {
        if self.phase == Phase::AwaitConnect && self.auth.is_none() {
            self.auth = Some(Box::new(Pending::Certificate(certificate)));
        }
    }

    /// The bytes waiting to be written to the socket. The shell removes what it writes.
    pub fn tx(&mut self) -> &mut BytesMut {
        &mut self.tx
    }

    /// Frees the transmit buffer's memory once it is empty (idle connections stay small).
    pub fn shrink_tx(&mut self) {
        if self.tx.is_empty() && self.tx.capacity() > 0 {
            self.tx = BytesMut::new();
        }
    }

    /// Checks the connection's own budgets: its topic alias tables are within
    /// `max_topic_alias_bytes` and their byte counts match their contents. For the
    /// simulation tests and the fuzz target.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let Some(a) = &self.aliases else {
            return Ok(());
        };
        let max = self.broker.config().max_topic_alias_bytes;
        let inbound: usize = a.inbound.values().map(|t| t.len()).sum();
        let outbound: usize = a.outbound.keys().map(|t| t.len()).sum();
        if inbound != a.inbound_bytes || outbound != a.outbound_bytes {
            return Err("topic alias byte counts disagree with the tables".into());
        }
        if inbound > max || outbound > max {
            return Err(format!("topic aliases hold {inbound} / {outbound} bytes"));
        }
        Ok(())
    }

    /// Whether CONNECT has been accepted.
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// The client identifier, once connected.
    pub fn client_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.client_id().as_str())
    }

    /// The user name the client connected as, if any (for logs and metrics).
    pub fn username(&self) -> Option<std::sync::Arc<str>> {
        self.session
            .as_ref()
            .and_then(|s| s.lock().username.clone())
    }

    /// The protocol level, once connected.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.peer.as_ref().map(|p| p.version)
    }

    /// How to decode the next packet from this client.
    /// Before CONNECT is accepted, the smaller `max_connect_packet_size` applies, so a
    /// socket that has not connected holds little.
    pub fn decode_options(&self) -> DecodeOptions {
        let v = self
            .peer
            .as_ref()
            .map_or(ProtocolVersion::V5, |p| p.version);
        let cfg = self.broker.config();
        let max = if self.phase == Phase::AwaitConnect {
            cfg.max_connect_packet_size.min(cfg.max_packet_size)
        } else {
            cfg.max_packet_size
        };
        DecodeOptions::new(v).with_max_packet_size(max)
    }

    /// Registers the waker to call when messages are queued for this connection, or when
    /// subscribers it waits for have room again.
    pub fn set_waker(&mut self, waker: Waker) {
        if let Some(s) = &self.session {
            s.set_waker(Some(waker.clone()));
        }
        self.waker = Some(waker);
    }

    /// Whether the connection has nothing to do until its client sends something or its
    /// session's waker fires: connected, not waiting for room to publish, nothing to write.
    /// The shell may then release everything it holds for the connection but the socket
    /// (see [`Connection::park`]).
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Active
            && self.blocked.is_none()
            && self.auth.is_none()
            && self.tx.is_empty()
            && !self.tx_full
    }

    /// Releases what an idle connection does not need: the transmit buffer, and the
    /// session's traffic state if nothing is queued or in flight. The shell still owes it
    /// a [`Connection::handle_timeout`] at [`Connection::keep_alive_deadline`].
    pub fn park(&mut self) {
        self.tx = BytesMut::new();
        if let Some(session) = &self.session {
            session.lock().trim();
        }
    }

    /// When the keep-alive runs out: 1.5 times the keep-alive after the last packet received
    /// ([MQTT-3.1.2-24] in 3.1.1, [MQTT-3.1.2-22] in 5.0). `None` when keep-alive is off or
    /// before CONNECT.
    pub fn keep_alive_deadline(&self) -> Option<Instant> {
        let ka = self.peer.as_ref()?.keep_alive_secs;
        (ka > 0).then(|| self.last_received + Duration::from_millis(u64::from(ka) * 1500))
    }

    /// Checks the keep-alive deadline at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Close> {
        match self.keep_alive_deadline() {
            Some(deadline) if now >= deadline => {
                self.send_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT, None);
                Err(self.finish(now, true, CloseReason::KeepAliveTimeout))
            }
            _ => Ok(()),
        }
    }

    /// Handles one packet from the client.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) -> Result<(), Close> {
        self.last_received = now;
        match self.phase {
            Phase::Closed => Err(Close {
                reason: CloseReason::ConnectionLost,
            }),
            Phase::AwaitConnect => match packet {
                Packet::Connect(c) => self.handle_connect(now, *c),
                // [MQTT-3.1.0-1] The first packet must be CONNECT.
                other => Err(self.violation(
                    now,
                    ReasonCode::PROTOCOL_ERROR,
                    format!("{} before CONNECT [MQTT-3.1.0-1]", other.packet_type()),
                )),
            },
            Phase::Authenticating => self.handle_authenticating(now, packet),
            // The shell takes no packets while a check runs; one that arrives is a client
            // that did not wait for CONNACK.
            Phase::Verifying => Err(self.refuse(ReasonCode::PROTOCOL_ERROR)),
            Phase::Active => self.handle_active(now, packet),
        }
    }

    fn handle_active(&mut self, now: Instant, packet: Packet) -> Result<(), Close> {
        match packet {
            Packet::Publish(p) => self.handle_publish(now, p),
            Packet::PubAck(a) => self.handle_puback(now, a),
            Packet::PubRec(a) => self.handle_pubrec(now, a),
            Packet::PubRel(a) => self.handle_pubrel(a),
            Packet::PubComp(a) => self.handle_pubcomp(now, a),
            Packet::Subscribe(s) => self.handle_subscribe(now, s),
            Packet::Unsubscribe(u) => self.handle_unsubscribe(u),
            Packet::PingReq => {
                self.send(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => self.handle_disconnect(now, d),
            Packet::Connect(_) => Err(self.violation(
                now,
                ReasonCode::PROTOCOL_ERROR,
                "second CONNECT [MQTT-3.1.0-2]".into(),
            )),
            Packet::Auth(a) => self.handle_reauth(now, a),
            other => Err(self.violation(
                now,
                ReasonCode::PROTOCOL_ERROR,
                format!("{} is not sent by clients", other.packet_type()),
            )),
        }
    }

    fn handle_disconnect(&mut self, now: Instant, d: Disconnect) -> Result<(), Close> {
        if let (Some(requested), Some(peer)) = (d.properties.session_expiry_interval, &self.peer) {
            if peer.connect_expiry_secs == 0 && requested != 0 {
                return Err(self.violation(
                    now,
                    ReasonCode::PROTOCOL_ERROR,
                    "Session Expiry Interval set in DISCONNECT after 0 in CONNECT (section 3.14.2.2.2)"
                        .into(),
                ));
            }
            let granted = self.grant_expiry(requested);
            if let Some(s) = &self.session {
                s.lock().expiry_secs = granted;
            }
        }
        // [MQTT-3.14.4-3] A normal DISCONNECT discards the will; 0x04 asks for it.
        let publish_will = d.reason_code == ReasonCode::DISCONNECT_WITH_WILL_MESSAGE;
        Err(self.finish(now, publish_will, CloseReason::ClientDisconnect))
    }

    /// Applies the configured maximum to a requested Session Expiry Interval.
    fn grant_expiry(&self, requested: u32) -> u32 {
        self.broker
            .config()
            .max_session_expiry_secs
            .map_or(requested, |max| requested.min(max))
    }

    /// Handles bytes that did not decode: the client gets the reason code (CONNACK before
    /// CONNECT was accepted, DISCONNECT after, on 5.0) and the connection ends.
    pub fn handle_decode_error(&mut self, now: Instant, err: &DecodeError) -> Close {
        let rc = err.reason_code();
        if matches!(
            self.phase,
            Phase::AwaitConnect | Phase::Verifying | Phase::Authenticating
        ) {
            if let DecodeError::UnsupportedProtocolVersion(_) = err {
                // [MQTT-3.1.2-2] Answer an unsupported level with 0x01 / 0x84, then close.
                self.send_connack_refusal(rc);
            }
            self.phase = Phase::Closed;
            return Close {
                reason: CloseReason::ProtocolViolation(rc, err.to_string()),
            };
        }
        // 0x84 belongs in CONNACK only: a bad second CONNECT is a protocol error
        // [MQTT-3.14.2-1].
        let rc = if rc == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
            ReasonCode::PROTOCOL_ERROR
        } else {
            rc
        };
        self.violation(now, rc, err.to_string())
    }

    /// The socket closed or failed without DISCONNECT: the will is due.
    pub fn handle_connection_lost(&mut self, now: Instant) -> Close {
        self.finish(now, true, CloseReason::ConnectionLost)
    }

    /// The shell cannot buffer the rest of the client's packet within the memory ceiling:
    /// DISCONNECT 0x97 Quota exceeded on 5.0, and the connection ends (its will is due).
    pub fn handle_memory_limit(&mut self, now: Instant) -> Close {
        self.send_disconnect(
            ReasonCode::QUOTA_EXCEEDED,
            Some("the broker is over its memory ceiling"),
        );
        self.finish(now, true, CloseReason::MemoryLimit)
    }

    /// The broker is shutting down: tell 5.0 clients (0x8B) and end the connection.
    pub fn handle_shutdown(&mut self, now: Instant) -> Close {
        self.send_disconnect(ReasonCode::SERVER_SHUTTING_DOWN, None);
        self.finish(now, false, CloseReason::Shutdown)
    }

    /// Closes for a protocol violation: DISCONNECT with `rc` on 5.0, then the will.
    /// The Reason String says what the client did, unless it asked for no problem
    /// information (which allows it on DISCONNECT, [MQTT-3.1.2-29], but it asked).
    fn violation(&mut self, now: Instant, rc: ReasonCode, what: String) -> Close {
        self.send_disconnect(rc, Some(&what));
        self.finish(now, true, CloseReason::ProtocolViolation(rc, what))
    }

    /// Checks whether another connection took over the session or the slow-consumer rule
    /// fired; called after the session's waker fires.
    fn check_kick(&mut self, now: Instant) -> Result<(), Close> {
        let Some(session) = &self.session else {
            return Ok(());
        };
        let kick = {
            let mut st = session.lock();
            match st.kick {
                Some((g, rc)) if g == self.generation => {
                    st.kick = None;
                    Some(rc)
                }
                _ => None,
            }
        };
        match kick {
            None => Ok(()),
            Some(rc) => {
                self.send_disconnect(rc, None);
                let reason = if rc == ReasonCode::SESSION_TAKEN_OVER {
                    CloseReason::TakenOver
                } else {
                    CloseReason::SlowConsumer
                };
                Err(self.finish(now, true, reason))
            }
        }
    }

    /// Leaves the session and settles the will; after this the connection is closed.
    fn finish(&mut self, now: Instant, publish_will: bool, reason: CloseReason) -> Close {
        if self.phase == Phase::Active
            // Kept (not taken) until the connection is dropped: its close is logged with
            // the client id and user name. Nothing runs on a closed connection.
            && let Some(session) = self.session.clone()
        {
            self.broker
                .detach(&session, self.generation, publish_will, now);
        }
        self.phase = Phase::Closed;
        Close { reason }
    }

    /// Queues a DISCONNECT for 5.0 clients (3.x has no server DISCONNECT).
    fn send_disconnect(&mut self, rc: ReasonCode, reason: Option<&str>) {
        let Some(peer) = &self.peer else {
            return;
        };
        if !peer.version.is_v5() || self.phase != Phase::Active {
            return;
        }
        let mut d = Disconnect::new(rc);
        if peer.problem_information {
            d.properties.reason_string = reason.and_then(|r| MqttString::new(r).ok());
        }
        let mut packet = Packet::Disconnect(d);
        if !self.send(&packet) {
            // Too large for the client with the Reason String: send it without
            // [MQTT-3.14.2-3].
            if let Packet::Disconnect(d) = &mut packet {
                d.properties.reason_string = None;
            }
            self.send(&packet);
        }
    }

    /// Encodes a packet into the transmit buffer, unless it is larger than the client
    /// accepts ([MQTT-3.1.2-24] in 5.0); returns whether it was queued.
    fn send(&mut self, packet: &Packet) -> bool {
        let (version, max) = self
            .peer
            .as_ref()
            .map_or((ProtocolVersion::V5, u32::MAX), |p| {
                (p.version, p.max_packet_size)
            });
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        packet.encode_at_most(version, max, &mut self.tx).is_ok()
    }
}
