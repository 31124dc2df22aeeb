//! [`WalStore`]: opening a directory, writing records, and the
//! [`LogStore`] and [`StableStore`] implementations.

use crate::WalOptions;
use crate::index::{Index, Lookup, Position, read_at};
use crate::record::{self, HEADER_LEN, Key, Limit, Record};
use crate::segment::{self, PREPARING, SEGMENT_HEADER_LEN, SPARE_SUFFIX, SegmentHeader};
use crate::stable::StableFile;
use raft_core::lock::LockFile;
use raft_core::log::{DeletePlan, check_batch, check_range, missing_entry, plan_delete};
use raft_core::{Log, LogStore, StableStore, StoreError};
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

/// The lock file in a store's directory.
pub const LOCK_FILE: &str = "raft-kit.lock";

/// A segmented write-ahead log in one directory: a [`LogStore`] and a
/// [`StableStore`]. See the crate documentation.
pub struct WalStore {
    dir: PathBuf,
    stats: Arc<Counters>,
    writer: Mutex<Writer>,
    index: RwLock<Index>,
    stable: Mutex<StableFile>,
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

#[derive(Debug, Default)]
struct Counters {
    syncs: AtomicU64,
    batches: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
    segments_created: AtomicU64,
    segments_reused: AtomicU64,
}

/// One segment the writer knows of.
#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    file: Arc<File>,
    size: u64,
    /// The highest index any batch in it holds (0 for none).
    max_index: u64,
}

/// The segment being written.
struct Active {
    key: Key,
    file: Arc<File>,
    offset: u64,
    size: u64,
}

/// A compacted segment's file, kept to be the next segment.
struct Spare {
    path: PathBuf,
    /// The segment's open file, as readers may still hold it: the file is
    /// written again only once none does, so that a read racing the
    /// compaction finds the old bytes (and reports the entry compacted).
    readers: Weak<File>,
}

/// What only the writer touches.
struct Writer {
    dir: PathBuf,
    options: WalOptions,
    active: Active,
    /// Every segment, oldest first; the active one last.
    segments: VecDeque<Segment>,
    /// The next segment, being zero-filled beside the writer.
    preparing: Option<std::thread::JoinHandle<std::io::Result<File>>>,
    buf: Vec<u8>,
    first: u64,
    last: u64,
    commit: u64,
    /// Set when a write failed: what is on disk past the last good record is
    /// unknown until the store is opened again.
    failed: Option<String>,
    /// Compacted segments' files ready for reuse, oldest first.
    spares: Vec<Spare>,
    /// Files becoming spares on the `removing` thread.
    pending_spares: Vec<Spare>,
    /// Renaming (to spares) or removing the files of segments a compaction
    /// left behind; says which renames succeeded.
    removing: Option<std::thread::JoinHandle<Vec<PathBuf>>>,
    stats: Arc<Counters>,
}

impl Drop for Writer {
    /// Waits for the helper threads, so that nothing writes in the
    /// directory once the store is closed.
    fn drop(&mut self) {
        if let Some(task) = self.removing.take() {
            let _ = task.join();
        }
        if let Some(task) = self.preparing.take() {
            let _ = task.join();
        }
    }
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
    /// newer format: [`StoreError::UnsupportedVersion`]). A directory another
    /// open store holds is [`StoreError::Locked`].
    pub fn open_with(dir: impl AsRef<Path>, options: WalOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let lock = LockFile::acquire(dir.join(LOCK_FILE))?;
        let stable = StableFile::open(&dir)?;
        let stats = Arc::new(Counters::default());
        let (writer, index) = recover(&dir, options, stats.clone())?;
        Ok(Self {
            dir,
            stats,
            writer: Mutex::new(writer),
            index: RwLock::new(index),
            stable: Mutex::new(stable),
            _lock: lock,
        })
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

/// Reads the directory back: the segments in order, their records replayed
/// into the index. Creates the first segment of a new store.
fn recover(dir: &Path, options: WalOptions, stats: Arc<Counters>) -> Result<(Writer, Index), StoreError> {
    let mut seqs = Vec::new();
    let mut spares = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = segment::parse_name(&name) {
            seqs.push(seq);
        } else if name.ends_with(".tmp") {
            // A segment being prepared, or a stable file being written,
            // when the process stopped: never part of the store.
            std::fs::remove_file(entry.path())?;
        } else if name.ends_with(SPARE_SUFFIX) {
            let keep = spares.len() < options.spare_segments
                && entry.metadata().is_ok_and(|m| m.len() == options.segment_size);
            if keep {
                spares.push(Spare { path: entry.path(), readers: Weak::new() });
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    seqs.sort_unstable();
    spares.sort_by(|a, b| a.path.cmp(&b.path));
    // Every header first: a segment's end is in the next one's.
    let mut headers = Vec::with_capacity(seqs.len());
    for (n, &seq) in seqs.iter().enumerate() {
        let path = dir.join(segment::file_name(seq));
        let name = path.display().to_string();
        if n > 0 && seq != seqs[n - 1] + 1 {
            return Err(StoreError::Corrupt {
                location: name,
                reason: format!("segment {} before it is missing", seqs[n - 1] + 1),
            });
        }
        let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(File::open(&path)?, SEGMENT_HEADER_LEN as u64),
            &mut head,
        )?;
        let header = SegmentHeader::decode(&head, &name)?;
        if header.seq != seq {
            return Err(StoreError::Corrupt {
                location: name,
                reason: format!("its header says segment {}", header.seq),
            });
        }
        headers.push(header);
    }
    let mut index = Index::new(options.cache_entries);
    let mut segments = VecDeque::new();
    let mut active = None;
    for (n, header) in headers.iter().enumerate() {
        let path = dir.join(segment::file_name(header.seq));
        let name = path.display().to_string();
        let data = std::fs::read(&path)?;
        let limit = headers.get(n + 1).map_or(Limit::Last, |next| Limit::At(next.prev_end));
        let key = Key { seq: header.seq, salt: header.salt };
        let (records, end) = record::scan(&data, key, SEGMENT_HEADER_LEN, limit, &name)?;
        if end.torn {
            tracing::warn!(segment = %name, offset = end.offset, "cutting off a record the process did not finish writing");
        }
        let mut max_index = 0;
        for (_, record) in records {
            index.commit = index.commit.max(record.commit());
            replay(&mut index, header.seq, record, &name, &mut max_index)?;
        }
        let file = Arc::new(std::fs::OpenOptions::new().read(true).write(true).open(&path)?);
        index.files.insert(header.seq, file.clone());
        let size = data.len() as u64;
        segments.push_back(Segment { seq: header.seq, path, file: file.clone(), size, max_index });
        if limit == Limit::Last {
            active = Some(Active { key, file, offset: end.offset, size });
        }
    }
    let mut writer = Writer {
        dir: dir.to_path_buf(),
        options,
        // Replaced below when the store is new.
        active: Active { key: Key { seq: 0, salt: 0 }, file: Arc::new(File::open(dir)?), offset: 0, size: 0 },
        segments,
        preparing: None,
        buf: Vec::new(),
        first: index.first,
        last: index.last,
        commit: index.commit,
        failed: None,
        spares,
        pending_spares: Vec::new(),
        removing: None,
        stats,
    };
    match active {
        Some(active) => writer.active = active,
        None => {
            writer.start_segment(1, 0)?;
            index.files.insert(1, writer.active.file.clone());
        }
    }
    Ok((writer, index))
}

/// Applies one record read back to the index.
fn replay(
    index: &mut Index,
    seq: u64,
    record: Record,
    name: &str,
    max_index: &mut u64,
) -> Result<(), StoreError> {
    match record {
        Record::Batch { first, entries, .. } => {
            if entries.is_empty() {
                return Ok(());
            }
            if index.last != 0 && first != index.last + 1 {
                return Err(StoreError::Corrupt {
                    location: name.to_string(),
                    reason: format!(
                        "a batch starting at index {first} does not continue the log {}..={}: entries are missing",
                        index.first, index.last
                    ),
                });
            }
            let positions: Vec<Position> =
                entries.iter().map(|&(offset, len)| Position { seq, offset, len }).collect();
            index.push(first, &positions, None);
            *max_index = (*max_index).max(index.last);
        }
        Record::TruncateFrom { index: from, .. } => index.truncate_from(from),
        Record::TruncateThrough { index: through, .. } => index.drop_through(through),
        Record::Clear { .. } => index.clear(),
    }
    Ok(())
}

impl Writer {
    fn check(&self) -> Result<(), StoreError> {
        match &self.failed {
            Some(reason) => Err(StoreError::Io(std::io::Error::other(format!(
                "an earlier write failed ({reason}); open the store again to recover"
            )))),
            None => Ok(()),
        }
    }

    /// Makes room for a record of `len` bytes: a new segment when the
    /// active one cannot take it.
    fn make_room(&mut self, len: u64) -> Result<(), StoreError> {
        if self.active.offset + len <= self.active.size {
            let no_spare_coming = self.spares.is_empty() && self.pending_spares.is_empty();
            if self.preparing.is_none() && no_spare_coming && self.active.offset * 2 > self.active.size {
                self.start_preparing();
            }
            return Ok(());
        }
        let size = self.options.segment_size.max(SEGMENT_HEADER_LEN as u64 + len);
        self.start_segment(self.active.seq() + 1, size)
    }

    /// Makes segment `seq` of `size` bytes (the default when 0) the active
    /// one: in a spare file when there is one that fits, else in a new
    /// zero-filled one. Its header names where the current one's records
    /// end; only then, with the header synced, does the file get its name.
    fn start_segment(&mut self, seq: u64, size: u64) -> Result<(), StoreError> {
        let size = if size == 0 { self.options.segment_size } else { size };
        let prev_end = if self.segments.is_empty() { 0 } else { self.active.offset };
        let header =
            SegmentHeader { seq, base_index: self.last + 1, size, salt: segment::new_salt(seq), prev_end };
        let spare = if size == self.options.segment_size { self.take_spare(size)? } else { None };
        let (file, from, reused) = match spare {
            Some((file, path)) => (file, path, true),
            None => {
                let prepared = self.dir.join(PREPARING);
                let ready = match self.preparing.take().map(|task| task.join()) {
                    Some(Ok(Ok(file))) if size == self.options.segment_size => Some(file),
                    Some(Ok(Ok(_))) => None,
                    Some(Ok(Err(error))) => {
                        tracing::warn!(%error, "preparing the next segment failed; preparing it now");
                        None
                    }
                    Some(Err(_)) => None,
                    None => None,
                };
                let file = match ready {
                    Some(file) => file,
                    None => segment::preallocate(&prepared, size)?,
                };
                (file, prepared, false)
            }
        };
        let path = segment::install(&self.dir, &file, &from, header)?;
        let counter = if reused { &self.stats.segments_reused } else { &self.stats.segments_created };
        counter.fetch_add(1, Ordering::Relaxed);
        let file = Arc::new(file);
        self.segments.push_back(Segment { seq, path, file: file.clone(), size, max_index: 0 });
        self.active =
            Active { key: Key { seq, salt: header.salt }, file, offset: SEGMENT_HEADER_LEN as u64, size };
        Ok(())
    }

    /// A spare file of `size` bytes that no reader holds any more, opened
    /// for writing, with its path.
    fn take_spare(&mut self, size: u64) -> Result<Option<(File, PathBuf)>, StoreError> {
        self.collect_spares();
        while let Some(n) = self.spares.iter().position(|spare| spare.readers.strong_count() == 0) {
            let spare = self.spares.remove(n);
            let file = std::fs::OpenOptions::new().read(true).write(true).open(&spare.path)?;
            if file.metadata()?.len() == size {
                return Ok(Some((file, spare.path)));
            }
            drop(file);
            std::fs::remove_file(&spare.path)?;
        }
        Ok(None)
    }

    /// Waits for the thread renaming compacted segments' files, and takes
    /// the spares it made.
    fn collect_spares(&mut self) {
        let Some(task) = self.removing.take() else { return };
        let renamed = task.join().unwrap_or_default();
        for spare in std::mem::take(&mut self.pending_spares) {
            if renamed.contains(&spare.path) {
                self.spares.push(spare);
            }
        }
    }

    fn start_preparing(&mut self) {
        let (path, size) = (self.dir.join(PREPARING), self.options.segment_size);
        self.preparing = std::thread::Builder::new()
            .name("raft-wal-prepare".into())
            .spawn(move || segment::preallocate(&path, size))
            .ok();
    }

    /// Writes the record in `buf` at the active segment's end and syncs it.
    fn write_record(&mut self) -> Result<u64, StoreError> {
        let at = self.active.offset;
        let written =
            self.active.file.write_all_at(&self.buf, at).and_then(|()| self.active.file.sync_data());
        if let Err(error) = written {
            self.failed = Some(error.to_string());
            return Err(error.into());
        }
        self.active.offset += self.buf.len() as u64;
        Ok(at)
    }

    /// Writes a truncation or clear record.
    fn write_control(&mut self, record: Record) -> Result<(), StoreError> {
        self.make_room(record::aligned(HEADER_LEN + 17) as u64)?;
        record::encode_control(&mut self.buf, self.active.key, &record);
        self.write_record().map(|_| ())
    }

    /// Lets go of whole segments, oldest first, that hold nothing past
    /// `through` (never the active one). On a thread of its own, their
    /// files become spares for the next segments (up to
    /// [`WalOptions::spare_segments`]) or are removed — freeing a large
    /// file's blocks takes milliseconds — one at a time, oldest first, each
    /// followed by a sync of the directory, so that the segments left after
    /// a crash never have a gap. Until then the compaction record (already
    /// durable) keeps their entries out of the log on any open. Returns the
    /// segments' sequence numbers.
    fn release_segments_through(&mut self, through: u64) -> Vec<u64> {
        let mut released = Vec::new();
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.max_index <= through) {
            let Some(segment) = self.segments.pop_front() else { break };
            released.push(segment);
        }
        if released.is_empty() {
            return Vec::new();
        }
        let seqs = released.iter().map(|s| s.seq).collect();
        self.collect_spares();
        let mut jobs = Vec::with_capacity(released.len());
        for segment in released {
            let room = self.spares.len() + self.pending_spares.len() < self.options.spare_segments;
            let to = (room && segment.size == self.options.segment_size)
                .then(|| self.dir.join(segment::spare_name(segment.seq)));
            if let Some(to) = &to {
                self.pending_spares.push(Spare { path: to.clone(), readers: Arc::downgrade(&segment.file) });
            }
            jobs.push((segment.path, to));
        }
        let dir = self.dir.clone();
        self.removing = std::thread::Builder::new()
            .name("raft-wal-remove".into())
            .spawn(move || {
                let mut renamed = Vec::new();
                for (path, to) in jobs {
                    let done = match &to {
                        Some(to) => std::fs::rename(&path, to),
                        None => std::fs::remove_file(&path),
                    };
                    if let Err(error) = done.and_then(|()| segment::sync_dir(&dir)) {
                        tracing::warn!(%error, path = %path.display(), "removing a compacted segment failed");
                    } else if let Some(to) = to {
                        renamed.push(to);
                    }
                }
                renamed
            })
            .ok();
        seqs
    }
}

impl Active {
    fn seq(&self) -> u64 {
        self.key.seq
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
        self.stable.lock().unwrap_or_else(std::sync::PoisonError::into_inner).set(key, value)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        raft_core::stable::check_key(key)?;
        Ok(self.stable.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key))
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
