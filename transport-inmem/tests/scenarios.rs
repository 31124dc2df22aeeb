//! The cluster scenario suite on the in-memory network with in-memory stores:
//! elections, agreement, failures, partitions, an unreliable network,
//! restarts, Figure 8 and churn.

use raft_conformance::cluster::{InmemCluster, NodeStores, seed_from_env};
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};

fn mem_stores(_node: usize) -> NodeStores {
    NodeStores::new(MemLogStore::new(), MemStableStore::new(), InmemSnapshotStore::new())
}

raft_conformance::cluster_suite!(network = InmemCluster::new(seed_from_env()), stores = mem_stores);
