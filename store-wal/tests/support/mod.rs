//! Helpers the store-wal integration tests share.

use raft_core::Log;
use std::path::{Path, PathBuf};

/// Entries `first..first + count`, each about 60 bytes.
pub(crate) fn entries(first: u64, count: u64) -> Vec<Log> {
    (first..first + count).map(|i| Log::command(i, 1, format!("entry {i:06} {}", "x".repeat(40)))).collect()
}

/// The files in `dir` whose names end in `.extension`, sorted.
pub(crate) fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    paths.sort();
    paths
}
