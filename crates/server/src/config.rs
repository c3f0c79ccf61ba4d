//! The server's configuration: listeners, connection limits, and the broker's protocol
//! settings (`halyard_core::BrokerConfig`). The binary reads it from a TOML file; every field
//! has a default, and unknown keys are refused.

use halyard_core::BrokerConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the server needs to start.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The listeners (`[[listener]]` tables). Default: 127.0.0.1:1883 only.
    pub listener: Vec<ListenerConfig>,
    /// Connection limits (`[limits]`).
    pub limits: ServerLimits,
    /// Protocol settings and per-client limits (`[mqtt]`).
    pub mqtt: BrokerConfig,
    /// Access control (`[auth]`).
    pub auth: AuthConfig,
}

/// Authentication and access control (client certificates are set per listener, in
/// [`TlsConfig`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether clients without a user name may connect. Default: yes without a password
    /// file, no with one. A listener beyond loopback needs a password file or an explicit
    /// `true` (see [`Config::validate`]).
    pub allow_anonymous: Option<bool>,
    /// A Mosquitto password file (`$7$`, `$6$` or `$argon2id$` hashes), read unchanged.
    pub password_file: Option<PathBuf>,
    /// A Mosquitto ACL file, read unchanged. None: everything allowed.
    pub acl_file: Option<PathBuf>,
    /// The MQTT 5 SUBACK code for a filter the ACL refuses.
    pub subscribe_denied_reason: SubscribeDenied,
}

/// The MQTT 5 SUBACK code for a filter the ACL refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscribeDenied {
    /// 0x87 Not authorized.
    #[default]
    NotAuthorized,
    /// 0x80 Unspecified error (what the Eclipse interoperability suite and some older
    /// clients expect).
    Unspecified,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listener: vec![ListenerConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 1883)),
                max_connections: None,
                tls: None,
            }],
            limits: ServerLimits::default(),
            mqtt: BrokerConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to listen on, e.g. "127.0.0.1:1883" or "[::1]:1883".
    pub bind: SocketAddr,
    /// Most connections open at once on this listener (within `limits.max_connections`
    /// for all of them). `None`: only the overall limit.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// TLS on this listener (`[listener.tls]`); none: plain TCP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// TLS on a listener (`[listener.tls]`): TLS 1.2 and 1.3 with rustls (aws-lc-rs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The server's PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates that client certificates must chain to. Without it, clients
    /// are not asked for a certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Mutual TLS: a client without a certificate that chains to `ca` (unexpired) fails
    /// the handshake. Needs `ca`. When false and `ca` is set, a certificate is asked for
    /// but optional (one that is sent must still verify).
    #[serde(default)]
    pub require_client_cert: bool,
    /// The client certificate's subject Common Name is the client's user name (Mosquitto's
    /// `use_identity_as_username`): the user name and password in CONNECT are ignored and
    /// the password file is not asked; a client without a certificate, or one without a
    /// Common Name, is refused (0x86 / return code 4). Needs `ca`.
    #[serde(default)]
    pub identity_as_username: bool,
}

/// Limits on connections.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// Most connections open at once; more are closed as they are accepted.
    pub max_connections: usize,
    /// Seconds a new connection has to send CONNECT before it is closed.
    pub connect_timeout_secs: u64,
    /// New connections accepted per second from one IP address (a burst of as many is
    /// allowed); more are closed as they are accepted. 0: no limit.
    pub max_connection_rate_per_ip: u32,
    /// TCP keep-alive on accepted sockets: seconds of silence before the kernel probes the
    /// peer (then every 10 s, closing after 6 unanswered probes), so connections whose peer
    /// vanished end even with MQTT keep-alive 0. 0: off.
    pub tcp_keepalive_secs: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 100_000,
            connect_timeout_secs: 10,
            max_connection_rate_per_ip: 1000,
            tcp_keepalive_secs: 120,
        }
    }
}

impl Config {
    /// Checks values that cannot work, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.listener.is_empty() {
            return Err("at least one [[listener]] is needed".into());
        }
        if self.limits.max_connections == 0 {
            return Err("limits.max_connections must be at least 1".into());
        }
        for l in &self.listener {
            if let Some(tls) = &l.tls
                && tls.ca.is_none()
                && (tls.require_client_cert || tls.identity_as_username)
            {
                return Err(format!(
                    "listener {}: require_client_cert and identity_as_username need [listener.tls] ca \
                     (the CAs client certificates must chain to)",
                    l.bind
                ));
            }
        }
        // Safe default (as Mosquitto 2): beyond loopback, nobody gets in anonymously unless
        // the configuration says so. Client certificates authenticate when they are
        // required and their identity is the user name.
        if let Some(open) = self.listener.iter().find(|l| {
            !l.bind.ip().is_loopback()
                && !l
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.require_client_cert && t.identity_as_username)
        }) && self.auth.password_file.is_none()
            && self.auth.allow_anonymous != Some(true)
        {
            return Err(format!(
                "listener {} is reachable beyond this machine, and nothing authenticates \
                 clients: set [auth] password_file, or allow_anonymous = true to let anyone \
                 connect, or require client certificates ([listener.tls] require_client_cert \
                 and identity_as_username)",
                open.bind
            ));
        }
        if self.listener.iter().any(|l| l.max_connections == Some(0)) {
            return Err("listener max_connections must be at least 1".into());
        }
        if self.limits.connect_timeout_secs == 0 {
            return Err("limits.connect_timeout_secs must be at least 1".into());
        }
        self.mqtt.validate()
    }
}
