//! One task per connection: moves bytes between the socket and the connection's state
//! machine, and time and wake-ups into it.
//!
//! The task reads only when the socket is readable and the transmit buffer is small (a
//! client that does not read its acknowledgements is slowed by TCP, not buffered without
//! bound), writes whatever the state machine queued, and sleeps until the keep-alive or
//! CONNECT deadline. Buffers are released whenever they are empty, so an idle connection
//! holds no read or write buffer.

use crate::config::ServerLimits;
use bytes::{Buf, BytesMut};
use halyard_codec::decode;
use halyard_core::{Broker, Close, CloseReason, Connection};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};

/// How much room to make before each read.
const READ_CHUNK: usize = 16 * 1024;
/// Stop reading while this much is waiting to be written.
const TX_PAUSE_READING: usize = 256 * 1024;

/// Wakes the connection task when messages are queued for its session.
struct NotifyWaker(Notify);

impl Wake for NotifyWaker {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notify_one();
    }
}

pub(crate) async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    limits: ServerLimits,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let mut conn = Connection::new(broker, Instant::now());
    let close = drive(&stream, &mut conn, &limits, shutdown).await;
    flush(&stream, &mut conn).await;
    linger(stream).await;
    let client = conn.client_id().unwrap_or("-");
    match &close.reason {
        CloseReason::ProtocolViolation(..) | CloseReason::SlowConsumer => {
            tracing::warn!(%peer, client, reason = close.reason.label(), "connection closed: {}", close.reason);
        }
        _ => {
            tracing::info!(%peer, client, reason = close.reason.label(), "connection closed: {}", close.reason);
        }
    }
}

/// Runs the connection until it closes; returns why.
async fn drive(
    stream: &TcpStream,
    conn: &mut Connection,
    limits: &ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) -> Close {
    let notify = Arc::new(NotifyWaker(Notify::new()));
    let waker = Waker::from(notify.clone());
    let mut waker_set = false;
    let connect_deadline =
        tokio::time::Instant::now() + Duration::from_secs(limits.connect_timeout_secs);
    let mut rx = BytesMut::new();
    loop {
        // Everything complete in the read buffer goes to the state machine.
        let mut handled = 0usize;
        // A client whose last message waits for room in subscribers' queues is not read
        // from until it has room (back-pressure, see halyard_core's `backpressure`).
        while !conn.is_blocked() {
            match decode(&mut rx, &conn.decode_options()) {
                Ok(Some(packet)) => {
                    handled += 1;
                    if let Err(close) = conn.handle_packet(Instant::now(), packet) {
                        return close;
                    }
                    if !waker_set && conn.is_active() {
                        conn.set_waker(waker.clone());
                        waker_set = true;
                    }
                }
                Ok(None) => break,
                Err(e) => return conn.handle_decode_error(Instant::now(), &e),
            }
        }
        if rx.is_empty() {
            rx = BytesMut::new();
        }
        if handled > 0 {
            // A busy publisher's socket is always readable, so without this its task would
            // keep its worker thread; the subscribers it just woke wait behind it (tokio runs
            // a woken task next on the same thread, and nothing else takes it from there).
            tokio::task::yield_now().await;
        }
        // Write, and refill from the session queue, until the socket is full or nothing is
        // left to send.
        loop {
            if try_write(stream, conn).is_err() {
                return conn.handle_connection_lost(Instant::now());
            }
            if !conn.wants_refill() {
                break;
            }
            if let Err(close) = conn.poll_deliveries(Instant::now()) {
                return close;
            }
            tokio::task::consume_budget().await;
        }
        conn.shrink_tx();

        let deadline = if conn.is_active() {
            let keep_alive = conn.keep_alive_deadline();
            let blocked = conn.blocked_deadline();
            match (keep_alive, blocked) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(tokio::time::Instant::from_std)
        } else {
            Some(connect_deadline)
        };
        let can_read = conn.tx().len() < TX_PAUSE_READING && !conn.is_blocked();
        let want_write = !conn.tx().is_empty();
        tokio::select! {
            biased;
            _ = shutdown.changed() => return conn.handle_shutdown(Instant::now()),
            _ = notify.0.notified() => {
                let now = Instant::now();
                if let Err(close) = conn.poll_deliveries(now).and_then(|()| conn.retry_blocked(now)) {
                    return close;
                }
            }
            r = stream.writable(), if want_write => {
                if r.is_err() {
                    return conn.handle_connection_lost(Instant::now());
                }
            }
            r = stream.readable(), if can_read => {
                if r.is_err() {
                    return conn.handle_connection_lost(Instant::now());
                }
                if rx.capacity() - rx.len() < READ_CHUNK / 4 {
                    rx.reserve(READ_CHUNK);
                }
                match stream.try_read_buf(&mut rx) {
                    Ok(0) => return conn.handle_connection_lost(Instant::now()),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return conn.handle_connection_lost(Instant::now()),
                }
            }
            _ = sleep_until(deadline) => {
                if !conn.is_active() {
                    // No CONNECT within limits.connect_timeout_secs: close without a word (section 3.1.4).
                    return Close { reason: CloseReason::ConnectionLost };
                }
                let now = Instant::now();
                if let Err(close) = conn.retry_blocked(now).and_then(|()| conn.handle_timeout(now)) {
                    return close;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Writes as much of the transmit buffer as the socket takes without waiting.
fn try_write(stream: &TcpStream, conn: &mut Connection) -> std::io::Result<()> {
    let tx = conn.tx();
    while !tx.is_empty() {
        match stream.try_write(tx) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => tx.advance(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends what is left (the last CONNACK or DISCONNECT) before the socket closes, giving a
/// client that does not read a short grace period.
async fn flush(stream: &TcpStream, conn: &mut Connection) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !conn.tx().is_empty() {
        if try_write(stream, conn).is_err() {
            return;
        }
        if conn.tx().is_empty() {
            break;
        }
        if tokio::time::timeout_at(deadline, stream.writable())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Closes our side and reads whatever the client still sends for a moment, so the kernel
/// ends the connection with FIN rather than a reset that could discard our last packet.
async fn linger(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    // On the heap: an array here would sit in every connection's task for its whole life.
    let mut sink = vec![0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}
