//! The `halyard` binary: `halyard serve | pub | sub | ...`.
//!
//! This crate will own command-line parsing, configuration loading and error reporting to the
//! user (the only place `anyhow` may live). It must not contain protocol or broker logic: it
//! wires `halyard-server` and `halyard-client` together.
//!
//! Status: the commands arrive with the broker issue; until then it only reports its version.

fn main() {
    println!(
        "halyard {}: the broker commands are not built yet",
        env!("CARGO_PKG_VERSION")
    );
}
