//! A store whose files were cut short or lost is refused, never opened as a
//! shorter or empty log: every segment is made at its full size, the stable
//! file exists from the store's creation and records its newest segment, and
//! segments before the oldest one left are let go of only by a compaction
//! that a surviving record says.

use raft_core::{LogStore, StableStore, StoreError};
use store_wal::{WalOptions, WalStore};

mod support;
use support::{entries, files};

fn expect_corrupt(result: Result<WalStore, StoreError>, what: &str) -> (String, String) {
    match result {
        Err(StoreError::Corrupt { location, reason }) => (location, reason),
        Err(other) => panic!("{what}: expected Corrupt, got {other:?}"),
        Ok(store) => panic!(
            "{what}: opened as a log {}..={} instead of refusing",
            store.first_index().expect("first"),
            store.last_index().expect("last")
        ),
    }
}

/// The case: 3,000 entries in the first 64 MiB segment and a term,
/// then the segment cut to half its records, to a record boundary, and to
/// 100 bytes. Each is refused, naming the file and both lengths.
#[test]
fn a_segment_cut_short_is_corrupt_naming_its_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open(dir.path()).expect("open");
    for batch in 0..30 {
        store.store_logs(&entries(batch * 100 + 1, 100)).expect("store");
    }
    store.set_u64(b"CurrentTerm", 4).expect("term");
    drop(store);
    let segment = dir.path().join("00000000000000000001.wal");
    let original = std::fs::read(&segment).expect("read");
    let full = original.len() as u64;
    assert_eq!(full, 64 << 20, "the segment is made at its full size");
    let written = original.iter().rposition(|&b| b != 0).expect("records") + 1;
    // A record boundary: where the 16th batch's record starts (records are
    // 8-byte aligned, and every batch record begins with the same kind byte
    // after its 12-byte header; find it by the entry's text instead).
    let batch16 = original.windows(12).position(|w| w == b"entry 001501").expect("entry 1501");
    let boundary = (batch16 / 8) * 8;
    for cut in [written as u64 / 2, boundary as u64, 100] {
        std::fs::write(&segment, &original[..cut as usize]).expect("cut");
        let (location, reason) = expect_corrupt(WalStore::open(dir.path()), &format!("cut to {cut}"));
        assert!(location.ends_with("00000000000000000001.wal"), "{location}");
        assert!(reason.contains(&cut.to_string()) && reason.contains(&full.to_string()), "{reason}");
    }
    std::fs::write(&segment, &original).expect("restore");
    let store = WalStore::open(dir.path()).expect("the whole segment opens");
    assert_eq!(store.last_index().expect("last"), 3_000);
    assert_eq!(store.get_u64(b"CurrentTerm").expect("term"), Some(4));
}

#[test]
fn a_segment_longer_than_its_header_says_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = WalOptions::default().segment_size(64 << 10);
    let store = WalStore::open_with(dir.path(), options.clone()).expect("open");
    store.store_logs(&entries(1, 10)).expect("store");
    drop(store);
    let segment = &files(dir.path(), "wal")[0];
    let file = std::fs::OpenOptions::new().write(true).open(segment).expect("open");
    file.set_len((64 << 10) + 4096).expect("grow");
    let (_, reason) = expect_corrupt(WalStore::open_with(dir.path(), options), "grown");
    assert!(reason.contains(&((64 << 10) + 4096).to_string()), "{reason}");
}

/// Many small segments, so that losing the newest or the oldest leaves a
/// log that would otherwise look whole.
fn several_segments() -> (tempfile::TempDir, WalOptions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = WalOptions::default().segment_size(64 << 10);
    let store = WalStore::open_with(dir.path(), options.clone()).expect("open");
    for batch in 0..40 {
        store.store_logs(&entries(batch * 100 + 1, 100)).expect("store");
    }
    store.set_u64(b"CurrentTerm", 2).expect("term");
    assert!(store.segment_count() >= 4, "{} segments", store.segment_count());
    drop(store);
    (dir, options)
}

#[test]
fn a_lost_newest_segment_is_corrupt() {
    let (dir, options) = several_segments();
    let segments = files(dir.path(), "wal");
    let newest = segments.last().expect("segments");
    std::fs::remove_file(newest).expect("lose the newest");
    let (_, reason) = expect_corrupt(WalStore::open_with(dir.path(), options), "newest lost");
    let name = newest.file_name().expect("name").to_string_lossy().to_string();
    assert!(reason.contains(name.trim_start_matches('0').trim_end_matches(".wal")), "{reason}");
}

#[test]
fn a_lost_oldest_segment_without_a_compaction_is_corrupt() {
    let (dir, options) = several_segments();
    std::fs::remove_file(&files(dir.path(), "wal")[0]).expect("lose the oldest");
    expect_corrupt(WalStore::open_with(dir.path(), options), "oldest lost");
}

#[test]
fn oldest_segments_let_go_of_by_a_compaction_are_not_missed() {
    let (dir, options) = several_segments();
    let store = WalStore::open_with(dir.path(), options.clone()).expect("open");
    store.delete_range(1, 2_500).expect("compact");
    store.store_logs(&entries(4_001, 100)).expect("store");
    drop(store);
    let store = WalStore::open_with(dir.path(), options).expect("a compacted log opens");
    assert_eq!((store.first_index().expect("first"), store.last_index().expect("last")), (2_501, 4_100));
}

#[test]
fn a_lost_stable_file_is_corrupt_not_an_empty_term_and_vote() {
    let (dir, options) = several_segments();
    std::fs::remove_file(dir.path().join("stable")).expect("lose the stable file");
    let (location, _) = expect_corrupt(WalStore::open_with(dir.path(), options), "stable lost");
    assert!(location.ends_with("stable"), "{location}");
}

#[test]
fn a_store_whose_segments_are_all_lost_is_corrupt_not_new() {
    let (dir, options) = several_segments();
    for segment in files(dir.path(), "wal") {
        std::fs::remove_file(segment).expect("lose");
    }
    expect_corrupt(WalStore::open_with(dir.path(), options.clone()), "segments lost");
    // Even a store that never saw a term: its stable file records a segment.
    let fresh = tempfile::tempdir().expect("tempdir");
    drop(WalStore::open_with(fresh.path(), options.clone()).expect("create"));
    for segment in files(fresh.path(), "wal") {
        std::fs::remove_file(segment).expect("lose");
    }
    expect_corrupt(WalStore::open_with(fresh.path(), options), "the only segment lost");
}

#[test]
fn a_new_store_is_still_a_new_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WalStore::open(dir.path()).expect("create");
    assert_eq!(store.last_index().expect("last"), 0);
    drop(store);
    let store = WalStore::open(dir.path()).expect("reopen the empty store");
    store.store_logs(&entries(1, 3)).expect("store");
    assert_eq!(store.last_index().expect("last"), 3);
}
