//! The cluster scenarios. Each function is one scenario, named after the
//! behaviour it proves; [`cluster_suite!`](crate::cluster_suite) turns each
//! into a `#[test]` for a given network and store factory. Most follow the
//! MIT 6.824 Raft tests and the Raft paper's figures.

mod membership;
mod snapshots;

pub use membership::*;
pub use snapshots::*;

use crate::cluster::{Cluster, Network, StoreFactory};
use bytes::Bytes;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Duration;
use tokio::time::Instant;

/// An election timeout of the scenarios' config, to wait in multiples of.
pub(crate) const ELECTION: Duration = Duration::from_millis(100);

/// A distinct command for step `n` of a scenario.
pub(crate) fn cmd(n: u64) -> Bytes {
    Bytes::from(format!("command {n}"))
}

pub(crate) async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Starts a command on node `i` without waiting for it to commit; returns
/// the index it was appended at (the node's new last index), or `None` when
/// `i` is not the leader.
pub(crate) async fn start(cluster: &Cluster, i: usize, command: Bytes) -> Option<u64> {
    let raft = cluster.raft(i);
    if !raft.is_leader() {
        return None;
    }
    let before = raft.last_index();
    tokio::spawn({
        let raft = raft.clone();
        async move {
            let _ = raft.apply(command, Duration::from_secs(5)).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(1);
    while raft.last_index() <= before {
        if Instant::now() > deadline || !raft.is_leader() {
            return None;
        }
        pause(Duration::from_millis(1)).await;
    }
    Some(raft.last_index())
}

/// Starts `count` commands on node `i` at once, without waiting for them to
/// commit; returns how many were appended before the node stopped leading
/// or a second passed.
async fn start_many(cluster: &Cluster, i: usize, first: u64, count: u64) -> u64 {
    let raft = cluster.raft(i);
    if !raft.is_leader() {
        return 0;
    }
    let before = raft.last_index();
    for n in first..first + count {
        let raft = raft.clone();
        tokio::spawn(async move {
            let _ = raft.apply(cmd(n), Duration::from_secs(5)).await;
        });
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while raft.last_index() < before + count && raft.is_leader() && Instant::now() < deadline {
        pause(Duration::from_millis(1)).await;
    }
    raft.last_index().saturating_sub(before).min(count)
}

/// One leader is elected, the terms agree, and nothing changes while nothing fails.
pub async fn initial_election(network: impl Network, stores: impl StoreFactory) {
    let cluster = Cluster::new(network, stores, 3).await;
    let leader = cluster.check_one_leader().await;
    let term = cluster.check_terms().await;
    assert!(term >= 1, "a leader implies term >= 1");
    pause(ELECTION * 4).await;
    assert_eq!(cluster.check_terms().await, term, "the term changed with no failure");
    assert_eq!(cluster.check_one_leader().await, leader, "the leader changed with no failure");
    cluster.shutdown().await;
}

/// A disconnected leader is replaced; no leader without a quorum; the old
/// leader rejoining does not disturb the new one.
pub async fn re_election(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 3).await;
    let leader1 = cluster.check_one_leader().await;
    cluster.disconnect(leader1);
    let leader2 = cluster.check_one_leader().await;
    assert_ne!(leader1, leader2);
    cluster.connect(leader1);
    assert_eq!(cluster.check_one_leader().await, leader2, "the old leader rejoining took over");
    cluster.disconnect(leader2);
    cluster.disconnect((leader2 + 1) % 3);
    cluster.check_no_leader().await;
    cluster.connect((leader2 + 1) % 3);
    cluster.check_one_leader().await;
    cluster.connect(leader2);
    cluster.check_one_leader().await;
    cluster.shutdown().await;
}

/// With 7 nodes and 3 random ones disconnected over and over, a leader
/// exists whenever a quorum is connected.
pub async fn many_elections(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 7).await;
    let mut rng = StdRng::seed_from_u64(cluster.seed());
    cluster.check_one_leader().await;
    for _ in 0..6 {
        let cut: Vec<usize> = rand::seq::index::sample(&mut rng, 7, 3).into_vec();
        for &i in &cut {
            cluster.disconnect(i);
        }
        cluster.check_one_leader().await;
        for &i in &cut {
            cluster.connect(i);
        }
    }
    cluster.check_one_leader().await;
    cluster.shutdown().await;
}

async fn basic_agreement(network: impl Network, stores: impl StoreFactory, n: usize) {
    let cluster = Cluster::new(network, stores, n).await;
    cluster.check_one_leader().await;
    let mut last = 0;
    for step in 1..=5 {
        let index = cluster.one(cmd(step), n, false).await;
        assert!(index > last, "indexes grow: {index} after {last}");
        last = index;
    }
    cluster.shutdown().await;
}

/// Three nodes agree on a sequence of commands.
pub async fn basic_agreement_3(network: impl Network, stores: impl StoreFactory) {
    basic_agreement(network, stores, 3).await;
}

/// Five nodes agree on a sequence of commands.
pub async fn basic_agreement_5(network: impl Network, stores: impl StoreFactory) {
    basic_agreement(network, stores, 5).await;
}

/// Each command reaches each follower about once: the bytes a leader sends
/// for 20 large commands stay within twice the commands' own size.
pub async fn rpc_bytes_bounded(network: impl Network, stores: impl StoreFactory) {
    let network = std::sync::Arc::new(network);
    let cluster = Cluster::new(SharedNetwork(network.clone()), stores, 3).await;
    let leader = cluster.check_one_leader().await;
    cluster.one(cmd(0), 3, false).await;
    let Some(before) = network.bytes_sent(leader) else { return cluster.shutdown().await };
    const SIZE: usize = 16 * 1024;
    let commands = 20;
    for step in 1..=commands {
        let mut command = vec![b'x'; SIZE];
        command[..8].copy_from_slice(&(step as u64).to_le_bytes());
        let index = cluster.one(command, 3, false).await;
        assert_eq!(cluster.check_one_leader().await, leader, "the leader changed at index {index}");
    }
    let sent = network.bytes_sent(leader).unwrap_or(0) - before;
    let payload = (commands * SIZE * 2) as u64;
    assert!(sent >= payload, "the leader sent {sent} bytes for {payload} bytes of commands");
    assert!(
        sent <= payload * 2,
        "the leader sent {sent} bytes for {payload} bytes of commands: entries resent"
    );
    cluster.shutdown().await;
}

/// A network shared with the test, so it can read counters the cluster does not.
struct SharedNetwork<N>(std::sync::Arc<N>);

impl<N: Network> Network for SharedNetwork<N> {
    fn seed(&self) -> u64 {
        self.0.seed()
    }
    fn address(&self, node: usize) -> raft_core::ServerAddress {
        self.0.address(node)
    }
    fn transport(
        &self,
        node: usize,
    ) -> crate::cluster::BoxFuture<'_, std::sync::Arc<dyn raft_core::Transport>> {
        self.0.transport(node)
    }
    fn set_connected(&self, node: usize, connected: bool) {
        self.0.set_connected(node, connected)
    }
    fn partition(&self, groups: &[Vec<usize>]) {
        self.0.partition(groups)
    }
    fn heal(&self) {
        self.0.heal()
    }
    fn set_unreliable(&self, unreliable: bool) {
        self.0.set_unreliable(unreliable)
    }
    fn rpc_count(&self, node: usize) -> Option<u64> {
        self.0.rpc_count(node)
    }
    fn bytes_sent(&self, node: usize) -> Option<u64> {
        self.0.bytes_sent(node)
    }
    fn append_count(&self, node: usize) -> Option<u64> {
        self.0.append_count(node)
    }
}

/// The cluster keeps committing with one follower down, and stops without a quorum.
pub async fn follower_failure(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 3).await;
    cluster.one(cmd(101), 3, false).await;
    let leader1 = cluster.check_one_leader().await;
    cluster.disconnect((leader1 + 1) % 3);
    cluster.one(cmd(102), 2, false).await;
    pause(ELECTION).await;
    cluster.one(cmd(103), 2, false).await;
    let leader2 = cluster.check_one_leader().await;
    cluster.disconnect((leader2 + 1) % 3);
    cluster.disconnect((leader2 + 2) % 3);
    let index = start(&cluster, leader2, cmd(104)).await;
    pause(ELECTION * 4).await;
    if let Some(index) = index {
        assert_eq!(cluster.n_committed(index).0, 0, "index {index} committed without a quorum");
    }
    cluster.shutdown().await;
}

/// A new leader takes over when the leader fails; nothing commits without a quorum.
pub async fn leader_failure(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 3).await;
    cluster.one(cmd(101), 3, false).await;
    let leader1 = cluster.check_one_leader().await;
    cluster.disconnect(leader1);
    cluster.one(cmd(102), 2, false).await;
    pause(ELECTION).await;
    cluster.one(cmd(103), 2, false).await;
    let leader2 = cluster.check_one_leader().await;
    cluster.disconnect(leader2);
    let mut started = Vec::new();
    for i in 0..3 {
        if let Some(index) = start(&cluster, i, cmd(104)).await {
            started.push(index);
        }
    }
    pause(ELECTION * 4).await;
    for index in started {
        assert_eq!(cluster.n_committed(index).0, 0, "index {index} committed without a quorum");
    }
    cluster.shutdown().await;
}

/// With three of five followers gone nothing commits; once they return the
/// cluster agrees again.
pub async fn fail_no_agree(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 5).await;
    cluster.one(cmd(10), 5, false).await;
    let leader = cluster.check_one_leader().await;
    for k in 1..=3 {
        cluster.disconnect((leader + k) % 5);
    }
    let index = start(&cluster, leader, cmd(20)).await;
    pause(ELECTION * 4).await;
    if let Some(index) = index {
        assert_eq!(cluster.n_committed(index).0, 0, "committed at {index} with 2 of 5 nodes");
    }
    for k in 1..=3 {
        cluster.connect((leader + k) % 5);
    }
    cluster.check_one_leader().await;
    cluster.one(cmd(30), 5, true).await;
    cluster.shutdown().await;
}

/// Concurrent applies all commit, at distinct indexes.
pub async fn concurrent_applies(network: impl Network, stores: impl StoreFactory) {
    let cluster = Cluster::new(network, stores, 3).await;
    let leader = cluster.check_one_leader().await;
    let raft = cluster.raft(leader);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..50u64 {
        let raft = raft.clone();
        tasks.spawn(async move { raft.apply(cmd(1000 + n), Duration::from_secs(5)).await });
    }
    let mut indexes = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(applied) => {
                assert_eq!(applied.response, applied.index, "the FSM answers with the index");
                indexes.push(applied.index);
            }
            Err(error) => cluster.fail(&format!("a concurrent apply failed: {error}")),
        }
    }
    let count = indexes.len();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), count, "two applies got the same index");
    for index in indexes {
        assert!(
            cluster.wait_committed(index, 3, Duration::from_secs(5)).await.is_some(),
            "index {index} not on 3 nodes"
        );
    }
    cluster.shutdown().await;
}

/// A partitioned leader's uncommitted entries are discarded when it rejoins.
pub async fn rejoin(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 3).await;
    cluster.one(cmd(101), 3, true).await;
    let leader1 = cluster.check_one_leader().await;
    cluster.disconnect(leader1);
    let mut orphans = Vec::new();
    for n in 102..=104 {
        orphans.extend(start(&cluster, leader1, cmd(n)).await);
    }
    let index103 = cluster.one(cmd(103), 2, true).await;
    let leader2 = cluster.check_one_leader().await;
    cluster.disconnect(leader2);
    cluster.connect(leader1);
    cluster.one(cmd(104), 2, true).await;
    cluster.connect(leader2);
    cluster.one(cmd(105), 3, true).await;
    for index in orphans {
        let (_, command) = cluster.n_committed(index);
        if index == index103 {
            assert_eq!(command, Some(cmd(103)), "the majority's entry won at {index}");
        }
    }
    cluster
        .wait_all_applied(
            cluster.raft(cluster.check_one_leader().await).commit_index(),
            Duration::from_secs(5),
        )
        .await;
    cluster.shutdown().await;
}

/// A leader backs up quickly over many conflicting entries (MIT's
/// TestBackup): followers holding 50 uncommitted entries of an old term are
/// repaired in a bounded number of AppendEntries, because each refusal names
/// the first index of the conflicting term and the leader skips the whole term.
pub async fn backup(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 5).await;
    cluster.one(cmd(0), 5, true).await;
    let leader1 = cluster.check_one_leader().await;
    // The leader and one follower, cut off: 50 entries that never commit.
    let minority = [leader1, (leader1 + 1) % 5];
    let majority: Vec<usize> = (0..5).filter(|i| !minority.contains(i)).collect();
    for &i in &majority {
        cluster.disconnect(i);
    }
    let orphans = start_many(&cluster, leader1, 1001, 50).await;
    assert!(orphans >= 40, "the cut-off leader appended only {orphans} entries");
    pause(ELECTION * 2).await;
    for &i in &minority {
        cluster.disconnect(i);
    }
    // The majority elects a leader and commits 50 other entries.
    for &i in &majority {
        cluster.connect(i);
    }
    for n in 1..=50 {
        cluster.one(cmd(2000 + n), 3, true).await;
    }
    // The leader and one majority follower go; the minority returns. The new
    // leader's log starts past the minority's conflicting entries, so it must
    // back up over all of them.
    let leader2 = cluster.check_one_leader().await;
    let other = *majority.iter().find(|&&i| i != leader2).expect("a second majority node");
    cluster.disconnect(other);
    start_many(&cluster, leader2, 3001, 50).await;
    pause(ELECTION * 2).await;
    for i in 0..5 {
        cluster.disconnect(i);
    }
    let before = cluster.append_total();
    cluster.connect(minority[0]);
    cluster.connect(minority[1]);
    cluster.connect(other);
    let index = cluster.one(cmd(3999), 3, true).await;
    assert!(
        cluster.wait_committed(index, 3, Duration::from_secs(10)).await.is_some(),
        "the minority was not repaired"
    );
    if let (Some(before), Some(after)) = (before, cluster.append_total()) {
        let sent = after - before;
        assert!(sent <= 40, "repairing two followers over 50 conflicting entries took {sent} AppendEntries");
    }
    for n in 1..=50 {
        cluster.one(cmd(4000 + n), 3, true).await;
    }
    // Everyone back: the leader repairs the rest.
    for i in 0..5 {
        cluster.connect(i);
    }
    let index = cluster.one(cmd(5000), 5, true).await;
    cluster.wait_all_applied(index, Duration::from_secs(10)).await;
    cluster.shutdown().await;
}

/// Crashing and restarting every node, then the leader, then followers,
/// loses nothing that was committed.
pub async fn persist_1(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 3).await;
    cluster.one(cmd(11), 3, true).await;
    for i in 0..3 {
        cluster.restart(i).await;
    }
    cluster.one(cmd(12), 3, true).await;
    let leader1 = cluster.check_one_leader().await;
    cluster.restart(leader1).await;
    cluster.one(cmd(13), 3, true).await;
    let leader2 = cluster.check_one_leader().await;
    cluster.crash(leader2).await;
    cluster.one(cmd(14), 2, true).await;
    cluster.restart(leader2).await;
    let index = cluster.one(cmd(15), 3, true).await;
    cluster.wait_all_applied(index, Duration::from_secs(5)).await;
    for i in 0..3 {
        let applied = cluster_applied(&cluster, i);
        for n in 11..=15 {
            assert!(applied.contains(&cmd(n)), "node {i} lost {:?}", cmd(n));
        }
    }
    cluster.shutdown().await;
}

fn cluster_applied(cluster: &Cluster, node: usize) -> Vec<Bytes> {
    cluster.checker().applied_by(node).into_iter().map(|(_, c)| c).collect()
}

/// Repeated crashes of the leader and followers in turn, with agreement in
/// between, lose nothing.
pub async fn persist_2(network: impl Network, stores: impl StoreFactory) {
    persist_2_with(Cluster::new(network, stores, 5).await).await;
}

/// Persist 2 with PreVote off, so the vote rules alone keep stale nodes from leading.
pub async fn persist_2_without_prevote(network: impl Network, stores: impl StoreFactory) {
    persist_2_with(Cluster::with_config(network, stores, 5, config_without_prevote).await).await;
}

fn config_without_prevote(id: raft_core::ServerId) -> raft_core::Config {
    let mut config = crate::cluster::test_config(id);
    config.prevote = false;
    config
}

async fn persist_2_with(mut cluster: Cluster) {
    let mut step = 1;
    for _ in 0..4 {
        cluster.one(cmd(10 + step), 5, true).await;
        step += 1;
        let leader1 = cluster.check_one_leader().await;
        cluster.crash((leader1 + 1) % 5).await;
        cluster.crash((leader1 + 2) % 5).await;
        cluster.one(cmd(10 + step), 3, true).await;
        step += 1;
        cluster.crash(leader1).await;
        cluster.crash((leader1 + 3) % 5).await;
        cluster.crash((leader1 + 4) % 5).await;
        cluster.restart((leader1 + 1) % 5).await;
        cluster.restart((leader1 + 2) % 5).await;
        pause(ELECTION).await;
        cluster.restart((leader1 + 3) % 5).await;
        cluster.one(cmd(10 + step), 3, true).await;
        step += 1;
        cluster.restart((leader1 + 4) % 5).await;
        cluster.restart(leader1).await;
    }
    cluster.one(cmd(1000), 5, true).await;
    cluster.shutdown().await;
}

/// A leader and follower partitioned away, then the leader crashed and
/// restarted, never undo what the majority committed.
pub async fn persist_3(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 3).await;
    cluster.one(cmd(101), 3, true).await;
    let leader = cluster.check_one_leader().await;
    cluster.disconnect((leader + 2) % 3);
    cluster.one(cmd(102), 2, true).await;
    cluster.crash(leader).await;
    cluster.crash((leader + 1) % 3).await;
    cluster.connect((leader + 2) % 3);
    cluster.restart(leader).await;
    cluster.one(cmd(103), 2, true).await;
    cluster.restart((leader + 1) % 3).await;
    let index = cluster.one(cmd(104), 3, true).await;
    cluster.wait_all_applied(index, Duration::from_secs(5)).await;
    cluster.shutdown().await;
}

/// Raft's Figure 8: leaders crash at random moments; an entry of an older
/// term is never counted as committed by replica count alone. The checker
/// fails the test if two nodes ever apply different commands at an index.
pub async fn figure_8(network: impl Network, stores: impl StoreFactory) {
    figure_8_with(Cluster::new(network, stores, 5).await, false).await;
}

/// Figure 8 with PreVote off.
pub async fn figure_8_without_prevote(network: impl Network, stores: impl StoreFactory) {
    figure_8_with(Cluster::with_config(network, stores, 5, config_without_prevote).await, false).await;
}

/// Figure 8 on an unreliable network with partitions.
pub async fn figure_8_unreliable(network: impl Network, stores: impl StoreFactory) {
    figure_8_with(Cluster::new(network, stores, 5).await, true).await;
}

async fn figure_8_with(mut cluster: Cluster, unreliable: bool) {
    let mut rng = StdRng::seed_from_u64(cluster.seed());
    cluster.set_unreliable(unreliable);
    cluster.one(cmd(0), 1, true).await;
    let mut up = 5;
    for iteration in 0..40u64 {
        let mut leader = None;
        for i in 0..5 {
            if cluster.is_running(i)
                && cluster.is_connected(i)
                && start(&cluster, i, cmd(100 + iteration)).await.is_some()
            {
                leader = Some(i);
            }
        }
        let wait = if rng.random_ratio(1, 10) {
            Duration::from_millis(rng.random_range(0..ELECTION.as_millis() as u64 * 2))
        } else {
            Duration::from_millis(rng.random_range(0..13))
        };
        pause(wait).await;
        if let Some(leader) = leader {
            if unreliable {
                cluster.disconnect(leader);
            } else {
                cluster.crash(leader).await;
            }
            up -= 1;
        }
        if up < 3 {
            let s = rng.random_range(0..5);
            if unreliable && !cluster.is_connected(s) {
                cluster.connect(s);
                up += 1;
            } else if !unreliable && !cluster.is_running(s) {
                cluster.restart(s).await;
                up += 1;
            }
        }
    }
    cluster.set_unreliable(false);
    for i in 0..5 {
        if !cluster.is_running(i) {
            cluster.restart(i).await;
        }
        cluster.connect(i);
    }
    let index = cluster.one(cmd(9999), 5, true).await;
    cluster.wait_all_applied(index, Duration::from_secs(10)).await;
    cluster.shutdown().await;
}

/// On an unreliable network, concurrent clients' commands all reach agreement.
pub async fn unreliable_agreement(network: impl Network, stores: impl StoreFactory) {
    let cluster = std::sync::Arc::new(Cluster::new(network, stores, 5).await);
    cluster.set_unreliable(true);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..4u64 {
        let cluster = cluster.clone();
        tasks.spawn(async move {
            for n in 0..8 {
                cluster.one(cmd(100 * client + n), 1, true).await;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        if let Err(error) = result {
            std::panic::resume_unwind(error.into_panic());
        }
    }
    cluster.set_unreliable(false);
    cluster.one(cmd(9999), 5, true).await;
    let Ok(cluster) = std::sync::Arc::try_unwrap(cluster) else { panic!("clients still hold the cluster") };
    cluster.shutdown().await;
}

async fn churn(network: impl Network, stores: impl StoreFactory, unreliable: bool) {
    let cluster = Cluster::new(network, stores, 5).await;
    let seed = cluster.seed();
    cluster.set_unreliable(unreliable);
    let cluster = std::sync::Arc::new(tokio::sync::Mutex::new(cluster));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..3u64 {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        clients.spawn(async move {
            let mut committed = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let rafts: Vec<_> = {
                    let cluster = cluster.lock().await;
                    (0..cluster.len()).filter(|&i| cluster.is_running(i)).map(|i| cluster.raft(i)).collect()
                };
                for raft in rafts.into_iter().filter(|r| r.is_leader()) {
                    let command = cmd(1_000_000 * (client + 1) + n);
                    if let Ok(applied) = raft.apply(command.clone(), Duration::from_millis(500)).await {
                        committed.push((applied.index, command));
                    }
                    n += 1;
                }
                pause(Duration::from_millis(5)).await;
            }
            committed
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..20 {
        {
            let mut cluster = cluster.lock().await;
            if rng.random_ratio(1, 5) {
                let i = rng.random_range(0..5);
                cluster.disconnect(i);
            }
            if rng.random_ratio(1, 2) {
                let i = rng.random_range(0..5);
                if !cluster.is_running(i) {
                    cluster.restart(i).await;
                }
                cluster.connect(i);
            }
            if rng.random_ratio(1, 5) {
                let i = rng.random_range(0..5);
                cluster.crash(i).await;
            }
        }
        pause(Duration::from_millis(rng.random_range(20..ELECTION.as_millis() as u64 * 2))).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut committed = Vec::new();
    while let Some(result) = clients.join_next().await {
        committed.extend(result.expect("client task"));
    }
    let Ok(cluster) = std::sync::Arc::try_unwrap(cluster) else { panic!("clients still hold the cluster") };
    let mut cluster = cluster.into_inner();
    cluster.set_unreliable(false);
    for i in 0..5 {
        if !cluster.is_running(i) {
            cluster.restart(i).await;
        }
        cluster.connect(i);
    }
    let last = cluster.one(cmd(42), 5, true).await;
    cluster.wait_all_applied(last, Duration::from_secs(10)).await;
    for (index, command) in committed {
        let (count, applied) = cluster.n_committed(index);
        assert_eq!(applied, Some(command.clone()), "committed {command:?} at {index} was lost");
        assert_eq!(count, 5, "index {index} is not applied on every node");
    }
    cluster.shutdown().await;
}

/// Random crashes, restarts and disconnects while clients apply: every
/// acknowledged command ends up applied at its index on every node.
pub async fn reliable_churn(network: impl Network, stores: impl StoreFactory) {
    churn(network, stores, false).await;
}

/// Churn on an unreliable network.
pub async fn unreliable_churn(network: impl Network, stores: impl StoreFactory) {
    churn(network, stores, true).await;
}

/// PreVote: a follower cut off for many election timeouts and reconnected
/// does not raise the cluster's term or depose the leader.
pub async fn prevote_keeps_term(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 3).await;
    let leader = cluster.check_one_leader().await;
    let term = cluster.check_terms().await;
    let follower = (leader + 1) % 3;
    cluster.disconnect(follower);
    pause(ELECTION * 8).await;
    assert_eq!(cluster.raft(follower).current_term(), term, "an isolated node raised its term");
    cluster.connect(follower);
    cluster.one(cmd(1), 3, true).await;
    assert_eq!(cluster.check_one_leader().await, leader, "the rejoining node deposed the leader");
    assert_eq!(cluster.check_terms().await, term);
    cluster.shutdown().await;
}

/// Check-quorum: a leader cut off from the majority steps down within its lease.
pub async fn leader_steps_down_without_quorum(network: impl Network, stores: impl StoreFactory) {
    let mut cluster = Cluster::new(network, stores, 3).await;
    let leader = cluster.check_one_leader().await;
    cluster.disconnect(leader);
    let raft = cluster.raft(leader);
    let deadline = Instant::now() + ELECTION * 3;
    while raft.is_leader() {
        if Instant::now() > deadline {
            cluster.fail("a leader without a quorum kept leading past three lease timeouts");
        }
        pause(Duration::from_millis(5)).await;
    }
    let err = raft.apply(cmd(1), Duration::from_secs(1)).await.expect_err("a deposed leader accepts nothing");
    assert!(matches!(err, raft_core::RaftError::NotLeader { .. }), "{err:?}");
    cluster.connect(leader);
    cluster.one(cmd(2), 3, true).await;
    cluster.shutdown().await;
}
