//! The leader role: dispatching commands (group commit), replication,
//! commitment, leadership checks (read index, check-quorum, store stalls).

use super::{Event, Input, Node, Request, fail_request};
use crate::error::RaftError;
use crate::fsm::runner::ApplyReply;
use crate::observer::Observation;
use crate::protocol::leader::{Leadership, quorum_contact_age};
use crate::replication::{self, PeerContact, PeerTasks, Replication};
use crate::state::RaftState;
use crate::storage::StorageOp;
use crate::watch;
use crate::{Fsm, Log, LogKind, Server, ServerId};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A `verify_leader`/`read_index` call waiting for a quorum of heartbeats.
struct Verify {
    round: u64,
    read_index: u64,
    reply: oneshot::Sender<Result<u64, RaftError>>,
}

/// A command waiting to be appended.
type Pending<R> = (LogKind, Bytes, Bytes, Option<ApplyReply<R>>);

/// What only a leader's node keeps (its protocol state is the core's
/// [`Leadership`]).
pub(crate) struct LeaderState<R> {
    /// Futures of entries appended but not yet committed, in index order.
    pending: VecDeque<(u64, ApplyReply<R>)>,
    pub(super) peers: BTreeMap<ServerId, PeerTasks>,
    last_index_tx: watch::Sender<u64>,
    commit_tx: watch::Sender<u64>,
    verify_tx: watch::Sender<u64>,
    verifies: Vec<Verify>,
    /// Storage operations from this one on are this leadership's writes.
    first_seq: u64,
    /// A membership change under way.
    pub(super) change: Option<super::membership::PendingChange>,
    /// Membership requests waiting for this leader's configuration to be stable.
    pub(super) deferred: VecDeque<super::membership::DeferredChange>,
    /// A leadership transfer under way.
    pub(super) transfer: Option<super::membership::Transfer>,
    /// Removed servers still sent entries until the given time.
    pub(super) removed: Vec<(ServerId, Instant)>,
    /// When each dispatched batch (by its last index) was appended, for
    /// `raft.commit_time`.
    appended_at: VecDeque<(u64, Instant)>,
}

impl<F: Fsm> Node<F> {
    pub(super) async fn run_leader(&mut self) {
        self.set_leader(Some((self.id.clone(), self.addr.clone())));
        self.begin_leadership();
        self.dispatch(vec![(LogKind::Noop, Bytes::new(), Bytes::new(), None)]).await;
        let tick = (self.config.leader_lease_timeout / 5).max(Duration::from_millis(1));
        let mut next_check = Instant::now() + tick;
        while self.core.role == RaftState::Leader {
            match self.next_input(next_check).await {
                Input::Timer => {
                    next_check = Instant::now() + tick;
                    self.check_quorum_contact();
                    self.check_store_stall();
                    self.advance_membership().await;
                    self.advance_transfer();
                    self.reap_removed_peers();
                }
                input => self.handle(input).await,
            }
        }
        self.end_leadership().await;
    }

    fn begin_leadership(&mut self) {
        let voters = self.core.configurations.latest.voters().map(|s| s.id.clone());
        let start_index = self.core.last_index + 1;
        self.core.leadership = Some(Leadership::begin(voters, self.core.commit_index, start_index));
        let state = LeaderState {
            pending: VecDeque::new(),
            peers: BTreeMap::new(),
            last_index_tx: watch::channel(self.core.last_index).0,
            commit_tx: watch::channel(self.core.commit_index).0,
            verify_tx: watch::channel(0).0,
            verifies: Vec::new(),
            first_seq: self.next_seq + 1,
            change: None,
            deferred: VecDeque::new(),
            transfer: None,
            removed: Vec::new(),
            appended_at: VecDeque::new(),
        };
        self.leader_state = Some(state);
        let peers: Vec<Server> =
            self.core.configurations.latest.servers.iter().filter(|s| s.id != self.id).cloned().collect();
        for peer in peers {
            self.start_peer(peer);
        }
    }

    pub(super) fn start_peer(&mut self, peer: Server) {
        let Some(state) = self.leader_state.as_mut() else { return };
        let replication = Replication {
            peer: peer.clone(),
            term: self.core.current_term,
            header: crate::RpcHeader::new(self.id.clone(), self.addr.clone()),
            transport: self.transport.clone(),
            log: self.log.clone(),
            snapshots: self.snapshots.clone(),
            events: self.events_tx.clone(),
            observers: self.observers.clone(),
            last_index: state.last_index_tx.subscribe(),
            commit_index: state.commit_tx.subscribe(),
            verify_round: state.verify_tx.subscribe(),
            contact: Arc::new(PeerContact::new()),
            resume: Arc::new(tokio::sync::Notify::new()),
            max_append_entries: self.config.max_append_entries,
            max_inflight: self.config.max_inflight,
            commit_timeout: self.config.commit_timeout,
            heartbeat_interval: self.config.heartbeat_interval(),
            metrics: self.metrics.peer(peer.id.as_str()),
            heartbeat_timeout: self.config.heartbeat_timeout,
        };
        let tasks = replication::start(replication, self.core.last_index + 1);
        state.peers.insert(peer.id.clone(), tasks);
        let _ = self.observers.send(Observation::PeerChanged { peer, removed: false });
    }

    async fn end_leadership(&mut self) {
        self.core.leadership = None;
        let Some(state) = self.leader_state.take() else { return };
        for tasks in state.peers.values() {
            tasks.abort();
        }
        for tasks in state.peers.into_values() {
            tasks.join().await;
        }
        for (_, reply) in state.pending {
            let _ = reply.send(Err(RaftError::LeadershipLost));
        }
        for verify in state.verifies {
            let _ = verify.reply.send(Err(RaftError::LeadershipLost));
        }
        Self::end_membership_work(state.change, state.deferred, state.transfer);
        if self.core.leader.as_ref().is_some_and(|(id, _)| id == &self.id) {
            self.set_leader(None);
        }
    }

    /// Appends `entries` to this leader's log: the write goes to the storage
    /// worker while replication sends the same entries to followers.
    pub(super) async fn dispatch(&mut self, entries: Vec<Pending<F::Response>>) {
        let Some(state) = self.leader_state.as_mut() else { return };
        let mut logs = Vec::with_capacity(entries.len());
        for (kind, data, extensions, reply) in entries {
            let index = self.core.last_index + 1 + logs.len() as u64;
            if let Some(reply) = reply {
                state.pending.push_back((index, reply));
            }
            logs.push(Log { index, term: self.core.current_term, kind, data, extensions });
        }
        let Some(last) = logs.last().map(|l| l.index) else { return };
        self.metrics.apply.increment(logs.iter().filter(|l| l.kind == LogKind::Command).count() as u64);
        if let Some(state) = self.leader_state.as_mut() {
            state.appended_at.push_back((last, Instant::now()));
        }
        let seq = self.seq();
        self.log.append(&logs, seq);
        self.core.log_ids.append(logs.iter().map(|log| (log.index, log.term)));
        self.core.last_index = last;
        self.core.last_term = self.core.current_term;
        self.publish_log();
        let commit_index = self.core.commit_index;
        if let Some(state) = self.leader_state.as_ref() {
            state.last_index_tx.send_replace(last);
        }
        let op = StorageOp::Append { seq, logs, commit_index, done: None, clear: false };
        if self.storage.submit(op).await.is_err() {
            tracing::error!("the storage worker has stopped; stepping down");
            self.set_role(RaftState::Follower);
        }
    }

    pub(super) async fn leader_request(&mut self, request: Request<F::Response>) {
        let Some(request) = self.refuse_during_transfer(request) else { return };
        match request {
            Request::Apply { kind, data, extensions, reply } => {
                let mut batch = vec![(kind, data, extensions, Some(reply))];
                let mut deferred = Vec::new();
                while batch.len() < self.config.max_append_entries {
                    match self.requests.try_recv() {
                        Ok(Request::Apply { kind, data, extensions, reply }) => {
                            batch.push((kind, data, extensions, Some(reply)));
                        }
                        Ok(other) => deferred.push(other),
                        Err(_) => break,
                    }
                }
                self.dispatch(batch).await;
                for request in deferred {
                    self.leader_other_request(request).await;
                }
            }
            other => self.leader_other_request(other).await,
        }
    }

    async fn leader_other_request(&mut self, request: Request<F::Response>) {
        match request {
            Request::VerifyLeader { reply } => self.start_verify(reply),
            Request::Reload { config, reply } => {
                let _ = reply.send(self.reload(&config));
            }
            Request::Bootstrap { reply, .. } => {
                let _ = reply.send(Err(RaftError::CantBootstrap));
            }
            Request::Snapshot { reply } => self.start_snapshot(Some(reply)),
            Request::ChangeConfiguration { change, prev_index, timeout, reply } => {
                self.start_change(change, prev_index, timeout, reply).await;
            }
            Request::TransferLeadership { target, reply } => self.start_transfer(target, reply),
            Request::Restore { pieces, reply } => {
                // One dispatch: the pieces are consecutive entries, and the
                // caller learns the outcome when the last one applies.
                let mut entries: Vec<Pending<F::Response>> =
                    pieces.into_iter().map(|data| (LogKind::Restore, data, Bytes::new(), None)).collect();
                if let Some(last) = entries.last_mut() {
                    last.3 = Some(reply);
                }
                self.dispatch(entries).await;
            }
            apply @ Request::Apply { .. } => fail_request(apply, || RaftError::Shutdown),
        }
    }

    /// Starts a leadership check: a round of heartbeats that a quorum must
    /// answer. The read index is the commit index, but never below this
    /// term's first entry, whose commit proves we know every earlier commit.
    fn start_verify(&mut self, reply: oneshot::Sender<Result<u64, RaftError>>) {
        let (Some(leadership), Some(state)) = (self.core.leadership.as_mut(), self.leader_state.as_mut())
        else {
            return;
        };
        let (round, read_index) = leadership.start_check(self.core.commit_index);
        state.verifies.push(Verify { round, read_index, reply });
        state.verify_tx.send_replace(round);
        self.check_verifies();
    }

    fn check_verifies(&mut self) {
        let (Some(leadership), Some(state)) = (self.core.leadership.as_ref(), self.leader_state.as_mut())
        else {
            return;
        };
        let confirmed = leadership.confirmed_round(&self.core.voters, &self.id);
        let (done, waiting): (Vec<Verify>, Vec<Verify>) = std::mem::take(&mut state.verifies)
            .into_iter()
            .partition(|v| confirmed.is_some_and(|round| round >= v.round));
        state.verifies = waiting;
        for verify in done {
            let _ = verify.reply.send(Ok(verify.read_index));
        }
    }

    pub(super) async fn leader_event(&mut self, event: Event) {
        match event {
            Event::Durable { seq, last_index } => {
                let Some(state) = self.leader_state.as_mut() else { return };
                if seq >= state.first_seq {
                    let commit =
                        self.core.leadership.as_mut().and_then(|l| l.own_durable(&self.id, last_index));
                    if let Some(commit) = commit {
                        self.advance_commit(commit).await;
                        self.advance_membership().await;
                    }
                }
            }
            Event::Progress { peer, term, match_index } if term == self.core.current_term => {
                let commit = self.core.leadership.as_mut().and_then(|l| l.progress(&peer, match_index));
                if let Some(commit) = commit {
                    self.advance_commit(commit).await;
                }
                self.advance_membership().await;
                self.advance_transfer();
            }
            Event::HeartbeatAck { peer, term, round } if term == self.core.current_term => {
                if let Some(leadership) = self.core.leadership.as_mut() {
                    leadership.heartbeat_ack(peer, round);
                }
                self.check_verifies();
            }
            Event::HigherTerm { term } if term > self.core.current_term => {
                tracing::info!(term, "a peer has a higher term; stepping down");
                self.step_down(term).await;
            }
            Event::StoreFailed { seq, error } => {
                tracing::error!(%error, seq, "the leader's log write failed; stepping down");
                self.step_down(self.core.current_term).await;
                self.resync_log().await;
            }
            _ => {}
        }
    }

    pub(super) async fn advance_commit(&mut self, commit: u64) {
        let Some(state) = self.leader_state.as_mut() else { return };
        let ready = state.pending.partition_point(|(index, _)| *index <= commit);
        let ready: Vec<_> = state.pending.drain(..ready).collect();
        while let Some(&(last, at)) = state.appended_at.front()
            && last <= commit
        {
            state.appended_at.pop_front();
            self.metrics.commit_time.record(crate::metrics::seconds(at.elapsed()));
        }
        state.commit_tx.send_replace(commit);
        self.commit_to(commit, ready).await;
    }

    /// Steps down when a quorum of voters has not answered within the lease.
    fn check_quorum_contact(&mut self) {
        let Some(state) = self.leader_state.as_ref() else { return };
        let lease = self.config.leader_lease_timeout;
        let voters = &self.core.voters;
        // How long since a quorum (counting this leader, heard from now)
        // last answered: the newest contact age a quorum shares.
        let since = |id: &ServerId| {
            if *id == self.id {
                return Duration::ZERO;
            }
            state.peers.get(id).map_or(Duration::MAX, |tasks| tasks.contact.elapsed())
        };
        let quorum_contact = quorum_contact_age(voters, &self.id, since);
        if let Some(age) = quorum_contact.filter(|age| *age != Duration::MAX) {
            self.metrics.leader_last_contact.record(crate::metrics::seconds(age));
        }
        if quorum_contact.is_none_or(|age| age > lease) {
            let contacted = voters.voters().filter(|id| since(id) <= lease).count();
            tracing::warn!(contacted, quorum = voters.size(), "lost contact with a quorum; stepping down");
            self.set_role(RaftState::Follower);
        }
    }

    /// Steps down when the leader's own log write has stalled.
    fn check_store_stall(&mut self) {
        if let Some(stalled_for) = self.storage.busy_for()
            && stalled_for > self.config.log_store_stall_timeout
        {
            tracing::warn!(?stalled_for, "log store stalled; stepping down");
            let _ = self.observers.send(Observation::LogStoreStalled { stalled_for });
            self.set_role(RaftState::Follower);
        }
    }
}
