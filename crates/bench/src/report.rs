//! The result of a throughput or latency run: one human-readable line and one JSON line.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Latency {
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Latency {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64 / 1000.0,
        }
    }
}

/// What one throughput or latency run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name, e.g. "fan-in".
    pub scenario: String,
    /// QoS of publishing and subscribing.
    pub qos: u8,
    /// Publishers, subscribers.
    pub publishers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// Payload bytes per message.
    pub payload_bytes: usize,
    /// In-flight window per publisher (QoS 1 and 2).
    pub window: usize,
    /// Seconds publishers published for.
    pub publish_secs: f64,
    /// Messages published (acknowledged, for QoS 1 and 2).
    pub published: u64,
    /// Messages the subscribers were due (published times the subscribers each reaches).
    pub expected: u64,
    /// Distinct messages received while publishers were publishing.
    pub received_during: u64,
    /// Distinct messages received in all.
    pub received: u64,
    /// Messages never received.
    pub lost: u64,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Publish rate, messages per second.
    pub publish_rate: f64,
    /// Deliveries per second while publishing: what counts.
    pub delivery_rate: f64,
    /// Seconds after publishing ended until the last message arrived.
    pub drain_secs: f64,
    /// End-to-end latency of every delivery.
    pub latency: Latency,
    /// The generator's own CPU use over the run (1.0 = one core busy).
    pub generator_cpu: f64,
    /// Subscribers that never read (not counted in `subscribers`).
    pub stuck: usize,
    /// Broker resident memory when publishing started (if its pid was given), bytes.
    pub broker_rss_before: Option<u64>,
    /// The most broker resident memory seen while publishing.
    pub broker_rss_peak: Option<u64>,
}

impl Report {
    /// One line for people.
    pub fn human(&self) -> String {
        format!(
            "{} qos{} {}x{} {}B: published {} ({:.0}/s), delivered while publishing {:.0}/s, \
             received {}/{} (lost {}, dup {}), drain {:.2}s, latency p50 {:.2} ms p99 {:.2} ms \
             max {:.2} ms, generator cpu {:.0}%",
            self.scenario,
            self.qos,
            self.publishers,
            self.subscribers,
            self.payload_bytes,
            self.published,
            self.publish_rate,
            self.delivery_rate,
            self.received,
            self.expected,
            self.lost,
            self.duplicates,
            self.drain_secs,
            self.latency.p50_us / 1000.0,
            self.latency.p99_us / 1000.0,
            self.latency.max_us / 1000.0,
            self.generator_cpu * 100.0,
        ) + &self.extras()
    }

    /// The optional parts of the human line.
    fn extras(&self) -> String {
        let mut s = String::new();
        if self.stuck > 0 {
            s += &format!(", {} stuck subscriber(s)", self.stuck);
        }
        if let (Some(before), Some(peak)) = (self.broker_rss_before, self.broker_rss_peak) {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            s += &format!(
                ", broker rss {:.1} -> peak {:.1} MiB",
                mib(before),
                mib(peak)
            );
        }
        s
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
