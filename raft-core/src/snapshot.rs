//! Snapshots: [`SnapshotMeta`], the [`SnapshotStore`] and its [`SnapshotSink`].

use crate::Configuration;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The snapshot format version this code writes.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What describes a stored snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotMeta {
    /// The store's name for the snapshot, unique within the store.
    pub id: String,
    /// The index of the last log entry the snapshot covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The latest configuration at `index`.
    pub configuration: Configuration,
    /// The index of the entry that carried `configuration`.
    pub configuration_index: u64,
    /// The size of the state, in bytes.
    pub size: u64,
    /// The snapshot format version.
    pub version: u32,
}

/// What the core hands [`SnapshotStore::create`] to describe a new snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSnapshot {
    /// The snapshot format version.
    pub version: u32,
    /// The index of the last log entry the snapshot covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The latest configuration at `index`.
    pub configuration: Configuration,
    /// The index of the entry that carried `configuration`.
    pub configuration_index: u64,
}

impl NewSnapshot {
    /// The meta of this snapshot once stored under `id` with `size` bytes.
    pub fn into_meta(self, id: String, size: u64) -> SnapshotMeta {
        SnapshotMeta {
            id,
            index: self.index,
            term: self.term,
            configuration: self.configuration,
            configuration_index: self.configuration_index,
            size,
            version: self.version,
        }
    }
}

/// Why a snapshot store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The operating system reported an I/O error.
    #[error("snapshot I/O failed: {0}")]
    Io(std::io::Error),
    /// No snapshot with this id is stored.
    #[error("snapshot {id} does not exist")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The snapshot's stored bytes are damaged.
    #[error("snapshot {id} is corrupt: {reason}")]
    Corrupt {
        /// The damaged snapshot.
        id: String,
        /// What was wrong.
        reason: String,
    },
    /// The snapshot's state does not match its checksum.
    #[error("snapshot {id} failed its checksum: expected {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// The damaged snapshot.
        id: String,
        /// The checksum recorded when it was written.
        expected: u32,
        /// The checksum of what was read.
        actual: u32,
    },
    /// The snapshot's format version is not one this code understands.
    #[error("snapshot {id} has unsupported version {version}")]
    UnsupportedVersion {
        /// The snapshot.
        id: String,
        /// Its version.
        version: u32,
    },
    /// Another store, in this process or another, holds the store's
    /// directory; `path` is the lock file it holds.
    #[error("the snapshot store is in use: {} is locked by another open store", path.display())]
    Locked {
        /// The lock file.
        path: std::path::PathBuf,
    },
    /// An error from the storage underneath.
    #[error("snapshot store error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

// Each error says its cause's message itself and does not also return it
// from `source()`, so that no report says it twice.
impl From<std::io::Error> for SnapshotError {
    fn from(error: std::io::Error) -> Self {
        SnapshotError::Io(error)
    }
}

/// Where the FSM writes a new snapshot. Writing goes through [`Write`]; the
/// snapshot becomes visible to [`SnapshotStore::list`] only on
/// [`close`](Self::close), atomically.
pub trait SnapshotSink: Write + Send {
    /// The id the snapshot will have once closed.
    fn id(&self) -> &str;

    /// Commits the snapshot durably and returns its meta.
    fn close(self: Box<Self>) -> Result<SnapshotMeta, SnapshotError>;

    /// Abandons the snapshot, leaving nothing behind.
    fn cancel(self: Box<Self>) -> Result<(), SnapshotError>;
}

/// A snapshot's state, read as a stream.
pub type SnapshotReader = Box<dyn Read + Send>;

/// Stores snapshots of the FSM.
///
/// # Contract
///
/// - [`list`](Self::list) returns the stored snapshots newest first (by term,
///   then index); a sink not yet closed is not listed.
/// - [`open`](Self::open) of an unknown id is [`SnapshotError::NotFound`].
/// - A store that is not in memory streams state to and from its medium and
///   never holds a whole snapshot in memory.
pub trait SnapshotStore: Send + Sync + 'static {
    /// Starts a new snapshot.
    fn create(&self, snapshot: NewSnapshot) -> Result<Box<dyn SnapshotSink>, SnapshotError>;

    /// The stored snapshots, newest first.
    fn list(&self) -> Result<Vec<SnapshotMeta>, SnapshotError>;

    /// Opens a stored snapshot for reading.
    fn open(&self, id: &str) -> Result<(SnapshotMeta, SnapshotReader), SnapshotError>;

    /// Whether every call, and every read and write of its sinks and
    /// readers, returns within microseconds (the state is in memory). The
    /// core then uses the store on the node's own task instead of blocking
    /// threads, which keeps a seeded simulation on one thread. The default
    /// is `false`.
    fn never_blocks(&self) -> bool {
        false
    }
}

impl<T: SnapshotStore + ?Sized> SnapshotStore for Arc<T> {
    fn create(&self, snapshot: NewSnapshot) -> Result<Box<dyn SnapshotSink>, SnapshotError> {
        (**self).create(snapshot)
    }
    fn list(&self) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        (**self).list()
    }
    fn open(&self, id: &str) -> Result<(SnapshotMeta, SnapshotReader), SnapshotError> {
        (**self).open(id)
    }
    fn never_blocks(&self) -> bool {
        (**self).never_blocks()
    }
}

/// Orders metas newest first: by term, then index, then id, all descending.
pub fn newest_first(a: &SnapshotMeta, b: &SnapshotMeta) -> std::cmp::Ordering {
    (b.term, b.index, &b.id).cmp(&(a.term, a.index, &a.id))
}

/// A fresh snapshot id, `term-index-millis-sequence`, unique within a process
/// and ordered by creation for equal term and index.
pub fn new_snapshot_id(term: u64, index: u64) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let millis =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{term}-{index}-{millis:013}-{sequence:06}")
}

/// A snapshot the node has just taken, from [`Raft::snapshot`](crate::Raft::snapshot):
/// its meta, and a way to read its state, for example to copy a backup out
/// (hashicorp/raft's `Snapshot().Open()`) that
/// [`Raft::restore`](crate::Raft::restore) can later bring back.
///
/// The handle does not keep the node's snapshot store open: once the node
/// has shut down (and its directory lock is released), `open` fails.
pub struct Snapshot {
    meta: SnapshotMeta,
    store: std::sync::Weak<dyn SnapshotStore>,
}

impl Snapshot {
    pub(crate) fn new(meta: SnapshotMeta, store: std::sync::Weak<dyn SnapshotStore>) -> Self {
        Self { meta, store }
    }

    /// What the snapshot covers: its id, last index and term, configuration
    /// and size.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Opens the snapshot's state for reading (`meta().size` bytes, exactly
    /// what the FSM wrote). Reading blocks on the snapshot store; in async
    /// code, read on a blocking thread (`tokio::task::spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::NotFound`] if the store has removed it meanwhile
    /// (it keeps only its newest few: open soon after taking it), or the
    /// store's error reading it; [`SnapshotError::Io`] (`NotConnected`) once
    /// the node has shut down.
    pub fn open(&self) -> Result<SnapshotReader, SnapshotError> {
        let store = self.store.upgrade().ok_or_else(|| {
            SnapshotError::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the node has shut down and closed its snapshot store",
            ))
        })?;
        let (meta, reader) = store.open(&self.meta.id)?;
        if meta.index != self.meta.index || meta.term != self.meta.term {
            return Err(SnapshotError::NotFound { id: self.meta.id.clone() });
        }
        Ok(reader)
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("meta", &self.meta).finish_non_exhaustive()
    }
}
