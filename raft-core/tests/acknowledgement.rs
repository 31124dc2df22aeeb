//! "Success" from a follower means "stored", in both storage modes (on the
//! node's task for a store whose writes never block, on the storage thread
//! otherwise): entries the store refuses or fails to write are never
//! acknowledged, and a leader never counts itself for them (issue #12, item 4).

mod support;

use raft_core::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::*;

const SECOND: Duration = Duration::from_secs(1);

/// A follower on a [`FlakyLogStore`] holding entries 1..=11, term 2 from 2 on.
async fn follower(
    never_blocks: bool,
) -> (Raft<SumFsm>, Probe, Arc<FlakyLogStore>, transport_inmem::InmemNetwork) {
    let store = Arc::new(FlakyLogStore::new(never_blocks));
    let (raft, probe, network) = lone_follower(SumFsm::default(), store.clone(), config("node-0")).await;
    let appended = probe.append(&addr(0), 2, (1, 1), commands(2, 11, 2), 0).await;
    assert!(appended.success && appended.last_log == 11, "{appended:?}");
    (raft, probe, store, network)
}

fn with_indexes(indexes: &[u64]) -> Vec<Log> {
    indexes.iter().map(|&index| Log::command(index, 2, num(index))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_that_do_not_continue_the_log_are_refused_in_both_modes() {
    for never_blocks in [true, false] {
        let (raft, probe, store, _network) = follower(never_blocks).await;
        for indexes in [&[12, 14, 15][..], &[12, 12, 13], &[13, 14], &[12, 11]] {
            let response = probe.append(&addr(0), 2, (11, 2), with_indexes(indexes), 0).await;
            assert!(!response.success, "in-task {never_blocks}: {indexes:?} acknowledged: {response:?}");
            assert_eq!(response.last_log, 11, "in-task {never_blocks}: {indexes:?}");
            assert_eq!(store.last_index().expect("last"), 11);
            assert_eq!(raft.last_index(), 11, "in-task {never_blocks}: {indexes:?} moved the node's log");
        }
        let fine = probe.append(&addr(0), 2, (11, 2), with_indexes(&[12, 13]), 0).await;
        assert!(fine.success && fine.last_log == 13, "in-task {never_blocks}: {fine:?}");
        raft.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_store_fails_is_not_acknowledged_in_both_modes() {
    for never_blocks in [true, false] {
        let (raft, probe, store, _network) = follower(never_blocks).await;
        store.failing.store(true, Ordering::SeqCst);
        let response = probe.append(&addr(0), 2, (11, 2), commands(12, 15, 2), 0).await;
        assert!(!response.success, "in-task {never_blocks}: a failed write was acknowledged: {response:?}");
        assert_eq!(store.last_index().expect("last"), 11);
        wait_for("the node's log to match its store", SECOND * 5, || (raft.last_index() == 11).then_some(()))
            .await;
        store.failing.store(false, Ordering::SeqCst);
        let retried = probe.append(&addr(0), 2, (11, 2), commands(12, 15, 2), 0).await;
        assert!(retried.success && retried.last_log == 15, "in-task {never_blocks}: {retried:?}");
        assert_eq!(store.last_index().expect("last"), 15);
        raft.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_never_counts_itself_for_entries_its_store_refused() {
    for never_blocks in [true, false] {
        let network = transport_inmem::InmemNetwork::new(4);
        let stores: Vec<Arc<FlakyLogStore>> =
            (0..3).map(|_| Arc::new(FlakyLogStore::new(never_blocks))).collect();
        let mut nodes = Vec::new();
        for (i, store) in stores.iter().enumerate() {
            let raft = Raft::new(
                config(id(i).as_str()),
                SumFsm::default(),
                store.clone(),
                store_mem::MemStableStore::new(),
                store_mem::InmemSnapshotStore::new(),
                network.transport(addr(i)),
            )
            .await
            .expect("start");
            nodes.push(raft);
        }
        nodes[0].bootstrap_cluster(configuration(3)).await.expect("bootstrap");
        let leader = wait_for("a leader", SECOND * 5, || nodes.iter().position(|r| r.is_leader())).await;
        nodes[leader].barrier(SECOND).await.expect("barrier");
        // Only one follower can store the entry, and the leader's own store
        // refuses it: with the leader not counting itself, no quorum holds it.
        let cut = (leader + 1) % 3;
        network.disconnect(&addr(cut));
        stores[leader].failing.store(true, Ordering::SeqCst);
        let index = nodes[leader].last_index() + 1;
        let applied = nodes[leader].apply(num(7), Duration::from_millis(500)).await;
        assert!(applied.is_err(), "in-task {never_blocks}: committed without the leader's copy: {applied:?}");
        for (i, raft) in nodes.iter().enumerate() {
            assert!(
                raft.commit_index() < index,
                "in-task {never_blocks}: node {i} committed index {index}, which only one follower stored"
            );
        }
        for raft in nodes {
            raft.shutdown().await.expect("shutdown");
        }
    }
}

/// Found by the simulator (seeds 378, 397, 580, 607, 645, 859, 886, 955 of
/// the first soak): a follower whose truncation of a conflicting suffix
/// failed went on as if it had worked; the append queued behind it was
/// refused, but the follower still believed the new entries' terms, so a
/// later append continued the old suffix and the log mixed two leaders'
/// entries. Now nothing queued behind a failed write is performed, and the
/// node takes its log from the store again before it writes more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_truncation_leaves_the_log_as_the_store_has_it_in_both_modes() {
    for never_blocks in [true, false] {
        let (raft, probe, store, _network) = follower(never_blocks).await;
        store.failing_deletes.store(1, Ordering::SeqCst);
        // A new leader's entries conflict from 6 on: the truncation fails.
        let response = probe.append(&addr(0), 3, (5, 2), commands(6, 8, 3), 0).await;
        assert!(!response.success, "in-task {never_blocks}: {response:?}");
        wait_for("the node's log to be the store's again", SECOND * 5, || {
            (raft.last_index() == 11 && raft.stats().last_log_term == 2).then_some(())
        })
        .await;
        // The node must not believe it holds the new leader's entry 8.
        let continued = probe.append(&addr(0), 3, (8, 3), commands(9, 12, 3), 0).await;
        assert!(
            !continued.success,
            "in-task {never_blocks}: continued a log it does not have: {continued:?}"
        );
        let retried = probe.append(&addr(0), 3, (5, 2), commands(6, 12, 3), 0).await;
        assert!(retried.success && retried.last_log == 12, "in-task {never_blocks}: {retried:?}");
        let terms: Vec<u64> = store.get_logs(1, 12, u64::MAX).expect("read").iter().map(|l| l.term).collect();
        assert_eq!(terms, [1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3], "in-task {never_blocks}");
        raft.shutdown().await.expect("shutdown");
    }
}

/// A follower takes its leader's commit index only once the entries it was
/// sent are durable: while its write waits on the disk, the FSM applies none
/// of them (a write that then failed would otherwise have let the FSM apply
/// entries the log no longer held, or the stale entries the store still had
/// at those indexes: the simulator's seed 215250 in worker mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_commits_only_what_it_has_stored() {
    let store = Arc::new(GatedLogStore::default());
    let (raft, probe, _network) = lone_follower(SumFsm::default(), store.clone(), config("node-0")).await;
    let first = probe.append(&addr(0), 2, (1, 1), commands(2, 11, 2), 11).await;
    assert!(first.success, "{first:?}");
    wait_for("entries 2..=11 applied", SECOND * 5, || (raft.applied_index() == 11).then_some(())).await;

    // The disk stalls: entries 12..=15 arrive with a commit index of 15.
    store.close_gate();
    let target = addr(0);
    let append = {
        let probe_transport = probe.transport.clone();
        let request = AppendEntriesRequest {
            header: probe.header(),
            term: 2,
            prev_log_index: 11,
            prev_log_term: 2,
            entries: commands(12, 15, 2),
            leader_commit: 15,
        };
        let target = target.clone();
        tokio::spawn(async move { probe_transport.append_entries(target, request).await })
    };
    wait_for("the entries in the node's log", SECOND * 5, || (raft.last_index() == 15).then_some(())).await;
    // A pre-vote is answered from memory, after the append was handled.
    let request = PreVoteRequest { header: probe.header(), term: 3, last_log_index: 15, last_log_term: 2 };
    probe.transport.pre_vote(target, request).await.expect("pre-vote");
    assert_eq!(raft.commit_index(), 11, "committed entries that are not stored yet");
    assert_eq!(raft.applied_index(), 11, "applied entries that are not stored yet");

    // Stored: acknowledged, then committed and applied.
    store.open_gate();
    let answered = append.await.expect("task").expect("append");
    assert!(answered.success && answered.last_log == 15, "{answered:?}");
    wait_for("entries 12..=15 applied", SECOND * 5, || (raft.applied_index() == 15).then_some(())).await;
    raft.shutdown().await.expect("shutdown");
}
