//! What store-wal's targets name beyond the shared store benchmarks:
//!
//! - `wal/delete_range/prefix_1000000`: compacting a 1,000,000-entry prefix
//!   (128-byte entries, default 64 MiB segments), the time of the call alone;
//! - `wal/open/1000000`: opening a store of 1,000,000 such entries (every
//!   segment is read and checked);
//! - `wal/get_log/sealed`: a random entry among the oldest half of 100,000,
//!   in segments the writer has left (4 MiB segments here, so there are many);
//! - `wal/get_log/recent`: a random entry among the newest 1,000 (in memory);
//! - `wal_steady/256x1024/…`: 256 × 1 KiB batches into a log in steady state,
//!   as on a node that snapshots: the front compacted to the newest 50,000
//!   entries whenever it passes 100,000 (so compacted segments' files are
//!   reused), beside the raw baselines measured in the same group —
//!   `raw-prealloc` overwriting a preallocated 256 MiB file in a ring and
//!   `raw-file` appending — each with one `fdatasync` per batch.
//!
//! `cargo bench -p benches --bench wal`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use raft_conformance::bench::{RawLog, batch, renumber};
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
    let dir = tempfile::tempdir().expect("tempdir");
    fill(&WalStore::open(dir.path()).expect("open"), 1_000_000, 10_000);
    group.bench_function("open/1000000", |b| {
        b.iter(|| {
            let store = WalStore::open(dir.path()).expect("open");
            assert_eq!(store.last_index().expect("last"), 1_000_000);
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

/// 256 × 1 KiB batches into a log that compacts as it goes.
fn steady(c: &mut Criterion) {
    const COUNT: usize = 256;
    const PAYLOAD: usize = 1024;
    let mut group = c.benchmark_group("wal_steady");
    group.sample_size(20).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Bytes((COUNT * PAYLOAD) as u64));
    let id = format!("{COUNT}x{PAYLOAD}");

    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open(dir.path()).expect("open");
    let mut logs = batch(1, COUNT, PAYLOAD);
    let mut next = 1;
    let mut append = |store: &WalStore| {
        renumber(&mut logs, next);
        store.store_logs(&logs).expect("store_logs");
        next += COUNT as u64;
        let first = store.first_index().expect("first");
        if next - first > 100_000 {
            store.delete_range(first, next - 50_001).expect("compact");
        }
    };
    // Into steady state first: segments are being reused.
    while store.stats().segments_reused < 2 {
        append(&store);
    }
    group.bench_function(BenchmarkId::new(&id, "wal"), |b| b.iter(|| append(&store)));
    drop(store);

    for name in ["raw-prealloc", "raw-file"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("raw.log");
        let mut raw = RawLog::baseline(name, &path).expect("raw file");
        let mut logs = batch(1, COUNT, PAYLOAD);
        let mut next = 1;
        group.bench_function(BenchmarkId::new(&id, name), |b| {
            b.iter(|| {
                renumber(&mut logs, next);
                raw.append(&logs).expect("append");
                next += COUNT as u64;
            })
        });
    }
    group.finish();
}

criterion_group!(benches, wal, steady);
criterion_main!(benches);
