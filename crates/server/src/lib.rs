//! The tokio shell around `halyard-core`.
//!
//! This crate will own the listeners (TCP, TLS, WebSocket), one task per connection with its
//! socket and buffers, the storage task, metrics, `$SYS` topics, graceful shutdown and reload.
//! It must not make protocol decisions: those belong to `halyard-core`; the shell only moves
//! bytes, time and actions between the socket and the state machines.
//!
//! Status: empty until the broker issue lands.
