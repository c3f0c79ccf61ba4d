//! Authentication: the trait the broker asks whether a client may connect.
//!
//! Password files, client certificates and enhanced (AUTH) methods plug in here through
//! [`AuthHooks`]; this crate ships only [`AllowAll`], the default of a broker that listens on
//! loopback only, and no enhanced method.

use bytes::Bytes;
use halyard_codec::{MqttString, ProtocolVersion, ReasonCode};

/// A client's TLS certificate, verified by the network shell during the TLS handshake
/// (before CONNECT) against the listener's CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate subject's Common Name, if it has one: the client's identity.
    pub identity: Option<std::sync::Arc<str>>,
    /// Whether the listener takes the identity as the client's user name (Mosquitto's
    /// `use_identity_as_username`): the user name and password in CONNECT are then ignored,
    /// and a certificate without a Common Name is refused (0x86 / return code 4).
    pub as_username: bool,
}

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
    /// The client's verified TLS certificate, if it presented one. With `as_username`, the
    /// `username` above is its identity and `password` is none: the certificate is the
    /// credential.
    pub certificate: Option<&'a ClientCertificate>,
}

/// The answer to a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    /// Let the client in.
    Allow,
    /// Refuse with this CONNACK reason code (mapped to a 3.x return code for 3.x clients).
    Deny(ReasonCode),
    /// The answer needs slow work (a password hash, an external service): the connection
    /// waits, and the network shell calls [`Authenticator::verify`] off the connection
    /// tasks and hands the answer back (`Connection::handle_verified`).
    Verify,
}

/// What a slow check is given (owned: it runs on another thread).
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// Client identifier (after assignment).
    pub client_id: MqttString,
    /// User Name, if any.
    pub username: Option<MqttString>,
    /// Password, if any.
    pub password: Option<Bytes>,
    /// Protocol level.
    pub protocol: ProtocolVersion,
    /// The client's verified TLS certificate, if any (as in [`ConnectInfo`]).
    pub certificate: Option<ClientCertificate>,
}

/// Decides whether a client may connect.
///
/// [`Authenticator::authenticate`] is called on the connection's task once per CONNECT and
/// must not block: it answers at once, or says [`AuthDecision::Verify`]. Then
/// [`Authenticator::verify`] is called on a bounded pool of blocking threads, where it may
/// take its time (hash a password, ask a service); it must not answer `Verify`.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// Checks the client's credentials, quickly.
    fn authenticate(&self, info: &ConnectInfo<'_>) -> AuthDecision;

    /// The slow check, for an `authenticate` that answered `Verify`.
    fn verify(&self, request: &VerifyRequest) -> AuthDecision {
        let _ = request;
        AuthDecision::Deny(ReasonCode::NOT_AUTHORIZED)
    }
}

/// Lets every client in (anonymous access).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, _: &ConnectInfo<'_>) -> AuthDecision {
        AuthDecision::Allow
    }
}

/// One step of an enhanced authentication exchange (section 4.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Authenticated. The data, if any, goes to the client in CONNACK (or in AUTH with
    /// Success when re-authenticating).
    Success(Option<Bytes>),
    /// Another round: the data goes to the client in AUTH with Continue authentication (0x18).
    Continue(Option<Bytes>),
    /// Refused with this reason code (e.g. 0x87 Not authorized, 0x86 Bad user name or
    /// password).
    Fail(ReasonCode),
}

/// One enhanced authentication method (for example SCRAM or Kerberos), named by the
/// Authentication Method a client puts in CONNECT. None is built in yet: a client naming any
/// method gets CONNACK 0x8C (Bad authentication method).
pub trait EnhancedAuthenticator: Send + Sync + std::fmt::Debug {
    /// The Authentication Method this authenticator answers to.
    fn method(&self) -> &str;
    /// Starts an exchange for a client (at CONNECT, or when it re-authenticates).
    fn begin(&self, client_id: &MqttString) -> Box<dyn AuthExchange>;
}

/// The state of one exchange: fed the client's Authentication Data at CONNECT and at each
/// AUTH it sends, until it answers Success or Fail. Must not block.
pub trait AuthExchange: Send + std::fmt::Debug {
    /// The next step, given the client's Authentication Data.
    fn step(&mut self, data: Option<&Bytes>) -> AuthStep;
}

/// How the broker decides who may connect.
#[derive(Debug)]
pub struct AuthHooks {
    /// Checks CONNECT's user name and password (all clients). Shared with the shell's
    /// blocking pool, which runs its slow checks.
    pub authenticator: std::sync::Arc<dyn Authenticator>,
    /// Enhanced authentication methods, by name.
    pub methods: Vec<Box<dyn EnhancedAuthenticator>>,
    /// Access rules (`None`: everything allowed, as without an ACL file in Mosquitto).
    pub acl: Option<crate::acl::Acl>,
    /// The SUBACK reason code for a filter the access rules refuse on MQTT 5: 0x87 Not
    /// authorized, or 0x80 Unspecified error, which some older clients and the Eclipse
    /// interoperability suite expect (3.1.1 always gets 0x80).
    pub subscribe_denied: halyard_codec::ReasonCode,
}

impl Default for AuthHooks {
    fn default() -> Self {
        AuthHooks {
            authenticator: std::sync::Arc::new(AllowAll),
            methods: Vec::new(),
            acl: None,
            subscribe_denied: halyard_codec::ReasonCode::NOT_AUTHORIZED,
        }
    }
}
