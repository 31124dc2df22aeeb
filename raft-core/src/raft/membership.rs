//! Membership changes and leadership transfer, on the leader.
//!
//! Changes go one server at a time, as configuration entries that take
//! effect when appended. A new voter first joins as a non-voter and is
//! promoted once it has caught up, so adding a fresh node never stalls
//! commits. A transfer brings the target up to date, then tells it to
//! campaign at once (TimeoutNow); commands are refused meanwhile.

use super::{Node, Request};
use crate::error::RaftError;
use crate::observer::Observation;
use crate::protocol::membership::{self, ChangePlan};
use crate::state::RaftState;
use crate::{
    Configuration, ConfigurationChange, Fsm, LogKind, Server, ServerAddress, ServerId, TimeoutNowRequest,
};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long a removed server keeps getting entries, so it learns that its
/// removal committed.
const REMOVED_GRACE: Duration = Duration::from_millis(500);

/// A membership change under way on the leader.
pub(crate) struct PendingChange {
    change: ConfigurationChange,
    reply: oneshot::Sender<Result<u64, RaftError>>,
    /// When to give up; `None` never.
    deadline: Option<Instant>,
    stage: Stage,
}

enum Stage {
    /// A new voter, added as a non-voter, must reach `target` before promotion.
    CatchUp { target: u64 },
    /// The configuration entry at `index` must commit.
    Commit { index: u64 },
}

/// A membership request that arrived before this leader's configuration was
/// stable; started once it is.
pub(crate) struct DeferredChange {
    change: ConfigurationChange,
    prev_index: u64,
    /// When to give up; `None` never.
    deadline: Option<Instant>,
    reply: oneshot::Sender<Result<u64, RaftError>>,
}

/// How many membership requests may wait for a new leader's configuration
/// to become stable; more are refused as `ConfigurationChangeInProgress`.
const DEFERRED_CHANGES_MAX: usize = 64;

/// A leadership transfer under way.
pub(crate) struct Transfer {
    target: Server,
    deadline: Instant,
    reply: oneshot::Sender<Result<(), RaftError>>,
    timeout_now_sent: bool,
}

impl<F: Fsm> Node<F> {
    /// Whether this leader may start a configuration change: the latest
    /// configuration is committed, and so is an entry of this leader's own
    /// term (without which a single-server change can lose a committed
    /// configuration; Ongaro, raft-dev, 2015).
    fn configuration_stable(&self) -> bool {
        let start_index = self.core.leadership.as_ref().map_or(u64::MAX, |leadership| leadership.start_index);
        membership::configuration_stable(&self.core.configurations, self.core.commit_index, start_index)
    }

    /// Handles a membership request on the leader. One that arrives while
    /// no change is under way but the configuration is not yet stable (a
    /// new leader) waits until it is, as in hashicorp/raft.
    pub(super) async fn start_change(
        &mut self,
        change: ConfigurationChange,
        prev_index: u64,
        timeout: Duration,
        reply: oneshot::Sender<Result<u64, RaftError>>,
    ) {
        let stable = self.configuration_stable();
        let Some(state) = self.leader_state.as_mut() else { return };
        let busy = membership::Busy { transfer: state.transfer.is_some(), change: state.change.is_some() };
        let configurations = &self.core.configurations;
        let plan = match membership::plan_change(
            configurations,
            self.core.commit_index,
            stable,
            busy,
            &change,
            prev_index,
        ) {
            Ok(plan) => plan,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
        let stage = match plan {
            ChangePlan::Defer => {
                if state.deferred.len() < DEFERRED_CHANGES_MAX {
                    state.deferred.push_back(DeferredChange { change, prev_index, deadline, reply });
                } else {
                    let _ = reply.send(Err(RaftError::ConfigurationChangeInProgress));
                }
                return;
            }
            ChangePlan::CatchUp { staging } => {
                if let Some(staging) = staging {
                    self.append_configuration(staging).await;
                }
                Stage::CatchUp { target: self.core.last_index }
            }
            ChangePlan::Commit { next } => Stage::Commit { index: self.append_configuration(next).await },
        };
        if let Some(state) = self.leader_state.as_mut() {
            state.change = Some(PendingChange { change, reply, deadline, stage });
        }
        self.advance_change().await;
    }

    /// Appends `configuration` as the latest, starts replicating to new
    /// members and recounts the quorum. Returns the entry's index.
    pub(super) async fn append_configuration(&mut self, configuration: Configuration) -> u64 {
        let data = crate::codec::configuration_to_bytes(&configuration);
        self.dispatch(vec![(LogKind::Configuration, data, Bytes::new(), None)]).await;
        let index = self.core.last_index;
        self.set_latest_configuration(index, configuration);
        self.sync_peers().await;
        index
    }

    /// Makes replication and the quorum follow the latest configuration.
    pub(super) async fn sync_peers(&mut self) {
        let latest = self.core.configurations.latest.clone();
        let (Some(state), Some(leadership)) = (self.leader_state.as_mut(), self.core.leadership.as_mut())
        else {
            return;
        };
        leadership.commitment.set_voters(latest.voters().map(|s| s.id.clone()));
        let stop_at = Instant::now() + REMOVED_GRACE;
        for id in state.peers.keys() {
            if latest.server(id).is_none() && !state.removed.iter().any(|(r, _)| r == id) {
                state.removed.push((id.clone(), stop_at));
            }
        }
        state.removed.retain(|(id, _)| latest.server(id).is_none());
        let new: Vec<Server> = latest
            .servers
            .iter()
            .filter(|s| s.id != self.id && !state.peers.contains_key(&s.id))
            .cloned()
            .collect();
        for server in new {
            self.start_peer(server);
        }
        let commit = self.core.leadership.as_mut().and_then(|leadership| leadership.commitment.recalculate());
        if let Some(commit) = commit {
            self.advance_commit(commit).await;
        }
    }

    /// Moves membership work on: the change under way, then a deferred one
    /// once the configuration is stable.
    pub(super) async fn advance_membership(&mut self) {
        self.advance_change().await;
        self.start_deferred_change().await;
    }

    /// Starts the oldest deferred request once nothing is under way and the
    /// configuration is stable; answers those past their deadline.
    async fn start_deferred_change(&mut self) {
        let stable = self.configuration_stable();
        let Some(state) = self.leader_state.as_mut() else { return };
        let now = Instant::now();
        let (expired, waiting): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut state.deferred)
            .into_iter()
            .partition(|d| d.deadline.is_some_and(|at| now > at));
        state.deferred = waiting;
        for deferred in expired {
            let _ = deferred.reply.send(Err(RaftError::Timeout));
        }
        if !stable || state.change.is_some() || state.transfer.is_some() {
            return;
        }
        if let Some(next) = state.deferred.pop_front() {
            // What is left of its timeout (zero: none).
            let timeout = next
                .deadline
                .map_or(Duration::ZERO, |at| at.saturating_duration_since(now).max(Duration::from_millis(1)));
            self.start_change(next.change, next.prev_index, timeout, next.reply).await;
        }
    }

    /// Moves a pending change on: promotes a caught-up new voter, answers
    /// once the change commits, gives up at its deadline.
    async fn advance_change(&mut self) {
        let last_index = self.core.last_index;
        let commit_index = self.core.commit_index;
        let Some(state) = self.leader_state.as_mut() else { return };
        let Some(pending) = state.change.as_mut() else { return };
        if pending.deadline.is_some_and(|deadline| Instant::now() > deadline) {
            if let Some(pending) = state.change.take() {
                let _ = pending.reply.send(Err(RaftError::Timeout));
            }
            return;
        }
        match pending.stage {
            Stage::CatchUp { target } => {
                let matched = self.core.leadership.as_ref().map_or(0, |l| l.matched(pending.change.id()));
                if membership::caught_up(matched, target, last_index) {
                    let change = pending.change.clone();
                    match self.core.configurations.latest.apply_change(&change) {
                        Ok(next) => {
                            let index = self.append_configuration(next).await;
                            if let Some(pending) = self.leader_state.as_mut().and_then(|s| s.change.as_mut())
                            {
                                pending.stage = Stage::Commit { index };
                            }
                        }
                        Err(error) => {
                            if let Some(pending) = self.leader_state.as_mut().and_then(|s| s.change.take()) {
                                let _ = pending.reply.send(Err(error.into()));
                            }
                        }
                    }
                }
            }
            Stage::Commit { index } if commit_index >= index => {
                if let Some(pending) = state.change.take() {
                    let _ = pending.reply.send(Ok(index));
                }
            }
            Stage::Commit { .. } => {}
        }
    }

    /// Stops replicating to servers removed a while ago.
    pub(super) fn reap_removed_peers(&mut self) {
        let Some(state) = self.leader_state.as_mut() else { return };
        let now = Instant::now();
        let (due, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut state.removed).into_iter().partition(|(_, at)| *at <= now);
        state.removed = keep;
        for (id, _) in due {
            if let Some(tasks) = state.peers.remove(&id) {
                tasks.abort();
                let _ =
                    self.observers.send(Observation::PeerChanged { peer: tasks.peer.clone(), removed: true });
            }
        }
    }

    /// Starts handing leadership to `target`, or to the most up-to-date voter.
    pub(super) fn start_transfer(
        &mut self,
        target: Option<(ServerId, ServerAddress)>,
        reply: oneshot::Sender<Result<(), RaftError>>,
    ) {
        let timeout = self.config.election_timeout * 4;
        let target_given = target.clone();
        let Some(state) = self.leader_state.as_mut() else { return };
        if state.transfer.is_some() {
            let _ = reply.send(Err(RaftError::LeadershipTransferInProgress));
            return;
        }
        let voters: Vec<&Server> =
            self.core.configurations.latest.voters().filter(|s| s.id != self.id).collect();
        let chosen = match &target {
            Some((id, _)) if *id == self.id => Err(RaftError::TransferToSelf),
            Some((id, _)) => voters
                .iter()
                .find(|s| &s.id == id)
                .map(|s| (*s).clone())
                .ok_or(RaftError::NotVoter(id.clone())),
            None => voters
                .iter()
                .max_by_key(|s| self.core.leadership.as_ref().map_or(0, |l| l.matched(&s.id)))
                .map(|s| (*s).clone())
                .ok_or(RaftError::NoTransferTarget),
        };
        let mut target = match chosen {
            Ok(target) => target,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        if let Some((_, address)) = target_given {
            target.address = address;
        }
        tracing::info!(target = %target.id, "transferring leadership");
        let _ = self.observers.send(Observation::LeadershipTransferStarted { target: target.id.clone() });
        let deadline = Instant::now() + timeout;
        state.transfer = Some(Transfer { target, deadline, reply, timeout_now_sent: false });
        self.advance_transfer();
    }

    /// Sends TimeoutNow once the target holds the whole log; gives up at the deadline.
    pub(super) fn advance_transfer(&mut self) {
        let last_index = self.core.last_index;
        let term = self.core.current_term;
        let header = self.header();
        let Some(state) = self.leader_state.as_mut() else { return };
        let Some(transfer) = state.transfer.as_mut() else { return };
        if Instant::now() > transfer.deadline {
            if let Some(transfer) = state.transfer.take() {
                tracing::warn!(target = %transfer.target.id, "leadership transfer timed out; resuming");
                let _ =
                    self.observers.send(Observation::LeadershipTransferFailed { target: transfer.target.id });
                let _ = transfer.reply.send(Err(RaftError::Timeout));
            }
            return;
        }
        let matched = self.core.leadership.as_ref().map_or(0, |l| l.matched(&transfer.target.id));
        if !transfer.timeout_now_sent && matched >= last_index {
            transfer.timeout_now_sent = true;
            let transport = self.transport.clone();
            let address = transfer.target.address.clone();
            tokio::spawn(async move {
                if let Err(error) = transport.timeout_now(address, TimeoutNowRequest { header, term }).await {
                    tracing::warn!(%error, "TimeoutNow failed");
                }
            });
        }
    }

    /// Steps down or shuts down once a committed configuration leaves this node out.
    pub(super) fn check_removed(&mut self) {
        let committed = &self.core.configurations.committed;
        if committed.servers.is_empty() || committed.server(&self.id).is_some() {
            return;
        }
        // A later entry may undo the removal (the node was added back): a
        // node in its latest configuration is not removed, and a follower
        // catching up decides only once its log holds everything the leader
        // has committed.
        if self.core.configurations.latest.server(&self.id).is_some() {
            return;
        }
        if self.core.role != RaftState::Leader && self.core.commit_index < self.core.leader_commit {
            return;
        }
        if self.config.shutdown_on_remove {
            tracing::info!("removed from the cluster; shutting down");
            self.set_role(RaftState::Shutdown);
        } else if self.core.role == RaftState::Leader {
            tracing::info!("removed from the cluster; stepping down");
            self.set_role(RaftState::Follower);
        }
    }

    /// Refuses requests a leader cannot take during a transfer.
    pub(super) fn refuse_during_transfer(
        &self,
        request: Request<F::Response>,
    ) -> Option<Request<F::Response>> {
        let transferring = self.leader_state.as_ref().is_some_and(|s| s.transfer.is_some());
        match request {
            Request::Apply { reply, .. } | Request::Restore { reply, .. } if transferring => {
                let _ = reply.send(Err(RaftError::LeadershipTransferInProgress));
                None
            }
            other => Some(other),
        }
    }

    /// Answers what a leader had under way when its leadership ends.
    pub(super) fn end_membership_work(
        change: Option<PendingChange>,
        deferred: VecDeque<DeferredChange>,
        transfer: Option<Transfer>,
    ) {
        if let Some(change) = change {
            let _ = change.reply.send(Err(RaftError::LeadershipLost));
        }
        for deferred in deferred {
            let _ = deferred.reply.send(Err(RaftError::LeadershipLost));
        }
        if let Some(transfer) = transfer {
            let _ = transfer.reply.send(Ok(()));
        }
    }
}
