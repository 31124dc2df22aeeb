//! [`StoreError`]: why a store call failed.

/// Why a [`LogStore`](crate::LogStore) or [`StableStore`](crate::StableStore) call failed.
///
/// An error from a store is fatal to the call that saw it: the core stops
/// acting on the store's behalf (a leader steps down) rather than guess.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The operating system reported an I/O error.
    #[error("store I/O failed: {0}")]
    Io(std::io::Error),
    /// Stored bytes failed to decode or a checksum did not match.
    #[error("store is corrupt at {location}: {reason}")]
    Corrupt {
        /// Where the damage was found: a log index, a key, a file.
        location: String,
        /// What was wrong.
        reason: String,
    },
    /// A batch passed to `store_logs` does not continue the log.
    #[error("log entries must be contiguous: expected index {expected}, got {got}")]
    NonContiguous {
        /// The index that would have continued the log.
        expected: u64,
        /// The index that was given.
        got: u64,
    },
    /// An entry with index 0 was given; indexes start at 1.
    #[error("log index 0 is not valid; indexes start at 1")]
    ZeroIndex,
    /// `delete_range` was asked to punch a hole in the middle of the log.
    #[error("delete_range({min}, {max}) would leave a hole in the log {first}..={last}")]
    Hole {
        /// The range's first index.
        min: u64,
        /// The range's last index.
        max: u64,
        /// The store's first index.
        first: u64,
        /// The store's last index.
        last: u64,
    },
    /// The store has reached its configured maximum size.
    #[error("store is full: {0}")]
    Full(String),
    /// The store's format version is not one this code understands.
    #[error("store format version {found} is not supported (expected {expected})")]
    UnsupportedVersion {
        /// The version found on disk.
        found: u32,
        /// The version this code writes.
        expected: u32,
    },
    /// Entries from `index` on were asked for, but the log now starts at
    /// `first_index`: the ones before it were compacted away (or, for index
    /// 0, never existed). The core answers a follower that needs them with a
    /// snapshot.
    #[error("log index {index} is compacted: the log starts at {first_index}")]
    Compacted {
        /// The first index asked for.
        index: u64,
        /// The store's first index.
        first_index: u64,
    },
    /// Another store, in this process or another, holds the store's files;
    /// `path` is the lock file it holds. Stop the other node (or point this
    /// one at its own directory) and open again.
    #[error("the store is in use: {} is locked by another open store", path.display())]
    Locked {
        /// The lock file.
        path: std::path::PathBuf,
    },
    /// A stable-store key is longer than [`STABLE_KEY_MAX`](crate::stable::STABLE_KEY_MAX)
    /// bytes, the most every store takes.
    #[error("stable key of {len} bytes is longer than the maximum of {max}")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The store was closed.
    #[error("store is closed")]
    Closed,
    /// The node did not attempt this write: an earlier one failed, and
    /// writes queued behind it assumed it had succeeded. Raised by the node,
    /// never by a store; the node re-reads its log and carries on.
    #[error("log write not attempted: an earlier write failed")]
    NotAttempted,
    /// An error from the storage engine underneath.
    #[error("storage engine error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

// Each error says its cause's message itself and does not also return it
// from `source()`, so that no report says it twice.
impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        StoreError::Io(error)
    }
}
