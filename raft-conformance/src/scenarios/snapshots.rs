//! Snapshot scenarios: automatic snapshots and compaction, InstallSnapshot
//! to followers that fell behind the compacted log, restarts from snapshots,
//! and a leader whose snapshot store fails.

use super::{ELECTION, cmd};
use crate::cluster::{Cluster, Network, NodeStores, StoreFactory, test_config};
use raft_core::recovery::RecoveryError;
use raft_core::{
    Config, NewSnapshot, RaftError, ServerId, SnapshotError, SnapshotMeta, SnapshotReader, SnapshotSink,
    SnapshotStore,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Snapshots every 20 applied entries, checked every 20 ms, keeping 5
/// entries behind each: a few dozen commands compact the log several times.
pub fn snapshot_config(id: ServerId) -> Config {
    let mut config = test_config(id);
    config.snapshot_threshold = 20;
    config.snapshot_interval = Duration::from_millis(20);
    config.trailing_logs = 5;
    config
}

async fn apply_many(cluster: &Cluster, from: u64, count: u64, expected: usize) -> u64 {
    let mut last = 0;
    for n in from..from + count {
        last = cluster.one(cmd(n), expected, true).await;
    }
    last
}

/// Waits until `check` holds, failing the test after `timeout`.
async fn eventually(cluster: &Cluster, what: &str, timeout: Duration, check: impl Fn(&Cluster) -> bool) {
    let deadline = Instant::now() + timeout;
    while !check(cluster) {
        if Instant::now() > deadline {
            cluster.fail(&format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn first_index(cluster: &Cluster, node: usize) -> u64 {
    cluster.stores(node).logs.first_index().unwrap_or(0)
}

/// Asserts every running node holds every committed command up to `index`.
fn assert_complete(cluster: &Cluster, index: u64) {
    for node in (0..cluster.len()).filter(|&i| cluster.is_running(i)) {
        if let Some((at, command)) = cluster.checker().missing_on(node, index) {
            cluster.fail(&format!("node {node} lacks committed {command:?} at {at}"));
        }
    }
}

/// Every node takes snapshots while applying and compacts its log, and
/// every node's applied state stays identical.
pub async fn snapshot_basic(network: impl Network, stores: impl StoreFactory) {
    let cluster = Cluster::with_config(network, stores, 3, snapshot_config).await;
    let last = apply_many(&cluster, 1, 80, 3).await;
    cluster.wait_all_applied(last, Duration::from_secs(5)).await;
    eventually(&cluster, "every node to snapshot and compact", Duration::from_secs(5), |c| {
        (0..3).all(|i| c.raft(i).stats().last_snapshot_index > 0 && first_index(c, i) > 1)
    })
    .await;
    assert_complete(&cluster, last);
    cluster.shutdown().await;
}

async fn install(network: impl Network, stores: impl StoreFactory, unreliable: bool, crash: bool) {
    let mut cluster = Cluster::with_config(network, stores, 3, snapshot_config).await;
    cluster.one(cmd(0), 3, true).await;
    let leader = cluster.check_one_leader().await;
    let lagging = (leader + 1) % 3;
    let behind = cluster.raft(lagging).last_index();
    if crash {
        cluster.crash(lagging).await;
    } else {
        cluster.disconnect(lagging);
    }
    let last = apply_many(&cluster, 1, 60, 2).await;
    // The live nodes compact past everything the lagging node has.
    eventually(&cluster, "the leader to compact past the lagging node", Duration::from_secs(5), |c| {
        (0..3).filter(|&i| i != lagging).all(|i| first_index(c, i) > behind + 1)
    })
    .await;
    cluster.set_unreliable(unreliable);
    if crash {
        cluster.restart(lagging).await;
    } else {
        cluster.connect(lagging);
    }
    let index = cluster.one(cmd(1000), 3, true).await;
    cluster.set_unreliable(false);
    cluster.wait_all_applied(index.max(last), Duration::from_secs(10)).await;
    assert!(
        !cluster.stores(lagging).snapshots.list().unwrap_or_default().is_empty(),
        "the lagging node holds no snapshot: it cannot have caught up past the compacted log"
    );
    assert_complete(&cluster, index);
    cluster.shutdown().await;
}

/// A follower disconnected while the leader compacts its log catches up by
/// InstallSnapshot when it returns.
pub async fn snapshot_install(network: impl Network, stores: impl StoreFactory) {
    install(network, stores, false, false).await;
}

/// InstallSnapshot on an unreliable network.
pub async fn snapshot_install_unreliable(network: impl Network, stores: impl StoreFactory) {
    install(network, stores, true, false).await;
}

/// A crashed follower restarted after the leader compacted catches up by snapshot.
pub async fn snapshot_install_after_crash(network: impl Network, stores: impl StoreFactory) {
    install(network, stores, false, true).await;
}

/// Every node crashes and restarts from its snapshot plus the log after it;
/// nothing committed is lost and the cluster goes on.
pub async fn snapshot_all_crash_and_restart(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::with_config(network, stores, 3, snapshot_config).await;
    let last = apply_many(&cluster, 1, 70, 3).await;
    cluster.wait_all_applied(last, Duration::from_secs(5)).await;
    eventually(&cluster, "every node to snapshot", Duration::from_secs(5), |c| {
        (0..3).all(|i| c.raft(i).stats().last_snapshot_index > 0)
    })
    .await;
    for i in 0..3 {
        cluster.crash(i).await;
    }
    for i in 0..3 {
        cluster.restart(i).await;
    }
    let index = cluster.one(cmd(5000), 3, true).await;
    cluster.wait_all_applied(index, Duration::from_secs(5)).await;
    assert_complete(&cluster, index);
    cluster.shutdown().await;
}

/// A node whose log was deleted, while its store still records which
/// entries were committed, refuses to start (its snapshot does not hold them
/// all); emptied and added back, it catches up from the leader's snapshot.
pub async fn snapshot_restart_without_log(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::with_config(network, stores, 3, snapshot_config).await;
    let leader = cluster.check_one_leader().await;
    let node = (leader + 2) % 3;
    let last = apply_many(&cluster, 1, 50, 3).await;
    cluster.wait_all_applied(last, Duration::from_secs(5)).await;
    eventually(&cluster, "the node to snapshot", Duration::from_secs(5), |c| {
        c.raft(node).stats().last_snapshot_index > 0
    })
    .await;
    // The test needs committed entries past the node's snapshot, recorded
    // in its store: a snapshot taken late (a loaded machine) may hold every
    // entry, and then a node without its log rightly starts. A snapshot
    // needs 20 new entries, so a few more writes always get past it.
    let mut next = 51;
    loop {
        let snapshot = cluster.raft(node).stats().last_snapshot_index;
        let stored = cluster.stores(node).logs.commit_index().ok().flatten().unwrap_or(0);
        if stored > snapshot {
            break;
        }
        if next > 100 {
            cluster.fail(&format!(
                "the node's stored commit index {stored} never passed its snapshot {snapshot}"
            ));
        }
        let index = cluster.one(cmd(next), 3, true).await;
        cluster.wait_all_applied(index, Duration::from_secs(5)).await;
        next += 1;
    }
    cluster.crash(node).await;
    if let Err(error) = cluster.stores(node).logs.delete_range(0, u64::MAX) {
        cluster.fail(&format!("clearing the log failed: {error}"));
    }
    // The store still says which entries were committed, and the snapshot
    // does not hold them all: the node must refuse to start.
    match cluster.try_restart(node).await {
        Err(RaftError::Recovery(RecoveryError::MissingEntries { .. })) => {}
        Err(other) => cluster.fail(&format!("expected MissingEntries, got {other}")),
        Ok(()) => cluster.fail("a node that lost committed entries started"),
    }
    // The operator's way out: empty the node and add it back; it catches up
    // by installing the leader's snapshot.
    let leader = cluster.check_one_leader().await;
    let removed = cluster.raft(leader).remove_server(cluster.id(node), 0, Duration::from_secs(5)).await;
    if let Err(error) = removed {
        cluster.fail(&format!("removing the node failed: {error}"));
    }
    cluster.wipe(node).await;
    let leader = cluster.check_one_leader().await;
    let address = cluster.address(node);
    let added = cluster.raft(leader).add_voter(cluster.id(node), address, 0, Duration::from_secs(5)).await;
    if let Err(error) = added {
        cluster.fail(&format!("adding the node back failed: {error}"));
    }
    let index = cluster.one(cmd(5000), 3, true).await;
    cluster.wait_all_applied(index, Duration::from_secs(5)).await;
    assert!(cluster.raft(node).stats().last_snapshot_index > 0, "the node did not install a snapshot");
    assert_complete(&cluster, index);
    cluster.shutdown().await;
}

/// A snapshot store that fails every `create` while its switch is on.
pub struct FailingSnapshots {
    inner: Arc<dyn SnapshotStore>,
    failing: Arc<AtomicBool>,
}

impl SnapshotStore for FailingSnapshots {
    fn create(&self, snapshot: NewSnapshot) -> Result<Box<dyn SnapshotSink>, SnapshotError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(SnapshotError::Io(std::io::Error::other("injected snapshot store failure")));
        }
        self.inner.create(snapshot)
    }
    fn list(&self) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        self.inner.list()
    }
    fn open(&self, id: &str) -> Result<(SnapshotMeta, SnapshotReader), SnapshotError> {
        self.inner.open(id)
    }
}

struct WithFailingSnapshots<S> {
    inner: S,
    switches: Arc<Vec<Arc<AtomicBool>>>,
}

impl<S: StoreFactory> StoreFactory for WithFailingSnapshots<S> {
    fn create(&self, node: usize) -> NodeStores {
        let mut stores = self.inner.create(node);
        stores.snapshots =
            Arc::new(FailingSnapshots { inner: stores.snapshots, failing: self.switches[node].clone() });
        stores
    }
}

/// A leader whose snapshot store fails keeps serving, reports the failure,
/// and snapshots again once the store recovers.
pub async fn snapshot_store_failure_keeps_serving(network: impl Network, stores: impl StoreFactory) {
    let switches: Arc<Vec<Arc<AtomicBool>>> =
        Arc::new((0..3).map(|_| Arc::new(AtomicBool::new(false))).collect());
    let stores = WithFailingSnapshots { inner: stores, switches: switches.clone() };
    let cluster = Cluster::with_config(network, stores, 3, snapshot_config).await;
    let leader = cluster.check_one_leader().await;
    let raft = cluster.raft(leader);
    let mut events = raft.subscribe();
    switches[leader].store(true, Ordering::SeqCst);
    let last = apply_many(&cluster, 1, 40, 3).await;
    assert_eq!(cluster.check_one_leader().await, leader, "the leader lost its place over a snapshot failure");
    match raft.snapshot().await {
        Err(raft_core::RaftError::Snapshot(_) | raft_core::RaftError::SnapshotInProgress) => {}
        other => cluster.fail(&format!("a snapshot on a failing store gave {other:?}")),
    }
    let mut reported = false;
    while let Ok(event) = events.try_recv() {
        reported |= matches!(event, raft_core::Observation::SnapshotFailed { .. });
    }
    assert!(reported, "the failing snapshots were not reported");
    switches[leader].store(false, Ordering::SeqCst);
    tokio::time::sleep(ELECTION / 2).await;
    let covered = match raft.snapshot().await {
        Ok(snapshot) => Ok(snapshot.meta().index),
        Err(raft_core::RaftError::NothingNewToSnapshot) => Ok(raft.stats().last_snapshot_index),
        Err(other) => Err(other),
    };
    match covered {
        Ok(index) => assert!(index >= last, "the snapshot after recovery covers index {index}"),
        Err(error) => cluster.fail(&format!("snapshot after the store recovered failed: {error}")),
    }
    cluster.shutdown().await;
}
