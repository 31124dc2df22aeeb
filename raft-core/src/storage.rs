//! The storage worker: one thread that performs every log write, in order,
//! grouping concurrent appends into one `store_logs` call (group commit).

use crate::log_cache::LogCache;
use crate::raft::Event;
use crate::{Log, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// How many operations may wait for the worker before submitters wait too.
const QUEUE_DEPTH: usize = 256;

/// Told to a follower waiting on its own write.
pub(crate) type WriteDone = oneshot::Sender<Result<(), Arc<StoreError>>>;

/// One log mutation, numbered by `seq` in submission order.
pub(crate) enum StorageOp {
    /// Append entries (contiguous, continuing the log) and record `commit_index` with them.
    Append { seq: u64, logs: Vec<Log>, commit_index: u64, done: Option<WriteDone> },
    /// Remove the entries from `index` on (index 0: the whole log).
    TruncateFrom { seq: u64, index: u64, done: Option<WriteDone> },
    /// Remove the entries up to and including `index` (compaction after a snapshot).
    TruncateThrough { seq: u64, index: u64 },
}

impl StorageOp {
    fn seq(&self) -> u64 {
        match self {
            StorageOp::Append { seq, .. }
            | StorageOp::TruncateFrom { seq, .. }
            | StorageOp::TruncateThrough { seq, .. } => *seq,
        }
    }
}

/// How far the worker has got: every operation up to `completed_seq` has
/// finished; `failures` counts those that failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) completed_seq: u64,
    pub(crate) failures: u64,
}

/// The node's side of the worker.
pub(crate) struct Storage {
    ops: mpsc::Sender<StorageOp>,
    progress: watch::Receiver<Progress>,
    busy_since: Arc<AtomicU64>,
    epoch: Instant,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Storage {
    /// Starts the worker thread. `max_batch` bounds how many entries one
    /// grouped `store_logs` call carries.
    pub(crate) fn start(
        log: Arc<LogCache>,
        events: mpsc::Sender<Event>,
        max_batch: usize,
    ) -> std::io::Result<Self> {
        let (ops, rx) = mpsc::channel(QUEUE_DEPTH);
        let busy_since = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let (progress_tx, progress) = watch::channel(Progress::default());
        let busy = busy_since.clone();
        let worker = Worker {
            log,
            events,
            rx,
            busy_since: busy,
            epoch,
            max_batch,
            stash: None,
            progress: progress_tx,
        };
        let thread = std::thread::Builder::new().name("raft-storage".into()).spawn(move || worker.run())?;
        Ok(Self { ops, progress, busy_since, epoch, thread: Some(thread) })
    }

    /// Queues an operation, waiting while the queue is full.
    pub(crate) async fn submit(&self, op: StorageOp) -> Result<(), StoreError> {
        self.ops.send(op).await.map_err(|_| StoreError::Closed)
    }

    /// Watches how far the worker has got.
    pub(crate) fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// How long the operation now running has been running, if any.
    pub(crate) fn busy_for(&self) -> Option<Duration> {
        match self.busy_since.load(Ordering::Acquire) {
            0 => None,
            started => {
                let now = self.epoch.elapsed().as_micros() as u64;
                Some(Duration::from_micros(now.saturating_sub(started)))
            }
        }
    }

    /// Stops the worker after the queued operations and waits for it.
    pub(crate) async fn stop(mut self) {
        let Storage { ops, thread, .. } = &mut self;
        drop(std::mem::replace(ops, mpsc::channel(1).0));
        if let Some(thread) = thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

struct Worker {
    log: Arc<LogCache>,
    events: mpsc::Sender<Event>,
    rx: mpsc::Receiver<StorageOp>,
    busy_since: Arc<AtomicU64>,
    epoch: Instant,
    max_batch: usize,
    /// An operation taken from the queue while grouping that did not fit the group.
    stash: Option<StorageOp>,
    progress: watch::Sender<Progress>,
}

/// What one (possibly grouped) operation did.
struct Outcome {
    /// The highest sequence number it covered.
    seq: u64,
    result: Result<(), StoreError>,
    dones: Vec<WriteDone>,
    /// For appends, the last index written.
    last_index: Option<u64>,
}

impl Worker {
    fn next(&mut self) -> Option<StorageOp> {
        self.stash.take().or_else(|| self.rx.blocking_recv())
    }

    fn run(mut self) {
        while let Some(op) = self.next() {
            self.busy_since.store((self.epoch.elapsed().as_micros() as u64).max(1), Ordering::Release);
            let seq = op.seq();
            let store = self.log.store().clone();
            let outcome = match op {
                StorageOp::Append { logs, commit_index, done, .. } => {
                    self.append(seq, logs, commit_index, done)
                }
                StorageOp::TruncateFrom { index, done, .. } => Outcome {
                    seq,
                    result: store.delete_range(index, u64::MAX),
                    dones: done.into_iter().collect(),
                    last_index: None,
                },
                StorageOp::TruncateThrough { index, .. } => {
                    Outcome { seq, result: store.delete_range(0, index), dones: Vec::new(), last_index: None }
                }
            };
            self.busy_since.store(0, Ordering::Release);
            self.finish(outcome);
        }
    }

    /// Appends one queued batch plus every append queued right behind it
    /// that continues it, up to `max_batch` entries, in one call.
    fn append(
        &mut self,
        seq: u64,
        mut logs: Vec<Log>,
        mut commit_index: u64,
        done: Option<WriteDone>,
    ) -> Outcome {
        let mut dones: Vec<WriteDone> = done.into_iter().collect();
        let mut seq = seq;
        while logs.len() < self.max_batch {
            match self.rx.try_recv() {
                Ok(StorageOp::Append { seq: next_seq, logs: more, commit_index: commit, done })
                    if more.first().map(|l| l.index) == logs.last().map(|l| l.index + 1) =>
                {
                    logs.extend(more);
                    commit_index = commit_index.max(commit);
                    dones.extend(done);
                    seq = next_seq;
                }
                Ok(other) => {
                    self.stash = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        let last_index = logs.last().map(|l| l.index);
        let result = self.log.store().store_logs_with_commit(&logs, commit_index);
        Outcome { seq, result, dones, last_index }
    }

    fn finish(&mut self, outcome: Outcome) {
        let Outcome { seq, result, dones, last_index } = outcome;
        let failed = result.is_err();
        self.progress.send_modify(|progress| {
            progress.completed_seq = progress.completed_seq.max(seq);
            progress.failures += u64::from(failed);
        });
        match result {
            Ok(()) => {
                self.log.mark_written(seq);
                if let Some(last_index) = last_index {
                    let _ = self.events.blocking_send(Event::Durable { seq, last_index });
                }
                for done in dones {
                    let _ = done.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, seq, "log store write failed");
                let error = Arc::new(error);
                let _ = self.events.blocking_send(Event::StoreFailed { seq, error: error.clone() });
                for done in dones {
                    let _ = done.send(Err(error.clone()));
                }
            }
        }
    }
}
