//! Recovery from the stores: what a node reads back when it starts, and the
//! operator's last resort for a cluster that lost its quorum for good.

use crate::error::RaftError;
use crate::fsm::runner::AppliedPoint;
use crate::raft::{Configurations, KEY_CURRENT_TERM, KEY_LAST_VOTE_CAND, KEY_LAST_VOTE_TERM, Recovered};
use crate::{
    Configuration, Fsm, LogKind, LogStore, NewSnapshot, SNAPSHOT_VERSION, ServerId, SnapshotMeta,
    SnapshotStore, StableStore, StoreError,
};

/// Payload bytes read per step when scanning the log.
const SCAN_BYTES_MAX: u64 = 4 << 20;

/// Whether the stores hold any Raft state (a term, a log entry or a
/// snapshot), as hashicorp/raft's `HasExistingState`. A node without state
/// must be bootstrapped or added to a cluster; one with state must not be
/// bootstrapped again.
///
/// # Example
///
/// ```
/// use raft_core::recovery::has_existing_state;
/// use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
///
/// let (logs, stable, snapshots) = (MemLogStore::new(), MemStableStore::new(), InmemSnapshotStore::new());
/// assert!(!has_existing_state(&logs, &stable, &snapshots)?);
/// raft_core::StableStore::set_u64(&stable, b"CurrentTerm", 3)?;
/// assert!(has_existing_state(&logs, &stable, &snapshots)?);
/// # Ok::<(), raft_core::RaftError>(())
/// ```
pub fn has_existing_state(
    logs: &dyn LogStore,
    stable: &dyn StableStore,
    snapshots: &dyn SnapshotStore,
) -> Result<bool, RaftError> {
    Ok(stable.get_u64(KEY_CURRENT_TERM)?.unwrap_or(0) > 0
        || logs.last_index()? > 0
        || !snapshots.list()?.is_empty())
}

/// Forces a node's stores to a new configuration, for a cluster that has
/// lost its quorum for good (hashicorp/raft's `RecoverCluster`). Run it, on
/// stopped nodes only, with the same `configuration` on every surviving
/// node, then start them normally.
///
/// It restores `fsm` from the newest snapshot, applies **every** entry in
/// the log to it (committed or not), writes a new snapshot at the last index
/// carrying `configuration`, and empties the log.
///
/// # Dangers
///
/// This is the last resort, not a tool for routine membership changes:
/// - entries that were never committed are applied as if they had been, and
///   nodes that recover with different logs diverge for good;
/// - if any node of the old cluster is still running, or comes back with its
///   old configuration, two clusters may each believe they are the one.
///
/// Prefer [`Raft::remove_server`](crate::Raft::remove_server) while a quorum
/// still exists.
///
/// # Example
///
/// ```
/// use raft_core::{Configuration, Server};
/// use raft_core::recovery::{has_existing_state, recover_cluster};
/// use raft_conformance::test_fsm::{Checker, TestFsm};
/// use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
///
/// let (logs, stable, snapshots) = (MemLogStore::new(), MemStableStore::new(), InmemSnapshotStore::new());
/// raft_core::LogStore::store_logs(&logs, &[raft_core::Log::command(1, 1, "x")])?;
/// let mut fsm = TestFsm::new(0, std::sync::Arc::new(Checker::default()));
/// let survivors = Configuration::new(vec![Server::voter("node-0", "inmem-0")]);
/// recover_cluster(&mut fsm, &logs, &stable, &snapshots, survivors.clone())?;
/// let snapshot = &raft_core::SnapshotStore::list(&snapshots)?[0];
/// assert_eq!((snapshot.index, &snapshot.configuration), (1, &survivors));
/// assert!(has_existing_state(&logs, &stable, &snapshots)?);
/// # Ok::<(), raft_core::RaftError>(())
/// ```
pub fn recover_cluster<F: Fsm>(
    fsm: &mut F,
    logs: &dyn LogStore,
    stable: &dyn StableStore,
    snapshots: &dyn SnapshotStore,
    configuration: Configuration,
) -> Result<(), RaftError> {
    configuration.validate()?;
    if !has_existing_state(logs, stable, snapshots)? {
        return Err(RaftError::NoExistingState);
    }
    let snapshot = restore_newest_snapshot(fsm, snapshots, false);
    let (mut index, mut term) = snapshot.as_ref().map_or((0, 0), |m| (m.index, m.term));
    let last = logs.last_index()?;
    let first = logs.first_index()?;
    if last > index && first > index + 1 {
        return Err(RaftError::Store(StoreError::Corrupt {
            location: format!("log index {}", index + 1),
            reason: format!("the log starts at {first}, after a gap following the snapshot at {index}"),
        }));
    }
    while index < last {
        let batch = logs.get_logs(index + 1, last, SCAN_BYTES_MAX)?;
        if batch.first().map(|l| l.index) != Some(index + 1) {
            return Err(RaftError::Store(StoreError::Corrupt {
                location: format!("log index {}", index + 1),
                reason: "the entry is missing".into(),
            }));
        }
        let commands: Vec<_> = batch.iter().filter(|l| l.kind == LogKind::Command).cloned().collect();
        fsm.apply_batch(&commands);
        if let Some(tail) = batch.last() {
            (index, term) = (tail.index, tail.term);
        }
    }
    let mut capture = fsm.snapshot()?;
    let new =
        NewSnapshot { version: SNAPSHOT_VERSION, index, term, configuration, configuration_index: index };
    let mut sink = snapshots.create(new)?;
    let written = capture.persist(&mut *sink);
    capture.release();
    match written {
        Ok(()) => {
            sink.close()?;
        }
        Err(error) => {
            let _ = sink.cancel();
            return Err(error.into());
        }
    }
    logs.delete_range(0, u64::MAX)?;
    let current = stable.get_u64(KEY_CURRENT_TERM)?.unwrap_or(0);
    if term > current {
        stable.set_u64(KEY_CURRENT_TERM, term)?;
    }
    Ok(())
}

/// Restores the FSM from the newest snapshot that opens and restores
/// cleanly, falling back to older ones; returns its meta. With `skip_restore`
/// the FSM is left alone (it keeps its own state) and the newest meta is
/// returned as the point the FSM stands at.
pub(crate) fn restore_newest_snapshot<F: Fsm>(
    fsm: &mut F,
    store: &dyn SnapshotStore,
    skip_restore: bool,
) -> Option<SnapshotMeta> {
    let metas = match store.list() {
        Ok(metas) => metas,
        Err(error) => {
            tracing::error!(%error, "listing snapshots failed; starting without one");
            return None;
        }
    };
    if skip_restore {
        return metas.into_iter().next();
    }
    for meta in metas {
        let restored = store
            .open(&meta.id)
            .map_err(RaftError::from)
            .and_then(|(_, reader)| fsm.restore(reader).map_err(RaftError::from));
        match restored {
            Ok(()) => {
                tracing::info!(id = %meta.id, index = meta.index, "restored the FSM from a snapshot");
                return Some(meta);
            }
            Err(error) => tracing::warn!(id = %meta.id, %error, "snapshot unusable; trying an older one"),
        }
    }
    None
}

/// Reads term, vote, log bounds, commit index and configurations back,
/// starting from `snapshot` when there is one. A log that does not continue
/// the snapshot (it ends before it, or disagrees at its index) is cleared.
pub(crate) fn recover(
    log: &dyn LogStore,
    stable: &dyn StableStore,
    snapshot: Option<&SnapshotMeta>,
) -> Result<Recovered, StoreError> {
    let term = stable.get_u64(KEY_CURRENT_TERM)?.unwrap_or(0);
    let vote_term = stable.get_u64(KEY_LAST_VOTE_TERM)?.unwrap_or(0);
    let voted_for = match (vote_term == term && term > 0, stable.get(KEY_LAST_VOTE_CAND)?) {
        (true, Some(candidate)) => Some(ServerId(String::from_utf8_lossy(&candidate).into_owned())),
        _ => None,
    };
    let mut point = AppliedPoint::default();
    let mut configurations = Configurations::default();
    if let Some(meta) = snapshot {
        point = AppliedPoint {
            index: meta.index,
            term: meta.term,
            configuration: meta.configuration.clone(),
            configuration_index: meta.configuration_index,
        };
        configurations = Configurations {
            latest: meta.configuration.clone(),
            latest_index: meta.configuration_index,
            committed: meta.configuration.clone(),
            committed_index: meta.configuration_index,
        };
        let continues = log.last_index()? >= meta.index
            && log.get_log(meta.index)?.is_none_or(|entry| entry.term == meta.term)
            && log.first_index()? <= meta.index + 1;
        if !continues {
            log.delete_range(0, u64::MAX)?;
        }
    }
    let first_index = log.first_index()?;
    let (last_index, last_term) = match log.last_index()? {
        0 => (point.index, point.term),
        index => {
            let entry = log.get_log(index)?.ok_or_else(|| StoreError::Corrupt {
                location: format!("log index {index}"),
                reason: "last_index names an entry the store does not return".into(),
            })?;
            (index, entry.term)
        }
    };
    let commit_index = log.commit_index()?.unwrap_or(0).min(last_index).max(point.index);
    let mut next = first_index.max(point.configuration_index + 1).max(1);
    while first_index > 0 && next <= last_index {
        let batch = log.get_logs(next, last_index, SCAN_BYTES_MAX)?;
        let Some(tail) = batch.last() else { break };
        next = tail.index + 1;
        for entry in batch.iter().filter(|l| l.kind == LogKind::Configuration) {
            let configuration = crate::codec::decode_configuration(entry.data.clone()).map_err(|e| {
                StoreError::Corrupt { location: format!("log index {}", entry.index), reason: e.to_string() }
            })?;
            if entry.index <= commit_index {
                configurations.committed = configuration.clone();
                configurations.committed_index = entry.index;
            }
            configurations.latest = configuration;
            configurations.latest_index = entry.index;
        }
    }
    Ok(Recovered { term, voted_for, last_index, last_term, commit_index, configurations, snapshot: point })
}
