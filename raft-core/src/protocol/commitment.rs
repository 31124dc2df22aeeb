//! Commitment: which index a quorum of voters has stored.

use super::quorum::Majority;
use crate::ServerId;
use std::collections::BTreeMap;

/// Tracks each voter's match index and derives the commit index.
///
/// An entry is committed once a quorum of voters has stored it *and* it
/// belongs to the leader's own term (`start_index` is the first index of that
/// term); earlier entries commit only with it (Raft §5.4.2, Figure 8).
#[derive(Clone, Debug)]
pub(crate) struct Commitment {
    voters: Majority,
    match_indexes: BTreeMap<ServerId, u64>,
    commit_index: u64,
    start_index: u64,
}

impl Commitment {
    /// A tracker for `voters`, for a leader whose term starts at `start_index`.
    pub(crate) fn new(
        voters: impl IntoIterator<Item = ServerId>,
        commit_index: u64,
        start_index: u64,
    ) -> Self {
        let match_indexes: BTreeMap<ServerId, u64> = voters.into_iter().map(|id| (id, 0)).collect();
        let voters = Majority::new(match_indexes.keys().cloned());
        Self { voters, match_indexes, commit_index, start_index }
    }

    /// Records that `id` has stored everything up to `index`. Returns the new
    /// commit index if it advanced.
    pub(crate) fn record(&mut self, id: &ServerId, index: u64) -> Option<u64> {
        let entry = self.match_indexes.get_mut(id)?;
        if index <= *entry {
            return None;
        }
        *entry = index;
        self.recalculate()
    }

    /// Replaces the voter set, keeping what is known of voters that remain.
    pub(crate) fn set_voters(&mut self, voters: impl IntoIterator<Item = ServerId>) {
        let old = std::mem::take(&mut self.match_indexes);
        self.match_indexes = voters
            .into_iter()
            .map(|id| {
                let known = old.get(&id).copied().unwrap_or(0);
                (id, known)
            })
            .collect();
        self.voters = Majority::new(self.match_indexes.keys().cloned());
    }

    /// Re-derives the commit index (after a voter change). Returns it if it advanced.
    pub(crate) fn recalculate(&mut self) -> Option<u64> {
        let quorum = self.voters.agreed(|id| self.match_indexes.get(id).copied().unwrap_or(0)).unwrap_or(0);
        if quorum > self.commit_index && quorum >= self.start_index {
            self.commit_index = quorum;
            return Some(quorum);
        }
        None
    }

    /// The commit index.
    #[cfg(test)]
    pub(crate) fn commit_index(&self) -> u64 {
        self.commit_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<ServerId> {
        names.iter().map(|n| ServerId::new(*n)).collect()
    }

    #[test]
    fn commits_only_entries_of_the_current_term() {
        // The leader's term starts at index 5; entries 1..=4 are older.
        let mut c = Commitment::new(ids(&["a", "b", "c"]), 0, 5);
        assert_eq!(c.record(&"a".into(), 4), None);
        assert_eq!(c.record(&"b".into(), 4), None, "a quorum holds 4, but 4 is of an older term");
        assert_eq!(c.record(&"a".into(), 6), None);
        assert_eq!(c.record(&"b".into(), 5), Some(5), "5 is the leader's own and on a quorum");
        assert_eq!(c.commit_index(), 5);
        assert_eq!(c.record(&"c".into(), 6), Some(6));
        assert_eq!(c.record(&"x".into(), 100), None, "non-voters never count");
    }

    #[test]
    fn voter_changes_keep_known_progress() {
        let mut c = Commitment::new(ids(&["a", "b", "c"]), 0, 1);
        c.record(&"a".into(), 10);
        c.record(&"b".into(), 3);
        assert_eq!(c.commit_index(), 3);
        c.set_voters(ids(&["a", "c"]));
        assert_eq!(c.recalculate(), None, "a quorum of two needs c");
        assert_eq!(c.record(&"c".into(), 8), Some(8));
        c.set_voters(ids(&["a"]));
        assert_eq!(c.recalculate(), Some(10), "a lone voter commits what it holds");
    }
}
