//! Damage is reported, never taken for an empty store or skipped; a torn
//! tail is cut off; a second open of a live directory is refused.

use raft_core::{Log, LogStore, StableStore, StoreError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use store_wal::{WalOptions, WalStore};

fn options() -> WalOptions {
    WalOptions::default().segment_size(64 << 10)
}

fn entries(first: u64, count: u64) -> Vec<Log> {
    (first..first + count).map(|i| Log::command(i, 1, format!("entry {i:04}"))).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    paths.sort();
    paths
}

/// A store with 10 batches of 10 entries in its first segment.
fn filled() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), options()).expect("open");
    for batch in 0..10 {
        store.store_logs(&entries(batch * 10 + 1, 10)).expect("store");
    }
    store.set_u64(b"CurrentTerm", 3).expect("set");
    dir
}

/// Where the records of the first segment end.
fn end_of_records(path: &Path) -> usize {
    let data = std::fs::read(path).expect("read");
    data.iter().rposition(|&b| b != 0).expect("records") + 1
}

#[test]
fn a_torn_last_record_is_cut_off_and_the_store_goes_on() {
    let dir = filled();
    let segment = &segments(dir.path())[0];
    let end = end_of_records(segment);
    // The last batch's last bytes never reached the disk.
    let file = std::fs::OpenOptions::new().write(true).open(segment).expect("open");
    file.write_all_at(&[0u8; 40], (end - 40) as u64).expect("tear");
    let store = WalStore::open_with(dir.path(), options()).expect("a torn tail is not damage");
    assert_eq!(store.last_index().expect("last"), 90, "the torn batch is gone whole");
    assert_eq!(store.get_log(90).expect("get").map(|l| l.data), Some("entry 0090".into()));
    store.store_logs(&entries(91, 5)).expect("writes go on after the cut");
    drop(store);
    let store = WalStore::open_with(dir.path(), options()).expect("reopen");
    assert_eq!(store.last_index().expect("last"), 95);
    assert_eq!(store.get_u64(b"CurrentTerm").expect("stable"), Some(3));
}

#[test]
fn a_damaged_record_before_the_tail_is_corrupt_not_skipped() {
    let dir = filled();
    let segment = &segments(dir.path())[0];
    let data = std::fs::read(segment).expect("read");
    // A byte of the third entry's text, inside the first batch.
    let at = data.windows(10).position(|w| w == b"entry 0003").expect("entry 3");
    let file = std::fs::OpenOptions::new().write(true).open(segment).expect("open");
    file.write_all_at(b"X", at as u64).expect("flip");
    match WalStore::open_with(dir.path(), options()) {
        Err(StoreError::Corrupt { location, .. }) => assert!(location.contains(".wal"), "{location}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn empty_foreign_and_newer_segments_are_refused() {
    let dir = filled();
    let segment = segments(dir.path())[0].clone();
    let original = std::fs::read(&segment).expect("read");

    std::fs::write(&segment, b"").expect("empty");
    assert!(matches!(WalStore::open_with(dir.path(), options()), Err(StoreError::Corrupt { .. })));

    std::fs::write(&segment, b"SQLite format 3\0 and more bytes than a header would need, to be sure.")
        .expect("foreign");
    assert!(matches!(WalStore::open_with(dir.path(), options()), Err(StoreError::Corrupt { .. })));

    let mut newer = original.clone();
    newer[8] = 3;
    std::fs::write(&segment, &newer).expect("newer");
    assert!(matches!(
        WalStore::open_with(dir.path(), options()),
        Err(StoreError::UnsupportedVersion { found: 3, expected: 2 })
    ));

    std::fs::write(&segment, &original).expect("restore");
    let store = WalStore::open_with(dir.path(), options()).expect("the original opens");
    assert_eq!(store.last_index().expect("last"), 100);
}

#[test]
fn a_lost_segment_in_the_middle_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), options()).expect("open");
    for batch in 0..60 {
        store.store_logs(&entries(batch * 100 + 1, 100)).expect("store");
    }
    drop(store);
    let paths = segments(dir.path());
    assert!(paths.len() >= 3, "{paths:?}");
    std::fs::remove_file(&paths[1]).expect("lose one");
    assert!(matches!(WalStore::open_with(dir.path(), options()), Err(StoreError::Corrupt { .. })));
}

#[test]
fn a_damaged_stable_file_is_corrupt_and_a_second_open_is_locked() {
    let dir = filled();
    {
        let _open = WalStore::open_with(dir.path(), options()).expect("open");
        match WalStore::open_with(dir.path(), options()) {
            Err(StoreError::Locked { path }) => assert!(path.ends_with("raft-kit.lock")),
            other => panic!("expected Locked, got {other:?}"),
        }
    }
    let stable = dir.path().join("stable");
    let mut bytes = std::fs::read(&stable).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&stable, &bytes).expect("damage");
    assert!(matches!(WalStore::open_with(dir.path(), options()), Err(StoreError::Corrupt { .. })));
    std::fs::write(&stable, b"").expect("empty");
    assert!(matches!(WalStore::open_with(dir.path(), options()), Err(StoreError::Corrupt { .. })));
}

#[test]
fn compaction_deletes_whole_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open_with(dir.path(), options()).expect("open");
    for batch in 0..60 {
        store.store_logs(&entries(batch * 100 + 1, 100)).expect("store");
    }
    let before = store.segment_count();
    store.delete_range(0, 5_000).expect("compact");
    assert!(store.segment_count() < before, "{} segments, was {before}", store.segment_count());
    assert_eq!(store.first_index().expect("first"), 5_001);
    // A follower's conflict: the tail goes without a rewrite.
    store.delete_range(5_900, u64::MAX).expect("truncate");
    store.store_logs(&[Log::command(5_900, 2, "new")]).expect("append after truncation");
    drop(store);
    let store = WalStore::open_with(dir.path(), options()).expect("reopen");
    assert_eq!((store.first_index().expect("first"), store.last_index().expect("last")), (5_001, 5_900));
    assert_eq!(store.get_log(5_900).expect("get").map(|l| (l.term, l.data)), Some((2, "new".into())));
    assert_eq!(store.get_log(5_001).expect("get").map(|l| l.index), Some(5_001));
    assert_eq!(segments(dir.path()).len(), store.segment_count());
}
