//! FileSnapshotStore passes the snapshot store suite (with reopen), detects
//! damage on open and at the end of a read, never lists an unfinished
//! snapshot, reaps crash leftovers and old snapshots, leaves files that are
//! not its own alone, and refuses a directory another store holds;
//! DiscardSnapshotStore keeps nothing.

use raft_conformance::{Guarded, snapshot_store_suite};
use raft_core::{
    Configuration, DiscardSnapshotStore, FileSnapshotStore, NewSnapshot, SNAPSHOT_VERSION, Server,
    SnapshotError, SnapshotStore,
};
use std::io::{Read, Write};
use tempfile::TempDir;

fn fresh() -> Guarded<FileSnapshotStore, TempDir> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open_with(dir.path(), raft_core::FileSnapshotOptions::default().retain(3))
        .expect("open");
    Guarded { store, guard: dir }
}

fn reopen(old: Guarded<FileSnapshotStore, TempDir>) -> Guarded<FileSnapshotStore, TempDir> {
    let Guarded { store, guard } = old;
    drop(store);
    Guarded {
        store: FileSnapshotStore::open_with(
            guard.path(),
            raft_core::FileSnapshotOptions::default().retain(3),
        )
        .expect("reopen"),
        guard,
    }
}

snapshot_store_suite!(fresh(), reopen = reopen);

fn new_snapshot(index: u64) -> NewSnapshot {
    NewSnapshot {
        version: SNAPSHOT_VERSION,
        index,
        term: 1,
        configuration: Configuration::new(vec![Server::voter("a", "b")]),
        configuration_index: 1,
    }
}

fn write(store: &FileSnapshotStore, index: u64, data: &[u8]) -> String {
    let mut sink = store.create(new_snapshot(index)).expect("create");
    sink.write_all(data).expect("write");
    sink.close().expect("close").id
}

fn flip_byte(path: &std::path::Path, at: u64) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at as usize] ^= 0x40;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_flipped_state_byte_fails_open_with_a_checksum_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open(dir.path()).expect("open");
    let id = write(&store, 5, &vec![3u8; 100_000]);
    flip_byte(&dir.path().join(&id).join("state.bin"), 50_000);
    match store.open(&id) {
        Err(SnapshotError::ChecksumMismatch { id: named, .. }) => assert_eq!(named, id),
        Err(other) => panic!("expected ChecksumMismatch, got {other:?}"),
        Ok(_) => panic!("a damaged snapshot opened"),
    }
}

#[test]
fn damage_after_open_is_caught_when_the_reader_reaches_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open(dir.path()).expect("open");
    let id = write(&store, 5, &vec![3u8; 100_000]);
    let (_, mut reader) = store.open(&id).expect("open");
    flip_byte(&dir.path().join(&id).join("state.bin"), 99_000);
    let mut data = Vec::new();
    let err = reader.read_to_end(&mut data).expect_err("the checksum fails at the end");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<SnapshotError>());
    assert!(matches!(inner, Some(SnapshotError::ChecksumMismatch { .. })), "{err:?}");
}

#[test]
fn damaged_or_truncated_meta_is_a_typed_error_and_not_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open_with(dir.path(), raft_core::FileSnapshotOptions::default().retain(3))
        .expect("open");
    let good = write(&store, 4, b"good");
    let bad = write(&store, 5, b"bad");
    let truncated = write(&store, 6, b"truncated");
    flip_byte(&dir.path().join(&bad).join("meta.bin"), 20);
    let meta = dir.path().join(&truncated).join("meta.bin");
    let bytes = std::fs::read(&meta).expect("read");
    std::fs::write(&meta, &bytes[..bytes.len() / 2]).expect("truncate");
    assert!(matches!(store.open(&bad), Err(SnapshotError::Corrupt { .. })));
    assert!(matches!(store.open(&truncated), Err(SnapshotError::Corrupt { .. })));
    let listed: Vec<String> = store.list().expect("list").into_iter().map(|m| m.id).collect();
    assert_eq!(listed, vec![good]);
}

#[test]
fn a_truncated_state_file_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open(dir.path()).expect("open");
    let id = write(&store, 5, &vec![1u8; 1000]);
    let state = dir.path().join(&id).join("state.bin");
    std::fs::write(&state, vec![1u8; 999]).expect("truncate");
    assert!(matches!(store.open(&id), Err(SnapshotError::Corrupt { .. })));
}

#[test]
fn crash_leftovers_are_never_listed_and_are_reaped_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open(dir.path()).expect("open");
    let kept = write(&store, 3, b"whole");
    // What a crash in the middle of writing leaves: a .tmp directory (the
    // process that held the sink is gone, and with it the store's lock).
    let mut sink = store.create(new_snapshot(9)).expect("create");
    sink.write_all(b"half of it").expect("write");
    sink.flush().expect("flush");
    let unfinished = dir.path().join(format!("{}.tmp", sink.id()));
    let leftover = dir.path().join("1-9-0000000000000-000001.tmp");
    std::fs::create_dir(&leftover).expect("leftover");
    std::fs::copy(unfinished.join("state.bin"), leftover.join("state.bin")).expect("copy");
    sink.cancel().expect("cancel");
    assert_eq!(store.list().expect("list").len(), 1, "an unfinished snapshot is not listed");
    drop(store);
    let reopened = FileSnapshotStore::open(dir.path()).expect("reopen");
    assert!(!leftover.exists(), "the leftover was reaped");
    assert_eq!(reopened.list().expect("list")[0].id, kept);
}

#[test]
fn only_the_newest_retain_snapshots_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open(dir.path()).expect("open");
    let ids: Vec<String> = (1..=5).map(|i| write(&store, i * 10, format!("state {i}").as_bytes())).collect();
    let listed: Vec<String> = store.list().expect("list").into_iter().map(|m| m.id).collect();
    assert_eq!(listed, vec![ids[4].clone(), ids[3].clone()]);
    assert!(!dir.path().join(&ids[0]).exists(), "old snapshot directories are removed");
}

#[test]
fn ids_that_are_not_snapshot_names_are_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open(dir.path()).expect("open");
    for id in ["", "..", "../x", "a/b", "x.tmp"] {
        assert!(matches!(store.open(id), Err(SnapshotError::NotFound { .. })), "{id:?}");
    }
}

#[test]
fn the_discard_store_accepts_snapshots_and_keeps_none() {
    let store = DiscardSnapshotStore::new();
    let mut sink = store.create(new_snapshot(7)).expect("create");
    sink.write_all(&[0u8; 4096]).expect("write");
    let id = sink.id().to_owned();
    let meta = sink.close().expect("close");
    assert_eq!((meta.index, meta.size), (7, 4096));
    assert!(store.list().expect("list").is_empty());
    assert!(matches!(store.open(&id), Err(SnapshotError::NotFound { .. })));
    store.create(new_snapshot(8)).expect("create").cancel().expect("cancel");
}

#[test]
fn files_that_are_not_snapshots_are_skipped_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = {
        let store = FileSnapshotStore::open(dir.path()).expect("open");
        write(&store, 3, b"whole")
    };
    // A regular file with the suffix of a snapshot being written, and one
    // with any other name: neither is ours.
    std::fs::write(dir.path().join("notes.tmp"), b"an operator's file").expect("write");
    std::fs::write(dir.path().join("README"), b"another").expect("write");
    let store = FileSnapshotStore::open(dir.path()).expect("a stray file is not fatal");
    let listed: Vec<String> = store.list().expect("list").into_iter().map(|m| m.id).collect();
    assert_eq!(listed, vec![kept]);
    assert_eq!(std::fs::read(dir.path().join("notes.tmp")).expect("kept"), b"an operator's file");
    assert!(dir.path().join("README").exists());
}

/// The child process of the lock test; does nothing in a normal run.
#[test]
fn lock_child() {
    raft_conformance::exclusive::child(|path| FileSnapshotStore::open(path));
}

#[test]
fn a_second_open_of_a_live_directory_is_refused() {
    raft_conformance::exclusive::second_open_is_refused(
        "lock_child",
        |path| FileSnapshotStore::open(path),
        |error| matches!(error, SnapshotError::Locked { path } if path.ends_with("raft-kit.lock")),
    );
}
