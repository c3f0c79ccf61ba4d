//! The broker itself, not only the codec: several simulated clients feed arbitrary
//! sequences of valid and invalid packets, garbage, lost connections and time passing into
//! the core state machines, and the broker's invariants are checked after every step (no
//! panic; every session within its budgets; the trie, the retained tree and the registry
//! agree). The driver is `halyard_core::simulation`, which the property tests run too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    halyard_core::simulation::run(data);
});
