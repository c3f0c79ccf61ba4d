//! The accept loop of one TCP listener: the connection limit, and a connection started for
//! each accepted socket.

use crate::connection;
use crate::shared::Shared;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub(crate) async fn accept_loop(
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
                if !shared.try_open_connection() {
                    tracing::warn!(%peer, "connection refused: limits.max_connections reached");
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                connection::start(shared.clone(), stream, peer);
            }
        }
    }
}
