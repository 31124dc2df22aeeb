use raft_core::stable::check_key;
use raft_core::{StableStore, StoreError};
use std::collections::HashMap;
use std::sync::RwLock;

/// An in-memory [`StableStore`].
#[derive(Debug, Default)]
pub struct MemStableStore {
    values: RwLock<HashMap<Vec<u8>, Vec<u8>>>,
}

impl MemStableStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StableStore for MemStableStore {
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        let mut values = self.values.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        values.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        let values = self.values.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(values.get(key).cloned())
    }

    /// `true`: values live in memory, so the core calls the store on the
    /// node's task.
    fn never_blocks(&self) -> bool {
        true
    }
}
