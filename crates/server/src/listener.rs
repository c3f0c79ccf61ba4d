//! The accept loop of one TCP listener: admission (connection counts, the rate per source
//! address), socket options, and a connection started for each accepted socket.

use crate::connection;
use crate::shared::Shared;
use crate::tls;
use crate::transport::Transport;
use halyard_core::Limit;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connections the kernel completes and holds for the accept loop. The standard library's
/// (and tokio's) 128 overflows in a connection storm: the kernel then completes handshakes
/// with SYN cookies for sockets the broker never sees, which look open to their clients
/// for ever. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listening socket with [`LISTEN_BACKLOG`] (and SO_REUSEADDR, as tokio does).
pub(crate) fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

pub(crate) async fn accept_loop(
    index: u16,
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: log, pause briefly, go on.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Refusals are counted per limit and logged by the server's limit report, at
                // most once per interval (a flood must not become a flood of log lines).
                let stats = shared.broker.stats();
                if shared.auth_failures.is_banned(peer.ip(), Instant::now()) {
                    stats.limit_hit(Limit::AuthFailures);
                    drop(stream);
                    continue;
                }
                if !shared.rate.admit(peer.ip(), Instant::now()) {
                    stats.limit_hit(Limit::ConnectionRate);
                    drop(stream);
                    continue;
                }
                if !shared.try_open_connection(usize::from(index)) {
                    stats.limit_hit(Limit::Connections);
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                set_tcp_keepalive(&stream, shared.limits.tcp_keepalive_secs);
                match shared.tls(index) {
                    None => connection::start(shared.clone(), Transport::Tcp(stream), peer, index, None),
                    // The handshake runs in a task of its own, under the CONNECT timeout: a
                    // slow or silent client never holds up the accepting loop.
                    Some(tls) => {
                        shared.runtime.spawn(tls::handshake(shared.clone(), tls, stream, peer, index));
                    }
                }
            }
        }
    }
}

/// Turns on TCP keep-alive probes, so a connection whose peer vanished (and which has no
/// MQTT keep-alive) is ended by the kernel: silence for `secs`, then a probe every 10 s,
/// closed after 6 unanswered.
fn set_tcp_keepalive(stream: &tokio::net::TcpStream, secs: u32) {
    if secs == 0 {
        return;
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(u64::from(secs)))
        .with_interval(Duration::from_secs(10))
        .with_retries(6);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!("TCP keep-alive not set: {e}");
    }
}
