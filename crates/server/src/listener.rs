//! The accept loop of one TCP listener: a connection limit, and one task per connection.

use crate::config::ServerLimits;
use crate::connection::run_connection;
use halyard_core::Broker;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub(crate) async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    limits: ServerLimits,
    permits: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
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
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "connection refused: limits.max_connections reached");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(run_connection(
                    stream,
                    peer,
                    broker.clone(),
                    limits.clone(),
                    shutdown.clone(),
                    permit,
                ));
            }
        }
    }
    drop(listener);
    // Shutdown: every connection task has seen the signal too; wait for them to say goodbye.
    while connections.join_next().await.is_some() {}
}
