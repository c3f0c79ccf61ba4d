//! Authentication: the trait the broker asks whether a client may connect.
//!
//! Password files, client certificates and enhanced (AUTH) methods plug in here; this crate
//! ships only [`AllowAll`], the default of a broker that listens on loopback only.

use bytes::Bytes;
use halyard_codec::{MqttString, ProtocolVersion, ReasonCode};

/// What a client presented in CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct ConnectInfo<'a> {
    /// Client identifier (after assignment, if the client sent none).
    pub client_id: &'a MqttString,
    /// User Name, if any.
    pub username: Option<&'a MqttString>,
    /// Password, if any.
    pub password: Option<&'a Bytes>,
    /// Protocol level.
    pub protocol: ProtocolVersion,
}

/// The answer to a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    /// Let the client in.
    Allow,
    /// Refuse with this CONNACK reason code (mapped to a 3.x return code for 3.x clients).
    Deny(ReasonCode),
}

/// Decides whether a client may connect. Called once per CONNECT; must not block.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// Checks the client's credentials.
    fn authenticate(&self, info: &ConnectInfo<'_>) -> AuthDecision;
}

/// Lets every client in (anonymous access).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, _: &ConnectInfo<'_>) -> AuthDecision {
        AuthDecision::Allow
    }
}
