//! One simulated run: the cluster of a seed's plan on one current-thread
//! runtime with a paused clock, its clients, the fault schedule, the
//! invariants sampled as it goes; then everything heals, the cluster must
//! elect a leader and converge within bounded virtual time, and the history
//! must be linearizable.

use crate::cluster::{Cluster, Handle, address, id};
use crate::invariants::{Recorder, check_log_matching};
use crate::kv::{PlantedBugs, encode_state, lock};
use crate::linearizability::{self, History, Op, Verdict};
use crate::nemesis::{Fault, Plan, StorageMode};
use crate::trace::Trace;
use crate::workload::{Workload, key};
use raft_core::{RaftError, SNAPSHOT_VERSION, SnapshotMeta};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use transport_inmem::{Faults, InmemNetwork};

/// How long, after everything heals, the cluster may take to elect a
/// leader and commit a write.
const LEADER_WITHIN: Duration = Duration::from_secs(10);
/// How long every member may then take to apply that write.
const CONVERGE_WITHIN: Duration = Duration::from_secs(20);
/// How often the invariants are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// What one run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The bugs planted (none in a real run).
    pub bugs: PlantedBugs,
    /// How the nodes wrote their logs.
    pub storage: StorageMode,
    /// The plan, in a line.
    pub plan: String,
    /// The first violation, if any.
    pub violation: Option<String>,
    /// The linearizability search gave up on a key (not a violation).
    pub undecided: Option<String>,
    /// The hash of the whole trace.
    pub trace_hash: u64,
    /// How many events the trace holds.
    pub events: u64,
    /// The last events before the run ended (or failed).
    pub last_events: Vec<String>,
    /// The faults that struck, with their times.
    pub faults: Vec<String>,
    /// How many client operations the history holds.
    pub operations: usize,
    /// How many distinct log indexes some FSM applied.
    pub committed: usize,
    /// How much virtual time the run took.
    pub virtual_time: Duration,
}

impl Report {
    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut command = format!("cargo run --release -p raft-sim -- --replay {}", self.seed);
        if self.storage != StorageMode::Inline {
            command.push_str(" --storage ");
            command.push_str(self.storage.name());
        }
        for (planted, flag) in [
            (self.bugs.fsm_drops_writes, " --plant fsm-drops-writes"),
            (self.bugs.stale_reads, " --plant stale-reads"),
            (self.bugs.store_loses_last_batch, " --plant store-loses-last-batch"),
        ] {
            if planted {
                command.push_str(flag);
            }
        }
        command
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {}: {}", self.seed, self.violation.as_deref().unwrap_or("no violation"))?;
        writeln!(f, "  plan: {}", self.plan)?;
        writeln!(
            f,
            "  faults: {}",
            if self.faults.is_empty() { "none".into() } else { self.faults.join(", ") }
        )?;
        writeln!(f, "  last events:")?;
        for event in &self.last_events {
            writeln!(f, "    {event}")?;
        }
        write!(f, "  replay: {}", self.replay_command())
    }
}

/// Runs the seed's plan, with `bugs` planted, to the end.
pub fn run(seed: u64, bugs: PlantedBugs) -> Report {
    run_with(seed, bugs, linearizability::STATES_MAX)
}

/// [`run`], with the linearizability search bounded at `states_max` states
/// per key (a seed whose check was undecided may be decided with more).
pub fn run_with(seed: u64, bugs: PlantedBugs, states_max: usize) -> Report {
    run_in(seed, bugs, states_max, StorageMode::Inline)
}

/// [`run_with`], with the nodes writing their logs in `storage` mode.
pub fn run_in(seed: u64, bugs: PlantedBugs, states_max: usize, storage: StorageMode) -> Report {
    let mut plan = Plan::new(seed, bugs);
    plan.storage = storage;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(simulate(plan, states_max))
}

struct Sim {
    plan: Plan,
    cluster: Arc<Cluster>,
    recorder: Arc<Recorder>,
    trace: Arc<Trace>,
    history: Arc<History>,
    rng: StdRng,
    started: Instant,
    faults: Vec<String>,
    states_max: usize,
}

async fn simulate(plan: Plan, states_max: usize) -> Report {
    let recorder = Arc::new(Recorder::default());
    let trace = Arc::new(Trace::new());
    let network = InmemNetwork::new(plan.seed);
    let messages = trace.clone();
    network.on_message(Arc::new(move |message| messages.record(message)));
    let cluster = Arc::new(Cluster::new(plan.clone(), network, recorder.clone(), trace.clone()));
    let mut sim = Sim {
        rng: StdRng::seed_from_u64(plan.seed.rotate_left(17) ^ 0x5eed),
        plan,
        cluster,
        recorder,
        trace,
        history: Arc::new(History::default()),
        started: Instant::now(),
        faults: Vec::new(),
        states_max,
    };
    let undecided = sim.run().await;
    sim.report(undecided)
}

impl Sim {
    /// The whole run; the violation (if any) is in the recorder.
    async fn run(&mut self) -> Option<String> {
        if let Err(error) = self.boot().await {
            self.recorder.report(format!("the cluster did not start: {error}"));
            return None;
        }
        let workload = Arc::new(Workload {
            cluster: self.cluster.clone(),
            history: self.history.clone(),
            trace: self.trace.clone(),
            keys: self.plan.keys,
            stale_reads: self.plan.bugs.stale_reads,
            stop: Default::default(),
        });
        let clients: Vec<_> = (0..self.plan.clients)
            .map(|c| tokio::spawn(workload.clone().client(c, self.plan.seed.wrapping_add(1 + c as u64))))
            .collect();
        let sampler = tokio::spawn(sample(self.cluster.clone(), self.recorder.clone()));
        self.strike().await;
        if self.recorder.violation().is_none() {
            self.heal_and_converge(&workload).await;
        }
        workload.stop.store(true, Ordering::Relaxed);
        for client in clients {
            let _ = tokio::time::timeout(Duration::from_secs(5), client).await;
        }
        let mut undecided = None;
        if self.recorder.violation().is_none() {
            match self.cluster.leader() {
                Some(leader) => {
                    if let Err(error) = workload.final_reads(&leader).await {
                        self.recorder.report(format!("liveness: the final reads failed: {error}"));
                    }
                }
                None => self.recorder.report("liveness: no leader for the final reads".into()),
            }
        }
        sampler.abort();
        self.check_logs();
        if self.recorder.violation().is_none() {
            match linearizability::check_with(&self.history.operations(), self.states_max) {
                Ok(()) => {}
                Err(Verdict::NotLinearizable { key, operations }) => {
                    let shown: Vec<String> = operations.iter().rev().take(12).rev().map(describe).collect();
                    self.recorder.report(format!(
                        "not linearizable: key {key} ({} operations; the last: {})",
                        operations.len(),
                        shown.join(" | ")
                    ));
                }
                Err(Verdict::Undecided { key }) => undecided = Some(key),
            }
        }
        for node in 0..self.cluster.len() {
            self.cluster.crash(node).await;
        }
        undecided
    }

    fn report(&self, undecided: Option<String>) -> Report {
        Report {
            seed: self.plan.seed,
            bugs: self.plan.bugs,
            storage: self.plan.storage,
            plan: self.plan.to_string(),
            violation: self.recorder.violation(),
            undecided,
            trace_hash: self.trace.hash(),
            events: self.trace.events(),
            last_events: self.trace.tail(),
            faults: self.faults.clone(),
            operations: self.history.operations().len(),
            committed: self.recorder.committed_count(),
            virtual_time: self.started.elapsed(),
        }
    }

    /// Starts every node and bootstraps the first voters.
    async fn boot(&self) -> Result<(), RaftError> {
        for node in 0..self.cluster.len() {
            self.cluster.start(node).await?;
        }
        let configuration = self.cluster.initial_configuration();
        for node in 0..self.plan.voters {
            if let Some(handle) = self.cluster.handle(node) {
                handle.raft.bootstrap_cluster(configuration.clone()).await?;
            }
        }
        Ok(())
    }

    /// Runs the fault schedule, stopping early at a violation.
    async fn strike(&mut self) {
        let schedule = self.plan.schedule.clone();
        for (at, fault) in schedule {
            tokio::time::sleep_until(self.started + at).await;
            self.cluster.reap_stopped().await;
            if self.recorder.violation().is_some() {
                return;
            }
            self.faults.push(format!("{}ms {fault}", at.as_millis()));
            self.trace.record(format!("fault {fault}"));
            self.apply(fault).await;
        }
        tokio::time::sleep_until(self.started + self.plan.faults_for).await;
    }

    fn network(&self) -> &InmemNetwork {
        self.cluster.network()
    }

    fn random_node(&mut self) -> usize {
        self.rng.random_range(0..self.cluster.len())
    }

    fn random_running(&mut self) -> Option<Handle> {
        let handles = self.cluster.handles();
        (!handles.is_empty()).then(|| handles[self.rng.random_range(0..handles.len())].clone())
    }

    async fn apply(&mut self, fault: Fault) {
        let nodes = self.cluster.len();
        match fault {
            Fault::PartitionHalves => {
                let mut all: Vec<usize> = (0..nodes).collect();
                all.shuffle(&mut self.rng);
                let cut = self.rng.random_range(1..nodes);
                let groups = [
                    all[..cut].iter().map(|&n| address(n)).collect(),
                    all[cut..].iter().map(|&n| address(n)).collect(),
                ];
                self.network().partition(&groups);
            }
            Fault::PartitionBridge => {
                let mut all: Vec<usize> = (0..nodes).collect();
                all.shuffle(&mut self.rng);
                let (_bridge, rest) = all.split_first().expect("nodes");
                let half = rest.len() / 2;
                for &a in &rest[..half] {
                    for &b in &rest[half..] {
                        self.network().cut(&address(a), &address(b));
                    }
                }
            }
            Fault::IsolateLeader => {
                if let Some(leader) = self.cluster.leader() {
                    self.network().disconnect(&address(leader.node));
                }
            }
            Fault::CutOneWay => {
                let (from, to) = (self.random_node(), self.random_node());
                if from != to {
                    self.network().cut_one_way(&address(from), &address(to));
                }
            }
            Fault::Heal => self.network().heal_all(),
            Fault::Lossy { drop_requests, drop_replies, duplicate, reorder, delay_max } => {
                self.network().set_faults(Faults {
                    drop_requests,
                    drop_replies,
                    duplicate,
                    reorder,
                    reorder_delay_max: Duration::from_millis(60),
                    delay: Some((Duration::ZERO, delay_max)),
                    failure_delay_max: Duration::from_millis(50),
                });
            }
            Fault::Reliable => self.network().set_faults(Faults::reliable()),
            Fault::Crash => {
                if let Some(victim) = self.random_running() {
                    self.cluster.crash(victim.node).await;
                }
            }
            Fault::RestartAll => self.restart_all().await,
            Fault::FailWrites(count) => {
                if let Some(victim) = self.random_running() {
                    self.cluster.logs(victim.node).fail_next_writes(count);
                }
            }
            Fault::Hold(duration) => {
                let node = self.random_node();
                self.network().hold(&address(node), Instant::now() + duration);
            }
            Fault::Snapshot => {
                if let Some(node) = self.random_running() {
                    tokio::spawn(async move { node.raft.snapshot().await });
                }
            }
            Fault::UserRestore => self.user_restore().await,
            membership => self.change_membership(membership).await,
        }
    }

    /// Restarts every node that is not running; a node that refuses to
    /// start is a violation (the simulation never damages a store) unless
    /// a write it was set to fail failed the start, which is the typed error
    /// a user sees: then, once the store works again, it must start (found
    /// by seed 3230).
    async fn restart_all(&mut self) {
        for node in 0..self.cluster.len() {
            if self.cluster.is_running(node) {
                continue;
            }
            let mut started = self.cluster.start(node).await;
            if started.as_ref().is_err_and(|e| e.to_string().contains(crate::stores::INJECTED_FAILURE)) {
                self.trace
                    .record(format!("n{node} start failed on a failed write; retrying on a working store"));
                self.cluster.logs(node).fail_next_writes(0);
                started = self.cluster.start(node).await;
            }
            if let Err(error) = started {
                self.recorder.report(format!("node {node} refused to start: {error}"));
            }
        }
    }

    async fn change_membership(&mut self, fault: Fault) {
        let Some(leader) = self.cluster.leader() else { return };
        let (_, configuration) = leader.raft.get_configuration();
        let voters: Vec<usize> =
            configuration.voters().filter_map(|s| crate::cluster::index_of(&s.id)).collect();
        let members: Vec<usize> =
            configuration.servers.iter().filter_map(|s| crate::cluster::index_of(&s.id)).collect();
        let outsiders: Vec<usize> = (0..self.cluster.len()).filter(|n| !members.contains(n)).collect();
        let raft = leader.raft.clone();
        let timeout = Duration::from_secs(2);
        match fault {
            Fault::AddVoter | Fault::AddNonvoter if !outsiders.is_empty() => {
                let node = outsiders[self.rng.random_range(0..outsiders.len())];
                if !self.cluster.is_running(node) && self.cluster.start(node).await.is_err() {
                    return;
                }
                let voter = fault == Fault::AddVoter;
                tokio::spawn(async move {
                    if voter {
                        raft.add_voter(id(node), address(node), 0, timeout).await
                    } else {
                        raft.add_nonvoter(id(node), address(node), 0, timeout).await
                    }
                });
            }
            Fault::Demote if voters.len() > 3 => {
                let node = voters[self.rng.random_range(0..voters.len())];
                if node != leader.node {
                    tokio::spawn(async move { raft.demote_voter(id(node), 0, timeout).await });
                }
            }
            Fault::Remove if voters.len() > 3 || members.len() > voters.len() => {
                let node = members[self.rng.random_range(0..members.len())];
                if voters.len() > 3 || !voters.contains(&node) {
                    tokio::spawn(async move { raft.remove_server(id(node), 0, timeout).await });
                }
            }
            Fault::Transfer => {
                tokio::spawn(async move { raft.leadership_transfer().await });
            }
            _ => {}
        }
    }

    /// Backs up the leader's state and restores it, as an operator would:
    /// writes between the two are overwritten, which the history records as
    /// a restore of every key.
    async fn user_restore(&mut self) {
        let Some(leader) = self.cluster.leader() else { return };
        let mut backup = lock(&leader.state).clone();
        backup.applied = crate::kv::BACKUP;
        let bytes = encode_state(&backup);
        let meta = SnapshotMeta {
            id: "backup".into(),
            index: 0,
            term: 0,
            configuration: Default::default(),
            configuration_index: 0,
            size: bytes.len() as u64,
            version: SNAPSHOT_VERSION,
        };
        let ids: Vec<usize> = (0..self.plan.keys)
            .map(|n| {
                self.history.call(usize::MAX - 1, &key(n), Op::Restore(backup.map.get(&key(n)).cloned()))
            })
            .collect();
        let history = self.history.clone();
        tokio::spawn(async move {
            match leader
                .raft
                .restore(&meta, Box::new(std::io::Cursor::new(bytes)), Duration::from_secs(2))
                .await
            {
                Ok(_) => ids.iter().for_each(|&id| history.returned(id, None)),
                Err(RaftError::NotLeader { .. }) => ids.iter().for_each(|&id| history.forget(id)),
                // Its outcome is unknown: it may have taken effect.
                Err(_) => {}
            }
        });
    }

    /// Heals everything, then the cluster must elect a leader, commit a
    /// write and bring every member up to it within bounded virtual time.
    async fn heal_and_converge(&mut self, workload: &Workload) {
        self.trace.record("heal everything");
        self.network().heal_all();
        self.network().set_faults(Faults::reliable());
        self.cluster.reap_stopped().await;
        self.restart_all().await;
        let deadline = Instant::now() + LEADER_WITHIN;
        let committed = loop {
            if Instant::now() > deadline {
                return self
                    .recorder
                    .report(format!("liveness: no write committed within {LEADER_WITHIN:?} of healing"));
            }
            if let Some(leader) = self.cluster.leader()
                && let Ok(index) = leader.raft.barrier(Duration::from_millis(500)).await
            {
                break (leader, index);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (leader, index) = committed;
        let (_, configuration) = leader.raft.get_configuration();
        let deadline = Instant::now() + CONVERGE_WITHIN;
        for server in &configuration.servers {
            let Some(node) = crate::cluster::index_of(&server.id) else { continue };
            loop {
                match self.cluster.handle(node) {
                    Some(handle) if handle.raft.applied_index() >= index => break,
                    _ if Instant::now() > deadline => {
                        return self.recorder.report(format!(
                            "liveness: member {node} did not apply index {index} within {CONVERGE_WITHIN:?}"
                        ));
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
        let _ = workload;
    }

    /// Log matching over every node's stored log.
    fn check_logs(&self) {
        let logs: Vec<(usize, Vec<raft_core::Log>)> =
            (0..self.cluster.len()).map(|node| (node, self.cluster.logs(node).entries())).collect();
        if let Err(violation) = check_log_matching(&logs) {
            self.recorder.report(violation);
        }
    }
}

/// Samples every running node's term and commit index (leadership is
/// taken from each node's own LeaderChanged observations, which carry the
/// term it leads), and checks log matching now and then.
async fn sample(cluster: Arc<Cluster>, recorder: Arc<Recorder>) {
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(SAMPLE_EVERY).await;
        for handle in cluster.handles() {
            let incarnation = cluster.incarnation(handle.node);
            recorder.sample(handle.node, incarnation, handle.raft.current_term(), handle.raft.commit_index());
        }
        ticks += 1;
        if ticks.is_multiple_of(50) {
            let logs: Vec<(usize, Vec<raft_core::Log>)> =
                (0..cluster.len()).map(|node| (node, cluster.logs(node).entries())).collect();
            if let Err(violation) = check_log_matching(&logs) {
                recorder.report(violation);
            }
        }
    }
}

fn describe(op: &linearizability::Operation) -> String {
    let output = if op.op == Op::Get { format!(" → {:?}", op.output) } else { String::new() };
    let ret = op.ret.map_or("?".into(), |r| r.to_string());
    let client = match op.client {
        usize::MAX => "final read".to_string(),
        client if client == usize::MAX - 1 => "user restore".to_string(),
        client => format!("c{client}"),
    };
    format!("{client} {:?}{output} [{}..{ret}]", op.op, op.call)
}
