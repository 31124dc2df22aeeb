//! [`RaftState`] and the state a node shares with its handles.

use crate::{Configuration, ServerAddress, ServerId};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::time::Instant as TokioInstant;

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RaftState {
    /// Follows a leader's log.
    Follower,
    /// Campaigns to become leader.
    Candidate,
    /// Accepts commands and replicates them.
    Leader,
    /// Shut down.
    Shutdown,
}

impl RaftState {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => RaftState::Follower,
            1 => RaftState::Candidate,
            2 => RaftState::Leader,
            _ => RaftState::Shutdown,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            RaftState::Follower => 0,
            RaftState::Candidate => 1,
            RaftState::Leader => 2,
            RaftState::Shutdown => 3,
        }
    }
}

/// A point-in-time view of a node, from [`Raft::stats`](crate::Raft::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The node's role.
    pub state: RaftState,
    /// The current term.
    pub term: u64,
    /// The last index in the log (written or being written).
    pub last_log_index: u64,
    /// The term of that entry.
    pub last_log_term: u64,
    /// The highest index known committed.
    pub commit_index: u64,
    /// The highest index applied to the FSM.
    pub applied_index: u64,
    /// The index of the newest snapshot, 0 when none.
    pub last_snapshot_index: u64,
    /// The known leader.
    pub leader: Option<(ServerId, ServerAddress)>,
    /// How long since a follower last heard from its leader (zero on a leader).
    pub last_contact: Option<Duration>,
    /// The latest configuration (possibly not yet committed).
    pub configuration: Configuration,
    /// The index of the entry carrying `configuration`.
    pub configuration_index: u64,
}

/// Values the node task publishes for handles to read without a round trip.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: AtomicU8,
    pub(crate) term: AtomicU64,
    pub(crate) last_log_index: AtomicU64,
    pub(crate) last_log_term: AtomicU64,
    pub(crate) commit_index: AtomicU64,
    pub(crate) applied_index: AtomicU64,
    pub(crate) last_snapshot_index: AtomicU64,
    pub(crate) leader: Mutex<Option<(ServerId, ServerAddress)>>,
    /// When a leader was last heard from, on tokio's clock (paused in simulations).
    pub(crate) last_contact: Mutex<Option<TokioInstant>>,
    pub(crate) configuration: Mutex<(u64, Configuration)>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn state(&self) -> RaftState {
        RaftState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: RaftState) {
        self.state.store(state.to_u8(), Ordering::Release);
    }

    pub(crate) fn leader(&self) -> Option<(ServerId, ServerAddress)> {
        lock(&self.leader).clone()
    }

    pub(crate) fn set_leader(&self, leader: Option<(ServerId, ServerAddress)>) {
        *lock(&self.leader) = leader;
    }

    pub(crate) fn touch_contact(&self) {
        *lock(&self.last_contact) = Some(TokioInstant::now());
    }

    pub(crate) fn last_contact(&self) -> Option<Instant> {
        lock(&self.last_contact).map(TokioInstant::into_std)
    }

    pub(crate) fn set_configuration(&self, index: u64, configuration: Configuration) {
        *lock(&self.configuration) = (index, configuration);
    }

    pub(crate) fn configuration(&self) -> (u64, Configuration) {
        lock(&self.configuration).clone()
    }

    pub(crate) fn stats(&self) -> Stats {
        let state = self.state();
        let (configuration_index, configuration) = self.configuration();
        let last_contact = match state {
            RaftState::Leader => Some(Duration::ZERO),
            _ => lock(&self.last_contact).map(|at| at.elapsed()),
        };
        Stats {
            state,
            term: self.term.load(Ordering::Acquire),
            last_log_index: self.last_log_index.load(Ordering::Acquire),
            last_log_term: self.last_log_term.load(Ordering::Acquire),
            commit_index: self.commit_index.load(Ordering::Acquire),
            applied_index: self.applied_index.load(Ordering::Acquire),
            last_snapshot_index: self.last_snapshot_index.load(Ordering::Acquire),
            leader: self.leader(),
            last_contact,
            configuration,
            configuration_index,
        }
    }
}
