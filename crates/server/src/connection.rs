//! A connection: bytes between its socket and its state machine, time and wake-ups into it.
//!
//! A connection runs as a task only while it has work. When it has been idle (connected,
//! nothing to write, nothing half-read, not waiting for room to publish) for
//! [`PARK_AFTER`], the task ends and the connection is *parked* in its [`ConnectionHandle`]:
//! the socket and the `halyard_core::Connection`, no task, no buffers, no timer. The handle
//! is the waker the socket's readiness, the session's queue, the keep-alive wheel and
//! shutdown wake; the first wake-up spawns a task again. This keeps an idle connection to its socket
//! registration, its state and its session (docs/performance.md has the figures).
//!
//! While it runs, the task reads only when the socket is readable and the transmit buffer
//! is small (a client that does not read its acknowledgements is slowed by TCP, not buffered
//! without bound), writes whatever the state machine queued, and sleeps until the keep-alive
//! or CONNECT deadline.

use crate::keepalive::WheelLink;
use crate::shared::Shared;
use crate::transport::Transport;
use bytes::{Buf, BytesMut};
use halyard_codec::ReasonCode;
use halyard_codec::decode;
use halyard_core::{
    AuthDecision, ClientCertificate, Close, CloseReason, Connection, Held, Limit, VerifyRequest,
};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// How much room to make before a read, once reads fill what they are given.
const READ_CHUNK: usize = 16 * 1024;
/// How much room to make before a read otherwise: a connection that sends a packet now and
/// then (a CONNECT, a PINGREQ) need not take 16 KiB for it, even briefly, since thousands of
/// them doing so at once is megabytes.
const SMALL_READ: usize = 1024;
/// How long a connection stays idle before its task parks it. Parking and being woken
/// costs a task spawn; a connection that is busy in bursts should not pay it between bursts
/// (QoS 1 fan-in: about 850-950k msgs/s with this, 550-630k parking at once).
const PARK_AFTER: Duration = Duration::from_millis(10);
/// Stop reading while this much is waiting to be written.
const TX_PAUSE_READING: usize = 256 * 1024;
/// A read buffer holding more than this of an unfinished packet is charged to the broker's
/// memory ceiling: thousands of clients each sending half of a large packet, slowly, must
/// not grow the broker without bound. Smaller buffers are the ordinary cost of a connection.
const CHARGE_READ_BUFFER_OVER: usize = 64 * 1024;

/// What a parked connection keeps: its transport (the socket) and its state machine.
struct Parked {
    stream: Transport,
    conn: Connection,
}

enum Slot {
    /// A task runs the connection; `woken` records a wake-up it has not seen yet, `task` is
    /// its waker while it waits.
    Running { woken: bool, task: Option<Waker> },
    /// No task: the first wake-up spawns one.
    Parked(Parked),
    /// The connection is over.
    Closed,
}

/// The one handle of a connection, shared by whatever may wake it.
pub(crate) struct ConnectionHandle {
    shared: Arc<Shared>,
    state: Mutex<HandleState>,
    /// The index of the listener that accepted it (for its connection count).
    listener: u16,
}

pub(crate) struct HandleState {
    slot: Slot,
    /// The keep-alive wheel's link (see `keepalive`).
    pub(crate) wheel: WheelLink,
}

impl HandleState {
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.slot, Slot::Closed)
    }
}

impl ConnectionHandle {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HandleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ready once a wake-up came since the last call (for the running task).
    fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        match &mut state.slot {
            Slot::Running { woken, task } => {
                if std::mem::take(woken) {
                    *task = None;
                    Poll::Ready(())
                } else {
                    if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                        *task = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
            _ => Poll::Pending,
        }
    }

    /// Parks an idle connection unless something is already waiting for it; gives it back
    /// to keep running in that case.
    fn try_park(self: &Arc<Self>, mut parked: Parked) -> Option<Parked> {
        parked.conn.park();
        let keep_alive = parked.conn.keep_alive_deadline();
        // Ask for the socket's next readiness on this handle's waker; data that is already
        // there means no parking.
        let waker = Waker::from(self.clone());
        if parked
            .stream
            .poll_read_ready(&mut Context::from_waker(&waker))
            .is_ready()
        {
            return Some(parked);
        }
        let mut state = self.lock();
        match &mut state.slot {
            Slot::Running { woken: true, .. } => {
                // Woken since the task last looked: keep running.
                state.slot = Slot::Running {
                    woken: false,
                    task: None,
                };
                Some(parked)
            }
            _ => {
                state.slot = Slot::Parked(parked);
                drop(state);
                // Woken meanwhile or not, the entry is right: a woken connection that parks
                // again finds it there, and one that closes takes it off.
                if let Some(deadline) = keep_alive {
                    self.shared.keep_alive.insert(self, deadline);
                }
                None
            }
        }
    }

    fn close(self: &Arc<Self>) {
        let linked = {
            let mut state = self.lock();
            state.slot = Slot::Closed;
            state.wheel.is_linked()
        };
        if linked {
            self.shared.keep_alive.remove(self);
        }
        self.shared.connection_closed(usize::from(self.listener));
    }
}

impl Wake for ConnectionHandle {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.lock();
        match &mut state.slot {
            Slot::Running { woken, task } => {
                *woken = true;
                let task = task.take();
                drop(state);
                if let Some(t) = task {
                    t.wake();
                }
            }
            Slot::Parked(_) => {
                let Slot::Parked(parked) = std::mem::replace(
                    &mut state.slot,
                    Slot::Running {
                        woken: false,
                        task: None,
                    },
                ) else {
                    return;
                };
                drop(state);
                self.shared.runtime.spawn(run(self.clone(), parked));
            }
            Slot::Closed => {}
        }
    }
}

/// Starts serving a new connection (with the client's verified TLS certificate, if any).
pub(crate) fn start(
    shared: Arc<Shared>,
    stream: Transport,
    peer: SocketAddr,
    listener: u16,
    certificate: Option<ClientCertificate>,
) {
    tracing::debug!(%peer, "connection accepted");
    let mut conn = Connection::new(shared.broker.clone(), Instant::now());
    if let Some(certificate) = certificate {
        conn.set_client_certificate(certificate);
    }
    let handle = Arc::new(ConnectionHandle {
        shared: shared.clone(),
        state: Mutex::new(HandleState {
            slot: Slot::Running {
                woken: false,
                task: None,
            },
            wheel: WheelLink::default(),
        }),
        listener,
    });
    shared.runtime.spawn(run(handle, Parked { stream, conn }));
}

/// Runs the connection until it parks or closes.
async fn run(handle: Arc<ConnectionHandle>, mut p: Parked) {
    let close = loop {
        match drive(&mut p.stream, &mut p.conn, &handle).await {
            Step::Park => match handle.try_park(p) {
                None => return,
                Some(back) => p = back,
            },
            Step::Close(close) => break close,
        }
    };
    flush(&mut p.stream, &mut p.conn).await;
    let Parked { stream, conn } = p;
    // Not kept while parked (it would cost every idle connection 32 bytes); a connection
    // already reset by its peer has none to give.
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "-".to_owned(), |a| a.to_string());
    stream.close().await;
    let client = conn.client_id().unwrap_or("-");
    let username = conn.username();
    let user = username.as_deref().unwrap_or("-");
    match &close.reason {
        CloseReason::ProtocolViolation(..)
        | CloseReason::SlowConsumer
        | CloseReason::MemoryLimit => {
            tracing::warn!(%peer, client, user, reason = close.reason.label(), "connection closed: {}", close.reason);
        }
        _ => {
            tracing::info!(%peer, client, user, reason = close.reason.label(), "connection closed: {}", close.reason);
        }
    }
    drop(conn);
    handle.close();
}

/// How a run of the connection ended.
enum Step {
    /// Nothing to do: park until woken.
    Park,
    /// Over, for this reason.
    Close(Close),
}

/// Runs the connection until it closes (returns why) or has nothing to do.
async fn drive(
    stream: &mut Transport,
    conn: &mut Connection,
    handle: &Arc<ConnectionHandle>,
) -> Step {
    let shared = &handle.shared;
    let mut shutdown = shared.shutdown.clone();
    let mut waker_set = conn.is_active();
    let connect_deadline =
        tokio::time::Instant::now() + Duration::from_secs(shared.limits.connect_timeout_secs);
    let mut rx = BytesMut::new();
    // The read buffer's charge on the memory ceiling (see CHARGE_READ_BUFFER_OVER).
    let mut rx_charge = Held::none();
    // A slow authentication check under way for this connection's CONNECT.
    let mut verifying: Option<VerifyTask> = None;
    // The user name of that check (for the failed-authentication brake).
    let mut verify_user: Option<String> = None;
    // Whether the last read filled the room it had (then the next gets a full chunk).
    let mut busy = false;
    // Since when the connection has had nothing to do.
    let mut idle_since: Option<Instant> = None;
    if conn.is_active() {
        // Back from parking: whatever woke it (the socket, the session's queue, the
        // keep-alive schedule) is looked at once without waiting.
        let now = Instant::now();
        if let Err(close) = conn
            .poll_deliveries(now)
            .and_then(|()| conn.handle_timeout(now))
        {
            return Step::Close(close);
        }
        if read_available(stream, &mut rx, &mut busy).is_err() {
            return Step::Close(conn.handle_connection_lost(Instant::now()));
        }
    }
    loop {
        if shared.is_shutting_down() {
            return Step::Close(conn.handle_shutdown(Instant::now()));
        }
        // Everything complete in the read buffer goes to the state machine.
        let mut handled = 0usize;
        // A client whose last message waits for room in subscribers' queues is not read
        // from until it has room (back-pressure, see halyard_core's `backpressure`).
        while !conn.is_blocked() && !conn.is_verifying() {
            match decode(&mut rx, &conn.decode_options()) {
                Ok(Some(packet)) => {
                    handled += 1;
                    if let Err(close) = conn.handle_packet(Instant::now(), packet) {
                        note_auth_failure(shared, stream, &close, None);
                        return Step::Close(close);
                    }
                    if !waker_set && conn.is_active() {
                        conn.set_waker(Waker::from(handle.clone()));
                        waker_set = true;
                    }
                }
                Ok(None) => break,
                Err(e) => return Step::Close(conn.handle_decode_error(Instant::now(), &e)),
            }
        }
        if rx.is_empty() {
            rx = BytesMut::new();
        }
        if !charge_read_buffer(shared, &rx, &mut rx_charge) {
            return Step::Close(conn.handle_memory_limit(Instant::now()));
        }
        if let Some(request) = conn.poll_verify() {
            // An address that keeps failing waits longer for each check (its own wait:
            // nobody else's CONNECT is slowed).
            verify_user = request.username.as_ref().map(|u| u.as_str().to_owned());
            let user = verify_user.as_deref().unwrap_or("");
            let delay = stream.peer_addr().map_or(Duration::ZERO, |a| {
                shared.auth_failures.delay(a.ip(), user, Instant::now())
            });
            verifying = Some(VerifyTask(start_verify(shared, request, delay)));
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
                return Step::Close(conn.handle_connection_lost(Instant::now()));
            }
            if !conn.wants_refill() {
                break;
            }
            if let Err(close) = conn.poll_deliveries(Instant::now()) {
                return Step::Close(close);
            }
            tokio::task::consume_budget().await;
        }
        conn.shrink_tx();
        // Idle: park once it has stayed idle for PARK_AFTER.
        let park_at = if rx.is_empty() && conn.is_idle() && !stream.wants_write() {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= PARK_AFTER {
                return Step::Park;
            }
            Some(since + PARK_AFTER)
        } else {
            idle_since = None;
            None
        };

        let deadline = if conn.is_active() {
            [conn.keep_alive_deadline(), conn.blocked_deadline(), park_at]
                .into_iter()
                .flatten()
                .min()
                .map(tokio::time::Instant::from_std)
        } else {
            Some(connect_deadline)
        };
        let can_read =
            conn.tx().len() < TX_PAUSE_READING && !conn.is_blocked() && !conn.is_verifying();
        let want_write = !conn.tx().is_empty() || stream.wants_write();
        let timer_fired = tokio::select! {
            biased;
            _ = shutdown.changed() => return Step::Close(conn.handle_shutdown(Instant::now())),
            decision = poll_verified(&mut verifying), if verifying.is_some() => {
                verifying = None;
                if let Err(close) = conn.handle_verified(Instant::now(), decision) {
                    note_auth_failure(shared, stream, &close, verify_user.as_deref());
                    return Step::Close(close);
                }
                if !waker_set && conn.is_active() {
                    conn.set_waker(Waker::from(handle.clone()));
                    waker_set = true;
                }
                false
            }
            () = poll_fn(|cx| handle.poll_woken(cx)) => {
                let now = Instant::now();
                if let Err(close) = conn.poll_deliveries(now).and_then(|()| conn.retry_blocked(now)) {
                    return Step::Close(close);
                }
                false
            }
            r = stream.writable(), if want_write => {
                if r.is_err() {
                    return Step::Close(conn.handle_connection_lost(Instant::now()));
                }
                false
            }
            r = stream.readable(), if can_read => {
                if r.is_err() {
                    return Step::Close(conn.handle_connection_lost(Instant::now()));
                }
                if read_available(stream, &mut rx, &mut busy).is_err() {
                    return Step::Close(conn.handle_connection_lost(Instant::now()));
                }
                false
            }
            _ = sleep_until(deadline) => {
                if !conn.is_active() {
                    // No CONNECT within limits.connect_timeout_secs: close without a word (section 3.1.4).
                    return Step::Close(Close { reason: CloseReason::ConnectionLost });
                }
                let now = Instant::now();
                if let Err(close) = conn.retry_blocked(now).and_then(|()| conn.handle_timeout(now)) {
                    return Step::Close(close);
                }
                true
            }
        };
        if !timer_fired {
            // Something happened: the idle time starts again.
            idle_since = None;
        }
    }
}

/// A check under way for a connection; ended with it (a connection that closes, timed out
/// or gone, must not leave its check queued for the blocking pool).
struct VerifyTask(tokio::task::JoinHandle<AuthDecision>);

impl Drop for VerifyTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts a CONNECT refused for its credentials (bad user name or password, or none where
/// they are required) against the client's address (and user name): the failed-
/// authentication brake of `admission::AuthFailures`.
fn note_auth_failure(shared: &Shared, stream: &Transport, close: &Close, user: Option<&str>) {
    let CloseReason::ConnectRefused(rc) = close.reason else {
        return;
    };
    if !matches!(
        rc,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD | ReasonCode::NOT_AUTHORIZED
    ) {
        return;
    }
    shared.broker.stats().limit_hit(Limit::AuthFailures);
    if let Ok(addr) = stream.peer_addr() {
        shared.auth_failures.record(addr.ip(), user, Instant::now());
    }
}

/// Runs the slow authentication check of a CONNECT (`Authenticator::verify`: a password
/// hash, say) on tokio's blocking threads, at most [`Shared::verify_permits`] at once, so
/// neither this connection's task nor anyone else's waits on it.
fn start_verify(
    shared: &Arc<Shared>,
    request: VerifyRequest,
    delay: Duration,
) -> tokio::task::JoinHandle<AuthDecision> {
    let authenticator = shared.broker.authenticator_handle();
    let permits = shared.verify_permits.clone();
    shared.runtime.spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let Ok(_permit) = permits.acquire_owned().await else {
            return AuthDecision::Deny(ReasonCode::SERVER_UNAVAILABLE);
        };
        tokio::task::spawn_blocking(move || authenticator.verify(&request))
            .await
            .unwrap_or(AuthDecision::Deny(ReasonCode::SERVER_UNAVAILABLE))
    })
}

/// The answer of the check under way (a check that failed to run refuses).
async fn poll_verified(verifying: &mut Option<VerifyTask>) -> AuthDecision {
    match verifying {
        Some(task) => (&mut task.0)
            .await
            .unwrap_or(AuthDecision::Deny(ReasonCode::SERVER_UNAVAILABLE)),
        None => std::future::pending().await,
    }
}

/// Keeps the read buffer's charge on the memory ceiling equal to its capacity while it
/// holds more than [`CHARGE_READ_BUFFER_OVER`] of an unfinished packet, and none otherwise.
/// Returns false if growing the charge would pass the ceiling: the connection must close.
fn charge_read_buffer(shared: &Shared, rx: &BytesMut, charge: &mut Held) -> bool {
    if rx.len() <= CHARGE_READ_BUFFER_OVER {
        if charge.is_charged() {
            *charge = Held::none();
        }
        return true;
    }
    let want = rx.capacity();
    let have = charge.bytes();
    if want == have {
        return true;
    }
    if want > have && !shared.broker.memory_available(want - have) {
        return false;
    }
    *charge = shared.broker.stats().charge(want);
    true
}

/// Reads what the socket has without waiting; fails when it is closed or broken. `busy`
/// says whether the previous read filled its room, and is updated.
fn read_available(
    stream: &mut Transport,
    rx: &mut BytesMut,
    busy: &mut bool,
) -> std::io::Result<()> {
    let chunk = if *busy { READ_CHUNK } else { SMALL_READ };
    if rx.capacity() - rx.len() < chunk / 4 {
        rx.reserve(chunk);
    }
    let room = rx.capacity() - rx.len();
    match stream.try_read_buf(rx) {
        Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        Ok(n) => {
            *busy = n == room;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Writes as much of the transmit buffer as the socket takes without waiting.
fn try_write(stream: &mut Transport, conn: &mut Connection) -> std::io::Result<()> {
    match stream.try_flush() {
        Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return Err(e),
        _ => {}
    }
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
async fn flush(stream: &mut Transport, conn: &mut Connection) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !conn.tx().is_empty() || stream.wants_write() {
        if try_write(stream, conn).is_err() {
            return;
        }
        if conn.tx().is_empty() && !stream.wants_write() {
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

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    /// What the two reference counts of an `Arc` add to its value.
    const ARC_HEADER: usize = 2 * size_of::<usize>();

    /// An idle connection costs its handle, its session, tokio's registration of its socket
    /// (256 bytes) and a registry entry. The first two are ours: each must stay within one
    /// 256-byte allocation, or the broker misses its 1 KB per idle connection
    /// (docs/performance.md).
    #[test]
    fn an_idle_connections_handle_and_session_fit_in_256_bytes_each() {
        assert!(
            size_of::<super::ConnectionHandle>() + ARC_HEADER <= 256,
            "handle: {} bytes",
            size_of::<super::ConnectionHandle>()
        );
        assert!(
            size_of::<halyard_core::Session>() + ARC_HEADER <= 256,
            "session: {} bytes",
            size_of::<halyard_core::Session>()
        );
    }
}
