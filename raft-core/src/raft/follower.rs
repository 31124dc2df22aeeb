//! The follower role, and the RPC handlers every role shares: AppendEntries,
//! RequestVote, PreVote and TimeoutNow.

use super::{Input, Node};
use crate::observer::Observation;
use crate::protocol::append::{self, Admission, AppendDecision, Refusal};
use crate::protocol::vote;
use crate::state::RaftState;
use crate::storage::StorageOp;
use crate::{
    AppendEntriesRequest, AppendEntriesResponse, Fsm, Log, LogKind, PreVoteRequest, PreVoteResponse,
    RequestVoteRequest, RequestVoteResponse, TimeoutNowRequest, TimeoutNowResponse,
};
use tokio::time::Instant;

/// An acknowledgement that must wait for the storage worker: it may be sent
/// once every operation up to `seq` has completed, and only if the failure
/// count is still `failures`; the node then learns it may commit through
/// `commit` ([`Event::Stored`](super::Event::Stored)).
pub(crate) struct PendingWrite {
    pub(crate) seq: u64,
    pub(crate) failures: u64,
    pub(crate) commit: u64,
}

impl<F: Fsm> Node<F> {
    /// Runs as a follower until the role or the term changes; `fresh` when
    /// the node was not a follower just before (a new term alone keeps the
    /// election timer running).
    pub(super) async fn run_follower(&mut self, fresh: bool) {
        if fresh {
            self.reset_election_timer();
        }
        let term = self.core.current_term;
        while self.core.role == RaftState::Follower && self.core.current_term == term {
            match self.next_input(self.election_deadline).await {
                Input::Timer => self.election_timer_fired(),
                input => self.handle(input).await,
            }
        }
    }

    fn election_timer_fired(&mut self) {
        if Instant::now() < self.election_deadline {
            return;
        }
        if self.core.configurations.latest.is_voter(&self.id) {
            tracing::info!(term = self.core.current_term, "no word from a leader; campaigning");
            self.metrics.heartbeat_timeout.increment(1);
            self.set_leader(None);
            self.set_role(RaftState::Candidate);
        } else {
            // Non-voters and unbootstrapped nodes never campaign.
            self.reset_election_timer();
        }
    }

    /// Handles AppendEntries in any role (a leader or candidate that sees a
    /// valid leader of its term or a newer one steps down first). New
    /// entries are submitted to the storage worker without waiting; when
    /// `Some(seq)` comes back, the answer may be sent only once every
    /// storage operation up to `seq` has completed, so that "success" always
    /// means "durable".
    pub(super) async fn on_append_entries(
        &mut self,
        request: AppendEntriesRequest,
    ) -> (AppendEntriesResponse, Option<PendingWrite>) {
        let mut response = AppendEntriesResponse {
            header: self.header(),
            term: self.core.current_term,
            last_log: self.core.last_index,
            ..Default::default()
        };
        match append::admit(self.core.current_term, self.core.role, &request) {
            Admission::Stale => return (response, None),
            Admission::Malformed(reason) => {
                tracing::warn!(leader = %request.header.id, %reason, "refusing a malformed AppendEntries");
                response.no_retry_backoff = true;
                return (response, None);
            }
            Admission::Admit { step_down } => {
                if step_down && !self.step_down(request.term).await {
                    response.no_retry_backoff = true;
                    return (response, None);
                }
            }
        }
        response.term = self.core.current_term;
        self.set_leader(Some((request.header.id.clone(), request.header.addr.clone())));
        self.core.last_leader_contact = Some(Instant::now().into_std());
        self.shared.touch_contact();
        self.reset_election_timer();
        self.core.leader_commit = self.core.leader_commit.max(request.leader_commit);

        let (truncate_from, append_from, commit) =
            match append::decide(self.core.follower_log(), self.core.restoring, &request) {
                AppendDecision::Mismatch { conflict_term, conflict_index } => {
                    response.conflict_term = conflict_term;
                    response.conflict_index = conflict_index;
                    return (response, None);
                }
                AppendDecision::Refuse { reason } => {
                    if reason != Refusal::Restoring {
                        tracing::error!(?reason, "refusing the leader's entries");
                    }
                    response.no_retry_backoff = true;
                    return (response, None);
                }
                AppendDecision::Accept { truncate_from, append_from, commit } => {
                    (truncate_from, append_from, commit)
                }
            };
        // Checked by `check_entries`: the last new index does not overflow.
        let last_new = request.prev_log_index + request.entries.len() as u64;
        // A write that fails from here on, ours or one queued before it,
        // means the entries this request names may not be stored.
        let failures = self.storage.progress().borrow().failures;
        let appended =
            self.append_from_leader(request.entries, truncate_from, append_from, commit).await.is_ok();
        if !appended || self.storage.progress().borrow().failures != failures {
            // An in-task store has failed already: make the node's log match
            // the store before answering with its last index.
            self.settle_storage_events().await;
            response.no_retry_backoff = true;
            response.last_log = self.core.last_index;
            return (response, None);
        }
        response.success = true;
        response.last_log = self.core.last_index;
        // Entries this request names may still be on their way to the disk
        // (submitted by it or by an earlier request): answer once they are
        // not, and only then take the leader's commit index. Committing
        // first let the FSM apply entries that a failing write then took
        // back out of the log; after the log was re-read from the store it
        // held, at those indexes, the stale entries the write was to
        // replace, and the FSM applied those (found by the simulator's
        // worker storage mode, seed 215250).
        let seq = self.next_seq;
        let written = self.storage.progress().borrow().completed_seq;
        if last_new > self.core.snapshot_index && written < seq {
            return (response, Some(PendingWrite { seq, failures, commit }));
        }
        if commit > self.core.commit_index {
            self.commit_to(commit, Vec::new()).await;
        }
        self.refill_commit_if_stored().await;
        (response, None)
    }

    /// Handles the completion events an in-task store has queued, now.
    async fn settle_storage_events(&mut self) {
        while let Some(report) = self.storage.take_event() {
            self.handle_event(report.into()).await;
        }
    }

    /// The term of the entry at `index` (0 for index 0, the snapshot's at
    /// its boundary), from the log's terms in memory: deciding never reads
    /// the store.
    pub(super) fn term_at(&self, index: u64) -> Option<u64> {
        let term = self.core.log_ids.term_at(index);
        debug_assert!(
            self.log.cached_term(index).is_none_or(|cached| Some(cached) == term),
            "the log's terms in memory say {term:?} at {index}, the cache {:?}",
            self.log.cached_term(index)
        );
        term
    }

    /// Carries out an accepted AppendEntries: truncates a conflicting
    /// suffix from `truncate_from`, then appends `entries` from position
    /// `append_from` on.
    async fn append_from_leader(
        &mut self,
        mut entries: Vec<Log>,
        truncate_from: Option<u64>,
        append_from: Option<usize>,
        commit_hint: u64,
    ) -> Result<(), ()> {
        if let Some(index) = truncate_from {
            self.truncate_from(index).await?;
        }
        let Some(start) = append_from else { return Ok(()) };
        let new: Vec<Log> = entries.split_off(start);
        let configurations: Vec<(u64, crate::Configuration)> = new
            .iter()
            .filter(|log| log.kind == LogKind::Configuration)
            .filter_map(|log| {
                crate::codec::decode_configuration(log.data.clone()).ok().map(|c| (log.index, c))
            })
            .collect();
        if let Err(error) = self.submit_entries(new, commit_hint).await {
            tracing::error!(%error, "storing the leader's entries failed");
            return Err(());
        }
        for (index, configuration) in configurations {
            self.set_latest_configuration(index, configuration);
        }
        Ok(())
    }

    /// Removes our entries from `index` on.
    async fn truncate_from(&mut self, index: u64) -> Result<(), ()> {
        tracing::info!(index, last = self.core.last_index, "truncating a conflicting suffix");
        self.log.truncate_from(index);
        let seq = self.seq();
        if self.storage.submit(StorageOp::TruncateFrom { seq, index, done: None }).await.is_err() {
            return Err(());
        }
        self.core.log_ids.truncate_from(index);
        self.core.last_index = index - 1;
        self.core.last_term = self.core.log_ids.term_at(index - 1).unwrap_or(0);
        self.publish_log();
        if self.core.configurations.latest_index >= index {
            let committed = self.core.configurations.clone();
            self.set_latest_configuration(committed.committed_index, committed.committed);
        }
        Ok(())
    }

    pub(super) async fn on_request_vote(&mut self, request: RequestVoteRequest) -> RequestVoteResponse {
        let mut response =
            RequestVoteResponse { header: self.header(), term: self.core.current_term, granted: false };
        let candidate = request.header.id.clone();
        let granted = self.decide_vote(&request).await;
        response.term = self.core.current_term;
        response.granted = granted;
        let _ = self.observers.send(Observation::RequestVote { candidate, term: request.term, granted });
        response
    }

    /// Carries out [`vote::decide_vote`]: adopts a newer term, records the
    /// vote, and refuses after all if either write fails.
    async fn decide_vote(&mut self, request: &RequestVoteRequest) -> bool {
        let decision = vote::decide_vote(self.voter_state(&request.header.id), request);
        if let Some(term) = decision.adopt_term {
            if !self.step_down(term).await {
                return false;
            }
            self.set_leader(None);
        }
        if !decision.grant {
            return false;
        }
        if decision.record_vote && !self.persist_term(request.term, Some(request.header.id.clone())).await {
            return false;
        }
        self.reset_election_timer();
        true
    }

    /// What a vote for `candidate` is decided on.
    fn voter_state(&self, candidate: &crate::ServerId) -> vote::VoterState<'_> {
        let latest = &self.core.configurations.latest;
        vote::VoterState {
            current_term: self.core.current_term,
            voted_for: self.core.voted_for.as_ref(),
            last_index: self.core.last_index,
            last_term: self.core.last_term,
            candidate_is_voter: latest.servers.is_empty() || latest.is_voter(candidate),
            leader_alive: self.leader_is_alive(candidate),
        }
    }

    pub(super) fn on_pre_vote(&self, request: &PreVoteRequest) -> PreVoteResponse {
        let granted = vote::decide_pre_vote(self.voter_state(&request.header.id), request);
        PreVoteResponse { header: self.header(), term: self.core.current_term, granted }
    }

    /// The leader asks us to campaign at once (leadership transfer). Only
    /// this node's current leader may, at the current term, and only a voter
    /// campaigns: anyone else could force elections and raise the term at
    /// will, going around PreVote.
    pub(super) async fn on_timeout_now(&mut self, request: TimeoutNowRequest) -> TimeoutNowResponse {
        let from_leader = self.core.leader.as_ref().is_some_and(|(leader, _)| leader == &request.header.id);
        let honoured = from_leader
            && request.term == self.core.current_term
            && self.core.role == RaftState::Follower
            && self.core.configurations.latest.is_voter(&self.id);
        if honoured {
            self.transfer_requested = true;
            self.set_leader(None);
            self.set_role(RaftState::Candidate);
        } else {
            tracing::warn!(
                from = %request.header.id,
                term = request.term,
                "ignoring a TimeoutNow that is not from this node's leader at its term"
            );
        }
        TimeoutNowResponse { header: self.header(), term: self.core.current_term }
    }
}
