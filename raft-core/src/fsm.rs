//! The user's replicated state machine: [`Fsm`] and [`FsmSnapshot`].

use crate::Log;
use crate::snapshot::SnapshotReader;
use std::io::Write;

/// Why the FSM could not snapshot or restore. Its message includes its
/// cause's, which is why it does not also return the cause as its source.
#[derive(Debug, thiserror::Error)]
#[error("state machine failed: {cause}")]
pub struct FsmError {
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl FsmError {
    /// Wraps any error (or a message) as an `FsmError`.
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { cause: cause.into() }
    }

    /// What the state machine said.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.cause
    }
}

impl From<std::io::Error> for FsmError {
    fn from(error: std::io::Error) -> Self {
        Self::new(error)
    }
}

/// The state machine Raft replicates.
///
/// The core applies committed [`LogKind::Command`](crate::LogKind::Command)
/// entries in index order, each exactly once, from one thread at a time
/// (a thread of the FSM's own, or a task: see
/// [`never_blocks`](Self::never_blocks)); other kinds are the protocol's own
/// and never reach the FSM.
pub trait Fsm: Send + 'static {
    /// What applying a command returns to the caller of
    /// [`Raft::apply`](crate::Raft::apply).
    type Response: Send + 'static;

    /// Applies one committed command.
    fn apply(&mut self, log: &Log) -> Self::Response;

    /// Applies a batch of committed commands, in order, returning one response
    /// per entry. The default calls [`apply`](Self::apply) for each.
    fn apply_batch(&mut self, logs: &[Log]) -> Vec<Self::Response> {
        logs.iter().map(|log| self.apply(log)).collect()
    }

    /// Captures the current state, quickly: the returned value is persisted
    /// on another thread while further commands are applied.
    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError>;

    /// Replaces the whole state with a snapshot's: one this node's store
    /// holds (on start), one installed from the leader, or a user's backup
    /// where its restore entries commit ([`Raft::restore`](crate::Raft::restore);
    /// the state then stands at the index of the restore's last entry, and
    /// the entries after it follow).
    fn restore(&mut self, snapshot: SnapshotReader) -> Result<(), FsmError>;

    /// Whether [`apply`](Self::apply), [`apply_batch`](Self::apply_batch) and
    /// [`snapshot`](Self::snapshot) always return within microseconds, never
    /// waiting on a disk, a network or a lock held for long: an in-memory
    /// map, a counter.
    ///
    /// By default (`false`) the FSM runs on a thread of its own, so a slow
    /// `apply` never holds up the async runtime the node's tasks run on.
    /// An FSM that answers `true` runs as a task on that runtime instead,
    /// which saves two thread hand-offs per commit (three nodes in memory,
    /// one client: median latency 36 µs on a thread, 19 µs as a task). Its
    /// [`restore`](Self::restore), and log reads that miss the in-memory
    /// cache, still run outside the runtime's scheduling through
    /// `tokio::task::block_in_place` on a multi-threaded runtime (on a
    /// current-thread runtime they run in place).
    ///
    /// The answer is read once, when the node starts.
    fn never_blocks(&self) -> bool {
        false
    }
}

/// A point-in-time capture of the FSM's state, written out by the core.
pub trait FsmSnapshot: Send + 'static {
    /// Writes the state to `sink`. An error abandons the snapshot.
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError>;

    /// Called once the snapshot is written or abandoned.
    fn release(&mut self) {}
}

pub(crate) mod restore;
pub(crate) mod runner;
