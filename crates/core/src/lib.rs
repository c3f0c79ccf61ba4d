//! The broker as a sans-I/O state machine.
//!
//! This crate owns what MQTT *means*: the per-connection state machine ([`Connection`]), the
//! per-client [`Session`] that outlives connections (subscriptions, queued and in-flight
//! messages, packet identifiers), and the shared [`Broker`] (subscription trie, shared
//! subscriptions, retained messages, session registry, delayed wills, session expiry).
//!
//! It does no I/O, spawns nothing, never reads the clock and does not depend on tokio: the
//! network shell (`halyard-server`) feeds it decoded packets and the time (`now`), and sends
//! the bytes it leaves in the connection's transmit buffer. A connection learns that messages
//! are waiting for it through a [`std::task::Waker`] the shell registers.
//!
//! Lock order: the subscription trie or retained tree first, then a session's state; never a
//! session's state while taking a trie lock, and never two sessions at once.

mod acl;
mod auth;
mod broker;
mod config;
mod connection;
mod flapping;
mod inflight;
mod message;
mod policy;
mod retained;
mod session;
#[doc(hidden)]
pub mod simulation;
mod stats;
mod trie;

pub use acl::{Access, Acl, AclError, Subject};
pub use auth::{
    AllowAll, AuthDecision, AuthExchange, AuthHooks, AuthStep, Authenticator, ClientCertificate,
    ConnectInfo, EnhancedAuthenticator, VerifyRequest,
};
pub use broker::Broker;
pub use config::{BrokerConfig, MAX_TOPIC_LEVELS_LIMIT};
pub use connection::{Close, CloseReason, Connection};
pub use message::{Held, Message, SessionId};
pub use session::Session;
pub use stats::{Limit, Stats};
