//! [`WalStore`]: opening a directory, writing records, and the
//! [`LogStore`] and [`StableStore`] implementations.

use crate::WalOptions;
use crate::index::{Index, Lookup, Position, read_at};
use crate::record::{self, HEADER_LEN, Record};

use crate::stable::StableFile;
use raft_core::lock::LockFile;
use raft_core::log::{DeletePlan, check_batch, check_range, missing_entry, plan_delete};
use raft_core::{Log, LogStore, StableStore, StoreError};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

mod recover;
mod segments;
mod writer;

use writer::{Counters, Writer};

/// The lock file in a store's directory.
pub const LOCK_FILE: &str = "raft-kit.lock";

/// A segmented write-ahead log in one directory: a [`LogStore`] and a
/// [`StableStore`]. See the crate documentation.
pub struct WalStore {
    dir: PathBuf,
    stats: Arc<Counters>,
    writer: Mutex<Writer>,
    index: RwLock<Index>,
    stable: Arc<Mutex<StableFile>>,
    _lock: LockFile,
}

impl std::fmt::Debug for WalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let index = self.read_index();
        f.debug_struct("WalStore")
            .field("dir", &self.dir)
            .field("first_index", &index.first)
            .field("last_index", &index.last)
            .finish_non_exhaustive()
    }
}

/// What a [`WalStore`] has written since it was opened ([`WalStore::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// `fdatasync` calls on segments, one per record written.
    pub syncs: u64,
    /// `store_logs` batches written.
    pub batches: u64,
    /// Entries written.
    pub entries: u64,
    /// Record bytes written (headers, encoded entries and padding).
    pub bytes: u64,
    /// Segments started in a new, zero-filled file.
    pub segments_created: u64,
    /// Segments started in the reused file of a compacted one.
    pub segments_reused: u64,
}

impl WalStore {
    /// Opens (or creates) the store in directory `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, WalOptions::default())
    }

    /// Opens (or creates) the store in directory `dir`.
    ///
    /// Reads every segment; a torn record at the end of the last one (a
    /// write the process did not finish) is cut off and zeroed, and anything
    /// else that fails a check is [`StoreError::Corrupt`] (a segment of a
    /// newer format: [`StoreError::UnsupportedVersion`]): among them a
    /// segment file of another length than its header says (cut short by a
    /// copy or a repair), and a lost file — the stable file, the newest
    /// segment it records, or older segments no compaction let go of. A
    /// directory another open store holds is [`StoreError::Locked`].
    pub fn open_with(dir: impl AsRef<Path>, options: WalOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let lock = LockFile::acquire(dir.join(LOCK_FILE))?;
        let stable = Arc::new(Mutex::new(StableFile::open(&dir)?));
        let stats = Arc::new(Counters::default());
        let (writer, index) = recover::recover(&dir, options, stats.clone(), stable.clone())?;
        Ok(Self { dir, stats, writer: Mutex::new(writer), index: RwLock::new(index), stable, _lock: lock })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// What this store has written since it was opened.
    pub fn stats(&self) -> WalStats {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        WalStats {
            syncs: load(&self.stats.syncs),
            batches: load(&self.stats.batches),
            entries: load(&self.stats.entries),
            bytes: load(&self.stats.bytes),
            segments_created: load(&self.stats.segments_created),
            segments_reused: load(&self.stats.segments_reused),
        }
    }

    /// How many segment files the log spans now.
    pub fn segment_count(&self) -> usize {
        self.lock_writer().segments.len()
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_entry(&self, index: u64, position: Position, file: &File) -> Result<Log, StoreError> {
        let bytes = read_at(file, position.offset, position.len as usize)?;
        record::decode_entry(index, bytes)
    }
}

fn encoded_batch_len(logs: &[Log]) -> u64 {
    let entries: usize = logs.iter().map(|log| 4 + raft_core::codec::encoded_log_len(log)).sum();
    record::aligned(HEADER_LEN + 1 + 8 + 8 + 4 + entries) as u64
}

impl LogStore for WalStore {
    fn first_index(&self) -> Result<u64, StoreError> {
        Ok(self.read_index().first)
    }

    fn last_index(&self) -> Result<u64, StoreError> {
        Ok(self.read_index().last)
    }

    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        let lookup = self.read_index().lookup(index);
        match lookup {
            None => Ok(None),
            Some(Lookup::Cached(log)) => Ok(Some(log)),
            Some(Lookup::OnDisk(position, file)) => self.read_entry(index, position, &file).map(Some),
        }
    }

    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        let (stored_first, stored_last) = {
            let index = self.read_index();
            (index.first, index.last)
        };
        let Some(last) = check_range(stored_first, stored_last, first, last)? else { return Ok(Vec::new()) };
        let mut logs = Vec::new();
        let mut bytes = 0u64;
        let mut next = first;
        while next <= last && (logs.is_empty() || bytes < bytes_max) {
            // Look up a run under the lock, read it without.
            let run: Vec<(u64, Option<Lookup>)> = {
                let index = self.read_index();
                (next..=last.min(next + 255)).map(|i| (i, index.lookup(i))).collect()
            };
            let mut n = 0;
            while n < run.len() && (logs.is_empty() || bytes < bytes_max) {
                let read = match &run[n] {
                    (_, Some(Lookup::Cached(log))) => {
                        n += 1;
                        vec![log.clone()]
                    }
                    (i, Some(Lookup::OnDisk(..))) => {
                        let (read, taken) = self.read_span(*i, &run[n..])?;
                        n += taken;
                        read
                    }
                    (i, None) => {
                        // Compacted away since the range was checked, or damage.
                        let now_first = self.read_index().first;
                        return Err(if *i < now_first {
                            StoreError::Compacted { index: first, first_index: now_first }
                        } else {
                            missing_entry(*i, stored_first, stored_last)
                        });
                    }
                };
                for log in read {
                    if !logs.is_empty() && bytes >= bytes_max {
                        break;
                    }
                    bytes += log.payload_size();
                    logs.push(log);
                }
            }
            next = first + logs.len() as u64;
            if n < run.len() {
                break;
            }
        }
        Ok(logs)
    }

    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        let commit = self.lock_writer().commit;
        self.store_logs_with_commit(logs, commit)
    }

    fn store_logs_with_commit(&self, logs: &[Log], commit_index: u64) -> Result<(), StoreError> {
        if logs.is_empty() {
            return Ok(());
        }
        let mut writer = self.lock_writer();
        writer.check()?;
        check_batch(writer.last, logs)?;
        let commit = writer.commit.max(commit_index);
        writer.make_room(encoded_batch_len(logs))?;
        let key = writer.active.key;
        let seq = key.seq;
        let spans = {
            let Writer { buf, .. } = &mut *writer;
            record::encode_batch(buf, key, commit, logs)
        };
        let at = writer.write_record()?;
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.entries.fetch_add(logs.len() as u64, Ordering::Relaxed);
        self.stats.bytes.fetch_add(writer.buf.len() as u64, Ordering::Relaxed);
        let positions: Vec<Position> =
            spans.iter().map(|&(offset, len)| Position { seq, offset: at + offset, len }).collect();
        let first = logs[0].index;
        let last = first + logs.len() as u64 - 1;
        if writer.last == 0 {
            writer.first = first;
        }
        writer.last = last;
        writer.commit = commit;
        if let Some(segment) = writer.segments.back_mut() {
            segment.max_index = segment.max_index.max(last);
        }
        let active_file = writer.active.file.clone();
        let mut index = self.write_index();
        index.files.entry(seq).or_insert(active_file);
        index.push(first, &positions, Some(logs));
        index.commit = commit;
        Ok(())
    }

    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        let mut writer = self.lock_writer();
        writer.check()?;
        let commit = writer.commit;
        match plan_delete(writer.first, writer.last, min, max)? {
            DeletePlan::Nothing => Ok(()),
            DeletePlan::Suffix(from) => {
                writer.write_control(Record::TruncateFrom { commit, index: from })?;
                writer.last = from - 1;
                self.write_index().truncate_from(from);
                Ok(())
            }
            DeletePlan::Prefix(through) => {
                writer.write_control(Record::TruncateThrough { commit, index: through })?;
                writer.first = through + 1;
                let released = writer.release_segments_through(through);
                let mut index = self.write_index();
                index.drop_through(through);
                released.iter().for_each(|seq| drop(index.files.remove(seq)));
                Ok(())
            }
            DeletePlan::All => {
                writer.write_control(Record::Clear { commit })?;
                (writer.first, writer.last) = (0, 0);
                let released = writer.release_segments_through(u64::MAX);
                let mut index = self.write_index();
                index.clear();
                released.iter().for_each(|seq| drop(index.files.remove(seq)));
                Ok(())
            }
        }
    }

    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.read_index().commit))
    }
}

impl WalStore {
    /// Reads the on-disk run that starts at `run[0]` (entry `first`) in one
    /// read, as far as the entries lie back to back in one segment; returns
    /// them and how many of `run` they cover.
    fn read_span(&self, first: u64, run: &[(u64, Option<Lookup>)]) -> Result<(Vec<Log>, usize), StoreError> {
        const SPAN_MAX: u64 = 4 << 20;
        let Some((_, Some(Lookup::OnDisk(start, file)))) = run.first() else { return Ok((Vec::new(), 0)) };
        let mut end = *start;
        let mut taken = 1;
        for (_, lookup) in &run[1..] {
            match lookup {
                Some(Lookup::OnDisk(p, _))
                    if p.seq == start.seq
                        && p.offset == end.offset + u64::from(end.len) + 4
                        && p.offset + u64::from(p.len) - start.offset <= SPAN_MAX =>
                {
                    end = *p;
                    taken += 1;
                }
                _ => break,
            }
        }
        let span = read_at(file, start.offset, (end.offset + u64::from(end.len) - start.offset) as usize)?;
        let logs = run[..taken]
            .iter()
            .enumerate()
            .map(|(n, (_, lookup))| {
                let Some(Lookup::OnDisk(p, _)) = lookup else { unreachable!("taken only on-disk entries") };
                let from = (p.offset - start.offset) as usize;
                record::decode_entry(first + n as u64, span.slice(from..from + p.len as usize))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((logs, taken))
    }
}

impl StableStore for WalStore {
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        raft_core::stable::check_key(key)?;
        writer::lock_stable(&self.stable).set(key, value)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        raft_core::stable::check_key(key)?;
        Ok(writer::lock_stable(&self.stable).get(key))
    }
}

#[cfg(test)]
mod tests;
