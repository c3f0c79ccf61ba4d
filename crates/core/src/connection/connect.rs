//! CONNECT: client identifier rules, authentication, session open or resume, CONNACK, and
//! the resending of unacknowledged messages when a session resumes.

use super::{Close, CloseReason, Connection, Peer, Pending, Phase};
use crate::auth::{AuthDecision, ConnectInfo, VerifyRequest};
use crate::message::Message;
use crate::policy;
use crate::session::PendingWill;
use bytes::Bytes;
use halyard_codec::{
    ConnAck, ConnAckProperties, Connect, MqttString, Packet, ProtocolVersion, ReasonCode, Will,
};
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::Arc;
use std::time::Instant;

impl Connection {
    pub(super) fn handle_connect(&mut self, now: Instant, mut c: Connect) -> Result<(), Close> {
        let v = c.protocol;
        self.peer = Some(Peer {
            version: v,
            keep_alive_secs: 0,
            max_packet_size: c
                .properties
                .maximum_packet_size
                .map_or(u32::MAX, NonZeroU32::get),
            send_window: 0,
            alias_max_out: 0,
            problem_information: c.properties.request_problem_information.unwrap_or(true),
            connect_expiry_secs: 0,
        });

        // Client identifier [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.1.3-8].
        let mut assigned = None;
        let client_id = if c.client_id.is_empty() {
            let allowed = match v {
                ProtocolVersion::V3_1 => false,
                ProtocolVersion::V3_1_1 => c.clean_start,
                ProtocolVersion::V5 => true,
            };
            if !allowed {
                return Err(self.refuse(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID));
            }
            let id = self.broker.assign_client_id();
            assigned = Some(id.clone());
            id
        } else {
            // Kept for the session's life: not a slice of the read buffer.
            c.client_id.compact()
        };

        let certificate = match self.auth.take().map(|b| *b) {
            Some(Pending::Certificate(c)) => Some(Box::new(c)),
            _ => None,
        };
        if let Some(cert) = certificate.as_deref().filter(|c| c.as_username) {
            // The certificate is the credential (Mosquitto's use_identity_as_username): what
            // the client sent as user name and password is ignored.
            let Some(name) = cert
                .identity
                .as_deref()
                .and_then(|n| MqttString::new(n).ok())
            else {
                return Err(self.refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD));
            };
            c.username = Some(name);
            c.password = None;
        }
        let info = ConnectInfo {
            client_id: &client_id,
            username: c.username.as_ref(),
            password: c.password.as_ref(),
            protocol: v,
            certificate: certificate.as_deref(),
        };
        let decision = self.broker.authenticator().authenticate(&info);
        if let AuthDecision::Deny(rc) = decision {
            return Err(self.refuse(rc));
        }
        if let Err(rc) = self.check_connect_policy(&c) {
            return Err(self.refuse(rc));
        }
        if decision == AuthDecision::Verify {
            // The slow check runs elsewhere; the connection waits for its answer.
            self.auth = Some(Box::new(Pending::Verify(Verifying {
                connect: c,
                client_id,
                assigned,
                certificate,
                requested: false,
            })));
            self.phase = Phase::Verifying;
            return Ok(());
        }
        // Enhanced authentication if the client asked for it; otherwise accepted.
        self.begin_enhanced_auth(now, c, client_id, assigned)
    }

    /// The slow check the shell must run, once, while the connection waits for it
    /// ([`AuthDecision::Verify`]); the answer goes to [`Connection::handle_verified`].
    pub fn poll_verify(&mut self) -> Option<VerifyRequest> {
        let Some(Pending::Verify(v)) = self.auth.as_deref_mut() else {
            return None;
        };
        if std::mem::replace(&mut v.requested, true) {
            return None;
        }
        Some(VerifyRequest {
            client_id: v.client_id.clone(),
            username: v.connect.username.clone(),
            password: v.connect.password.clone(),
            protocol: v.connect.protocol,
            certificate: v.certificate.as_deref().cloned(),
        })
    }

    /// Whether the connection waits for the answer of a slow check: the shell then takes no
    /// packets from the client until it has it.
    pub fn is_verifying(&self) -> bool {
        self.phase == Phase::Verifying
    }

    /// The answer of the slow check: the connection is accepted (CONNACK) or refused with
    /// the answer's code.
    pub fn handle_verified(&mut self, now: Instant, decision: AuthDecision) -> Result<(), Close> {
        if self.phase != Phase::Verifying {
            return Ok(());
        }
        let Some(Pending::Verify(v)) = self.auth.take().map(|b| *b) else {
            return Ok(());
        };
        match decision {
            AuthDecision::Allow => {
                self.phase = Phase::AwaitConnect;
                self.begin_enhanced_auth(now, v.connect, v.client_id, v.assigned)
            }
            AuthDecision::Deny(rc) => Err(self.refuse(rc)),
            AuthDecision::Verify => Err(self.refuse(ReasonCode::NOT_AUTHORIZED)),
        }
    }

    /// The rules CONNECT's contents pass, as a PUBLISH's would (a will is published later,
    /// and must not slip past a check its PUBLISH would meet): the will's topic, its RETAIN
    /// flag, its User Properties and the memory ceiling, and CONNECT's own User Properties.
    fn check_connect_policy(&self, c: &Connect) -> Result<(), ReasonCode> {
        let cfg = self.broker.config();
        let stats = self.broker.stats();
        policy::check_user_properties(cfg, stats, &c.properties.user_properties)?;
        if let Some(w) = &c.will {
            if w.retain && !cfg.retain_available {
                return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
            }
            policy::check_publish_topic(cfg, stats, &w.topic)?;
            policy::check_user_properties(cfg, stats, &w.properties.user_properties)?;
            // A will is a message the broker keeps: not taken in over the memory ceiling.
            policy::check_memory(cfg, stats)?;
        }
        Ok(())
    }

    /// Accepts the connection: opens or resumes the session, sends CONNACK (with the last
    /// Authentication Data of an enhanced exchange, if any) and resends what the session
    /// still owes the client.
    pub(super) fn complete_connect(
        &mut self,
        now: Instant,
        c: Connect,
        client_id: MqttString,
        assigned: Option<MqttString>,
        auth: Option<(MqttString, Option<Bytes>)>,
    ) -> Result<(), Close> {
        let cfg = self.broker.config().clone();
        let v = c.protocol;

        // Keep-alive, possibly replaced by Server Keep Alive [MQTT-3.2.2-21].
        // Only MQTT 5 can tell a client: a 3.x client keeps the keep-alive it asked for.
        let keep_alive_secs = match cfg.max_keep_alive_secs {
            Some(max) if v.is_v5() && (c.keep_alive_secs == 0 || c.keep_alive_secs > max) => max,
            _ => c.keep_alive_secs,
        };
        // A 3.x client cannot ask for an expiry: its persistent session gets the
        // configured one (Mosquitto's `persistent_client_expiration`).
        let requested_expiry = if v.is_v5() {
            c.properties.session_expiry_interval.unwrap_or(0)
        } else if c.clean_start {
            0
        } else {
            cfg.persistent_session_expiry_secs
        };
        let expiry_secs = self.grant_expiry(requested_expiry);
        let client_receive_max = c
            .properties
            .receive_maximum
            .map_or(u16::MAX, NonZeroU16::get);

        // A client identifier that reconnects in a tight loop is refused for a while (EMQX's
        // flapping detection); counted only once the client has authenticated, so nobody
        // can use up another client's connections by guessing.
        if let Err(rc) = self.broker.check_flapping(&client_id, now) {
            return Err(self.refuse(rc));
        }
        let opened = match self.broker.open_session(
            &client_id,
            c.username.as_ref().map(|u| Arc::from(u.as_str())),
            c.clean_start,
            self.generation,
            now,
        ) {
            Ok(opened) => opened,
            Err(rc) => return Err(self.refuse(rc)),
        };
        let session = opened.session;
        let meter = self.broker.stats().held_meter().clone();
        {
            let mut st = session.lock();
            st.expiry_secs = expiry_secs;
            // A new connection counts as draining its queue until it shows otherwise.
            st.last_drain = Some(now);
            st.will = c.will.map(|w| {
                let mut will = will_message(w, v);
                will.msg = will.msg.charged(&meter);
                Box::new(will)
            });
        }
        session.set_connected(true);
        self.session = Some(session);
        self.phase = Phase::Active;
        if let Some(peer) = &mut self.peer {
            peer.keep_alive_secs = keep_alive_secs;
            peer.send_window = usize::from(cfg.max_inflight.min(client_receive_max));
            peer.alias_max_out = c
                .properties
                .topic_alias_maximum
                .unwrap_or(0)
                .min(cfg.topic_alias_maximum);
            peer.connect_expiry_secs = requested_expiry;
        }

        let mut ack = ConnAck {
            session_present: opened.present,
            reason_code: ReasonCode::SUCCESS,
            properties: ConnAckProperties::default(),
        };
        if v.is_v5() {
            let p = &mut ack.properties;
            if expiry_secs != requested_expiry {
                p.session_expiry_interval = Some(expiry_secs);
            }
            p.receive_maximum = NonZeroU16::new(cfg.receive_maximum);
            p.maximum_packet_size = NonZeroU32::new(cfg.max_packet_size);
            p.topic_alias_maximum = Some(cfg.topic_alias_maximum);
            p.assigned_client_identifier = assigned;
            p.retain_available = Some(cfg.retain_available);
            p.wildcard_subscription_available = Some(cfg.wildcard_subscription_available);
            p.subscription_identifiers_available = Some(cfg.subscription_identifiers_available);
            p.shared_subscription_available = Some(cfg.shared_subscription_available);
            if keep_alive_secs != c.keep_alive_secs {
                p.server_keep_alive = Some(keep_alive_secs);
            }
            if let Some((method, data)) = auth {
                p.authentication_method = Some(method.clone());
                p.authentication_data = data;
                self.auth_method = Some(Box::new(method));
            }
        }
        self.send_connack(ack);
        if opened.present {
            self.resend_inflight();
        }
        self.poll_deliveries(now)
    }

    /// Sends the CONNACK of an accepted connection. If it is larger than the client's
    /// Maximum Packet Size, the properties that only repeat defaults go first; a client whose
    /// limit is smaller still gets it, as the connection cannot work without it
    /// [MQTT-3.2.0-1].
    fn send_connack(&mut self, mut ack: ConnAck) {
        if self.send(&Packet::ConnAck(ack.clone())) {
            return;
        }
        let p = &mut ack.properties;
        for flag in [
            &mut p.retain_available,
            &mut p.wildcard_subscription_available,
            &mut p.subscription_identifiers_available,
            &mut p.shared_subscription_available,
        ] {
            if *flag == Some(true) {
                *flag = None;
            }
        }
        p.reason_string = None;
        p.user_properties.clear();
        if !self.send(&Packet::ConnAck(ack.clone())) {
            let v = self
                .peer
                .as_ref()
                .map_or(ProtocolVersion::V5, |p| p.version);
            let _ = Packet::ConnAck(ack).encode(v, &mut self.tx);
        }
    }

    /// Refuses CONNECT with `rc` and ends the connection [MQTT-3.2.2-7].
    pub(super) fn refuse(&mut self, rc: ReasonCode) -> Close {
        self.send_connack_refusal(rc);
        self.phase = super::Phase::Closed;
        Close {
            reason: CloseReason::ConnectRefused(rc),
        }
    }

    /// Sends a CONNACK carrying a failure code, in the client's protocol level (3.1.1 when
    /// the level itself was not understood).
    pub(super) fn send_connack_refusal(&mut self, rc: ReasonCode) {
        let v = self
            .peer
            .as_ref()
            .map_or(ProtocolVersion::V3_1_1, |p| p.version);
        let ack = ConnAck {
            session_present: false,
            reason_code: rc,
            properties: ConnAckProperties::default(),
        };
        // The size check of `send` does not apply: the client has not agreed to anything.
        let _ = Packet::ConnAck(ack).encode(v, &mut self.tx);
    }

    /// On resuming a session, resends every unacknowledged message in its original order:
    /// PUBLISH with DUP set, or PUBREL for messages already received [MQTT-4.4.0-1]. They go
    /// out from `poll_deliveries`, within the client's new Receive Maximum
    /// [MQTT-3.3.4-9].
    fn resend_inflight(&mut self) {
        if let Some(session) = &self.session {
            session.lock().traffic().inflight.mark_all_for_resend();
        }
    }
}

/// A CONNECT waiting for the answer of a slow authentication check.
#[derive(Debug)]
pub(super) struct Verifying {
    connect: Connect,
    client_id: MqttString,
    assigned: Option<MqttString>,
    /// The client's verified TLS certificate, if any (for the check).
    certificate: Option<Box<crate::auth::ClientCertificate>>,
    /// Whether the shell has been given the request (it is given once).
    requested: bool,
}

/// The will as the message it becomes; its expiry is stamped when it is published.
fn will_message(w: Will, v: ProtocolVersion) -> PendingWill {
    let properties = if v.is_v5() {
        halyard_codec::PublishProperties {
            payload_format: w.properties.payload_format,
            message_expiry_interval: w.properties.message_expiry_interval,
            response_topic: w.properties.response_topic,
            correlation_data: w.properties.correlation_data,
            user_properties: w.properties.user_properties,
            content_type: w.properties.content_type,
            ..Default::default()
        }
    } else {
        Default::default()
    };
    let msg = Message {
        topic: w.topic,
        payload: w.payload,
        qos: w.qos,
        retain: w.retain,
        properties,
        expires_at: None,
        origin: None,
        packed_user_properties: bytes::Bytes::new(),
        held: crate::message::Held::none(),
    };
    PendingWill {
        delay_secs: w.properties.will_delay_interval.unwrap_or(0),
        // Kept for the connection's life: not a slice of the read buffer.
        msg: msg.compact(),
    }
}
