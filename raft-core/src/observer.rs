//! [`Observation`]s: what a node tells its subscribers about itself.

use crate::{RaftState, Server, ServerAddress, ServerId};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Something that happened on a node, delivered to every
/// [`Raft::subscribe`](crate::Raft::subscribe)r.
///
/// Observations go through a bounded broadcast channel: a subscriber that
/// falls behind misses the oldest ones (it sees `RecvError::Lagged`) and never
/// slows the node down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// The node's role changed.
    StateChanged(RaftState),
    /// The node learned of a new leader, or lost track of any.
    LeaderChanged {
        /// The new leader's id and address, if one is known.
        leader: Option<(ServerId, ServerAddress)>,
        /// The term.
        term: u64,
    },
    /// A leader failed to reach a follower with a heartbeat.
    PeerHeartbeatFailed {
        /// The follower.
        peer: ServerId,
        /// How long since the follower last answered.
        last_contact: Option<Duration>,
    },
    /// A follower answers heartbeats again after failing.
    PeerHeartbeatResumed {
        /// The follower.
        peer: ServerId,
    },
    /// This leader started replicating to a peer (when it took over, or when
    /// the peer joined the configuration), or stopped (a removed peer, once
    /// the short grace in which it still gets entries is over).
    PeerChanged {
        /// The peer.
        peer: Server,
        /// Whether replication to it stopped.
        removed: bool,
    },
    /// The node received a vote request.
    RequestVote {
        /// The candidate.
        candidate: ServerId,
        /// The candidate's term.
        term: u64,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// The node's latest configuration changed (it takes effect when appended).
    ConfigurationChanged {
        /// The index of the entry carrying it.
        index: u64,
        /// The new configuration.
        configuration: crate::Configuration,
    },
    /// This leader started handing leadership to `target`.
    LeadershipTransferStarted {
        /// The server taking over.
        target: ServerId,
    },
    /// A leadership transfer did not complete in time; this leader resumed.
    LeadershipTransferFailed {
        /// The server that was to take over.
        target: ServerId,
    },
    /// Taking a snapshot failed; the node goes on serving from its log.
    SnapshotFailed {
        /// What went wrong.
        reason: String,
    },
    /// A leader stepped down because its log store stalled.
    LogStoreStalled {
        /// How long the write had been running.
        stalled_for: Duration,
    },
}

/// A subscription that yields only the [`Observation`]s its filter accepts
/// (hashicorp/raft's `FilterFn`), from [`Raft::subscribe_filtered`](crate::Raft::subscribe_filtered).
///
/// Like [`Raft::subscribe`](crate::Raft::subscribe) it never slows the node
/// down: the filter runs on the subscriber's task, and a subscriber that falls
/// behind sees [`RecvError::Lagged`].
pub struct Observer {
    rx: broadcast::Receiver<Observation>,
    filter: Box<dyn Fn(&Observation) -> bool + Send + Sync>,
}

impl Observer {
    pub(crate) fn new(
        rx: broadcast::Receiver<Observation>,
        filter: impl Fn(&Observation) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self { rx, filter: Box::new(filter) }
    }

    /// The next observation the filter accepts; waits for one.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once the node has shut down, and
    /// [`RecvError::Lagged`] when observations were missed (the count
    /// includes ones the filter would have dropped).
    pub async fn recv(&mut self) -> Result<Observation, RecvError> {
        loop {
            let observation = self.rx.recv().await?;
            if (self.filter)(&observation) {
                return Ok(observation);
            }
        }
    }

    /// The next accepted observation that is already there, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when there is none yet, otherwise as
    /// [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Observation, TryRecvError> {
        loop {
            let observation = self.rx.try_recv()?;
            if (self.filter)(&observation) {
                return Ok(observation);
            }
        }
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").field("queued", &self.rx.len()).finish_non_exhaustive()
    }
}
