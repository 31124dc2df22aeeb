//! The writer's state: the segments, the one being written, spares, and
//! the helper threads; writing one record.

use crate::WalOptions;
use crate::record::{self, HEADER_LEN, Key, Record};
use crate::stable::StableFile;
use raft_core::StoreError;
use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) syncs: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) entries: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) segments_created: AtomicU64,
    pub(super) segments_reused: AtomicU64,
}

/// One segment the writer knows of.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) seq: u64,
    pub(super) path: PathBuf,
    pub(super) file: Arc<File>,
    pub(super) size: u64,
    /// The highest index any batch in it holds (0 for none).
    pub(super) max_index: u64,
}

/// The segment being written.
pub(super) struct Active {
    pub(super) key: Key,
    pub(super) file: Arc<File>,
    pub(super) offset: u64,
    pub(super) size: u64,
}

/// A compacted segment's file, kept to be the next segment.
pub(super) struct Spare {
    pub(super) path: PathBuf,
    /// The segment's open file, as readers may still hold it: the file is
    /// written again only once none does, so that a read racing the
    /// compaction finds the old bytes (and reports the entry compacted).
    pub(super) readers: Weak<File>,
}

/// What only the writer touches.
pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) options: WalOptions,
    pub(super) active: Active,
    /// Every segment, oldest first; the active one last.
    pub(super) segments: VecDeque<Segment>,
    /// The next segment, being zero-filled beside the writer.
    pub(super) preparing: Option<std::thread::JoinHandle<std::io::Result<File>>>,
    pub(super) buf: Vec<u8>,
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) commit: u64,
    /// Set when a write failed: what is on disk past the last good record is
    /// unknown until the store is opened again.
    pub(super) failed: Option<String>,
    /// Compacted segments' files ready for reuse, oldest first.
    pub(super) spares: Vec<Spare>,
    /// Files becoming spares on the `removing` thread.
    pub(super) pending_spares: Vec<Spare>,
    /// Renaming (to spares) or removing the files of segments a compaction
    /// left behind; says which renames succeeded.
    pub(super) removing: Option<std::thread::JoinHandle<Vec<PathBuf>>>,
    pub(super) stats: Arc<Counters>,
    /// The stable file, shared with the store: each new segment is recorded
    /// in it (lock order: the writer, then the stable file).
    pub(super) stable: Arc<Mutex<StableFile>>,
}

/// Locks the stable file; a panic elsewhere leaves it whole (it changes
/// only after a successful write).
pub(super) fn lock_stable(stable: &Mutex<StableFile>) -> MutexGuard<'_, StableFile> {
    stable.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

impl Writer {
    pub(super) fn check(&self) -> Result<(), StoreError> {
        match &self.failed {
            Some(reason) => Err(StoreError::Io(std::io::Error::other(format!(
                "an earlier write failed ({reason}); open the store again to recover"
            )))),
            None => Ok(()),
        }
    }

    /// Writes the record in `buf` at the active segment's end and syncs it.
    pub(super) fn write_record(&mut self) -> Result<u64, StoreError> {
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
    pub(super) fn write_control(&mut self, record: Record) -> Result<(), StoreError> {
        self.make_room(record::aligned(HEADER_LEN + 17) as u64)?;
        record::encode_control(&mut self.buf, self.active.key, &record);
        self.write_record().map(|_| ())
    }
}
