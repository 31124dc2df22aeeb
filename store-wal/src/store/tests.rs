//! What only the inside of the store can show.

use super::*;
use crate::segment;

fn entries(first: u64, count: u64) -> Vec<Log> {
    (first..first + count).map(|i| Log::command(i, 1, format!("entry {i:06} {}", "x".repeat(40)))).collect()
}

#[test]
fn a_file_a_reader_still_holds_is_not_written_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = WalOptions::default().segment_size(64 << 10).cache_entries(0);
    let store = WalStore::open_with(dir.path(), options).expect("open");
    for first in (1..3_000).step_by(100) {
        store.store_logs(&entries(first, 100)).expect("store");
    }
    // A reader has looked entry 1 up, and reads it only later.
    let Some(Lookup::OnDisk(position, file)) = store.read_index().lookup(1) else {
        panic!("entry 1 is on disk")
    };
    store.delete_range(1, 2_900).expect("compact");
    let mut next = 3_001;
    while store.stats().segments_reused < 4 {
        store.store_logs(&entries(next, 100)).expect("store");
        next += 100;
        store.delete_range(store.first_index().expect("first"), next - 500).expect("compact");
    }
    // Other spares were reused; the held file still has its old bytes.
    let log = store.read_entry(1, position, &file).expect("the old bytes are there");
    assert_eq!(log.data, entries(1, 1)[0].data);
    // Once let go of, it is reused too.
    drop(file);
    let spares_before = store.lock_writer().spares.len();
    assert!(spares_before >= 1);
    let reused = store.stats().segments_reused;
    while store.stats().segments_reused < reused + 4 {
        store.store_logs(&entries(next, 100)).expect("store");
        next += 100;
        store.delete_range(store.first_index().expect("first"), next - 500).expect("compact");
    }
    let held = dir.path().join(segment::spare_name(position.seq));
    assert!(!held.exists(), "{} is still a spare", held.display());
}
