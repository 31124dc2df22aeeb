//! What the store knows of its log in memory: where each entry is on disk,
//! and the most recent entries themselves.

use bytes::Bytes;
use raft_core::Log;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::sync::Arc;

/// Where one entry's encoding is: segment, file offset and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) seq: u64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

/// The log `first..=last` (both 0 when empty), its positions, a cache of
/// its newest entries, and the open segment files.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) commit: u64,
    positions: VecDeque<Position>,
    /// The newest `cache.len()` entries, ending at `last`.
    cache: VecDeque<Log>,
    cache_max: usize,
    pub(crate) files: BTreeMap<u64, Arc<File>>,
}

/// What a read of one entry needs: the entry itself, or where it is.
pub(crate) enum Lookup {
    Cached(Log),
    OnDisk(Position, Arc<File>),
}

impl Index {
    pub(crate) fn new(cache_max: usize) -> Self {
        Self { cache_max, ..Self::default() }
    }

    /// Adds entries `first..` at `positions` (with the entries themselves,
    /// to cache, when the writer has them).
    pub(crate) fn push(&mut self, first: u64, positions: &[Position], logs: Option<&[Log]>) {
        if positions.is_empty() {
            return;
        }
        if self.last == 0 {
            self.first = first;
        }
        debug_assert!(self.last == 0 || first == self.last + 1);
        self.positions.extend(positions.iter().copied());
        self.last = first + positions.len() as u64 - 1;
        match logs {
            Some(logs) if self.cache_max > 0 => {
                let keep = logs.len().min(self.cache_max);
                self.cache.extend(logs[logs.len() - keep..].iter().cloned());
                while self.cache.len() > self.cache_max {
                    self.cache.pop_front();
                }
            }
            // Entries read back on open: the cache would no longer end at
            // `last`; start it afresh.
            _ => self.cache.clear(),
        }
    }

    /// Removes entries from `index` on.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        if self.last == 0 || index > self.last {
            return;
        }
        if index <= self.first {
            return self.clear();
        }
        let drop = (self.last - index + 1) as usize;
        self.positions.truncate(self.positions.len() - drop);
        let cached = self.cache.len().saturating_sub(drop);
        self.cache.truncate(cached);
        self.last = index - 1;
    }

    /// Removes entries up to and including `index`.
    pub(crate) fn drop_through(&mut self, index: u64) {
        if self.last == 0 || index < self.first {
            return;
        }
        if index >= self.last {
            return self.clear();
        }
        let drop = (index - self.first + 1) as usize;
        self.positions.drain(..drop);
        let cache_first = self.last + 1 - self.cache.len() as u64;
        if index >= cache_first {
            self.cache.drain(..(index - cache_first + 1) as usize);
        }
        self.first = index + 1;
    }

    pub(crate) fn clear(&mut self) {
        self.positions.clear();
        self.cache.clear();
        self.first = 0;
        self.last = 0;
    }

    /// Where entry `index` is; `None` outside `first..=last`.
    pub(crate) fn lookup(&self, index: u64) -> Option<Lookup> {
        if self.last == 0 || index < self.first || index > self.last {
            return None;
        }
        let cache_first = self.last + 1 - self.cache.len() as u64;
        if index >= cache_first {
            return self.cache.get((index - cache_first) as usize).cloned().map(Lookup::Cached);
        }
        let position = *self.positions.get((index - self.first) as usize)?;
        let file = self.files.get(&position.seq)?.clone();
        Some(Lookup::OnDisk(position, file))
    }
}

/// Reads `len` bytes at `offset` of `file`.
pub(crate) fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(n: u64) -> Vec<Position> {
        (0..n).map(|i| Position { seq: 1, offset: i * 10, len: 10 }).collect()
    }

    #[test]
    fn truncations_keep_positions_and_cache_in_step() {
        let mut index = Index::new(4);
        let logs: Vec<Log> = (1..=10).map(|i| Log::command(i, 1, "x")).collect();
        index.push(1, &positions(10), Some(&logs));
        assert!(matches!(index.lookup(10), Some(Lookup::Cached(log)) if log.index == 10));
        assert!(
            matches!(index.lookup(6), Some(Lookup::OnDisk(p, _)) if p.offset == 50) || index.files.is_empty()
        );
        index.truncate_from(9);
        assert_eq!((index.first, index.last), (1, 8));
        assert!(matches!(index.lookup(8), Some(Lookup::Cached(log)) if log.index == 8));
        index.drop_through(7);
        assert_eq!((index.first, index.last), (8, 8));
        assert!(matches!(index.lookup(8), Some(Lookup::Cached(log)) if log.index == 8));
        assert!(index.lookup(7).is_none());
        index.drop_through(8);
        assert_eq!((index.first, index.last), (0, 0));
        index.push(20, &positions(2), None);
        assert_eq!((index.first, index.last), (20, 21));
    }
}
