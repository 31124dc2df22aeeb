//! What is particular to the LMDB store: the map grows when full, up to its
//! maximum and then a typed error; damaged values, truncated or emptied files
//! and holes inside the log give typed errors, never a wrong entry nor a new
//! store; another format version is refused; a live directory is locked.

use bytes::Bytes;
use raft_core::{Log, LogStore, StableStore, StoreError};
use store_lmdb::{Durability, LmdbOptions, LmdbStore};

fn marked(index: u64) -> Log {
    Log::command(index, 1, Bytes::from(format!("MARKER-{index:06}-").repeat(20)))
}

#[test]
fn a_full_map_grows_and_the_write_goes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        LmdbOptions::new(dir.path()).map_size_initial(1 << 20).map_size_max(64 << 20).open().expect("open");
    let before = store.map_size();
    // 4 MiB of entries into a 1 MiB map.
    let big = Bytes::from(vec![7u8; 64 << 10]);
    let logs: Vec<Log> = (1..=64).map(|i| Log::command(i, 1, big.clone())).collect();
    store.store_logs(&logs).expect("the map grows instead of failing");
    assert!(store.map_size() > before, "the map did not grow");
    assert_eq!(store.get_log(64).expect("get").expect("present").data, big);
}

#[test]
fn a_map_at_its_maximum_is_a_typed_error_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        LmdbOptions::new(dir.path()).map_size_initial(1 << 20).map_size_max(2 << 20).open().expect("open");
    store.store_logs(&[marked(1)]).expect("a small write fits");
    let huge: Vec<Log> = (2..=100).map(|i| Log::command(i, 1, vec![1u8; 64 << 10])).collect();
    let err = store.store_logs(&huge).expect_err("6 MiB cannot fit in 2 MiB");
    assert!(matches!(err, StoreError::Full(_)), "{err:?}");
    assert_eq!(store.last_index().expect("last"), 1, "the failed batch left nothing behind");
    assert_eq!(store.get_log(1).expect("get"), Some(marked(1)));
}

#[test]
fn a_flipped_byte_in_an_entry_is_caught_by_its_checksum() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = LmdbStore::open(dir.path()).expect("open");
        store.store_logs(&(1..=200).map(marked).collect::<Vec<_>>()).expect("store");
    }
    let path = dir.path().join("data.mdb");
    let mut bytes = std::fs::read(&path).expect("read");
    let marker = b"MARKER-000123-";
    let at = bytes.windows(marker.len()).position(|w| w == marker).expect("the entry is in the file");
    bytes[at + 3] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");
    let store = LmdbStore::open(dir.path()).expect("open");
    let err = store.get_log(123).expect_err("a damaged entry must not read");
    assert!(matches!(err, StoreError::Corrupt { ref location, .. } if location.contains("123")), "{err:?}");
    assert!(store.get_logs(120, 130, u64::MAX).is_err(), "a range over the damage fails too");
    assert_eq!(store.get_log(122).expect("a sound entry"), Some(marked(122)));
}

#[test]
fn a_truncated_data_file_is_refused_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = LmdbStore::open(dir.path()).expect("open");
        store.store_logs(&(1..=500).map(marked).collect::<Vec<_>>()).expect("store");
    }
    let path = dir.path().join("data.mdb");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = LmdbStore::open(dir.path()).expect_err("a truncated file");
    assert!(matches!(err, StoreError::Corrupt { .. } | StoreError::Backend(_)), "{err:?}");
}

#[test]
fn another_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(LmdbStore::open(dir.path()).expect("create"));
    // Rewrite the version record the way a future format would.
    let path = dir.path().join("data.mdb");
    let mut bytes = std::fs::read(&path).expect("read");
    let key = b"format_version";
    let at = bytes.windows(key.len()).position(|w| w == key).expect("the record is in the file");
    let value = at + key.len();
    let end = (value + 64).min(bytes.len());
    let window = &mut bytes[value..end];
    let one = 1u64.to_be_bytes();
    let pos = window.windows(8).position(|w| w == one).expect("the version value follows its key");
    window[pos..pos + 8].copy_from_slice(&9u64.to_be_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let err = LmdbStore::open(dir.path()).expect_err("an unknown version");
    assert!(matches!(err, StoreError::UnsupportedVersion { found: 9, expected: 1 }), "{err:?}");
}

#[test]
fn weaker_durability_modes_still_store_and_read() {
    for durability in [Durability::NoMetaSync, Durability::NoSync] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LmdbOptions::new(dir.path()).durability(durability).open().expect("open");
        store.store_logs(&[marked(1), marked(2)]).expect("store");
        store.set_u64(b"k", 5).expect("set");
        drop(store);
        let store = LmdbStore::open(dir.path()).expect("reopen");
        assert_eq!(store.get_log(2).expect("get"), Some(marked(2)));
        assert_eq!(store.get_u64(b"k").expect("get"), Some(5));
    }
}

#[test]
fn a_zero_length_data_file_is_damage_not_a_new_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = LmdbStore::open(dir.path()).expect("open");
        store.store_logs(&(1..=20).map(marked).collect::<Vec<_>>()).expect("store");
        store.set_u64(b"CurrentTerm", 7).expect("term");
        store.set(b"LastVoteCand", b"node-2").expect("vote");
    }
    let path = dir.path().join("data.mdb");
    std::fs::File::create(&path).expect("truncate to 0 bytes");
    let err = LmdbStore::open(dir.path()).expect_err("an emptied data file must not open as a new store");
    assert!(matches!(err, StoreError::Corrupt { ref reason, .. } if reason.contains("empty")), "{err:?}");
    assert_eq!(std::fs::metadata(&path).expect("still there").len(), 0, "the refused open changed the file");
}

#[test]
fn a_directory_without_a_data_file_is_a_new_store_even_after_a_crash_while_creating() {
    let dir = tempfile::tempdir().expect("tempdir");
    // What a crash in the middle of creating leaves: the staging directory.
    let staging = dir.path().join(".raft-kit-creating");
    std::fs::create_dir(&staging).expect("staging");
    std::fs::write(staging.join("data.mdb"), b"half").expect("leftover");
    let store = LmdbStore::open(dir.path()).expect("a store is created");
    assert!(!staging.exists(), "the leftover was removed");
    store.store_logs(&[marked(1)]).expect("store");
    drop(store);
    assert_eq!(LmdbStore::open(dir.path()).expect("reopen").get_log(1).expect("get"), Some(marked(1)));
}

#[test]
fn a_missing_entry_inside_the_log_is_corrupt_not_absent() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = LmdbStore::open(dir.path()).expect("open");
        store.store_logs(&(1..=200).map(marked).collect::<Vec<_>>()).expect("store");
    }
    // Damage the key of entry 123 in its leaf page, so that LMDB no longer
    // finds 123 (the key now reads 127). The value is the entry as
    // `encode_log_with_crc` writes it: CRC, version, index, term, kind, data
    // length, then the marker; the key's 8 bytes come just before it.
    let path = dir.path().join("data.mdb");
    let mut bytes = std::fs::read(&path).expect("read");
    let marker = b"MARKER-000123-";
    let at = bytes.windows(marker.len()).position(|w| w == marker).expect("the entry is in the file");
    let key = at - (4 + 1 + 8 + 8 + 1 + 4) - 8;
    assert_eq!(bytes[key..key + 8], 123u64.to_be_bytes(), "the key precedes the value");
    bytes[key + 7] = 127;
    std::fs::write(&path, &bytes).expect("write");
    let store = LmdbStore::open(dir.path()).expect("LMDB has no page checksums: the file opens");
    assert_eq!((store.first_index().expect("first"), store.last_index().expect("last")), (1, 200));
    let err = store.get_log(123).expect_err("a hole inside 1..=200");
    assert!(matches!(err, StoreError::Corrupt { ref location, .. } if location.contains("123")), "{err:?}");
    let err = store.get_logs(120, 130, u64::MAX).expect_err("a range over the hole");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(store.get_log(122).expect("a sound entry"), Some(marked(122)));
}

/// The child process of the lock test; does nothing in a normal run.
#[test]
fn lock_child() {
    raft_conformance::exclusive::child(|path| LmdbStore::open(path));
}

#[test]
fn a_second_open_of_a_live_directory_is_refused() {
    raft_conformance::exclusive::second_open_is_refused(
        "lock_child",
        |path| LmdbStore::open(path),
        |error| matches!(error, StoreError::Locked { path } if path.ends_with("raft-kit.lock")),
    );
}
