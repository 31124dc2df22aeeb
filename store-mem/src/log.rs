use raft_core::log::{DeletePlan, check_batch, check_range, plan_delete};
use raft_core::{Log, LogStore, StoreError};
use std::collections::VecDeque;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// An in-memory [`LogStore`].
///
/// Entries live in one deque, so lookups are O(1) and compaction from the
/// front or truncation from the back costs only the entries removed. A write
/// takes the lock once per batch, so readers see whole batches.
#[derive(Debug, Default)]
pub struct MemLogStore {
    logs: RwLock<VecDeque<Log>>,
    /// Written under the `logs` write lock, with the batch it came with.
    commit_index: AtomicU64,
}

impl MemLogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, VecDeque<Log>> {
        // A poisoned lock means a writer panicked mid-call; the deque is only
        // changed by whole-batch operations that cannot panic halfway, so the
        // data is still consistent.
        self.logs.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, VecDeque<Log>> {
        self.logs.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn bounds(logs: &VecDeque<Log>) -> (u64, u64) {
    match (logs.front(), logs.back()) {
        (Some(first), Some(last)) => (first.index, last.index),
        _ => (0, 0),
    }
}

fn position(logs: &VecDeque<Log>, index: u64) -> Option<usize> {
    let first = logs.front()?.index;
    let offset = usize::try_from(index.checked_sub(first)?).ok()?;
    (offset < logs.len()).then_some(offset)
}

impl LogStore for MemLogStore {
    fn first_index(&self) -> Result<u64, StoreError> {
        Ok(bounds(&self.read()).0)
    }

    fn last_index(&self) -> Result<u64, StoreError> {
        Ok(bounds(&self.read()).1)
    }

    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        let logs = self.read();
        Ok(position(&logs, index).map(|at| logs[at].clone()))
    }

    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        let logs = self.read();
        let (stored_first, stored_last) = bounds(&logs);
        if check_range(stored_first, stored_last, first, last)?.is_none() {
            return Ok(Vec::new());
        }
        let Some(start) = position(&logs, first) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut bytes_total = 0u64;
        for log in logs.range(start..).take_while(|log| log.index <= last) {
            if !out.is_empty() && bytes_total >= bytes_max {
                break;
            }
            bytes_total += log.payload_size();
            out.push(log.clone());
        }
        Ok(out)
    }

    fn store_logs(&self, batch: &[Log]) -> Result<(), StoreError> {
        self.store_logs_with_commit(batch, 0)
    }

    fn store_logs_with_commit(&self, batch: &[Log], commit_index: u64) -> Result<(), StoreError> {
        let mut logs = self.write();
        check_batch(bounds(&logs).1, batch)?;
        logs.extend(batch.iter().cloned());
        self.commit_index.fetch_max(commit_index, Ordering::AcqRel);
        Ok(())
    }

    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.commit_index.load(Ordering::Acquire)))
    }

    /// `true`: writes only touch memory, so the core performs them on the
    /// node's task rather than on a storage thread.
    fn writes_never_block(&self) -> bool {
        true
    }

    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        let mut logs = self.write();
        let (first, last) = bounds(&logs);
        match plan_delete(first, last, min, max)? {
            DeletePlan::Nothing => {}
            DeletePlan::All => logs.clear(),
            DeletePlan::Prefix(through) => {
                logs.drain(..=(through - first) as usize);
            }
            DeletePlan::Suffix(from) => logs.truncate((from - first) as usize),
        }
        Ok(())
    }
}
