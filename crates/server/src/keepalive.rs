//! The keep-alive clock of parked connections, which have no task and no timer of their own.
//!
//! A wheel of [`TICK`]-long slots. Each slot is a doubly linked list threaded through the
//! connections' handles ([`WheelLink`]), so being on the wheel allocates nothing, and a
//! connection that closes leaves it at once. A handle is on the wheel at most once: a
//! keep-alive deadline only ever moves later, so a connection that parks again while its
//! entry is pending leaves that entry; when it fires, the woken connection checks its real
//! deadline and, if still alive, parks again with a new entry. Deadlines are rounded up to
//! the next tick, so nobody is woken early; the sweeper runs every tick, so a keep-alive
//! timeout is noticed at most about two ticks after it ran out.
//!
//! Lock order: the wheel's lock, then a handle's. A thread holds two handles' locks at once
//! only while it holds the wheel's (so only one thread can), and no thread waits for the
//! wheel's lock while it holds a handle's.

use crate::connection::ConnectionHandle;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Wake;
use std::time::{Duration, Instant};

/// How long one slot of the wheel lasts, and how often the sweeper runs.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// Slots on the wheel (about 100 s); a deadline further away goes round more than once.
const SLOTS: u32 = 2048;

/// A handle's place on the wheel, kept under the handle's lock and changed only under the
/// wheel's too.
#[derive(Default)]
pub(crate) struct WheelLink {
    next: Option<Arc<ConnectionHandle>>,
    /// `None` for the first in its slot.
    prev: Option<Weak<ConnectionHandle>>,
    /// The tick it is due at; 0: not on the wheel.
    at: u32,
}

impl WheelLink {
    pub(crate) fn is_linked(&self) -> bool {
        self.at != 0
    }
}

type Slots = Vec<Option<Arc<ConnectionHandle>>>;

pub(crate) struct KeepAliveWheel {
    epoch: Instant,
    slots: Mutex<Slots>,
}

impl std::fmt::Debug for KeepAliveWheel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAliveWheel").finish_non_exhaustive()
    }
}

fn index(at: u32) -> usize {
    (at % SLOTS) as usize
}

impl KeepAliveWheel {
    pub(crate) fn new() -> KeepAliveWheel {
        KeepAliveWheel {
            epoch: Instant::now(),
            slots: Mutex::new(vec![None; SLOTS as usize]),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whole ticks since the wheel started, at `t`.
    fn tick(&self, t: Instant) -> u32 {
        let since = t.saturating_duration_since(self.epoch);
        u32::try_from(since.as_millis() / TICK.as_millis()).unwrap_or(u32::MAX)
    }

    /// Links `handle`, whose (locked) link is `link`, first into the slot of tick `at`.
    /// The caller holds the wheel's lock (`slots`).
    fn link(slots: &mut Slots, handle: &Arc<ConnectionHandle>, link: &mut WheelLink, at: u32) {
        let Some(slot) = slots.get_mut(index(at)) else {
            return;
        };
        let old = slot.replace(handle.clone());
        if let Some(o) = &old {
            o.lock().wheel.prev = Some(Arc::downgrade(handle));
        }
        *link = WheelLink {
            next: old,
            prev: None,
            at,
        };
    }

    /// Puts a parked connection on the wheel for `deadline`, unless it is on it already or
    /// closed. Call without holding the handle's lock.
    pub(crate) fn insert(&self, handle: &Arc<ConnectionHandle>, deadline: Instant) {
        if handle.lock().wheel.is_linked() {
            // Its pending entry is due first (deadlines only move later).
            return;
        }
        // Rounded up (never early), and never 0.
        let at = self.tick(deadline).saturating_add(1);
        let mut slots = self.lock();
        let mut state = handle.lock();
        if state.wheel.is_linked() || state.is_closed() {
            return;
        }
        Self::link(&mut slots, handle, &mut state.wheel, at);
    }

    /// Takes a closing connection off the wheel. Call without holding the handle's lock.
    pub(crate) fn remove(&self, handle: &Arc<ConnectionHandle>) {
        let mut slots = self.lock();
        let (next, prev, at) = {
            let mut state = handle.lock();
            if !state.wheel.is_linked() {
                return;
            }
            let link = std::mem::take(&mut state.wheel);
            (link.next, link.prev.and_then(|p| p.upgrade()), link.at)
        };
        if let Some(n) = &next {
            n.lock().wheel.prev = prev.as_ref().map(Arc::downgrade);
        }
        match prev {
            Some(p) => p.lock().wheel.next = next,
            None => {
                if let Some(slot) = slots.get_mut(index(at)) {
                    *slot = next;
                }
            }
        }
    }

    /// Wakes the connections due by `now`, from tick `*next` on; advances `*next`.
    pub(crate) fn sweep(&self, next: &mut u32, now: Instant) {
        let now_tick = self.tick(now);
        let mut due = Vec::new();
        while *next <= now_tick {
            let t = *next;
            *next += 1;
            {
                let mut slots = self.lock();
                let mut head = slots.get_mut(index(t)).and_then(Option::take);
                while let Some(h) = head {
                    let mut state = h.lock();
                    head = state.wheel.next.take();
                    state.wheel.prev = None;
                    let at = state.wheel.at;
                    if at > now_tick {
                        // Due on a later turn of the wheel.
                        Self::link(&mut slots, &h, &mut state.wheel, at);
                    } else {
                        state.wheel.at = 0;
                        drop(state);
                        due.push(h);
                    }
                }
            }
            for h in due.drain(..) {
                h.wake_by_ref();
            }
        }
    }

    /// Connections on the wheel (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let slots = self.lock();
        let mut n = 0;
        for head in slots.iter() {
            let mut cur = head.clone();
            while let Some(h) = cur {
                n += 1;
                cur = h.lock().wheel.next.clone();
            }
        }
        n
    }

    /// Takes every handle off the wheel (at shutdown: the handles refer to the server).
    pub(crate) fn clear(&self) {
        let mut slots = self.lock();
        for slot in slots.iter_mut() {
            let mut head = slot.take();
            // One by one: dropping a long list at once would recurse through it.
            while let Some(h) = head {
                let mut state = h.lock();
                head = state.wheel.next.take();
                state.wheel = WheelLink::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::{Config, ListenerConfig, RunningServer};
    use bytes::BytesMut;
    use halyard_codec::{Connect, ConnectProperties, MqttString, Packet, ProtocolVersion};
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn server() -> RunningServer {
        let config = Config {
            listener: vec![ListenerConfig {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                max_connections: None,
                tls: None,
            }],
            ..Config::default()
        };
        crate::start(config).await.unwrap()
    }

    /// A 3.1.1 client with a 60 s keep-alive, past its CONNACK.
    async fn client(addr: SocketAddr, id: &str) -> TcpStream {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut buf = BytesMut::new();
        Packet::from(Connect {
            protocol: ProtocolVersion::V3_1_1,
            clean_start: true,
            keep_alive_secs: 60,
            properties: ConnectProperties::default(),
            client_id: MqttString::new(id).unwrap(),
            will: None,
            username: None,
            password: None,
        })
        .encode(ProtocolVersion::V3_1_1, &mut buf)
        .unwrap();
        s.write_all(&buf).await.unwrap();
        let mut connack = [0u8; 4];
        s.read_exact(&mut connack).await.unwrap();
        assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK, accepted");
        s
    }

    async fn wheel_len_becomes(server: &RunningServer, n: usize) {
        for _ in 0..200 {
            if server.shared.keep_alive.len() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{} connections on the wheel, not {n}",
            server.shared.keep_alive.len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parked_connections_are_on_the_wheel_once_and_leave_it_when_they_close() {
        let server = server().await;
        let addr = server.local_addrs()[0];
        let mut clients = Vec::new();
        for i in 0..50 {
            clients.push(client(addr, &format!("wheel-{i}")).await);
        }
        // Idle after CONNACK: each is parked, once on the wheel.
        wheel_len_becomes(&server, 50).await;
        // A PINGREQ wakes one; it answers, parks again, and is still on the wheel once.
        clients[0].write_all(&[0xC0, 0]).await.unwrap();
        let mut pingresp = [0u8; 2];
        clients[0].read_exact(&mut pingresp).await.unwrap();
        assert_eq!(pingresp, [0xD0, 0]);
        wheel_len_becomes(&server, 50).await;
        // Connections that close leave the wheel at once, not at their deadline.
        clients.truncate(20);
        wheel_len_becomes(&server, 20).await;
        drop(clients);
        wheel_len_becomes(&server, 0).await;
        server.shutdown().await;
    }
}
