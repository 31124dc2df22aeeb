//! A segmented write-ahead log for [raft-kit](https://github.com/raft-kit/raft-kit):
//! a durable [`LogStore`](raft_core::LogStore) and
//! [`StableStore`](raft_core::StableStore) built for what Raft asks of a
//! log — appends at the end, reads near the end, truncation at either end —
//! with one `fdatasync` per `store_logs` batch and nothing more.
//!
//! - **Segments.** The log lives in files of [`WalOptions::segment_size`]
//!   bytes (64 MiB by default), each at its full size before it gets its
//!   name, so a record's `fdatasync` flushes data only, never the file's
//!   size. A compacted segment's file becomes a later segment (up to
//!   [`WalOptions::spare_segments`] are kept), so a log in steady state writes
//!   each byte once; otherwise a new file is zero-filled on a thread of its
//!   own while the current one fills.
//! - **Records.** Every batch is one record, framed with its length and two
//!   CRC-32s (one over the header, one over the payload). On open, a torn
//!   record at the very end of the last segment — a write the process did
//!   not finish — is cut off; a record that fails a check anywhere else is
//!   [`StoreError::Corrupt`](raft_core::StoreError::Corrupt), never skipped.
//! - **Reads.** The newest [`WalOptions::cache_entries`] entries are served
//!   from memory; any other entry is one positioned read, as its place is
//!   kept in memory (16 bytes per entry).
//! - **Truncation.** Compaction (`delete_range` of a prefix) and a
//!   follower's conflict (of a suffix) write a small record and never
//!   rewrite the log; whole segments before the first kept entry are let
//!   go of (kept as spares or deleted).
//! - **Stable values** (term, vote) live in one small file replaced by an
//!   atomic rename and synced with its directory. It is written when the
//!   store is created and records the newest segment, so a lost file — the
//!   stable file, the newest segment, older segments no compaction let go
//!   of — is [`StoreError::Corrupt`](raft_core::StoreError::Corrupt), as is a
//!   segment of another length than its header says (cut short by a copy or
//!   a repair), never a shorter log.
//! - **One owner.** The directory is locked (`raft-kit.lock`); a second open
//!   is [`StoreError::Locked`](raft_core::StoreError::Locked).
//!
//! The on-disk format is specified in `docs/storage-format.md` of this
//! crate; its version is [`FORMAT_VERSION`]. Unix only (positioned reads
//! and writes).
//!
//! # Example
//!
//! ```
//! use raft_core::{Log, LogStore, StableStore};
//! use store_wal::{WalOptions, WalStore};
//!
//! # fn main() -> Result<(), raft_core::StoreError> {
//! let dir = tempfile::tempdir()?;
//! let store = WalStore::open_with(dir.path(), WalOptions::default().segment_size(1 << 20))?;
//! store.store_logs(&[Log::command(1, 1, "a"), Log::command(2, 1, "b")])?;
//! store.set_u64(b"CurrentTerm", 1)?;
//! drop(store);
//!
//! let store = WalStore::open(dir.path())?;
//! assert_eq!(store.last_index()?, 2);
//! assert_eq!(store.get_log(1)?.map(|log| log.data), Some("a".into()));
//! assert_eq!(store.get_u64(b"CurrentTerm")?, Some(1));
//! # Ok(()) }
//! ```

mod index;
mod record;
mod segment;
mod stable;
mod store;

pub use segment::FORMAT_VERSION;
pub use store::{LOCK_FILE, WalStats, WalStore};

/// How a [`WalStore`] lays out and caches its log.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WalOptions {
    /// The size of each segment file, in bytes (a batch larger than that
    /// gets a segment of its own, as large as it needs). Default 64 MiB.
    pub segment_size: u64,
    /// How many of the newest entries are kept in memory for reads without
    /// I/O. Default 4096.
    pub cache_entries: usize,
    /// How many compacted segments' files are kept to become the next
    /// segments, so that a log in steady state (appends at the end,
    /// compaction at the front) writes each byte once instead of zero-filling
    /// new files first. Default 2 (each [`segment_size`](Self::segment_size)
    /// bytes of disk).
    pub spare_segments: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self { segment_size: 64 << 20, cache_entries: 4096, spare_segments: 2 }
    }
}

impl WalOptions {
    /// Sets [`segment_size`](Self::segment_size) (at least 4 KiB).
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes.max(4096);
        self
    }

    /// Sets [`spare_segments`](Self::spare_segments).
    pub fn spare_segments(mut self, segments: usize) -> Self {
        self.spare_segments = segments;
        self
    }

    /// Sets [`cache_entries`](Self::cache_entries).
    pub fn cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries;
        self
    }
}
