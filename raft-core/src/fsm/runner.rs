//! The FSM runner: applies committed entries in index order, each once, in
//! batches, and answers the futures of the commands it applies; captures the
//! FSM for snapshots and restores it from them.
//!
//! It runs on a thread of its own, or, for an FSM that says it never blocks
//! ([`Fsm::never_blocks`]), as a task on the async runtime: the same loop,
//! minus two thread hand-offs per commit (one to wake the thread, one to
//! wake the caller's task from it).

use crate::error::RaftError;
use crate::fsm::restore::{Gatherer, Step};
use crate::log_cache::LogCache;
use crate::metrics::FsmMetrics;
use crate::state::Shared;
use crate::watch;
use crate::{Configuration, Fsm, FsmSnapshot, Log, LogKind, SnapshotMeta, SnapshotReader};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};

/// How many operations may wait for the FSM runner.
const QUEUE_DEPTH: usize = 1024;
/// The most payload bytes read from the log for one batch.
const BATCH_BYTES_MAX: u64 = 4 << 20;

/// What a caller of `apply`/`barrier` gets once its entry is applied.
pub(crate) struct Applied<R> {
    pub(crate) index: u64,
    /// The FSM's response for a command; `None` for the protocol's own entries.
    pub(crate) response: Option<R>,
}

/// Where the outcome of one entry goes.
pub(crate) type ApplyReply<R> = oneshot::Sender<Result<Applied<R>, RaftError>>;

/// The point the FSM has applied up to, and the configuration in force there.
#[derive(Clone, Debug, Default)]
pub(crate) struct AppliedPoint {
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) configuration: Configuration,
    pub(crate) configuration_index: u64,
}

/// A capture of the FSM for a snapshot, with the point it was taken at.
pub(crate) struct Capture {
    pub(crate) snapshot: Box<dyn FsmSnapshot>,
    pub(crate) point: AppliedPoint,
}

/// Work for the FSM runner.
enum FsmOp<R> {
    /// Everything up to `index` is committed; `futures` wait on some of it.
    Commit { index: u64, futures: Vec<(u64, ApplyReply<R>)> },
    /// Capture the FSM for a snapshot.
    Capture { reply: oneshot::Sender<Result<Capture, RaftError>> },
    /// Replace the FSM's state with a snapshot's.
    Restore { meta: SnapshotMeta, reader: SnapshotReader, reply: oneshot::Sender<Result<(), RaftError>> },
}

/// The node's side of the FSM runner.
pub(crate) struct FsmHandle<R> {
    client: FsmClient<R>,
    runner: Option<RunnerHandle>,
}

/// Where the runner runs.
enum RunnerHandle {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

/// Sends work to the FSM runner; cloned into tasks that take snapshots.
pub(crate) struct FsmClient<R> {
    ops: mpsc::Sender<FsmOp<R>>,
}

impl<R> Clone for FsmClient<R> {
    fn clone(&self) -> Self {
        Self { ops: self.ops.clone() }
    }
}

impl<R: Send + 'static> std::ops::Deref for FsmHandle<R> {
    type Target = FsmClient<R>;

    fn deref(&self) -> &FsmClient<R> {
        &self.client
    }
}

impl<R: Send + 'static> FsmHandle<R> {
    /// Starts the FSM runner with the FSM having applied up to `point`.
    pub(crate) fn start<F: Fsm<Response = R>>(
        fsm: F,
        log: Arc<LogCache>,
        shared: Arc<Shared>,
        applied_tx: watch::Sender<u64>,
        point: AppliedPoint,
        settings: RunnerSettings,
    ) -> std::io::Result<Self> {
        let RunnerSettings { batch_apply, max_batch, metrics } = settings;
        let (ops, rx) = mpsc::channel(QUEUE_DEPTH);
        shared.applied_index.store(point.index, Ordering::Release);
        applied_tx.send_replace(point.index);
        let commit = point.index;
        let in_task = fsm.never_blocks();
        metrics.applied_index.set(point.index as f64);
        let runner = Runner {
            fsm,
            log,
            shared,
            applied_tx,
            point,
            commit,
            batch_apply,
            max_batch,
            rx,
            metrics,
            gatherer: Gatherer::default(),
            before_restore: None,
        };
        let runner = if in_task {
            RunnerHandle::Task(tokio::spawn(tracing::Instrument::in_current_span(runner.run_task())))
        } else {
            let span = tracing::Span::current();
            RunnerHandle::Thread(
                std::thread::Builder::new()
                    .name("raft-fsm".into())
                    .spawn(move || span.in_scope(|| runner.run()))?,
            )
        };
        Ok(Self { client: FsmClient { ops }, runner: Some(runner) })
    }

    /// Stops the runner once it has applied what it was told and waits for it.
    /// Clones of the client keep it running until they are dropped.
    pub(crate) async fn stop(mut self) {
        drop(std::mem::replace(&mut self.client.ops, mpsc::channel(1).0));
        match self.runner.take() {
            Some(RunnerHandle::Thread(thread)) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            Some(RunnerHandle::Task(task)) => {
                let _ = task.await;
            }
            None => {}
        }
    }

    /// A client to send work from another task.
    pub(crate) fn client(&self) -> FsmClient<R> {
        self.client.clone()
    }
}

impl<R: Send + 'static> FsmClient<R> {
    /// Tells the FSM runner that everything up to `index` is committed.
    pub(crate) async fn commit(&self, index: u64, futures: Vec<(u64, ApplyReply<R>)>) {
        if self.ops.send(FsmOp::Commit { index, futures }).await.is_err() {
            tracing::error!(index, "the FSM runner has stopped; committed entries are not applied");
        }
    }

    /// Captures the FSM at its applied index (after what was committed before this call).
    pub(crate) async fn capture(&self) -> Result<Capture, RaftError> {
        let (reply, answer) = oneshot::channel();
        self.ops.send(FsmOp::Capture { reply }).await.map_err(|_| RaftError::Shutdown)?;
        answer.await.map_err(|_| RaftError::Shutdown)?
    }

    /// Restores the FSM from a snapshot; it then counts as applied up to `meta.index`.
    pub(crate) async fn restore(&self, meta: SnapshotMeta, reader: SnapshotReader) -> Result<(), RaftError> {
        let (reply, answer) = oneshot::channel();
        self.ops.send(FsmOp::Restore { meta, reader, reply }).await.map_err(|_| RaftError::Shutdown)?;
        answer.await.map_err(|_| RaftError::Shutdown)?
    }
}

struct Runner<F: Fsm> {
    fsm: F,
    log: Arc<LogCache>,
    shared: Arc<Shared>,
    applied_tx: watch::Sender<u64>,
    point: AppliedPoint,
    commit: u64,
    batch_apply: bool,
    max_batch: usize,
    rx: mpsc::Receiver<FsmOp<F::Response>>,
    metrics: FsmMetrics,
    /// The pieces of a user's restore under way.
    gatherer: Gatherer,
    /// Where the FSM stood when a restore under way began: its state is
    /// still that point's (the pieces do not touch it), so a capture taken
    /// meanwhile stands there.
    before_restore: Option<AppliedPoint>,
}

/// How the runner applies, and what it measures.
pub(crate) struct RunnerSettings {
    /// Hand commands to `Fsm::apply_batch` rather than one `apply` each.
    pub(crate) batch_apply: bool,
    /// The most entries in one batch.
    pub(crate) max_batch: usize,
    pub(crate) metrics: FsmMetrics,
}

/// Futures waiting on entries, in index order (the leader commits in order).
type Futures<R> = VecDeque<(u64, ApplyReply<R>)>;

impl<F: Fsm> Runner<F> {
    fn run(mut self) {
        let mut futures: Futures<F::Response> = VecDeque::new();
        while let Some(op) = self.rx.blocking_recv() {
            self.take_queued(op, &mut futures);
            self.apply_committed(&mut futures);
        }
    }

    /// The same loop as [`run`](Self::run), as a task; it lets other tasks
    /// run between batches.
    async fn run_task(mut self) {
        let mut futures: Futures<F::Response> = VecDeque::new();
        while let Some(op) = self.rx.recv().await {
            self.take_queued(op, &mut futures);
            while self.apply_next_batch(&mut futures) {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Takes `op` and every operation queued behind it.
    fn take_queued(&mut self, op: FsmOp<F::Response>, futures: &mut Futures<F::Response>) {
        self.take(op, futures);
        while let Ok(op) = self.rx.try_recv() {
            self.take(op, futures);
        }
    }

    fn take(&mut self, op: FsmOp<F::Response>, futures: &mut Futures<F::Response>) {
        match op {
            FsmOp::Commit { index, futures: more } => {
                self.commit = self.commit.max(index);
                futures.extend(more);
            }
            FsmOp::Capture { reply } => {
                // Apply what was committed before the request, so the capture covers it.
                self.apply_committed(futures);
                let _ = reply.send(self.capture());
            }
            FsmOp::Restore { meta, reader, reply } => {
                let result = self.restore(meta, reader);
                if result.is_ok() {
                    // Entries the snapshot covers will not be applied one by
                    // one; their callers learn the outcome is unknown.
                    let superseded = futures.partition_point(|(index, _)| *index <= self.point.index);
                    for (_, reply) in futures.drain(..superseded) {
                        let _ = reply.send(Err(RaftError::LeadershipLost));
                    }
                }
                let _ = reply.send(result);
            }
        }
    }

    fn capture(&mut self) -> Result<Capture, RaftError> {
        let point = self.before_restore.as_ref().unwrap_or(&self.point).clone();
        if point.index == 0 {
            return Err(RaftError::NothingNewToSnapshot);
        }
        let started = std::time::Instant::now();
        let snapshot = self.fsm.snapshot()?;
        self.metrics.snapshot.record(crate::metrics::seconds(started.elapsed()));
        Ok(Capture { snapshot, point })
    }

    fn restore(&mut self, meta: SnapshotMeta, reader: SnapshotReader) -> Result<(), RaftError> {
        // The node restores only snapshots past its commit index, so this
        // never refuses one; it is the last guard of "each entry once".
        if meta.index <= self.point.index && self.point.index > 0 {
            tracing::error!(index = meta.index, applied = self.point.index, "refusing a stale snapshot");
            return Err(RaftError::StaleSnapshot { index: meta.index, applied: self.point.index });
        }
        let fsm = &mut self.fsm;
        let started = std::time::Instant::now();
        crate::blocking::in_place(|| fsm.restore(reader))?;
        self.metrics.restore.record(crate::metrics::seconds(started.elapsed()));
        self.point = AppliedPoint {
            index: meta.index,
            term: meta.term,
            configuration: meta.configuration,
            configuration_index: meta.configuration_index,
        };
        self.commit = self.commit.max(meta.index);
        // The snapshot holds the outcome of any restore under way.
        self.gatherer.reset();
        self.before_restore = None;
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        self.shared.applied_index.store(self.point.index, Ordering::Release);
        self.metrics.applied_index.set(self.point.index as f64);
        self.applied_tx.send_replace(self.point.index);
    }

    fn apply_committed(&mut self, futures: &mut Futures<F::Response>) {
        while self.apply_next_batch(futures) {}
    }

    /// Applies the next batch of committed entries, if any; says whether
    /// more are left.
    fn apply_next_batch(&mut self, futures: &mut Futures<F::Response>) -> bool {
        if self.point.index >= self.commit {
            return false;
        }
        let next = self.point.index + 1;
        let last = self.commit.min(self.point.index + self.max_batch as u64);
        let log = &self.log;
        let batch = match log
            .cached_range(next, last, BATCH_BYTES_MAX)
            .map_or_else(|| crate::blocking::in_place(|| log.get_range(next, last, BATCH_BYTES_MAX)), Ok)
        {
            Ok(batch) if batch.first().map(|l| l.index) == Some(next) => batch,
            Ok(_) => {
                tracing::error!(index = next, "committed entry missing from the log");
                return false;
            }
            Err(error) => {
                tracing::error!(%error, index = next, "reading committed entries failed");
                return false;
            }
        };
        // Restore pieces go one at a time, the entries between them as
        // batches, in index order.
        let mut rest = batch.as_slice();
        while !rest.is_empty() {
            let pieces = rest.iter().take_while(|log| log.kind == LogKind::Restore).count();
            if pieces > 0 {
                let (these, after) = rest.split_at(pieces);
                these.iter().for_each(|log| self.apply_restore_piece(log, futures));
                rest = after;
                continue;
            }
            let others = rest.iter().take_while(|log| log.kind != LogKind::Restore).count();
            let (these, after) = rest.split_at(others);
            if self.gatherer.take(&these[0]) == Step::Abandoned {
                tracing::warn!(index = these[0].index, "a restore whose last piece never came is dropped");
                self.before_restore = None;
            }
            self.apply_batch(these, futures);
            rest = after;
        }
        self.point.index < self.commit
    }

    /// Applies one piece of a user's restore; the last one replaces the
    /// FSM's state and answers the restore's caller.
    fn apply_restore_piece(&mut self, log: &Log, futures: &mut Futures<F::Response>) {
        let before = self.point.clone();
        let outcome = match self.gatherer.take(log) {
            Step::Began => {
                self.before_restore = Some(before);
                None
            }
            Step::Complete(backup) => {
                self.before_restore = None;
                let fsm = &mut self.fsm;
                let started = std::time::Instant::now();
                let restored =
                    crate::blocking::in_place(|| fsm.restore(Box::new(std::io::Cursor::new(backup))));
                self.metrics.restore.record(crate::metrics::seconds(started.elapsed()));
                if let Err(error) = &restored {
                    tracing::error!(%error, index = log.index, "the FSM refused a user's restore");
                }
                Some(restored.map_err(RaftError::from))
            }
            Step::Abandoned | Step::None | Step::Gathered => None,
        };
        self.point.index = log.index;
        self.point.term = log.term;
        self.publish();
        answer_through(futures, log.index, || match outcome {
            Some(Err(error)) => Err(error),
            _ => Ok(Applied { index: log.index, response: None }),
        });
    }

    fn apply_batch(&mut self, batch: &[Log], futures: &mut Futures<F::Response>) {
        // The FSM sees commands only; copy them out only when the batch
        // holds other entries too.
        let is_command = |log: &&Log| log.kind == LogKind::Command;
        let filtered: Vec<Log>;
        let commands: &[Log] = if batch.iter().all(|log| is_command(&log)) {
            batch
        } else {
            filtered = batch.iter().filter(is_command).cloned().collect();
            &filtered
        };
        let started = std::time::Instant::now();
        let responses = if commands.is_empty() {
            Vec::new()
        } else if self.batch_apply {
            self.fsm.apply_batch(commands)
        } else {
            commands.iter().map(|log| self.fsm.apply(log)).collect()
        };
        if !commands.is_empty() {
            self.metrics.apply.record(crate::metrics::seconds(started.elapsed()));
            self.metrics.applied.increment(commands.len() as u64);
        }
        assert_eq!(responses.len(), commands.len(), "Fsm::apply_batch must return one response per entry");
        for log in batch.iter().filter(|log| log.kind == LogKind::Configuration) {
            match crate::codec::decode_configuration(log.data.clone()) {
                Ok(configuration) => {
                    self.point.configuration = configuration;
                    self.point.configuration_index = log.index;
                }
                Err(error) => tracing::error!(%error, index = log.index, "undecodable configuration entry"),
            }
        }
        // Publish the applied index before answering, so a caller that gets
        // its answer sees an applied index covering its entry.
        if let Some(last) = batch.last() {
            debug_assert_eq!(last.index, self.point.index + batch.len() as u64, "applied in index order");
            self.point.index = last.index;
            self.point.term = last.term;
            self.publish();
        }
        let mut responses = responses.into_iter();
        for log in batch {
            let response = if log.kind == LogKind::Command { responses.next() } else { None };
            answer_through(futures, log.index, || Ok(Applied { index: log.index, response }));
        }
    }
}

/// Answers the future waiting on the entry at `index`, if one does, with
/// `outcome`. A future below it waited on an entry a restored snapshot
/// replaced; none should be left, but none may hold up the ones behind it.
fn answer_through<R>(
    futures: &mut Futures<R>,
    index: u64,
    outcome: impl FnOnce() -> Result<Applied<R>, RaftError>,
) {
    while futures.front().is_some_and(|(waiting, _)| *waiting < index) {
        if let Some((_, reply)) = futures.pop_front() {
            let _ = reply.send(Err(RaftError::LeadershipLost));
        }
    }
    if futures.front().is_some_and(|(waiting, _)| *waiting == index)
        && let Some((_, reply)) = futures.pop_front()
    {
        let _ = reply.send(outcome());
    }
}
