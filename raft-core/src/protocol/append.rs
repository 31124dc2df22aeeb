//! A follower's log matching (Raft §5.3), decided from the log's terms in
//! memory: whether the leader's previous entry matches, what hint to send
//! back when it does not, and which of the leader's entries to append after
//! truncating which conflicting suffix.

use super::log_ids::LogIds;
use crate::Log;

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
    /// The commit index: no entry at or below it is ever truncated.
    pub(crate) commit_index: u64,
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

    /// A log of entries 3..=10 with terms 1 1 2 2 2 3 3 3 after a snapshot
    /// through 2 (term 1), committed through `commit`.
    fn ids() -> LogIds {
        let mut ids = LogIds::empty((2, 1));
        ids.append((3..).zip([1, 1, 2, 2, 2, 3, 3, 3]));
        ids
    }

    fn log(ids: &LogIds, commit: u64) -> FollowerLog<'_> {
        FollowerLog { ids, last_index: 10, snapshot_index: 2, commit_index: commit }
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
}
