//! [`RaftError`]: what a call on a [`Raft`](crate::Raft) handle can fail with.

use crate::{
    ConfigError, ConfigurationError, FsmError, ServerAddress, ServerId, SnapshotError, StoreError,
    TransportError,
};

/// Why a call on a node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaftError {
    /// The node is not the leader. `leader` names the leader it knows of, if
    /// any, so the caller can retry there.
    #[error("not the leader (known leader: {leader:?})")]
    NotLeader {
        /// The known leader's id and address.
        leader: Option<(ServerId, ServerAddress)>,
    },
    /// The node lost leadership before the entry committed. The entry may
    /// still commit under the next leader; the caller cannot know, and must
    /// make retries idempotent or check.
    #[error("leadership lost while the command was in flight; it may still commit")]
    LeadershipLost,
    /// The call did not complete within its timeout. A command may still commit.
    #[error("timed out")]
    Timeout,
    /// The node is shut down.
    #[error("the node is shut down")]
    Shutdown,
    /// `bootstrap_cluster` was called on a node that already has state.
    #[error("the node already has state and cannot be bootstrapped")]
    CantBootstrap,
    /// `recover_cluster` was asked to recover stores that hold no state.
    #[error("the stores hold no state to recover")]
    NoExistingState,
    /// The node's stores do not fit together and starting would lose
    /// committed entries; nothing was changed. See [`RecoveryError`](crate::recovery::RecoveryError).
    #[error(transparent)]
    Recovery(#[from] crate::recovery::error::RecoveryError),
    /// A snapshot was asked for, but nothing was applied since the last one.
    #[error("nothing new to snapshot")]
    NothingNewToSnapshot,
    /// A snapshot ending at or below what the state machine has already
    /// applied was refused: restoring it would undo applied entries.
    #[error("refused a snapshot at index {index}: the state machine has applied through {applied}")]
    StaleSnapshot {
        /// The snapshot's last index.
        index: u64,
        /// The state machine's applied index.
        applied: u64,
    },
    /// A snapshot is already being taken.
    #[error("a snapshot is already in progress")]
    SnapshotInProgress,
    /// A configuration change is not yet committed, or one is being made;
    /// membership changes one server at a time.
    #[error("a configuration change is already in progress")]
    ConfigurationChangeInProgress,
    /// The `prev_index` given to a membership call is not the index of the
    /// latest configuration: someone else changed it first.
    #[error("the configuration changed: latest is at index {latest_index}, not {prev_index}")]
    ConfigurationChanged {
        /// The index the caller expected.
        prev_index: u64,
        /// The latest configuration's index.
        latest_index: u64,
    },
    /// The server named for a leadership transfer, or the node asked to
    /// bootstrap, is not a voter of the configuration in question.
    #[error("server {0} is not a voter")]
    NotVoter(ServerId),
    /// A leadership transfer found no other voter to hand over to.
    #[error("there is no other voter to transfer leadership to")]
    NoTransferTarget,
    /// A leadership transfer named the leader itself.
    #[error("cannot transfer leadership to itself")]
    TransferToSelf,
    /// A leadership transfer is in progress, so the leader accepts no commands.
    #[error("a leadership transfer is in progress")]
    LeadershipTransferInProgress,
    /// The configuration given is not valid.
    #[error("invalid configuration: {0}")]
    Configuration(ConfigurationError),
    /// The node's [`Config`](crate::Config) is not valid.
    #[error("invalid config: {0}")]
    Config(ConfigError),
    /// A log or stable store failed (its message says which and how).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The snapshot store failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The state machine failed to snapshot or restore.
    #[error(transparent)]
    Fsm(#[from] FsmError),
}

// The two that add their own words say their cause's message and do not
// also return it from `source()`, so that no report says it twice.
impl From<ConfigurationError> for RaftError {
    fn from(error: ConfigurationError) -> Self {
        RaftError::Configuration(error)
    }
}

impl From<ConfigError> for RaftError {
    fn from(error: ConfigError) -> Self {
        RaftError::Config(error)
    }
}
