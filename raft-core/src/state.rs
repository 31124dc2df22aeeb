//! [`RaftState`] and the state a node shares with its handles.

use crate::{Configuration, ServerAddress, ServerId};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::time::Instant as TokioInstant;

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration::option"))]
    pub last_contact: Option<Duration>,
    /// The latest configuration (possibly not yet committed).
    pub configuration: Configuration,
    /// The index of the entry carrying `configuration`.
    pub configuration_index: u64,
}

/// Who leads, in which term, and this node's role: what
/// [`Raft::watch_status`](crate::Raft::watch_status) shows, as
/// hashicorp/raft's `LeaderCh` and openraft's metrics watch do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Status {
    /// The node's role.
    pub state: RaftState,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of, if any.
    pub leader: Option<(ServerId, ServerAddress)>,
}

impl Default for Status {
    fn default() -> Self {
        Self { state: RaftState::Follower, term: 0, leader: None }
    }
}

/// The status channel (its own type so that `Shared` can default).
#[derive(Debug)]
pub(crate) struct StatusCell(tokio::sync::watch::Sender<Status>);

impl Default for StatusCell {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(Status::default()))
    }
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
    status: StatusCell,
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
        self.status.0.send_if_modified(|status| std::mem::replace(&mut status.state, state) != state);
    }

    pub(crate) fn set_term(&self, term: u64) {
        self.term.store(term, Ordering::Release);
        self.status.0.send_if_modified(|status| std::mem::replace(&mut status.term, term) != term);
    }

    /// A receiver of every change of role, term or leader.
    pub(crate) fn watch_status(&self) -> tokio::sync::watch::Receiver<Status> {
        self.status.0.subscribe()
    }

    pub(crate) fn leader(&self) -> Option<(ServerId, ServerAddress)> {
        lock(&self.leader).clone()
    }

    pub(crate) fn set_leader(&self, leader: Option<(ServerId, ServerAddress)>) {
        *lock(&self.leader) = leader.clone();
        self.status.0.send_if_modified(|status| {
            let changed = status.leader != leader;
            status.leader = leader;
            changed
        });
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
