//! The read-only side of [`Raft`]: its role, leader, indexes and
//! configuration, and subscriptions to what it observes. None of these
//! calls waits for the node.

use super::Raft;
use crate::observer::Observation;
use crate::state::{RaftState, Stats, Status};
use crate::{Configuration, Fsm, ServerAddress, ServerId};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::broadcast;

impl<F: Fsm> Raft<F> {
    /// This node's role.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::RaftState;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// assert_eq!(raft.state(), RaftState::Leader);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> RaftState {
        self.inner.shared.state()
    }

    /// Whether this node is the leader.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// assert!(raft.is_leader());
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn is_leader(&self) -> bool {
        self.state() == RaftState::Leader
    }

    /// The leader this node knows of.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// assert_eq!(raft.leader(), Some((raft.id().clone(), raft.local_addr().clone())));
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn leader(&self) -> Option<(ServerId, ServerAddress)> {
        self.inner.shared.leader()
    }

    /// This node's id.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// assert_eq!(raft.id().as_str(), "node-0");
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &ServerId {
        &self.inner.id
    }

    /// This node's address.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// assert_eq!(raft.local_addr().as_str(), "inmem-0");
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> &ServerAddress {
        &self.inner.addr
    }

    /// A view of who leads, in which term, and this node's role, that
    /// changes as they do: `changed().await` wakes on each change (several
    /// quick changes may show as one, the latest). A node that has shut
    /// down shows [`RaftState::Shutdown`].
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let mut status = raft.watch_status();
    /// let now = status.borrow_and_update().clone();
    /// assert_eq!(now.state, raft_core::RaftState::Leader);
    /// assert_eq!(now.leader.map(|(id, _)| id), Some(raft.id().clone()));
    /// raft.shutdown().await?;
    /// status.changed().await.expect("the shutdown shows");
    /// assert_eq!(status.borrow().state, raft_core::RaftState::Shutdown);
    /// # Ok(()) }
    /// ```
    pub fn watch_status(&self) -> tokio::sync::watch::Receiver<Status> {
        self.inner.shared.watch_status()
    }

    /// A snapshot of this node's state and indexes.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let stats = raft.stats();
    /// assert_eq!(stats.state, raft_core::RaftState::Leader);
    /// assert!(stats.commit_index <= stats.last_log_index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.shared.stats()
    }

    /// When this node last heard from a leader (a follower), or `None` if never.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// # let raft = &nodes[0];
    /// // A follower that has heard from a leader knows when.
    /// let follower = &nodes[1];
    /// raft.add_voter(follower.id().clone(), follower.local_addr().clone(), 0, Duration::from_secs(5)).await?;
    /// assert!(follower.last_contact().is_some());
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn last_contact(&self) -> Option<Instant> {
        self.inner.shared.last_contact()
    }

    /// The current term.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// assert!(raft.current_term() >= 1);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn current_term(&self) -> u64 {
        self.inner.shared.term.load(Ordering::Acquire)
    }

    /// The highest index applied to the FSM.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let applied = raft.apply("a", Duration::from_secs(1)).await?;
    /// assert!(raft.applied_index() >= applied.index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn applied_index(&self) -> u64 {
        self.inner.shared.applied_index.load(Ordering::Acquire)
    }

    /// The highest index known committed.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let applied = raft.apply("a", Duration::from_secs(1)).await?;
    /// assert!(raft.commit_index() >= applied.index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn commit_index(&self) -> u64 {
        self.inner.shared.commit_index.load(Ordering::Acquire)
    }

    /// The last index in the log.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let applied = raft.apply("a", Duration::from_secs(1)).await?;
    /// assert!(raft.last_index() >= applied.index);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn last_index(&self) -> u64 {
        self.inner.shared.last_log_index.load(Ordering::Acquire)
    }

    /// The latest configuration (in effect even before it commits) and the
    /// index of the entry that carries it.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(1).await;
    /// # let raft = &nodes[0];
    /// let (index, configuration) = raft.get_configuration();
    /// assert!(index >= 1);
    /// assert!(configuration.is_voter(raft.id()));
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn get_configuration(&self) -> (u64, Configuration) {
        self.inner.shared.configuration()
    }

    /// Subscribes to this node's [`Observation`]s.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::Observation;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// # let raft = &nodes[0];
    /// let mut events = raft.subscribe();
    /// let other = &nodes[1];
    /// raft.add_nonvoter(other.id().clone(), other.local_addr().clone(), 0, Duration::from_secs(5)).await?;
    /// let mut seen = false;
    /// while let Ok(event) = events.try_recv() {
    ///     seen |= matches!(event, Observation::ConfigurationChanged { .. });
    /// }
    /// assert!(seen);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> broadcast::Receiver<Observation> {
        self.inner.observers.subscribe()
    }

    /// Like [`subscribe`](Self::subscribe), but yields only the observations
    /// `filter` accepts.
    ///
    /// A peer that stays unreachable is reported on its 1st, 2nd, 4th, 8th,
    /// … failed heartbeat, not on every one, so even an unfiltered
    /// subscriber is not flooded by a dead peer.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use raft_core::Observation;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// # let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// # let raft = &nodes[0];
    /// let mut changes = raft.subscribe_filtered(|o| matches!(o, Observation::ConfigurationChanged { .. }));
    /// let other = &nodes[1];
    /// raft.add_nonvoter(other.id().clone(), other.local_addr().clone(), 0, Duration::from_secs(5)).await?;
    /// let change = changes.recv().await.expect("a configuration change");
    /// assert!(matches!(change, Observation::ConfigurationChanged { .. }));
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub fn subscribe_filtered(
        &self,
        filter: impl Fn(&Observation) -> bool + Send + Sync + 'static,
    ) -> crate::observer::Observer {
        crate::observer::Observer::new(self.inner.observers.subscribe(), filter)
    }
}
