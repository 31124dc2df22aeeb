//! The cluster scenarios that exercise durability — persistence across
//! crashes, Figure 8, churn, snapshot install and restarts — with every node
//! on an LmdbStore (full durability) and a FileSnapshotStore.

use raft_conformance::cluster::{DirStores, InmemCluster, seed_from_env};
use store_lmdb::LmdbStore;

fn open(path: &std::path::Path) -> LmdbStore {
    LmdbStore::open(path).expect("open the LMDB store")
}

raft_conformance::cluster_suite!(
    network = InmemCluster::new(seed_from_env()),
    stores = DirStores::new(open),
    scenarios = durable,
);
