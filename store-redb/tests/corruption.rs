//! Damage to a redb store's file gives a typed error on open or on the read
//! that meets it: never a panic, never a wrong entry returned as good, never
//! a new store in place of an emptied file; a file of another format version
//! is refused, and a file another store holds is locked.

use bytes::Bytes;
use raft_core::{Log, LogStore, StoreError};
use store_redb::{RedbOptions, RedbStore};

fn marked(index: u64) -> Log {
    Log::command(index, 1, Bytes::from(format!("MARKER-{index:06}-").repeat(20)))
}

fn filled(path: &std::path::Path) {
    let store = RedbStore::open(path).expect("open");
    let logs: Vec<Log> = (1..=200).map(marked).collect();
    store.store_logs(&logs).expect("store_logs");
}

/// Every entry either reads back exactly as written or fails with a typed error.
fn check_no_wrong_entry(store: &RedbStore) -> usize {
    let mut errors = 0;
    for index in 1..=200 {
        match store.get_log(index) {
            Ok(Some(log)) => assert_eq!(log, marked(index), "a damaged entry {index} was returned as good"),
            Ok(None) => {}
            Err(StoreError::Corrupt { .. } | StoreError::Backend(_) | StoreError::Io(_)) => errors += 1,
            Err(other) => panic!("unexpected error kind for entry {index}: {other:?}"),
        }
    }
    errors
}

#[test]
fn a_flipped_byte_in_an_entry_is_caught_by_its_checksum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("raft.redb");
    filled(&path);
    let mut bytes = std::fs::read(&path).expect("read");
    let marker = b"MARKER-000123-";
    let at = bytes.windows(marker.len()).position(|w| w == marker).expect("the entry is in the file");
    bytes[at + 3] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");
    // Without the page check on open, the damage reaches the entry's own checksum.
    match RedbOptions::new(&path).verify_on_open(false).open() {
        Ok(store) => {
            let err = store.get_log(123).expect_err("a damaged entry must not read");
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
            assert_eq!(store.get_log(122).expect("a sound entry").expect("present"), marked(122));
        }
        Err(error) => assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}"),
    }
    // With it (the default), the damage is reported on open.
    let err = RedbStore::open(&path).expect_err("page checksums catch the flip");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn random_damage_never_panics_or_returns_a_wrong_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("raft.redb");
    filled(&path);
    let original = std::fs::read(&path).expect("read");
    for round in 0..20u64 {
        let mut bytes = original.clone();
        for k in 0..8 {
            let at = ((round * 7919 + k * 104_729) as usize * 31) % bytes.len();
            bytes[at] ^= 0xA5;
        }
        std::fs::write(&path, &bytes).expect("write");
        for verify in [true, false] {
            if let Ok(store) = RedbOptions::new(&path).verify_on_open(verify).open() {
                check_no_wrong_entry(&store);
            }
        }
    }
}

#[test]
fn a_truncated_file_fails_with_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("raft.redb");
    filled(&path);
    let bytes = std::fs::read(&path).expect("read");
    for len in [bytes.len() / 2, bytes.len() / 4, 100] {
        std::fs::write(&path, &bytes[..len]).expect("truncate");
        match RedbStore::open(&path) {
            Err(StoreError::Corrupt { .. } | StoreError::Io(_) | StoreError::Backend(_)) => {}
            Err(other) => panic!("unexpected error for a file cut to {len} bytes: {other:?}"),
            Ok(store) => {
                check_no_wrong_entry(&store);
            }
        }
    }
}

#[test]
fn another_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("raft.redb");
    filled(&path);
    {
        let db = redb::Database::open(&path).expect("open raw");
        let txn = db.begin_write().expect("txn");
        {
            let mut meta = txn.open_table(redb::TableDefinition::<&str, u64>::new("meta")).expect("meta");
            meta.insert("format_version", 99).expect("insert");
        }
        txn.commit().expect("commit");
    }
    let err = RedbStore::open(&path).expect_err("an unknown version");
    assert!(matches!(err, StoreError::UnsupportedVersion { found: 99, expected: 1 }), "{err:?}");
}

#[test]
fn a_zero_length_file_is_damage_not_a_new_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("raft.redb");
    filled(&path);
    std::fs::File::create(&path).expect("truncate to 0 bytes");
    let err = RedbStore::open(&path).expect_err("an emptied file must not open as a new store");
    assert!(matches!(err, StoreError::Corrupt { ref reason, .. } if reason.contains("empty")), "{err:?}");
    assert_eq!(std::fs::metadata(&path).expect("still there").len(), 0, "the refused open changed the file");
}

/// Runs `change` on the store's file through redb itself, bypassing the store.
fn rewrite(path: &std::path::Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).expect("open raw");
    let txn = db.begin_write().expect("txn");
    change(&txn);
    txn.commit().expect("commit");
}

#[test]
fn a_file_without_its_format_record_is_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("raft.redb");
    filled(&path);
    rewrite(&path, |txn| {
        let mut meta = txn.open_table(redb::TableDefinition::<&str, u64>::new("meta")).expect("meta");
        meta.remove("format_version").expect("remove");
    });
    let err = RedbStore::open(&path).expect_err("no format record");
    assert!(
        matches!(err, StoreError::Corrupt { ref reason, .. } if reason.contains("format record")),
        "{err:?}"
    );
}

#[test]
fn a_missing_entry_inside_the_log_is_corrupt_not_absent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("raft.redb");
    filled(&path);
    rewrite(&path, |txn| {
        let mut logs = txn.open_table(redb::TableDefinition::<u64, &[u8]>::new("logs")).expect("logs");
        logs.remove(123).expect("remove");
    });
    let store = RedbStore::open(&path).expect("open");
    let err = store.get_log(123).expect_err("a hole inside 1..=200");
    assert!(matches!(err, StoreError::Corrupt { ref location, .. } if location.contains("123")), "{err:?}");
    let err = store.get_logs(120, 130, u64::MAX).expect_err("a range over the hole");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(store.get_log(201).expect("past the end"), None);
}

#[test]
fn a_missing_parent_directory_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("not").join("yet").join("raft.redb");
    let store = RedbStore::open(&path).expect("open creates the parents");
    store.store_logs(&[marked(1)]).expect("store");
    drop(store);
    assert_eq!(RedbStore::open(&path).expect("reopen").get_log(1).expect("get"), Some(marked(1)));
}

/// The child process of the lock test; does nothing in a normal run.
#[test]
fn lock_child() {
    raft_conformance::exclusive::child(|path| RedbStore::open(path));
}

#[test]
fn a_second_open_of_a_live_file_is_refused() {
    raft_conformance::exclusive::second_open_is_refused(
        "lock_child",
        |path| RedbStore::open(path),
        |error| matches!(error, StoreError::Locked { .. }),
    );
}
