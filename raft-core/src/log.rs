//! Log entries and the [`LogStore`] that keeps them.

use bytes::Bytes;
use std::sync::Arc;

/// What a log entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogKind {
    /// A command for the user's [`Fsm`](crate::Fsm).
    Command,
    /// Appended by a new leader to commit entries of earlier terms; not applied.
    Noop,
    /// Makes sure every earlier entry is applied; not given to the FSM.
    Barrier,
    /// A new cluster [`Configuration`](crate::Configuration), encoded by the codec.
    Configuration,
    /// A piece of a user's restore ([`Raft::restore`](crate::Raft::restore)):
    /// the pieces of one restore are consecutive entries, and when the last
    /// one applies, the FSM's state is replaced by their bytes. Not given to
    /// the FSM as a command.
    Restore,
}

impl LogKind {
    /// Every kind, in wire-tag order.
    pub const ALL: [LogKind; 5] =
        [LogKind::Command, LogKind::Noop, LogKind::Barrier, LogKind::Configuration, LogKind::Restore];
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Log {
    /// The 1-based position in the log.
    pub index: u64,
    /// The leader's term when the entry was created.
    pub term: u64,
    /// What the entry is for.
    pub kind: LogKind,
    /// The payload: a command, or an encoded configuration.
    pub data: Bytes,
    /// Opaque bytes for the application, replicated with the entry but never
    /// interpreted by raft-kit.
    pub extensions: Bytes,
}

impl Log {
    /// A command entry with no extensions.
    pub fn command(index: u64, term: u64, data: impl Into<Bytes>) -> Self {
        Self { index, term, kind: LogKind::Command, data: data.into(), extensions: Bytes::new() }
    }

    /// The bytes this entry's payload occupies, used for batching budgets.
    pub fn payload_size(&self) -> u64 {
        (self.data.len() + self.extensions.len()) as u64
    }
}

/// Why a [`LogStore`] or [`StableStore`](crate::StableStore) call failed.
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

/// Durable storage for the replicated log.
///
/// Calls are synchronous: the core calls them from its own blocking worker,
/// never from an async executor thread, unless the store says its writes
/// never block ([`writes_never_block`](Self::writes_never_block)).
/// Implementations share the store between threads through `&self`, so they
/// use interior mutability.
///
/// # Contract
///
/// - Indexes are 1-based. An empty store reports `first_index() == 0` and
///   `last_index() == 0`.
/// - The stored entries are always one contiguous run `first..=last`.
/// - [`store_logs`](Self::store_logs) is atomic and durable when it returns
///   `Ok`: all of the batch is stored, or none of it. The batch must be
///   contiguous and, unless the store is empty, start at `last_index() + 1`
///   (a conflicting suffix is removed with `delete_range` first). Into an empty
///   store, the first batch may start at any index, as after a snapshot install.
/// - [`delete_range`](Self::delete_range)`(min, max)` is inclusive and removes
///   a prefix (compaction) or a suffix (truncation) of the log, or all of it.
///   A range wholly outside the stored entries, or with `min > max`, is a no-op.
///   A range strictly inside the log would leave a hole and is refused with
///   [`StoreError::Hole`].
/// - Readers running beside a writer see each batch whole or not at all.
pub trait LogStore: Send + Sync + 'static {
    /// The index of the first stored entry, 0 when the store is empty.
    fn first_index(&self) -> Result<u64, StoreError>;

    /// The index of the last stored entry, 0 when the store is empty.
    fn last_index(&self) -> Result<u64, StoreError>;

    /// The entry at `index`, or `None` when it is not stored (below the
    /// first index or above the last). An index between the first and the
    /// last that the store cannot return is damage: [`StoreError::Corrupt`].
    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError>;

    /// The entries from `first` to `last` inclusive, in order, stopping early
    /// once the payload bytes returned reach `bytes_max` (at least one entry
    /// is returned when `first` is stored).
    ///
    /// - A range that starts before the first stored entry is
    ///   [`StoreError::Compacted`]: what it asks for is gone.
    /// - A range that starts after the last stored entry, or an empty store,
    ///   gives an empty vector; a range that ends after it stops at the last.
    /// - An index inside the stored run that the store cannot return is
    ///   [`StoreError::Corrupt`], never a short answer.
    ///
    /// The default reads one entry at a time with [`get_log`](Self::get_log).
    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        let (stored_first, stored_last) = (self.first_index()?, self.last_index()?);
        let Some(last) = check_range(stored_first, stored_last, first, last)? else { return Ok(Vec::new()) };
        let mut logs = Vec::new();
        let mut bytes_total = 0u64;
        for index in first..=last {
            if !logs.is_empty() && bytes_total >= bytes_max {
                break;
            }
            let log = self.get_log(index)?.ok_or_else(|| missing_entry(index, stored_first, stored_last))?;
            bytes_total += log.payload_size();
            logs.push(log);
        }
        Ok(logs)
    }

    /// Stores a contiguous batch atomically and durably (see the contract).
    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError>;

    /// Removes the entries `min..=max` (see the contract).
    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError>;

    /// Stores a batch as [`store_logs`](Self::store_logs) does and, in the
    /// same atomic write where the engine allows it, the commit index the node
    /// knew when it wrote the batch. A restarted node reads it back with
    /// [`commit_index`](Self::commit_index) and re-applies committed entries at
    /// once, without waiting to hear from a leader, and without an extra fsync.
    ///
    /// The default stores the batch and drops the commit index.
    fn store_logs_with_commit(&self, logs: &[Log], commit_index: u64) -> Result<(), StoreError> {
        let _ = commit_index;
        self.store_logs(logs)
    }

    /// The highest commit index stored by
    /// [`store_logs_with_commit`](Self::store_logs_with_commit) (0 before
    /// any), kept across reopening, or `None` when the store does not keep
    /// one (the default). On start the node re-applies entries up to it, and
    /// refuses to start when neither the log nor a snapshot holds them.
    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Whether every write ([`store_logs`](Self::store_logs),
    /// [`store_logs_with_commit`](Self::store_logs_with_commit),
    /// [`delete_range`](Self::delete_range)) returns within microseconds,
    /// never waiting on a disk, a network or a lock held for long.
    ///
    /// The core normally hands writes to a storage thread of its own so that
    /// a slow disk never holds up the node's task (heartbeats, votes,
    /// replication). A store that answers `true` is written on the node's
    /// task instead, which saves two thread hand-offs per write: the
    /// in-memory store does. The default is `false`; a store that wraps
    /// another should forward the answer only if it adds no waiting itself.
    /// A store that answers `true` and then blocks stalls the whole node
    /// (heartbeats, votes), and `Config::log_store_stall_timeout` cannot
    /// notice, since nothing runs beside the write to watch it.
    fn writes_never_block(&self) -> bool {
        false
    }
}

impl<T: LogStore + ?Sized> LogStore for Arc<T> {
    fn first_index(&self) -> Result<u64, StoreError> {
        (**self).first_index()
    }
    fn last_index(&self) -> Result<u64, StoreError> {
        (**self).last_index()
    }
    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        (**self).get_log(index)
    }
    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        (**self).get_logs(first, last, bytes_max)
    }
    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        (**self).store_logs(logs)
    }
    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        (**self).delete_range(min, max)
    }
    fn store_logs_with_commit(&self, logs: &[Log], commit_index: u64) -> Result<(), StoreError> {
        (**self).store_logs_with_commit(logs, commit_index)
    }
    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        (**self).commit_index()
    }
    fn writes_never_block(&self) -> bool {
        (**self).writes_never_block()
    }
}

/// Checks that `logs` may be appended to a log whose last index is `last`
/// (0 when empty): indexes non-zero, contiguous, and continuing the log.
///
/// Store implementations call this before writing so that every store refuses
/// the same malformed batches with the same errors.
pub fn check_batch(last: u64, logs: &[Log]) -> Result<(), StoreError> {
    let Some(head) = logs.first() else { return Ok(()) };
    if head.index == 0 {
        return Err(StoreError::ZeroIndex);
    }
    if last != 0 && head.index != last + 1 {
        return Err(StoreError::NonContiguous { expected: last + 1, got: head.index });
    }
    for pair in logs.windows(2) {
        if pair[1].index != pair[0].index + 1 {
            return Err(StoreError::NonContiguous { expected: pair[0].index + 1, got: pair[1].index });
        }
    }
    Ok(())
}

/// Applies [`LogStore::get_logs`]' range rules to a request for
/// `first..=last` over a stored run `stored_first..=stored_last` (both 0
/// when empty): `Ok(None)` when nothing in the range is stored, the last
/// index to read otherwise, [`StoreError::Compacted`] for a range starting
/// before the run. Every store calls it so that all answer alike.
pub fn check_range(
    stored_first: u64,
    stored_last: u64,
    first: u64,
    last: u64,
) -> Result<Option<u64>, StoreError> {
    if stored_last == 0 || first > last || first > stored_last {
        return Ok(None);
    }
    if first < stored_first {
        return Err(StoreError::Compacted { index: first, first_index: stored_first });
    }
    Ok(Some(last.min(stored_last)))
}

/// The error for an entry inside the stored run `first..=last` that a store
/// cannot return: a hole in what must be contiguous, so damage.
pub fn missing_entry(index: u64, first: u64, last: u64) -> StoreError {
    StoreError::Corrupt {
        location: format!("log index {index}"),
        reason: format!("the entry is missing, though the log holds {first}..={last}"),
    }
}

/// What `get_log(index)` answers when a store did not find `index` in its
/// stored run `first..=last` (both 0 when empty): `None` outside the run,
/// [`StoreError::Corrupt`] inside it.
pub fn not_found(index: u64, first: u64, last: u64) -> Result<Option<Log>, StoreError> {
    if last != 0 && (first..=last).contains(&index) {
        Err(missing_entry(index, first, last))
    } else {
        Ok(None)
    }
}

/// Decodes an entry a store kept with [`codec::encode_log_with_crc`](crate::codec::encode_log_with_crc)
/// under key `index`: a bad checksum, a bad encoding or an entry of another
/// index is [`StoreError::Corrupt`] naming the index.
pub fn decode_stored_entry(index: u64, value: &[u8]) -> Result<Log, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { location: format!("log index {index}"), reason };
    let log = crate::codec::decode_log_with_crc(value).map_err(|e| corrupt(e.to_string()))?;
    if log.index != index {
        return Err(corrupt(format!("the entry stored there says index {}", log.index)));
    }
    Ok(log)
}

/// What a `delete_range(min, max)` does to a log `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePlan {
    /// Nothing is stored in the range.
    Nothing,
    /// Remove every entry.
    All,
    /// Remove the prefix up to and including this index.
    Prefix(u64),
    /// Remove the suffix from this index on.
    Suffix(u64),
}

/// Classifies `delete_range(min, max)` over the log `first..=last` (both 0 when
/// empty), so every store interprets ranges the same way.
pub fn plan_delete(first: u64, last: u64, min: u64, max: u64) -> Result<DeletePlan, StoreError> {
    if last == 0 || min > max || max < first || min > last {
        return Ok(DeletePlan::Nothing);
    }
    match (min <= first, max >= last) {
        (true, true) => Ok(DeletePlan::All),
        (true, false) => Ok(DeletePlan::Prefix(max)),
        (false, true) => Ok(DeletePlan::Suffix(min)),
        (false, false) => Err(StoreError::Hole { min, max, first, last }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_plans_cover_every_overlap() {
        let table = [
            // first, last, min, max, plan
            (0, 0, 1, 5, Some(DeletePlan::Nothing)),
            (5, 10, 1, 4, Some(DeletePlan::Nothing)),
            (5, 10, 11, 20, Some(DeletePlan::Nothing)),
            (5, 10, 8, 7, Some(DeletePlan::Nothing)),
            (5, 10, 1, 10, Some(DeletePlan::All)),
            (5, 10, 5, 12, Some(DeletePlan::All)),
            (5, 10, 1, 7, Some(DeletePlan::Prefix(7))),
            (5, 10, 5, 5, Some(DeletePlan::Prefix(5))),
            (5, 10, 8, 10, Some(DeletePlan::Suffix(8))),
            (5, 10, 10, 99, Some(DeletePlan::Suffix(10))),
            (5, 10, 6, 9, None),
        ];
        for (first, last, min, max, plan) in table {
            let got = plan_delete(first, last, min, max).ok();
            assert_eq!(got, plan, "log {first}..={last}, delete {min}..={max}");
        }
    }

    #[test]
    fn ranges_follow_the_get_logs_rules() {
        let table = [
            // stored first, last, asked first, last, outcome
            (0, 0, 1, 10, Ok(None)),
            (5, 10, 5, 10, Ok(Some(10))),
            (5, 10, 6, 20, Ok(Some(10))),
            (5, 10, 11, 20, Ok(None)),
            (5, 10, 8, 7, Ok(None)),
            (5, 10, 4, 10, Err(4)),
            (5, 10, 0, 3, Err(0)),
            (1, 10, 0, 3, Err(0)),
        ];
        for (stored_first, stored_last, first, last, outcome) in table {
            let got = check_range(stored_first, stored_last, first, last).map_err(|e| match e {
                StoreError::Compacted { index, first_index } => {
                    assert_eq!(first_index, stored_first);
                    index
                }
                other => panic!("{other:?}"),
            });
            assert_eq!(got, outcome, "stored {stored_first}..={stored_last}, asked {first}..={last}");
        }
    }

    #[test]
    fn batches_must_continue_the_log() {
        let batch = |indexes: &[u64]| indexes.iter().map(|&i| Log::command(i, 1, "x")).collect::<Vec<_>>();
        assert!(check_batch(0, &batch(&[7, 8, 9])).is_ok());
        assert!(check_batch(6, &batch(&[7, 8])).is_ok());
        assert!(check_batch(6, &[]).is_ok());
        assert!(matches!(check_batch(0, &batch(&[0])), Err(StoreError::ZeroIndex)));
        assert!(matches!(
            check_batch(5, &batch(&[7])),
            Err(StoreError::NonContiguous { expected: 6, got: 7 })
        ));
        assert!(matches!(
            check_batch(0, &batch(&[1, 2, 4])),
            Err(StoreError::NonContiguous { expected: 3, got: 4 })
        ));
    }
}
