//! Throughput and latency scenarios: publishers and subscribers on raw connections, in the
//! shapes of fan-in, fan-out and point-to-point, at QoS 0, 1 or 2, flat out or at a fixed
//! rate.
//!
//! Each publisher runs open loop: it keeps its write buffer full (QoS 0) or its in-flight
//! window full (QoS 1 and 2), so only TCP back-pressure and the broker's acknowledgements
//! slow it. Messages are built from one encoded template, with the sequence number, send
//! time and packet identifier patched in, so the generator spends its time on the socket.

use crate::conn::MqttConn;
use crate::payload::{HEADER, Seen, read_header, write_header};
use crate::report::{Latency, Report};
use crate::sys::{own_cpu_time, rss_bytes};
use bytes::{Bytes, BytesMut};
use halyard_codec::{Ack, Packet, ProtocolVersion, Publish, QoS, TopicName};
use hdrhistogram::Histogram;
use std::io::{Error, ErrorKind, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The keep-alive every connection of a run asks for. Some brokers (rumqttd) refuse 0;
/// subscribers send nothing while they receive QoS 0, so a run must end within 1.5 times
/// this (the generator sends no PINGREQ).
const KEEP_ALIVE_SECS: u16 = 600;

/// How publishers and subscribers are wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// N publishers, each to its own topic, and one subscriber to a wildcard over all.
    FanIn,
    /// One publisher and N subscribers to its topic.
    FanOut,
    /// N pairs, each publisher to its own topic with its own subscriber.
    PointToPoint,
}

/// A throughput or latency run.
#[derive(Debug, Clone)]
pub struct ThroughputConfig {
    /// The broker.
    pub target: SocketAddr,
    /// Protocol level of every connection.
    pub version: ProtocolVersion,
    /// The wiring.
    pub shape: Shape,
    /// Publishers (fan-in), subscribers (fan-out) or pairs (point-to-point).
    pub clients: usize,
    /// QoS of publishing and subscribing.
    pub qos: QoS,
    /// Unacknowledged QoS 1/2 messages per publisher.
    pub window: usize,
    /// Payload size in bytes (at least 20).
    pub payload_bytes: usize,
    /// How long publishers publish.
    pub duration: Duration,
    /// Messages per second per publisher, or `None` for as fast as possible.
    pub rate: Option<f64>,
    /// How long subscribers wait for stragglers after publishing ended.
    pub drain: Duration,
    /// Extra subscribers (to the first subscriber's filter) that subscribe and then never
    /// read: the others' rate shows whether they slow anyone down.
    pub stuck: usize,
    /// The broker's process id, to report how its resident memory grew over the run.
    pub broker_pid: Option<u32>,
    /// Print progress to stderr every second.
    pub progress: bool,
    /// Scenario name for the report.
    pub name: String,
}

/// Counters shared by the tasks of one run, read by the progress printer.
#[derive(Default)]
struct Shared {
    published: AtomicU64,
    received: AtomicU64,
}

struct SubResult {
    seen: Seen,
    during: u64,
    histogram: Histogram<u64>,
    last_at: Option<Instant>,
}

fn histogram() -> Result<Histogram<u64>> {
    // 1 µs to 100 s, 3 significant digits, in nanoseconds.
    Histogram::new_with_bounds(1_000, 100_000_000_000, 3).map_err(|e| Error::other(e.to_string()))
}

fn topics(cfg: &ThroughputConfig, run: &str) -> (Vec<String>, Vec<String>) {
    let t = |i: usize| format!("hb/{run}/{i}");
    match cfg.shape {
        Shape::FanIn => (
            (0..cfg.clients).map(t).collect(),
            vec![format!("hb/{run}/+")],
        ),
        Shape::FanOut => (vec![t(0)], vec![t(0); cfg.clients]),
        Shape::PointToPoint => {
            let all: Vec<String> = (0..cfg.clients).map(t).collect();
            (all.clone(), all)
        }
    }
}

/// Runs one throughput or latency scenario against the broker.
pub async fn run_throughput(cfg: ThroughputConfig) -> Result<Report> {
    if cfg.payload_bytes < HEADER {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("payload must be at least {HEADER} bytes"),
        ));
    }
    let run = format!(
        "{:x}",
        std::process::id() ^ Instant::now().elapsed().subsec_nanos()
    );
    let (pub_topics, sub_filters) = topics(&cfg, &run);
    let shared = Arc::new(Shared::default());
    let base = Instant::now();
    let (done_tx, done_rx) = watch::channel(false);

    let (target, version) = (cfg.target, cfg.version);
    let connect = |id: String| async move {
        MqttConn::connect(target, None, &id, version, KEEP_ALIVE_SECS).await
    };
    // Subscribers first, each subscribed before any message is published.
    let mut subs = Vec::new();
    for (i, filter) in sub_filters.iter().enumerate() {
        let mut c = connect(format!("hb-{run}-s{i}")).await?;
        c.subscribe(filter, cfg.qos).await?;
        subs.push(c);
    }
    // Held, never read from, until the run ends.
    let mut stuck = Vec::new();
    if let Some(filter) = sub_filters.first() {
        for i in 0..cfg.stuck {
            let mut c = connect(format!("hb-{run}-x{i}")).await?;
            c.subscribe(filter, cfg.qos).await?;
            stuck.push(c);
        }
    }
    let mut pubs = Vec::new();
    for i in 0..pub_topics.len() {
        pubs.push(connect(format!("hb-{run}-p{i}")).await?);
    }

    let cpu_before = own_cpu_time();
    let start = Instant::now();
    let stop_at = start + cfg.duration;
    let mut sub_tasks = Vec::new();
    for c in subs {
        let (shared, done) = (shared.clone(), done_rx.clone());
        sub_tasks.push(tokio::spawn(subscriber(
            c, base, stop_at, cfg.drain, shared, done,
        )));
    }
    let mut pub_tasks = Vec::new();
    for (i, (c, topic)) in pubs.into_iter().zip(&pub_topics).enumerate() {
        let p = PublisherSpec {
            id: u32::try_from(i).unwrap_or(u32::MAX),
            topic: topic.clone(),
            qos: cfg.qos,
            window: cfg.window.max(1),
            payload_bytes: cfg.payload_bytes,
            rate: cfg.rate,
        };
        pub_tasks.push(tokio::spawn(publisher(
            c,
            p,
            base,
            start,
            stop_at,
            shared.clone(),
        )));
    }
    let progress = cfg
        .progress
        .then(|| tokio::spawn(print_progress(shared.clone(), start)));
    let rss_before = cfg.broker_pid.and_then(rss_bytes);
    let rss_sampler = cfg
        .broker_pid
        .map(|pid| tokio::spawn(peak_rss(pid, stop_at)));

    let mut published_each = Vec::new();
    for t in pub_tasks {
        published_each.push(t.await.map_err(Error::other)??);
    }
    let publish_secs = cfg.duration.as_secs_f64();
    let _ = done_tx.send(true);
    let mut results = Vec::new();
    for t in sub_tasks {
        results.push(t.await.map_err(Error::other)??);
    }
    if let Some(p) = progress {
        p.abort();
    }
    let rss_peak = match rss_sampler {
        Some(t) => t.await.map_err(Error::other)?,
        None => None,
    };
    drop(stuck);
    let cpu = own_cpu_time().saturating_sub(cpu_before);
    let elapsed = start.elapsed();

    let published: u64 = published_each.iter().sum();
    let expected = match cfg.shape {
        Shape::FanIn | Shape::PointToPoint => published,
        Shape::FanOut => published * cfg.clients as u64,
    };
    let mut hist = histogram()?;
    let (mut received, mut during, mut dups) = (0, 0, 0);
    let mut last = stop_at;
    for r in &results {
        received += r.seen.unique;
        dups += r.seen.duplicates;
        during += r.during;
        let _ = hist.add(&r.histogram);
        if let Some(t) = r.last_at {
            last = last.max(t);
        }
    }
    Ok(Report {
        scenario: cfg.name.clone(),
        qos: cfg.qos.as_u8(),
        publishers: pub_topics.len(),
        subscribers: results.len(),
        payload_bytes: cfg.payload_bytes,
        window: cfg.window,
        publish_secs,
        published,
        expected,
        received_during: during,
        received,
        lost: expected.saturating_sub(received),
        duplicates: dups,
        publish_rate: published as f64 / publish_secs,
        delivery_rate: during as f64 / publish_secs,
        drain_secs: last.saturating_duration_since(stop_at).as_secs_f64(),
        latency: Latency::from_histogram(&hist),
        generator_cpu: cpu.as_secs_f64() / elapsed.as_secs_f64(),
        stuck: cfg.stuck,
        broker_rss_before: rss_before,
        broker_rss_peak: rss_peak,
    })
}

/// The largest resident memory of process `pid` seen until `until`, sampled every 100 ms.
async fn peak_rss(pid: u32, until: Instant) -> Option<u64> {
    let mut peak = rss_bytes(pid);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < until {
        tick.tick().await;
        peak = peak.max(rss_bytes(pid));
    }
    peak
}

async fn print_progress(shared: Arc<Shared>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        eprintln!(
            "[{:>3.0}s] published {} received {}",
            start.elapsed().as_secs_f64(),
            shared.published.load(Ordering::Relaxed),
            shared.received.load(Ordering::Relaxed)
        );
    }
}

struct PublisherSpec {
    id: u32,
    topic: String,
    qos: QoS,
    window: usize,
    payload_bytes: usize,
    rate: Option<f64>,
}

/// One encoded PUBLISH to copy and patch for every message.
struct Template {
    bytes: Vec<u8>,
    payload_at: usize,
    packet_id_at: Option<usize>,
}

impl Template {
    fn new(p: &PublisherSpec, version: ProtocolVersion) -> Result<Template> {
        let topic = TopicName::new(&p.topic)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()))?;
        let mut publish = Publish::new(topic, Bytes::from(vec![0u8; p.payload_bytes]));
        publish.qos = p.qos;
        publish.packet_id = (p.qos != QoS::AtMostOnce)
            .then(|| halyard_codec::PacketId::new(1))
            .flatten();
        let mut buf = BytesMut::new();
        Packet::Publish(publish)
            .encode(version, &mut buf)
            .map_err(Error::other)?;
        let payload_at = buf.len() - p.payload_bytes;
        // The packet identifier sits just before the payload, or before the (empty, one
        // byte) property block on MQTT 5.
        let props = usize::from(version.is_v5());
        let packet_id_at = (p.qos != QoS::AtMostOnce).then(|| payload_at - props - 2);
        Ok(Template {
            bytes: buf.to_vec(),
            payload_at,
            packet_id_at,
        })
    }

    fn append(&self, tx: &mut BytesMut, publisher: u32, seq: u64, sent_ns: u64, packet_id: u16) {
        let at = tx.len();
        tx.extend_from_slice(&self.bytes);
        if let Some(msg) = tx.get_mut(at..) {
            if let Some(p) = self.packet_id_at.and_then(|i| msg.get_mut(i..i + 2)) {
                p.copy_from_slice(&packet_id.to_be_bytes());
            }
            if let Some(payload) = msg.get_mut(self.payload_at..) {
                write_header(payload, publisher, seq, sent_ns);
            }
        }
    }
}

const TX_BATCH: usize = 64 * 1024;

/// Publishes until `stop_at`, then waits (briefly) for outstanding acknowledgements; returns
/// how many messages it published.
async fn publisher(
    mut c: MqttConn,
    p: PublisherSpec,
    base: Instant,
    start: Instant,
    stop_at: Instant,
    shared: Arc<Shared>,
) -> Result<u64> {
    let template = Template::new(&p, c.version)?;
    let mut seq: u64 = 0;
    let mut inflight: usize = 0;
    let mut packet_id: u16 = 0;
    let grace = stop_at + Duration::from_secs(10);
    tokio::time::sleep_until(start.into()).await;
    loop {
        let now = Instant::now();
        if now >= stop_at && (inflight == 0 || now >= grace) {
            break;
        }
        let due = match p.rate {
            Some(r) => ((now.saturating_duration_since(start)).as_secs_f64() * r) as u64 + 1,
            None => u64::MAX,
        };
        let sent_ns = now.duration_since(base).as_nanos() as u64;
        let mut added = 0u64;
        while now < stop_at
            && seq < due
            && c.tx.len() < TX_BATCH
            && (p.qos == QoS::AtMostOnce || inflight < p.window)
        {
            if p.qos != QoS::AtMostOnce {
                packet_id = packet_id.wrapping_add(1).max(1);
                inflight += 1;
            }
            template.append(&mut c.tx, p.id, seq, sent_ns, packet_id);
            seq += 1;
            added += 1;
        }
        if added > 0 && p.qos == QoS::AtMostOnce {
            shared.published.fetch_add(added, Ordering::Relaxed);
        }
        c.try_flush()?;
        let next_due = p
            .rate
            .map(|r| start + Duration::from_secs_f64(seq as f64 / r));
        let wake = next_due
            .filter(|_| seq >= due)
            .unwrap_or(stop_at)
            .min(stop_at)
            .max(now);
        let want_write = !c.tx.is_empty();
        // Paced: until the next message is due. Flat out: until publishing ends, then until
        // the grace period for outstanding acknowledgements ends.
        let sleep_deadline = match (p.rate, now < stop_at) {
            (Some(_), _) => wake,
            (None, true) => stop_at,
            (None, false) => grace,
        };
        let can_add = p.rate.is_none()
            && (p.qos == QoS::AtMostOnce || inflight < p.window)
            && c.tx.len() < TX_BATCH
            && now < stop_at;
        if can_add && !want_write {
            // Room for more and nothing waiting: go round again at once (after yielding).
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            r = c.stream.readable() => {
                r?;
                if !c.try_fill()? {
                    return Err(ErrorKind::UnexpectedEof.into());
                }
                while let Some(packet) = c.next_packet()? {
                    match packet {
                        Packet::PubAck(_) | Packet::PubComp(_) => {
                            inflight = inflight.saturating_sub(1);
                            shared.published.fetch_add(1, Ordering::Relaxed);
                        }
                        Packet::PubRec(a) => c.queue(&Packet::PubRel(Ack::new(a.packet_id)))?,
                        _ => {}
                    }
                }
            }
            r = c.stream.writable(), if want_write => r?,
            _ = tokio::time::sleep_until(sleep_deadline.into()) => {}
        }
    }
    // What is still buffered was counted as published (QoS 0) or is in the window: send it.
    c.queue(&Packet::Disconnect(Default::default()))?;
    let _ = c.flush().await;
    // For QoS 1 and 2 only acknowledged messages count as published.
    Ok(if p.qos == QoS::AtMostOnce {
        seq
    } else {
        seq - inflight as u64
    })
}

/// Receives until publishers are done and nothing more arrives for `drain`.
async fn subscriber(
    mut c: MqttConn,
    base: Instant,
    stop_at: Instant,
    drain: Duration,
    shared: Arc<Shared>,
    mut done: watch::Receiver<bool>,
) -> Result<SubResult> {
    let mut r = SubResult {
        seen: Seen::default(),
        during: 0,
        histogram: histogram()?,
        last_at: None,
    };
    let mut publishers_done = false;
    let mut idle_since = Instant::now();
    loop {
        if publishers_done && idle_since.elapsed() >= drain {
            break;
        }
        tokio::select! {
            res = c.stream.readable() => {
                res?;
                if !c.try_fill()? {
                    return Err(ErrorKind::UnexpectedEof.into());
                }
                let now = Instant::now();
                let now_ns = now.duration_since(base).as_nanos() as u64;
                let mut got = 0;
                while let Some(packet) = c.next_packet()? {
                    match packet {
                        Packet::Publish(m) => {
                            if let Some((publisher, seq, sent)) = read_header(&m.payload)
                                && r.seen.mark(publisher, seq)
                            {
                                got += 1;
                                if now <= stop_at {
                                    r.during += 1;
                                }
                                let _ = r.histogram.record(now_ns.saturating_sub(sent).max(1_000));
                            }
                            if let Some(id) = m.packet_id {
                                if m.qos == QoS::AtLeastOnce {
                                    c.queue(&Packet::PubAck(Ack::new(id)))?;
                                } else {
                                    c.queue(&Packet::PubRec(Ack::new(id)))?;
                                }
                            }
                        }
                        Packet::PubRel(a) => c.queue(&Packet::PubComp(Ack::new(a.packet_id)))?,
                        _ => {}
                    }
                }
                if got > 0 {
                    shared.received.fetch_add(got, Ordering::Relaxed);
                    r.last_at = Some(now);
                    idle_since = now;
                }
                c.try_flush()?;
            }
            r = c.stream.writable(), if !c.tx.is_empty() => {
                r?;
                c.try_flush()?;
            }
            _ = done.changed(), if !publishers_done => {
                publishers_done = true;
                idle_since = idle_since.max(Instant::now());
            }
            _ = tokio::time::sleep(drain), if publishers_done => {}
        }
    }
    c.queue(&Packet::Disconnect(Default::default()))?;
    let _ = c.flush().await;
    Ok(r)
}
