//! Cluster scenarios over real sockets on loopback: elections, agreement,
//! leader failure, persistence, partitions made by refusing connections,
//! and snapshot install.

use raft_conformance::cluster::{BoxFuture, Network, NodeStores, seed_from_env};
use raft_core::{ServerAddress, ServerId, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use transport_tcp::{PeerFilter, TcpConfig, TcpTransport};

/// Which nodes may talk: each node's group (`None`: disconnected from all).
#[derive(Default)]
struct Links {
    groups: HashMap<usize, Option<usize>>,
}

/// Nodes on loopback TCP; partitions are made by refusing connections.
struct TcpCluster {
    seed: u64,
    addresses: Arc<Mutex<HashMap<usize, SocketAddr>>>,
    links: Arc<Mutex<Links>>,
}

impl TcpCluster {
    fn new(seed: u64) -> Self {
        Self { seed, addresses: Arc::default(), links: Arc::default() }
    }

    fn filter(&self, node: usize) -> PeerFilter {
        let links = self.links.clone();
        let by_address = self.addresses.clone();
        Arc::new(move |address: &ServerAddress, id: Option<&ServerId>| {
            let peer = match id {
                Some(id) => id.as_str().strip_prefix("node-").and_then(|n| n.parse::<usize>().ok()),
                None => by_address
                    .lock()
                    .expect("lock")
                    .iter()
                    .find(|(_, a)| a.to_string() == address.as_str())
                    .map(|(n, _)| *n),
            };
            let links = links.lock().expect("lock");
            let group = |n: usize| links.groups.get(&n).copied().unwrap_or(Some(0));
            match peer {
                Some(peer) => group(node).is_some() && group(node) == group(peer),
                None => group(node).is_some(),
            }
        })
    }
}

impl Network for TcpCluster {
    fn seed(&self) -> u64 {
        self.seed
    }

    fn address(&self, node: usize) -> ServerAddress {
        let addresses = self.addresses.lock().expect("lock");
        ServerAddress::new(
            addresses.get(&node).map_or_else(|| format!("unbound-{node}"), ToString::to_string),
        )
    }

    fn transport(&self, node: usize) -> BoxFuture<'_, Arc<dyn Transport>> {
        Box::pin(async move {
            let bind = self
                .addresses
                .lock()
                .expect("lock")
                .get(&node)
                .copied()
                .unwrap_or_else(|| "127.0.0.1:0".parse().expect("loopback"));
            let mut config = TcpConfig::new(format!("node-{node}"), "scenarios", bind);
            config.connect_timeout = std::time::Duration::from_millis(500);
            config.rpc_timeout = std::time::Duration::from_secs(2);
            config.peer_filter = Some(self.filter(node));
            let transport = TcpTransport::bind(config).await.expect("bind on loopback");
            self.addresses.lock().expect("lock").insert(node, transport.bound_addr());
            let transport: Arc<dyn Transport> = Arc::new(transport);
            transport
        })
    }

    fn set_connected(&self, node: usize, connected: bool) {
        self.links.lock().expect("lock").groups.insert(node, connected.then_some(0));
    }

    fn partition(&self, groups: &[Vec<usize>]) {
        let mut links = self.links.lock().expect("lock");
        for (group, members) in groups.iter().enumerate() {
            for &node in members {
                links.groups.insert(node, Some(group + 1));
            }
        }
    }

    fn heal(&self) {
        self.links.lock().expect("lock").groups.clear();
    }

    fn set_unreliable(&self, _unreliable: bool) {}

    fn rpc_count(&self, _node: usize) -> Option<u64> {
        None
    }

    fn bytes_sent(&self, _node: usize) -> Option<u64> {
        None
    }

    fn append_count(&self, _node: usize) -> Option<u64> {
        None
    }
}

fn mem_stores(_node: usize) -> NodeStores {
    NodeStores::new(MemLogStore::new(), MemStableStore::new(), InmemSnapshotStore::new())
}

raft_conformance::cluster_suite!(
    network = TcpCluster::new(seed_from_env()),
    stores = mem_stores,
    scenarios = [
        initial_election,
        re_election,
        basic_agreement_3,
        basic_agreement_5,
        follower_failure,
        leader_failure,
        fail_no_agree,
        concurrent_applies,
        persist_1,
        persist_3,
        leader_steps_down_without_quorum,
        snapshot_install,
        snapshot_install_after_crash,
        leadership_transfer_moves_leadership,
    ],
);
