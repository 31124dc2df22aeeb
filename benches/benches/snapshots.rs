//! Writing and reading a 64 MiB snapshot through the FileSnapshotStore,
//! in 64 KiB chunks (throughput in bytes).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use raft_core::{Configuration, FileSnapshotStore, NewSnapshot, SNAPSHOT_VERSION, SnapshotStore};
use std::io::{Read, Write};
use std::time::Duration;

const SIZE: usize = 64 << 20;
const CHUNK: usize = 64 << 10;

fn new_snapshot() -> NewSnapshot {
    NewSnapshot {
        version: SNAPSHOT_VERSION,
        index: 1,
        term: 1,
        configuration: Configuration::default(),
        configuration_index: 0,
    }
}

fn write_snapshot(store: &FileSnapshotStore, chunk: &[u8]) -> String {
    let mut sink = store.create(new_snapshot()).expect("create");
    for _ in 0..SIZE / CHUNK {
        sink.write_all(chunk).expect("write");
    }
    sink.close().expect("close").id
}

fn file_snapshots(c: &mut Criterion) {
    let mut group = c.benchmark_group("file_snapshot");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Bytes(SIZE as u64));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open_with(dir.path(), raft_core::FileSnapshotOptions::default().retain(1))
        .expect("store");
    let chunk = vec![0x5Au8; CHUNK];
    group.bench_function("write_64MiB", |b| b.iter(|| write_snapshot(&store, &chunk)));
    let id = write_snapshot(&store, &chunk);
    let mut buf = vec![0u8; CHUNK];
    group.bench_function("read_64MiB", |b| {
        b.iter(|| {
            let (_, mut reader) = store.open(&id).expect("open");
            while reader.read(&mut buf).expect("read") > 0 {}
        })
    });
    group.finish();
}

criterion_group!(benches, file_snapshots);
criterion_main!(benches);
