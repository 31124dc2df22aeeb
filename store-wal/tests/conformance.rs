//! WalStore passes the log and stable store suites, including every reopen
//! case, with small segments so that the suites cross segment boundaries.

use raft_conformance::{Guarded, log_store_suite, stable_store_suite};
use store_wal::{WalOptions, WalStore};
use tempfile::TempDir;

fn options() -> WalOptions {
    WalOptions::default().segment_size(64 << 10).cache_entries(16)
}

fn fresh() -> Guarded<WalStore, TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), options()).expect("open");
    Guarded { store, guard: dir }
}

fn reopen(old: Guarded<WalStore, TempDir>) -> Guarded<WalStore, TempDir> {
    let Guarded { store, guard } = old;
    drop(store);
    Guarded { store: WalStore::open_with(guard.path(), options()).expect("reopen"), guard }
}

log_store_suite!(fresh(), reopen = reopen);
stable_store_suite!(fresh(), reopen = reopen);
