//! The tokio shell around `halyard-core`.
//!
//! This crate owns the sockets: the listeners ([`start`]), TLS (`tls`: configuration,
//! handshakes, reload), the transport seam (`transport`: plain TCP or TLS under one
//! connection loop), the connections (a task that moves bytes between a transport and its
//! `halyard_core::Connection` while there is work, parked without a task when idle), the
//! keep-alive wheel of parked connections, the ticker that drives delayed wills and session
//! expiry, password files, admission limits, reload and graceful shutdown. It makes no
//! protocol decisions: those belong to `halyard-core`; this crate only moves bytes, time
//! and wake-ups.
//!
//! Planned here too: WebSocket listeners, metrics, `$SYS` topics.

mod admission;
pub mod auth;
mod config;
mod connection;
mod keepalive;
mod listener;
pub mod passwords;
mod shared;
mod tls;
mod transport;

pub use config::{AuthConfig, Config, ListenerConfig, ServerLimits, SubscribeDenied, TlsConfig};

use halyard_core::{AuthHooks, Broker};
use shared::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A running broker: its bound addresses, and the handle to stop it.
#[derive(Debug)]
pub struct RunningServer {
    addrs: Vec<SocketAddr>,
    /// The files to read again at reload.
    auth_config: AuthConfig,
    /// The password checker, to give it a reloaded file.
    password_auth: Option<Arc<auth::PasswordAuthenticator>>,
    broker: Arc<Broker>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// How often delayed wills and session expiries are checked.
const TICK: Duration = Duration::from_millis(100);

/// Binds every listener and starts serving, with anonymous access. Fails if a listener
/// cannot bind.
pub async fn start(config: Config) -> std::io::Result<RunningServer> {
    start_with_auth(config, AuthHooks::default()).await
}

/// Like [`start`], with the given authentication hooks.
pub async fn start_with_auth(
    config: Config,
    mut auth: AuthHooks,
) -> std::io::Result<RunningServer> {
    config
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    if let Some(path) = &config.auth.acl_file {
        auth.acl = Some(load_acl(path)?);
    }
    let mut password_auth = None;
    if config.auth.password_file.is_some() || config.auth.allow_anonymous == Some(false) {
        let passwords = match &config.auth.password_file {
            Some(path) => Some(load_passwords(path)?),
            None => None,
        };
        let allow_anonymous = config.auth.allow_anonymous.unwrap_or(passwords.is_none());
        let checker = Arc::new(auth::PasswordAuthenticator::new(passwords, allow_anonymous));
        auth.authenticator = checker.clone();
        password_auth = Some(checker);
    }
    auth.subscribe_denied = match config.auth.subscribe_denied_reason {
        SubscribeDenied::NotAuthorized => halyard_codec::ReasonCode::NOT_AUTHORIZED,
        SubscribeDenied::Unspecified => halyard_codec::ReasonCode::UNSPECIFIED_ERROR,
    };
    let broker = Broker::new(config.mqtt.clone(), auth);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let listener_limits: Vec<Option<usize>> =
        config.listener.iter().map(|l| l.max_connections).collect();
    if listener_limits.len() > usize::from(u16::MAX) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "at most 65535 listeners",
        ));
    }
    let mut tls = Vec::with_capacity(config.listener.len());
    for l in &config.listener {
        tls.push(match &l.tls {
            Some(settings) => {
                Some(Arc::new(tls::TlsListener::load(settings).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
                })?))
            }
            None => None,
        });
    }
    let shared = Arc::new(Shared::new(
        broker.clone(),
        config.limits.clone(),
        &listener_limits,
        tls,
        shutdown_rx.clone(),
        tokio::runtime::Handle::current(),
    ));
    let mut tasks = JoinSet::new();
    let mut addrs = Vec::new();
    for (index, l) in (0u16..).zip(&config.listener) {
        let socket = listener::bind(l.bind)?;
        let addr = socket.local_addr()?;
        tracing::info!("listening on {addr}");
        addrs.push(addr);
        tasks.spawn(listener::accept_loop(
            index,
            socket,
            shared.clone(),
            shutdown_rx.clone(),
        ));
    }
    tasks.spawn(tick_loop(broker.clone(), shutdown_rx.clone()));
    tasks.spawn(keep_alive_loop(shared.clone(), shutdown_rx.clone()));
    tasks.spawn(limit_report_loop(broker.clone(), shutdown_rx));
    Ok(RunningServer {
        addrs,
        auth_config: config.auth.clone(),
        password_auth,
        broker,
        shared,
        shutdown,
        tasks,
    })
}

/// Reads and parses a password file; the error names the file, and the line and what is
/// wrong (never a hash).
fn load_passwords(path: &std::path::Path) -> std::io::Result<passwords::PasswordFile> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("auth.password_file {}: {e}", path.display())))?;
    passwords::PasswordFile::parse(&text)
        .map_err(|e| invalid(format!("auth.password_file {}: {e}", path.display())))
}

/// Reads and parses an ACL file; the error names the file, and the line and what is wrong.
fn load_acl(path: &std::path::Path) -> std::io::Result<halyard_core::Acl> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("auth.acl_file {}: {e}", path.display())))?;
    halyard_core::Acl::parse(&text)
        .map_err(|e| invalid(format!("auth.acl_file {}: {e}", path.display())))
}

async fn tick_loop(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = interval.tick() => {
                broker.tick(std::time::Instant::now());
            }
        }
    }
}

/// Wakes parked connections whose keep-alive may have run out, every wheel tick.
async fn keep_alive_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(keepalive::TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = 0;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = interval.tick() => shared.keep_alive.sweep(&mut next, std::time::Instant::now()),
        }
    }
}

/// How often refusals by the broker's limits are reported in the log.
const LIMIT_REPORT: Duration = Duration::from_secs(10);

/// Logs, once per [`LIMIT_REPORT`] at most, each limit that refused something since the
/// last report and how often: an abusive client costs one log line per limit per interval,
/// not one per refusal.
async fn limit_report_loop(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(LIMIT_REPORT);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = [0u64; halyard_core::Limit::ALL.len()];
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = interval.tick() => {}
        }
        for (limit, last) in halyard_core::Limit::ALL.iter().zip(seen.iter_mut()) {
            let hits = broker.stats().limit_hits(*limit);
            if hits > *last {
                tracing::warn!(
                    limit = limit.label(),
                    refused = hits - *last,
                    "refused by {} ({} times in the last {} s)",
                    limit.setting(),
                    hits - *last,
                    LIMIT_REPORT.as_secs()
                );
                *last = hits;
            }
        }
    }
}

impl RunningServer {
    /// The addresses the listeners are bound to (with the real port when 0 was asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Reads the password file, the ACL file and the TLS certificates, keys and CAs again
    /// (SIGHUP). Connected clients stay
    /// connected; new connections and new decisions use the new files. A file that cannot
    /// be read or is invalid keeps the old one in force: the errors come back, each naming
    /// the file, its line and what is wrong.
    pub fn reload(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let (Some(path), Some(checker)) = (&self.auth_config.password_file, &self.password_auth)
        {
            match load_passwords(path) {
                Ok(file) => checker.set_passwords(Some(file)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some(path) = &self.auth_config.acl_file {
            match load_acl(path) {
                Ok(acl) => self.broker.set_acl(Some(acl)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        for tls in self.shared.tls_listeners() {
            if let Err(e) = tls.reload() {
                errors.push(e);
            }
        }
        errors
    }

    /// The broker state (for tests and metrics).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops accepting, sends 5.0 clients DISCONNECT 0x8B, closes every connection and
    /// waits for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.shared.shut_down_connections().await;
    }

    /// Waits until the server stops by itself (it does not, unless a task fails).
    pub async fn wait(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}
