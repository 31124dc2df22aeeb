//! Damage tests for durable stores: a store whose files were cut short — as
//! a copy, a restore or a filesystem repair that stopped early leaves them —
//! is refused with an error, or opens with everything it had acknowledged.
//! It never opens as a shorter log, never forgets its term or vote, and
//! never panics.
//!
//! A store's test file declares the test with
//! [`damage_suite!`](crate::damage_suite), given a function from a path to
//! the opened store *as a `Result`* (the error is the expected outcome):
//!
//! ```ignore
//! raft_conformance::damage_suite!(|path: &std::path::Path| MyStore::open(path));
//! ```
//!
//! Every file below the store's path with any byte in it is cut, one at a
//! time on a fresh copy of the store, to several lengths: 0, 100 bytes, half
//! of what was written to it (up to its last non-zero byte), one byte short
//! of that, and one byte short of its full length.

use bytes::Bytes;
use raft_core::{Log, LogKind, LogStore, StableStore, StoreError};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

/// How many entries the store holds before its files are cut.
pub const ENTRIES: u64 = 3_000;
const TERM_KEY: &[u8] = b"CurrentTerm";
const VOTE_KEY: &[u8] = b"LastVoteCand";
const TERM: u64 = 4;
const VOTE: &[u8] = b"node-2";

fn entry(index: u64) -> Log {
    Log {
        index,
        term: 1 + index / 1_000,
        kind: LogKind::Command,
        data: Bytes::from(format!("entry {index:06} {}", "x".repeat((index % 64) as usize))),
        extensions: Bytes::new(),
    }
}

/// Fills a store at `path` with [`ENTRIES`] entries, a term and a vote.
fn fill<S: LogStore + StableStore>(path: &Path, open: &impl Fn(&Path) -> Result<S, StoreError>) {
    let store = open(path).expect("open a new store");
    for first in (1..=ENTRIES).step_by(100) {
        let batch: Vec<Log> = (first..first + 100).map(entry).collect();
        store.store_logs(&batch).expect("store_logs");
    }
    store.set_u64(TERM_KEY, TERM).expect("set term");
    store.set(VOTE_KEY, VOTE).expect("set vote");
}

/// Every regular file below `dir` (or `dir` itself, for a store that is one
/// file), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).expect("read the store's directory") {
            let path = entry.expect("directory entry").path();
            let kind = std::fs::symlink_metadata(&path).expect("metadata").file_type();
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Where `file`, a file of the store at `from`, is in a copy at `to`.
fn place(from: &Path, to: &Path, file: &Path) -> PathBuf {
    match file.strip_prefix(from).expect("below the store") {
        relative if relative.as_os_str().is_empty() => to.to_path_buf(),
        relative => to.join(relative),
    }
}

/// Copies the store at `from` (a tree or one file) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    for file in files(from) {
        let target = place(from, to, &file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).expect("create a directory of the copy");
        }
        std::fs::copy(&file, &target).expect("copy a file of the store");
    }
}

/// The lengths to cut a file of `data` to: all shorter than the file.
fn cuts(data: &[u8]) -> Vec<u64> {
    let len = data.len() as u64;
    let written = data.iter().rposition(|&b| b != 0).map_or(0, |n| n as u64 + 1);
    let mut cuts: Vec<u64> = [0, 100, written / 2, written.saturating_sub(1), len.saturating_sub(1)]
        .into_iter()
        .filter(|&cut| cut < len)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Checks a store that opened after damage: everything acknowledged is there.
fn check_whole<S: LogStore + StableStore>(store: &S) -> Result<(), String> {
    let (first, last) = (store.first_index(), store.last_index());
    if !matches!((&first, &last), (Ok(1), Ok(ENTRIES))) {
        return Err(format!("opened as the log {first:?}..={last:?}, not 1..={ENTRIES}"));
    }
    for index in 1..=ENTRIES {
        match store.get_log(index) {
            Ok(Some(log)) if log == entry(index) => {}
            // An error on the read that meets the damage loses nothing silently.
            Err(_) => return Ok(()),
            other => return Err(format!("entry {index} reads as {other:?}")),
        }
    }
    match (store.get_u64(TERM_KEY), store.get(VOTE_KEY)) {
        (Ok(Some(TERM)), Ok(Some(vote))) if vote == VOTE => Ok(()),
        (term, vote) => Err(format!("the term reads {term:?} and the vote {vote:?}")),
    }
}

/// Cuts each file of a filled store short, one at a time on a fresh copy,
/// and checks that the store then refuses to open or has lost nothing.
pub fn cut_short<S: LogStore + StableStore>(open: impl Fn(&Path) -> Result<S, StoreError>) {
    let original = tempfile::tempdir().expect("tempdir");
    let path = original.path().join("store");
    fill(&path, &open);
    let mut cases = 0;
    let mut failures = Vec::new();
    for file in files(&path) {
        let data = std::fs::read(&file).expect("read a file of the store");
        let name = file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        for cut in cuts(&data) {
            cases += 1;
            let copy = tempfile::tempdir().expect("tempdir");
            let damaged = copy.path().join("store");
            copy_tree(&path, &damaged);
            let target = place(&path, &damaged, &file);
            std::fs::write(&target, &data[..cut as usize]).expect("cut the file");
            match std::panic::catch_unwind(AssertUnwindSafe(|| open(&damaged))) {
                Err(_) => {
                    failures.push(format!("{name} cut to {cut} of {} bytes: open panicked", data.len()))
                }
                Ok(Err(_refused)) => {}
                Ok(Ok(store)) => {
                    if let Err(lost) = check_whole(&store) {
                        failures.push(format!("{name} cut to {cut} of {} bytes: {lost}", data.len()));
                    }
                }
            }
        }
    }
    assert!(cases > 0, "the store wrote no file below its path");
    assert!(
        failures.is_empty(),
        "{} of {cases} cut-short cases lost data:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_shorter_than_the_file_and_include_half_of_what_was_written() {
        let mut data = vec![7u8; 1_000];
        data.extend(vec![0u8; 3_000]);
        assert_eq!(cuts(&data), vec![0, 100, 500, 999, 3_999]);
        assert_eq!(cuts(&[1, 2]), vec![0, 1]);
        assert_eq!(cuts(&[0; 50]), vec![0, 49]);
    }
}
