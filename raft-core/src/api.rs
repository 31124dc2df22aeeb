//! [`Raft`]: the handle through which an application drives its node.

use crate::config::{Config, ReloadableConfig};
use crate::error::RaftError;
use crate::fsm::runner::{Applied, AppliedPoint, FsmHandle};
use crate::log_cache::LogCache;
use crate::observer::Observation;
use crate::raft::{
    Configurations, KEY_CURRENT_TERM, KEY_LAST_VOTE_CAND, KEY_LAST_VOTE_TERM, Node, Recovered, Request,
};
use crate::state::{RaftState, Shared, Stats};
use crate::storage::Storage;
use crate::{
    Configuration, Fsm, LogKind, LogStore, ServerAddress, ServerId, SnapshotMeta, SnapshotReader,
    SnapshotStore, StableStore, StoreError, Transport,
};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How many requests may queue for the node task.
const REQUEST_QUEUE: usize = 4096;
/// How many events from helpers may queue for the node task.
const EVENT_QUEUE: usize = 4096;
/// How many observations a slow subscriber may fall behind by.
const OBSERVER_QUEUE: usize = 1024;
/// Payload bytes read per step when scanning the log on start.
const SCAN_BYTES_MAX: u64 = 4 << 20;

/// The outcome of a command: the index it was committed at and the FSM's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyResponse<R> {
    /// The log index the command was committed at.
    pub index: u64,
    /// What [`Fsm::apply`] returned for it.
    pub response: R,
}

/// A handle to a running Raft node. Cheap to clone; every clone drives the
/// same node.
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
    pub async fn new(
        config: Config,
        fsm: F,
        log_store: impl LogStore,
        stable_store: impl StableStore,
        snapshot_store: impl SnapshotStore,
        transport: impl Transport,
    ) -> Result<Self, RaftError> {
        config.validate()?;
        let log_store: Arc<dyn LogStore> = Arc::new(log_store);
        let stable: Arc<dyn StableStore> = Arc::new(stable_store);
        let snapshots: Arc<dyn SnapshotStore> = Arc::new(snapshot_store);
        let transport: Arc<dyn Transport> = Arc::new(transport);
        let skip_restore = config.no_snapshot_restore_on_start;
        let (fsm, recovered) = {
            let (log_store, stable, snapshots) = (log_store.clone(), stable.clone(), snapshots.clone());
            tokio::task::spawn_blocking(move || {
                let mut fsm = fsm;
                let snapshot = restore_newest_snapshot(&mut fsm, &*snapshots, skip_restore);
                recover(&*log_store, &*stable, snapshot.as_ref()).map(|recovered| (fsm, recovered))
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
        let (observers, _) = broadcast::channel(OBSERVER_QUEUE);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (requests_tx, requests) = mpsc::channel(REQUEST_QUEUE);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (applied_tx, applied) = watch::channel(0);
        let log = Arc::new(LogCache::new(log_store, config.log_cache_size));
        log.set_snapshot(recovered.snapshot.index, recovered.snapshot.term);
        let io_error = |e| RaftError::Store(StoreError::Io(e));
        let storage =
            Storage::start(log.clone(), events_tx.clone(), config.max_append_entries).map_err(io_error)?;
        let (batch_apply, max_batch) = (config.batch_apply, config.max_append_entries);
        let point = recovered.snapshot.clone();
        let fsm =
            FsmHandle::start(fsm, log.clone(), shared.clone(), applied_tx, point, batch_apply, max_batch)
                .map_err(io_error)?;
        if recovered.commit_index > recovered.snapshot.index {
            fsm.commit(recovered.commit_index, Vec::new()).await;
        }
        let (id, addr) = (config.local_id.clone(), transport.local_addr());
        let node: Node<F> = Node {
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
            role: RaftState::Follower,
            current_term: recovered.term,
            voted_for: recovered.voted_for,
            last_index: recovered.last_index,
            last_term: recovered.last_term,
            snapshot_index: recovered.snapshot.index,
            snapshot_term: recovered.snapshot.term,
            snapshots,
            snapshot_in_progress: false,
            snapshot_deadline: Instant::now() + crate::election::randomized(config.snapshot_interval),
            snapshot_task: None,
            commit_index: recovered.commit_index,
            configurations: recovered.configurations,
            leader: None,
            last_leader_contact: None,
            election_deadline: Instant::now(),
            next_seq: 0,
            election_round: 0,
            transfer_requested: false,
            leader_state: None,
            config,
        };
        let task = tokio::spawn(node.run());
        let inner = Inner {
            id,
            addr,
            requests: requests_tx,
            shared,
            observers,
            applied,
            shutdown: shutdown_tx,
            task: Mutex::new(Some(task)),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, RaftError>>) -> Request<F::Response>,
        timeout: Option<Duration>,
    ) -> Result<T, RaftError> {
        let (reply, answer) = oneshot::channel();
        let wait = async {
            self.inner.requests.send(make(reply)).await.map_err(|_| RaftError::Shutdown)?;
            answer.await.map_err(|_| RaftError::Shutdown)?
        };
        match timeout {
            Some(timeout) => tokio::time::timeout(timeout, wait).await.map_err(|_| RaftError::Timeout)?,
            None => wait.await,
        }
    }

    /// Seeds a brand-new cluster with `configuration`, as hashicorp/raft's
    /// `BootstrapCluster`: call it on one node (or identically on every
    /// initial node) before anything else. A node that already has state
    /// refuses with [`RaftError::CantBootstrap`].
    pub async fn bootstrap_cluster(&self, configuration: Configuration) -> Result<(), RaftError> {
        self.request(|reply| Request::Bootstrap { configuration, reply }, None).await
    }

    /// Replicates a command and waits until it is committed and applied,
    /// returning the index and the FSM's response.
    ///
    /// Errors: [`RaftError::NotLeader`] (with the leader, if known),
    /// [`RaftError::Timeout`], [`RaftError::LeadershipLost`] and
    /// [`RaftError::Shutdown`]. After `Timeout` or `LeadershipLost` the
    /// command may still commit.
    pub async fn apply(
        &self,
        command: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<ApplyResponse<F::Response>, RaftError> {
        self.apply_log(command.into(), Bytes::new(), timeout).await
    }

    /// As [`apply`](Self::apply), with `extensions` replicated beside the command.
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
    pub async fn verify_leader(&self) -> Result<(), RaftError> {
        self.request(|reply| Request::VerifyLeader { reply }, None).await.map(|_| ())
    }

    /// A linearizable read point: confirms leadership with one heartbeat round
    /// to a quorum, then waits until this node has applied at least the commit
    /// index seen when the call started. Reading the FSM after it returns
    /// observes every write committed before the call. Returns that index.
    pub async fn read_index(&self, timeout: Duration) -> Result<u64, RaftError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let index = self.request(|reply| Request::VerifyLeader { reply }, Some(timeout)).await?;
        let mut applied = self.inner.applied.clone();
        let reached = tokio::time::timeout_at(deadline, applied.wait_for(|applied| *applied >= index)).await;
        match reached {
            Ok(Ok(_)) => Ok(index),
            Ok(Err(_)) => Err(RaftError::Shutdown),
            Err(_) => Err(RaftError::Timeout),
        }
    }

    /// Takes a snapshot now (the node also takes them on its own once
    /// `snapshot_threshold` entries were applied since the last one), then
    /// compacts the log keeping `trailing_logs` entries. Returns the new
    /// snapshot's meta; [`RaftError::NothingNewToSnapshot`] if nothing was
    /// applied since the last one, [`RaftError::SnapshotInProgress`] if one
    /// is being taken.
    pub async fn snapshot(&self) -> Result<SnapshotMeta, RaftError> {
        self.request(|reply| Request::Snapshot { reply }, None).await
    }

    /// Replaces the whole cluster's state with a snapshot from elsewhere (a
    /// backup), as hashicorp/raft's `Restore`, on the leader: the state read
    /// from `snapshot` (`meta.size` bytes) is stored as a new snapshot,
    /// restored into the FSM, and the log restarts after it; followers catch
    /// up by installing it. Only `meta.size` and `meta.version` are used: the
    /// new snapshot gets this cluster's next index, term and configuration.
    /// Returns the index the snapshot stands at.
    ///
    /// This is an operator's tool for disaster recovery. Commands in flight
    /// on the leader fail with [`RaftError::LeadershipLost`] and are lost.
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
        let size = meta.size;
        self.request(|reply| Request::Restore { size, reader: snapshot, reply }, Some(timeout)).await
    }

    /// This node's role.
    pub fn state(&self) -> RaftState {
        self.inner.shared.state()
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.state() == RaftState::Leader
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<(ServerId, ServerAddress)> {
        self.inner.shared.leader()
    }

    /// This node's id.
    pub fn id(&self) -> &ServerId {
        &self.inner.id
    }

    /// This node's address.
    pub fn local_addr(&self) -> &ServerAddress {
        &self.inner.addr
    }

    /// A snapshot of this node's state and indexes.
    pub fn stats(&self) -> Stats {
        self.inner.shared.stats()
    }

    /// When this node last heard from a leader (a follower), or `None` if never.
    pub fn last_contact(&self) -> Option<Instant> {
        self.inner.shared.last_contact()
    }

    /// The current term.
    pub fn current_term(&self) -> u64 {
        self.inner.shared.term.load(Ordering::Acquire)
    }

    /// The highest index applied to the FSM.
    pub fn applied_index(&self) -> u64 {
        self.inner.shared.applied_index.load(Ordering::Acquire)
    }

    /// The highest index known committed.
    pub fn commit_index(&self) -> u64 {
        self.inner.shared.commit_index.load(Ordering::Acquire)
    }

    /// The last index in the log.
    pub fn last_index(&self) -> u64 {
        self.inner.shared.last_log_index.load(Ordering::Acquire)
    }

    /// The latest configuration (in effect even before it commits) and the
    /// index of the entry that carries it.
    pub fn get_configuration(&self) -> (u64, Configuration) {
        self.inner.shared.configuration()
    }

    /// Subscribes to this node's [`Observation`]s.
    pub fn subscribe(&self) -> broadcast::Receiver<Observation> {
        self.inner.observers.subscribe()
    }

    /// Changes the reloadable settings of a running node. Settings that
    /// would make the node's config invalid are refused with
    /// [`RaftError::Config`] and change nothing.
    pub async fn reload_config(&self, config: ReloadableConfig) -> Result<(), RaftError> {
        self.request(|reply| Request::Reload { config, reply }, None).await
    }

    /// Stops the node: every task and thread it started ends, pending calls
    /// fail with [`RaftError::Shutdown`] or [`RaftError::LeadershipLost`], and
    /// the transport is shut down. Calling it again does nothing.
    pub async fn shutdown(&self) -> Result<(), RaftError> {
        let _ = self.inner.shutdown.send(true);
        let task = self.inner.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        Ok(())
    }
}

/// Restores the FSM from the newest snapshot that opens and restores
/// cleanly, falling back to older ones; returns its meta. With `skip_restore`
/// the FSM is left alone (it keeps its own state) and the newest meta is
/// returned as the point the FSM stands at.
fn restore_newest_snapshot<F: Fsm>(
    fsm: &mut F,
    store: &dyn SnapshotStore,
    skip_restore: bool,
) -> Option<SnapshotMeta> {
    let metas = match store.list() {
        Ok(metas) => metas,
        Err(error) => {
            tracing::error!(%error, "listing snapshots failed; starting without one");
            return None;
        }
    };
    if skip_restore {
        return metas.into_iter().next();
    }
    for meta in metas {
        let restored = store
            .open(&meta.id)
            .map_err(RaftError::from)
            .and_then(|(_, reader)| fsm.restore(reader).map_err(RaftError::from));
        match restored {
            Ok(()) => {
                tracing::info!(id = %meta.id, index = meta.index, "restored the FSM from a snapshot");
                return Some(meta);
            }
            Err(error) => tracing::warn!(id = %meta.id, %error, "snapshot unusable; trying an older one"),
        }
    }
    None
}

/// Reads term, vote, log bounds, commit index and configurations back,
/// starting from `snapshot` when there is one. A log that does not continue
/// the snapshot (it ends before it, or disagrees at its index) is cleared.
fn recover(
    log: &dyn LogStore,
    stable: &dyn StableStore,
    snapshot: Option<&SnapshotMeta>,
) -> Result<Recovered, StoreError> {
    let term = stable.get_u64(KEY_CURRENT_TERM)?.unwrap_or(0);
    let vote_term = stable.get_u64(KEY_LAST_VOTE_TERM)?.unwrap_or(0);
    let voted_for = match (vote_term == term && term > 0, stable.get(KEY_LAST_VOTE_CAND)?) {
        (true, Some(candidate)) => Some(ServerId(String::from_utf8_lossy(&candidate).into_owned())),
        _ => None,
    };
    let mut point = AppliedPoint::default();
    let mut configurations = Configurations::default();
    if let Some(meta) = snapshot {
        point = AppliedPoint {
            index: meta.index,
            term: meta.term,
            configuration: meta.configuration.clone(),
            configuration_index: meta.configuration_index,
        };
        configurations = Configurations {
            latest: meta.configuration.clone(),
            latest_index: meta.configuration_index,
            committed: meta.configuration.clone(),
            committed_index: meta.configuration_index,
        };
        let continues = log.last_index()? >= meta.index
            && log.get_log(meta.index)?.is_none_or(|entry| entry.term == meta.term)
            && log.first_index()? <= meta.index + 1;
        if !continues {
            log.delete_range(0, u64::MAX)?;
        }
    }
    let first_index = log.first_index()?;
    let (last_index, last_term) = match log.last_index()? {
        0 => (point.index, point.term),
        index => {
            let entry = log.get_log(index)?.ok_or_else(|| StoreError::Corrupt {
                location: format!("log index {index}"),
                reason: "last_index names an entry the store does not return".into(),
            })?;
            (index, entry.term)
        }
    };
    let commit_index = log.commit_index()?.unwrap_or(0).min(last_index).max(point.index);
    let mut next = first_index.max(point.configuration_index + 1).max(1);
    while first_index > 0 && next <= last_index {
        let batch = log.get_logs(next, last_index, SCAN_BYTES_MAX)?;
        let Some(tail) = batch.last() else { break };
        next = tail.index + 1;
        for entry in batch.iter().filter(|l| l.kind == LogKind::Configuration) {
            let configuration = crate::codec::decode_configuration(entry.data.clone()).map_err(|e| {
                StoreError::Corrupt { location: format!("log index {}", entry.index), reason: e.to_string() }
            })?;
            if entry.index <= commit_index {
                configurations.committed = configuration.clone();
                configurations.committed_index = entry.index;
            }
            configurations.latest = configuration;
            configurations.latest_index = entry.index;
        }
    }
    Ok(Recovered { term, voted_for, last_index, last_term, commit_index, configurations, snapshot: point })
}
