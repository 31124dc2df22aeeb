//! An exclusive lock on a store's files, so that two open stores (in one
//! process or two) never write the same files.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (or when the process ends, even by a
/// crash, since it is an advisory `flock` on an open file).
#[derive(Debug)]
pub struct LockFile {
    _file: File,
    path: PathBuf,
}

impl LockFile {
    /// Takes the exclusive lock on the file at `path`, creating it if needed,
    /// without waiting: a lock another open store holds is
    /// [`LockError::Held`].
    pub fn acquire(path: impl Into<PathBuf>) -> Result<Self, LockError> {
        let path = path.into();
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(path)),
            Err(std::fs::TryLockError::Error(error)) => Err(LockError::Io(error)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another open store holds the lock file.
    #[error("{} is locked by another open store", .0.display())]
    Held(PathBuf),
    /// The lock file could not be opened or locked.
    #[error("locking failed: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for LockError {
    fn from(error: std::io::Error) -> Self {
        LockError::Io(error)
    }
}

impl From<LockError> for crate::StoreError {
    fn from(error: LockError) -> Self {
        match error {
            LockError::Held(path) => crate::StoreError::Locked { path },
            LockError::Io(error) => crate::StoreError::Io(error),
        }
    }
}

impl From<LockError> for crate::SnapshotError {
    fn from(error: LockError) -> Self {
        match error {
            LockError::Held(path) => crate::SnapshotError::Locked { path },
            LockError::Io(error) => crate::SnapshotError::Io(error),
        }
    }
}
