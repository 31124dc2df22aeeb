//! A log entry: its index, term, kind and bytes.

use bytes::Bytes;

/// What a log entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogKind {
    /// A command for the user's [`Fsm`](crate::Fsm).
    Command,
    /// Appended by a new leader to commit entries of earlier terms; not applied.
    Noop,
    /// Makes sure every earlier entry is applied; not given to the FSM.
    Barrier,
    /// A new cluster [`Configuration`](crate::Configuration), encoded by the codec.
    Configuration,
    /// A piece of a user's restore ([`Raft::restore`](crate::Raft::restore)):
    /// the pieces of one restore are consecutive entries, and when the last
    /// one applies, the FSM's state is replaced by their bytes. Not given to
    /// the FSM as a command.
    Restore,
}

impl LogKind {
    /// Every kind, in wire-tag order.
    pub const ALL: [LogKind; 5] =
        [LogKind::Command, LogKind::Noop, LogKind::Barrier, LogKind::Configuration, LogKind::Restore];
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Log {
    /// The 1-based position in the log.
    pub index: u64,
    /// The leader's term when the entry was created.
    pub term: u64,
    /// What the entry is for.
    pub kind: LogKind,
    /// The payload: a command, or an encoded configuration.
    pub data: Bytes,
    /// Opaque bytes for the application, replicated with the entry but never
    /// interpreted by raft-kit.
    pub extensions: Bytes,
}

impl Log {
    /// A command entry with no extensions.
    pub fn command(index: u64, term: u64, data: impl Into<Bytes>) -> Self {
        Self { index, term, kind: LogKind::Command, data: data.into(), extensions: Bytes::new() }
    }

    /// The bytes this entry's payload occupies, used for batching budgets.
    pub fn payload_size(&self) -> u64 {
        (self.data.len() + self.extensions.len()) as u64
    }
}
