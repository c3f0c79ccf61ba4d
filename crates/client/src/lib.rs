//! An async MQTT client on `halyard-codec` (never a second codec).
//!
//! This crate will own connecting, keep-alive, packet identifiers and acknowledgement flows for
//! the `halyard pub`, `halyard sub` and `halyard bench` commands and for tests. It must not
//! contain broker logic.
//!
//! Status: empty until the client/CLI issue lands.
