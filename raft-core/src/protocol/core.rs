//! The protocol state of one node: what every decision reads and what the
//! node changes only by carrying a decision out.
//!
//! [`Core`] holds the term and vote, the role, the log's shape (its terms in
//! memory, its last entry, the snapshot it starts after), the commit index and
//! the configurations. It never touches a store, a clock or a channel: the
//! node (the executor) builds it from what recovery read
//! ([`Core::start`]), asks it for decisions (`decide_*`), performs their I/O,
//! and records the outcome back into it.

use super::append::FollowerLog;
use super::leader::Leadership;
use super::log_ids::LogIds;
use super::quorum::Majority;
use crate::state::RaftState;
use crate::{Configuration, ServerAddress, ServerId};
use std::time::{Duration, Instant};

/// The latest configuration (in effect as soon as appended) and the latest
/// committed one.
#[derive(Clone, Debug, Default)]
pub(crate) struct Configurations {
    pub(crate) latest: Configuration,
    pub(crate) latest_index: u64,
    pub(crate) committed: Configuration,
    pub(crate) committed_index: u64,
}

/// What recovery read from the stores: the core's starting state.
#[derive(Clone, Debug)]
pub(crate) struct Start {
    /// The node's own id.
    pub(crate) id: ServerId,
    /// The durable term and vote.
    pub(crate) term: u64,
    pub(crate) voted_for: Option<ServerId>,
    /// The log's last entry (the snapshot's when the log is empty).
    pub(crate) last_index: u64,
    pub(crate) last_term: u64,
    /// The last entry the newest snapshot covers.
    pub(crate) snapshot_index: u64,
    pub(crate) snapshot_term: u64,
    /// The highest index known committed.
    pub(crate) commit_index: u64,
    pub(crate) configurations: Configurations,
    /// The terms of the log the store holds.
    pub(crate) log_ids: LogIds,
}

/// One node's protocol state.
#[derive(Clone, Debug)]
pub(crate) struct Core {
    /// The node's own id.
    pub(crate) id: ServerId,
    pub(crate) role: RaftState,
    pub(crate) current_term: u64,
    pub(crate) voted_for: Option<ServerId>,
    /// The first index of each term in the log: log matching reads it,
    /// never the store.
    pub(crate) log_ids: LogIds,
    pub(crate) last_index: u64,
    pub(crate) last_term: u64,
    pub(crate) snapshot_index: u64,
    pub(crate) snapshot_term: u64,
    pub(crate) commit_index: u64,
    /// The highest commit index a leader has told this node: while its own
    /// is lower, later entries may change its membership again.
    pub(crate) leader_commit: u64,
    pub(crate) configurations: Configurations,
    /// A majority of the latest configuration's voters, kept beside it
    /// (rebuilt only by [`Core::set_latest_configuration`]).
    pub(crate) voters: Majority,
    /// The leader this node follows (itself when it leads).
    pub(crate) leader: Option<(ServerId, ServerAddress)>,
    /// When a leader was last heard from (a time the executor gave).
    pub(crate) last_leader_contact: Option<Instant>,
    /// Whether the FSM is being restored from a received snapshot; the log
    /// and commit index stay as they are until it is done.
    pub(crate) restoring: bool,
    /// What only a leader keeps: commitment, followers' progress,
    /// leadership checks. `Some` exactly while this node leads.
    pub(crate) leadership: Option<Leadership>,
}

impl Core {
    /// The state recovery read, as a follower that knows no leader yet.
    pub(crate) fn start(start: Start) -> Self {
        Self {
            id: start.id,
            role: RaftState::Follower,
            current_term: start.term,
            voted_for: start.voted_for,
            log_ids: start.log_ids,
            last_index: start.last_index,
            last_term: start.last_term,
            snapshot_index: start.snapshot_index,
            snapshot_term: start.snapshot_term,
            commit_index: start.commit_index,
            leader_commit: 0,
            voters: Majority::of(&start.configurations.latest),
            configurations: start.configurations,
            leader: None,
            last_leader_contact: None,
            restoring: false,
            leadership: None,
        }
    }

    /// Whether a leader other than `candidate` was heard from within
    /// `timeout` before `now`, so that an election would only disrupt it
    /// (Raft thesis §4.2.3). A leader counts itself alive.
    pub(crate) fn leader_is_alive(&self, candidate: &ServerId, now: Instant, timeout: Duration) -> bool {
        if self.role == RaftState::Leader {
            return &self.id != candidate;
        }
        let recent = self.last_leader_contact.is_some_and(|at| now.saturating_duration_since(at) < timeout);
        recent && self.leader.as_ref().is_some_and(|(id, _)| id != candidate)
    }

    /// The log as a follower's matching needs it.
    pub(crate) fn follower_log(&self) -> FollowerLog<'_> {
        FollowerLog {
            ids: &self.log_ids,
            last_index: self.last_index,
            snapshot_index: self.snapshot_index,
            snapshot_term: self.snapshot_term,
            commit_index: self.commit_index,
        }
    }

    /// Makes `configuration`, carried by the entry at `index`, the latest.
    pub(crate) fn set_latest_configuration(&mut self, index: u64, configuration: Configuration) {
        self.voters = Majority::of(&configuration);
        self.configurations.latest = configuration;
        self.configurations.latest_index = index;
    }

    /// Records that everything up to `index` is committed; the latest
    /// configuration becomes the committed one once its entry is.
    pub(crate) fn commit_to(&mut self, index: u64) {
        debug_assert!(index >= self.commit_index, "the commit index never goes back");
        self.commit_index = index;
        let configurations = &mut self.configurations;
        if configurations.latest_index <= index
            && configurations.committed_index != configurations.latest_index
        {
            configurations.committed = configurations.latest.clone();
            configurations.committed_index = configurations.latest_index;
        }
    }
}
