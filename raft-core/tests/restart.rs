//! Restarting a node on what its stores hold: falling back to an older
//! snapshot when the log still continues it, leaving the FSM alone when
//! asked, and refusing to start, with a typed error that says what is
//! missing, when the stores do not fit together (issue #12, items 2 and 3):
//! a node never throws log entries away to fit an older snapshot.

mod support;

use raft_core::recovery::RecoveryError;
use raft_core::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::*;

const SECOND: Duration = Duration::from_secs(1);

/// A single node with a file snapshot store, whose parts survive restarts.
struct FileNode {
    dir: tempfile::TempDir,
    network: transport_inmem::InmemNetwork,
    logs: Arc<store_mem::MemLogStore>,
    stable: Arc<store_mem::MemStableStore>,
    sum: Arc<std::sync::atomic::AtomicU64>,
    trailing_logs: u64,
    retain: usize,
}

impl FileNode {
    fn new(seed: u64) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            network: transport_inmem::InmemNetwork::new(seed),
            logs: Arc::default(),
            stable: Arc::default(),
            sum: Arc::default(),
            trailing_logs: 10_240,
            retain: 2,
        }
    }

    /// A node whose snapshots compact the log down to `trailing_logs`
    /// entries, keeping `retain` snapshots.
    fn compacting(seed: u64, trailing_logs: u64, retain: usize) -> Self {
        Self { trailing_logs, retain, ..Self::new(seed) }
    }

    /// Starts the node on its parts.
    async fn try_start(&self, skip_restore: bool) -> Result<Raft<SumFsm>, RaftError> {
        let mut config = config("node-0");
        config.no_snapshot_restore_on_start = skip_restore;
        config.trailing_logs = self.trailing_logs;
        let snapshots = FileSnapshotStore::open_with(
            self.dir.path(),
            raft_core::FileSnapshotOptions::default().retain(self.retain),
        )
        .expect("snapshot store");
        let fsm = SumFsm { sum: self.sum.clone(), as_task: true };
        let transport = self.network.transport(addr(0));
        Raft::new(config, fsm, self.logs.clone(), self.stable.clone(), snapshots, transport).await
    }

    async fn start(&self, skip_restore: bool) -> Raft<SumFsm> {
        self.try_start(skip_restore).await.expect("start")
    }

    /// Starts the node for the first time and waits until it leads.
    async fn bootstrap(&self) -> Raft<SumFsm> {
        let raft = self.start(false).await;
        raft.bootstrap_cluster(configuration(1)).await.expect("bootstrap");
        wait_for("leadership", SECOND * 5, || raft.is_leader().then_some(())).await;
        raft
    }

    fn state_file(&self, meta: &SnapshotMeta) -> std::path::PathBuf {
        self.dir.path().join(&meta.id).join("state.bin")
    }
}

fn flip_first_byte(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[0] ^= 0xff;
    std::fs::write(path, bytes).expect("corrupt");
}

/// Applies commands until the log's last index reaches `index`.
async fn apply_until(raft: &Raft<SumFsm>, index: u64) {
    while raft.last_index() < index {
        raft.apply(num(1), SECOND).await.expect("apply");
    }
}

/// The setup: snapshots near 102 and 202, the log compacted behind
/// the newer one, ten more commands after it.
async fn two_snapshots_and_a_compacted_log(node: &FileNode) -> (SnapshotMeta, SnapshotMeta) {
    let raft = node.bootstrap().await;
    apply_until(&raft, 102).await;
    let older = raft.snapshot().await.expect("snapshot").meta().clone();
    apply_until(&raft, 202).await;
    let newer = raft.snapshot().await.expect("snapshot").meta().clone();
    apply_until(&raft, 212).await;
    assert!(
        node.logs.first_index().expect("first") > older.index + 1,
        "the log is compacted past the older snapshot"
    );
    raft.shutdown().await.expect("shutdown");
    (older, newer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_falls_back_to_an_older_snapshot_when_the_newest_is_corrupt() {
    let node = FileNode::new(11);
    let raft = node.bootstrap().await;
    raft.apply(num(1), SECOND).await.expect("apply");
    raft.apply(num(2), SECOND).await.expect("apply");
    let older = raft.snapshot().await.expect("snapshot").meta().clone();
    raft.apply(num(4), SECOND).await.expect("apply");
    let newer = raft.snapshot().await.expect("snapshot").meta().clone();
    assert!(newer.index > older.index);
    assert!(matches!(raft.snapshot().await, Err(RaftError::NothingNewToSnapshot)));
    raft.apply(num(8), SECOND).await.expect("apply");
    raft.shutdown().await.expect("shutdown");

    flip_first_byte(&node.state_file(&newer));
    node.sum.store(0, Ordering::SeqCst);
    let raft = node.start(false).await;
    assert_eq!(raft.stats().last_snapshot_index, older.index, "started from the older snapshot");
    // The older snapshot holds 1 + 2; the log after it replays 4 and 8.
    wait_for("the log after the snapshot to replay", SECOND * 5, || {
        (node.sum.load(Ordering::SeqCst) == 15).then_some(())
    })
    .await;
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_snapshot_restore_on_start_leaves_the_fsm_alone() {
    let node = FileNode::new(12);
    let raft = node.bootstrap().await;
    raft.apply(num(1), SECOND).await.expect("apply");
    let snapshot = raft.snapshot().await.expect("snapshot").meta().clone();
    raft.apply(num(2), SECOND).await.expect("apply");
    raft.apply(num(0), SECOND).await.expect("apply");
    raft.shutdown().await.expect("shutdown");
    node.sum.store(100, Ordering::SeqCst);
    let raft = node.start(true).await;
    assert_eq!(raft.stats().last_snapshot_index, snapshot.index);
    // The FSM keeps its own state (100); only entries after the snapshot apply.
    wait_for("entries after the snapshot", SECOND * 5, || {
        (node.sum.load(Ordering::SeqCst) == 102).then_some(())
    })
    .await;
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_refuses_when_the_log_does_not_continue_the_newest_usable_snapshot() {
    let node = FileNode::compacting(13, 4, 2);
    let (older, newer) = two_snapshots_and_a_compacted_log(&node).await;
    let log_before = (node.logs.first_index().expect("first"), node.logs.last_index().expect("last"));
    flip_first_byte(&node.state_file(&newer));

    let err = node.try_start(false).await.expect_err("the node must not start without entries it committed");
    match &err {
        RaftError::Recovery(RecoveryError::MissingEntries { from, to, snapshot_index, unusable, .. }) => {
            assert_eq!(*snapshot_index, older.index);
            assert_eq!((*from, *to), (older.index + 1, log_before.0 - 1), "{err}");
            assert_eq!(unusable.len(), 1, "{err}");
            assert_eq!(unusable[0].id, newer.id);
        }
        other => panic!("expected MissingEntries, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&newer.id), "the message names the unusable snapshot: {message}");
    assert_eq!(
        (node.logs.first_index().expect("first"), node.logs.last_index().expect("last")),
        log_before,
        "a refused start changed the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_refuses_when_the_only_snapshot_is_unusable_and_the_log_is_compacted() {
    let node = FileNode::compacting(14, 4, 1);
    let (_, newer) = two_snapshots_and_a_compacted_log(&node).await;
    flip_first_byte(&node.state_file(&newer));
    let err = node.try_start(false).await.expect_err("a node with no usable snapshot and a compacted log");
    assert!(
        matches!(&err, RaftError::Recovery(RecoveryError::MissingEntries { snapshot_index: 0, from: 1, .. })),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_refuses_a_snapshot_of_a_newer_format() {
    let node = FileNode::compacting(15, 4, 2);
    let (_, newer) = two_snapshots_and_a_compacted_log(&node).await;
    // Rewrite the version field (the meta's last four bytes) as a future
    // release would, with a valid checksum.
    let path = node.dir.path().join(&newer.id).join("meta.bin");
    let mut bytes = std::fs::read(&path).expect("read");
    let len = bytes.len();
    bytes[len - 4..].copy_from_slice(&(SNAPSHOT_VERSION + 1).to_le_bytes());
    let crc = crc32fast::hash(&bytes[16..]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, bytes).expect("write");
    let err = node.try_start(false).await.expect_err("a snapshot this code cannot read");
    assert!(
        matches!(&err, RaftError::Snapshot(SnapshotError::UnsupportedVersion { id, .. }) if *id == newer.id),
        "{err:?}"
    );
}

/// A node's stores as a crash while installing a snapshot can leave them:
/// a snapshot through index 10 in term 3, and the old log 1..=15 in term 2,
/// whose entries up to `commit_index` were committed.
fn conflicting_stores(commit_index: u64) -> (store_mem::MemLogStore, store_mem::InmemSnapshotStore) {
    let logs = store_mem::MemLogStore::new();
    let entries: Vec<Log> = (1..=15).map(|i| Log::command(i, 2, num(i))).collect();
    logs.store_logs_with_commit(&entries, commit_index).expect("store");
    let snapshots = store_mem::InmemSnapshotStore::new();
    let new = NewSnapshot {
        version: SNAPSHOT_VERSION,
        index: 10,
        term: 3,
        configuration: configuration(1),
        configuration_index: 1,
    };
    let mut sink = snapshots.create(new).expect("create");
    std::io::Write::write_all(&mut sink, &55u64.to_le_bytes()).expect("write");
    sink.close().expect("close");
    (logs, snapshots)
}

async fn start_on(
    logs: store_mem::MemLogStore,
    snapshots: store_mem::InmemSnapshotStore,
) -> Result<Raft<SumFsm>, RaftError> {
    let network = transport_inmem::InmemNetwork::new(16);
    let stable = store_mem::MemStableStore::new();
    stable.set_u64(b"CurrentTerm", 3).expect("term");
    Raft::new(config("node-0"), SumFsm::default(), logs, stable, snapshots, network.transport(addr(0))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_conflicts_with_a_snapshot_past_its_commit_index_is_cleared() {
    let (logs, snapshots) = conflicting_stores(5);
    let raft = start_on(logs, snapshots).await.expect("the uncommitted conflicting entries may go");
    assert_eq!((raft.last_index(), raft.stats().last_snapshot_index, raft.applied_index()), (10, 10, 10));
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_conflicts_with_a_snapshot_at_a_committed_entry_is_refused() {
    let (logs, snapshots) = conflicting_stores(12);
    let err = start_on(logs, snapshots).await.expect_err("a committed entry disagrees with the snapshot");
    assert!(
        matches!(
            &err,
            RaftError::Recovery(RecoveryError::LogConflictsWithSnapshot {
                index: 10,
                snapshot_term: 3,
                log_term: 2,
                ..
            })
        ),
        "{err:?}"
    );
}
