//! `raftkv inspect --data-dir DIR`: what a stopped node's data directory
//! holds, without changing it. A running node holds the directory's lock,
//! and inspect refuses rather than read a store that is being written.

use crate::node::{IDENTITY_FILE, Identity};
use raft_kit::store::{lmdb::LmdbStore, redb::RedbStore, wal::WalStore};
use raft_kit::{FileSnapshotStore, LogKind, LogStore, SnapshotStore, StableStore, StoreError, codec};
use std::fmt::Write as _;
use std::path::Path;

/// How far back from the last entry inspect looks for the latest configuration.
const CONFIGURATION_SCAN: u64 = 100_000;

/// Why a directory could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Not a raftkv data directory.
    #[error("{0} is not a raftkv data directory (it has no {IDENTITY_FILE})")]
    NotADataDir(String),
    /// A live node holds it.
    #[error("a running node holds {dir} ({detail}); stop it first: inspect reads only stopped nodes")]
    Live {
        /// The directory.
        dir: String,
        /// The store's lock error.
        detail: String,
    },
    /// The identity file is damaged.
    #[error("{0}")]
    Identity(String),
    /// The store could not be read.
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    /// The snapshots could not be read.
    #[error("reading the snapshots: {0}")]
    Snapshots(#[from] raft_kit::SnapshotError),
}

fn live_or(dir: &Path, error: StoreError) -> InspectError {
    match error {
        StoreError::Locked { .. } => {
            InspectError::Live { dir: dir.display().to_string(), detail: error.to_string() }
        }
        other => InspectError::Store(other),
    }
}

/// A report of what `dir` holds, as text.
pub fn inspect(dir: &Path) -> Result<String, InspectError> {
    let identity_path = dir.join(IDENTITY_FILE);
    let bytes =
        std::fs::read(&identity_path).map_err(|_| InspectError::NotADataDir(dir.display().to_string()))?;
    let identity: Identity = serde_json::from_slice(&bytes)
        .map_err(|e| InspectError::Identity(format!("{}: {e}", identity_path.display())))?;
    let mut out = String::new();
    let _ = writeln!(out, "node {} of cluster {}", identity.id, identity.cluster);
    let _ = writeln!(out, "store: {}", identity.store);
    match identity.store.as_str() {
        "lmdb" => {
            let store = LmdbStore::open(dir.join("raft")).map_err(|e| live_or(dir, e))?;
            let _ =
                writeln!(out, "format version: {} (checked on open)", raft_kit::store::lmdb::FORMAT_VERSION);
            report_store(&mut out, &store, &store)?;
        }
        "redb" => {
            let store = RedbStore::open(dir.join("raft.redb")).map_err(|e| live_or(dir, e))?;
            let _ =
                writeln!(out, "format version: {} (checked on open)", raft_kit::store::redb::FORMAT_VERSION);
            report_store(&mut out, &store, &store)?;
        }
        "wal" => {
            let store = WalStore::open(dir.join("wal")).map_err(|e| live_or(dir, e))?;
            let _ =
                writeln!(out, "format version: {} (checked on open)", raft_kit::store::wal::FORMAT_VERSION);
            let _ = writeln!(out, "segments: {}", store.segment_count());
            report_store(&mut out, &store, &store)?;
        }
        _ => {
            let _ = writeln!(out, "log: in memory (nothing on disk)");
        }
    }
    let snapshots = FileSnapshotStore::open(dir.join("snapshots")).map_err(|e| match e {
        raft_kit::SnapshotError::Locked { .. } => {
            InspectError::Live { dir: dir.display().to_string(), detail: e.to_string() }
        }
        other => InspectError::Snapshots(other),
    })?;
    let list = snapshots.list()?;
    let _ = writeln!(out, "snapshots: {}", list.len());
    for meta in &list {
        let _ = writeln!(out, "  {} index {} term {} size {} B", meta.id, meta.index, meta.term, meta.size);
    }
    Ok(out)
}

fn report_store(out: &mut String, logs: &dyn LogStore, stable: &dyn StableStore) -> Result<(), InspectError> {
    let (first, last) = (logs.first_index()?, logs.last_index()?);
    let _ = writeln!(out, "log: first index {first}, last index {last}");
    let _ = writeln!(out, "commit index: {}", logs.commit_index()?.map_or("none".into(), |c| c.to_string()));
    let term = stable.get_u64(b"CurrentTerm")?.unwrap_or(0);
    let _ = writeln!(out, "term: {term}");
    let vote = stable.get(b"LastVoteCand")?.map(|v| String::from_utf8_lossy(&v).into_owned());
    let vote_term = stable.get_u64(b"LastVoteTerm")?;
    match (vote, vote_term) {
        (Some(candidate), Some(in_term)) => {
            let _ = writeln!(out, "vote: {candidate} in term {in_term}");
        }
        _ => {
            let _ = writeln!(out, "vote: none");
        }
    }
    let mut index = last;
    while index >= first.max(1) && index > 0 && last - index < CONFIGURATION_SCAN {
        if let Some(log) = logs.get_log(index)?
            && log.kind == LogKind::Configuration
        {
            match codec::decode_configuration(log.data.clone()) {
                Ok(configuration) => {
                    let _ = writeln!(out, "latest configuration (index {index}):");
                    for server in &configuration.servers {
                        let _ = writeln!(out, "  {} {} {:?}", server.id, server.address, server.suffrage);
                    }
                }
                Err(error) => {
                    let _ = writeln!(out, "latest configuration (index {index}): undecodable: {error}");
                }
            }
            return Ok(());
        }
        index -= 1;
    }
    let _ = writeln!(out, "latest configuration: not in the log (see the newest snapshot)");
    Ok(())
}
