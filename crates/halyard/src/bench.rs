//! `halyard bench`: the load generator's command line (the scenarios live in
//! `halyard-bench`).

use anyhow::Context;
use halyard_bench::{CapacityConfig, Shape, ThroughputConfig, resolve_target};
use halyard_codec::{ProtocolVersion, QoS};
use std::net::IpAddr;
use std::time::Duration;

/// Options of `halyard bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    scenario: Scenario,
    /// The broker, ADDR:PORT (loopback only, unless --allow-remote).
    #[arg(long, short = 't', default_value = "127.0.0.1:1883")]
    target: String,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    allow_remote: bool,
    /// MQTT protocol level.
    #[arg(long = "mqtt", value_enum, default_value_t = Level::V311)]
    level: Level,
    /// Publishers (fan-in), subscribers (fan-out), pairs (p2p); default 10, 100, 100, 1.
    #[arg(long, short = 'n')]
    clients: Option<usize>,
    /// QoS of publishing and subscribing.
    #[arg(long, short = 'q', default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Unacknowledged QoS 1/2 messages per publisher.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Payload size in bytes (at least 20).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Seconds of publishing.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Messages per second per publisher (latency: default 10000); default: as fast as
    /// possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds subscribers wait for stragglers after publishing.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
    /// Extra subscribers that subscribe like the first one and then never read (throughput
    /// scenarios): do they slow the others down, and does the broker's memory stay bounded?
    #[arg(long, default_value_t = 0)]
    stuck: usize,
    /// Connections to open (connections scenario).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Connections per second (connections scenario); default: as fast as accepted.
    #[arg(long)]
    connect_rate: Option<f64>,
    /// Connect from 127.0.0.1 .. 127.0.0.N in turn (connections scenario).
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Keep-alive each connection asks for, seconds; 0 turns it off (connections scenario).
    #[arg(long, default_value_t = 60)]
    keep_alive: u16,
    /// Seconds to hold the connections open (connections scenario).
    #[arg(long, default_value_t = 2.0)]
    hold: f64,
    /// The broker's process id, to report its memory (per connection; peak while publishing).
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Print progress every second.
    #[arg(long)]
    progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// N publishers, one wildcard subscriber.
    FanIn,
    /// One publisher, N subscribers.
    FanOut,
    /// N publisher/subscriber pairs.
    P2p,
    /// One pair at a fixed rate: latency percentiles.
    Latency,
    /// N idle connections: connect rate, failures, broker memory per connection.
    Connections,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Level {
    #[value(name = "3.1.1")]
    V311,
    #[value(name = "5")]
    V5,
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let target = resolve_target(&args.target, args.allow_remote).map_err(anyhow::Error::msg)?;
    let version = match args.level {
        Level::V311 => ProtocolVersion::V3_1_1,
        Level::V5 => ProtocolVersion::V5,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if args.scenario == Scenario::Connections {
        let sources = (1..=args.sources.max(1))
            .map(|i| IpAddr::from([127, 0, 0, i]))
            .collect();
        let cfg = CapacityConfig {
            target,
            version,
            connections: args.connections,
            rate: args.connect_rate,
            concurrency: 256,
            sources: if args.sources > 1 {
                sources
            } else {
                Vec::new()
            },
            keep_alive_secs: args.keep_alive,
            hold: Duration::from_secs_f64(args.hold),
            broker_pid: args.broker_pid,
            progress: args.progress,
        };
        let report = runtime.block_on(halyard_bench::run_capacity(cfg))?;
        return print_lines(&report.human(), &report.json());
    }
    let (shape, default_clients, name) = match args.scenario {
        Scenario::FanIn => (Shape::FanIn, 10, "fan-in"),
        Scenario::FanOut => (Shape::FanOut, 100, "fan-out"),
        Scenario::P2p => (Shape::PointToPoint, 100, "p2p"),
        _ => (Shape::PointToPoint, 1, "latency"),
    };
    let rate = match args.scenario {
        Scenario::Latency => Some(args.rate.unwrap_or(10_000.0)),
        _ => args.rate,
    };
    let cfg = ThroughputConfig {
        target,
        version,
        shape,
        clients: args.clients.unwrap_or(default_clients),
        qos: QoS::from_bits(args.qos).context("QoS must be 0, 1 or 2")?,
        window: args.window,
        payload_bytes: args.payload,
        duration: Duration::from_secs_f64(args.duration),
        rate,
        drain: Duration::from_secs_f64(args.drain),
        stuck: args.stuck,
        broker_pid: args.broker_pid,
        progress: args.progress,
        name: name.to_string(),
    };
    let report = runtime.block_on(halyard_bench::run_throughput(cfg))?;
    print_lines(&report.human(), &report.json())
}

/// The human line, then the JSON line; a closed stdout (`| head -1`) is not an error.
fn print_lines(human: &str, json: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{human}").and_then(|()| writeln!(out, "{json}")) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
