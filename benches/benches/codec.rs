//! Encoding and decoding an AppendEntries of 64 × 1 KiB entries.

use benches::entries::batch;
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use raft_core::codec::{decode_message, encode_message, message_to_bytes};
use raft_core::{AppendEntriesRequest, Message, RpcHeader};

fn append_entries(c: &mut Criterion) {
    let message = Message::AppendEntriesRequest(AppendEntriesRequest {
        header: RpcHeader::new("node-1".into(), "10.0.0.1:7000".into()),
        term: 7,
        prev_log_index: 1000,
        prev_log_term: 7,
        entries: batch(1001, 64, 1024),
        leader_commit: 999,
    });
    let encoded = message_to_bytes(&message);
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    let mut buf = BytesMut::with_capacity(encoded.len());
    group.bench_function("encode_append_entries_64x1KiB", |b| {
        b.iter(|| {
            buf.clear();
            encode_message(&message, &mut buf);
        })
    });
    group.bench_function("decode_append_entries_64x1KiB", |b| {
        b.iter(|| decode_message(encoded.clone()).expect("decode"))
    });
    group.finish();
}

criterion_group!(benches, append_entries);
criterion_main!(benches);
