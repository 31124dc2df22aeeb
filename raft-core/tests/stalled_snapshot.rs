//! A peer that sends part of a snapshot and then goes silent, with its
//! stream open, never freezes the node that receives it: the snapshot is
//! received beside the node's loop, which keeps answering heartbeats, votes
//! and its own API, and a stream that delivers nothing for
//! `snapshot_receive_timeout` is abandoned and cleaned up (issue #13, item 1).

mod support;

use bytes::Bytes;
use raft_core::*;
use std::time::Duration;
use support::*;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_snapshot_stream_never_freezes_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshots = FileSnapshotStore::open(dir.path()).expect("snapshot store");
    let mut config = config("node-0");
    config.snapshot_receive_timeout = Duration::from_millis(600);
    let (raft, probes, _network) =
        lone_follower_on(SumFsm::default(), store_mem::MemLogStore::new(), snapshots, config, &["probe"])
            .await;
    let probe = &probes[0];
    let node = addr(0);
    assert!(probe.append(&node, 2, (1, 1), commands(2, 10, 2), 10).await.success);
    wait_for("the entries to apply", SECOND * 5, || (raft.applied_index() >= 10).then_some(())).await;

    // 1 KiB of a 1 MiB snapshot, then silence with the stream open.
    let (chunks, stream) = tokio::sync::mpsc::channel(1);
    chunks.send(Ok(Bytes::from(vec![7u8; 1024]))).await.expect("send");
    let request = InstallSnapshotRequest {
        header: probe.header(),
        snapshot_version: SNAPSHOT_VERSION,
        term: 2,
        last_log_index: 50,
        last_log_term: 2,
        configuration: raft.get_configuration().1,
        configuration_index: 1,
        size: 1 << 20,
    };
    let install = tokio::spawn({
        let transport = probe.transport.clone();
        let node = node.clone();
        async move { transport.install_snapshot(node, request, transport::chunk_stream(stream)).await }
    });

    // Meanwhile the node answers heartbeats, appends and its own API at once.
    for n in 0..5u64 {
        let heartbeat = tokio::time::timeout(SECOND, probe.append(&node, 2, (0, 0), Vec::new(), 10));
        assert!(heartbeat.await.expect("a heartbeat answered while a snapshot stalls").success);
        let index = 11 + n;
        let appended = tokio::time::timeout(
            SECOND,
            probe.append(&node, 2, (index - 1, 2), commands(index, index, 2), index),
        );
        assert!(appended.await.expect("an append answered while a snapshot stalls").success);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let taken = tokio::time::timeout(SECOND, raft.snapshot()).await.expect("Raft::snapshot answered in time");
    assert!(taken.expect("snapshot").meta().index >= 10);

    // The stalled stream is abandoned after its timeout, and nothing of it stays.
    let outcome =
        tokio::time::timeout(SECOND * 5, install).await.expect("the stalled install ends").expect("task");
    assert!(!matches!(outcome, Ok(InstallSnapshotResponse { success: true, .. })), "{outcome:?}");
    drop(chunks);
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "an abandoned snapshot left {leftovers:?}");
    assert!(raft.last_index() >= 15 && raft.stats().last_snapshot_index < 50, "{:?}", raft.stats());
    raft.shutdown().await.expect("shutdown");
}
