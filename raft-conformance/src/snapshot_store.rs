//! The [`SnapshotStore`] conformance cases, run through [`snapshot_store_suite!`](crate::snapshot_store_suite).

use crate::Fixture;
use raft_core::{Configuration, NewSnapshot, SNAPSHOT_VERSION, Server, SnapshotError, SnapshotStore};
use std::io::{Read, Write};

fn new_snapshot(index: u64, term: u64) -> NewSnapshot {
    NewSnapshot {
        version: SNAPSHOT_VERSION,
        index,
        term,
        configuration: Configuration::new(vec![Server::voter("n1", "a1"), Server::nonvoter("n2", "a2")]),
        configuration_index: index.saturating_sub(1),
    }
}

fn write_snapshot<S: SnapshotStore>(
    store: &S,
    index: u64,
    term: u64,
    data: &[u8],
) -> raft_core::SnapshotMeta {
    let mut sink = store.create(new_snapshot(index, term)).expect("create");
    sink.write_all(data).expect("write");
    let id = sink.id().to_owned();
    let meta = sink.close().expect("close");
    assert_eq!(meta.id, id, "close returns the sink's id");
    meta
}

fn read_all<S: SnapshotStore>(store: &S, id: &str) -> (raft_core::SnapshotMeta, Vec<u8>) {
    let (meta, mut reader) = store.open(id).expect("open");
    let mut data = Vec::new();
    reader.read_to_end(&mut data).expect("read");
    (meta, data)
}

/// A closed snapshot is listed and opens with the same meta and bytes.
pub fn create_close_list_open<S: SnapshotStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let data = b"the state machine's state".repeat(100);
    let meta = write_snapshot(&store, 10, 3, &data);
    let expected = new_snapshot(10, 3).into_meta(meta.id.clone(), data.len() as u64);
    assert_eq!(meta, expected);
    assert_eq!(store.list().expect("list"), vec![expected.clone()]);
    assert_eq!(read_all(&store, &meta.id), (expected, data));
}

/// An empty snapshot is stored and read back as empty.
pub fn empty_snapshot_round_trips<S: SnapshotStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let meta = write_snapshot(&store, 1, 1, b"");
    assert_eq!(meta.size, 0);
    assert_eq!(read_all(&store, &meta.id).1, Vec::<u8>::new());
}

/// `list` gives the newest snapshot first (by term, then index).
pub fn list_is_newest_first<S: SnapshotStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    write_snapshot(&store, 10, 1, b"a");
    write_snapshot(&store, 20, 1, b"b");
    write_snapshot(&store, 15, 2, b"c");
    let listed = store.list().expect("list");
    assert!(!listed.is_empty());
    assert_eq!((listed[0].index, listed[0].term), (15, 2), "newest first");
    for pair in listed.windows(2) {
        assert!((pair[0].term, pair[0].index) >= (pair[1].term, pair[1].index), "{listed:?}");
    }
}

/// A cancelled sink leaves nothing behind.
pub fn cancel_leaves_nothing<S: SnapshotStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let mut sink = store.create(new_snapshot(5, 1)).expect("create");
    sink.write_all(b"half a snapshot").expect("write");
    let id = sink.id().to_owned();
    sink.cancel().expect("cancel");
    assert!(store.list().expect("list").is_empty());
    assert!(matches!(store.open(&id), Err(SnapshotError::NotFound { .. })));
}

/// A sink not yet closed is not listed, and cannot be opened.
pub fn unclosed_sink_is_not_listed<S: SnapshotStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let mut sink = store.create(new_snapshot(5, 1)).expect("create");
    sink.write_all(b"in progress").expect("write");
    assert!(store.list().expect("list").is_empty());
    assert!(matches!(store.open(sink.id()), Err(SnapshotError::NotFound { .. })));
    let meta = sink.close().expect("close");
    assert_eq!(store.list().expect("list"), vec![meta]);
}

/// Opening an unknown id is [`SnapshotError::NotFound`] naming the id.
pub fn open_unknown_id_is_error<S: SnapshotStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    write_snapshot(&store, 1, 1, b"x");
    match store.open("no-such-snapshot") {
        Err(SnapshotError::NotFound { id }) => assert_eq!(id, "no-such-snapshot"),
        Err(other) => panic!("expected NotFound, got {other:?}"),
        Ok(_) => panic!("an unknown id opened"),
    }
}

/// The byte at `offset` of the large test snapshot.
fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(2654435761) >> 13) as u8
}

/// A 64 MiB snapshot written and read in 64 KiB chunks comes back byte for byte.
pub fn large_snapshot_streams<S: SnapshotStore>(fixture: &Fixture<S>) {
    const SIZE: u64 = 64 << 20;
    const CHUNK: usize = 64 << 10;
    let store = fixture.fresh();
    let mut sink = store.create(new_snapshot(100, 4)).expect("create");
    let mut chunk = vec![0u8; CHUNK];
    let mut offset = 0u64;
    while offset < SIZE {
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = pattern(offset + i as u64);
        }
        sink.write_all(&chunk).expect("write");
        offset += CHUNK as u64;
    }
    let meta = sink.close().expect("close");
    assert_eq!(meta.size, SIZE);
    let (_, mut reader) = store.open(&meta.id).expect("open");
    let mut offset = 0u64;
    loop {
        let read = reader.read(&mut chunk).expect("read");
        if read == 0 {
            break;
        }
        for (i, byte) in chunk[..read].iter().enumerate() {
            assert_eq!(*byte, pattern(offset + i as u64), "byte {}", offset + i as u64);
        }
        offset += read as u64;
    }
    assert_eq!(offset, SIZE);
}

/// Closed snapshots survive close and reopen of the store.
pub fn reopen_keeps_snapshots<S: SnapshotStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let meta = write_snapshot(&store, 42, 7, b"durable state");
    let store = fixture.reopen(store);
    assert_eq!(store.list().expect("list").first(), Some(&meta));
    assert_eq!(read_all(&store, &meta.id), (meta, b"durable state".to_vec()));
}
