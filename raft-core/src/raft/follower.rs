//! The follower role, and the RPC handlers every role shares: AppendEntries,
//! RequestVote, PreVote and TimeoutNow.

use super::{Input, Node};
use crate::observer::Observation;
use crate::protocol::append::{AppendPlan, FollowerLog};
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
/// count is still `failures`.
pub(crate) struct PendingWrite {
    pub(crate) seq: u64,
    pub(crate) failures: u64,
}

/// Checks what an AppendEntries claims about its own entries: they continue
/// `prev_log_index` one by one, their terms never go down, never below the
/// previous entry's term and never above the leader's term. A leader never
/// sends anything else; a store would refuse some of it, and the rest would
/// break the log's invariants.
pub(crate) fn check_entries(request: &AppendEntriesRequest) -> Result<(), String> {
    if request.prev_log_index > crate::INDEX_MAX {
        return Err(format!("prev_log_index {} is above the highest index", request.prev_log_index));
    }
    let mut previous = (request.prev_log_index, request.prev_log_term);
    for entry in &request.entries {
        let expected = previous.0 + 1;
        if expected > crate::INDEX_MAX {
            return Err(format!("entry index {expected} is above the highest index"));
        }
        if entry.index != expected {
            return Err(format!("entry index {} where {expected} belongs", entry.index));
        }
        if entry.term < previous.1 {
            return Err(format!("entry {} has term {} after term {}", entry.index, entry.term, previous.1));
        }
        if entry.term > request.term {
            return Err(format!(
                "entry {} has term {}, above the leader's {}",
                entry.index, entry.term, request.term
            ));
        }
        previous = (entry.index, entry.term);
    }
    Ok(())
}

impl<F: Fsm> Node<F> {
    /// Runs as a follower until the role or the term changes; `fresh` when
    /// the node was not a follower just before (a new term alone keeps the
    /// election timer running).
    pub(super) async fn run_follower(&mut self, fresh: bool) {
        if fresh {
            self.reset_election_timer();
        }
        let term = self.current_term;
        while self.role == RaftState::Follower && self.current_term == term {
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
        if self.configurations.latest.is_voter(&self.id) {
            tracing::info!(term = self.current_term, "no word from a leader; campaigning");
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
            term: self.current_term,
            last_log: self.last_index,
            ..Default::default()
        };
        if request.term < self.current_term {
            return (response, None);
        }
        if let Err(reason) = check_entries(&request) {
            tracing::warn!(leader = %request.header.id, %reason, "refusing a malformed AppendEntries");
            response.no_retry_backoff = true;
            return (response, None);
        }
        if (request.term > self.current_term || self.role != RaftState::Follower)
            && !self.step_down(request.term).await
        {
            response.no_retry_backoff = true;
            return (response, None);
        }
        response.term = self.current_term;
        self.set_leader(Some((request.header.id.clone(), request.header.addr.clone())));
        self.last_leader_contact = Some(Instant::now());
        self.shared.touch_contact();
        self.reset_election_timer();
        self.leader_commit = self.leader_commit.max(request.leader_commit);

        // While the FSM is restored from a snapshot, the log and commit index
        // wait for it: only bare heartbeats are taken meanwhile.
        if self.restoring && (request.prev_log_index > 0 || !request.entries.is_empty()) {
            response.no_retry_backoff = true;
            return (response, None);
        }
        if let Some(refused) = self.check_below_snapshot(&request) {
            response.conflict_index = refused;
            return (response, None);
        }
        if request.prev_log_index > 0
            && !self.follower_log().matches(request.prev_log_index, request.prev_log_term)
        {
            let (term, index) = self.follower_log().conflict_hint(request.prev_log_index);
            response.conflict_term = term;
            response.conflict_index = index;
            return (response, None);
        }
        // Checked by `check_entries`: the last new index does not overflow.
        let last_new = request.prev_log_index + request.entries.len() as u64;
        let commit_hint = request.leader_commit.min(last_new);
        // A write that fails from here on, ours or one queued before it,
        // means the entries this request names may not be stored.
        let failures = self.storage.progress().borrow().failures;
        let appended =
            request.entries.is_empty() || self.append_from_leader(request.entries, commit_hint).await.is_ok();
        if !appended || self.storage.progress().borrow().failures != failures {
            // An in-task store has failed already: make the node's log match
            // the store before answering with its last index.
            self.settle_storage_events().await;
            response.no_retry_backoff = true;
            response.last_log = self.last_index;
            return (response, None);
        }
        if commit_hint > self.commit_index {
            self.commit_to(commit_hint, Vec::new()).await;
        }
        self.refill_commit_if_stored().await;
        response.success = true;
        response.last_log = self.last_index;
        // Entries this request names may still be on their way to the disk
        // (submitted by it or by an earlier request): answer once they are not.
        let seq = self.next_seq;
        let written = self.storage.progress().borrow().completed_seq;
        let pending =
            (last_new > self.snapshot_index && written < seq).then_some(PendingWrite { seq, failures });
        (response, pending)
    }

    /// Handles the completion events an in-task store has queued, now.
    async fn settle_storage_events(&mut self) {
        while let Some(report) = self.storage.take_event() {
            self.handle_event(report.into()).await;
        }
    }

    /// A request whose `prev_log_index` lies inside this node's snapshot
    /// matches only if the leader's log holds the snapshot's last entry
    /// (index and term): by log matching, everything before it agrees too.
    /// A request that ends before that entry cannot show it, and is refused
    /// with a hint to resend from just after the snapshot (the answer is
    /// `Some(next index)`).
    ///
    /// Trusting any index inside the snapshot would be right if every
    /// snapshot held only committed entries. A user restore breaks that: a
    /// leader that restores a backup and loses leadership before a quorum
    /// has it holds a snapshot no leader after it has, and acknowledging a
    /// later leader's entries "inside" it counted this node for entries it
    /// never stored (found by the simulator, seed 4658: committed entries
    /// lost).
    fn check_below_snapshot(&self, request: &AppendEntriesRequest) -> Option<u64> {
        let snapshot = self.snapshot_index;
        if snapshot == 0
            || request.prev_log_index >= snapshot
            || (request.prev_log_index == 0 && request.entries.is_empty())
        {
            return None;
        }
        match request.entries.iter().find(|entry| entry.index == snapshot) {
            Some(entry) if entry.term == self.snapshot_term => None,
            Some(entry) => {
                tracing::warn!(
                    index = snapshot,
                    ours = self.snapshot_term,
                    leader = entry.term,
                    "the leader's log disagrees with this node's snapshot (a restore that never committed?); \
                     this node cannot follow it: remove it, clear its data and add it back"
                );
                Some(snapshot + 1)
            }
            None => Some(snapshot + 1),
        }
    }

    /// The log as matching needs it.
    fn follower_log(&self) -> FollowerLog<'_> {
        FollowerLog {
            ids: &self.log_ids,
            last_index: self.last_index,
            snapshot_index: self.snapshot_index,
            commit_index: self.commit_index,
        }
    }

    /// The term of the entry at `index` (0 for index 0, the snapshot's at
    /// its boundary), from the log's terms in memory: deciding never reads
    /// the store.
    pub(super) fn term_at(&self, index: u64) -> Option<u64> {
        let term = self.log_ids.term_at(index);
        debug_assert!(
            self.log.cached_term(index).is_none_or(|cached| Some(cached) == term),
            "the log's terms in memory say {term:?} at {index}, the cache {:?}",
            self.log.cached_term(index)
        );
        term
    }

    /// Appends the leader's entries that we do not already have, truncating
    /// a conflicting suffix first (never a committed entry).
    async fn append_from_leader(&mut self, entries: Vec<Log>, commit_hint: u64) -> Result<(), ()> {
        let start = match self.follower_log().plan(&entries) {
            AppendPlan::Nothing => return Ok(()),
            AppendPlan::Append { truncate_from, from } => {
                if let Some(index) = truncate_from {
                    self.truncate_from(index).await?;
                }
                from
            }
            AppendPlan::ConflictBelowCommit { index } => {
                tracing::error!(index, "leader sent a conflicting entry below our commit index");
                return Err(());
            }
            AppendPlan::Gap { first, last } => {
                tracing::error!(first, last, "entries do not continue the log");
                return Err(());
            }
        };
        let mut entries = entries;
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
        tracing::info!(index, last = self.last_index, "truncating a conflicting suffix");
        self.log.truncate_from(index);
        let seq = self.seq();
        if self.storage.submit(StorageOp::TruncateFrom { seq, index, done: None }).await.is_err() {
            return Err(());
        }
        self.log_ids.truncate_from(index);
        self.last_index = index - 1;
        self.last_term = self.log_ids.term_at(index - 1).unwrap_or(0);
        self.publish_log();
        if self.configurations.latest_index >= index {
            let committed = self.configurations.clone();
            self.set_latest_configuration(committed.committed_index, committed.committed);
        }
        Ok(())
    }

    pub(super) async fn on_request_vote(&mut self, request: RequestVoteRequest) -> RequestVoteResponse {
        let mut response =
            RequestVoteResponse { header: self.header(), term: self.current_term, granted: false };
        let candidate = request.header.id.clone();
        let granted = self.decide_vote(&request).await;
        response.term = self.current_term;
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
        let latest = &self.configurations.latest;
        vote::VoterState {
            current_term: self.current_term,
            voted_for: self.voted_for.as_ref(),
            last_index: self.last_index,
            last_term: self.last_term,
            candidate_is_voter: latest.servers.is_empty() || latest.is_voter(candidate),
            leader_alive: self.leader_is_alive(candidate),
        }
    }

    pub(super) fn on_pre_vote(&self, request: &PreVoteRequest) -> PreVoteResponse {
        let granted = vote::decide_pre_vote(self.voter_state(&request.header.id), request);
        PreVoteResponse { header: self.header(), term: self.current_term, granted }
    }

    /// The leader asks us to campaign at once (leadership transfer). Only
    /// this node's current leader may, at the current term, and only a voter
    /// campaigns: anyone else could force elections and raise the term at
    /// will, going around PreVote.
    pub(super) async fn on_timeout_now(&mut self, request: TimeoutNowRequest) -> TimeoutNowResponse {
        let from_leader = self.leader.as_ref().is_some_and(|(leader, _)| leader == &request.header.id);
        let honoured = from_leader
            && request.term == self.current_term
            && self.role == RaftState::Follower
            && self.configurations.latest.is_voter(&self.id);
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
        TimeoutNowResponse { header: self.header(), term: self.current_term }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::INDEX_MAX;

    fn request(term: u64, prev: (u64, u64), entries: &[(u64, u64)]) -> AppendEntriesRequest {
        AppendEntriesRequest {
            term,
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            entries: entries.iter().map(|&(index, term)| Log::command(index, term, "x")).collect(),
            ..Default::default()
        }
    }

    /// Leader term, prev (index, term), entries (index, term), valid.
    type Case = (u64, (u64, u64), &'static [(u64, u64)], bool);

    #[test]
    fn entries_must_continue_the_previous_one() {
        let table: &[Case] = &[
            (3, (0, 0), &[], true),
            (3, (10, 2), &[(11, 2), (12, 3)], true),
            (3, (10, 2), &[(11, 3), (12, 3)], true),
            (3, (10, 2), &[(12, 2)], false),
            (3, (10, 2), &[(11, 2), (11, 2)], false),
            (3, (10, 2), &[(11, 2), (13, 2)], false),
            (3, (10, 2), &[(11, 1)], false),
            (3, (10, 2), &[(11, 3), (12, 2)], false),
            (3, (10, 2), &[(11, 4)], false),
            (u64::MAX, (u64::MAX, 1), &[(0, 1)], false),
            (3, (INDEX_MAX, 1), &[], true),
            (3, (INDEX_MAX, 1), &[(INDEX_MAX + 1, 3)], false),
            (3, (INDEX_MAX + 1, 1), &[], false),
        ];
        for (term, prev, entries, valid) in table {
            let outcome = check_entries(&request(*term, *prev, entries));
            assert_eq!(
                outcome.is_ok(),
                *valid,
                "term {term}, prev {prev:?}, entries {entries:?}: {outcome:?}"
            );
        }
    }
}
