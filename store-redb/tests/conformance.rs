//! RedbStore passes the log and stable store suites, including every reopen case.

use raft_conformance::{Guarded, log_store_suite, stable_store_suite};
use store_redb::RedbStore;
use tempfile::TempDir;

fn fresh() -> Guarded<RedbStore, TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(dir.path().join("raft.redb")).expect("open");
    Guarded { store, guard: dir }
}

fn reopen(old: Guarded<RedbStore, TempDir>) -> Guarded<RedbStore, TempDir> {
    let Guarded { store, guard } = old;
    drop(store);
    Guarded { store: RedbStore::open(guard.path().join("raft.redb")).expect("reopen"), guard }
}

log_store_suite!(fresh(), reopen = reopen);
stable_store_suite!(fresh(), reopen = reopen);
