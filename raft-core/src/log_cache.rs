//! The log as the node sees it: recent entries in memory in front of the
//! [`LogStore`], including entries whose write has not finished yet.

use crate::{Log, LogStore, StoreError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Recent entries in memory, in front of the log store.
///
/// The leader hands entries to replication before its own write returns
/// (Raft thesis §10.2.1), so the cache holds every entry whose write is still
/// queued or running, plus up to `capacity` written ones. Each entry carries
/// the sequence number of the storage operation that writes it; an entry is
/// evicted only once that operation has completed, so a read never falls
/// through to the store for an entry the store does not have yet.
pub(crate) struct LogCache {
    store: Arc<dyn LogStore>,
    inner: Mutex<Inner>,
}

struct Inner {
    entries: VecDeque<(Log, u64)>,
    written_seq: u64,
    capacity: usize,
    /// The last index and term covered by the newest snapshot; the log may be
    /// compacted up to here, and `term_at` answers for it.
    snapshot: (u64, u64),
}

impl LogCache {
    pub(crate) fn new(store: Arc<dyn LogStore>, capacity: usize) -> Self {
        let inner = Inner { entries: VecDeque::new(), written_seq: 0, capacity, snapshot: (0, 0) };
        Self { store, inner: Mutex::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// Adds entries about to be written by storage operation `seq`. Entries
    /// must continue the cached tail; anything not continuing it is dropped
    /// from the cache first (it was truncated).
    pub(crate) fn append(&self, logs: &[Log], seq: u64) {
        let Some(head) = logs.first() else { return };
        let mut inner = self.lock();
        if inner.entries.back().is_some_and(|(last, _)| last.index + 1 != head.index) {
            inner.entries.retain(|(log, _)| log.index < head.index);
            if inner.entries.back().is_some_and(|(last, _)| last.index + 1 != head.index) {
                inner.entries.clear();
            }
        }
        inner.entries.extend(logs.iter().map(|log| (log.clone(), seq)));
        inner.evict();
    }

    /// Drops cached entries from `index` on (a conflicting suffix).
    pub(crate) fn truncate_from(&self, index: u64) {
        let mut inner = self.lock();
        while inner.entries.back().is_some_and(|(log, _)| log.index >= index) {
            inner.entries.pop_back();
        }
    }

    /// Drops cached entries up to and including `index` (compaction).
    pub(crate) fn discard_through(&self, index: u64) {
        let mut inner = self.lock();
        while inner.entries.front().is_some_and(|(log, _)| log.index <= index) {
            inner.entries.pop_front();
        }
    }

    /// Drops everything cached (a snapshot replaced the log).
    pub(crate) fn clear(&self) {
        self.lock().entries.clear();
    }

    /// Records that storage operations up to `seq` have completed.
    pub(crate) fn mark_written(&self, seq: u64) {
        let mut inner = self.lock();
        inner.written_seq = inner.written_seq.max(seq);
        inner.evict();
    }

    /// Records the newest snapshot's last index and term, which `term_at`
    /// answers for once the log is compacted.
    pub(crate) fn set_snapshot(&self, index: u64, term: u64) {
        self.lock().snapshot = (index, term);
    }

    fn cached(&self, index: u64) -> Option<Log> {
        let inner = self.lock();
        let first = inner.entries.front()?.0.index;
        let offset = usize::try_from(index.checked_sub(first)?).ok()?;
        inner.entries.get(offset).map(|(log, _)| log.clone())
    }

    /// The entry at `index`, from the cache or else the store.
    pub(crate) fn get(&self, index: u64) -> Result<Option<Log>, StoreError> {
        match self.cached(index) {
            Some(log) => Ok(Some(log)),
            None => self.store.get_log(index),
        }
    }

    /// The term of the entry at `index`: 0 for index 0, the snapshot's term
    /// at the snapshot's index, `None` when the entry is neither stored nor
    /// covered by the snapshot boundary.
    pub(crate) fn term_at(&self, index: u64) -> Result<Option<u64>, StoreError> {
        if index == 0 {
            return Ok(Some(0));
        }
        let snapshot = self.lock().snapshot;
        if index == snapshot.0 {
            return Ok(Some(snapshot.1));
        }
        Ok(self.get(index)?.map(|log| log.term))
    }

    /// Entries `first..=last` in order, stopping at `bytes_max` payload bytes
    /// (at least one entry) or at the first missing index.
    pub(crate) fn get_range(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        let mut out: Vec<Log> = Vec::new();
        let mut bytes_total = 0u64;
        let mut next = first;
        while next <= last && (out.is_empty() || bytes_total < bytes_max) {
            let budget = bytes_max.saturating_sub(bytes_total);
            let (from_cache, front) = self.cached_run(next, last, budget, out.is_empty());
            let chunk = if from_cache.is_empty() {
                // Below the cache everything is written; at and above its
                // front the store may still hold a suffix being truncated.
                let store_last = front.map_or(last, |front| last.min(front.saturating_sub(1)));
                if store_last < next {
                    break;
                }
                self.store.get_logs(next, store_last, budget.max(1))?
            } else {
                from_cache
            };
            let Some(tail) = chunk.last() else { break };
            next = tail.index + 1;
            bytes_total += chunk.iter().map(Log::payload_size).sum::<u64>();
            out.extend(chunk);
        }
        Ok(out)
    }

    /// The term at `index` when memory alone can tell: index 0, the
    /// snapshot boundary, or a cached entry. `None` means ask the store.
    pub(crate) fn cached_term(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        let inner = self.lock();
        if index == inner.snapshot.0 {
            return Some(inner.snapshot.1);
        }
        let first = inner.entries.front()?.0.index;
        let offset = usize::try_from(index.checked_sub(first)?).ok()?;
        inner.entries.get(offset).map(|(log, _)| log.term)
    }

    /// What an AppendEntries from `first` needs, when the cache holds all of
    /// it: the term of entry `first - 1` and the entries `first..=last`
    /// (bounded like [`get_range`](Self::get_range)). `None` means read
    /// through the store with `term_at` and `get_range`.
    pub(crate) fn cached_append(&self, first: u64, last: u64, bytes_max: u64) -> Option<(u64, Vec<Log>)> {
        let prev_term = self.cached_term(first.checked_sub(1)?)?;
        if first > last {
            return Some((prev_term, Vec::new()));
        }
        self.cached_range(first, last, bytes_max).map(|entries| (prev_term, entries))
    }

    /// Entries `first..=last` (bounded like [`get_range`](Self::get_range))
    /// when the cache holds at least the first; `None` means read through
    /// the store with `get_range`.
    pub(crate) fn cached_range(&self, first: u64, last: u64, bytes_max: u64) -> Option<Vec<Log>> {
        let (entries, _) = self.cached_run(first, last, bytes_max, true);
        (entries.first().map(|log| log.index) == Some(first)).then_some(entries)
    }

    /// The cached entries from `first` on, and the cache's first index.
    fn cached_run(&self, first: u64, last: u64, bytes_max: u64, need_one: bool) -> (Vec<Log>, Option<u64>) {
        let inner = self.lock();
        let Some(front) = inner.entries.front().map(|(log, _)| log.index) else { return (Vec::new(), None) };
        if first < front {
            return (Vec::new(), Some(front));
        }
        let mut out = Vec::new();
        let mut bytes_total = 0u64;
        let start = usize::try_from(first - front).unwrap_or(usize::MAX);
        for (log, _) in inner.entries.range(start.min(inner.entries.len())..) {
            if log.index > last || ((!out.is_empty() || !need_one) && bytes_total >= bytes_max) {
                break;
            }
            bytes_total += log.payload_size();
            out.push(log.clone());
        }
        (out, Some(front))
    }
}

impl Inner {
    fn evict(&mut self) {
        while self.entries.len() > self.capacity
            && self.entries.front().is_some_and(|(_, seq)| *seq <= self.written_seq)
        {
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_over(store_entries: std::ops::RangeInclusive<u64>, capacity: usize) -> LogCache {
        let store = Arc::new(crate::testing::VecLog::default());
        let logs: Vec<Log> = store_entries.map(|i| Log::command(i, 1, format!("s{i}"))).collect();
        store.0.lock().expect("lock").extend(logs);
        LogCache::new(store, capacity)
    }

    #[test]
    fn unwritten_entries_are_never_evicted() {
        let cache = cache_over(1..=5, 2);
        let pending: Vec<Log> = (6..=10).map(|i| Log::command(i, 2, "p")).collect();
        cache.append(&pending, 1);
        assert_eq!(cache.get(6).expect("get").map(|l| l.term), Some(2), "pending entry served from memory");
        cache.mark_written(1);
        assert_eq!(cache.lock().entries.len(), 2, "once written, only `capacity` stay");
    }

    #[test]
    fn ranges_span_store_and_cache() {
        let cache = cache_over(1..=5, 100);
        let pending: Vec<Log> = (6..=8).map(|i| Log::command(i, 2, "p")).collect();
        cache.append(&pending, 1);
        let got: Vec<u64> = cache.get_range(3, 8, u64::MAX).expect("range").iter().map(|l| l.index).collect();
        assert_eq!(got, vec![3, 4, 5, 6, 7, 8]);
        let budget: Vec<u64> = cache.get_range(3, 8, 1).expect("range").iter().map(|l| l.index).collect();
        assert_eq!(budget, vec![3], "a tiny budget still returns one entry");
    }

    #[test]
    fn truncation_replaces_the_cached_suffix() {
        let cache = LogCache::new(Arc::new(crate::testing::VecLog::default()), 100);
        cache.append(&(1..=5).map(|i| Log::command(i, 1, "a")).collect::<Vec<_>>(), 1);
        cache.truncate_from(4);
        cache.append(&[Log::command(4, 3, "b")], 2);
        assert_eq!(cache.term_at(4).expect("term"), Some(3));
        assert_eq!(cache.term_at(5).expect("term"), None);
        cache.set_snapshot(9, 7);
        assert_eq!(cache.term_at(9).expect("term"), Some(7));
        assert_eq!(cache.term_at(0).expect("term"), Some(0));
    }

    #[test]
    fn memory_answers_only_for_what_it_holds() {
        let cache = cache_over(1..=5, 100);
        let pending: Vec<Log> = (6..=8).map(|i| Log::command(i, 2, "p")).collect();
        cache.append(&pending, 1);
        assert_eq!(cache.cached_term(0), Some(0));
        assert_eq!(cache.cached_term(7), Some(2));
        assert_eq!(cache.cached_term(5), None, "stored but not cached: ask the store");
        assert_eq!(cache.cached_term(9), None);
        cache.set_snapshot(5, 1);
        assert_eq!(cache.cached_term(5), Some(1), "the snapshot boundary is known");

        let (prev_term, entries) = cache.cached_append(7, 8, u64::MAX).expect("all cached");
        assert_eq!(prev_term, 2);
        assert_eq!(entries.iter().map(|l| l.index).collect::<Vec<_>>(), vec![7, 8]);
        let (_, one) = cache.cached_append(6, 8, 1).expect("all cached");
        assert_eq!(one.len(), 1, "the byte budget bounds the batch like get_range");
        assert_eq!(
            cache.cached_append(6, 8, u64::MAX).map(|(t, _)| t),
            Some(1),
            "prev at the snapshot boundary"
        );
        assert_eq!(
            cache.cached_append(9, 8, u64::MAX).map(|(t, e)| (t, e.len())),
            Some((2, 0)),
            "a heartbeat"
        );
        assert!(cache.cached_append(4, 8, u64::MAX).is_none(), "entries below the cache come from the store");
        assert!(cache.cached_append(0, 8, u64::MAX).is_none());
    }
}
