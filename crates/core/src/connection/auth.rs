//! Enhanced authentication (section 4.12): the AUTH exchange at CONNECT and when a connected
//! client re-authenticates, driven by an `EnhancedAuthenticator` named by the client's
//! Authentication Method.

use super::{Close, CloseReason, Connection, Pending, Phase};
use crate::auth::{AuthExchange, AuthStep};
use bytes::Bytes;
use halyard_codec::{Auth, AuthProperties, Connect, MqttString, Packet, ReasonCode};
use std::time::Instant;

/// An exchange under way.
#[derive(Debug)]
pub(super) struct PendingAuth {
    method: MqttString,
    exchange: Box<dyn AuthExchange>,
    /// The CONNECT waiting for the exchange to succeed (`None` when re-authenticating).
    connect: Option<(Connect, MqttString, Option<MqttString>)>,
}

impl Connection {
    /// CONNECT named an Authentication Method: start the exchange, or refuse a method the
    /// broker does not have with 0x8C [MQTT-4.12.0-1]. Without a method, the connection is
    /// accepted.
    pub(super) fn begin_enhanced_auth(
        &mut self,
        now: Instant,
        c: Connect,
        client_id: MqttString,
        assigned: Option<MqttString>,
    ) -> Result<(), Close> {
        let Some(method) = c.properties.authentication_method.clone() else {
            return self.complete_connect(now, c, client_id, assigned, None);
        };
        let Some(authenticator) = self.broker.auth_method(&method) else {
            return Err(self.refuse(ReasonCode::BAD_AUTHENTICATION_METHOD));
        };
        let exchange = authenticator.begin(&client_id);
        let data = c.properties.authentication_data.clone();
        self.auth = Some(Box::new(Pending::Exchange(PendingAuth {
            method,
            exchange,
            connect: Some((c, client_id, assigned)),
        })));
        self.phase = Phase::Authenticating;
        self.auth_step(now, data.as_ref())
    }

    /// Packets while authenticating: AUTH to continue, DISCONNECT to give up; anything
    /// else is a protocol error (section 4.12).
    pub(super) fn handle_authenticating(
        &mut self,
        now: Instant,
        packet: Packet,
    ) -> Result<(), Close> {
        match packet {
            Packet::Auth(a) if a.reason_code == ReasonCode::CONTINUE_AUTHENTICATION => {
                if !self.same_method(&a) {
                    return Err(self.refuse(ReasonCode::PROTOCOL_ERROR));
                }
                self.auth_step(now, a.properties.authentication_data.as_ref())
            }
            Packet::Disconnect(_) => {
                self.phase = Phase::Closed;
                Err(Close {
                    reason: CloseReason::ClientDisconnect,
                })
            }
            _ => Err(self.refuse(ReasonCode::PROTOCOL_ERROR)),
        }
    }

    /// AUTH from a connected client: a re-authentication (0x19) with the method it connected
    /// with, or the next round of one [MQTT-4.12.1-1].
    pub(super) fn handle_reauth(&mut self, now: Instant, a: Auth) -> Result<(), Close> {
        let Some(method) = self.auth_method.as_deref().cloned() else {
            return Err(self.violation(
                now,
                ReasonCode::PROTOCOL_ERROR,
                "AUTH from a client that connected without an Authentication Method (section 4.12)"
                    .into(),
            ));
        };
        let starting = a.reason_code == ReasonCode::RE_AUTHENTICATE && self.auth.is_none();
        let continuing =
            a.reason_code == ReasonCode::CONTINUE_AUTHENTICATION && self.exchange().is_some();
        if !(starting || continuing) || !self.same_method_as(&a, &method) {
            return Err(self.violation(
                now,
                ReasonCode::PROTOCOL_ERROR,
                "unexpected AUTH packet".into(),
            ));
        }
        if starting {
            let Some(authenticator) = self.broker.auth_method(&method) else {
                return Err(self.violation(
                    now,
                    ReasonCode::BAD_AUTHENTICATION_METHOD,
                    "method gone".into(),
                ));
            };
            let client_id = self
                .session
                .as_ref()
                .map(|s| s.client_id().clone())
                .unwrap_or_default();
            self.auth = Some(Box::new(Pending::Exchange(PendingAuth {
                method,
                exchange: authenticator.begin(&client_id),
                connect: None,
            })));
        }
        self.auth_step(now, a.properties.authentication_data.as_ref())
    }

    /// The enhanced exchange under way, if any.
    fn exchange(&self) -> Option<&PendingAuth> {
        match self.auth.as_deref() {
            Some(Pending::Exchange(p)) => Some(p),
            _ => None,
        }
    }

    fn exchange_mut(&mut self) -> Option<&mut PendingAuth> {
        match self.auth.as_deref_mut() {
            Some(Pending::Exchange(p)) => Some(p),
            _ => None,
        }
    }

    /// Ends the exchange under way and gives it back (nothing else is taken).
    fn take_exchange(&mut self) -> Option<PendingAuth> {
        match self.auth.take().map(|b| *b) {
            Some(Pending::Exchange(p)) => Some(p),
            other => {
                self.auth = other.map(Box::new);
                None
            }
        }
    }

    fn same_method(&self, a: &Auth) -> bool {
        self.exchange()
            .is_some_and(|p| a.properties.authentication_method.as_ref() == Some(&p.method))
    }

    fn same_method_as(&self, a: &Auth, method: &MqttString) -> bool {
        a.properties.authentication_method.as_ref() == Some(method)
    }

    /// Feeds the client's data to the exchange and acts on its answer.
    fn auth_step(&mut self, now: Instant, data: Option<&Bytes>) -> Result<(), Close> {
        let Some(pending) = self.exchange_mut() else {
            return Ok(());
        };
        match pending.exchange.step(data) {
            AuthStep::Continue(data) => {
                let method = pending.method.clone();
                self.send_auth(ReasonCode::CONTINUE_AUTHENTICATION, method, data);
                Ok(())
            }
            AuthStep::Success(data) => {
                let Some(pending) = self.take_exchange() else {
                    return Ok(());
                };
                match pending.connect {
                    Some((c, client_id, assigned)) => self.complete_connect(
                        now,
                        c,
                        client_id,
                        assigned,
                        Some((pending.method, data)),
                    ),
                    None => {
                        self.send_auth(ReasonCode::SUCCESS, pending.method, data);
                        Ok(())
                    }
                }
            }
            AuthStep::Fail(rc) => {
                let connecting = pending.connect.is_some();
                self.auth = None;
                if connecting {
                    Err(self.refuse(rc))
                } else {
                    // [MQTT-4.12.1-2] A failed re-authentication ends the connection.
                    Err(self.violation(now, rc, "re-authentication failed".into()))
                }
            }
        }
    }

    fn send_auth(&mut self, rc: ReasonCode, method: MqttString, data: Option<Bytes>) {
        let auth = Auth {
            reason_code: rc,
            properties: AuthProperties {
                authentication_method: Some(method),
                authentication_data: data,
                ..AuthProperties::default()
            },
        };
        self.send(&Packet::Auth(auth));
    }
}
