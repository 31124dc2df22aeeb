//! raft-kit beside openraft: the same three-node, in-process cluster built
//! on each library, run back to back with the same closed-loop clients.
//!
//! ```text
//! cargo run --release -p benches --features openraft --bin compare -- [--clients 1,16,256] [--seconds 3] \
//!     [--rounds 3] [--apply-timeout-ms 0] | tee target/compare-bench.txt
//! ```
//!
//! Both sides are shaped the same way: three nodes in one process, an
//! in-memory log, a state machine that does nothing but count, and a network
//! that hands each request straight to the target node (no encoding). The
//! raft-kit side is the cluster benchmark's `inmem-mem` setup; the openraft
//! side is written here against openraft's public API (storage v2, pinned
//! exactly in the workspace `Cargo.toml`). Neither side's clients set a
//! timeout (openraft's `client_write` takes none; raft-kit's `apply` is given
//! a zero timeout, which means none, unless `--apply-timeout-ms` says
//! otherwise). For each client count the binary runs `--rounds` pairs, the
//! side that goes first alternating, because this machine's speed drifts
//! from one minute to the next; it prints every round, then the round with
//! the median throughput ratio as `RESULT` lines and the ratios (median,
//! lowest, highest) as a `RATIO` line, which `cargo run -p benches --bin
//! report` reads from `target/compare-bench.txt`.

use benches::cluster::{Outcome, closed_loop, run, start_cluster};
use clap::Parser;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StoredMembership, Vote,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

openraft::declare_raft_types!(
    /// The openraft side's types: 128-byte commands, no response.
    TypeConfig: D = Vec<u8>, R = ()
);

type NodeId = u64;
type OpenRaft = openraft::Raft<TypeConfig>;

/// The openraft log: entries in a map, the vote and the committed id beside them.
#[derive(Clone, Default)]
struct MemLog {
    inner: Arc<Mutex<LogInner>>,
}

#[derive(Default)]
struct LogInner {
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

impl MemLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().expect("log lock")
    }
}

impl RaftLogReader<TypeConfig> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.lock().entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLog {
    type LogReader = MemLog;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last = inner.entries.values().next_back().map(|e| e.log_id).or(inner.last_purged);
        Ok(LogState { last_purged_log_id: inner.last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        {
            let mut inner = self.lock();
            for entry in entries {
                inner.entries.insert(entry.log_id.index, entry);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.lock().entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.entries = inner.entries.split_off(&(log_id.index + 1));
        inner.last_purged = Some(log_id);
        Ok(())
    }
}

/// The openraft state machine: counts commands, remembers what it applied.
#[derive(Clone)]
struct CountingMachine {
    applied: Arc<AtomicU64>,
    state: Arc<Mutex<MachineState>>,
}

#[derive(Default)]
struct MachineState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

impl CountingMachine {
    fn snapshot(&self) -> Snapshot<TypeConfig> {
        let state = self.state.lock().expect("machine lock");
        let id = state.last_applied.map_or(0, |l| l.index);
        Snapshot {
            meta: SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id: format!("snapshot-{id}"),
            },
            snapshot: Box::new(Cursor::new(Vec::new())),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for CountingMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        Ok(self.snapshot())
    }
}

impl RaftStateMachine<TypeConfig> for CountingMachine {
    type SnapshotBuilder = CountingMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let state = self.state.lock().expect("machine lock");
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut state = self.state.lock().expect("machine lock");
        let mut responses = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Normal(_) => {
                    self.applied.fetch_add(1, Ordering::Relaxed);
                }
                EntryPayload::Membership(m) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), m)
                }
                EntryPayload::Blank => {}
            }
            responses.push(());
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut state = self.state.lock().expect("machine lock");
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(Some(self.snapshot()))
    }
}

/// The openraft network: every node by id, requests handed over directly.
#[derive(Clone, Default)]
struct Router {
    nodes: Arc<RwLock<HashMap<NodeId, OpenRaft>>>,
}

impl Router {
    fn get(&self, target: NodeId) -> Option<OpenRaft> {
        self.nodes.read().expect("router lock").get(&target).cloned()
    }
}

/// The error for a node the router does not know.
fn unreachable<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, BasicNode, E> {
    let missing = std::io::Error::new(std::io::ErrorKind::NotFound, format!("no node {target}"));
    RPCError::Unreachable(Unreachable::new(&missing))
}

/// One node's connection to `target` through the [`Router`].
struct Connection {
    router: Router,
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        Connection { router: self.clone(), target }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let node = self.router.get(self.target).ok_or_else(|| unreachable(self.target))?;
        node.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let node = self.router.get(self.target).ok_or_else(|| unreachable(self.target))?;
        node.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let node = self.router.get(self.target).ok_or_else(|| unreachable(self.target))?;
        node.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Starts three openraft nodes, initializes them as one cluster and returns
/// the nodes, their apply counters and the leader's id.
async fn start_openraft() -> Result<(Vec<OpenRaft>, Vec<Arc<AtomicU64>>, NodeId), Box<dyn std::error::Error>>
{
    let config = openraft::Config {
        heartbeat_interval: 500,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        max_payload_entries: 256,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        ..Default::default()
    };
    let config = Arc::new(config.validate()?);
    let router = Router::default();
    let mut nodes = Vec::new();
    let mut counters = Vec::new();
    for id in 0..3u64 {
        let applied = Arc::new(AtomicU64::new(0));
        let machine = CountingMachine { applied: applied.clone(), state: Arc::default() };
        let raft = OpenRaft::new(id, config.clone(), router.clone(), MemLog::default(), machine).await?;
        router.nodes.write().expect("router lock").insert(id, raft.clone());
        nodes.push(raft);
        counters.push(applied);
    }
    let members: BTreeMap<NodeId, BasicNode> = (0..3).map(|id| (id, BasicNode::default())).collect();
    nodes[0].initialize(members).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(leader) = nodes[0].metrics().borrow().current_leader {
            return Ok((nodes, counters, leader));
        }
        if Instant::now() > deadline {
            return Err("openraft elected no leader within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the openraft cluster for one client count and checks that every node
/// applied the same number of commands.
async fn bench_openraft(clients: usize, seconds: u64) -> Result<Outcome, Box<dyn std::error::Error>> {
    let (nodes, counters, leader) = start_openraft().await?;
    let leader_node = nodes[leader as usize].clone();
    let outcome = closed_loop(clients, seconds, move || {
        let leader = leader_node.clone();
        async move { leader.client_write(vec![7u8; 128]).await.is_ok() }
    })
    .await;
    let expected = counters[leader as usize].load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while counters.iter().any(|c| c.load(Ordering::Relaxed) < expected) {
        if Instant::now() > deadline {
            return Err("openraft followers did not apply every command within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let applied: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    if applied.iter().any(|a| *a != expected) {
        return Err(format!("openraft nodes applied different command counts: {applied:?}").into());
    }
    for node in nodes {
        node.shutdown().await?;
    }
    Ok(outcome)
}

/// Runs the raft-kit `inmem-mem` cluster for one client count and checks
/// that every node applied the same last index. `timeout` is each apply's
/// (zero, the default, for none: openraft's `client_write` has none).
async fn bench_raft_kit(
    clients: usize,
    seconds: u64,
    timeout: Duration,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let running = start_cluster("inmem-mem").await?;
    let leader = running.nodes.iter().find(|r| r.is_leader()).ok_or("no leader")?.clone();
    let outcome = run(&leader, clients, seconds, timeout).await;
    let last = leader.last_index();
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.nodes.iter().any(|r| r.applied_index() < last) {
        if Instant::now() > deadline {
            return Err("raft-kit followers did not apply the last index within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for raft in running.nodes {
        raft.shutdown().await?;
    }
    Ok(outcome)
}

fn report(side: &str, clients: usize, outcome: &Outcome) {
    let h = &outcome.histogram;
    let (p50, p99, p999) = (h.value_at_quantile(0.50), h.value_at_quantile(0.99), h.value_at_quantile(0.999));
    println!(
        "{side:<17} clients={clients:<4} applies/s={:>10.0}  p50={p50}us p99={p99}us p999={p999}us",
        outcome.rate()
    );
}

fn result_line(side: &str, clients: usize, outcome: &Outcome) {
    let h = &outcome.histogram;
    let (p50, p99, p999) = (h.value_at_quantile(0.50), h.value_at_quantile(0.99), h.value_at_quantile(0.999));
    println!(
        "RESULT setup={side} clients={clients} applies_per_sec={:.0} p50_us={p50} p99_us={p99} p999_us={p999}",
        outcome.rate()
    );
}

/// raft-kit beside openraft in one process, in rounds that alternate which
/// side goes first.
#[derive(clap::Parser)]
struct Args {
    /// Client counts to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    clients: Vec<usize>,
    /// Seconds per side and client count in each round.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Pairs of runs per client count.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// raft-kit's apply timeout in milliseconds (0: none, as openraft's `client_write`).
    #[arg(long = "apply-timeout-ms", default_value_t = 0)]
    apply_timeout_ms: u64,
}

/// One round: both sides, one after the other.
struct Round {
    openraft: Outcome,
    ours: Outcome,
}

impl Round {
    fn rate_ratio(&self) -> f64 {
        self.ours.rate() / self.openraft.rate()
    }

    fn p50_ratio(&self) -> f64 {
        let p50 = |o: &Outcome| o.histogram.value_at_quantile(0.50) as f64;
        p50(&self.ours) / p50(&self.openraft)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let timeout = Duration::from_millis(args.apply_timeout_ms);
    for &clients in &args.clients {
        let mut rounds = Vec::new();
        for round in 0..args.rounds {
            // Alternate which side goes first, so neither always runs on
            // the warmer (or the noisier) half of a round.
            let (openraft, ours) = if round % 2 == 0 {
                let openraft = bench_openraft(clients, args.seconds).await?;
                (openraft, bench_raft_kit(clients, args.seconds, timeout).await?)
            } else {
                let ours = bench_raft_kit(clients, args.seconds, timeout).await?;
                (bench_openraft(clients, args.seconds).await?, ours)
            };
            report("openraft-inmem", clients, &openraft);
            report("raft-kit-inmem", clients, &ours);
            let round = Round { openraft, ours };
            println!(
                "round {}: raft-kit/openraft clients={clients}: applies/s {:.2}x, p50 latency {:.2}x",
                rounds.len() + 1,
                round.rate_ratio(),
                round.p50_ratio()
            );
            rounds.push(round);
        }
        // Report the round with the median throughput ratio, and the range.
        rounds.sort_by(|a, b| a.rate_ratio().total_cmp(&b.rate_ratio()));
        let median = &rounds[rounds.len() / 2];
        let (min, max) = (rounds[0].rate_ratio(), rounds[rounds.len() - 1].rate_ratio());
        result_line("openraft-inmem", clients, &median.openraft);
        result_line("raft-kit-inmem", clients, &median.ours);
        let (rate, latency) = (median.rate_ratio(), median.p50_ratio());
        println!(
            "median of {} rounds, raft-kit/openraft clients={clients}: applies/s {rate:.2}x \
             (range {min:.2}x to {max:.2}x), p50 latency {latency:.2}x",
            rounds.len()
        );
        println!(
            "RATIO clients={clients} applies_per_sec={rate:.2} p50={latency:.2} min={min:.2} max={max:.2} rounds={}",
            rounds.len()
        );
    }
    Ok(())
}
