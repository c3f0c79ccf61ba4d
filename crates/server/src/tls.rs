//! TLS listeners: their rustls configuration (certificate, key, client CAs), replaced at
//! reload, and the handshake of each accepted socket.
//!
//! The handshake runs in a task of its own, started by the accepting loop, and must finish
//! within the CONNECT timeout (`limits.connect_timeout_secs`); only then does the
//! connection start, on a TLS [`Transport`]. A client certificate (verified by rustls
//! against `ca`: chain, validity dates, key usage) gives the connection its identity, the
//! subject's Common Name, for authentication and, with `identity_as_username`, as its user
//! name. This module does not check revocation (no CRL or OCSP), and offers no ALPN or
//! pre-shared keys.

use crate::config::TlsConfig;
use crate::connection;
use crate::shared::Shared;
use crate::transport::Transport;
use halyard_core::ClientCertificate;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// At most one log line per this interval for failed handshakes (the rest are counted in it).
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One TLS listener's settings and its current rustls configuration.
#[derive(Debug)]
pub(crate) struct TlsListener {
    settings: TlsConfig,
    config: RwLock<Arc<rustls::ServerConfig>>,
    failures: FailureLog,
}

impl TlsListener {
    /// Loads the certificate, key and CAs the settings name; the error names the file and
    /// what is wrong with it.
    pub(crate) fn load(settings: &TlsConfig) -> Result<TlsListener, String> {
        Ok(TlsListener {
            config: RwLock::new(Arc::new(server_config(settings)?)),
            settings: settings.clone(),
            failures: FailureLog::default(),
        })
    }

    /// Reads the files again (SIGHUP): new handshakes use them, established connections
    /// keep theirs. On an error the old configuration stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let config = Arc::new(server_config(&self.settings)?);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Builds rustls' server configuration: TLS 1.3 and 1.2, aws-lc-rs, client certificates
/// per `ca` / `require_client_cert`.
pub(crate) fn server_config(settings: &TlsConfig) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = load_certs(&settings.cert)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| {
        format!(
            "listener.tls key {}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            settings.key.display()
        )
    })?;
    let verifier = match &settings.ca {
        None => WebPkiClientVerifier::no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("listener.tls ca {}: {e}", ca.display()))?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if settings.require_client_cert {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            builder
                .build()
                .map_err(|e| format!("listener.tls ca {}: {e}", ca.display()))?
        }
    };
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("listener.tls: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "listener.tls cert {} / key {}: {e}",
                settings.cert.display(),
                settings.key.display()
            )
        })
}

fn load_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("listener.tls {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("listener.tls {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "listener.tls {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// Runs the TLS handshake of an accepted socket (within the CONNECT timeout, ended by
/// shutdown), then starts the connection. A failed handshake closes the socket and is
/// logged at most once per [`FAILURE_LOG_INTERVAL`].
pub(crate) async fn handshake(
    shared: Arc<Shared>,
    tls: Arc<TlsListener>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: u16,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
    let timeout = Duration::from_secs(shared.limits.connect_timeout_secs);
    let mut shutdown = shared.shutdown.clone();
    let outcome = tokio::select! {
        _ = shutdown.changed() => None,
        r = tokio::time::timeout(timeout, acceptor.accept(stream)) => Some(r),
    };
    match outcome {
        Some(Ok(Ok(stream))) => {
            let (tcp, session) = stream.into_inner();
            let certificate = client_certificate(&session, tls.settings.identity_as_username);
            connection::start(
                shared,
                Transport::tls(tcp, session),
                peer,
                listener,
                certificate,
            );
        }
        Some(Ok(Err(e))) => {
            tls.failures.note(peer, &e.to_string());
            shared.connection_closed(usize::from(listener));
        }
        Some(Err(_)) => {
            tls.failures
                .note(peer, "no handshake within limits.connect_timeout_secs");
            shared.connection_closed(usize::from(listener));
        }
        None => shared.connection_closed(usize::from(listener)),
    }
}

/// The client's verified certificate as the broker core takes it: its subject's Common
/// Name. `None` when the client sent no certificate and its identity is not needed.
fn client_certificate(
    session: &rustls::ServerConnection,
    identity_as_username: bool,
) -> Option<ClientCertificate> {
    let leaf = session.peer_certificates().and_then(|c| c.first());
    if leaf.is_none() && !identity_as_username {
        return None;
    }
    Some(ClientCertificate {
        identity: leaf.and_then(|der| common_name(der)).map(Arc::from),
        as_username: identity_as_username,
    })
}

/// The first Common Name of a certificate's subject, if it has one in a string form.
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// Failed handshakes: one WARN line per [`FAILURE_LOG_INTERVAL`] at most, with the latest
/// failure and how many there were since the last line.
#[derive(Debug, Default)]
struct FailureLog {
    /// When the last line was written (ms since `epoch`, +1 so 0 means never).
    last_logged_ms: AtomicU64,
    /// Failures since the last line.
    since: AtomicU64,
}

impl FailureLog {
    fn note(&self, peer: SocketAddr, reason: &str) {
        let count = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let now = epoch_ms();
        let last = self.last_logged_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= FAILURE_LOG_INTERVAL.as_millis() as u64;
        if due
            && self
                .last_logged_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.since.store(0, Ordering::Relaxed);
            tracing::warn!(%peer, failures = count, "TLS handshake failed: {reason} ({count} failed handshakes since the last such line)");
        } else {
            tracing::debug!(%peer, "TLS handshake failed: {reason}");
        }
    }
}

/// Milliseconds since the first call (a monotonic clock for the log's rate).
fn epoch_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}
