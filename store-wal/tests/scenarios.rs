//! The cluster scenarios that exercise durability — persistence across
//! crashes, Figure 8, churn, snapshot install and restarts — with every node
//! on a WalStore and a FileSnapshotStore.

use raft_conformance::cluster::{DirStores, InmemCluster, seed_from_env};
use store_wal::{WalOptions, WalStore};

fn open(path: &std::path::Path) -> WalStore {
    WalStore::open_with(path.join("wal"), WalOptions::default().segment_size(1 << 20))
        .expect("open the WAL store")
}

raft_conformance::cluster_suite!(
    network = InmemCluster::new(seed_from_env()),
    stores = DirStores::new(open),
    scenarios = durable,
);
