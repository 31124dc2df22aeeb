//! [`Raft`]: the handle through which an application drives its node.

mod membership;
mod status;

use crate::config::{Config, ConfigError, ReloadableConfig};
use crate::error::RaftError;
use crate::fsm::runner::{Applied, FsmHandle};
use crate::log_cache::LogCache;
use crate::observer::Observation;
use crate::protocol::core::{Core, Start};
use crate::raft::{Node, Recovered, Request};
use crate::state::{RaftState, Shared};
use crate::storage::Storage;
use crate::watch;
use crate::{
    Configuration, Fsm, LogKind, LogStore, ServerAddress, ServerId, Snapshot, SnapshotMeta, SnapshotReader,
    SnapshotStore, StableStore, StoreError, Transport,
};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

/// How many requests may queue for the node task.
const REQUEST_QUEUE: usize = 4096;
/// How many events from helpers may queue for the node task.
const EVENT_QUEUE: usize = 4096;
/// How many observations a slow subscriber may fall behind by.
const OBSERVER_QUEUE: usize = 1024;

/// The outcome of a command: the index it was committed at and the FSM's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyResponse<R> {
    /// The log index the command was committed at.
    pub index: u64,
    /// What [`Fsm::apply`] returned for it.
    pub response: R,
}

/// A handle to a running Raft node. Cheap to clone; every clone drives the
/// same node. When the last clone is dropped, the node stops as
/// [`Raft::shutdown`] stops it (its transport and stores closed in order),
/// in the background: call `shutdown` to wait for that.
///
/// # Timeouts
///
/// Calls that take a `timeout` give up with [`RaftError::Timeout`] once it
/// has passed, whatever stage the request has reached. A zero timeout means
/// no deadline at all, as in hashicorp/raft; it also spares the call a timer.
pub struct Raft<F: Fsm> {
    inner: Arc<Inner<F::Response>>,
}

impl<F: Fsm> Clone for Raft<F> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

struct Inner<R> {
    id: ServerId,
    addr: ServerAddress,
    requests: mpsc::Sender<Request<R>>,
    shared: Arc<Shared>,
    observers: broadcast::Sender<Observation>,
    /// The node's snapshot store, for the handles [`Raft::snapshot`] returns;
    /// weak, so that a shut-down node releases it (and its directory lock).
    snapshots: std::sync::Weak<dyn SnapshotStore>,
    applied: watch::Receiver<u64>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<F: Fsm> std::fmt::Debug for Raft<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raft").field("id", &self.inner.id).field("state", &self.state()).finish()
    }
}

impl<F: Fsm> Raft<F> {
    /// Starts a node, as hashicorp/raft's `NewRaft` does: recovers term, vote,
    /// log and configuration from the stores, re-applies entries the log store
    /// recorded as committed, and starts as a follower.
    ///
    /// Must be called inside a tokio runtime. A node with no state waits for
    /// [`bootstrap_cluster`](Self::bootstrap_cluster) or for a leader to
    /// contact it.
    ///
    /// # Example
    ///
    /// ```
    /// use raft_core::{Config, Configuration, Fsm, FsmError, FsmSnapshot, Log, Raft, Server, SnapshotReader};
    /// use std::time::Duration;
    ///
    /// /// A counter: each command adds one.
    /// struct Counter(u64);
    ///
    /// impl Fsm for Counter {
    ///     type Response = u64;
    ///     fn apply(&mut self, _log: &Log) -> u64 {
    ///         self.0 += 1;
    ///         self.0
    ///     }
    ///     fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
    ///         Err(FsmError::new("not needed in this example"))
    ///     }
    ///     fn restore(&mut self, _snapshot: SnapshotReader) -> Result<(), FsmError> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// let network = transport_inmem::InmemNetwork::new(1);
    /// let raft = Raft::new(
    ///     Config::fast("node-1"),
    ///     Counter(0),
    ///     store_mem::MemLogStore::new(),
    ///     store_mem::MemStableStore::new(),
    ///     store_mem::InmemSnapshotStore::new(),
    ///     network.transport("mem-1"),
    /// )
    /// .await?;
    /// raft.bootstrap_cluster(Configuration::new(vec![Server::voter("node-1", "mem-1")])).await?;
    /// while !raft.is_leader() {
    ///     tokio::time::sleep(Duration::from_millis(5)).await;
    /// }
    /// assert_eq!(raft.apply("+1", Duration::from_secs(1)).await?.response, 1);
    /// raft.shutdown().await?;
    /// # Ok(()) }
    /// ```
    pub async fn new(
        config: Config,
        fsm: F,
        log_store: impl LogStore,
        stable_store: impl StableStore,
        snapshot_store: impl SnapshotStore,
        transport: impl Transport,
    ) -> Result<Self, RaftError> {
        config.validate()?;
        if let Some(transport_id) = transport.local_id()
            && transport_id != config.local_id
        {
            return Err(
                ConfigError::TransportIdMismatch { node: config.local_id, transport: transport_id }.into()
            );
        }
        if config.log_writer == crate::LogWriter::Task && !log_store.writes_never_block() {
            return Err(ConfigError::TaskWriterWouldBlock.into());
        }
        let log_store: Arc<dyn LogStore> = Arc::new(log_store);
        let stable: Arc<dyn StableStore> = Arc::new(stable_store);
        let snapshots: Arc<dyn SnapshotStore> = Arc::new(snapshot_store);
        let transport: Arc<dyn Transport> = Arc::new(transport);
        let skip_restore = config.no_snapshot_restore_on_start;
        let (fsm, recovered) = {
            let (log_store, stable, snapshots) = (log_store.clone(), stable.clone(), snapshots.clone());
            let inline = log_store.writes_never_block()
                && stable.never_blocks()
                && snapshots.never_blocks()
                && fsm.never_blocks();
            crate::blocking::run(inline, move || {
                let mut fsm = fsm;
                let restored = crate::recovery::restore_newest_snapshot(&mut fsm, &*snapshots, skip_restore)?;
                crate::recovery::recover(&*log_store, &*stable, restored).map(|recovered| (fsm, recovered))
            })
            .await
            .map_err(|_| RaftError::Shutdown)??
        };
        Self::start(config, fsm, log_store, stable, snapshots, transport, recovered).await
    }

    /// Starts the node's helpers and task from what was recovered.
    async fn start(
        config: Config,
        fsm: F,
        log_store: Arc<dyn LogStore>,
        stable: Arc<dyn StableStore>,
        snapshots: Arc<dyn SnapshotStore>,
        transport: Arc<dyn Transport>,
        recovered: Recovered,
    ) -> Result<Self, RaftError> {
        let rpcs = transport.consumer()?;
        let shared = Arc::new(Shared::default());
        let configurations = &recovered.configurations;
        shared.set_configuration(configurations.latest_index, configurations.latest.clone());
        shared.last_snapshot_index.store(recovered.snapshot.index, Ordering::Release);
        // What was recovered is visible from the handle as soon as `new` returns.
        shared.term.store(recovered.term, Ordering::Release);
        shared.last_log_index.store(recovered.last_index, Ordering::Release);
        shared.last_log_term.store(recovered.last_term, Ordering::Release);
        shared.commit_index.store(recovered.commit_index, Ordering::Release);
        let (observers, _) = broadcast::channel(OBSERVER_QUEUE);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (applied_tx, applied) = watch::channel(0);
        let log = Arc::new(LogCache::new(log_store, config.log_cache_size));
        log.set_snapshot(recovered.snapshot.index, recovered.snapshot.term);
        let io_error = |e| RaftError::Store(StoreError::Io(e));
        // Everything the node, its helper tasks and its storage and FSM
        // threads log carries this span: which node said it.
        let span = tracing::info_span!("raft", node = %config.local_id);
        let (merge, writer) = (crate::storage::MERGE_BYTES, config.log_writer);
        let storage = span
            .in_scope(|| Storage::start(log.clone(), events_tx.clone(), merge, writer))
            .map_err(io_error)?;
        let metrics = crate::metrics::NodeMetrics::new(config.local_id.as_str());
        let settings = crate::fsm::runner::RunnerSettings {
            batch_apply: config.batch_apply,
            max_batch: config.max_append_entries,
            metrics: metrics.fsm(),
        };
        let point = recovered.snapshot.clone();
        let fsm = span
            .in_scope(|| FsmHandle::start(fsm, log.clone(), shared.clone(), applied_tx, point, settings))
            .map_err(io_error)?;
        if recovered.commit_index > recovered.snapshot.index {
            fsm.commit(recovered.commit_index, Vec::new()).await;
        }
        let (id, addr) = (config.local_id.clone(), transport.local_addr());
        let mut rng = crate::protocol::election::node_rng(config.random_seed);
        let core = Core::start(Start {
            id: id.clone(),
            term: recovered.term,
            voted_for: recovered.voted_for,
            last_index: recovered.last_index,
            last_term: recovered.last_term,
            snapshot_index: recovered.snapshot.index,
            snapshot_term: recovered.snapshot.term,
            commit_index: recovered.commit_index,
            configurations: recovered.configurations,
            log_ids: recovered.log_ids,
        });
        let node: Node<F> = Node {
            core,
            id: id.clone(),
            addr: addr.clone(),
            shared: shared.clone(),
            observers: observers.clone(),
            stable,
            log,
            storage,
            fsm,
            transport,
            rpcs,
            requests,
            events,
            events_tx,
            shutdown,
            snapshots: snapshots.clone(),
            snapshot_in_progress: false,
            snapshot_deadline: TokioInstant::now()
                + crate::protocol::election::randomized(&mut rng, config.snapshot_interval),
            snapshot_task: None,
            installing: None,
            election_deadline: TokioInstant::now(),
            rng,
            input_turn: 0,
            refill_commit: false,
            metrics,
            next_seq: 0,
            election_round: 0,
            transfer_requested: false,
            leader_state: None,
            config,
        };
        let task = tokio::spawn(tracing::Instrument::instrument(node.run(), span));
        let inner = Inner {
            id,
            addr,
            requests: requests_tx,
            shared,
            observers,
            snapshots: Arc::downgrade(&snapshots),
            applied,
            shutdown: shutdown_tx,
            task: Mutex::new(Some(task)),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub(crate) async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, RaftError>>) -> Request<F::Response>,
        timeout: Option<Duration>,
    ) -> Result<T, RaftError> {
        let (reply, answer) = oneshot::channel();
        let wait = async {
            self.inner.requests.send(make(reply)).await.map_err(|_| RaftError::Shutdown)?;
            answer.await.map_err(|_| RaftError::Shutdown)?
        };
        match timeout.filter(|timeout| !timeout.is_zero()) {
            Some(timeout) => tokio::time::timeout(timeout, wait).await.map_err(|_| RaftError::Timeout)?,
            None => wait.await,
        }
    }

    /// Seeds a brand-new cluster with `configuration`, as hashicorp/raft's
    /// `BootstrapCluster`: call it on one node (or identically on every
    /// initial node) before anything else. A node that already has state
    /// refuses with [`RaftError::CantBootstrap`], and a node that is not a
    /// voter of `configuration` with [`RaftError::NotVoter`] (it could not
    /// lead the cluster it seeds; as hashicorp/raft's live bootstrap).
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::{Configuration, RaftError, Server};
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// # let raft = &nodes[0];
    /// let fresh = &nodes[1];
    /// let alone = Configuration::new(vec![Server::voter(fresh.id().clone(), fresh.local_addr().clone())]);
    /// fresh.bootstrap_cluster(alone.clone()).await?;
    /// // A node with state refuses.
    /// assert!(matches!(fresh.bootstrap_cluster(alone).await, Err(RaftError::CantBootstrap)));
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn bootstrap_cluster(&self, configuration: Configuration) -> Result<(), RaftError> {
        self.request(|reply| Request::Bootstrap { configuration, reply }, None).await
    }

    /// Replicates a command and waits until it is committed and applied,
    /// returning the index and the FSM's response.
    ///
    /// Errors: [`RaftError::NotLeader`] (with the leader, if known),
    /// [`RaftError::Timeout`], [`RaftError::LeadershipLost`] and
    /// [`RaftError::Shutdown`]. After `Timeout` or `LeadershipLost` the
    /// command may still commit. A zero `timeout` waits without a deadline.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let applied = raft.apply("set x = 1", Duration::from_secs(1)).await?;
    /// // The example FSM answers each command with its index.
    /// assert_eq!(applied.response, applied.index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn apply(
        &self,
        command: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<ApplyResponse<F::Response>, RaftError> {
        self.apply_log(command.into(), Bytes::new(), timeout).await
    }

    /// As [`apply`](Self::apply), with `extensions` replicated beside the command.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let data = bytes::Bytes::from("set x = 1");
    /// let extensions = bytes::Bytes::from("trace-id 42");
    /// let applied = raft.apply_log(data, extensions, Duration::from_secs(1)).await?;
    /// assert!(applied.index > 0);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn apply_log(
        &self,
        data: Bytes,
        extensions: Bytes,
        timeout: Duration,
    ) -> Result<ApplyResponse<F::Response>, RaftError> {
        let make = |reply| Request::Apply { kind: LogKind::Command, data, extensions, reply };
        let Applied { index, response } = self.request(make, Some(timeout)).await?;
        let response = response.ok_or(RaftError::Shutdown)?;
        Ok(ApplyResponse { index, response })
    }

    /// Waits until every entry before this call is applied to the FSM on this
    /// leader; returns the barrier's index.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// raft.apply("a", Duration::from_secs(1)).await?;
    /// let index = raft.barrier(Duration::from_secs(1)).await?;
    /// assert!(raft.applied_index() >= index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn barrier(&self, timeout: Duration) -> Result<u64, RaftError> {
        let make = |reply| Request::Apply {
            kind: LogKind::Barrier,
            data: Bytes::new(),
            extensions: Bytes::new(),
            reply,
        };
        Ok(self.request(make, Some(timeout)).await?.index)
    }

    /// Confirms this node is still the leader by a round of heartbeats that a
    /// quorum answers.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// raft.verify_leader().await?;
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn verify_leader(&self) -> Result<(), RaftError> {
        self.request(|reply| Request::VerifyLeader { reply }, None).await.map(|_| ())
    }

    /// A linearizable read point: confirms leadership with one heartbeat round
    /// to a quorum, then waits until this node has applied at least the commit
    /// index seen when the call started. Reading the FSM after it returns
    /// observes every write committed before the call. Returns that index.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let written = raft.apply("set x = 1", Duration::from_secs(1)).await?;
    /// let index = raft.read_index(Duration::from_secs(1)).await?;
    /// // Reading the FSM now observes the write.
    /// assert!(index >= written.index && raft.applied_index() >= index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn read_index(&self, timeout: Duration) -> Result<u64, RaftError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let index = self.request(|reply| Request::VerifyLeader { reply }, Some(timeout)).await?;
        let mut applied = self.inner.applied.clone();
        let applied = applied.wait_for(|applied| *applied >= index);
        let reached = if timeout.is_zero() {
            Ok(applied.await.map(|_| ()))
        } else {
            tokio::time::timeout_at(deadline, applied).await.map(|reached| reached.map(|_| ()))
        };
        match reached {
            Ok(Ok(_)) => Ok(index),
            Ok(Err(_)) => Err(RaftError::Shutdown),
            Err(_) => Err(RaftError::Timeout),
        }
    }

    /// Runs `read` at a linearizable read point, once
    /// [`read_index`](Self::read_index) has returned: whatever `read` looks
    /// at in the FSM's state (shared with the FSM through an `Arc`, say)
    /// reflects every write committed before this call. Returns what `read`
    /// returns. Errors as for `read_index` (`NotLeader` on a follower), and
    /// then `read` does not run.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let written = raft.apply("set x = 1", Duration::from_secs(1)).await?;
    /// // Here the read is of the applied index; an application reads its state.
    /// let applied = raft.consistent_read(Duration::from_secs(1), || raft.applied_index()).await?;
    /// assert!(applied >= written.index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn consistent_read<T>(
        &self,
        timeout: Duration,
        read: impl FnOnce() -> T,
    ) -> Result<T, RaftError> {
        self.read_index(timeout).await?;
        Ok(read())
    }

    /// Takes a snapshot now (the node also takes them on its own once
    /// `snapshot_threshold` entries were applied since the last one), then
    /// compacts the log keeping `trailing_logs` entries. Returns the new
    /// snapshot: its [`meta`](Snapshot::meta), and [`open`](Snapshot::open)
    /// to read its state, e.g. to copy a backup out.
    /// [`RaftError::NothingNewToSnapshot`] if nothing was
    /// applied since the last one, [`RaftError::SnapshotInProgress`] if one
    /// is being taken.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::RaftError;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// raft.apply("a", Duration::from_secs(1)).await?;
    /// let snapshot = raft.snapshot().await?;
    /// assert_eq!(snapshot.meta().index, raft.applied_index());
    /// // A backup: the FSM's state as it wrote it.
    /// let mut backup = Vec::new();
    /// std::io::Read::read_to_end(&mut snapshot.open()?, &mut backup).map_err(raft_core::SnapshotError::Io)?;
    /// assert_eq!(backup.len() as u64, snapshot.meta().size);
    /// assert!(matches!(raft.snapshot().await, Err(RaftError::NothingNewToSnapshot)));
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn snapshot(&self) -> Result<Snapshot, RaftError> {
        let meta = self.request(|reply| Request::Snapshot { reply }, None).await?;
        Ok(Snapshot::new(meta, self.inner.snapshots.clone()))
    }

    /// Replaces the whole cluster's state with a snapshot from elsewhere (a
    /// backup), as hashicorp/raft's `Restore`, on the leader. The backup
    /// (`meta.size` bytes read from `snapshot`, which must be the FSM's own
    /// snapshot format) is cut into [`LogKind::Restore`] entries of up to
    /// 1 MiB each, appended together, and replicated and committed like any
    /// write; when the last one applies, every node's FSM is restored from
    /// the backup ([`Fsm::restore`]) at that same index. Entries before it
    /// apply first, entries after it apply to the restored state. Returns
    /// the index of the last piece, once this leader has applied it.
    ///
    /// Because the restore commits through the log, a failure takes effect
    /// nowhere or everywhere: if this node loses leadership before a quorum
    /// holds every piece, the answer is [`RaftError::LeadershipLost`] (or
    /// [`RaftError::Timeout`]) and the restore may or may not commit later,
    /// exactly as a write; pieces a later leader does not have are dropped
    /// on every node. A later snapshot holds the restored state, so the log
    /// space the pieces take is given back by the next compaction.
    ///
    /// Only `meta.size` and `meta.version` are used: the restored state
    /// stands at this log's index, not at the backup's, so an FSM that keeps
    /// an applied index should take it from the entries it applies. The
    /// backup is held in memory while it is appended.
    ///
    /// Errors: [`RaftError::NotLeader`] on a follower (nothing appended), a
    /// [`SnapshotError`](crate::SnapshotError) when the reader fails or holds
    /// other than `meta.size` bytes, or when `meta.version` is not
    /// [`SNAPSHOT_VERSION`](crate::SNAPSHOT_VERSION); [`RaftError::Fsm`] when
    /// the FSM refuses the backup as it applies (on every node alike, as the
    /// bytes are the same; the FSM's state is then whatever its `restore`
    /// left).
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::{SnapshotMeta, SNAPSHOT_VERSION};
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// // An empty state, as a backup of the example FSM.
    /// let meta = SnapshotMeta {
    ///     id: "backup".into(),
    ///     index: 0,
    ///     term: 0,
    ///     configuration: Default::default(),
    ///     configuration_index: 0,
    ///     size: 0,
    ///     version: SNAPSHOT_VERSION,
    /// };
    /// let index = raft.restore(&meta, Box::new(std::io::empty()), Duration::from_secs(5)).await?;
    /// assert!(raft.applied_index() >= index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn restore(
        &self,
        meta: &SnapshotMeta,
        snapshot: SnapshotReader,
        timeout: Duration,
    ) -> Result<u64, RaftError> {
        if meta.version != crate::SNAPSHOT_VERSION {
            return Err(RaftError::Snapshot(crate::SnapshotError::UnsupportedVersion {
                id: meta.id.clone(),
                version: meta.version,
            }));
        }
        let (size, id) = (meta.size, meta.id.clone());
        // The reader may block; a current-thread runtime (a simulation) has
        // no other thread to move it to.
        let backup = crate::blocking::in_place(|| crate::fsm::restore::read_backup(snapshot, size, &id))?;
        let pieces = crate::fsm::restore::pieces(&backup);
        drop(backup);
        let applied = self.request(|reply| Request::Restore { pieces, reply }, Some(timeout)).await?;
        Ok(applied.index)
    }

    /// Changes the reloadable settings of a running node. Settings that
    /// would make the node's config invalid are refused with
    /// [`RaftError::Config`] and change nothing.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::ReloadableConfig;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let mut reload = ReloadableConfig::from_config(&raft_conformance::cluster::test_config(raft.id().clone()));
    /// reload.trailing_logs = 100;
    /// raft.reload_config(reload).await?;
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn reload_config(&self, config: ReloadableConfig) -> Result<(), RaftError> {
        self.request(|reply| Request::Reload { config, reply }, None).await
    }

    /// Stops the node: every task and thread it started ends, pending calls
    /// fail with [`RaftError::Shutdown`] or [`RaftError::LeadershipLost`], and
    /// the transport is shut down. Calling it again does nothing.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::{RaftError, RaftState};
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// raft.shutdown().await?;
    /// assert_eq!(raft.state(), RaftState::Shutdown);
    /// assert!(matches!(raft.apply("late", Duration::from_secs(1)).await, Err(RaftError::Shutdown)));
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        self.inner.shutdown.send_replace(true);
        let task = self.inner.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        Ok(())
    }

    /// Stops the node at once, as a crash would: its task and the helpers it
    /// started are dropped wherever they stand, without the orderly steps of
    /// [`shutdown`](Self::shutdown). Pending calls fail with
    /// [`RaftError::Shutdown`]; the transport is not told (a peer learns of it
    /// as of a crashed process), and nothing more is written: what the stores
    /// hold is what a restart finds. For tests and simulations of crashes.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::RaftState;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// raft.kill().await;
    /// assert_eq!(raft.state(), RaftState::Shutdown);
    /// # Ok(()) }
    /// ```
    pub async fn kill(&self) {
        let task = self.inner.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.inner.shared.set_state(RaftState::Shutdown);
    }
}
