//! Tests of one node's public API and of the guarantees the core promises
//! beyond the cluster scenarios: typed errors, barrier and read index,
//! shutdown, recovery of the commit index, the leader's parallel and
//! group-committed writes, pipelining, and heartbeats that never wait
//! behind large appends. What observers see is in `observers.rs`.

mod support;

use raft_core::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::*;
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_elects_itself_and_answers_with_the_fsm_response() {
    let cluster = TestCluster::new(1).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    let first = raft.apply(num(5), SECOND).await.expect("apply");
    let second = raft.apply(num(7), SECOND).await.expect("apply");
    assert_eq!(first.response, 5);
    assert_eq!(second.response, 12, "the FSM's response is returned");
    assert_eq!(second.index, first.index + 1);
    let stats = raft.stats();
    assert_eq!(stats.state, RaftState::Leader);
    assert!(stats.commit_index >= second.index && stats.applied_index >= second.index, "{stats:?}");
    assert_eq!(stats.leader, Some((id(0), addr(0))));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_commands_and_names_the_leader() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.raft((leader + 1) % 3);
    wait_for("the follower to learn the leader", SECOND * 5, || follower.leader()).await;
    match follower.apply(num(1), SECOND).await {
        Err(RaftError::NotLeader { leader: Some((leader_id, leader_addr)) }) => {
            assert_eq!((leader_id, leader_addr), (id(leader), addr(leader)));
        }
        other => panic!("expected NotLeader naming node {leader}, got {other:?}"),
    }
    assert!(matches!(follower.barrier(SECOND).await, Err(RaftError::NotLeader { .. })));
    assert!(matches!(follower.verify_leader().await, Err(RaftError::NotLeader { .. })));
    assert!(matches!(follower.read_index(SECOND).await, Err(RaftError::NotLeader { .. })));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrapping_a_node_with_state_is_refused() {
    let cluster = TestCluster::new(1).await;
    let raft = cluster.raft(0);
    let err = raft.bootstrap_cluster(configuration(1)).await.expect_err("second bootstrap");
    assert!(matches!(err, RaftError::CantBootstrap), "{err:?}");
    let bad = Configuration::new(vec![Server::nonvoter("x", "y")]);
    cluster.leader().await;
    assert!(raft.bootstrap_cluster(bad).await.is_err());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_is_refused_at_start() {
    let network = transport_inmem::InmemNetwork::new(1);
    let mut config = config("a");
    config.max_append_entries = 0;
    let result = Raft::new(
        config,
        SumFsm::default(),
        store_mem::MemLogStore::new(),
        store_mem::MemStableStore::new(),
        store_mem::InmemSnapshotStore::new(),
        network.transport("a"),
    )
    .await;
    assert!(matches!(
        result,
        Err(RaftError::Config(ConfigError::OutOfRange { field: "max_append_entries", .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_returns_once_every_earlier_entry_is_applied() {
    let cluster = TestCluster::new(3).await;
    let raft = cluster.raft(cluster.leader().await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 1..=20 {
        let raft = raft.clone();
        tasks.spawn(async move { raft.apply(num(n), SECOND * 5).await.map(|r| r.index) });
    }
    // Let the applies reach the node before the barrier.
    wait_for("the applies to be appended", SECOND * 5, || (raft.last_index() >= 22).then_some(())).await;
    let barrier = raft.barrier(SECOND * 5).await.expect("barrier");
    assert!(raft.applied_index() >= barrier, "barrier returned before its own index applied");
    while let Some(index) = tasks.join_next().await {
        assert!(index.expect("task").expect("apply") < barrier);
    }
    assert_eq!(cluster.parts[cluster.leader().await].sum.load(Ordering::SeqCst), 210);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_index_covers_every_write_acknowledged_before_it() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    for n in 1..=10 {
        let written = raft.apply(num(n), SECOND).await.expect("apply");
        let read = raft.read_index(SECOND).await.expect("read_index");
        assert!(read >= written.index, "read index {read} is before the write at {}", written.index);
        assert!(raft.applied_index() >= read);
    }
    raft.verify_leader().await.expect("verify_leader");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_fails_verification_and_applies() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    raft.apply(num(1), SECOND).await.expect("apply");
    cluster.network.disconnect(&addr(leader));
    let verify = tokio::time::timeout(SECOND * 2, raft.verify_leader()).await.expect("verify_leader ends");
    assert!(verify.is_err(), "a leader cut off from its quorum verified itself");
    // An apply shorter than the lease times out; the entry may still commit later.
    let err = raft.apply(num(2), Duration::from_millis(20)).await.expect_err("no quorum");
    assert!(
        matches!(err, RaftError::Timeout | RaftError::NotLeader { .. } | RaftError::LeadershipLost),
        "{err:?}"
    );
    cluster.network.connect(&addr(leader));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_applies_fail_with_leadership_lost_when_the_leader_steps_down() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    raft.apply(num(1), SECOND).await.expect("apply");
    cluster.network.disconnect(&addr(leader));
    let err = raft.apply(num(2), SECOND * 5).await.expect_err("cannot commit");
    assert!(matches!(err, RaftError::LeadershipLost), "{err:?}");
    cluster.network.connect(&addr(leader));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_node_and_later_calls_fail() {
    let cluster = TestCluster::new(1).await;
    let raft = cluster.raft(cluster.leader().await);
    raft.apply(num(1), SECOND).await.expect("apply");
    raft.shutdown().await.expect("shutdown");
    assert_eq!(raft.state(), RaftState::Shutdown);
    assert!(matches!(raft.apply(num(1), SECOND).await, Err(RaftError::Shutdown)));
    assert!(matches!(raft.verify_leader().await, Err(RaftError::Shutdown)));
    raft.shutdown().await.expect("a second shutdown is a no-op");
    // The transport is closed: the address is free for a new node.
    assert!(cluster.network.transport(addr(0)).consumer().is_ok());
}

/// Dropping the last handle stops the node as `shutdown` would: its status
/// reaches `Shutdown`, which the node sets once its transport and stores
/// are closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_stops_the_node() {
    let mut cluster = TestCluster::new(1).await;
    let raft = cluster.raft(cluster.leader().await);
    raft.apply(num(1), SECOND).await.expect("apply");
    let mut status = raft.watch_status();
    let second_handle = raft.clone();
    drop(raft);
    drop(cluster.nodes[0].take());
    second_handle.apply(num(2), SECOND).await.expect("one handle is left: the node still serves");
    drop(second_handle);
    let stopped = tokio::time::timeout(SECOND * 5, status.wait_for(|s| s.state == RaftState::Shutdown)).await;
    assert!(matches!(stopped, Ok(Ok(_))), "the node did not stop after its last handle went");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_reapplies_committed_entries_without_a_leader() {
    let mut cluster = TestCluster::new(3).await;
    let raft = cluster.raft(cluster.leader().await);
    let mut last = 0;
    for n in 1..=5 {
        last = raft.apply(num(n), SECOND).await.expect("apply").index;
    }
    // One more write carries a commit index covering the five.
    raft.apply(num(0), SECOND).await.expect("apply");
    for i in 0..3 {
        wait_for("every node to apply", SECOND * 5, || {
            (cluster.parts[i].sum.load(Ordering::SeqCst) == 15).then_some(())
        })
        .await;
    }
    for i in 0..3 {
        cluster.crash(i).await;
    }
    for i in 0..3 {
        let term = cluster.parts[i].stable.get_u64(b"CurrentTerm").expect("stable").expect("term persisted");
        assert!(term >= 1);
        cluster.parts[i].sum.store(0, Ordering::SeqCst);
    }
    // Node 1 alone, with no one to elect or follow, rebuilds its state.
    cluster.start(1).await;
    let restarted = cluster.raft(1);
    wait_for("the restarted node to re-apply", SECOND * 5, || {
        (restarted.applied_index() >= last).then_some(())
    })
    .await;
    assert_eq!(cluster.parts[1].sum.load(Ordering::SeqCst), 15);
    assert_ne!(restarted.state(), RaftState::Leader);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_commits_through_followers_while_its_own_write_runs() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    raft.apply(num(1), SECOND).await.expect("apply");
    cluster.parts[leader].logs.close_gate();
    // The leader's own store_logs is blocked, yet two followers form a
    // quorum: the command commits and applies (Raft thesis §10.2.1).
    let applied = raft.apply(num(2), SECOND * 2).await;
    cluster.parts[leader].logs.open_gate();
    let applied = applied.expect("commit while the leader's write is in flight");
    assert_eq!(applied.response, 3);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_are_group_committed() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    raft.apply(num(0), SECOND).await.expect("apply");
    let store = cluster.parts[leader].logs.clone();
    *store.delay.lock().expect("lock") = Duration::from_millis(2);
    let calls_before = store.calls.load(Ordering::SeqCst);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..400 {
        let raft = raft.clone();
        tasks.spawn(async move { raft.apply(num(n % 3), SECOND * 10).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("apply");
    }
    let calls = store.calls.load(Ordering::SeqCst) - calls_before;
    assert!(calls <= 100, "400 concurrent applies took {calls} store_logs calls: no group commit");
    cluster.shutdown().await;
}

/// Three nodes whose transports record appends in flight and can hold them back.
async fn watched_cluster(
    seed: u64,
    max_in_flight: &Arc<AtomicUsize>,
    hold: &Arc<std::sync::Mutex<Duration>>,
    config: fn(&str) -> Config,
) -> Vec<Raft<SumFsm>> {
    let network = transport_inmem::InmemNetwork::new(seed);
    let mut nodes = Vec::new();
    for i in 0..3 {
        let hook = WatchAppends {
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: max_in_flight.clone(),
            hold_appends: hold.clone(),
        };
        let transport = Hooked { inner: network.transport(addr(i)), hook };
        let raft = Raft::new(
            config(id(i).as_str()),
            SumFsm::default(),
            store_mem::MemLogStore::new(),
            store_mem::MemStableStore::new(),
            store_mem::InmemSnapshotStore::new(),
            transport,
        )
        .await
        .expect("start");
        raft.bootstrap_cluster(configuration(3)).await.expect("bootstrap");
        nodes.push(raft);
    }
    nodes
}

fn pipelined_config(id: &str) -> Config {
    let mut config = config(id);
    config.max_inflight = 4;
    config.max_append_entries = 4;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_keeps_several_appends_in_flight_within_the_limit() {
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let hold = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let nodes = watched_cluster(3, &max_in_flight, &hold, pipelined_config).await;
    let leader = wait_for("a leader", SECOND * 10, || nodes.iter().find(|r| r.is_leader()).cloned()).await;
    leader.apply(num(1), SECOND).await.expect("apply");
    max_in_flight.store(0, Ordering::SeqCst);
    *hold.lock().expect("lock") = Duration::from_millis(5);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let leader = leader.clone();
        tasks.spawn(async move { leader.apply(num(n), SECOND * 10).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("apply");
    }
    let max = max_in_flight.load(Ordering::SeqCst);
    // Two followers, each with at most 4 in flight.
    assert!(max > 2, "at most {max} appends were in flight: no pipelining");
    assert!(max <= 8, "{max} appends in flight exceeds 4 per follower");
    for raft in nodes {
        raft.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_do_not_wait_behind_a_slow_append() {
    let hold = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let nodes = watched_cluster(4, &Arc::new(AtomicUsize::new(0)), &hold, config).await;
    let leader = wait_for("a leader", SECOND * 10, || nodes.iter().find(|r| r.is_leader()).cloned()).await;
    leader.apply(num(1), SECOND).await.expect("apply");
    let term = leader.current_term();
    // Every append with entries now takes four heartbeat timeouts to arrive.
    *hold.lock().expect("lock") = Duration::from_millis(400);
    let started = Instant::now();
    leader.apply(num(2), SECOND * 5).await.expect("a slow append still commits");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(leader.is_leader(), "followers timed out while an append was slow");
    assert_eq!(leader.current_term(), term, "an election ran while heartbeats should have flowed");
    for raft in nodes {
        raft.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_config_changes_a_running_node() {
    let cluster = TestCluster::new(1).await;
    let raft = cluster.raft(cluster.leader().await);
    let mut reload = ReloadableConfig::from_config(&config("node-0"));
    reload.trailing_logs = 5;
    raft.reload_config(reload.clone()).await.expect("reload");
    reload.heartbeat_timeout = Duration::from_millis(1);
    assert!(matches!(raft.reload_config(reload).await, Err(RaftError::Config(_))));
    raft.apply(num(1), SECOND).await.expect("still serving");
    cluster.shutdown().await;
}
/// `Config::commit_timeout`: a leader with nothing new to send sends its
/// commit index anyway. A follower stores the commit index with the entries
/// it appends, so after a restart it knows less than it applied; found with
/// a user restore's test, where the restarted follower waited for a write
/// that never came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_leader_tells_a_restarted_follower_the_commit_index() {
    let mut cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    cluster.raft(leader).apply(num(5), SECOND).await.expect("apply");
    let follower = (leader + 1) % 3;
    wait_for("the follower to apply", SECOND * 10, || {
        (cluster.parts[follower].sum.load(Ordering::SeqCst) == 5).then_some(())
    })
    .await;
    cluster.crash(follower).await;
    cluster.parts[follower].sum.store(0, Ordering::SeqCst);
    cluster.start(follower).await;
    wait_for("the restarted follower to apply again with no new write", SECOND * 10, || {
        (cluster.parts[follower].sum.load(Ordering::SeqCst) == 5).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_cluster_revives_a_survivor_of_a_lost_quorum() {
    let mut cluster = TestCluster::new(3).await;
    let raft = cluster.raft(cluster.leader().await);
    for n in [3, 4, 5] {
        raft.apply(num(n), SECOND).await.expect("apply");
    }
    for i in 0..3 {
        wait_for("every node to apply", SECOND * 5, || {
            (cluster.parts[i].sum.load(Ordering::SeqCst) == 12).then_some(())
        })
        .await;
    }
    for i in 0..3 {
        cluster.crash(i).await;
    }
    // Nodes 1 and 2 are lost for good. Node 0 alone cannot elect itself...
    let parts = cluster.parts[0].clone();
    assert!(
        raft_core::recovery::has_existing_state(&*parts.logs, &*parts.stable, &parts.snapshots)
            .expect("state")
    );
    let mut fsm = SumFsm::default();
    raft_core::recovery::recover_cluster(
        &mut fsm,
        &*parts.logs,
        &*parts.stable,
        &parts.snapshots,
        configuration(1),
    )
    .expect("recover");
    assert_eq!(fsm.sum.load(Ordering::SeqCst), 12, "every logged command was applied to the recovery FSM");
    // ...until recovered into a configuration of itself alone.
    parts.sum.store(0, Ordering::SeqCst);
    cluster.start(0).await;
    let survivor = cluster.raft(0);
    wait_for("the survivor to lead", SECOND * 5, || survivor.is_leader().then_some(())).await;
    assert_eq!(parts.sum.load(Ordering::SeqCst), 12, "the state survived");
    assert_eq!(survivor.apply(num(1), SECOND).await.expect("apply").response, 13);
    assert_eq!(survivor.get_configuration().1, configuration(1));
    let fresh = store_mem::MemStableStore::new();
    let empty = raft_core::recovery::recover_cluster(
        &mut SumFsm::default(),
        &store_mem::MemLogStore::new(),
        &fresh,
        &store_mem::InmemSnapshotStore::new(),
        configuration(1),
    );
    assert!(matches!(empty, Err(RaftError::NoExistingState)));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_acknowledge_only_what_is_durable() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    raft.apply(num(1), SECOND).await.expect("apply");
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &followers {
        cluster.parts[i].logs.close_gate();
    }
    // Followers take the entry in but cannot write it: no quorum holds it
    // durably, so it must not commit, however they queue their answers.
    let err = raft.apply(num(2), Duration::from_millis(300)).await.expect_err("nothing durable on a quorum");
    assert!(matches!(err, RaftError::Timeout), "{err:?}");
    assert_eq!(cluster.parts[leader].sum.load(Ordering::SeqCst), 1, "applied before a quorum stored it");
    for &i in &followers {
        cluster.parts[i].logs.open_gate();
    }
    wait_for("the entry to commit once written", SECOND * 5, || {
        (cluster.parts[leader].sum.load(Ordering::SeqCst) == 3).then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_means_no_deadline() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    let zero = Duration::ZERO;
    let applied = raft.apply(num(4), zero).await.expect("apply without a deadline");
    assert_eq!(applied.response, 4);
    assert!(raft.barrier(zero).await.expect("barrier") > applied.index);
    assert!(raft.read_index(zero).await.expect("read index") >= applied.index);
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let index = raft.demote_voter(id(follower), 0, zero).await.expect("demote without a deadline");
    assert!(index > applied.index);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_or_demoting_a_stranger_writes_an_unchanged_configuration() {
    let cluster = TestCluster::new(3).await;
    let raft = cluster.raft(cluster.leader().await);
    let (before_index, before) = raft.get_configuration();
    let removed = raft.remove_server(ServerId::new("stranger"), 0, SECOND * 5).await.expect("remove");
    assert!(removed > before_index, "a new configuration entry is written");
    let demoted = raft.demote_voter(ServerId::new("stranger"), 0, SECOND * 5).await.expect("demote");
    assert!(demoted > removed);
    let (after_index, after) = raft.get_configuration();
    assert_eq!(after_index, demoted);
    assert_eq!(after, before, "the members are unchanged");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_voter_of_the_configuration_may_bootstrap_it() {
    let network = transport_inmem::InmemNetwork::new(3);
    let raft = Raft::new(
        config(id(0).as_str()),
        SumFsm::default(),
        store_mem::MemLogStore::new(),
        store_mem::MemStableStore::new(),
        store_mem::InmemSnapshotStore::new(),
        network.transport(addr(0)),
    )
    .await
    .expect("start");
    let as_nonvoter =
        Configuration::new(vec![Server::nonvoter(id(0), addr(0)), Server::voter(id(1), addr(1))]);
    let without_us = Configuration::new(vec![Server::voter(id(1), addr(1))]);
    for configuration in [as_nonvoter, without_us] {
        let err = raft.bootstrap_cluster(configuration).await.expect_err("not a voter");
        assert!(matches!(&err, RaftError::NotVoter(who) if *who == id(0)), "{err:?}");
    }
    raft.bootstrap_cluster(configuration(1)).await.expect("a voter bootstraps, the refusals left no state");
    wait_for("leadership", SECOND * 5, || raft.is_leader().then_some(())).await;
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_read_sees_every_acknowledged_write_and_runs_only_on_the_leader() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    let sum = cluster.parts[leader].sum.clone();
    for n in 1..=20 {
        raft.apply(num(n), SECOND).await.expect("apply");
        let seen = raft.consistent_read(SECOND, || sum.load(Ordering::SeqCst)).await.expect("read");
        assert_eq!(seen, n * (n + 1) / 2, "the read reflects every write acknowledged before it");
    }
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let ran = AtomicUsize::new(0);
    let err = cluster
        .raft(follower)
        .consistent_read(SECOND, || ran.fetch_add(1, Ordering::SeqCst))
        .await
        .expect_err("a follower has no read point");
    assert!(matches!(err, RaftError::NotLeader { .. }), "{err:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the read did not run");
    cluster.shutdown().await;
}

/// `Raft::snapshot` gives a handle whose state can be read out (a backup, as
/// hashicorp/raft's `Snapshot().Open()`), and that backup restores into
/// another cluster (issue #15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_handle_reads_out_a_backup_that_restores_elsewhere() {
    let source = TestCluster::new(1).await;
    let raft = source.raft(source.leader().await);
    for n in 1..=20 {
        raft.apply(num(n), SECOND).await.expect("apply");
    }
    let snapshot = raft.snapshot().await.expect("snapshot");
    let meta = snapshot.meta().clone();
    assert_eq!(meta.index, raft.applied_index());
    let mut backup = Vec::new();
    std::io::Read::read_to_end(&mut snapshot.open().expect("open"), &mut backup).expect("read");
    assert_eq!(backup.len() as u64, meta.size);
    assert_eq!(backup, 210u64.to_le_bytes(), "the FSM's own bytes: the sum of 1..=20");
    source.shutdown().await;
    // The handle does not keep a shut-down node's store (and its lock) alive.
    match snapshot.open() {
        Err(SnapshotError::Io(error)) => assert_eq!(error.kind(), std::io::ErrorKind::NotConnected),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a shut-down node's snapshot still opened"),
    }

    let target = TestCluster::new(3).await;
    let leader = target.leader().await;
    target
        .raft(leader)
        .restore(&meta, Box::new(std::io::Cursor::new(backup)), SECOND * 5)
        .await
        .expect("restore");
    for i in 0..3 {
        wait_for("every node to hold the backup", SECOND * 10, || {
            (target.parts[i].sum.load(Ordering::SeqCst) == 210).then_some(())
        })
        .await;
    }
    target.shutdown().await;
}

/// A handle whose snapshot the store has since removed says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_handle_outlived_by_its_snapshot_is_not_found() {
    let cluster = TestCluster::new(1).await;
    let raft = cluster.raft(cluster.leader().await);
    raft.apply(num(1), SECOND).await.expect("apply");
    let first = raft.snapshot().await.expect("snapshot");
    // Newer snapshots until the store's retention drops the first.
    let store = &cluster.parts[0].snapshots;
    for n in 2..10 {
        if store.list().expect("list").iter().all(|meta| meta.id != first.meta().id) {
            break;
        }
        raft.apply(num(n), SECOND).await.expect("apply");
        raft.snapshot().await.expect("snapshot");
    }
    match first.open() {
        Err(SnapshotError::NotFound { id }) => assert_eq!(id, first.meta().id),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a replaced snapshot still opened"),
    }
    cluster.shutdown().await;
}
