//! The broker as a sans-I/O state machine.
//!
//! This crate will own the per-client `Session` (packet identifiers, in-flight windows, receive
//! maximum, topic aliases, keep-alive deadlines, the will), the shared `Router` (subscription
//! trie, shared subscriptions, retained store, session registry), the authentication and ACL
//! traits and the `Store` trait.
//!
//! It must not do I/O, spawn tasks, read the clock or depend on tokio: time comes in as `now`
//! and every decision comes out as an action for the network shell to carry out.
//!
//! Status: empty until the broker issue lands.
