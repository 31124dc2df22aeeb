//! Criterion benchmarks for any log and stable store (feature `bench`), next
//! to the raw-file baseline the built-in stores are measured against — what
//! hashicorp/raft's `raftbench` gives, for criterion.
//!
//! A bench target of your own (`benches/my_store.rs` with `harness = false`
//! in `Cargo.toml`, and this crate as a dev-dependency with
//! `features = ["bench"]`):
//!
//! ```no_run
//! use criterion::{criterion_group, criterion_main, Criterion};
//! use raft_conformance::bench::{raw_file_baseline, store_benches, BenchStore};
//!
//! fn my_store(c: &mut Criterion) {
//!     raw_file_baseline(c);
//!     store_benches(c, "mem", || {
//!         // A fresh, empty store each time; `keeping` holds what must
//!         // outlive it, such as its temporary directory.
//!         let dir = tempfile::tempdir().expect("tempdir");
//!         BenchStore::new(store_mem::MemLogStore::new(), store_mem::MemStableStore::new()).keeping(dir)
//!     });
//! }
//!
//! criterion_group!(benches, my_store);
//! criterion_main!(benches);
//! ```
//!
//! The groups and ids are those of raft-kit's own store benchmarks
//! (`store_logs/<store>/<batch>x<payload>`, `reads/get_log/<store>`, …), so
//! `cargo bench --bench my_store -- lmdb` runs one store alone and criterion
//! compares runs of the same store.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use raft_core::{Log, LogStore, StableStore, codec};
use rand::Rng;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// The batch sizes `store_logs` is measured at.
pub const BATCHES: [usize; 3] = [1, 16, 256];
/// The payload sizes `store_logs` is measured at, in bytes.
pub const PAYLOADS: [usize; 3] = [128, 1024, 16 * 1024];
/// How many entries the read benchmarks store first.
pub const READ_ENTRIES: u64 = 100_000;

/// A store to benchmark: a fresh, empty log store and stable store (often
/// one object behind both), and whatever must live as long as they do.
pub struct BenchStore {
    logs: Box<dyn LogStore>,
    stable: Box<dyn StableStore>,
    _keep: Box<dyn std::any::Any>,
}

impl BenchStore {
    /// The store's log and stable halves.
    pub fn new(logs: impl LogStore, stable: impl StableStore) -> Self {
        Self { logs: Box::new(logs), stable: Box::new(stable), _keep: Box::new(()) }
    }

    /// Keeps `value` (a temporary directory, say) until the store is dropped.
    pub fn keeping(mut self, value: impl std::any::Any) -> Self {
        self._keep = Box::new(value);
        self
    }
}

/// Runs every store benchmark on stores from `make` (a fresh one for each
/// group): `store_logs` at each batch and payload size, `reads` (a random
/// and a recent `get_log`, `get_logs` of 1,000), `delete_range` of 10,000
/// from the front, and `stable` `set_u64`/`get_u64`.
pub fn store_benches(c: &mut Criterion, name: &str, mut make: impl FnMut() -> BenchStore) {
    store_logs(c, name, &mut make);
    reads(c, name, &mut make);
    delete_range(c, name, &mut make);
    stable(c, name, &mut make);
}

/// The raw-file baselines of `store_logs`: the same encoded bytes written
/// to a plain file with one `fdatasync` per batch — appended to a growing
/// file (`store_logs/raw-file/…`), and overwriting a preallocated,
/// zero-filled one (`store_logs/raw-prealloc/…`, where a sync flushes data
/// only, never the file's size).
pub fn raw_file_baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_logs");
    group.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    for count in BATCHES {
        for payload in PAYLOADS {
            group.throughput(Throughput::Bytes((count * payload) as u64));
            for name in ["raw-file", "raw-prealloc"] {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("raw.log");
                let mut raw = RawLog::baseline(name, &path).expect("raw file");
                let mut logs = batch(1, count, payload);
                let mut next = 1;
                group.bench_function(BenchmarkId::new(name, format!("{count}x{payload}")), |b| {
                    b.iter(|| {
                        renumber(&mut logs, next);
                        raw.append(&logs).expect("append");
                        next += count as u64;
                    })
                });
            }
        }
    }
    group.finish();
}

/// The size of the preallocated baseline file; writes wrap around in it.
const RAW_PREALLOC_BYTES: u64 = 256 << 20;

fn store_logs(c: &mut Criterion, name: &str, make: &mut dyn FnMut() -> BenchStore) {
    let mut group = c.benchmark_group("store_logs");
    group.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    for count in BATCHES {
        for payload in PAYLOADS {
            group.throughput(Throughput::Bytes((count * payload) as u64));
            let store = make();
            let mut logs = batch(1, count, payload);
            let mut next = 1;
            group.bench_function(BenchmarkId::new(name, format!("{count}x{payload}")), |b| {
                b.iter(|| {
                    renumber(&mut logs, next);
                    store.logs.store_logs(&logs).expect("store_logs");
                    next += count as u64;
                })
            });
        }
    }
    group.finish();
}

fn fill(store: &BenchStore, count: u64) {
    for first in (1..=count).step_by(1000) {
        store.logs.store_logs(&batch(first, 1000.min((count - first + 1) as usize), 128)).expect("fill");
    }
}

fn reads(c: &mut Criterion, name: &str, make: &mut dyn FnMut() -> BenchStore) {
    let mut group = c.benchmark_group("reads");
    group.sample_size(30).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    let store = make();
    fill(&store, READ_ENTRIES);
    let mut rng = rand::rng();
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("get_log", name), |b| {
        b.iter(|| store.logs.get_log(rng.random_range(1..=READ_ENTRIES)).expect("get_log"))
    });
    group.bench_function(BenchmarkId::new("get_log_recent", name), |b| {
        b.iter(|| store.logs.get_log(rng.random_range(READ_ENTRIES - 1000..=READ_ENTRIES)).expect("get_log"))
    });
    group.throughput(Throughput::Elements(1000));
    group.bench_function(BenchmarkId::new("get_logs_1000", name), |b| {
        b.iter(|| {
            let first = rng.random_range(1..=READ_ENTRIES - 1000);
            store.logs.get_logs(first, first + 999, u64::MAX).expect("get_logs")
        })
    });
    group.finish();
}

fn delete_range(c: &mut Criterion, name: &str, make: &mut dyn FnMut() -> BenchStore) {
    let mut group = c.benchmark_group("delete_range");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(300));
    group.throughput(Throughput::Elements(10_000));
    let store = make();
    group.bench_function(BenchmarkId::new("front_10000", name), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let first = store.logs.first_index().expect("first").max(1);
                let last = store.logs.last_index().expect("last");
                let start = if last == 0 { first } else { last + 1 };
                for chunk in (start..start + 10_000).step_by(1000) {
                    store.logs.store_logs(&batch(chunk, 1000, 128)).expect("fill");
                }
                let from = store.logs.first_index().expect("first");
                let began = Instant::now();
                store.logs.delete_range(from, from + 9_999).expect("delete_range");
                total += began.elapsed();
            }
            total
        })
    });
    group.finish();
}

fn stable(c: &mut Criterion, name: &str, make: &mut dyn FnMut() -> BenchStore) {
    let mut group = c.benchmark_group("stable");
    group.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    let store = make();
    let mut n = 0u64;
    group.bench_function(BenchmarkId::new("set_u64", name), |b| {
        b.iter(|| {
            n += 1;
            store.stable.set_u64(b"CurrentTerm", n).expect("set_u64")
        })
    });
    group.bench_function(BenchmarkId::new("get_u64", name), |b| {
        b.iter(|| store.stable.get_u64(b"CurrentTerm").expect("get_u64"))
    });
    group.finish();
}

/// A batch of `count` command entries of `payload` bytes each, starting at
/// index `first`; the payloads share one buffer.
pub fn batch(first: u64, count: usize, payload: usize) -> Vec<Log> {
    let data = Bytes::from(vec![0xA5u8; payload]);
    (0..count as u64).map(|i| Log::command(first + i, 1, data.clone())).collect()
}

/// Renumbers `batch` to start at `first`.
pub fn renumber(batch: &mut [Log], first: u64) {
    for (i, log) in batch.iter_mut().enumerate() {
        log.index = first + i as u64;
    }
}

/// The baseline: a file that takes the bytes a store would write, with one
/// `fdatasync` per batch — the least a durable log can do.
pub struct RawLog {
    file: File,
    buf: Vec<u8>,
    /// For a preallocated file: its size and where the next write goes.
    preallocated: Option<(u64, u64)>,
}

impl RawLog {
    /// Creates (truncating) the file at `path`; batches are appended to it.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
        Ok(Self { file, buf: Vec::new(), preallocated: None })
    }

    /// Creates the file at `path` zero-filled to `size` bytes and synced;
    /// batches overwrite it from the start, wrapping around at its end.
    pub fn preallocated(path: &Path, size: u64) -> std::io::Result<Self> {
        let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..size.div_ceil(zeros.len() as u64) {
            file.write_all(&zeros)?;
        }
        file.sync_all()?;
        Ok(Self { file, buf: Vec::new(), preallocated: Some((size, 0)) })
    }

    /// The baseline `name` at `path`: `raw-file` appends
    /// ([`create`](Self::create)), `raw-prealloc` overwrites a
    /// preallocated file of 256 MiB in a ring
    /// ([`preallocated`](Self::preallocated)).
    pub fn baseline(name: &str, path: &Path) -> std::io::Result<Self> {
        match name {
            "raw-file" => Self::create(path),
            _ => Self::preallocated(path, RAW_PREALLOC_BYTES),
        }
    }

    /// Writes the batch, encoded as the stores encode it, and fdatasyncs.
    pub fn append(&mut self, logs: &[Log]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.buf.clear();
        for log in logs {
            self.buf.extend_from_slice(&codec::encode_log_with_crc(log));
        }
        match &mut self.preallocated {
            None => self.file.write_all(&self.buf)?,
            Some((size, at)) => {
                if *at + self.buf.len() as u64 > *size {
                    *at = 0;
                }
                self.file.write_all_at(&self.buf, *at)?;
                *at += self.buf.len() as u64;
            }
        }
        self.file.sync_data()
    }
}
