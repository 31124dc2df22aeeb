//! Store benchmarks: every store against a raw-file baseline.
//!
//! - `store_logs/<store>/<batch>x<payload>`: one batch per iteration
//!   (throughput in bytes; entries/s follow from the batch size);
//! - `get_log/<store>`: a random index among 100,000 stored entries;
//! - `get_logs/<store>`: 1,000 consecutive entries;
//! - `delete_range/<store>`: 10,000 entries from the front;
//! - `stable/<store>/set_u64` and `get_u64`.

use benches::entries::{batch, renumber};
use benches::raw::RawLog;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use raft_core::{LogStore, StableStore};
use rand::Rng;
use std::time::{Duration, Instant};
use store_lmdb::LmdbStore;
use store_mem::{MemLogStore, MemStableStore};
use store_redb::RedbStore;
use tempfile::TempDir;

/// A store under test and the directory it lives in.
struct Subject {
    name: &'static str,
    logs: Box<dyn LogStore>,
    stable: Box<dyn StableStore>,
    _dir: TempDir,
}

fn subjects() -> Vec<Subject> {
    let mem_dir = tempfile::tempdir().expect("tempdir");
    let lmdb_dir = tempfile::tempdir().expect("tempdir");
    let redb_dir = tempfile::tempdir().expect("tempdir");
    let lmdb = std::sync::Arc::new(LmdbStore::open(lmdb_dir.path()).expect("lmdb"));
    let redb = std::sync::Arc::new(RedbStore::open(redb_dir.path().join("raft.redb")).expect("redb"));
    vec![
        Subject {
            name: "mem",
            logs: Box::new(MemLogStore::new()),
            stable: Box::new(MemStableStore::new()),
            _dir: mem_dir,
        },
        Subject { name: "lmdb", logs: Box::new(lmdb.clone()), stable: Box::new(lmdb), _dir: lmdb_dir },
        Subject { name: "redb", logs: Box::new(redb.clone()), stable: Box::new(redb), _dir: redb_dir },
    ]
}

const BATCHES: [usize; 3] = [1, 16, 256];
const PAYLOADS: [usize; 3] = [128, 1024, 16 * 1024];

fn store_logs(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_logs");
    group.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    for count in BATCHES {
        for payload in PAYLOADS {
            let id = format!("{count}x{payload}");
            group.throughput(Throughput::Bytes((count * payload) as u64));
            let dir = tempfile::tempdir().expect("tempdir");
            let mut raw = RawLog::create(&dir.path().join("raw.log")).expect("raw file");
            let mut logs = batch(1, count, payload);
            let mut next = 1;
            group.bench_function(BenchmarkId::new("raw-file", &id), |b| {
                b.iter(|| {
                    renumber(&mut logs, next);
                    raw.append(&logs).expect("append");
                    next += count as u64;
                })
            });
            for subject in subjects() {
                let mut next = 1;
                group.bench_function(BenchmarkId::new(subject.name, &id), |b| {
                    b.iter(|| {
                        renumber(&mut logs, next);
                        subject.logs.store_logs(&logs).expect("store_logs");
                        next += count as u64;
                    })
                });
            }
        }
    }
    group.finish();
}

fn filled(subject: &Subject, count: u64) {
    for first in (1..=count).step_by(1000) {
        subject.logs.store_logs(&batch(first, 1000.min((count - first + 1) as usize), 128)).expect("fill");
    }
}

fn reads(c: &mut Criterion) {
    let mut group = c.benchmark_group("reads");
    group.sample_size(30).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    for subject in subjects() {
        filled(&subject, 100_000);
        let mut rng = rand::rng();
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("get_log", subject.name), |b| {
            b.iter(|| subject.logs.get_log(rng.random_range(1..=100_000)).expect("get_log"))
        });
        group.bench_function(BenchmarkId::new("get_log_recent", subject.name), |b| {
            b.iter(|| subject.logs.get_log(rng.random_range(99_000..=100_000)).expect("get_log"))
        });
        group.throughput(Throughput::Elements(1000));
        group.bench_function(BenchmarkId::new("get_logs_1000", subject.name), |b| {
            b.iter(|| {
                let first = rng.random_range(1..=99_000);
                subject.logs.get_logs(first, first + 999, u64::MAX).expect("get_logs")
            })
        });
    }
    group.finish();
}

fn delete_range(c: &mut Criterion) {
    let mut group = c.benchmark_group("delete_range");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(300));
    group.throughput(Throughput::Elements(10_000));
    for subject in subjects() {
        group.bench_function(BenchmarkId::new("front_10000", subject.name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let first = subject.logs.first_index().expect("first").max(1);
                    let last = subject.logs.last_index().expect("last");
                    let start = if last == 0 { first } else { last + 1 };
                    for chunk in (start..start + 10_000).step_by(1000) {
                        subject.logs.store_logs(&batch(chunk, 1000, 128)).expect("fill");
                    }
                    let from = subject.logs.first_index().expect("first");
                    let began = Instant::now();
                    subject.logs.delete_range(from, from + 9_999).expect("delete_range");
                    total += began.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn stable(c: &mut Criterion) {
    let mut group = c.benchmark_group("stable");
    group.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    for subject in subjects() {
        let mut n = 0u64;
        group.bench_function(BenchmarkId::new("set_u64", subject.name), |b| {
            b.iter(|| {
                n += 1;
                subject.stable.set_u64(b"CurrentTerm", n).expect("set_u64")
            })
        });
        group.bench_function(BenchmarkId::new("get_u64", subject.name), |b| {
            b.iter(|| subject.stable.get_u64(b"CurrentTerm").expect("get_u64"))
        });
    }
    group.finish();
}

criterion_group!(benches, store_logs, reads, delete_range, stable);
criterion_main!(benches);
