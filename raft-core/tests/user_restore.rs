//! A user restore (`Raft::restore`) is replicated and committed like any
//! entry: it takes effect on every node at the same index, or nowhere.

mod support;

use raft_core::{Configuration, RaftError, SNAPSHOT_VERSION, SnapshotMeta};
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{TestCluster, addr, num, wait_for};

const SECOND: Duration = Duration::from_secs(1);

fn backup_meta(size: usize) -> SnapshotMeta {
    SnapshotMeta {
        id: "backup".into(),
        index: 0,
        term: 0,
        configuration: Configuration::default(),
        configuration_index: 0,
        size: size as u64,
        version: SNAPSHOT_VERSION,
    }
}

/// The simulator's seed 34509: two leaders, each cut off from the others,
/// were each asked to restore a backup. The restores took effect on those
/// leaders at once, before any quorum held them; the next leader had
/// neither, and both refused its entries forever, so nothing committed
/// again. A restore must wait for a quorum like any write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_on_a_cut_off_leader_takes_effect_nowhere_and_the_cluster_goes_on() {
    let cluster = TestCluster::new(3).await;
    let old = cluster.leader().await;
    cluster.raft(old).apply(num(5), SECOND).await.expect("apply");
    for i in 0..3 {
        wait_for("every node to apply 5", SECOND * 10, || {
            (cluster.parts[i].sum.load(Ordering::SeqCst) == 5).then_some(())
        })
        .await;
    }

    cluster.network.disconnect(&addr(old));
    let backup = 1000u64.to_le_bytes().to_vec();
    let outcome = cluster
        .raft(old)
        .restore(&backup_meta(backup.len()), Box::new(std::io::Cursor::new(backup)), SECOND / 2)
        .await;
    assert!(
        matches!(outcome, Err(RaftError::Timeout | RaftError::LeadershipLost | RaftError::NotLeader { .. })),
        "a restore no quorum holds cannot succeed: {outcome:?}"
    );
    assert_eq!(cluster.parts[old].sum.load(Ordering::SeqCst), 5, "the cut-off leader's FSM is untouched");

    let new = cluster.leader().await;
    assert_ne!(new, old);
    cluster.raft(new).apply(num(1), SECOND * 2).await.expect("the others go on");
    cluster.network.connect(&addr(old));
    cluster.raft(new).apply(num(1), SECOND * 2).await.expect("and after healing");
    for i in 0..3 {
        wait_for("every node, the old leader too, to apply the new leader's writes", SECOND * 10, || {
            (cluster.parts[i].sum.load(Ordering::SeqCst) == 7).then_some(())
        })
        .await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_restore_replaces_the_state_of_every_node_at_one_index() {
    let mut cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    raft.apply(num(5), SECOND).await.expect("apply");
    // Two and a half pieces; the FSM takes its sum from the first 8 bytes.
    let mut backup = 1000u64.to_le_bytes().to_vec();
    backup.resize(5 << 19, 0xab);
    let before = raft.last_index();
    let meta = SnapshotMeta { index: 77, term: 9, ..backup_meta(backup.len()) };
    let index =
        raft.restore(&meta, Box::new(std::io::Cursor::new(backup)), SECOND * 5).await.expect("restore");
    assert_eq!(index, before + 3, "three pieces at the end of this log; the backup's own index is not used");
    assert_eq!(raft.last_index(), index);
    assert!(raft.applied_index() >= index);
    assert_eq!(cluster.parts[leader].sum.load(Ordering::SeqCst), 1000, "the leader's FSM holds the backup");
    let after = raft.apply(num(5), SECOND * 2).await.expect("apply after restore");
    assert_eq!(after.response, 1005, "entries after the restore apply to the restored state");
    for i in 0..3 {
        wait_for("every node to hold the restored state", SECOND * 10, || {
            (cluster.parts[i].sum.load(Ordering::SeqCst) == 1005).then_some(())
        })
        .await;
    }

    // A follower restarted on its stores applies the log again, the
    // restore where it stands.
    let follower = (leader + 1) % 3;
    cluster.crash(follower).await;
    cluster.parts[follower].sum.store(0, Ordering::SeqCst);
    cluster.start(follower).await;
    wait_for("the restarted follower to reach the same state", SECOND * 10, || {
        (cluster.parts[follower].sum.load(Ordering::SeqCst) == 1005).then_some(())
    })
    .await;

    // A snapshot after a restore holds the restored state, and a node that
    // installs it needs none of the pieces.
    let snapshot = raft.snapshot().await.expect("snapshot");
    assert!(snapshot.meta().index > index);

    let short = backup_meta(100);
    let err =
        raft.restore(&short, Box::new(std::io::Cursor::new(vec![0u8; 8])), SECOND).await.expect_err("short");
    assert!(matches!(err, RaftError::Snapshot(_)), "{err:?}");
    let long = backup_meta(4);
    let err =
        raft.restore(&long, Box::new(std::io::Cursor::new(vec![0u8; 8])), SECOND).await.expect_err("long");
    assert!(matches!(err, RaftError::Snapshot(_)), "{err:?}");
    let follower = cluster.raft(follower);
    let err = follower
        .restore(&backup_meta(8), Box::new(std::io::Cursor::new(vec![0u8; 8])), SECOND)
        .await
        .expect_err("a follower");
    assert!(matches!(err, RaftError::NotLeader { .. }), "{err:?}");
    assert_eq!(cluster.parts[leader].sum.load(Ordering::SeqCst), 1005, "refused restores change nothing");
    cluster.shutdown().await;
}

/// An FSM that refuses the backup: the caller learns it, and the cluster
/// goes on applying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_the_fsm_refuses_is_reported_to_the_caller() {
    let cluster = TestCluster::new(1).await;
    let raft = cluster.raft(cluster.leader().await);
    raft.apply(num(5), SECOND).await.expect("apply");
    // The sum FSM needs 8 bytes.
    let err = raft
        .restore(&backup_meta(3), Box::new(std::io::Cursor::new(vec![1u8; 3])), SECOND * 2)
        .await
        .expect_err("refused");
    assert!(matches!(err, RaftError::Fsm(_)), "{err:?}");
    assert_eq!(raft.apply(num(1), SECOND).await.expect("apply after").response, 6);
    cluster.shutdown().await;
}
