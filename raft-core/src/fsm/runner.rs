//! The FSM thread: applies committed entries in index order, each once, in
//! batches, and answers the futures of the commands it applies.

use crate::error::RaftError;
use crate::log_cache::LogCache;
use crate::state::Shared;
use crate::{Fsm, Log, LogKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot, watch};

/// How many operations may wait for the FSM thread.
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

/// Work for the FSM thread.
pub(crate) enum FsmOp<R> {
    /// Everything up to `index` is committed; `futures` wait on some of it.
    Commit { index: u64, futures: Vec<(u64, ApplyReply<R>)> },
}

/// The node's side of the FSM thread.
pub(crate) struct FsmHandle<R> {
    ops: mpsc::Sender<FsmOp<R>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<R: Send + 'static> FsmHandle<R> {
    /// Starts the FSM thread with the FSM having applied up to `applied`.
    pub(crate) fn start<F: Fsm<Response = R>>(
        fsm: F,
        log: Arc<LogCache>,
        shared: Arc<Shared>,
        applied_tx: watch::Sender<u64>,
        applied: u64,
        batch_apply: bool,
        max_batch: usize,
    ) -> std::io::Result<Self> {
        let (ops, rx) = mpsc::channel(QUEUE_DEPTH);
        let runner =
            Runner { fsm, log, shared, applied_tx, applied, commit: applied, batch_apply, max_batch, rx };
        let thread = std::thread::Builder::new().name("raft-fsm".into()).spawn(move || runner.run())?;
        Ok(Self { ops, thread: Some(thread) })
    }

    /// Tells the FSM thread that everything up to `index` is committed.
    pub(crate) async fn commit(&self, index: u64, futures: Vec<(u64, ApplyReply<R>)>) {
        if self.ops.send(FsmOp::Commit { index, futures }).await.is_err() {
            tracing::error!(index, "the FSM thread has stopped; committed entries are not applied");
        }
    }

    /// Stops the thread once it has applied what it was told and waits for it.
    pub(crate) async fn stop(mut self) {
        drop(std::mem::replace(&mut self.ops, mpsc::channel(1).0));
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

struct Runner<F: Fsm> {
    fsm: F,
    log: Arc<LogCache>,
    shared: Arc<Shared>,
    applied_tx: watch::Sender<u64>,
    applied: u64,
    commit: u64,
    batch_apply: bool,
    max_batch: usize,
    rx: mpsc::Receiver<FsmOp<F::Response>>,
}

impl<F: Fsm> Runner<F> {
    fn run(mut self) {
        let mut futures: BTreeMap<u64, ApplyReply<F::Response>> = BTreeMap::new();
        while let Some(op) = self.rx.blocking_recv() {
            self.take(op, &mut futures);
            while let Ok(op) = self.rx.try_recv() {
                self.take(op, &mut futures);
            }
            self.apply_committed(&mut futures);
        }
    }

    fn take(&mut self, op: FsmOp<F::Response>, futures: &mut BTreeMap<u64, ApplyReply<F::Response>>) {
        match op {
            FsmOp::Commit { index, futures: more } => {
                self.commit = self.commit.max(index);
                futures.extend(more);
            }
        }
    }

    fn apply_committed(&mut self, futures: &mut BTreeMap<u64, ApplyReply<F::Response>>) {
        while self.applied < self.commit {
            let last = self.commit.min(self.applied + self.max_batch as u64);
            let batch = match self.log.get_range(self.applied + 1, last, BATCH_BYTES_MAX) {
                Ok(batch) if batch.first().map(|l| l.index) == Some(self.applied + 1) => batch,
                Ok(_) => {
                    tracing::error!(index = self.applied + 1, "committed entry missing from the log");
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, index = self.applied + 1, "reading committed entries failed");
                    return;
                }
            };
            self.apply_batch(&batch, futures);
        }
    }

    fn apply_batch(&mut self, batch: &[Log], futures: &mut BTreeMap<u64, ApplyReply<F::Response>>) {
        let commands: Vec<Log> = batch.iter().filter(|log| log.kind == LogKind::Command).cloned().collect();
        let responses = if commands.is_empty() {
            Vec::new()
        } else if self.batch_apply {
            self.fsm.apply_batch(&commands)
        } else {
            commands.iter().map(|log| self.fsm.apply(log)).collect()
        };
        assert_eq!(responses.len(), commands.len(), "Fsm::apply_batch must return one response per entry");
        // Publish the applied index before answering, so a caller that gets
        // its answer sees an applied index covering its entry.
        if let Some(last) = batch.last() {
            debug_assert_eq!(last.index, self.applied + batch.len() as u64, "applied in index order");
            self.applied = last.index;
            self.shared.applied_index.store(self.applied, Ordering::Release);
            self.applied_tx.send_replace(self.applied);
        }
        let mut responses = responses.into_iter();
        for log in batch {
            let response = if log.kind == LogKind::Command { responses.next() } else { None };
            if let Some(reply) = futures.remove(&log.index) {
                let _ = reply.send(Ok(Applied { index: log.index, response }));
            }
        }
    }
}
