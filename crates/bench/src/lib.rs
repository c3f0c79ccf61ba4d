//! Halyard's MQTT load generator, usable against any broker (`halyard bench ...`).
//!
//! This crate owns the scenarios (fan-in, fan-out, point-to-point and fixed-rate latency at
//! QoS 0, 1 or 2 with a chosen in-flight window; and connection capacity), the raw MQTT
//! connections they drive (on `halyard-codec`, never a second codec), and the report: rates,
//! loss and duplicates, latency percentiles from an HDR histogram, and the generator's own
//! CPU use. It does not start brokers or pin CPUs: `scripts/bench-compare` does that.
//!
//! A rate counts only what subscribers received while publishers were still publishing; what
//! arrives later is reported separately, as is every message lost or duplicated.
//!
//! Targets must be loopback addresses unless the caller explicitly allows others, so that a
//! test or a mistyped address never sends load to another machine.

mod capacity;
mod conn;
mod payload;
mod report;
mod sys;
mod throughput;

pub use capacity::{CapacityConfig, CapacityReport, run_capacity};
pub use report::Report;
pub use throughput::{Shape, ThroughputConfig, run_throughput};

use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `host:port` and checks that it is a loopback address, unless `allow_remote`.
pub fn resolve_target(target: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target} resolves to no address"))?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "{addr} is not a loopback address; the load generator only targets this machine \
             unless --allow-remote is given"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_targets_are_refused_unless_allowed() {
        assert!(resolve_target("127.0.0.1:1883", false).is_ok());
        assert!(resolve_target("[::1]:1883", false).is_ok());
        let err = resolve_target("192.0.2.1:1883", false).unwrap_err();
        assert!(err.contains("not a loopback"), "{err}");
        assert!(resolve_target("192.0.2.1:1883", true).is_ok());
    }
}
