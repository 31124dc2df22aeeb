//! A node's term only grows, whatever a peer sends: a term that could not be
//! incremented is refused rather than adopted, no term or index arithmetic
//! wraps, and TimeoutNow is honoured only from the node's current leader and
//! only by a voter (issue #13, items 3 and 4).

mod support;

use raft_core::*;
use std::time::Duration;
use support::*;

const SECOND: Duration = Duration::from_secs(1);

/// Waits a few election timeouts, so that anything a request started has happened.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_term_that_could_not_be_incremented_is_refused() {
    let (raft, probe, _network) =
        lone_follower(SumFsm::default(), store_mem::MemLogStore::new(), config("node-0")).await;
    let node = addr(0);
    for term in [u64::MAX, TERM_MAX + 1] {
        let response = probe.append(&node, term, (1, 1), Vec::new(), 0).await;
        assert!(!response.success, "term {term}: {response:?}");
        let installed = probe.install(&node, term, (5, term), raft.get_configuration().1, vec![0; 8]).await;
        assert!(
            !matches!(installed, Ok(InstallSnapshotResponse { success: true, .. })),
            "term {term}: {installed:?}"
        );
        let vote = RequestVoteRequest {
            header: probe.header(),
            term,
            last_log_index: 9,
            last_log_term: 9,
            leadership_transfer: true,
        };
        let voted = probe.transport.request_vote(node.clone(), vote).await.expect("request_vote");
        assert!(!voted.granted, "term {term}: a vote was granted");
        assert!(raft.current_term() < TERM_MAX, "term {term} was adopted: {}", raft.current_term());
    }
    // The highest term is adopted; from it the node cannot campaign, so a
    // TimeoutNow (or its own election timer) leaves the term where it is.
    let response = probe.append(&node, TERM_MAX, (1, 1), Vec::new(), 0).await;
    assert!(response.success, "{response:?}");
    assert_eq!(raft.current_term(), TERM_MAX);
    probe.timeout_now(&node, TERM_MAX).await;
    settle().await;
    assert_eq!(raft.current_term(), TERM_MAX, "the term moved (or wrapped) from the highest");
    let old = probe.append(&node, 1, (1, 1), Vec::new(), 0).await;
    assert!(!old.success && old.term == TERM_MAX, "an AppendEntries of term 1 was accepted: {old:?}");
    assert!(raft.state() != RaftState::Shutdown, "the node stopped");
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_near_the_top_are_refused_without_overflow() {
    let (raft, probe, _network) =
        lone_follower(SumFsm::default(), store_mem::MemLogStore::new(), config("node-0")).await;
    let node = addr(0);
    let entries = vec![Log::command(INDEX_MAX + 1, 2, num(1))];
    let response = probe.append(&node, 2, (INDEX_MAX, 1), entries, u64::MAX).await;
    assert!(!response.success, "{response:?}");
    let response = probe.append(&node, 2, (u64::MAX, 1), Vec::new(), u64::MAX).await;
    assert!(!response.success, "{response:?}");
    let installed = probe.install(&node, 2, (u64::MAX, 2), raft.get_configuration().1, vec![0; 8]).await;
    assert!(!matches!(installed, Ok(InstallSnapshotResponse { success: true, .. })), "{installed:?}");
    assert_eq!(raft.last_index(), 1, "the log moved");
    assert!(raft.commit_index() <= 1);
    let fine = probe.append(&node, 2, (1, 1), commands(2, 3, 2), 3).await;
    assert!(fine.success, "the node stopped answering: {fine:?}");
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_now_is_honoured_only_from_the_current_leader() {
    let (raft, probes, network) = lone_follower_with(
        SumFsm::default(),
        store_mem::MemLogStore::new(),
        config("node-0"),
        &["leader", "other"],
    )
    .await;
    let (leader, other) = (&probes[0], &probes[1]);
    let stranger = Probe::new(&network, "stranger");
    let node = addr(0);
    assert!(leader.append(&node, 2, (1, 1), Vec::new(), 1).await.success);
    assert_eq!(raft.current_term(), 2);
    for (who, probe) in
        [("a server outside the configuration", &stranger), ("a voter that is not the leader", other)]
    {
        for term in [2, 3] {
            probe.timeout_now(&node, term).await;
            settle().await;
            // Keep the node following, so only a TimeoutNow could move it.
            assert!(leader.append(&node, 2, (1, 1), Vec::new(), 1).await.success);
            assert_eq!(raft.current_term(), 2, "TimeoutNow from {who} at term {term} was honoured");
        }
    }
    // From the leader, at its term, it is: the node campaigns in term 3.
    leader.timeout_now(&node, 2).await;
    wait_for("the node to campaign", SECOND * 2, || (raft.current_term() >= 3).then_some(())).await;
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_voter_ignores_timeout_now() {
    let (raft, probe, _network) =
        lone_follower(SumFsm::default(), store_mem::MemLogStore::new(), config("node-0")).await;
    let node = addr(0);
    // The leader makes node 0 a non-voter.
    let demoted = Configuration::new(vec![probe.server(), Server::nonvoter(id(0), addr(0))]);
    let entry = Log {
        index: 2,
        term: 2,
        kind: LogKind::Configuration,
        data: codec::configuration_to_bytes(&demoted),
        extensions: bytes::Bytes::new(),
    };
    assert!(probe.append(&node, 2, (1, 1), vec![entry], 2).await.success);
    probe.timeout_now(&node, 2).await;
    settle().await;
    assert_eq!(raft.current_term(), 2, "a non-voter campaigned");
    raft.shutdown().await.expect("shutdown");
}

/// A node's loop used to look at its timers only when no other input was
/// ready, so a peer that keeps the node's queue full (here with stale
/// AppendEntries, which it refuses at once) could keep it from campaigning.
/// Timers now go first. On two cores this flood does not keep the queue full
/// all the time, so the test guards the behaviour rather than reproducing the
/// old starvation every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_stale_requests_does_not_hold_back_an_election() {
    // Without pre-vote the campaign shows as a new term (the probe never answers).
    let config = config("node-0").with_prevote(false);
    let (raft, probe, _network) =
        lone_follower(SumFsm::default(), store_mem::MemLogStore::new(), config).await;
    let probe = std::sync::Arc::new(probe);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..512)
        .map(|_| {
            let (probe, stop) = (probe.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let request =
                        AppendEntriesRequest { header: probe.header(), term: 0, ..Default::default() };
                    let _ = probe.transport.append_entries(addr(0), request).await;
                }
            })
        })
        .collect();
    let term = raft.current_term();
    wait_for("the node to campaign despite the flood", SECOND * 5, || {
        (raft.current_term() > term).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for flooder in flooders {
        flooder.await.expect("flooder");
    }
    raft.shutdown().await.expect("shutdown");
}
