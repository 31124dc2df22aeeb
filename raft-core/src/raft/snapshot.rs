//! Snapshots in the node: taking them (on a threshold, or when asked),
//! compacting the log after them, installing one sent by the leader, and
//! restoring one the user provides.

use super::{Event, Node};
use crate::error::RaftError;
use crate::fsm::runner::{Capture, FsmClient};
use crate::observer::Observation;
use crate::protocol::election::randomized;
use crate::protocol::snapshot::{Compaction, Offer, compaction, judge_offer};
use crate::state::RaftState;
use crate::storage::StorageOp;
use crate::{
    Fsm, InstallSnapshotRequest, InstallSnapshotResponse, NewSnapshot, Responder, RpcRejection,
    SNAPSHOT_VERSION, SnapshotMeta, SnapshotReader, SnapshotStore, SnapshotStream,
};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How many bytes of a snapshot move in one step.
pub(crate) const SNAPSHOT_CHUNK: usize = 256 << 10;

/// Where the outcome of a user-requested snapshot goes.
pub(crate) type SnapshotReply = oneshot::Sender<Result<SnapshotMeta, RaftError>>;

impl<F: Fsm> Node<F> {
    pub(crate) fn reset_snapshot_timer(&mut self) {
        self.snapshot_deadline = Instant::now() + randomized(&mut self.rng, self.config.snapshot_interval);
    }

    /// Takes a snapshot if enough has been applied since the last one.
    pub(super) fn snapshot_timer_fired(&mut self) {
        self.reset_snapshot_timer();
        let applied = self.shared.applied_index.load(Ordering::Acquire);
        if !self.snapshot_in_progress
            && applied.saturating_sub(self.core.snapshot_index) >= self.config.snapshot_threshold
        {
            self.start_snapshot(None);
        }
    }

    /// Starts a snapshot: the FSM is captured at once, and persisted on a
    /// blocking thread while it goes on applying.
    pub(super) fn start_snapshot(&mut self, reply: Option<SnapshotReply>) {
        if self.snapshot_in_progress {
            if let Some(reply) = reply {
                let _ = reply.send(Err(RaftError::SnapshotInProgress));
            }
            return;
        }
        self.snapshot_in_progress = true;
        let (fsm, store, events) = (self.fsm.client(), self.snapshots.clone(), self.events_tx.clone());
        let last_snapshot = self.core.snapshot_index;
        let metrics = self.metrics.clone();
        let task = crate::task::Owned::spawn(async move {
            let result = take_snapshot(fsm, store, last_snapshot, &metrics).await;
            let _ = events.send(Event::SnapshotDone { result, reply }).await;
        });
        self.snapshot_task = Some(task);
    }

    /// Records a finished snapshot and compacts the log behind it.
    pub(super) async fn snapshot_done(
        &mut self,
        result: Result<SnapshotMeta, RaftError>,
        reply: Option<SnapshotReply>,
    ) {
        self.snapshot_in_progress = false;
        self.snapshot_task = None;
        match &result {
            Ok(meta) if meta.index > self.core.snapshot_index => {
                tracing::info!(index = meta.index, "snapshot taken");
                let trailing = self.config.trailing_logs;
                match compaction(self.core.follower_log(), meta.index, meta.term, trailing) {
                    Compaction::Through(through) => {
                        self.set_snapshot_point(meta.index, meta.term);
                        self.compact_through(through).await;
                    }
                    Compaction::Clear => {
                        tracing::warn!(
                            index = meta.index,
                            last = self.core.last_index,
                            "the log does not hold the entry the new snapshot ends at (a write failed); \
                             it starts afresh after the snapshot"
                        );
                        self.clear_log_to(meta.index, meta.term).await;
                        self.set_snapshot_point(meta.index, meta.term);
                        self.publish_log();
                    }
                }
            }
            Ok(_) => {}
            Err(RaftError::NothingNewToSnapshot) => {}
            Err(error) => {
                tracing::error!(%error, "taking a snapshot failed");
                let _ = self.observers.send(Observation::SnapshotFailed { reason: error.to_string() });
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    fn set_snapshot_point(&mut self, index: u64, term: u64) {
        self.core.snapshot_index = index;
        self.core.snapshot_term = term;
        self.log.set_snapshot(index, term);
        self.core.log_ids.set_snapshot(index, term);
        self.shared.last_snapshot_index.store(index, Ordering::Release);
    }

    /// Removes log entries up to and including `through`.
    async fn compact_through(&mut self, through: u64) {
        if through == 0 {
            return;
        }
        self.log.discard_through(through);
        self.core.log_ids.compact_through(through);
        let seq = self.seq();
        if self.storage.submit(StorageOp::TruncateThrough { seq, index: through }).await.is_err() {
            tracing::error!("the storage worker has stopped; the log is not compacted");
        }
    }

    /// Empties the log, which now starts after a snapshot through
    /// `(index, term)`.
    async fn clear_log_to(&mut self, index: u64, term: u64) {
        self.log.clear();
        self.core.log_ids.reset((index, term));
        let seq = self.seq();
        if self.storage.submit(StorageOp::TruncateFrom { seq, index: 0, done: None }).await.is_err() {
            tracing::error!("the storage worker has stopped; the log is not cleared");
        }
        (self.core.last_index, self.core.last_term) = (index, term);
    }

    /// Makes the node's log start after a snapshot it has installed:
    /// entries after the snapshot are kept if the log agrees with
    /// it at its index, otherwise the whole log goes. Only called for a
    /// snapshot past the commit index, so every entry the log loses is
    /// either covered by the snapshot or was never committed.
    async fn adopt_snapshot(&mut self, meta: &SnapshotMeta) {
        debug_assert!(
            meta.index > self.core.commit_index.min(self.core.last_index),
            "a snapshot the log holds, committed, is not adopted"
        );
        let agrees = meta.index <= self.core.last_index && self.term_at(meta.index) == Some(meta.term);
        if agrees {
            self.compact_through(meta.index).await;
        } else {
            self.clear_log_to(meta.index, meta.term).await;
        }
        self.set_snapshot_point(meta.index, meta.term);
        if !agrees || self.core.configurations.latest_index <= meta.index {
            self.core.configurations.committed = meta.configuration.clone();
            self.core.configurations.committed_index = meta.configuration_index;
            self.set_latest_configuration(meta.configuration_index, meta.configuration.clone());
        }
        if meta.index > self.core.commit_index {
            self.core.commit_index = meta.index;
            self.shared.commit_index.store(meta.index, Ordering::Release);
        }
        self.publish_log();
    }

    /// Starts receiving a snapshot from the leader. A snapshot that ends at
    /// or below this node's commit index, or at an entry this log already
    /// holds, changes nothing but the commit index (Raft Figure 13, step 6):
    /// the FSM keeps its state, the log keeps every entry, and the answer is
    /// success without reading the state. Otherwise a task beside the node's
    /// loop streams it into the snapshot store, abandoning it when no bytes
    /// come for `snapshot_receive_timeout`, and reports back
    /// ([`Event::SnapshotReceived`]); the node goes on answering meanwhile.
    pub(super) async fn on_install_snapshot(
        &mut self,
        request: InstallSnapshotRequest,
        data: SnapshotStream,
        respond: InstallReply,
    ) {
        let mut response =
            InstallSnapshotResponse { header: self.header(), term: self.core.current_term, success: false };
        if request.term < self.core.current_term {
            return respond.respond(Ok(response));
        }
        if (request.term > self.core.current_term || self.core.role != RaftState::Follower)
            && !self.step_down(request.term).await
        {
            return respond.respond(Err(RpcRejection(format!("term {} could not be adopted", request.term))));
        }
        response.term = self.core.current_term;
        self.set_leader(Some((request.header.id.clone(), request.header.addr.clone())));
        self.note_leader_contact();
        if let Some(refusal) = refuse_snapshot(&request) {
            return respond.respond(Err(refusal));
        }
        if self.snapshot_is_known(request.last_log_index, request.last_log_term).await {
            drop(data);
            response.success = true;
            return respond.respond(Ok(response));
        }
        if self.core.restoring {
            return respond.respond(Err(RpcRejection("another snapshot is being restored".into())));
        }
        // A newer leader's snapshot supersedes one still arriving.
        if let Some(task) = self.installing.take() {
            task.abort();
        }
        let (store, events, term) = (self.snapshots.clone(), self.events_tx.clone(), self.core.current_term);
        let idle = self.config.snapshot_receive_timeout;
        let received = self.metrics.rpc_install_snapshot.clone();
        self.installing = Some(crate::task::Owned::spawn(async move {
            let started = Instant::now();
            let outcome = receive(store, &request, data, idle).await;
            received.record(crate::metrics::seconds(started.elapsed()));
            let _ = events.send(Event::SnapshotReceived { term, outcome, respond }).await;
        }));
    }

    /// A snapshot arrived whole: restores the FSM from it, unless it is no
    /// longer needed or this node has moved on to another term.
    pub(super) async fn snapshot_received(
        &mut self,
        term: u64,
        outcome: Result<Received, RaftError>,
        respond: InstallReply,
    ) {
        self.installing = None;
        let (meta, reader) = match outcome {
            Ok(Received { meta, reader }) => {
                (meta, reader.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
            }
            Err(error) => {
                tracing::warn!(%error, "receiving a snapshot failed");
                return respond.respond(Err(RpcRejection(error.to_string())));
            }
        };
        if term != self.core.current_term || self.core.role != RaftState::Follower {
            let reason = format!("the node moved on from term {term} to {}", self.core.current_term);
            return respond.respond(Err(RpcRejection(reason)));
        }
        let response =
            InstallSnapshotResponse { header: self.header(), term: self.core.current_term, success: true };
        if self.snapshot_is_known(meta.index, meta.term).await {
            return respond.respond(Ok(response));
        }
        // The FSM runner restores it; the node keeps its loop going and
        // adopts the snapshot when the runner says it is done.
        self.core.restoring = true;
        let (fsm, events) = (self.fsm.client(), self.events_tx.clone());
        tokio::spawn(async move {
            let result = fsm.restore(meta.clone(), reader).await;
            let _ = events.send(Event::SnapshotRestored { meta, result, respond }).await;
        });
    }

    /// The FSM holds a received snapshot's state: the log now starts after it.
    pub(super) async fn snapshot_restored(
        &mut self,
        meta: SnapshotMeta,
        result: Result<(), RaftError>,
        respond: InstallReply,
    ) {
        self.core.restoring = false;
        if let Err(error) = result {
            tracing::error!(%error, index = meta.index, "restoring a received snapshot failed");
            return respond.respond(Err(RpcRejection(error.to_string())));
        }
        self.adopt_snapshot(&meta).await;
        self.note_leader_contact();
        tracing::info!(index = meta.index, "installed a snapshot from the leader");
        respond.respond(Ok(InstallSnapshotResponse {
            header: self.header(),
            term: self.core.current_term,
            success: true,
        }));
    }

    /// Whether a snapshot ending at (`index`, `term`) holds nothing this node
    /// lacks ([`judge_offer`]); when the log holds its last entry, the
    /// entries up to `index` are committed, so the commit index moves up.
    async fn snapshot_is_known(&mut self, index: u64, term: u64) -> bool {
        match judge_offer(self.core.follower_log(), index, term) {
            Offer::Stale => {
                tracing::debug!(index, commit = self.core.commit_index, "ignoring a stale snapshot");
                true
            }
            Offer::Held => {
                tracing::debug!(index, "the log already holds the snapshot's last entry");
                if index > self.core.commit_index {
                    self.commit_to(index, Vec::new()).await;
                }
                true
            }
            Offer::Install => false,
        }
    }

    pub(super) fn note_leader_contact(&mut self) {
        self.core.last_leader_contact = Some(Instant::now().into_std());
        self.shared.touch_contact();
        self.reset_election_timer();
    }
}

/// Captures the FSM and writes the capture to the snapshot store.
async fn take_snapshot<R: Send + 'static>(
    fsm: FsmClient<R>,
    store: Arc<dyn SnapshotStore>,
    last_snapshot: u64,
    metrics: &crate::metrics::NodeMetrics,
) -> Result<SnapshotMeta, RaftError> {
    let started = Instant::now();
    let capture = fsm.capture().await?;
    if capture.point.index <= last_snapshot {
        return Err(RaftError::NothingNewToSnapshot);
    }
    let inline = store.never_blocks();
    let persisting = Instant::now();
    let meta = crate::blocking::run(inline, move || persist(&*store, capture))
        .await
        .map_err(|_| RaftError::Shutdown)??;
    metrics.snapshot_persist.record(crate::metrics::seconds(persisting.elapsed()));
    metrics.snapshot_create.record(crate::metrics::seconds(started.elapsed()));
    Ok(meta)
}

fn persist(store: &dyn SnapshotStore, capture: Capture) -> Result<SnapshotMeta, RaftError> {
    let Capture { mut snapshot, point } = capture;
    let new = NewSnapshot {
        version: SNAPSHOT_VERSION,
        index: point.index,
        term: point.term,
        configuration: point.configuration,
        configuration_index: point.configuration_index,
    };
    let mut sink = match store.create(new) {
        Ok(sink) => sink,
        Err(error) => {
            snapshot.release();
            return Err(error.into());
        }
    };
    let written = snapshot.persist(&mut *sink);
    snapshot.release();
    match written {
        Ok(()) => Ok(sink.close()?),
        Err(error) => {
            let _ = sink.cancel();
            Err(error.into())
        }
    }
}

/// Where the answer to an InstallSnapshot goes.
pub(crate) type InstallReply = Responder<InstallSnapshotResponse>;

/// A snapshot received from the leader, stored and opened for the FSM. The
/// reader sits in a mutex only so that the node's events are `Sync`.
pub(crate) struct Received {
    pub(crate) meta: SnapshotMeta,
    pub(crate) reader: std::sync::Mutex<SnapshotReader>,
}

/// Why an InstallSnapshot request cannot be a real snapshot, if it cannot.
fn refuse_snapshot(request: &InstallSnapshotRequest) -> Option<RpcRejection> {
    if request.last_log_index > crate::INDEX_MAX || request.configuration_index > request.last_log_index {
        return Some(RpcRejection(format!(
            "a snapshot through index {} with its configuration at {} is not a valid snapshot",
            request.last_log_index, request.configuration_index
        )));
    }
    if request.snapshot_version != SNAPSHOT_VERSION {
        return Some(RpcRejection(format!("snapshot version {} is not supported", request.snapshot_version)));
    }
    None
}

/// Streams a snapshot from the leader into the store, then opens it (which
/// checks it whole); abandons it when the stream delivers nothing for `idle`.
async fn receive(
    store: Arc<dyn SnapshotStore>,
    request: &InstallSnapshotRequest,
    data: SnapshotStream,
    idle: std::time::Duration,
) -> Result<Received, RaftError> {
    let meta = receive_into(store.clone(), request, data, idle).await?;
    let id = meta.id.clone();
    let inline = store.never_blocks();
    let (meta, reader) =
        crate::blocking::run(inline, move || store.open(&id)).await.map_err(|_| RaftError::Shutdown)??;
    Ok(Received { meta, reader: std::sync::Mutex::new(reader) })
}

/// Streams a snapshot from the leader into the store, `SNAPSHOT_CHUNK` bytes
/// at a time; refuses one longer or shorter than the request says, and one
/// that delivers nothing for `idle` (what was written is cancelled).
async fn receive_into(
    store: Arc<dyn SnapshotStore>,
    request: &InstallSnapshotRequest,
    mut data: SnapshotStream,
    idle: std::time::Duration,
) -> Result<SnapshotMeta, RaftError> {
    let snapshot = NewSnapshot {
        version: request.snapshot_version,
        index: request.last_log_index,
        term: request.last_log_term,
        configuration: request.configuration.clone(),
        configuration_index: request.configuration_index,
    };
    let inline = store.never_blocks();
    let mut sink = crate::blocking::run(inline, move || store.create(snapshot))
        .await
        .map_err(|_| RaftError::Shutdown)??;
    let mut received = 0u64;
    let mut buf = vec![0u8; SNAPSHOT_CHUNK];
    let outcome: Result<(), RaftError> = loop {
        let n = match tokio::time::timeout(idle, data.read(&mut buf)).await {
            Ok(Ok(0)) => break Ok(()),
            Ok(Ok(n)) => n,
            Ok(Err(error)) => break Err(RaftError::Snapshot(error.into())),
            Err(_) => break Err(stalled(received, request.size, idle)),
        };
        received += n as u64;
        if received > request.size {
            break Err(short_or_long(received, request.size));
        }
        let chunk = buf[..n].to_vec();
        let written = crate::blocking::run(inline, move || sink.write_all(&chunk).map(|()| sink)).await;
        sink = match written {
            Ok(Ok(sink)) => sink,
            Ok(Err(error)) => return Err(RaftError::Snapshot(error.into())),
            Err(_) => return Err(RaftError::Shutdown),
        };
    };
    let outcome = outcome.and_then(|()| {
        if received == request.size { Ok(()) } else { Err(short_or_long(received, request.size)) }
    });
    match outcome {
        Ok(()) => crate::blocking::run(inline, move || sink.close())
            .await
            .map_err(|_| RaftError::Shutdown)?
            .map_err(Into::into),
        Err(error) => {
            let _ = crate::blocking::run(inline, move || sink.cancel()).await;
            Err(error)
        }
    }
}

fn stalled(received: u64, size: u64, idle: std::time::Duration) -> RaftError {
    RaftError::Snapshot(crate::SnapshotError::Corrupt {
        id: "incoming".into(),
        reason: format!("no bytes for {idle:?} after {received} of the {size} announced; abandoned"),
    })
}

fn short_or_long(received: u64, size: u64) -> RaftError {
    RaftError::Snapshot(crate::SnapshotError::Corrupt {
        id: "incoming".into(),
        reason: format!("received {received} bytes of a snapshot announced as {size}"),
    })
}

/// Streams a snapshot reader as an `AsyncRead`: for a store that never
/// blocks, read on the caller's task as it is polled; otherwise on a
/// blocking thread a chunk at a time, at most four chunks buffered.
pub(crate) fn stream_snapshot(mut reader: SnapshotReader, inline: bool) -> SnapshotStream {
    if inline {
        return Box::pin(InlineReader(reader));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0u8; SNAPSHOT_CHUNK];
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                        break;
                    }
                }
                Err(error) => {
                    let _ = tx.blocking_send(Err(error));
                    break;
                }
            }
        }
    });
    crate::transport::chunk_stream(rx)
}

/// A reader of memory, read as it is polled.
struct InlineReader(SnapshotReader);

impl tokio::io::AsyncRead for InlineReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        std::task::Poll::Ready(Ok(()))
    }
}
