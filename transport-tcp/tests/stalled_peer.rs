//! Over real sockets: a peer that sends 1 KiB of a snapshot and then goes
//! silent with its connection open never stops the node it sends to. The
//! node keeps following its leader, applying and answering its own API; it
//! abandons the snapshot after `snapshot_receive_timeout`, answers the peer
//! with an error, and the transport closes the connection once no chunk has
//! come for `rpc_timeout` (issue #13, item 1).

mod support;

use raft_conformance::test_fsm::{Checker, TestFsm};
use raft_core::{Configuration, InstallSnapshotRequest, Message, Raft, RpcHeader, SNAPSHOT_VERSION, Server};
use std::sync::Arc;
use std::time::Duration;
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use support::RawPeer;
use tokio::time::Instant;
use transport_tcp::wire::FrameKind;
use transport_tcp::{TcpConfig, TcpTransport};

const SECOND: Duration = Duration::from_secs(1);

async fn tcp_cluster(n: usize) -> (Vec<Raft<TestFsm>>, Vec<std::net::SocketAddr>) {
    let checker = Arc::new(Checker::default());
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..n {
        let mut tcp = TcpConfig::new(format!("node-{i}"), "stall", "127.0.0.1:0".parse().expect("addr"));
        tcp.rpc_timeout = SECOND * 2;
        let transport = TcpTransport::bind(tcp).await.expect("bind");
        addrs.push(transport.bound_addr());
        let config = raft_conformance::cluster::test_config(format!("node-{i}").into());
        let fsm = TestFsm::new(i, checker.clone());
        let raft = Raft::new(
            config,
            fsm,
            MemLogStore::new(),
            MemStableStore::new(),
            InmemSnapshotStore::new(),
            transport,
        )
        .await
        .expect("start");
        nodes.push(raft);
    }
    let servers = (0..n).map(|i| Server::voter(format!("node-{i}"), addrs[i].to_string())).collect();
    nodes[0].bootstrap_cluster(Configuration::new(servers)).await.expect("bootstrap");
    (nodes, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stalls_a_snapshot_stream_never_stops_the_node() {
    let (nodes, addrs) = tcp_cluster(3).await;
    let deadline = Instant::now() + SECOND * 10;
    let leader = loop {
        if let Some(leader) = nodes.iter().position(Raft::is_leader) {
            break leader;
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    nodes[leader].barrier(SECOND * 5).await.expect("barrier");
    let follower = (leader + 1) % 3;

    // The stalled peer claims to be the leader, at its term, and sends 1 KiB
    // of a 1 MiB snapshot, then nothing.
    let mut peer = RawPeer::connect(addrs[follower], "stall", &format!("node-{leader}")).await;
    let request = InstallSnapshotRequest {
        header: RpcHeader::new(nodes[leader].id().clone(), nodes[leader].local_addr().clone()),
        snapshot_version: SNAPSHOT_VERSION,
        term: nodes[leader].current_term(),
        last_log_index: 100_000,
        last_log_term: nodes[leader].current_term(),
        configuration: nodes[leader].get_configuration().1,
        configuration_index: 1,
        size: 1 << 20,
    };
    peer.send_message(1, &Message::InstallSnapshotRequest(request)).await;
    peer.send_raw(FrameKind::SnapshotChunk, 1, &[7u8; 1024]).await;
    let stalled_at = Instant::now();

    // For two seconds the cluster goes on: the follower applies every
    // command within a second of its commit, and answers its own API.
    while stalled_at.elapsed() < SECOND * 2 {
        let applied = nodes[leader].apply("command", SECOND).await.expect("the leader applies");
        let node = &nodes[follower];
        let until = Instant::now() + SECOND;
        while node.applied_index() < applied.index {
            assert!(Instant::now() < until, "the follower stopped applying while a snapshot stalls");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let snapshot = tokio::time::timeout(SECOND, node.snapshot()).await;
        assert!(snapshot.is_ok(), "Raft::snapshot on the follower hung");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!nodes[follower].is_leader());
    assert!(nodes[follower].stats().last_snapshot_index < 100_000, "the partial snapshot was installed");

    // The node gave up on the stream and said so; the transport then cut the
    // silent peer off.
    let answer = tokio::time::timeout(SECOND * 5, peer.next_frame()).await.expect("an answer in time");
    let answer = answer.expect("an answer before the connection closed");
    assert_eq!((answer.kind, answer.request_id), (FrameKind::Error, 1), "{answer:?}");
    let closed = tokio::time::timeout(SECOND * 5, peer.next_frame()).await.expect("closed in time");
    assert!(closed.is_none(), "the connection of a silent snapshot sender stayed open");
    for raft in nodes {
        raft.shutdown().await.expect("shutdown");
    }
}
