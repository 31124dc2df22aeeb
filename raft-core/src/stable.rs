//! The [`StableStore`]: small durable key-value state (current term, vote).

use crate::StoreError;
use std::sync::Arc;

/// StableStore key of the current term.
pub(crate) const KEY_CURRENT_TERM: &[u8] = b"CurrentTerm";
/// StableStore key of the term in which the last vote was cast.
pub(crate) const KEY_LAST_VOTE_TERM: &[u8] = b"LastVoteTerm";
/// StableStore key of the candidate that vote went to.
pub(crate) const KEY_LAST_VOTE_CAND: &[u8] = b"LastVoteCand";

/// The longest key every [`StableStore`] takes, in bytes. Longer keys are
/// refused with [`StoreError::KeyTooLong`] by every store (LMDB's own limit is
/// 511 bytes), so an application that works on one store works on all.
pub const STABLE_KEY_MAX: usize = 256;

/// Refuses a key longer than [`STABLE_KEY_MAX`]; stores call it in `set` and `get`.
pub fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.len() > STABLE_KEY_MAX {
        return Err(StoreError::KeyTooLong { len: key.len(), max: STABLE_KEY_MAX });
    }
    Ok(())
}

/// Durable key-value storage for the few values Raft must not forget: the
/// current term, the vote cast in it, and the last known commit index.
///
/// `set` and `set_u64` share one key space and are durable when they return.
/// A missing key reads as `None`. Keys are at most [`STABLE_KEY_MAX`] bytes
/// (the empty key included); a longer one is [`StoreError::KeyTooLong`].
/// Calls are synchronous, like [`LogStore`](crate::LogStore)'s.
pub trait StableStore: Send + Sync + 'static {
    /// Stores `value` under `key`, replacing any earlier value.
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// The value stored under `key`, or `None`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores a `u64` under `key` (8 bytes, big-endian).
    fn set_u64(&self, key: &[u8], value: u64) -> Result<(), StoreError> {
        self.set(key, &value.to_be_bytes())
    }

    /// Whether every call returns within microseconds, never waiting on a
    /// disk, a network or a lock held for long. The core then calls the store
    /// on the node's own task instead of a blocking thread, which keeps a
    /// seeded simulation on one thread (and so replayable). The default is
    /// `false`; the in-memory store answers `true`.
    fn never_blocks(&self) -> bool {
        false
    }

    /// The `u64` stored under `key`, or `None`; a value that is not 8 bytes
    /// long is [`StoreError::Corrupt`].
    fn get_u64(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        let Some(bytes) = self.get(key)? else { return Ok(None) };
        let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            location: format!("stable key {:?}", String::from_utf8_lossy(key)),
            reason: format!("a u64 value must be 8 bytes, found {}", bytes.len()),
        })?;
        Ok(Some(u64::from_be_bytes(array)))
    }
}

impl<T: StableStore + ?Sized> StableStore for Arc<T> {
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        (**self).set(key, value)
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key)
    }
    fn set_u64(&self, key: &[u8], value: u64) -> Result<(), StoreError> {
        (**self).set_u64(key, value)
    }
    fn get_u64(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        (**self).get_u64(key)
    }
    fn never_blocks(&self) -> bool {
        (**self).never_blocks()
    }
}
