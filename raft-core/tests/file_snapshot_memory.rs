//! A 64 MiB snapshot streams through the FileSnapshotStore without being
//! held in memory: the process's peak resident memory grows by far less
//! than the snapshot. (Its own test binary, so nothing else runs beside it.)

use raft_core::{Configuration, FileSnapshotStore, NewSnapshot, SNAPSHOT_VERSION, SnapshotStore};
use std::io::{Read, Write};

/// The process's peak resident set size, in KiB (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_64_mib_snapshot_streams_in_bounded_memory() {
    const SIZE: usize = 64 << 20;
    const CHUNK: usize = 64 << 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open_with(dir.path(), raft_core::FileSnapshotOptions::default().retain(1))
        .expect("open");
    let before = peak_rss_kib();
    let snapshot = NewSnapshot {
        version: SNAPSHOT_VERSION,
        index: 1,
        term: 1,
        configuration: Configuration::default(),
        configuration_index: 0,
    };
    let mut sink = store.create(snapshot).expect("create");
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    for _ in 0..SIZE / CHUNK {
        sink.write_all(&chunk).expect("write");
    }
    let meta = sink.close().expect("close");
    assert_eq!(meta.size, SIZE as u64);
    let (_, mut reader) = store.open(&meta.id).expect("open");
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, SIZE);
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let grown_mib = (after.saturating_sub(before)) / 1024;
        eprintln!("peak RSS grew by {grown_mib} MiB while a 64 MiB snapshot was written and read");
        assert!(grown_mib < 16, "peak RSS grew by {grown_mib} MiB for a 64 MiB snapshot");
    }
}
