//! One node id, not one per part: a node refuses to start on a TCP
//! transport that introduces itself with another id (issue #15).

use raft_conformance::test_fsm::{Checker, TestFsm};
use raft_core::{Config, ConfigError, Raft, RaftError, ServerId};
use std::sync::Arc;
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use transport_tcp::{TcpConfig, TcpTransport};

async fn start(node: &str, transport_id: &str) -> Result<Raft<TestFsm>, RaftError> {
    let tcp = TcpConfig::new(transport_id, "identity", "127.0.0.1:0".parse().expect("addr"));
    let transport = TcpTransport::bind(tcp).await.expect("bind");
    let fsm = TestFsm::new(0, Arc::new(Checker::default()));
    Raft::new(
        Config::fast(node),
        fsm,
        MemLogStore::new(),
        MemStableStore::new(),
        InmemSnapshotStore::new(),
        transport,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_with_another_node_id_is_refused() {
    let refused = start("node-1", "node-2").await.expect_err("a mismatched id was accepted");
    match refused {
        RaftError::Config(ConfigError::TransportIdMismatch { node, transport }) => {
            assert_eq!((node, transport), (ServerId::new("node-1"), ServerId::new("node-2")));
        }
        other => panic!("{other}"),
    }
    let raft = start("node-1", "node-1").await.expect("the same id starts");
    raft.shutdown().await.expect("shutdown");
}
