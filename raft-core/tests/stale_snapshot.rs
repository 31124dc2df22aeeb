//! A follower never restores a snapshot older than what it has applied, and
//! never applies an entry twice, even when a lossy network makes the leader
//! fall back to snapshots with `trailing_logs = 0` (issue #12, item 1).
//!
//! The state machine here checks itself: every snapshot carries the index of
//! the last command it covers, and a restore of one older than the last
//! command applied, or an apply at or below it, is recorded as a violation.

mod support;

use raft_core::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use support::{addr, configuration, id, num, wait_for};
use transport_inmem::{Faults, InmemNetwork};

const SECOND: Duration = Duration::from_secs(1);

/// What every node's FSM reports: violations, and the highest applied index.
#[derive(Default)]
struct Report {
    violations: Mutex<Vec<String>>,
    restores: AtomicU64,
}

/// Remembers the index of the last command it applied.
struct IndexFsm {
    node: usize,
    last: u64,
    report: Arc<Report>,
}

impl IndexFsm {
    fn violation(&self, what: String) {
        self.report.violations.lock().expect("lock").push(format!("node {}: {what}", self.node));
    }
}

impl Fsm for IndexFsm {
    type Response = ();

    fn apply(&mut self, log: &Log) {
        if log.index <= self.last {
            self.violation(format!("applied index {} after {}", log.index, self.last));
        }
        self.last = log.index;
    }

    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
        Ok(Box::new(IndexSnapshot(self.last)))
    }

    fn restore(&mut self, mut snapshot: SnapshotReader) -> Result<(), FsmError> {
        let mut bytes = [0u8; 8];
        snapshot.read_exact(&mut bytes)?;
        let covered = u64::from_le_bytes(bytes);
        if covered < self.last {
            self.violation(format!("restored a snapshot covering {covered} after applying {}", self.last));
        }
        self.last = covered;
        self.report.restores.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn never_blocks(&self) -> bool {
        self.node % 2 == 1
    }
}

struct IndexSnapshot(u64);

impl FsmSnapshot for IndexSnapshot {
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError> {
        sink.write_all(&self.0.to_le_bytes())?;
        Ok(())
    }
}

fn lossy_config(id: &str) -> Config {
    let mut config = support::config(id);
    config.trailing_logs = 0;
    config.snapshot_threshold = 8;
    config.snapshot_interval = Duration::from_millis(10);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_never_restore_a_snapshot_older_than_what_they_applied() {
    let seed = 12_001;
    let network = InmemNetwork::new(seed);
    let report = Arc::new(Report::default());
    let mut nodes = Vec::new();
    for i in 0..3 {
        let fsm = IndexFsm { node: i, last: 0, report: report.clone() };
        let raft = Raft::new(
            lossy_config(id(i).as_str()),
            fsm,
            MemLogStore::new(),
            MemStableStore::new(),
            InmemSnapshotStore::new(),
            network.transport(addr(i)),
        )
        .await
        .expect("start");
        nodes.push(raft);
    }
    nodes[0].bootstrap_cluster(configuration(3)).await.expect("bootstrap");
    network.set_faults(Faults {
        drop_replies: 0.2,
        reorder: 0.1,
        reorder_delay_max: Duration::from_millis(30),
        ..Faults::reliable()
    });
    // Steady load for a bounded time; every node's applied index is sampled
    // and must never go back.
    let deadline = tokio::time::Instant::now() + SECOND * 4;
    let mut highest = [0u64; 3];
    let mut n = 0;
    while tokio::time::Instant::now() < deadline {
        for (i, raft) in nodes.iter().enumerate() {
            let applied = raft.applied_index();
            assert!(applied >= highest[i], "node {i}'s applied index went from {} to {applied}", highest[i]);
            highest[i] = applied;
        }
        if let Some(leader) = nodes.iter().find(|r| r.is_leader()) {
            n += 1;
            let _ = leader.apply(num(n), Duration::from_millis(200)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    network.set_faults(Faults::reliable());
    let violations = report.violations.lock().expect("lock").clone();
    assert!(violations.is_empty(), "seed {seed}: {violations:?}");
    // Everyone converges once the network is reliable again.
    let leader = wait_for("a leader", SECOND * 5, || nodes.iter().find(|r| r.is_leader()).cloned()).await;
    let last = leader.barrier(SECOND * 5).await.expect("barrier");
    for raft in &nodes {
        wait_for("every node to apply the barrier", SECOND * 5, || {
            (raft.applied_index() >= last).then_some(())
        })
        .await;
    }
    assert!(n > 100, "the load applied only {n} commands");
    for raft in nodes {
        raft.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_the_follower_already_holds_changes_nothing() {
    let report = Arc::new(Report::default());
    let fsm = IndexFsm { node: 0, last: 0, report: report.clone() };
    let (raft, probe, _network) =
        support::lone_follower(fsm, MemLogStore::new(), support::config("node-0")).await;
    let node = addr(0);
    let configuration = raft.get_configuration().1;
    let appended = probe.append(&node, 2, (1, 1), support::commands(2, 20, 2), 10).await;
    assert!(appended.success, "{appended:?}");
    wait_for("entries up to the commit index to apply", SECOND * 5, || {
        (raft.applied_index() >= 10).then_some(())
    })
    .await;

    // At or below the commit index: nothing changes, not even the log.
    let stale = probe.install(&node, 2, (5, 2), configuration.clone(), 5u64.to_le_bytes().to_vec()).await;
    assert!(stale.expect("install").success);
    assert_eq!(report.restores.load(Ordering::SeqCst), 0, "a stale snapshot was restored");
    assert_eq!((raft.last_index(), raft.commit_index()), (20, 10));

    // At an entry of the log past the commit index: the commit index moves,
    // the entries after it stay, and the FSM applies from the log.
    let known = probe.install(&node, 2, (15, 2), configuration.clone(), 15u64.to_le_bytes().to_vec()).await;
    assert!(known.expect("install").success);
    wait_for("entries up to the snapshot to apply", SECOND * 5, || {
        (raft.applied_index() >= 15).then_some(())
    })
    .await;
    assert_eq!(report.restores.load(Ordering::SeqCst), 0, "a snapshot of entries in the log was restored");
    assert_eq!((raft.last_index(), raft.commit_index()), (20, 15));

    // Past the log: installed, and the log restarts after it.
    let new = probe.install(&node, 2, (30, 2), configuration, 30u64.to_le_bytes().to_vec()).await;
    assert!(new.expect("install").success);
    assert_eq!(report.restores.load(Ordering::SeqCst), 1);
    assert_eq!((raft.last_index(), raft.commit_index(), raft.applied_index()), (30, 30, 30));
    let violations = report.violations.lock().expect("lock").clone();
    assert!(violations.is_empty(), "{violations:?}");
    raft.shutdown().await.expect("shutdown");
}

/// Found by the simulator (seed 4658): a follower whose snapshot holds
/// entries no later leader has (a user restore that never committed)
/// acknowledged that leader's entries "inside" the snapshot without storing
/// them, and was counted toward committing them. A request inside the
/// snapshot now matches only if it shows the snapshot's last entry with the
/// snapshot's term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_inside_a_snapshot_match_only_through_its_last_entry() {
    let report = Arc::new(Report::default());
    let fsm = IndexFsm { node: 0, last: 0, report: report.clone() };
    let (raft, probe, _network) =
        support::lone_follower(fsm, MemLogStore::new(), support::config("node-0")).await;
    let node = addr(0);
    let configuration = raft.get_configuration().1;
    // The follower holds a snapshot through index 30, term 2.
    let installed = probe.install(&node, 2, (30, 2), configuration, 30u64.to_le_bytes().to_vec()).await;
    assert!(installed.expect("install").success);
    assert_eq!(raft.last_index(), 30);

    // A later leader whose request ends before index 30 cannot show that it
    // holds the snapshot's entries: refused, with a hint to resend after it.
    let short = probe.append(&node, 3, (20, 2), support::commands(21, 22, 3), 22).await;
    assert!(!short.success, "entries inside an unverified snapshot were acknowledged: {short:?}");
    assert_eq!(short.conflict_index, 31);
    // One that shows another term at index 30 disagrees with the snapshot.
    let other = probe.append(&node, 3, (25, 2), support::commands(26, 31, 3), 31).await;
    assert!(!other.success, "a log that disagrees with the snapshot was acknowledged: {other:?}");
    assert_eq!(raft.last_index(), 30, "nothing was stored");
    // One that shows index 30 at term 2 matches, and its entries after it are stored.
    let mut entries = support::commands(26, 30, 2);
    entries.extend(support::commands(31, 32, 3));
    let good = probe.append(&node, 3, (25, 2), entries, 32).await;
    assert!(good.success, "{good:?}");
    assert_eq!(raft.last_index(), 32);
    // After the snapshot, the ordinary check applies.
    let at = probe.append(&node, 3, (32, 3), support::commands(33, 33, 3), 33).await;
    assert!(at.success, "{at:?}");
    let violations = report.violations.lock().expect("lock").clone();
    assert!(violations.is_empty(), "{violations:?}");
    raft.shutdown().await.expect("shutdown");
}
