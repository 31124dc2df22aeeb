//! Store benchmarks: every built-in store against the raw-file baselines,
//! through the same harness users point at their own stores
//! (`raft_conformance::bench`):
//!
//! - `store_logs/<store>/<batch>x<payload>`: one batch per iteration
//!   (throughput in bytes; entries/s follow from the batch size);
//! - `reads/get_log/<store>`: a random index among 100,000 stored entries
//!   (`get_log_recent`: among the last 1,000; `get_logs_1000`: 1,000 in a row);
//! - `delete_range/front_10000/<store>`: 10,000 entries from the front;
//! - `stable/set_u64/<store>` and `get_u64`.
//!
//! One store alone: `cargo bench -p benches --bench stores -- lmdb`.

use criterion::{Criterion, criterion_group, criterion_main};
use raft_conformance::bench::{BenchStore, raw_file_baseline, store_benches};
use std::sync::Arc;
use store_lmdb::LmdbStore;
use store_mem::{MemLogStore, MemStableStore};
use store_redb::RedbStore;
use store_wal::WalStore;

fn stores(c: &mut Criterion) {
    raw_file_baseline(c);
    store_benches(c, "mem", || BenchStore::new(MemLogStore::new(), MemStableStore::new()));
    store_benches(c, "lmdb", || {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LmdbStore::open(dir.path()).expect("lmdb"));
        BenchStore::new(store.clone(), store).keeping(dir)
    });
    store_benches(c, "redb", || {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(RedbStore::open(dir.path().join("raft.redb")).expect("redb"));
        BenchStore::new(store.clone(), store).keeping(dir)
    });
    store_benches(c, "wal", || {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(WalStore::open(dir.path()).expect("wal"));
        BenchStore::new(store.clone(), store).keeping(dir)
    });
}

criterion_group!(benches, stores);
criterion_main!(benches);
