//! Implementations of the `Store` trait defined in `halyard-core`.
//!
//! This crate will own the in-memory store, the durable embedded store (redb) with its group
//! commit, and a fault-injecting wrapper for tests. It must not make protocol decisions: it
//! persists and loads what the core hands it, and after an I/O error it fails fast rather than
//! pretend a message is durable.
//!
//! Status: empty until the durability issue lands.
