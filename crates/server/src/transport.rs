//! The transport seam: how a connection's bytes reach its socket.
//!
//! A [`Transport`] is what a connection reads MQTT bytes from and writes them to, without
//! waiting (`try_read_buf`, `try_write`), and what tells it when to try again
//! (`readable`, `writable`, `poll_read_ready` for parking). Plain TCP passes straight
//! through to the socket. TLS (rustls) sits between: reads decrypt what the socket has,
//! writes encrypt into records and send what the socket takes.
//!
//! What the seam owns, and the connection must not assume:
//! - **Readiness is the transport's, not the socket's.** TLS may hold decrypted plaintext
//!   (or whole records) that the socket will never signal again; `readable` and
//!   `poll_read_ready` are ready while it does, so a connection never parks or waits with
//!   input already inside the transport (no lost wake-up).
//! - **Bytes written may not have left.** TLS keeps encrypted records the socket did not
//!   take; [`Transport::wants_write`] says so, and the connection keeps writing (and does
//!   not park) until it is false.
//! - **Closing** sends what the protocol needs (TLS close_notify), then ends the socket.
//!
//! The TLS handshake is not here: it runs in `tls` before the connection starts, under the
//! CONNECT timeout. WebSocket framing (a later issue) will be a third variant.

use bytes::BytesMut;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// Most plaintext one `try_read_buf` takes out of TLS before returning (the caller decodes
/// it, then reads again): a fast sender cannot grow the read buffer without bound.
const TLS_READ_MAX: usize = 64 * 1024;

/// A connection's byte stream.
pub(crate) enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large, and plain connections must not carry
    /// its size).
    Tls(Box<TlsTransport>),
}

/// TLS over a TCP socket, after the handshake.
pub(crate) struct TlsTransport {
    tcp: TcpStream,
    tls: rustls::ServerConnection,
    /// rustls holds plaintext not yet read (the socket's readiness does not show it).
    pending: bool,
    /// The socket has ended (read returned 0), or the peer sent close_notify.
    eof: bool,
}

impl Transport {
    /// A TLS transport from a finished handshake.
    pub(crate) fn tls(tcp: TcpStream, tls: rustls::ServerConnection) -> Transport {
        Transport::Tls(Box::new(TlsTransport {
            tcp,
            tls,
            pending: true,
            eof: false,
        }))
    }

    /// Reads what is available into `rx` without waiting: `Ok(0)` at the end of the
    /// stream, `WouldBlock` when there is nothing yet.
    pub(crate) fn try_read_buf(&mut self, rx: &mut BytesMut) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.try_read_buf(rx),
            Transport::Tls(t) => t.try_read_buf(rx),
        }
    }

    /// Writes as much of `buf` as goes without waiting; `WouldBlock` if nothing did.
    pub(crate) fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.try_write(buf),
            Transport::Tls(t) => t.try_write(buf),
        }
    }

    /// Whether bytes accepted by `try_write` still wait to go out (TLS records the socket
    /// did not take). Plain TCP never holds any.
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Transport::Tcp(_) => false,
            Transport::Tls(t) => t.tls.wants_write(),
        }
    }

    /// Sends what the transport holds (TLS records) without waiting.
    pub(crate) fn try_flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Tcp(_) => Ok(()),
            Transport::Tls(t) => t.flush_records(),
        }
    }

    /// Ready when a read may find something: input held inside the transport, or the
    /// socket's readiness (registered on `cx`'s waker, as for parking).
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Tcp(s) => s.poll_read_ready(cx),
            Transport::Tls(t) if t.pending => Poll::Ready(Ok(())),
            Transport::Tls(t) => t.tcp.poll_read_ready(cx),
        }
    }

    /// Waits until a read may find something (see `poll_read_ready`).
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.readable().await,
            Transport::Tls(t) if t.pending => Ok(()),
            Transport::Tls(t) => t.tcp.readable().await,
        }
    }

    /// Waits until the socket may take more.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.tcp().writable().await
    }

    /// The peer's address.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Tcp(s) => s,
            Transport::Tls(t) => &t.tcp,
        }
    }

    /// Ends the stream: TLS sends close_notify; then our side of the socket is shut and
    /// whatever the client still sends is read and dropped for a moment, so the kernel ends
    /// the connection with FIN rather than a reset that could discard our last packet.
    pub(crate) async fn close(self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = match self {
            Transport::Tcp(s) => s,
            Transport::Tls(mut t) => {
                t.tls.send_close_notify();
                let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
                while t.tls.wants_write() {
                    match t.flush_records() {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if tokio::time::timeout_at(deadline, t.tcp.writable())
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
                t.tcp
            }
        };
        if tcp.shutdown().await.is_err() {
            return;
        }
        // On the heap: an array here would sit in every connection's task for its whole life.
        let mut sink = vec![0u8; 512];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tcp.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }
}

impl TlsTransport {
    fn try_read_buf(&mut self, rx: &mut BytesMut) -> io::Result<usize> {
        let mut total = 0;
        loop {
            // Plaintext rustls already holds goes first.
            let n = self.read_plaintext(rx)?;
            total += n;
            if total >= TLS_READ_MAX {
                // More may wait inside rustls: readiness must say so.
                self.pending = true;
                return Ok(total);
            }
            if self.eof {
                self.pending = false;
                return Ok(total);
            }
            match self.tls.read_tls(&mut SocketIo(&self.tcp)) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The socket is drained (and its readiness cleared); decrypt what came.
                    self.process()?;
                    total += self.read_plaintext(rx)?;
                    self.pending = false;
                    return if total > 0 { Ok(total) } else { Err(e) };
                }
                Err(e) => return Err(e),
            }
            self.process()?;
        }
    }

    /// Decrypts the records read so far; a TLS error sends its alert and fails the read.
    fn process(&mut self) -> io::Result<()> {
        match self.tls.process_new_packets() {
            Ok(state) => {
                if state.peer_has_closed() {
                    self.eof = true;
                }
                // Handshake messages after the handshake (key updates, tickets) may need
                // an answer; the connection sends it with its next write.
                Ok(())
            }
            Err(e) => {
                let _ = self.flush_records();
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    /// Moves the plaintext rustls holds into `rx`; `Ok(0)` when it holds none.
    fn read_plaintext(&mut self, rx: &mut BytesMut) -> io::Result<usize> {
        let mut total = 0;
        loop {
            if rx.capacity() - rx.len() < 1024 {
                rx.reserve(4096);
            }
            // rustls reads into initialized memory: zero at most one record's worth.
            let room = (rx.capacity() - rx.len()).min(16 * 1024);
            let start = rx.len();
            rx.resize(start + room, 0);
            let Some(buf) = rx.get_mut(start..) else {
                rx.truncate(start);
                return Ok(total);
            };
            match self.tls.reader().read(buf) {
                Ok(n) => {
                    rx.truncate(start + n);
                    total += n;
                    if n == 0 {
                        // close_notify received: nothing more will come.
                        self.eof = true;
                        return Ok(total);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    rx.truncate(start);
                    return Ok(total);
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // The socket ended without close_notify: the end of the stream all the same.
                    rx.truncate(start);
                    self.eof = true;
                    return Ok(total);
                }
                Err(e) => {
                    rx.truncate(start);
                    return Err(e);
                }
            }
        }
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Records still waiting go first; if the socket takes none, nothing new is taken.
        self.flush_records()?;
        let n = self.tls.writer().write(buf)?;
        match self.flush_records() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Sends the encrypted records rustls holds until the socket takes no more
    /// (`WouldBlock`) or none are left.
    fn flush_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut SocketIo(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The socket as rustls' `Read` and `Write`, without waiting (`WouldBlock` when not ready,
/// which also clears tokio's readiness for it).
struct SocketIo<'a>(&'a TcpStream);

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
