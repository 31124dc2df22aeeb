//! The [`StableStore`]: small durable key-value state (current term, vote).

use crate::StoreError;
use std::sync::Arc;

/// Durable key-value storage for the few values Raft must not forget: the
/// current term, the vote cast in it, and the last known commit index.
///
/// `set` and `set_u64` share one key space and are durable when they return.
/// A missing key reads as `None`. Calls are synchronous, like [`LogStore`](crate::LogStore)'s.
pub trait StableStore: Send + Sync + 'static {
    /// Stores `value` under `key`, replacing any earlier value.
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// The value stored under `key`, or `None`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores a `u64` under `key` (8 bytes, big-endian).
    fn set_u64(&self, key: &[u8], value: u64) -> Result<(), StoreError> {
        self.set(key, &value.to_be_bytes())
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
}
