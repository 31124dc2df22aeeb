//! Helpers for the crate's own unit tests.

use crate::{Log, LogStore, StoreError};
use std::sync::Mutex;

/// A log in a `Vec`, with no checks: a unit test sets up exactly the log it needs.
#[derive(Default)]
pub(crate) struct VecLog(pub(crate) Mutex<Vec<Log>>);

impl VecLog {
    /// Commands at `indexes`, all of `term`.
    pub(crate) fn of(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Self {
        Self(Mutex::new(indexes.map(|i| Log::command(i, term, "x")).collect()))
    }
}

impl LogStore for VecLog {
    fn first_index(&self) -> Result<u64, StoreError> {
        Ok(self.0.lock().expect("lock").first().map_or(0, |l| l.index))
    }
    fn last_index(&self) -> Result<u64, StoreError> {
        Ok(self.0.lock().expect("lock").last().map_or(0, |l| l.index))
    }
    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        Ok(self.0.lock().expect("lock").iter().find(|l| l.index == index).cloned())
    }
    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        self.0.lock().expect("lock").extend(logs.iter().cloned());
        Ok(())
    }
    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        self.0.lock().expect("lock").retain(|l| l.index < min || l.index > max);
        Ok(())
    }
}
