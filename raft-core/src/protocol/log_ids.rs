//! The terms of the log, kept in memory: the first index of each term the log
//! holds, so that log matching (`term_at`) never reads a store. A log of a
//! million entries written in a dozen terms takes a dozen pairs.
//!
//! It describes the entries the log holds, `first..=last`, and the snapshot
//! boundary beside them (the last entry a snapshot covers): with trailing
//! logs kept after a snapshot the log may begin before that boundary, and
//! after a compaction or an installed snapshot it begins after it.

use crate::{LogStore, StoreError};

/// The first index of each term in the log, and the snapshot boundary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogIds {
    /// `(first index, term)` of each run of one term, in index order; the
    /// first run starts at the log's first index. Empty when the log is.
    runs: Vec<(u64, u64)>,
    /// The log's last index (0 when empty).
    last: u64,
    /// The last entry the newest snapshot covers: `(index, term)`.
    snapshot: (u64, u64),
}

impl LogIds {
    /// An empty log after the snapshot `(index, term)` (`(0, 0)` for none).
    pub(crate) fn empty(snapshot: (u64, u64)) -> Self {
        Self { runs: Vec::new(), last: 0, snapshot }
    }

    /// Reads the runs of `store`'s log with a binary search per term (terms
    /// never decrease along a log): `O(terms × log entries)` reads.
    pub(crate) fn read(store: &dyn LogStore, snapshot: (u64, u64)) -> Result<Self, StoreError> {
        let (first, last) = (store.first_index()?, store.last_index()?);
        let mut ids = Self::empty(snapshot);
        if last == 0 {
            return Ok(ids);
        }
        let term = |index: u64| -> Result<u64, StoreError> {
            store
                .get_log(index)?
                .map(|log| log.term)
                .ok_or_else(|| crate::log::missing_entry(index, first, last))
        };
        let mut start = first;
        while start <= last {
            let run_term = term(start)?;
            // The last index of this term: the greatest i in start..=last with term(i) == run_term.
            let (mut low, mut high) = (start, last);
            while low < high {
                let middle = low + (high - low).div_ceil(2);
                if term(middle)? == run_term { low = middle } else { high = middle - 1 }
            }
            ids.runs.push((start, run_term));
            start = low + 1;
        }
        ids.last = last;
        Ok(ids)
    }

    /// The first index the log holds (0 when empty).
    pub(crate) fn first_index(&self) -> u64 {
        self.runs.first().map_or(0, |&(first, _)| first)
    }

    /// The last index the log holds (0 when empty).
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn last_index(&self) -> u64 {
        self.last
    }

    /// The term of the log's last entry, or the snapshot's when the log is
    /// empty.
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn last_term(&self) -> u64 {
        self.runs.last().map_or(self.snapshot.1, |&(_, term)| term)
    }

    /// The term of the entry at `index`: 0 for index 0, the snapshot's term
    /// at its boundary, `None` for an index neither in the log nor the
    /// boundary.
    pub(crate) fn term_at(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        if index >= self.first_index() && index <= self.last && !self.runs.is_empty() {
            let run = self.runs.partition_point(|&(first, _)| first <= index);
            return Some(self.runs[run - 1].1);
        }
        (index == self.snapshot.0).then_some(self.snapshot.1)
    }

    /// The first index of the run of one term that holds `index`, if the
    /// log holds `index`.
    pub(crate) fn run_start(&self, index: u64) -> Option<u64> {
        if self.runs.is_empty() || index < self.first_index() || index > self.last {
            return None;
        }
        let run = self.runs.partition_point(|&(first, _)| first <= index);
        Some(self.runs[run - 1].0)
    }

    /// Records entries `(index, term)` appended after the last one (the
    /// first of them may start an empty log anywhere).
    pub(crate) fn append(&mut self, entries: impl IntoIterator<Item = (u64, u64)>) {
        for (index, term) in entries {
            debug_assert!(self.runs.is_empty() || index == self.last + 1, "{index} after {}", self.last);
            if self.runs.last().is_none_or(|&(_, last_term)| last_term != term) {
                self.runs.push((index, term));
            }
            self.last = index;
        }
    }

    /// Removes the entries from `index` on (a follower's conflict).
    pub(crate) fn truncate_from(&mut self, index: u64) {
        if index <= self.first_index() {
            self.runs.clear();
            self.last = 0;
            return;
        }
        if index > self.last {
            return;
        }
        self.runs.retain(|&(first, _)| first < index);
        self.last = index - 1;
    }

    /// Removes the entries up to and including `through` (compaction).
    pub(crate) fn compact_through(&mut self, through: u64) {
        if through >= self.last {
            self.runs.clear();
            self.last = 0;
            return;
        }
        // Runs wholly at or before `through` go; the one holding `through + 1` starts there.
        let keep_from = self.runs.partition_point(|&(first, _)| first <= through).saturating_sub(1);
        self.runs.drain(..keep_from);
        if let Some(first) = self.runs.first_mut() {
            first.0 = first.0.max(through + 1);
        }
    }

    /// Moves the snapshot boundary to `(index, term)`.
    pub(crate) fn set_snapshot(&mut self, index: u64, term: u64) {
        self.snapshot = (index, term);
    }

    /// Empties the log, which now continues the snapshot `(index, term)`.
    pub(crate) fn reset(&mut self, snapshot: (u64, u64)) {
        *self = Self::empty(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Log, LogStore};
    use proptest::prelude::*;

    fn ids(entries: &[(u64, u64)], snapshot: (u64, u64)) -> LogIds {
        let mut ids = LogIds::empty(snapshot);
        ids.append(entries.iter().copied());
        ids
    }

    #[test]
    fn terms_come_from_the_runs_and_the_snapshot_boundary() {
        // Entries 5..=12: terms 2 2 2 3 3 5 5 5; a snapshot through 4 (term 2).
        let terms = [2, 2, 2, 3, 3, 5, 5, 5];
        let entries: Vec<(u64, u64)> = (5..).zip(terms).collect();
        let ids = ids(&entries, (4, 2));
        assert_eq!(ids.runs, vec![(5, 2), (8, 3), (10, 5)]);
        let table =
            [(0, Some(0)), (3, None), (4, Some(2)), (5, Some(2)), (7, Some(2)), (8, Some(3)), (9, Some(3))];
        for (index, expected) in table {
            assert_eq!(ids.term_at(index), expected, "index {index}");
        }
        assert_eq!((ids.term_at(12), ids.term_at(13)), (Some(5), None));
        let starts = [(4, None), (5, Some(5)), (7, Some(5)), (9, Some(8)), (12, Some(10)), (13, None)];
        for (index, expected) in starts {
            assert_eq!(ids.run_start(index), expected, "run start of {index}");
        }
        assert_eq!((ids.first_index(), ids.last_index(), ids.last_term()), (5, 12, 5));
        assert_eq!(LogIds::empty((4, 2)).last_term(), 2, "an empty log ends at the snapshot");
    }

    #[test]
    fn truncation_and_compaction_keep_the_runs_right() {
        let entries: Vec<(u64, u64)> = (1..).zip([1, 1, 2, 2, 2, 4, 4]).collect();
        let mut cut = ids(&entries, (0, 0));
        cut.truncate_from(5);
        assert_eq!((cut.runs.clone(), cut.last), (vec![(1, 1), (3, 2)], 4));
        cut.truncate_from(3);
        assert_eq!((cut.runs.clone(), cut.last_term()), (vec![(1, 1)], 1));
        cut.append([(3, 6)]);
        assert_eq!(cut.term_at(3), Some(6));
        let mut compacted = ids(&entries, (0, 0));
        compacted.compact_through(4);
        compacted.set_snapshot(4, 2);
        assert_eq!(compacted.runs, vec![(5, 2), (6, 4)]);
        assert_eq!(
            (compacted.term_at(3), compacted.term_at(4), compacted.term_at(5)),
            (None, Some(2), Some(2))
        );
        compacted.compact_through(7);
        assert_eq!((compacted.first_index(), compacted.last_index()), (0, 0));
        let mut reset = ids(&entries, (0, 0));
        reset.reset((20, 9));
        assert_eq!((reset.term_at(20), reset.last_term(), reset.term_at(3)), (Some(9), 9, None));
        reset.append([(21, 9), (22, 10)]);
        assert_eq!(reset.runs, vec![(21, 9), (22, 10)]);
    }

    #[test]
    fn reading_a_store_finds_every_run() {
        let store = crate::testing::VecLog::default();
        let terms = [3, 3, 3, 3, 4, 7, 7, 8, 8, 8, 8, 8, 9];
        let logs: Vec<Log> = (10..).zip(terms).map(|(i, t)| Log::command(i, t, "x")).collect();
        store.store_logs(&logs).expect("store");
        let read = LogIds::read(&store, (9, 3)).expect("read");
        let built = ids(&(10..).zip(terms).collect::<Vec<_>>(), (9, 3));
        assert_eq!(read, built);
        let empty = crate::testing::VecLog::default();
        assert_eq!(LogIds::read(&empty, (5, 2)).expect("read"), LogIds::empty((5, 2)));
    }

    proptest! {
        /// Any sequence of appends, truncations and compactions answers
        /// `term_at` as a plain list of the entries does.
        #[test]
        fn answers_like_a_list_of_entries(ops in proptest::collection::vec((0u8..3, 1u64..6, 0u64..4), 1..60)) {
            let mut ids = LogIds::empty((0, 0));
            let mut list: Vec<(u64, u64)> = Vec::new();
            let mut term = 1u64;
            for (op, amount, bump) in ops {
                match op {
                    0 => {
                        term += bump;
                        let next = list.last().map_or(1, |&(index, _)| index + 1);
                        let new: Vec<(u64, u64)> = (next..next + amount).map(|i| (i, term)).collect();
                        ids.append(new.iter().copied());
                        list.extend(new);
                    }
                    1 if !list.is_empty() => {
                        let from = list[list.len().saturating_sub(amount as usize)].0;
                        ids.truncate_from(from);
                        list.retain(|&(index, _)| index < from);
                    }
                    _ if !list.is_empty() => {
                        let through = list[(amount as usize).min(list.len()) - 1].0;
                        ids.compact_through(through);
                        list.retain(|&(index, _)| index > through);
                    }
                    _ => {}
                }
                let top = list.last().map_or(0, |&(index, _)| index) + 3;
                for index in 1..top {
                    let expected = list.iter().find(|&&(i, _)| i == index).map(|&(_, t)| t);
                    prop_assert_eq!(ids.term_at(index), expected, "index {}", index);
                }
                prop_assert_eq!(ids.last_index(), list.last().map_or(0, |&(index, _)| index));
            }
        }
    }
}
