//! Helpers for the node tests: a small FSM, store and transport wrappers
//! that let a test stall or observe them, and a cluster on the in-memory network.

#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use raft_core::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use tokio::time::Instant;
use transport_inmem::{InmemNetwork, InmemTransport};

/// Sums the numbers it is given; answers each command with the new sum.
/// With `as_task`, it says it never blocks, so the core runs it as a task.
#[derive(Default)]
pub struct SumFsm {
    pub sum: Arc<AtomicU64>,
    pub as_task: bool,
}

impl Fsm for SumFsm {
    type Response = u64;

    fn apply(&mut self, log: &Log) -> u64 {
        let n: u64 = std::str::from_utf8(&log.data).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        self.sum.fetch_add(n, Ordering::SeqCst) + n
    }

    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
        Ok(Box::new(SumSnapshot(self.sum.load(Ordering::SeqCst))))
    }

    fn restore(&mut self, mut snapshot: SnapshotReader) -> Result<(), FsmError> {
        let mut bytes = [0u8; 8];
        snapshot.read_exact(&mut bytes)?;
        self.sum.store(u64::from_le_bytes(bytes), Ordering::SeqCst);
        Ok(())
    }

    fn never_blocks(&self) -> bool {
        self.as_task
    }
}

struct SumSnapshot(u64);

impl FsmSnapshot for SumSnapshot {
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError> {
        sink.write_all(&self.0.to_le_bytes())?;
        Ok(())
    }
}

/// A log store that counts `store_logs` calls, can be made to block them,
/// and can be slowed down.
#[derive(Default)]
pub struct GatedLogStore {
    pub inner: MemLogStore,
    pub calls: AtomicUsize,
    pub entries: AtomicUsize,
    closed: Mutex<bool>,
    opened: Condvar,
    pub delay: Mutex<Duration>,
}

impl GatedLogStore {
    /// Makes later writes block until `open`.
    pub fn close_gate(&self) {
        *self.closed.lock().expect("lock") = true;
    }

    /// Lets blocked and later writes through.
    pub fn open_gate(&self) {
        *self.closed.lock().expect("lock") = false;
        self.opened.notify_all();
    }

    fn wait(&self) {
        let mut closed = self.closed.lock().expect("lock");
        while *closed {
            closed = self.opened.wait(closed).expect("wait");
        }
        drop(closed);
        let delay = *self.delay.lock().expect("lock");
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }
}

impl LogStore for GatedLogStore {
    fn first_index(&self) -> Result<u64, StoreError> {
        self.inner.first_index()
    }
    fn last_index(&self) -> Result<u64, StoreError> {
        self.inner.last_index()
    }
    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        self.inner.get_log(index)
    }
    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        self.store_logs_with_commit(logs, 0)
    }
    fn store_logs_with_commit(&self, logs: &[Log], commit_index: u64) -> Result<(), StoreError> {
        self.wait();
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.entries.fetch_add(logs.len(), Ordering::SeqCst);
        self.inner.store_logs_with_commit(logs, commit_index)
    }
    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        self.inner.commit_index()
    }
    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        self.wait();
        self.inner.delete_range(min, max)
    }
}

/// Changes how a test transport sends AppendEntries; everything else goes
/// to the in-memory transport unchanged (see [`Hooked`]).
pub trait AppendHook: Send + Sync + 'static {
    fn append_entries<'a>(
        &'a self,
        inner: &'a InmemTransport,
        target: ServerAddress,
        request: AppendEntriesRequest,
    ) -> BoxFuture<'a, Result<AppendEntriesResponse, TransportError>>;
}

/// An in-memory transport whose AppendEntries go through a hook.
pub struct Hooked<H> {
    pub inner: InmemTransport,
    pub hook: H,
}

impl<H: AppendHook> Transport for Hooked<H> {
    fn local_addr(&self) -> ServerAddress {
        self.inner.local_addr()
    }
    fn consumer(&self) -> Result<RpcReceiver, TransportError> {
        self.inner.consumer()
    }
    fn append_entries(
        &self,
        target: ServerAddress,
        request: AppendEntriesRequest,
    ) -> BoxFuture<'_, Result<AppendEntriesResponse, TransportError>> {
        self.hook.append_entries(&self.inner, target, request)
    }
    fn request_vote(
        &self,
        target: ServerAddress,
        request: RequestVoteRequest,
    ) -> BoxFuture<'_, Result<RequestVoteResponse, TransportError>> {
        self.inner.request_vote(target, request)
    }
    fn pre_vote(
        &self,
        target: ServerAddress,
        request: PreVoteRequest,
    ) -> BoxFuture<'_, Result<PreVoteResponse, TransportError>> {
        self.inner.pre_vote(target, request)
    }
    fn install_snapshot(
        &self,
        target: ServerAddress,
        request: InstallSnapshotRequest,
        data: SnapshotStream,
    ) -> BoxFuture<'_, Result<InstallSnapshotResponse, TransportError>> {
        self.inner.install_snapshot(target, request, data)
    }
    fn timeout_now(
        &self,
        target: ServerAddress,
        request: TimeoutNowRequest,
    ) -> BoxFuture<'_, Result<TimeoutNowResponse, TransportError>> {
        self.inner.timeout_now(target, request)
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
}

/// Records how many AppendEntries with entries are in flight at once, and
/// can hold those back for a while.
pub struct WatchAppends {
    pub in_flight: Arc<AtomicUsize>,
    pub max_in_flight: Arc<AtomicUsize>,
    pub hold_appends: Arc<Mutex<Duration>>,
}

impl AppendHook for WatchAppends {
    fn append_entries<'a>(
        &'a self,
        inner: &'a InmemTransport,
        target: ServerAddress,
        request: AppendEntriesRequest,
    ) -> BoxFuture<'a, Result<AppendEntriesResponse, TransportError>> {
        Box::pin(async move {
            if request.entries.is_empty() {
                return inner.append_entries(target, request).await;
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let hold = *self.hold_appends.lock().expect("lock");
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            let result = inner.append_entries(target, request).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        })
    }
}

/// The config the node tests use.
pub fn config(id: &str) -> Config {
    let mut config = Config::fast(id);
    config.heartbeat_timeout = Duration::from_millis(100);
    config.election_timeout = Duration::from_millis(100);
    config.leader_lease_timeout = Duration::from_millis(100);
    config
}

pub fn addr(i: usize) -> ServerAddress {
    ServerAddress::new(format!("node-{i}"))
}

pub fn id(i: usize) -> ServerId {
    ServerId::new(format!("node-{i}"))
}

pub fn configuration(n: usize) -> Configuration {
    Configuration::new((0..n).map(|i| Server::voter(id(i), addr(i))).collect())
}

/// One node's parts that outlive a restart.
#[derive(Clone, Default)]
pub struct Parts {
    pub logs: Arc<GatedLogStore>,
    pub stable: Arc<MemStableStore>,
    pub snapshots: InmemSnapshotStore,
    pub sum: Arc<AtomicU64>,
}

/// A cluster of `SumFsm` nodes on an in-memory network.
pub struct TestCluster {
    pub network: InmemNetwork,
    pub parts: Vec<Parts>,
    pub nodes: Vec<Option<Raft<SumFsm>>>,
    pub config: fn(&str) -> Config,
}

impl TestCluster {
    pub async fn new(n: usize) -> Self {
        Self::with_config(n, config).await
    }

    pub async fn with_config(n: usize, config: fn(&str) -> Config) -> Self {
        let cluster = Self::apart(n, config).await;
        cluster.connect_all();
        cluster
    }

    /// `n` bootstrapped nodes that cannot hear one another yet: a test can
    /// subscribe to them before anything happens, then [`Self::connect_all`].
    pub async fn apart(n: usize, config: fn(&str) -> Config) -> Self {
        let seed = rand_seed();
        let mut cluster = Self {
            network: InmemNetwork::new(seed),
            parts: (0..n).map(|_| Parts::default()).collect(),
            nodes: (0..n).map(|_| None).collect(),
            config,
        };
        // Nobody hears anybody until all are bootstrapped (else a leader's
        // entries could reach a node before its own bootstrap call).
        for i in 0..n {
            cluster.network.disconnect(&addr(i));
        }
        for i in 0..n {
            cluster.start(i).await;
            cluster.raft(i).bootstrap_cluster(configuration(n)).await.expect("bootstrap");
        }
        cluster
    }

    /// Lets every node hear every other.
    pub fn connect_all(&self) {
        for i in 0..self.nodes.len() {
            self.network.connect(&addr(i));
        }
    }

    pub async fn start(&mut self, i: usize) {
        let parts = self.parts[i].clone();
        let fsm = SumFsm { sum: parts.sum.clone(), as_task: false };
        let transport = self.network.transport(addr(i));
        let raft = Raft::new(
            (self.config)(id(i).as_str()),
            fsm,
            parts.logs,
            parts.stable,
            parts.snapshots,
            transport,
        )
        .await
        .expect("start node");
        self.nodes[i] = Some(raft);
    }

    pub async fn crash(&mut self, i: usize) {
        if let Some(raft) = self.nodes[i].take() {
            raft.shutdown().await.expect("shutdown");
        }
    }

    pub fn raft(&self, i: usize) -> Raft<SumFsm> {
        self.nodes[i].clone().expect("node running")
    }

    /// Waits for a leader among the running, connected nodes.
    pub async fn leader(&self) -> usize {
        wait_for("a leader", Duration::from_secs(10), || {
            self.nodes.iter().enumerate().find_map(|(i, n)| {
                n.as_ref().filter(|r| r.is_leader() && self.network.is_connected(&addr(i))).map(|_| i)
            })
        })
        .await
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.crash(i).await;
        }
    }
}

fn rand_seed() -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    nanos as u64
}

/// Polls `check` until it yields a value, failing after `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn num(n: u64) -> Bytes {
    Bytes::from(n.to_string())
}

/// A hand-driven peer on the in-memory network: it sends a node RPCs a test
/// writes field by field, as a buggy or hostile peer could, and answers
/// nothing the node sends it.
pub struct Probe {
    pub transport: InmemTransport,
    pub id: ServerId,
    pub addr: ServerAddress,
}

impl Probe {
    pub fn new(network: &InmemNetwork, name: &str) -> Self {
        let transport = network.transport(name);
        // Nobody reads what the node sends: its calls fail at once.
        drop(transport.consumer());
        Self { transport, id: ServerId::new(name), addr: ServerAddress::new(name) }
    }

    pub fn header(&self) -> RpcHeader {
        RpcHeader::new(self.id.clone(), self.addr.clone())
    }

    /// A voter entry for the probe, to put in a configuration.
    pub fn server(&self) -> Server {
        Server::voter(self.id.clone(), self.addr.clone())
    }

    pub async fn append(
        &self,
        target: &ServerAddress,
        term: u64,
        prev: (u64, u64),
        entries: Vec<Log>,
        leader_commit: u64,
    ) -> AppendEntriesResponse {
        let request = AppendEntriesRequest {
            header: self.header(),
            term,
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            entries,
            leader_commit,
        };
        self.transport.append_entries(target.clone(), request).await.expect("append_entries")
    }

    pub async fn install(
        &self,
        target: &ServerAddress,
        term: u64,
        last: (u64, u64),
        configuration: Configuration,
        state: Vec<u8>,
    ) -> Result<InstallSnapshotResponse, TransportError> {
        let request = InstallSnapshotRequest {
            header: self.header(),
            snapshot_version: SNAPSHOT_VERSION,
            term,
            last_log_index: last.0,
            last_log_term: last.1,
            configuration,
            configuration_index: 1,
            size: state.len() as u64,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(Ok(Bytes::from(state))).await.expect("send");
        drop(tx);
        let data = raft_core::transport::chunk_stream(rx);
        self.transport.install_snapshot(target.clone(), request, data).await
    }

    pub async fn timeout_now(&self, target: &ServerAddress, term: u64) -> TimeoutNowResponse {
        let request = TimeoutNowRequest { header: self.header(), term };
        self.transport.timeout_now(target.clone(), request).await.expect("timeout_now")
    }
}

/// Node 0 alone with a [`Probe`] as the other voter: it never wins an
/// election (the probe answers nothing), so it stays a follower of whatever
/// the probe sends. Its log starts with the bootstrap entry at index 1, term 1.
pub async fn lone_follower<F: Fsm>(
    fsm: F,
    logs: impl LogStore,
    config: Config,
) -> (Raft<F>, Probe, InmemNetwork) {
    let (raft, mut probes, network) = lone_follower_with(fsm, logs, config, &["probe"]).await;
    (raft, probes.remove(0), network)
}

/// As [`lone_follower`], with one probe per name, all voters.
pub async fn lone_follower_with<F: Fsm>(
    fsm: F,
    logs: impl LogStore,
    config: Config,
    names: &[&str],
) -> (Raft<F>, Vec<Probe>, InmemNetwork) {
    lone_follower_on(fsm, logs, InmemSnapshotStore::new(), config, names).await
}

/// As [`lone_follower_with`], on the snapshot store given.
pub async fn lone_follower_on<F: Fsm>(
    fsm: F,
    logs: impl LogStore,
    snapshots: impl SnapshotStore,
    config: Config,
    names: &[&str],
) -> (Raft<F>, Vec<Probe>, InmemNetwork) {
    let network = InmemNetwork::new(rand_seed());
    let probes: Vec<Probe> = names.iter().map(|name| Probe::new(&network, name)).collect();
    let raft = Raft::new(config, fsm, logs, MemStableStore::new(), snapshots, network.transport(addr(0)))
        .await
        .expect("start");
    let mut servers = vec![Server::voter(id(0), addr(0))];
    servers.extend(probes.iter().map(Probe::server));
    raft.bootstrap_cluster(Configuration::new(servers)).await.expect("bootstrap");
    (raft, probes, network)
}

/// Commands `first..=last` in `term`, as a leader would send them.
pub fn commands(first: u64, last: u64, term: u64) -> Vec<Log> {
    (first..=last).map(|index| Log::command(index, term, num(index))).collect()
}

/// A `MemLogStore` whose writes fail while `failing` is set (and whose
/// next `failing_deletes` deletions fail), run on the node's task
/// (`never_blocks`) or on the storage thread.
#[derive(Default)]
pub struct FlakyLogStore {
    pub inner: MemLogStore,
    pub failing: std::sync::atomic::AtomicBool,
    pub failing_deletes: std::sync::atomic::AtomicU32,
    pub never_blocks: bool,
}

impl FlakyLogStore {
    pub fn new(never_blocks: bool) -> Self {
        Self { never_blocks, ..Self::default() }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::other("injected write failure")));
        }
        Ok(())
    }
}

impl LogStore for FlakyLogStore {
    fn first_index(&self) -> Result<u64, StoreError> {
        self.inner.first_index()
    }
    fn last_index(&self) -> Result<u64, StoreError> {
        self.inner.last_index()
    }
    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        self.inner.get_log(index)
    }
    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        self.store_logs_with_commit(logs, 0)
    }
    fn store_logs_with_commit(&self, logs: &[Log], commit_index: u64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.store_logs_with_commit(logs, commit_index)
    }
    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        self.inner.commit_index()
    }
    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        self.check()?;
        let deletes = self.failing_deletes.load(Ordering::SeqCst);
        if deletes > 0 {
            self.failing_deletes.store(deletes - 1, Ordering::SeqCst);
            return Err(StoreError::Io(std::io::Error::other("injected delete failure")));
        }
        self.inner.delete_range(min, max)
    }
    fn writes_never_block(&self) -> bool {
        self.never_blocks
    }
}

/// Holds back answers to bare heartbeats (empty AppendEntries at index 0),
/// and, once `idle_appends_too` is set, to every AppendEntries without
/// entries (an idle leader's commit-index updates too): every `every`-th one
/// to each peer by `delay` (all of them with `every == 1`).
pub struct LateHeartbeats {
    pub every: u64,
    pub delay: Duration,
    pub count: Mutex<std::collections::HashMap<ServerAddress, u64>>,
    pub idle_appends_too: Arc<std::sync::atomic::AtomicBool>,
}

impl AppendHook for LateHeartbeats {
    fn append_entries<'a>(
        &'a self,
        inner: &'a InmemTransport,
        target: ServerAddress,
        request: AppendEntriesRequest,
    ) -> BoxFuture<'a, Result<AppendEntriesResponse, TransportError>> {
        Box::pin(async move {
            let heartbeat = request.entries.is_empty()
                && (request.prev_log_index == 0 || self.idle_appends_too.load(Ordering::SeqCst));
            let nth = {
                let mut count = self.count.lock().expect("lock");
                let n = count.entry(target.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let response = inner.append_entries(target, request).await;
            if heartbeat && nth % self.every == 0 {
                tokio::time::sleep(self.delay).await;
            }
            response
        })
    }
}
