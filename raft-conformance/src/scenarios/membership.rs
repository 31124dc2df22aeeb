//! Membership and leadership-transfer scenarios.

use super::{ELECTION, cmd, pause};
use crate::cluster::{Cluster, Network, StoreFactory, test_config};
use crate::test_fsm::TestFsm;
use raft_core::{Raft, RaftError, RaftState, ServerId};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

async fn leader_raft(cluster: &Cluster) -> (usize, Raft<TestFsm>) {
    let leader = cluster.check_one_leader().await;
    (leader, cluster.raft(leader))
}

async fn add_voter(cluster: &Cluster, node: usize) -> u64 {
    let (_, leader) = leader_raft(cluster).await;
    match leader.add_voter(cluster.id(node), cluster.address(node), 0, CHANGE_TIMEOUT).await {
        Ok(index) => index,
        Err(error) => cluster.fail(&format!("adding node {node} failed: {error}")),
    }
}

async fn remove(cluster: &Cluster, node: usize) -> u64 {
    let (_, leader) = leader_raft(cluster).await;
    match leader.remove_server(cluster.id(node), 0, CHANGE_TIMEOUT).await {
        Ok(index) => index,
        Err(error) => cluster.fail(&format!("removing node {node} failed: {error}")),
    }
}

fn voters(cluster: &Cluster, node: usize) -> Vec<ServerId> {
    let mut ids: Vec<ServerId> =
        cluster.raft(node).get_configuration().1.voters().map(|s| s.id.clone()).collect();
    ids.sort();
    ids
}

/// Applies commands in the background, counting successes, until stopped.
struct Client {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    fn start(rafts: Vec<Raft<TestFsm>>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, committed) = (stop.clone(), committed.clone());
            async move {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    for raft in rafts.iter().filter(|r| r.is_leader()) {
                        n += 1;
                        if raft.apply(cmd(7_000_000 + n), Duration::from_millis(500)).await.is_ok() {
                            committed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
        Self { stop, committed, task }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let committed = self.committed.clone();
        let _ = self.task.await;
        committed.load(Ordering::SeqCst)
    }
}

fn all_rafts(cluster: &Cluster) -> Vec<Raft<TestFsm>> {
    (0..cluster.len()).filter(|&i| cluster.is_running(i)).map(|i| cluster.raft(i)).collect()
}

/// A cluster grows from one node to three to five while a client applies.
/// A new voter joins as a non-voter until it has caught up, so adding a node
/// that cannot even be reached yet does not stall commits (added at once as
/// a voter, it would make a lone leader wait for it).
pub async fn membership_grow_1_3_5(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::with_members(network, stores, 5, 1, test_config).await;
    cluster.check_one_leader().await;
    cluster.one(cmd(1), 1, true).await;
    cluster.disconnect(1);
    let (_, raft) = leader_raft(&cluster).await;
    let adding = tokio::spawn({
        let (raft, id, address) = (raft.clone(), cluster.id(1), cluster.address(1));
        async move { raft.add_voter(id, address, 0, CHANGE_TIMEOUT).await }
    });
    pause(ELECTION).await;
    let configuration = raft.get_configuration().1;
    assert!(configuration.server(&cluster.id(1)).is_some(), "the newcomer is not staged");
    assert!(!configuration.is_voter(&cluster.id(1)), "the newcomer votes before catching up");
    cluster.one(cmd(2), 1, false).await;
    cluster.connect(1);
    if let Err(error) = adding.await.expect("task") {
        cluster.fail(&format!("adding node 1 failed: {error}"));
    }
    let client = Client::start(all_rafts(&cluster));
    for node in 2..5 {
        add_voter(&cluster, node).await;
        if node == 2 {
            cluster.one(cmd(3), 3, true).await;
        }
    }
    let committed = client.stop().await;
    assert!(committed > 0, "the client committed nothing while the cluster grew");
    let index = cluster.one(cmd(5), 5, true).await;
    cluster.wait_all_applied(index, Duration::from_secs(10)).await;
    assert_eq!(voters(&cluster, 0).len(), 5);
    cluster.shutdown().await;
}

/// A five-node cluster shrinks to three, the last removal being the leader
/// itself, which commits the change, steps down and shuts down.
pub async fn membership_shrink_5_3_removing_leader(network: impl Network, stores: impl StoreFactory) {
    let cluster = Cluster::new(network, stores, 5).await;
    cluster.one(cmd(1), 5, true).await;
    let (leader, raft) = leader_raft(&cluster).await;
    let follower = (leader + 1) % 5;
    remove(&cluster, follower).await;
    cluster.one(cmd(2), 4, true).await;
    let index = remove(&cluster, leader).await;
    assert!(index > 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while raft.state() != RaftState::Shutdown {
        if Instant::now() > deadline {
            cluster.fail(&format!("the removed leader is still {:?}", raft.state()));
        }
        pause(Duration::from_millis(5)).await;
    }
    let (new_leader, _) = leader_raft(&cluster).await;
    assert!(new_leader != leader && new_leader != follower);
    cluster.one(cmd(3), 3, true).await;
    assert_eq!(voters(&cluster, new_leader).len(), 3);
    cluster.shutdown().await;
}

/// A crashed node is replaced: removed, and a fresh node added in its place.
pub async fn membership_replace_crashed_node(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::with_members(network, stores, 4, 3, test_config).await;
    cluster.one(cmd(1), 3, true).await;
    let (leader, _) = leader_raft(&cluster).await;
    let dead = (leader + 1) % 3;
    cluster.crash(dead).await;
    remove(&cluster, dead).await;
    add_voter(&cluster, 3).await;
    let index = cluster.one(cmd(2), 3, true).await;
    cluster.wait_committed(index, 3, Duration::from_secs(5)).await;
    let expected: Vec<ServerId> = (0..4).filter(|&i| i != dead).map(|i| cluster.id(i)).collect();
    assert_eq!(voters(&cluster, 3), expected);
    cluster.shutdown().await;
}

/// A node added far behind a compacted log catches up through a snapshot
/// before it is promoted.
pub async fn membership_add_far_behind_node(network: impl Network, stores: impl StoreFactory) {
    let cluster = Cluster::with_members(network, stores, 4, 3, super::snapshot_config).await;
    let mut last = 0;
    for n in 0..60 {
        last = cluster.one(cmd(100 + n), 3, true).await;
    }
    let (leader, _) = leader_raft(&cluster).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while cluster.stores(leader).logs.first_index().unwrap_or(0) <= 1 {
        if Instant::now() > deadline {
            cluster.fail("the leader never compacted its log");
        }
        pause(Duration::from_millis(10)).await;
    }
    add_voter(&cluster, 3).await;
    let index = cluster.one(cmd(1000), 4, true).await;
    cluster.wait_all_applied(index.max(last), Duration::from_secs(10)).await;
    assert!(
        !cluster.stores(3).snapshots.list().unwrap_or_default().is_empty(),
        "the new node caught up without a snapshot, though the log was compacted"
    );
    cluster.shutdown().await;
}

/// A voter demoted to non-voter keeps the log but leaves the quorum, and
/// can be promoted back.
pub async fn membership_demote_and_promote(network: impl Network, stores: impl StoreFactory) {
    let cluster = Cluster::new(network, stores, 3).await;
    cluster.one(cmd(1), 3, true).await;
    let (leader, raft) = leader_raft(&cluster).await;
    let node = (leader + 1) % 3;
    if let Err(error) = raft.demote_voter(cluster.id(node), 0, CHANGE_TIMEOUT).await {
        cluster.fail(&format!("demoting failed: {error}"));
    }
    assert!(!raft.get_configuration().1.is_voter(&cluster.id(node)));
    assert!(raft.get_configuration().1.server(&cluster.id(node)).is_some());
    let index = cluster.one(cmd(2), 3, true).await;
    assert_eq!(cluster.n_committed(index).0, 3, "the non-voter still applies the log");
    add_voter(&cluster, node).await;
    assert!(raft.get_configuration().1.is_voter(&cluster.id(node)));
    cluster.one(cmd(3), 3, true).await;
    cluster.shutdown().await;
}

/// A non-voter neither votes nor counts toward commits: with two voters and
/// one non-voter, losing a voter stops commits and elections.
pub async fn membership_nonvoter_never_votes_nor_counts(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::with_members(network, stores, 3, 2, test_config).await;
    cluster.one(cmd(1), 2, true).await;
    let (leader, raft) = leader_raft(&cluster).await;
    if let Err(error) = raft.add_nonvoter(cluster.id(2), cluster.address(2), 0, CHANGE_TIMEOUT).await {
        cluster.fail(&format!("adding a non-voter failed: {error}"));
    }
    cluster.one(cmd(2), 3, true).await;
    let other_voter = 1 - leader;
    cluster.disconnect(other_voter);
    let started = super::start(&cluster, leader, cmd(3)).await;
    pause(ELECTION * 4).await;
    if let Some(index) = started {
        assert_eq!(
            cluster.n_committed(index).0,
            0,
            "the leader and a non-voter committed without a voter quorum"
        );
    }
    cluster.disconnect(leader);
    cluster.connect(other_voter);
    // The remaining voter cannot win with only the non-voter's support.
    cluster.check_no_leader().await;
    assert_ne!(cluster.raft(2).state(), RaftState::Candidate, "a non-voter campaigned");
    cluster.connect(leader);
    cluster.one(cmd(4), 3, true).await;
    cluster.shutdown().await;
}

/// A second change while one is under way is refused, and so is a change
/// whose `prev_index` is stale.
pub async fn membership_conflicting_changes_refused(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::with_members(network, stores, 5, 3, test_config).await;
    cluster.one(cmd(1), 3, true).await;
    let (_, raft) = leader_raft(&cluster).await;
    // Node 3 is unreachable, so its catch-up never finishes.
    cluster.disconnect(3);
    let pending = tokio::spawn({
        let (raft, id, address) = (raft.clone(), cluster.id(3), cluster.address(3));
        async move { raft.add_voter(id, address, 0, Duration::from_millis(800)).await }
    });
    pause(ELECTION).await;
    let second = raft.add_nonvoter(cluster.id(4), cluster.address(4), 0, CHANGE_TIMEOUT).await;
    assert!(matches!(second, Err(RaftError::ConfigurationChangeInProgress)), "{second:?}");
    let first = pending.await.expect("task");
    assert!(matches!(first, Err(RaftError::Timeout)), "{first:?}");
    cluster.connect(3);
    // Wait for the staging entry (node 3 as non-voter) to commit.
    let (index, _) = raft.get_configuration();
    let deadline = Instant::now() + Duration::from_secs(5);
    while raft.commit_index() < index {
        if Instant::now() > deadline {
            cluster.fail("the staging configuration did not commit");
        }
        pause(Duration::from_millis(5)).await;
    }
    let (prev, _) = raft.get_configuration();
    let changed = raft.add_nonvoter(cluster.id(4), cluster.address(4), prev, CHANGE_TIMEOUT).await;
    let latest = match changed {
        Ok(index) => index,
        Err(error) => cluster.fail(&format!("a change with the current prev_index failed: {error}")),
    };
    let stale = raft.remove_server(cluster.id(4), prev, CHANGE_TIMEOUT).await;
    assert!(
        matches!(stale, Err(RaftError::ConfigurationChanged { prev_index, latest_index }) if prev_index == prev && latest_index == latest),
        "{stale:?}"
    );
    cluster.shutdown().await;
}

/// Leadership moves to the most up-to-date voter on request, under load,
/// and to a named voter.
pub async fn leadership_transfer_moves_leadership(network: impl Network, stores: impl StoreFactory) {
    let cluster = Cluster::new(network, stores, 3).await;
    cluster.one(cmd(1), 3, true).await;
    let client = Client::start(all_rafts(&cluster));
    let (leader, raft) = leader_raft(&cluster).await;
    if let Err(error) = raft.leadership_transfer().await {
        cluster.fail(&format!("transfer failed: {error}"));
    }
    let (second, second_raft) = leader_raft(&cluster).await;
    assert_ne!(second, leader, "leadership did not move");
    let named = (0..3).find(|&i| i != second).expect("a third node");
    if let Err(error) =
        second_raft.leadership_transfer_to_server(cluster.id(named), cluster.address(named)).await
    {
        cluster.fail(&format!("transfer to node {named} failed: {error}"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cluster.raft(named).is_leader() {
        if Instant::now() > deadline {
            cluster.fail(&format!("node {named} did not become leader"));
        }
        pause(Duration::from_millis(5)).await;
    }
    client.stop().await;
    cluster.one(cmd(2), 3, true).await;
    cluster.shutdown().await;
}

/// A transfer to a disconnected voter times out and the leader resumes;
/// transfers to non-voters or to the leader itself, from followers, or during
/// another transfer fail with typed errors.
pub async fn leadership_transfer_refusals_and_timeout(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::with_members(network, stores, 4, 3, test_config).await;
    cluster.one(cmd(1), 3, true).await;
    let (leader, raft) = leader_raft(&cluster).await;
    let follower = (leader + 1) % 3;
    let err = cluster.raft(follower).leadership_transfer().await.expect_err("followers cannot transfer");
    assert!(matches!(err, RaftError::NotLeader { .. }), "{err:?}");
    let err =
        raft.leadership_transfer_to_server(cluster.id(3), cluster.address(3)).await.expect_err("not a voter");
    assert!(matches!(err, RaftError::NotVoter(_)), "{err:?}");
    let err = raft
        .leadership_transfer_to_server(cluster.id(leader), cluster.address(leader))
        .await
        .expect_err("not to itself");
    assert!(matches!(err, RaftError::TransferToSelf), "{err:?}");
    assert!(raft.is_leader(), "a refused transfer changes nothing");
    cluster.disconnect(follower);
    cluster.one(cmd(2), 2, true).await;
    let transfer = tokio::spawn({
        let (raft, id, address) = (raft.clone(), cluster.id(follower), cluster.address(follower));
        async move { raft.leadership_transfer_to_server(id, address).await }
    });
    pause(ELECTION / 2).await;
    let err = raft.leadership_transfer().await.expect_err("one transfer at a time");
    assert!(matches!(err, RaftError::LeadershipTransferInProgress), "{err:?}");
    let err = raft.apply(cmd(3), Duration::from_secs(1)).await.expect_err("commands wait out a transfer");
    assert!(matches!(err, RaftError::LeadershipTransferInProgress), "{err:?}");
    let outcome = transfer.await.expect("task");
    assert!(matches!(outcome, Err(RaftError::Timeout)), "{outcome:?}");
    assert!(raft.is_leader(), "the leader did not resume after a failed transfer");
    raft.apply(cmd(4), Duration::from_secs(2)).await.expect("the resumed leader serves");
    cluster.connect(follower);
    cluster.one(cmd(5), 3, true).await;
    cluster.shutdown().await;
}

/// A removed node that missed its removal keeps campaigning, but its vote
/// requests are ignored while a leader is alive: the cluster's leader and
/// term do not change.
pub async fn membership_removed_node_does_not_disrupt(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 4).await;
    cluster.one(cmd(1), 4, true).await;
    let (leader, _) = leader_raft(&cluster).await;
    let removed = (leader + 1) % 4;
    cluster.disconnect(removed);
    remove(&cluster, removed).await;
    cluster.one(cmd(2), 3, true).await;
    let term = cluster.raft(leader).current_term();
    cluster.connect(removed);
    pause(ELECTION * 8).await;
    let (now_leader, raft) = leader_raft(&cluster).await;
    assert_eq!(now_leader, leader, "the removed node deposed the leader");
    assert_eq!(raft.current_term(), term, "the removed node raised the cluster's term");
    cluster.one(cmd(3), 3, true).await;
    cluster.shutdown().await;
}
