//! LmdbStore passes the log and stable store suites, including every reopen case.

use raft_conformance::{Guarded, log_store_suite, stable_store_suite};
use store_lmdb::LmdbStore;
use tempfile::TempDir;

fn fresh() -> Guarded<LmdbStore, TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LmdbStore::open(dir.path()).expect("open");
    Guarded { store, guard: dir }
}

fn reopen(old: Guarded<LmdbStore, TempDir>) -> Guarded<LmdbStore, TempDir> {
    let Guarded { store, guard } = old;
    drop(store);
    Guarded { store: LmdbStore::open(guard.path()).expect("reopen"), guard }
}

log_store_suite!(fresh(), reopen = reopen);
stable_store_suite!(fresh(), reopen = reopen);
