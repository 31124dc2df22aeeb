//! The writer's segments: starting the next one (in a spare file or a new
//! zero-filled one) and letting go of compacted ones.

use super::writer::{Active, Counters, Segment, Spare, Writer};
use crate::record::Key;
use crate::segment::{self, PREPARING, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::stable::StableFile;
use raft_core::StoreError;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Writer {
    /// Makes room for a record of `len` bytes: a new segment when the
    /// active one cannot take it.
    pub(super) fn make_room(&mut self, len: u64) -> Result<(), StoreError> {
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

    /// Makes segment `seq` of `size` bytes the active one: in a spare file
    /// when there is one that fits, else in a new zero-filled one. Its
    /// header names where the current one's records end; only then, with
    /// the header synced, does the file get its name.
    fn start_segment(&mut self, seq: u64, size: u64) -> Result<(), StoreError> {
        // Where the current segment's records end (the writer rotates only
        // once they are durable).
        let prev_end = self.active.offset;
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
        let (segment, active) = installed(&self.dir, file, &from, header)?;
        // Recorded once the segment has its name: a crash in between leaves
        // a newer segment than recorded, which open accepts.
        super::writer::lock_stable(&self.stable).set_newest_segment(seq)?;
        let counter = if reused { &self.stats.segments_reused } else { &self.stats.segments_created };
        counter.fetch_add(1, Ordering::Relaxed);
        self.segments.push_back(segment);
        self.active = active;
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

    /// Lets go of whole segments, oldest first, that hold nothing past
    /// `through` (never the active one). On a thread of its own, their
    /// files become spares for the next segments (up to
    /// [`WalOptions::spare_segments`]) or are removed — freeing a large
    /// file's blocks takes milliseconds — one at a time, oldest first, each
    /// followed by a sync of the directory, so that the segments left after
    /// a crash never have a gap. Until then the compaction record (already
    /// durable) keeps their entries out of the log on any open. Returns the
    /// segments' sequence numbers.
    pub(super) fn release_segments_through(&mut self, through: u64) -> Vec<u64> {
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

/// The first segment of a new log, in a new zero-filled file of `size`
/// bytes, recorded in the stable file (which the caller has created).
pub(super) fn first_segment(
    dir: &Path,
    size: u64,
    stats: &Counters,
    stable: &mut StableFile,
) -> Result<(Segment, Active), StoreError> {
    let header = SegmentHeader { seq: 1, base_index: 1, size, salt: segment::new_salt(1), prev_end: 0 };
    let prepared = dir.join(PREPARING);
    let file = segment::preallocate(&prepared, size)?;
    let installed = installed(dir, file, &prepared, header)?;
    stable.set_newest_segment(1)?;
    stats.segments_created.fetch_add(1, Ordering::Relaxed);
    Ok(installed)
}

/// Puts segment `header.seq` in place from `file` (named `from` until now):
/// its header written and synced, then its name. Returns it as the writer
/// knows it, and as the segment to write next.
fn installed(
    dir: &Path,
    file: File,
    from: &Path,
    header: SegmentHeader,
) -> Result<(Segment, Active), StoreError> {
    let path = segment::install(dir, &file, from, header)?;
    let file = Arc::new(file);
    let (seq, size) = (header.seq, header.size);
    let segment = Segment { seq, path, file: file.clone(), size, max_index: 0 };
    let active =
        Active { key: Key { seq, salt: header.salt }, file, offset: SEGMENT_HEADER_LEN as u64, size };
    Ok((segment, active))
}

impl Active {
    fn seq(&self) -> u64 {
        self.key.seq
    }
}
