//! A follower's answer to AppendEntries (Raft §5.3), decided from the log's
//! terms in memory: whether the request is admissible at all, whether the
//! leader's previous entry matches, what hint to send back when it does not,
//! and which of the leader's entries to append after truncating which
//! conflicting suffix.
//!
//! Deciding happens in two steps, because between them the node may have to
//! adopt the leader's term durably: [`admit`] looks at the request's term and
//! shape, and [`decide`] (after the node follows that leader in its term)
//! says what to do with the log.

use super::log_ids::LogIds;
use crate::state::RaftState;
use crate::{AppendEntriesRequest, Log};

/// How far back a conflict hint looks for the first entry of a term.
pub(crate) const CONFLICT_SCAN_MAX: u64 = 4096;

/// The follower's log, as matching needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FollowerLog<'a> {
    /// The terms of the entries the log holds.
    pub(crate) ids: &'a LogIds,
    /// The last index (the snapshot's when the log is empty).
    pub(crate) last_index: u64,
    /// The last index the newest snapshot covers.
    pub(crate) snapshot_index: u64,
    /// The term of the entry at `snapshot_index`.
    pub(crate) snapshot_term: u64,
    /// The commit index: no entry at or below it is ever truncated.
    pub(crate) commit_index: u64,
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

/// The first look at an AppendEntries, before the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// From a leader of an older term: refuse with our term.
    Stale,
    /// Its entries do not continue its previous entry (a leader never sends
    /// that): refuse, naming why.
    Malformed(String),
    /// From the leader of our term or a newer one; `step_down` when the node
    /// must first adopt its term (durably) or stop leading or campaigning.
    Admit { step_down: bool },
}

/// Decides whether a node in `role` at `current_term` takes the request.
pub(crate) fn admit(current_term: u64, role: RaftState, request: &AppendEntriesRequest) -> Admission {
    if request.term < current_term {
        return Admission::Stale;
    }
    if let Err(reason) = check_entries(request) {
        return Admission::Malformed(reason);
    }
    Admission::Admit { step_down: request.term > current_term || role != RaftState::Follower }
}

/// What a follower does with an admitted AppendEntries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AppendDecision {
    /// Answer "no": the leader resumes from `conflict_index` (skipping term
    /// `conflict_term` when it is not 0).
    Mismatch { conflict_term: u64, conflict_index: u64 },
    /// Answer "no" and tell the leader not to back off (`reason` is logged):
    /// the FSM is being restored, or the entries cannot be taken as sent.
    Refuse { reason: Refusal },
    /// Take it: truncate from `truncate_from`, append the request's entries
    /// from position `append_from`, then commit through `commit` (the
    /// leader's commit index, capped at the request's last entry).
    Accept { truncate_from: Option<u64>, append_from: Option<usize>, commit: u64 },
}

/// Why an admitted AppendEntries is refused without a conflict hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The FSM is being restored from a snapshot: only heartbeats meanwhile.
    Restoring,
    /// An entry conflicts with a committed one (a committed entry never changes).
    ConflictBelowCommit { index: u64 },
    /// The new entries would not continue the log.
    Gap { first: u64, last: u64 },
    /// The leader's log disagrees with this node's snapshot at its last entry.
    SnapshotDiverged { index: u64, ours: u64, leader: u64 },
}

/// Decides what to do with `request` (admitted, from the node's leader).
pub(crate) fn decide(
    log: FollowerLog<'_>,
    restoring: bool,
    request: &AppendEntriesRequest,
) -> AppendDecision {
    // While the FSM is restored from a snapshot, the log and commit index
    // wait for it: only bare heartbeats are taken meanwhile.
    if restoring && (request.prev_log_index > 0 || !request.entries.is_empty()) {
        return AppendDecision::Refuse { reason: Refusal::Restoring };
    }
    if let Some(decision) = log.check_below_snapshot(request) {
        return decision;
    }
    if request.prev_log_index > 0 && !log.matches(request.prev_log_index, request.prev_log_term) {
        let (conflict_term, conflict_index) = log.conflict_hint(request.prev_log_index);
        return AppendDecision::Mismatch { conflict_term, conflict_index };
    }
    // Checked by `check_entries`: the last new index does not overflow.
    let last_new = request.prev_log_index + request.entries.len() as u64;
    let commit = request.leader_commit.min(last_new);
    match log.plan(&request.entries) {
        AppendPlan::Nothing => AppendDecision::Accept { truncate_from: None, append_from: None, commit },
        AppendPlan::Append { truncate_from, from } => {
            AppendDecision::Accept { truncate_from, append_from: Some(from), commit }
        }
        AppendPlan::ConflictBelowCommit { index } => {
            AppendDecision::Refuse { reason: Refusal::ConflictBelowCommit { index } }
        }
        AppendPlan::Gap { first, last } => AppendDecision::Refuse { reason: Refusal::Gap { first, last } },
    }
}

/// What to do with the entries of an AppendEntries whose previous entry matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendPlan {
    /// The log holds every entry already.
    Nothing,
    /// Remove the entries from `truncate_from` on (if any), then append the
    /// request's entries from position `from`.
    Append { truncate_from: Option<u64>, from: usize },
    /// The leader sent an entry that conflicts with one at or below the
    /// commit index: refuse (a committed entry never changes).
    ConflictBelowCommit { index: u64 },
    /// The new entries would not continue the log.
    Gap { first: u64, last: u64 },
}

impl FollowerLog<'_> {
    /// A request whose `prev_log_index` lies inside this node's snapshot
    /// matches only if the leader's log holds the snapshot's last entry
    /// (index and term): by log matching, everything before it agrees too.
    /// A request that ends before that entry cannot show it, and is refused
    /// with a hint to resend from just after the snapshot.
    ///
    /// Trusting any index inside the snapshot would be right if every
    /// snapshot held only committed entries. A user restore breaks that: a
    /// leader that restores a backup and loses leadership before a quorum
    /// has it holds a snapshot no leader after it has, and acknowledging a
    /// later leader's entries "inside" it counted this node for entries it
    /// never stored (found by the simulator, seed 4658: committed entries
    /// lost).
    fn check_below_snapshot(&self, request: &AppendEntriesRequest) -> Option<AppendDecision> {
        let snapshot = self.snapshot_index;
        if snapshot == 0
            || request.prev_log_index >= snapshot
            || (request.prev_log_index == 0 && request.entries.is_empty())
        {
            return None;
        }
        let resume = AppendDecision::Mismatch { conflict_term: 0, conflict_index: snapshot + 1 };
        match request.entries.iter().find(|entry| entry.index == snapshot) {
            Some(entry) if entry.term == self.snapshot_term => None,
            Some(entry) => {
                let reason = Refusal::SnapshotDiverged {
                    index: snapshot,
                    ours: self.snapshot_term,
                    leader: entry.term,
                };
                tracing::warn!(
                    ?reason,
                    "the leader's log disagrees with this node's snapshot (a restore that never committed?); \
                     this node cannot follow it: remove it, clear its data and add it back"
                );
                Some(resume)
            }
            None => Some(resume),
        }
    }

    /// Whether the log holds an entry at `index` with `term` (anything below
    /// the snapshot is taken as matching; the caller checks the snapshot's
    /// own entry first).
    pub(crate) fn matches(&self, index: u64, term: u64) -> bool {
        if index > self.last_index {
            return false;
        }
        index < self.snapshot_index || self.ids.term_at(index) == Some(term)
    }

    /// The (term, first index of that term) to tell a leader whose
    /// consistency check failed at `index`, so it skips the whole term: the
    /// term's first index, but never back past the commit index, the
    /// snapshot, or [`CONFLICT_SCAN_MAX`] entries.
    pub(crate) fn conflict_hint(&self, index: u64) -> (u64, u64) {
        if index > self.last_index {
            return (0, self.last_index + 1);
        }
        let Some(term) = self.ids.term_at(index) else { return (0, index) };
        let floor =
            self.commit_index.max(self.snapshot_index).max(index.saturating_sub(CONFLICT_SCAN_MAX)) + 1;
        if index <= floor {
            return (term, index);
        }
        let run_start = self.ids.run_start(index).unwrap_or(index);
        (term, run_start.max(floor))
    }

    /// Which of `entries` (the leader's, after a matching previous entry)
    /// to append, and what to truncate first.
    pub(crate) fn plan(&self, entries: &[Log]) -> AppendPlan {
        let mut last_index = self.last_index;
        let mut plan = AppendPlan::Nothing;
        for (at, entry) in entries.iter().enumerate() {
            if entry.index <= self.snapshot_index {
                continue;
            }
            if entry.index > self.last_index {
                plan = AppendPlan::Append { truncate_from: None, from: at };
                break;
            }
            if self.ids.term_at(entry.index) != Some(entry.term) {
                if entry.index <= self.commit_index {
                    return AppendPlan::ConflictBelowCommit { index: entry.index };
                }
                last_index = entry.index - 1;
                plan = AppendPlan::Append { truncate_from: Some(entry.index), from: at };
                break;
            }
        }
        if let AppendPlan::Append { from, .. } = plan
            && entries[from].index != last_index + 1
        {
            return AppendPlan::Gap { first: entries[from].index, last: last_index };
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::INDEX_MAX;

    /// A log of entries 3..=10 with terms 1 1 2 2 2 3 3 3 after a snapshot
    /// through 2 (term 1), committed through `commit`.
    fn ids() -> LogIds {
        let mut ids = LogIds::empty((2, 1));
        ids.append((3..).zip([1, 1, 2, 2, 2, 3, 3, 3]));
        ids
    }

    fn log(ids: &LogIds, commit: u64) -> FollowerLog<'_> {
        FollowerLog { ids, last_index: 10, snapshot_index: 2, snapshot_term: 1, commit_index: commit }
    }

    fn entries(from: u64, terms: &[u64]) -> Vec<Log> {
        (from..).zip(terms).map(|(index, &term)| Log::command(index, term, "x")).collect()
    }

    #[test]
    fn the_previous_entry_matches_by_index_and_term() {
        let ids = ids();
        let log = log(&ids, 4);
        let table = [
            (1, 9, true),
            (2, 1, true),
            (3, 1, true),
            (5, 2, true),
            (5, 3, false),
            (10, 3, true),
            (11, 3, false),
        ];
        for (index, term, expected) in table {
            assert_eq!(log.matches(index, term), expected, "({index}, {term})");
        }
    }

    #[test]
    fn conflict_hints_skip_the_term_but_not_past_the_commit_index() {
        let ids = ids();
        // index → hint, committed through 4
        let table = [(11, (0, 11)), (12, (0, 11)), (10, (3, 8)), (8, (3, 8)), (7, (2, 5)), (5, (2, 5))];
        for (index, expected) in table {
            assert_eq!(log(&ids, 4).conflict_hint(index), expected, "at {index}");
        }
        // Committed through 6: the hint for term 2 stops at 7.
        assert_eq!(log(&ids, 6).conflict_hint(7), (2, 7));
        assert_eq!(log(&ids, 9).conflict_hint(10), (3, 10), "at the floor: the index itself");
    }

    #[test]
    fn plans_append_what_is_new_and_truncate_only_above_the_commit_index() {
        let ids = ids();
        let log = log(&ids, 6);
        let append = |truncate_from, from| AppendPlan::Append { truncate_from, from };
        let table: Vec<(&str, Vec<Log>, AppendPlan)> = vec![
            ("all held already", entries(4, &[1, 2, 2]), AppendPlan::Nothing),
            ("new after the last", entries(9, &[3, 3, 4, 4]), append(None, 2)),
            (
                "inside the snapshot, then new",
                entries(1, &[1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4]),
                append(None, 10),
            ),
            ("a conflict above the commit index", entries(7, &[2, 4, 4]), append(Some(8), 1)),
            (
                "a conflict at the commit index",
                entries(5, &[2, 9]),
                AppendPlan::ConflictBelowCommit { index: 6 },
            ),
            ("entries past a gap", entries(12, &[3]), AppendPlan::Gap { first: 12, last: 10 }),
            ("nothing", Vec::new(), AppendPlan::Nothing),
        ];
        for (what, entries, expected) in table {
            assert_eq!(log.plan(&entries), expected, "{what}");
        }
    }

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

    #[test]
    fn admission_looks_at_the_term_and_the_shape_only() {
        let ok = request(5, (10, 2), &[(11, 3)]);
        assert_eq!(admit(6, RaftState::Follower, &ok), Admission::Stale);
        assert_eq!(admit(5, RaftState::Follower, &ok), Admission::Admit { step_down: false });
        assert_eq!(admit(5, RaftState::Candidate, &ok), Admission::Admit { step_down: true });
        assert_eq!(admit(4, RaftState::Leader, &ok), Admission::Admit { step_down: true });
        let bad = request(5, (10, 2), &[(12, 3)]);
        assert!(matches!(admit(5, RaftState::Follower, &bad), Admission::Malformed(_)));
        assert_eq!(admit(6, RaftState::Follower, &bad), Admission::Stale, "a stale request is not inspected");
    }

    #[test]
    fn decisions_cover_restore_snapshot_mismatch_and_commit() {
        let ids = ids();
        let log = log(&ids, 4);
        let with_commit = |mut request: AppendEntriesRequest, commit| {
            request.leader_commit = commit;
            request
        };
        let accept = |truncate_from, append_from, commit| AppendDecision::Accept {
            truncate_from,
            append_from,
            commit,
        };
        let table: Vec<(&str, bool, AppendEntriesRequest, AppendDecision)> = vec![
            ("a heartbeat while restoring", true, request(3, (0, 0), &[]), accept(None, None, 0)),
            (
                "entries while restoring",
                true,
                request(3, (10, 3), &[(11, 3)]),
                AppendDecision::Refuse { reason: Refusal::Restoring },
            ),
            (
                "inside the snapshot without its last entry",
                false,
                request(3, (1, 1), &[]),
                AppendDecision::Mismatch { conflict_term: 0, conflict_index: 3 },
            ),
            (
                "inside the snapshot, disagreeing with it",
                false,
                request(3, (1, 1), &[(2, 2)]),
                AppendDecision::Mismatch { conflict_term: 0, conflict_index: 3 },
            ),
            (
                "inside the snapshot, agreeing",
                false,
                request(3, (1, 1), &[(2, 1), (3, 1)]),
                accept(None, None, 0),
            ),
            (
                "a previous entry of another term",
                false,
                request(3, (7, 3), &[(8, 3)]),
                AppendDecision::Mismatch { conflict_term: 2, conflict_index: 5 },
            ),
            (
                "the commit index is capped at the last new entry",
                false,
                with_commit(request(3, (10, 3), &[(11, 3)]), 50),
                accept(None, Some(0), 11),
            ),
            (
                "a conflict below the commit index",
                false,
                request(3, (3, 1), &[(4, 3)]),
                AppendDecision::Refuse { reason: Refusal::ConflictBelowCommit { index: 4 } },
            ),
            (
                "a conflicting suffix",
                false,
                with_commit(request(3, (6, 2), &[(7, 3)]), 5),
                accept(Some(7), Some(0), 5),
            ),
        ];
        for (what, restoring, request, expected) in table {
            assert_eq!(decide(log, restoring, &request), expected, "{what}");
        }
    }
}
