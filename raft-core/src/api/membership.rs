//! The membership and leadership-transfer calls of [`Raft`].

use super::Raft;
use crate::error::RaftError;
use crate::raft::Request;
use crate::{ConfigurationChange, Fsm, ServerAddress, ServerId};
use std::time::Duration;

impl<F: Fsm> Raft<F> {
    async fn change(
        &self,
        change: ConfigurationChange,
        prev_index: u64,
        timeout: Duration,
    ) -> Result<u64, RaftError> {
        // The leader gives up at `timeout` and answers `Timeout` itself, so
        // that a caller who sees `Timeout` knows the change was abandoned;
        // the grace here only covers a node too stuck to answer at all.
        // A zero timeout (no deadline) stays zero.
        let grace = if timeout.is_zero() { timeout } else { timeout + Duration::from_secs(1) };
        self.request(|reply| Request::ChangeConfiguration { change, prev_index, timeout, reply }, Some(grace))
            .await
    }

    /// Adds a server as a voter, or promotes a non-voter, on the leader.
    /// Returns the index of the configuration entry once it commits.
    ///
    /// A server new to the cluster first joins as a non-voter and is
    /// promoted only once it has caught up with the leader's log (by entries
    /// or by a snapshot), so adding a fresh node never stalls commits. With
    /// `prev_index` non-zero the change happens only if the latest
    /// configuration is still the one at that index
    /// ([`RaftError::ConfigurationChanged`] otherwise). One change at a time:
    /// while another is under way or uncommitted the call fails with
    /// [`RaftError::ConfigurationChangeInProgress`]. On a new leader, which
    /// may not change the configuration before it has committed an entry of
    /// its own term, the call waits for that (as in hashicorp/raft). If the change cannot
    /// complete within `timeout` the leader abandons it and the call fails
    /// with [`RaftError::Timeout`] (a new server may stay as a non-voter);
    /// with a zero `timeout` it never gives up.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// let (leader, newcomer) = (&nodes[0], &nodes[1]);
    /// let index = leader
    ///     .add_voter(newcomer.id().clone(), newcomer.local_addr().clone(), 0, Duration::from_secs(5))
    ///     .await?;
    /// assert!(leader.get_configuration().1.is_voter(newcomer.id()));
    /// # assert!(index > 1);
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn add_voter(
        &self,
        id: ServerId,
        address: ServerAddress,
        prev_index: u64,
        timeout: Duration,
    ) -> Result<u64, RaftError> {
        self.change(ConfigurationChange::AddVoter { id, address }, prev_index, timeout).await
    }

    /// Adds a server that receives the log but neither votes nor counts
    /// toward commits (a read replica, or a voter-to-be). A member keeps its
    /// suffrage and gets the new address. Arguments and errors as for
    /// [`add_voter`](Self::add_voter).
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// let replica = &nodes[1];
    /// nodes[0].add_nonvoter(replica.id().clone(), replica.local_addr().clone(), 0, Duration::from_secs(5)).await?;
    /// let (_, configuration) = nodes[0].get_configuration();
    /// assert!(configuration.server(replica.id()).is_some() && !configuration.is_voter(replica.id()));
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn add_nonvoter(
        &self,
        id: ServerId,
        address: ServerAddress,
        prev_index: u64,
        timeout: Duration,
    ) -> Result<u64, RaftError> {
        self.change(ConfigurationChange::AddNonvoter { id, address }, prev_index, timeout).await
    }

    /// Makes a voter a non-voter; it keeps receiving the log. Arguments and
    /// errors as for [`add_voter`](Self::add_voter). Demoting a server that
    /// is not a member is not an error: as with
    /// [`remove_server`](Self::remove_server), an unchanged configuration is
    /// written.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// let (leader, other) = (&nodes[0], &nodes[1]);
    /// let timeout = Duration::from_secs(5);
    /// leader.add_voter(other.id().clone(), other.local_addr().clone(), 0, timeout).await?;
    /// leader.demote_voter(other.id().clone(), 0, timeout).await?;
    /// assert!(!leader.get_configuration().1.is_voter(other.id()));
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn demote_voter(
        &self,
        id: ServerId,
        prev_index: u64,
        timeout: Duration,
    ) -> Result<u64, RaftError> {
        self.change(ConfigurationChange::DemoteVoter { id }, prev_index, timeout).await
    }

    /// Removes a server. Removing the leader itself is allowed: it commits
    /// the change without counting itself, then steps down. A removed node
    /// shuts itself down when `shutdown_on_remove` is set. Arguments and
    /// errors as for [`add_voter`](Self::add_voter).
    ///
    /// Removing a server that is not a member is not an error, so a removal
    /// retried after a [`RaftError::Timeout`] succeeds: as in hashicorp/raft,
    /// the leader writes a configuration entry identical to the latest and
    /// returns its index once it commits.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// let (leader, other) = (&nodes[0], &nodes[1]);
    /// let timeout = Duration::from_secs(5);
    /// leader.add_nonvoter(other.id().clone(), other.local_addr().clone(), 0, timeout).await?;
    /// let (index, _) = leader.get_configuration();
    /// leader.remove_server(other.id().clone(), index, timeout).await?;
    /// assert!(leader.get_configuration().1.server(other.id()).is_none());
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn remove_server(
        &self,
        id: ServerId,
        prev_index: u64,
        timeout: Duration,
    ) -> Result<u64, RaftError> {
        self.change(ConfigurationChange::RemoveServer { id }, prev_index, timeout).await
    }

    /// Hands leadership to the most up-to-date other voter: the leader stops
    /// accepting commands ([`RaftError::LeadershipTransferInProgress`]),
    /// brings the target fully up to date, and tells it to campaign at once.
    /// Returns once this node has stepped down. If no new leader is elected
    /// within four election timeouts this node resumes leading and the call
    /// fails with [`RaftError::Timeout`]. Other errors:
    /// [`RaftError::NotLeader`], [`RaftError::NoTransferTarget`],
    /// [`RaftError::LeadershipTransferInProgress`].
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// let other = &nodes[1];
    /// nodes[0].add_voter(other.id().clone(), other.local_addr().clone(), 0, Duration::from_secs(5)).await?;
    /// nodes[0].leadership_transfer().await?;
    /// assert!(!nodes[0].is_leader());
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn leadership_transfer(&self) -> Result<(), RaftError> {
        self.request(|reply| Request::TransferLeadership { target: None, reply }, None).await
    }

    /// As [`leadership_transfer`](Self::leadership_transfer), to the voter
    /// `id` reached at `address`; [`RaftError::NotVoter`] if it is not a
    /// voter, [`RaftError::TransferToSelf`] if it is this leader.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), raft_core::RaftError> {
    /// let nodes = raft_conformance::cluster::example_cluster(2).await;
    /// let other = &nodes[1];
    /// nodes[0].add_voter(other.id().clone(), other.local_addr().clone(), 0, Duration::from_secs(5)).await?;
    /// nodes[0].leadership_transfer_to_server(other.id().clone(), other.local_addr().clone()).await?;
    /// # let deadline = std::time::Instant::now() + Duration::from_secs(5);
    /// # while !other.is_leader() && std::time::Instant::now() < deadline { tokio::time::sleep(Duration::from_millis(5)).await; }
    /// assert!(other.is_leader());
    /// # for node in &nodes { node.shutdown().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn leadership_transfer_to_server(
        &self,
        id: ServerId,
        address: ServerAddress,
    ) -> Result<(), RaftError> {
        self.request(|reply| Request::TransferLeadership { target: Some((id, address)), reply }, None).await
    }
}
