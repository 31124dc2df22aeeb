//! The simulated nodes: each one a real [`Raft`] node with in-task stores,
//! an in-task FSM and an in-memory transport, started, crashed and
//! restarted on the stores it keeps; and the observers that report what each
//! node says to the trace and the invariants.

use crate::invariants::Recorder;
use crate::kv::{KvFsm, KvState, SharedState};
use crate::nemesis::Plan;
use crate::stores::SimLogStore;
use crate::trace::Trace;
use raft_core::{Config, Configuration, Observation, Raft, RaftError, Server, ServerAddress, ServerId};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store_mem::{InmemSnapshotStore, MemStableStore};
use tokio::task::JoinHandle;
use transport_inmem::InmemNetwork;

/// One node: the stores it keeps across crashes, and the running incarnation.
struct Node {
    logs: Arc<SimLogStore>,
    stable: Arc<MemStableStore>,
    snapshots: InmemSnapshotStore,
    state: SharedState,
    raft: Option<Raft<KvFsm>>,
    incarnation: u64,
    observer: Option<JoinHandle<()>>,
}

/// What a client or the nemesis needs of a running node.
#[derive(Clone)]
pub struct Handle {
    /// Its index.
    pub node: usize,
    /// The node.
    pub raft: Raft<KvFsm>,
    /// Its FSM's map.
    pub state: SharedState,
}

/// The simulated cluster. Cheap to share; never held locked across an await.
pub struct Cluster {
    plan: Plan,
    network: InmemNetwork,
    recorder: Arc<Recorder>,
    trace: Arc<Trace>,
    nodes: Mutex<Vec<Node>>,
}

/// A node's id.
pub fn id(node: usize) -> ServerId {
    ServerId::new(format!("node-{node}"))
}

/// A node's address.
pub fn address(node: usize) -> ServerAddress {
    ServerAddress::new(format!("sim-{node}"))
}

/// The index of the node with this id.
pub fn index_of(id: &ServerId) -> Option<usize> {
    id.as_str().strip_prefix("node-")?.parse().ok()
}

impl Cluster {
    /// The nodes of `plan`, none started yet.
    pub fn new(plan: Plan, network: InmemNetwork, recorder: Arc<Recorder>, trace: Arc<Trace>) -> Self {
        let nodes = (0..plan.nodes())
            .map(|_| Node {
                logs: Arc::default(),
                stable: Arc::default(),
                snapshots: InmemSnapshotStore::with_retain(2),
                state: SharedState::default(),
                raft: None,
                incarnation: 0,
                observer: None,
            })
            .collect();
        Self { plan, network, recorder, trace, nodes: Mutex::new(nodes) }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Node>> {
        self.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The network the nodes talk over.
    pub fn network(&self) -> &InmemNetwork {
        &self.network
    }

    /// How many nodes there are, running or not.
    pub fn len(&self) -> usize {
        self.plan.nodes()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Node `node`'s config: short timeouts scaled by its clock drift, the
    /// plan's snapshot settings, and its own seed.
    fn config(&self, node: usize) -> Config {
        let plan = &self.plan;
        let drift = plan.drift[node];
        let scale = |millis: u64| Duration::from_millis(millis).mul_f64(drift);
        let mut config = Config::fast(id(node));
        config.heartbeat_timeout = scale(200);
        config.election_timeout = scale(200);
        config.leader_lease_timeout = scale(100);
        config.commit_timeout = Duration::from_millis(5);
        config.snapshot_interval = scale(50);
        config.snapshot_threshold = plan.snapshot_threshold;
        config.trailing_logs = plan.trailing_logs;
        config.max_append_entries = plan.max_append_entries;
        config.snapshot_receive_timeout = Duration::from_secs(1);
        config.log_writer = match plan.storage {
            crate::nemesis::StorageMode::Inline => raft_core::LogWriter::Auto,
            crate::nemesis::StorageMode::Worker => raft_core::LogWriter::Task,
        };
        config.random_seed = Some(plan.seed ^ (node as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        config
    }

    /// The configuration the cluster is bootstrapped with: the first voters.
    pub fn initial_configuration(&self) -> Configuration {
        Configuration::new((0..self.plan.voters).map(|n| Server::voter(id(n), address(n))).collect())
    }

    /// Starts `node` (again) on its stores, with a fresh FSM incarnation.
    pub async fn start(self: &Arc<Self>, node: usize) -> Result<(), RaftError> {
        let (fsm, logs, stable, snapshots, incarnation) = {
            let mut nodes = self.lock();
            let slot = &mut nodes[node];
            if slot.raft.is_some() {
                return Ok(());
            }
            slot.incarnation += 1;
            if self.plan.bugs.store_loses_last_batch && slot.incarnation > 1 {
                slot.logs.lose_last_batch();
            }
            slot.state = SharedState::new(Mutex::new(KvState::default()));
            let fsm =
                KvFsm::new(node, slot.incarnation, slot.state.clone(), self.recorder.clone(), self.plan.bugs);
            (fsm, slot.logs.clone(), slot.stable.clone(), slot.snapshots.clone(), slot.incarnation)
        };
        let transport = self.network.transport(address(node));
        let raft = Raft::new(self.config(node), fsm, logs, stable, snapshots, transport).await?;
        self.trace.record(format!("n{node} started (incarnation {incarnation})"));
        let observer = tokio::spawn(observe(self.clone(), node, incarnation, raft.clone()));
        let mut nodes = self.lock();
        nodes[node].raft = Some(raft);
        nodes[node].observer = Some(observer);
        Ok(())
    }

    /// Crashes `node` where it stands: its stores keep what they hold.
    pub async fn crash(&self, node: usize) {
        let (raft, observer) = {
            let mut nodes = self.lock();
            (nodes[node].raft.take(), nodes[node].observer.take())
        };
        if let Some(raft) = raft {
            raft.kill().await;
            self.trace.record(format!("n{node} crashed"));
        }
        if let Some(observer) = observer {
            observer.abort();
        }
    }

    /// Forgets a node that shut itself down (removed from the cluster).
    pub async fn reap_stopped(&self) {
        let stopped: Vec<usize> = self
            .handles()
            .into_iter()
            .filter(|h| h.raft.state() == raft_core::RaftState::Shutdown)
            .map(|h| h.node)
            .collect();
        for node in stopped {
            self.crash(node).await;
        }
    }

    /// Whether `node` runs.
    pub fn is_running(&self, node: usize) -> bool {
        self.lock()[node].raft.is_some()
    }

    /// The running node `node`, if it runs.
    pub fn handle(&self, node: usize) -> Option<Handle> {
        let nodes = self.lock();
        let slot = &nodes[node];
        slot.raft.clone().map(|raft| Handle { node, raft, state: slot.state.clone() })
    }

    /// Every running node.
    pub fn handles(&self) -> Vec<Handle> {
        (0..self.len()).filter_map(|node| self.handle(node)).collect()
    }

    /// The running node that leads in the highest term, if any.
    pub fn leader(&self) -> Option<Handle> {
        self.handles().into_iter().filter(|h| h.raft.is_leader()).max_by_key(|h| h.raft.current_term())
    }

    /// Node `node`'s incarnation (how many times it started).
    pub fn incarnation(&self, node: usize) -> u64 {
        self.lock()[node].incarnation
    }

    /// Node `node`'s log store.
    pub fn logs(&self, node: usize) -> Arc<SimLogStore> {
        self.lock()[node].logs.clone()
    }
}

/// Reports what one node incarnation observes: to the trace, and to the
/// invariants when it becomes leader (one leader per term, and leader
/// completeness of its log).
async fn observe(cluster: Arc<Cluster>, node: usize, incarnation: u64, raft: Raft<KvFsm>) {
    let mut observations = raft.subscribe();
    loop {
        let observation = match observations.recv().await {
            Ok(observation) => observation,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                cluster.trace.record(format!("n{node}/{incarnation} missed {missed} observations"));
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        cluster.trace.record(format!("n{node} {observation:?}"));
        if let Observation::LeaderChanged { leader: Some((leader, _)), term } = &observation
            && index_of(leader) == Some(node)
        {
            cluster.recorder.leader(*term, node);
            if raft.is_leader() && raft.current_term() == *term {
                let logs = cluster.logs(node);
                cluster.recorder.check_leader_log(node, *term, &*logs, raft.stats().last_snapshot_index);
            }
        }
    }
}
