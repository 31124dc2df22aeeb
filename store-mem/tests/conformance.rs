//! The in-memory stores pass every conformance case that applies to stores
//! that do not survive a restart (the reopen cases are reported as ignored).

use raft_conformance::{log_store_suite, snapshot_store_suite, stable_store_suite};
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};

log_store_suite!(MemLogStore::new());
stable_store_suite!(MemStableStore::new());
snapshot_store_suite!(InmemSnapshotStore::new());

/// The shared-state form (`Arc`) used by tests that restart nodes passes too.
mod shared {
    use super::*;
    use std::sync::Arc;

    log_store_suite!(Arc::new(MemLogStore::new()), reopen = |store| store);
    stable_store_suite!(Arc::new(MemStableStore::new()), reopen = |store| store);
    snapshot_store_suite!(InmemSnapshotStore::new(), reopen = |store| store);
}
