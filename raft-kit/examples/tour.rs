//! A tour of what raft-kit has today: store a batch of entries, compact the
//! log, encode the AppendEntries a leader would send for them, decode it as a
//! follower would, and take a snapshot.
//!
//! Run it with `cargo run -p raft-kit --example tour`.

use bytes::Bytes;
use raft_kit::codec;
use raft_kit::prelude::*;
use raft_kit::store::mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use raft_kit::{AppendEntriesRequest, Message, NewSnapshot, RpcHeader, SNAPSHOT_VERSION};
use std::io::{Read, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let logs = MemLogStore::new();
    let stable = MemStableStore::new();
    let snapshots = InmemSnapshotStore::new();

    let batch: Vec<Log> = (1..=100).map(|i| Log::command(i, 1, format!("set k{i} = {}", i * i))).collect();
    logs.store_logs(&batch)?;
    stable.set_u64(b"CurrentTerm", 1)?;
    println!("stored entries {}..={}", logs.first_index()?, logs.last_index()?);

    let request = AppendEntriesRequest {
        header: RpcHeader::new("n1".into(), "127.0.0.1:7001".into()),
        term: stable.get_u64(b"CurrentTerm")?.unwrap_or(0),
        prev_log_index: 90,
        prev_log_term: 1,
        entries: logs.get_logs(91, 100, 64 * 1024)?,
        leader_commit: 90,
    };
    let bytes = codec::message_to_bytes(&Message::AppendEntriesRequest(request.clone()));
    let decoded = codec::decode_message(bytes.clone())?;
    assert_eq!(decoded, Message::AppendEntriesRequest(request));
    println!("an AppendEntries of 10 entries encodes to {} bytes and decodes back equal", bytes.len());

    let configuration = Configuration::new(vec![Server::voter("n1", "127.0.0.1:7001")]);
    let mut sink = snapshots.create(NewSnapshot {
        version: SNAPSHOT_VERSION,
        index: 90,
        term: 1,
        configuration,
        configuration_index: 1,
    })?;
    sink.write_all(b"state of the FSM at index 90")?;
    let meta = sink.close()?;
    logs.delete_range(1, 90)?;
    println!(
        "snapshot {} covers index {}; log compacted to {}..={}",
        meta.id,
        meta.index,
        logs.first_index()?,
        logs.last_index()?
    );

    let (_, mut reader) = snapshots.open(&meta.id)?;
    let mut state = Vec::new();
    reader.read_to_end(&mut state)?;
    assert_eq!(Bytes::from(state), Bytes::from_static(b"state of the FSM at index 90"));
    println!("snapshot reads back {} bytes", meta.size);
    Ok(())
}
