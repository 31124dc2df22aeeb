//! The cluster test harness: N real nodes in one process on a network the
//! test can break, with checks in the style of the MIT 6.824 Raft tests.
//!
//! A [`Cluster`] is generic over a [`Network`] (how nodes are connected and
//! broken) and a [`StoreFactory`] (each node's stores, kept across crashes),
//! so the same scenarios run with every store and every transport.
//! Every wait has a deadline; a failure names the network's seed.
//! Odd-numbered nodes run their [`TestFsm`] as a task
//! ([`Fsm::never_blocks`](raft_core::Fsm::never_blocks)), even-numbered ones
//! on an FSM thread, so every scenario covers both.

use crate::test_fsm::{Checker, TestFsm};
use bytes::Bytes;
use raft_core::{
    Config, Configuration, LogStore, Raft, RaftError, RaftState, Server, ServerAddress, ServerId,
    SnapshotStore, StableStore, Transport,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long `check_one_leader` and friends wait before failing.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How often waits poll the condition they wait for.
const POLL: Duration = Duration::from_millis(10);

/// A boxed future, for the object-safe traits here.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The stores of one node. They outlive the node's crashes.
#[derive(Clone)]
pub struct NodeStores {
    /// The log store.
    pub logs: Arc<dyn LogStore>,
    /// The stable store.
    pub stable: Arc<dyn StableStore>,
    /// The snapshot store.
    pub snapshots: Arc<dyn SnapshotStore>,
}

impl NodeStores {
    /// Bundles three stores.
    pub fn new(logs: impl LogStore, stable: impl StableStore, snapshots: impl SnapshotStore) -> Self {
        Self { logs: Arc::new(logs), stable: Arc::new(stable), snapshots: Arc::new(snapshots) }
    }
}

/// Makes each node's stores, and reopens them after a crash.
pub trait StoreFactory: Send + Sync + 'static {
    /// Fresh, empty stores for node `node`.
    fn create(&self, node: usize) -> NodeStores;

    /// The stores a restarted node gets. In-memory stores hand back the same
    /// objects; durable stores close and reopen their files.
    fn reopen(&self, node: usize, stores: NodeStores) -> NodeStores {
        let _ = node;
        stores
    }

    /// Empty stores for node `node` in place of `stores`, as an operator
    /// who wipes a node's data directory gets. The default drops `stores`
    /// and creates fresh ones.
    fn wipe(&self, node: usize, stores: NodeStores) -> NodeStores {
        drop(stores);
        self.create(node)
    }
}

impl<F: Fn(usize) -> NodeStores + Send + Sync + 'static> StoreFactory for F {
    fn create(&self, node: usize) -> NodeStores {
        self(node)
    }
}

/// Durable stores for each node in its own directory under a temporary one:
/// `open` opens (or creates) a store in a directory, and the snapshots go
/// to a [`FileSnapshotStore`](raft_core::FileSnapshotStore) beside it.
/// Restarting a node closes its store and opens it again from disk.
pub struct DirStores<S> {
    dir: tempfile::TempDir,
    open: Box<dyn Fn(&std::path::Path) -> S + Send + Sync>,
}

impl<S: LogStore + StableStore> DirStores<S> {
    /// Stores opened with `open`.
    ///
    /// # Panics
    ///
    /// If no temporary directory can be made.
    pub fn new(open: impl Fn(&std::path::Path) -> S + Send + Sync + 'static) -> Self {
        Self { dir: tempfile::tempdir().expect("a temporary directory"), open: Box::new(open) }
    }

    fn node_dir(&self, node: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("node-{node}"))
    }

    fn open_node(&self, node: usize) -> NodeStores {
        let dir = self.node_dir(node);
        let store = Arc::new((self.open)(&dir.join("store")));
        let snapshots = raft_core::FileSnapshotStore::open(dir.join("snapshots")).expect("a snapshot store");
        NodeStores { logs: store.clone(), stable: store, snapshots: Arc::new(snapshots) }
    }
}

impl<S: LogStore + StableStore> StoreFactory for DirStores<S> {
    fn create(&self, node: usize) -> NodeStores {
        self.open_node(node)
    }

    fn reopen(&self, node: usize, stores: NodeStores) -> NodeStores {
        drop(stores);
        self.open_node(node)
    }

    fn wipe(&self, node: usize, stores: NodeStores) -> NodeStores {
        drop(stores);
        std::fs::remove_dir_all(self.node_dir(node)).expect("the node's directory can be removed");
        self.open_node(node)
    }
}

/// Connects a cluster's nodes and breaks the connections on demand.
pub trait Network: Send + Sync + 'static {
    /// The seed of the network's random decisions, printed on failure.
    fn seed(&self) -> u64;
    /// The address of node `node`; the same across restarts.
    fn address(&self, node: usize) -> ServerAddress;
    /// A new transport for node `node` (a restarted node gets a new one).
    fn transport(&self, node: usize) -> BoxFuture<'_, Arc<dyn Transport>>;
    /// Connects or disconnects node `node` from every other node.
    fn set_connected(&self, node: usize, connected: bool);
    /// Splits the nodes into groups that reach only their own members.
    fn partition(&self, groups: &[Vec<usize>]);
    /// Removes every partition and disconnection.
    fn heal(&self);
    /// Turns message loss, delay and reordering on or off.
    fn set_unreliable(&self, unreliable: bool);
    /// How many RPCs node `node` has sent, if the network counts them.
    fn rpc_count(&self, node: usize) -> Option<u64>;
    /// How many bytes node `node` has sent, if the network counts them.
    fn bytes_sent(&self, node: usize) -> Option<u64>;
    /// How many AppendEntries node `node` has sent that were not bare
    /// heartbeats, if the network counts them.
    fn append_count(&self, node: usize) -> Option<u64>;
}

/// The in-memory network of `transport-inmem`, with every fault it has.
pub struct InmemCluster {
    network: transport_inmem::InmemNetwork,
}

impl InmemCluster {
    /// A network whose faults come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { network: transport_inmem::InmemNetwork::new(seed) }
    }

    /// The network underneath, for faults the [`Network`] trait does not name.
    pub fn network(&self) -> &transport_inmem::InmemNetwork {
        &self.network
    }
}

impl Network for InmemCluster {
    fn seed(&self) -> u64 {
        self.network.seed()
    }

    fn address(&self, node: usize) -> ServerAddress {
        ServerAddress::new(format!("inmem-{node}"))
    }

    fn transport(&self, node: usize) -> BoxFuture<'_, Arc<dyn Transport>> {
        let transport: Arc<dyn Transport> = Arc::new(self.network.transport(self.address(node)));
        Box::pin(async move { transport })
    }

    fn set_connected(&self, node: usize, connected: bool) {
        let addr = self.address(node);
        if connected { self.network.connect(&addr) } else { self.network.disconnect(&addr) }
    }

    fn partition(&self, groups: &[Vec<usize>]) {
        let groups: Vec<Vec<ServerAddress>> =
            groups.iter().map(|g| g.iter().map(|&n| self.address(n)).collect()).collect();
        self.network.partition(&groups);
    }

    fn heal(&self) {
        self.network.heal_all();
    }

    fn set_unreliable(&self, unreliable: bool) {
        self.network.set_unreliable(unreliable);
    }

    fn rpc_count(&self, node: usize) -> Option<u64> {
        Some(self.network.rpc_count(&self.address(node)))
    }

    fn bytes_sent(&self, node: usize) -> Option<u64> {
        Some(self.network.bytes_sent(&self.address(node)))
    }

    fn append_count(&self, node: usize) -> Option<u64> {
        Some(self.network.append_count(&self.address(node)))
    }
}

/// A seed for a test's network: `RAFT_SEED` if set, else random.
pub fn seed_from_env() -> u64 {
    std::env::var("RAFT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random)
}

/// The node config the scenarios use: short timeouts, so the suite is quick.
pub fn test_config(id: ServerId) -> Config {
    let mut config = Config::fast(id);
    config.heartbeat_timeout = Duration::from_millis(100);
    config.election_timeout = Duration::from_millis(100);
    config.leader_lease_timeout = Duration::from_millis(100);
    config.commit_timeout = Duration::from_millis(5);
    config
}

struct Slot {
    raft: Option<Raft<TestFsm>>,
    /// Taken out only while the node's stores are being reopened.
    stores: Option<NodeStores>,
    connected: bool,
}

/// N nodes in one process.
pub struct Cluster {
    network: Arc<dyn Network>,
    stores: Arc<dyn StoreFactory>,
    nodes: Vec<Slot>,
    checker: Arc<Checker>,
    config: fn(ServerId) -> Config,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "cluster test failed with network seed {} (rerun with RAFT_SEED={0})",
                self.network.seed()
            );
        }
    }
}

impl Cluster {
    /// Starts `n` nodes, all bootstrapped with the configuration of all `n`
    /// as voters, and returns once they run (not once a leader exists).
    pub async fn new(network: impl Network, stores: impl StoreFactory, n: usize) -> Self {
        Self::with_config(network, stores, n, test_config).await
    }

    /// As [`new`](Self::new), with each node's config from `config`.
    pub async fn with_config(
        network: impl Network,
        stores: impl StoreFactory,
        n: usize,
        config: fn(ServerId) -> Config,
    ) -> Self {
        Self::with_members(network, stores, n, n, config).await
    }

    /// Starts `n` nodes of which only the first `members` are bootstrapped
    /// as the cluster's voters; the others run without state, waiting to be
    /// added with the membership calls.
    pub async fn with_members(
        network: impl Network,
        stores: impl StoreFactory,
        n: usize,
        members: usize,
        config: fn(ServerId) -> Config,
    ) -> Self {
        let network: Arc<dyn Network> = Arc::new(network);
        let stores: Arc<dyn StoreFactory> = Arc::new(stores);
        let nodes =
            (0..n).map(|i| Slot { raft: None, stores: Some(stores.create(i)), connected: true }).collect();
        let mut cluster = Self { network, stores, nodes, checker: Arc::new(Checker::default()), config };
        // No node hears another until every member is bootstrapped: else the
        // first ones could elect a leader whose entries reach a member before
        // its own bootstrap call, which then fails (the node has state).
        for i in 0..n {
            cluster.network.set_connected(i, false);
        }
        for i in 0..n {
            cluster.start(i).await;
        }
        // Addresses are known once every transport is up (TCP binds port 0).
        let configuration = cluster.configuration_of(0..members);
        for i in 0..members {
            let raft = cluster.raft(i);
            if let Err(error) = raft.bootstrap_cluster(configuration.clone()).await {
                cluster.fail(&format!("bootstrapping node {i} failed: {error}"));
            }
        }
        for i in 0..n {
            cluster.network.set_connected(i, true);
        }
        cluster
    }

    /// The configuration of every node as a voter.
    pub fn configuration(&self) -> Configuration {
        self.configuration_of(0..self.nodes.len())
    }

    /// The configuration of `nodes` as voters.
    pub fn configuration_of(&self, nodes: impl IntoIterator<Item = usize>) -> Configuration {
        Configuration::new(
            nodes.into_iter().map(|i| Server::voter(self.id(i), self.network.address(i))).collect(),
        )
    }

    /// Node `i`'s address.
    pub fn address(&self, i: usize) -> ServerAddress {
        self.network.address(i)
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s id.
    pub fn id(&self, i: usize) -> ServerId {
        ServerId::new(format!("node-{i}"))
    }

    /// The network's seed.
    pub fn seed(&self) -> u64 {
        self.network.seed()
    }

    /// Fails the test, naming the seed.
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message} (network seed {})", self.network.seed())
    }

    /// Node `i`'s handle. Fails the test if the node is crashed.
    pub fn raft(&self, i: usize) -> Raft<TestFsm> {
        match &self.nodes[i].raft {
            Some(raft) => raft.clone(),
            None => self.fail(&format!("node {i} is crashed")),
        }
    }

    /// Node `i`'s stores.
    pub fn stores(&self, i: usize) -> &NodeStores {
        match &self.nodes[i].stores {
            Some(stores) => stores,
            None => self.fail(&format!("node {i}'s stores are being reopened")),
        }
    }

    /// Whether node `i` is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].raft.is_some()
    }

    async fn start(&mut self, i: usize) {
        if let Err(error) = self.try_start(i).await {
            self.fail(&format!("starting node {i} failed: {error}"));
        }
    }

    async fn try_start(&mut self, i: usize) -> Result<(), RaftError> {
        let transport = self.network.transport(i).await;
        let stores = self.stores(i).clone();
        // Odd nodes run their FSM as a task, even ones on a thread of its
        // own: every scenario covers both ways of applying.
        let fsm = TestFsm::new(i, self.checker.clone()).as_task(i % 2 == 1);
        let config = (self.config)(self.id(i));
        let raft = Raft::new(config, fsm, stores.logs, stores.stable, stores.snapshots, transport).await?;
        self.nodes[i].raft = Some(raft);
        Ok(())
    }

    /// Stops node `i` as a crash would: the node is gone, its stores stay.
    pub async fn crash(&mut self, i: usize) {
        if let Some(raft) = self.nodes[i].raft.take() {
            let _ = raft.shutdown().await;
        }
    }

    /// Restarts node `i` from its stores (crashing it first if running).
    /// Its FSM starts empty and is rebuilt from the log.
    pub async fn restart(&mut self, i: usize) {
        if let Err(error) = self.try_restart(i).await {
            self.fail(&format!("restarting node {i} failed: {error}"));
        }
    }

    /// As [`restart`](Self::restart), but a node that refuses to start is
    /// the caller's to judge: it stays crashed and its error is returned.
    pub async fn try_restart(&mut self, i: usize) -> Result<(), RaftError> {
        self.crash(i).await;
        self.checker.forget_node(i);
        // Hand over the only handle the cluster keeps, so a durable store
        // can close its files before opening them again.
        if let Some(stores) = self.nodes[i].stores.take() {
            self.nodes[i].stores = Some(self.stores.reopen(i, stores));
        }
        self.try_start(i).await
    }

    /// Crashes node `i` and gives it empty stores, as an operator who wipes
    /// its data does; it is started again, without state.
    pub async fn wipe(&mut self, i: usize) {
        self.crash(i).await;
        self.checker.forget_node(i);
        if let Some(stores) = self.nodes[i].stores.take() {
            self.nodes[i].stores = Some(self.stores.wipe(i, stores));
        }
        self.start(i).await;
    }

    /// Cuts node `i` off from the others.
    pub fn disconnect(&mut self, i: usize) {
        self.nodes[i].connected = false;
        self.network.set_connected(i, false);
    }

    /// Reconnects node `i`.
    pub fn connect(&mut self, i: usize) {
        self.nodes[i].connected = true;
        self.network.set_connected(i, true);
    }

    /// Whether node `i` is connected.
    pub fn is_connected(&self, i: usize) -> bool {
        self.nodes[i].connected
    }

    /// Turns message loss, delay and reordering on or off.
    pub fn set_unreliable(&self, unreliable: bool) {
        self.network.set_unreliable(unreliable);
    }

    /// The RPCs sent by all nodes, if the network counts them.
    pub fn rpc_total(&self) -> Option<u64> {
        (0..self.nodes.len()).map(|i| self.network.rpc_count(i)).sum()
    }

    /// The non-heartbeat AppendEntries sent by all nodes, if counted.
    pub fn append_total(&self) -> Option<u64> {
        (0..self.nodes.len()).map(|i| self.network.append_count(i)).sum()
    }

    /// The checker every node's FSM reports to.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    fn check_invariants(&self) {
        if let Some(violation) = self.checker.violation() {
            self.fail(&violation);
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Raft<TestFsm>)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.connected)
            .filter_map(|(i, s)| s.raft.as_ref().map(|r| (i, r)))
    }

    /// Waits until exactly one connected node leads in the newest term that
    /// has a leader, and returns it. Two leaders in one term fail at once.
    pub async fn check_one_leader(&self) -> usize {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            self.check_invariants();
            let mut by_term: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
            for (i, raft) in self.live() {
                if raft.state() == RaftState::Leader {
                    by_term.entry(raft.current_term()).or_default().push(i);
                }
            }
            for (term, leaders) in &by_term {
                if leaders.len() > 1 {
                    self.fail(&format!("term {term} has {} leaders: {leaders:?}", leaders.len()));
                }
            }
            if let Some((_, leaders)) = by_term.iter().next_back() {
                return leaders[0];
            }
            if Instant::now() > deadline {
                self.fail("no leader was elected");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Checks that no connected node is leader, now and for two election
    /// timeouts after (a leader that just lost its quorum gets one lease to
    /// notice).
    pub async fn check_no_leader(&self) {
        let settle = Instant::now() + Duration::from_millis(500);
        while self.live().any(|(_, r)| r.is_leader()) {
            if Instant::now() > settle {
                let leaders: Vec<usize> =
                    self.live().filter(|(_, r)| r.is_leader()).map(|(i, _)| i).collect();
                self.fail(&format!("nodes {leaders:?} lead without a quorum"));
            }
            tokio::time::sleep(POLL).await;
        }
        let watch_until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < watch_until {
            if let Some((i, _)) = self.live().find(|(_, r)| r.is_leader()) {
                self.fail(&format!("node {i} was elected without a quorum"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every connected node reports the same term, and returns it.
    pub async fn check_terms(&self) -> u64 {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let terms: std::collections::BTreeSet<u64> = self.live().map(|(_, r)| r.current_term()).collect();
            if terms.len() == 1 {
                return terms.into_iter().next().unwrap_or(0);
            }
            if Instant::now() > deadline {
                self.fail(&format!("connected nodes disagree on the term: {terms:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// How many nodes have applied `index`, and the command there. Two nodes
    /// with different commands at one index fail the test at once.
    pub fn n_committed(&self, index: u64) -> (usize, Option<Bytes>) {
        self.check_invariants();
        let (count, command) = self.checker.applied_at(index);
        (count, command)
    }

    /// Waits until at least `n` nodes have applied `index`; returns the command.
    pub async fn wait_committed(&self, index: u64, n: usize, timeout: Duration) -> Option<Bytes> {
        let deadline = Instant::now() + timeout;
        loop {
            let (count, command) = self.n_committed(index);
            if count >= n {
                return command;
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Submits `command` to the leader and waits until `expected` nodes have
    /// applied it; returns its index. With `retry`, a command that fails to
    /// reach `expected` nodes is submitted again (to whichever node leads
    /// then) until 10 s have passed.
    pub async fn one(&self, command: impl Into<Bytes>, expected: usize, retry: bool) -> u64 {
        let command = command.into();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut start = 0;
        while Instant::now() < deadline {
            let live: Vec<Raft<TestFsm>> = self.live().map(|(_, r)| r.clone()).collect();
            let count = live.len().max(1);
            let leader = (0..live.len()).map(|k| &live[(start + k) % count]).find(|r| r.is_leader()).cloned();
            start += 1;
            let Some(raft) = leader else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            match raft.apply(command.clone(), Duration::from_secs(2)).await {
                Ok(applied) => {
                    let got = self.wait_committed(applied.index, expected, Duration::from_secs(2)).await;
                    if got.as_ref() == Some(&command) {
                        return applied.index;
                    }
                    if !retry {
                        self.fail(&format!(
                            "command at index {} did not reach {expected} nodes",
                            applied.index
                        ));
                    }
                }
                Err(RaftError::NotLeader { .. } | RaftError::LeadershipLost | RaftError::Timeout) => {}
                Err(error) => self.fail(&format!("apply failed: {error}")),
            }
            tokio::time::sleep(POLL).await;
        }
        self.fail(&format!("no agreement on {command:?} within 10 s"))
    }

    /// Waits until every running node has applied at least `index`.
    pub async fn wait_all_applied(&self, index: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let behind: Vec<usize> = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.raft.as_ref().filter(|r| r.applied_index() < index).map(|_| i))
                .collect();
            if behind.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("nodes {behind:?} did not apply index {index}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Shuts every node down.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.crash(i).await;
        }
        self.check_invariants();
    }
}

/// `n` nodes for examples and quick tests, on an in-memory network with
/// in-memory stores: node 0 is bootstrapped alone and has elected itself;
/// the others run without state, ready to be added with
/// [`Raft::add_voter`] and friends.
///
/// # Panics
///
/// If node 0 does not become leader within ten seconds.
pub async fn example_cluster(n: usize) -> Vec<Raft<TestFsm>> {
    use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
    let network = transport_inmem::InmemNetwork::new(seed_from_env());
    let checker = Arc::new(Checker::default());
    let mut nodes = Vec::new();
    for i in 0..n {
        let id = ServerId::new(format!("node-{i}"));
        let transport = network.transport(format!("inmem-{i}"));
        let fsm = TestFsm::new(i, checker.clone());
        let (logs, stable, snapshots) =
            (MemLogStore::new(), MemStableStore::new(), InmemSnapshotStore::new());
        let raft = Raft::new(test_config(id), fsm, logs, stable, snapshots, transport)
            .await
            .expect("an in-memory node starts");
        nodes.push(raft);
    }
    if let Some(first) = nodes.first() {
        let configuration =
            Configuration::new(vec![Server::voter(first.id().clone(), first.local_addr().clone())]);
        first.bootstrap_cluster(configuration).await.expect("a fresh node bootstraps");
        let deadline = Instant::now() + LEADER_WAIT;
        while !first.is_leader() {
            assert!(Instant::now() < deadline, "node 0 did not elect itself");
            tokio::time::sleep(POLL).await;
        }
        // Leadership is usable once the first entry of the term commits.
        first.barrier(LEADER_WAIT).await.expect("the new leader commits its first entry");
    }
    nodes
}

/// Runs an async scenario on a two-worker runtime, failing it after `limit`.
pub fn run_scenario<Fut: Future<Output = ()>>(limit: Duration, scenario: impl FnOnce() -> Fut) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        if tokio::time::timeout(limit, scenario()).await.is_err() {
            panic!("the scenario did not finish within {limit:?}");
        }
    });
}
