//! The user's replicated state machine: [`Fsm`] and [`FsmSnapshot`].

use crate::Log;
use crate::snapshot::SnapshotReader;
use std::io::Write;

/// Why the FSM could not snapshot or restore.
#[derive(Debug, thiserror::Error)]
#[error("state machine error: {source}")]
pub struct FsmError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl FsmError {
    /// Wraps any error (or a message) as an `FsmError`.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { source: source.into() }
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
/// entries in index order, each exactly once, from one task; other kinds are
/// the protocol's own and never reach the FSM.
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

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, snapshot: SnapshotReader) -> Result<(), FsmError>;
}

/// A point-in-time capture of the FSM's state, written out by the core.
pub trait FsmSnapshot: Send + 'static {
    /// Writes the state to `sink`. An error abandons the snapshot.
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError>;

    /// Called once the snapshot is written or abandoned.
    fn release(&mut self) {}
}

pub(crate) mod runner;
