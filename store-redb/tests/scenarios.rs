//! The cluster scenarios that exercise durability — persistence across
//! crashes, Figure 8, churn, snapshot install and restarts — with every node
//! on a RedbStore (full durability) and a FileSnapshotStore.

use raft_conformance::cluster::{DirStores, InmemCluster, seed_from_env};
use store_redb::RedbStore;

fn open(path: &std::path::Path) -> RedbStore {
    std::fs::create_dir_all(path).expect("node directory");
    RedbStore::open(path.join("raft.redb")).expect("open the redb store")
}

raft_conformance::cluster_suite!(
    network = InmemCluster::new(seed_from_env()),
    stores = DirStores::new(open),
    scenarios = durable,
);
