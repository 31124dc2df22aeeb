//! The storage worker: one thread that performs every log write, in order,
//! grouping concurrent appends into one `store_logs` call (group commit).
//!
//! A store whose writes never block ([`LogStore::writes_never_block`](crate::LogStore::writes_never_block), the
//! in-memory store) is written on the node's own task instead: each
//! operation completes inside `submit`, and its completion event waits in a
//! local queue the node reads before anything else, so the two modes report
//! in the same order and the node code is the same for both.
//!
//! [`LogWriter`] overrides the store's choice: `Thread` always starts the
//! thread, and `Task` runs the same worker as a task on the node's runtime
//! (for stores that never block), which lets the simulator replay the
//! threaded mode — its queue, its grouping and its asynchronous reports —
//! deterministically.
//!
//! # After a failed write
//!
//! Every operation is submitted assuming the ones before it succeed: an
//! append continues the entries queued ahead of it, and a follower appends
//! right after queueing the truncation of a conflicting suffix. So once one
//! operation fails, the worker performs none submitted before the node has
//! seen the failure: each is *fenced* by the failure count the node had
//! acknowledged when it submitted, and fails with [`StoreError::NotAttempted`]
//! if more failures have happened since. The node acknowledges a failure
//! after it has re-read its log's bounds from the store
//! ([`Storage::acknowledge_failures`]), so what the store holds is always a
//! prefix of what the node asked for, and the node's view is rebuilt from
//! it, never guessed.

use std::collections::VecDeque;

use crate::log_cache::LogCache;
use crate::watch;
use crate::{Log, LogWriter, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How many operations may wait for the worker before submitters wait too.
const QUEUE_DEPTH: usize = 256;

/// How large one merged `store_logs` call grows, in payload bytes plus
/// [`ENTRY_OVERHEAD`] per entry: appends queued behind one another are
/// written together up to this, however many entries they hold.
pub(crate) const MERGE_BYTES: u64 = 8 << 20;

/// What an entry counts for in [`MERGE_BYTES`] besides its payload (its
/// index, term and framing), so that many empty entries still make a batch.
const ENTRY_OVERHEAD: u64 = 32;

/// Told to a follower waiting on its own write.
pub(crate) type WriteDone = oneshot::Sender<Result<(), Arc<StoreError>>>;

/// One log mutation, numbered by `seq` in submission order.
pub(crate) enum StorageOp {
    /// Append entries (contiguous, continuing the log) and record `commit_index` with them.
    /// `clear` (set by [`Storage::submit`]) empties the log first.
    Append { seq: u64, logs: Vec<Log>, commit_index: u64, done: Option<WriteDone>, clear: bool },
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

/// An operation and the failure count it was submitted under.
struct Queued {
    op: StorageOp,
    fence: u64,
}

/// The node's side of the worker.
pub(crate) struct Storage {
    mode: Mode,
    /// Set when the node is dropped without [`Storage::stop`] (a crash, as
    /// `Raft::kill` makes one): the worker performs nothing more, so what the
    /// store holds is what a restart finds.
    halted: Arc<std::sync::atomic::AtomicBool>,
    progress: watch::Receiver<Progress>,
    busy_since: Arc<AtomicU64>,
    epoch: Instant,
    /// The failures the node has acknowledged; operations submitted now
    /// are performed only if no other has failed since.
    fence: u64,
    /// The next append clears the whole log first (the store holds entries
    /// that do not continue the node's snapshot).
    clear_before_append: bool,
}

/// What the storage worker reports to the node: an operation's outcome.
#[derive(Debug)]
pub(crate) enum StorageReport {
    /// Operations up to `seq` completed; the log is written through `last_index`.
    Durable { seq: u64, last_index: u64 },
    /// Operation `seq` failed.
    Failed { seq: u64, error: Arc<StoreError> },
}

/// Where operations run.
enum Mode {
    /// On the storage worker (a thread, or a task), fed through a queue.
    Worker { ops: mpsc::Sender<Queued>, worker: Option<Running> },
    /// On the caller's task, inside `submit`; completion events wait in `events`.
    Inline { log: Arc<LogCache>, progress: watch::Sender<Progress>, events: VecDeque<StorageReport> },
}

/// A running worker, to wait for when the node stops.
enum Running {
    Thread(std::thread::JoinHandle<()>),
    Task(crate::task::Owned),
}

impl Storage {
    /// Starts the worker where `writer` says (for [`LogWriter::Auto`]: none
    /// for a store whose writes never block, a thread otherwise). The worker
    /// reports each outcome on `reports`, in the node's own input type, and
    /// merges queued appends into one `store_logs` call until it carries
    /// `merge_bytes` ([`MERGE_BYTES`] in the node), so batches grow with the
    /// load instead of stopping at an entry count.
    pub(crate) fn start<T: From<StorageReport> + Send + 'static>(
        log: Arc<LogCache>,
        reports: mpsc::Sender<T>,
        merge_bytes: u64,
        writer: LogWriter,
    ) -> std::io::Result<Self> {
        let busy_since = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let (progress_tx, progress) = watch::channel(Progress::default());
        let halted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if writer == LogWriter::Auto && log.store().writes_never_block() {
            let mode = Mode::Inline { log, progress: progress_tx, events: VecDeque::new() };
            return Ok(Self {
                mode,
                halted,
                progress,
                busy_since,
                epoch,
                fence: 0,
                clear_before_append: false,
            });
        }
        let (ops, rx) = mpsc::channel(QUEUE_DEPTH);
        let busy = busy_since.clone();
        let worker = Worker {
            log,
            reports,
            rx,
            busy_since: busy,
            epoch,
            merge_bytes,
            stash: None,
            progress: progress_tx,
            halted: halted.clone(),
        };
        let span = tracing::Span::current();
        let running = if writer == LogWriter::Task {
            Running::Task(crate::task::Owned::spawn(tracing::Instrument::instrument(worker.run_task(), span)))
        } else {
            let thread = std::thread::Builder::new()
                .name("raft-storage".into())
                .spawn(move || span.in_scope(|| worker.run_thread()))?;
            Running::Thread(thread)
        };
        let mode = Mode::Worker { ops, worker: Some(running) };
        Ok(Self { mode, halted, progress, busy_since, epoch, fence: 0, clear_before_append: false })
    }

    /// Queues an operation, waiting while the queue is full; in inline mode,
    /// performs it.
    pub(crate) async fn submit(&mut self, mut op: StorageOp) -> Result<(), StoreError> {
        if let StorageOp::Append { clear, .. } = &mut op {
            *clear = std::mem::take(&mut self.clear_before_append);
        }
        let queued = Queued { op, fence: self.fence };
        match &mut self.mode {
            Mode::Worker { ops, .. } => ops.send(queued).await.map_err(|_| StoreError::Closed),
            Mode::Inline { log, progress, events } => {
                let failures = progress.borrow().failures;
                let outcome = perform(log, queued, failures, |_| None, u64::MAX);
                events.extend(settle(log, progress, outcome));
                Ok(())
            }
        }
    }

    /// Records that the node has seen every failure so far and rebuilt its
    /// view of the log from the store: operations submitted from now on are
    /// performed again.
    pub(crate) fn acknowledge_failures(&mut self) {
        self.fence = self.progress.borrow().failures;
    }

    /// Makes the next append clear the whole log before it writes.
    pub(crate) fn clear_before_next_append(&mut self) {
        self.clear_before_append = true;
    }

    /// The oldest completion event of an inline operation not yet taken.
    pub(crate) fn take_event(&mut self) -> Option<StorageReport> {
        match &mut self.mode {
            Mode::Inline { events, .. } => events.pop_front(),
            Mode::Worker { .. } => None,
        }
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
        if let Mode::Worker { ops, worker } = &mut self.mode {
            drop(std::mem::replace(ops, mpsc::channel(1).0));
            match worker.take() {
                Some(Running::Thread(thread)) => {
                    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
                }
                Some(Running::Task(mut task)) => task.join().await,
                None => {}
            }
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        // After `stop` the worker is done already; otherwise the node was
        // dropped where it stood, and so is everything still queued.
        self.halted.store(true, Ordering::Release);
    }
}

struct Worker<T> {
    /// The node went away without stopping its storage: perform nothing more.
    halted: Arc<std::sync::atomic::AtomicBool>,
    log: Arc<LogCache>,
    reports: mpsc::Sender<T>,
    rx: mpsc::Receiver<Queued>,
    busy_since: Arc<AtomicU64>,
    epoch: Instant,
    merge_bytes: u64,
    /// An operation taken from the queue while grouping that did not fit the group.
    stash: Option<Queued>,
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

impl<T: From<StorageReport>> Worker<T> {
    /// The worker on its own thread: blocks on the queue and on reporting.
    fn run_thread(mut self) {
        while let Some(op) = self.stash.take().or_else(|| self.rx.blocking_recv()) {
            if let Some(report) = self.perform(op) {
                let _ = self.reports.blocking_send(report.into());
            }
        }
    }

    /// The worker as a task: the same steps, awaiting instead of blocking.
    async fn run_task(mut self) {
        loop {
            let op = match self.stash.take() {
                Some(op) => op,
                None => match self.rx.recv().await {
                    Some(op) => op,
                    None => return,
                },
            };
            if let Some(report) = self.perform(op) {
                let _ = self.reports.send(report.into()).await;
            }
        }
    }

    /// Performs `op` with the appends queued right behind it; the report
    /// for the node, if any. Nothing once the node is gone without a stop.
    fn perform(&mut self, op: Queued) -> Option<StorageReport> {
        if self.halted.load(Ordering::Acquire) {
            self.rx.close();
            return None;
        }
        {
            self.busy_since.store((self.epoch.elapsed().as_micros() as u64).max(1), Ordering::Release);
            // Group with the appends queued right behind; keep the first
            // operation that does not continue the batch for the next round.
            let (rx, stash) = (&mut self.rx, &mut self.stash);
            let failures = self.progress.borrow().failures;
            let outcome = perform(
                &self.log,
                op,
                failures,
                |continues| match rx.try_recv() {
                    Ok(queued) if continues(&queued.op) => Some(queued.op),
                    Ok(op) => {
                        *stash = Some(op);
                        None
                    }
                    Err(_) => None,
                },
                self.merge_bytes,
            );
            self.busy_since.store(0, Ordering::Release);
            settle(&self.log, &self.progress, outcome)
        }
    }
}

/// Performs one operation, unless `failures` (so far) is past the fence it
/// was submitted under. An append takes along every append `more` hands over
/// that continues it (`more` is given the test; their fences are no lower),
/// until the batch holds `merge_bytes` (payloads plus [`ENTRY_OVERHEAD`]
/// per entry), and writes them in one call.
fn perform(
    log: &LogCache,
    queued: Queued,
    failures: u64,
    mut more: impl FnMut(&dyn Fn(&StorageOp) -> bool) -> Option<StorageOp>,
    merge_bytes: u64,
) -> Outcome {
    let Queued { op, fence } = queued;
    let seq = op.seq();
    if failures > fence {
        let dones = match op {
            StorageOp::Append { done, .. } | StorageOp::TruncateFrom { done, .. } => {
                done.into_iter().collect()
            }
            StorageOp::TruncateThrough { .. } => Vec::new(),
        };
        return Outcome { seq, result: Err(StoreError::NotAttempted), dones, last_index: None };
    }
    let store = log.store();
    match op {
        StorageOp::Append { mut logs, mut commit_index, done, clear, .. } => {
            let mut dones: Vec<WriteDone> = done.into_iter().collect();
            let mut seq = seq;
            let size = |logs: &[Log]| logs.iter().map(|l| l.payload_size() + ENTRY_OVERHEAD).sum::<u64>();
            let mut bytes = size(&logs);
            while bytes < merge_bytes {
                let next_index = logs.last().map(|l| l.index + 1);
                let continues = |op: &StorageOp| matches!(op, StorageOp::Append { logs: more, clear: false, .. } if more.first().map(|l| l.index) == next_index);
                let Some(StorageOp::Append { seq: next_seq, logs: rest, commit_index: commit, done, .. }) =
                    more(&continues)
                else {
                    break;
                };
                bytes += size(&rest);
                logs.extend(rest);
                commit_index = commit_index.max(commit);
                dones.extend(done);
                seq = next_seq;
            }
            let last_index = logs.last().map(|l| l.index);
            let cleared = if clear { store.delete_range(0, u64::MAX) } else { Ok(()) };
            let result = cleared.and_then(|()| store.store_logs_with_commit(&logs, commit_index));
            Outcome { seq, result, dones, last_index }
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
    }
}

/// Records an operation's outcome: progress, the cache, the waiting
/// followers; returns the event for the node, if any.
fn settle(log: &LogCache, progress: &watch::Sender<Progress>, outcome: Outcome) -> Option<StorageReport> {
    let Outcome { seq, result, dones, last_index } = outcome;
    let failed = result.is_err();
    progress.send_modify(|progress| {
        progress.completed_seq = progress.completed_seq.max(seq);
        progress.failures += u64::from(failed);
    });
    match result {
        Ok(()) => {
            log.mark_written(seq);
            for done in dones {
                let _ = done.send(Ok(()));
            }
            last_index.map(|last_index| StorageReport::Durable { seq, last_index })
        }
        Err(error) => {
            tracing::error!(%error, seq, "log store write failed");
            let error = Arc::new(error);
            for done in dones {
                let _ = done.send(Err(error.clone()));
            }
            Some(StorageReport::Failed { seq, error })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A log in a `Vec` that refuses batches starting at `refuse_from`.
    struct VecStore {
        logs: Mutex<Vec<Log>>,
        never_blocks: bool,
        refuse_from: u64,
    }

    impl crate::LogStore for VecStore {
        fn first_index(&self) -> Result<u64, StoreError> {
            Ok(self.logs.lock().expect("lock").first().map_or(0, |l| l.index))
        }
        fn last_index(&self) -> Result<u64, StoreError> {
            Ok(self.logs.lock().expect("lock").last().map_or(0, |l| l.index))
        }
        fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
            Ok(self.logs.lock().expect("lock").iter().find(|l| l.index == index).cloned())
        }
        fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
            if logs.first().is_some_and(|l| l.index >= self.refuse_from) {
                return Err(StoreError::Full("refused".into()));
            }
            self.logs.lock().expect("lock").extend(logs.iter().cloned());
            Ok(())
        }
        fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
            self.logs.lock().expect("lock").retain(|l| l.index < min || l.index > max);
            Ok(())
        }
        fn writes_never_block(&self) -> bool {
            self.never_blocks
        }
    }

    fn append(seq: u64, indexes: std::ops::RangeInclusive<u64>, term: u64) -> StorageOp {
        let logs = indexes.map(|i| Log::command(i, term, "x")).collect();
        StorageOp::Append { seq, logs, commit_index: 0, done: None, clear: false }
    }

    /// Runs the same operations through one storage mode and reports what
    /// came back: the events in order, and the terms of the stored log.
    async fn run(never_blocks: bool, writer: LogWriter) -> (Vec<String>, Vec<u64>, Progress) {
        let store = Arc::new(VecStore { logs: Mutex::default(), never_blocks, refuse_from: 9 });
        let log = Arc::new(LogCache::new(store.clone(), 16));
        let (events_tx, mut events_rx) = mpsc::channel(16);
        let mut storage = Storage::start(log, events_tx, 1 << 20, writer).expect("start");
        let ops = vec![
            append(1, 1..=3, 1),
            append(2, 4..=5, 1),
            StorageOp::TruncateFrom { seq: 3, index: 5, done: None },
            append(4, 5..=6, 2),
            StorageOp::TruncateThrough { seq: 5, index: 2 },
            append(6, 9..=9, 2),
        ];
        for op in ops {
            storage.submit(op).await.expect("submit");
        }
        let mut seen: Vec<String> = Vec::new();
        while !seen.last().is_some_and(|last| last.starts_with("failed")) {
            let event = match storage.take_event() {
                Some(event) => event,
                None => tokio::time::timeout(Duration::from_secs(10), events_rx.recv())
                    .await
                    .expect("an event within 10 s")
                    .expect("event"),
            };
            seen.push(match event {
                StorageReport::Durable { seq, last_index } => format!("durable {seq} {last_index}"),
                StorageReport::Failed { seq, .. } => format!("failed {seq}"),
            });
        }
        let progress = *storage.progress().borrow();
        storage.stop().await;
        let terms = store.logs.lock().expect("lock").iter().map(|l| l.term).collect();
        (seen, terms, progress)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_threaded_and_task_storage_report_the_same_outcomes() {
        let inline = run(true, LogWriter::Auto).await;
        // The worker may group the first two appends into one write.
        let expected_events = ["durable 1 3", "durable 2 5", "durable 4 6", "failed 6"];
        let grouped = ["durable 2 5", "durable 4 6", "failed 6"];
        assert_eq!(inline.0, expected_events);
        assert_eq!(inline.1, [1, 1, 2, 2], "entries 3, 4 of term 1 and 5, 6 of term 2 remain");
        assert_eq!(inline.2, Progress { completed_seq: 6, failures: 1 });
        for (never_blocks, writer) in
            [(false, LogWriter::Auto), (true, LogWriter::Thread), (true, LogWriter::Task)]
        {
            let worker = run(never_blocks, writer).await;
            assert!(worker.0 == expected_events || worker.0 == grouped, "{writer:?}: {:?}", worker.0);
            assert_eq!(worker.1, inline.1, "{writer:?}");
            assert_eq!(worker.2, inline.2, "{writer:?}");
        }
    }

    /// Once a write fails, nothing submitted before the node acknowledges
    /// it is performed: the append behind the failed one would otherwise
    /// leave a hole (or continue a log the node no longer has).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_queued_behind_a_failed_write_is_performed_in_any_mode() {
        for (never_blocks, writer) in
            [(true, LogWriter::Auto), (false, LogWriter::Auto), (true, LogWriter::Task)]
        {
            let store = Arc::new(VecStore { logs: Mutex::default(), never_blocks, refuse_from: 4 });
            let log = Arc::new(LogCache::new(store.clone(), 16));
            let (events_tx, mut events_rx) = mpsc::channel(16);
            // One byte: no append is merged with another.
            let mut storage = Storage::start(log, events_tx, 1, writer).expect("start");
            for op in [append(1, 1..=3, 1), append(2, 4..=5, 1), append(3, 6..=7, 1)] {
                storage.submit(op).await.expect("submit");
            }
            let mut next_event = async || match storage.take_event() {
                Some(event) => event,
                None => tokio::time::timeout(Duration::from_secs(10), events_rx.recv())
                    .await
                    .expect("an event within 10 s")
                    .expect("event"),
            };
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(match next_event().await {
                    StorageReport::Durable { seq, .. } => format!("durable {seq}"),
                    StorageReport::Failed { seq, error } => format!("failed {seq}: {error}"),
                });
            }
            assert_eq!(seen[..2], ["durable 1".to_string(), "failed 2: store is full: refused".to_string()]);
            assert_eq!(
                seen[2],
                format!("failed 3: {}", StoreError::NotAttempted),
                "{writer:?}, never blocks: {never_blocks}"
            );
            let indexes: Vec<u64> = store.logs.lock().expect("lock").iter().map(|l| l.index).collect();
            assert_eq!(indexes, [1, 2, 3], "{writer:?}, never blocks: {never_blocks}");
            // Acknowledged: writes are performed again.
            storage.acknowledge_failures();
            storage.submit(StorageOp::TruncateThrough { seq: 4, index: 1 }).await.expect("submit");
            let deadline = Instant::now() + Duration::from_secs(10);
            while storage.progress().borrow().completed_seq < 4 {
                assert!(Instant::now() < deadline, "the truncation was not performed");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let indexes: Vec<u64> = store.logs.lock().expect("lock").iter().map(|l| l.index).collect();
            assert_eq!(indexes, [2, 3], "{writer:?}, never blocks: {never_blocks}");
            assert_eq!(storage.progress().borrow().failures, 2);
            storage.stop().await;
        }
    }
}
