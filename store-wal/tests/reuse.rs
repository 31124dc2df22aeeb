//! Compacted segments' files become the next segments: the log reads back
//! whole across reused files, their old records are never taken for new
//! ones, and damage in a reused segment is still damage.

use raft_core::{Log, LogStore, StoreError};
use std::os::unix::fs::FileExt;
use std::path::Path;
use store_wal::{WalOptions, WalStore};

fn options() -> WalOptions {
    WalOptions::default().segment_size(64 << 10)
}

mod support;
use support::{entries, files};

/// Appends `batches` batches of 100 after `store`'s last entry, keeping the
/// newest 1,000 entries as a node does after its snapshots.
fn run(store: &WalStore, batches: u64) {
    for _ in 0..batches {
        let last = store.last_index().expect("last");
        store.store_logs(&entries(last + 1, 100)).expect("store");
        let first = store.first_index().expect("first");
        if last + 100 > first + 2_000 {
            store.delete_range(first, last + 100 - 1_000).expect("compact");
        }
    }
}

fn assert_reads_back(store: &WalStore) {
    let (first, last) = (store.first_index().expect("first"), store.last_index().expect("last"));
    assert!((1_000..=2_000).contains(&(last - first + 1)), "{first}..={last}");
    let logs = store.get_logs(first, last, u64::MAX).expect("get_logs");
    assert_eq!(logs.len() as u64, last - first + 1);
    for (log, expected) in logs.iter().zip(entries(first, last - first + 1)) {
        assert_eq!((log.index, &log.data), (expected.index, &expected.data));
    }
}

#[test]
fn a_log_in_steady_state_reuses_compacted_segments_and_reads_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), options()).expect("open");
    run(&store, 200);
    let stats = store.stats();
    assert!(stats.segments_reused >= 10, "{stats:?}");
    // New files only until the first compactions left spares behind.
    assert!(stats.segments_created <= 4, "{stats:?}");
    assert_reads_back(&store);
    drop(store);
    assert!(files(dir.path(), "spare").len() <= 2, "{:?}", files(dir.path(), "spare"));

    // Reopened: the spares are kept, the log is whole, and writes go on in
    // reused files.
    let store = WalStore::open_with(dir.path(), options()).expect("reopen");
    assert_reads_back(&store);
    run(&store, 50);
    assert!(store.stats().segments_reused >= 3, "{:?}", store.stats());
    assert_eq!(store.stats().segments_created, 0, "{:?}", store.stats());
    assert_reads_back(&store);
    drop(store);
    let store = WalStore::open_with(dir.path(), options()).expect("reopen");
    assert_reads_back(&store);
}

#[test]
fn a_torn_write_in_a_reused_segment_is_cut_and_damage_in_it_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), options()).expect("open");
    run(&store, 120);
    // On until a batch has just started a segment in a reused file.
    loop {
        let reused = store.stats().segments_reused;
        run(&store, 1);
        if store.stats().segments_reused > reused {
            break;
        }
    }
    // The newest record is a batch (run's compactions write records too).
    let last = store.last_index().expect("last") + 100;
    store.store_logs(&entries(last - 99, 100)).expect("store");
    drop(store);
    let active = files(dir.path(), "wal").pop().expect("a segment");
    let data = std::fs::read(&active).expect("read");
    // The newest batch is the last occurrence of its first entry's text.
    let first_of_last = format!("entry {:06}", last - 99);
    let at = data.windows(first_of_last.len()).rposition(|w| w == first_of_last.as_bytes()).expect("batch");

    // The write of the newest batch did not finish: its end is missing,
    // and what lies there is the old contents of the reused file.
    let torn = dir.path().join("torn");
    copy_dir(dir.path(), &torn);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(torn.join(active.file_name().expect("name")))
        .expect("open");
    file.write_all_at(&[0x5a; 64], at as u64 + 200).expect("tear");
    let store = WalStore::open_with(&torn, options()).expect("a torn tail is not damage");
    assert_eq!(store.last_index().expect("last"), last - 100, "the torn batch is gone whole");
    store.store_logs(&entries(last - 99, 100)).expect("writes go on after the cut");
    drop(store);
    let store = WalStore::open_with(&torn, options()).expect("reopen");
    assert_eq!(store.last_index().expect("last"), last);

    // A byte of an earlier batch of the reused segment, with the newest
    // one intact after it.
    let earlier = format!("entry {:06}", last - 150);
    let at = data.windows(earlier.len()).rposition(|w| w == earlier.as_bytes()).expect("earlier batch");
    let file = std::fs::OpenOptions::new().write(true).open(&active).expect("open");
    file.write_all_at(b"Y", at as u64).expect("flip");
    match WalStore::open_with(dir.path(), options()) {
        Err(StoreError::Corrupt { location, .. }) => assert!(location.contains(".wal"), "{location}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn without_spares_compacted_segments_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), options().spare_segments(0)).expect("open");
    run(&store, 100);
    assert_eq!(store.stats().segments_reused, 0);
    let segments = store.segment_count();
    drop(store);
    assert!(files(dir.path(), "spare").is_empty());
    assert_eq!(files(dir.path(), "wal").len(), segments);
    let store = WalStore::open_with(dir.path(), options().spare_segments(0)).expect("reopen");
    assert_reads_back(&store);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_file() && path.extension().is_none_or(|e| e != "lock") {
            std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
        }
    }
}

#[test]
fn a_batch_larger_than_a_segment_gets_its_own_and_leaves_the_spares() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), options()).expect("open");
    run(&store, 60);
    let spares = files(dir.path(), "spare");
    assert!(!spares.is_empty(), "steady state has spares");
    let last = store.last_index().expect("last");
    let big: Vec<Log> = (last + 1..=last + 100).map(|i| Log::command(i, 1, vec![b'b'; 1_000])).collect();
    store.store_logs(&big).expect("a batch larger than a segment");
    assert_eq!(files(dir.path(), "spare"), spares, "the spares are still there");
    run(&store, 30);
    drop(store);
    let store = WalStore::open_with(dir.path(), options()).expect("reopen");
    let first = store.first_index().expect("first");
    assert!(first > last + 100, "the big batch was compacted with the rest");
}
