//! The [`LogStore`] contract and its error type.

use super::entry::Log;
use super::error::StoreError;
use super::rules::{check_range, missing_entry};
use std::sync::Arc;

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
