//! What store-wal's targets name beyond the shared store benchmarks:
//!
//! - `wal/delete_range/prefix_1000000`: compacting a 1,000,000-entry prefix
//!   (128-byte entries, default 64 MiB segments), the time of the call alone;
//! - `wal/get_log/sealed`: a random entry among the oldest half of 100,000,
//!   in segments the writer has left (4 MiB segments here, so there are many);
//! - `wal/get_log/recent`: a random entry among the newest 1,000 (in memory).
//!
//! `cargo bench -p benches --bench wal`

use criterion::{Criterion, criterion_group, criterion_main};
use raft_conformance::bench::batch;
use raft_core::LogStore;
use rand::Rng;
use std::time::{Duration, Instant};
use store_wal::{WalOptions, WalStore};

fn fill(store: &WalStore, count: u64, per_batch: usize) {
    for first in (1..=count).step_by(per_batch) {
        let n = per_batch.min((count - first + 1) as usize);
        store.store_logs(&batch(first, n, 128)).expect("fill");
    }
}

fn wal(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_millis(100));
    group.bench_function("delete_range/prefix_1000000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = WalStore::open(dir.path()).expect("open");
                fill(&store, 1_000_100, 10_000);
                let began = Instant::now();
                store.delete_range(0, 1_000_000).expect("delete_range");
                total += began.elapsed();
                assert_eq!(store.first_index().expect("first"), 1_000_001);
            }
            total
        })
    });
    group.finish();

    let mut group = c.benchmark_group("wal");
    group.sample_size(30).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), WalOptions::default().segment_size(4 << 20)).expect("open");
    fill(&store, 100_000, 1000);
    assert!(store.segment_count() > 2, "{} segments", store.segment_count());
    let mut rng = rand::rng();
    group.bench_function("get_log/sealed", |b| {
        b.iter(|| store.get_log(rng.random_range(1..=50_000)).expect("get_log"))
    });
    group.bench_function("get_log/recent", |b| {
        b.iter(|| store.get_log(rng.random_range(99_001..=100_000)).expect("get_log"))
    });
    group.finish();
}

criterion_group!(benches, wal);
criterion_main!(benches);
