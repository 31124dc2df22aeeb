//! A node's log store in the simulation: the in-memory store (written on
//! the node's task, so a crash between two awaits leaves each batch whole or
//! absent), with writes that fail on demand and, as a planted bug, a
//! restart that loses the last batch stored.

use raft_core::{Log, LogStore, StoreError};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use store_mem::MemLogStore;

/// The simulation's log store.
#[derive(Debug, Default)]
pub struct SimLogStore {
    inner: MemLogStore,
    /// How many of the next writes fail.
    failing: AtomicU32,
    /// The last batch stored (first index) and the commit index before it.
    last_batch: Mutex<Option<(u64, u64)>>,
    /// The commit index this store reports: kept here (not by the inner
    /// store) so that a lost batch can take its commit record with it.
    commit_index: Mutex<u64>,
}

/// The message of every write the simulation fails on purpose.
pub const INJECTED_FAILURE: &str = "the simulation failed this write";

impl SimLogStore {
    /// Makes the next `count` writes fail with an I/O error.
    pub fn fail_next_writes(&self, count: u32) {
        self.failing.store(count, Ordering::SeqCst);
    }

    /// The planted bug: forgets the last batch stored, and the commit index
    /// that came with it, as a store that acknowledged a write it had not
    /// made durable would after a crash.
    pub fn lose_last_batch(&self) {
        let last = self.last_batch.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some((first, commit_before)) = last {
            let _ = self.inner.delete_range(first, u64::MAX);
            *self.commit_index.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = commit_before;
        }
    }

    /// Every entry stored, in order.
    pub fn entries(&self) -> Vec<Log> {
        let (first, last) = (self.inner.first_index().unwrap_or(0), self.inner.last_index().unwrap_or(0));
        if last == 0 {
            return Vec::new();
        }
        self.inner.get_logs(first, last, u64::MAX).unwrap_or_default()
    }

    fn check(&self) -> Result<(), StoreError> {
        let failing = self.failing.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing.store(failing - 1, Ordering::SeqCst);
            return Err(StoreError::Io(std::io::Error::other(INJECTED_FAILURE)));
        }
        Ok(())
    }
}

impl LogStore for SimLogStore {
    fn first_index(&self) -> Result<u64, StoreError> {
        self.inner.first_index()
    }
    fn last_index(&self) -> Result<u64, StoreError> {
        self.inner.last_index()
    }
    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        self.inner.get_log(index)
    }
    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        self.inner.get_logs(first, last, bytes_max)
    }
    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        self.store_logs_with_commit(logs, 0)
    }
    fn store_logs_with_commit(&self, logs: &[Log], commit_index: u64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.store_logs(logs)?;
        let mut commit = self.commit_index.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(first) = logs.first() {
            *self.last_batch.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((first.index, *commit));
        }
        *commit = (*commit).max(commit_index);
        Ok(())
    }
    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(*self.commit_index.lock().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }
    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete_range(min, max)
    }
    fn writes_never_block(&self) -> bool {
        true
    }
}
