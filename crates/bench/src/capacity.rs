//! Connection capacity: open many idle MQTT connections at a chosen rate, hold them, and
//! report how fast they were accepted, how many failed, and how much resident memory the
//! broker grew by per connection.

use crate::conn::MqttConn;
use crate::sys::{own_cpu_time, rss_bytes};
use halyard_codec::{Packet, ProtocolVersion};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A connection-capacity run.
#[derive(Debug, Clone)]
pub struct CapacityConfig {
    /// The broker.
    pub target: SocketAddr,
    /// Protocol level.
    pub version: ProtocolVersion,
    /// Connections to open.
    pub connections: usize,
    /// Connections opened per second, or `None` for as fast as the broker accepts them.
    pub rate: Option<f64>,
    /// Connection attempts under way at once.
    pub concurrency: usize,
    /// Local addresses to connect from, in turn (e.g. 127.0.0.1, 127.0.0.2, ...), so that
    /// more connections fit than one address has ports; empty: the system's choice.
    pub sources: Vec<IpAddr>,
    /// The keep-alive each connection asks for, seconds (0: off).
    pub keep_alive_secs: u16,
    /// How long to hold the connections once open (memory is measured at the end).
    pub hold: Duration,
    /// The broker's process id, to read its resident memory.
    pub broker_pid: Option<u32>,
    /// Print progress to stderr.
    pub progress: bool,
}

/// What a capacity run measured.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    /// Connections that got a successful CONNACK.
    pub connected: usize,
    /// Attempts that failed.
    pub failed: usize,
    /// Seconds from the first attempt to the last CONNACK.
    pub connect_secs: f64,
    /// Successful connections per second.
    pub connect_rate: f64,
    /// Broker resident memory before, bytes (if its pid was given).
    pub broker_rss_before: Option<u64>,
    /// Broker resident memory with every connection open.
    pub broker_rss_after: Option<u64>,
    /// Growth per open connection, bytes.
    pub bytes_per_connection: Option<f64>,
    /// The generator's own CPU use over the connect phase (1.0 = one core).
    pub generator_cpu: f64,
}

impl CapacityReport {
    /// One line for people.
    pub fn human(&self) -> String {
        let mem = match self.bytes_per_connection {
            Some(b) => format!(", broker memory {b:.0} B per connection"),
            None => String::new(),
        };
        format!(
            "connections: {} open, {} failed, {:.0} connects/s over {:.2}s{}, generator cpu {:.0}%",
            self.connected,
            self.failed,
            self.connect_rate,
            self.connect_secs,
            mem,
            self.generator_cpu * 100.0
        )
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Opens, holds and closes the connections; reports what happened.
pub async fn run_capacity(cfg: CapacityConfig) -> std::io::Result<CapacityReport> {
    let rss_before = cfg.broker_pid.and_then(rss_bytes);
    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let cpu_before = own_cpu_time();
    let start = Instant::now();
    let run = std::process::id();
    let mut tasks = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        if let Some(rate) = cfg.rate {
            tokio::time::sleep_until((start + Duration::from_secs_f64(i as f64 / rate)).into())
                .await;
        }
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(std::io::Error::other)?;
        let source = (!cfg.sources.is_empty())
            .then(|| cfg.sources.get(i % cfg.sources.len()))
            .flatten()
            .copied();
        let (target, version, keep_alive) = (cfg.target, cfg.version, cfg.keep_alive_secs);
        tasks.push(tokio::spawn(async move {
            let c = MqttConn::connect(
                target,
                source,
                &format!("hb-{run}-c{i}"),
                version,
                keep_alive,
            )
            .await;
            drop(permit);
            c.map(|c| (c, Instant::now()))
        }));
        if cfg.progress && i > 0 && i % 5000 == 0 {
            eprintln!(
                "[{:>5.1}s] {i} connection attempts",
                start.elapsed().as_secs_f64()
            );
        }
    }
    let mut open = Vec::with_capacity(cfg.connections);
    let mut failed = 0;
    let mut last = start;
    for t in tasks {
        match t.await {
            Ok(Ok((c, at))) => {
                last = last.max(at);
                open.push(c);
            }
            _ => failed += 1,
        }
    }
    let cpu = own_cpu_time().saturating_sub(cpu_before);
    let connect_secs = last.duration_since(start).as_secs_f64().max(1e-9);
    hold(&mut open, cfg.hold, cfg.keep_alive_secs).await;
    let rss_after = cfg.broker_pid.and_then(rss_bytes);
    let connected = open.len();
    drop(open);
    let bytes_per_connection = match (rss_before, rss_after) {
        (Some(b), Some(a)) if connected > 0 => Some((a as f64 - b as f64) / connected as f64),
        _ => None,
    };
    Ok(CapacityReport {
        connected,
        failed,
        connect_secs,
        connect_rate: connected as f64 / connect_secs,
        broker_rss_before: rss_before,
        broker_rss_after: rss_after,
        bytes_per_connection,
        generator_cpu: cpu.as_secs_f64() / connect_secs,
    })
}

/// Holds the connections for `hold`, sending each a PINGREQ every half keep-alive so that
/// the broker keeps them however long the hold.
async fn hold(open: &mut [MqttConn], hold: Duration, keep_alive_secs: u16) {
    let end = Instant::now() + hold;
    let every = Duration::from_secs(u64::from(keep_alive_secs)) / 2;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        if every.is_zero() || left <= every {
            tokio::time::sleep(left).await;
            return;
        }
        tokio::time::sleep(every).await;
        for c in open.iter_mut() {
            // A connection the broker closed meanwhile shows as failed elsewhere; here it
            // simply gets no ping.
            if c.queue(&Packet::PingReq).is_ok() {
                let _ = c.try_flush();
            }
            // The PINGRESPs (2 bytes each) stay unread in the socket buffers.
        }
    }
}
