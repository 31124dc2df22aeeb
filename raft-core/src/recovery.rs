//! Recovery from the stores: what a node reads back when it starts (and
//! the [`RecoveryError`] it refuses to start with when the stores do not fit
//! together), and the operator's last resort for a cluster that lost its
//! quorum for good.

pub(crate) mod error;
mod start;

use crate::error::RaftError;
use crate::stable::KEY_CURRENT_TERM;

use crate::{
    Configuration, Fsm, LogKind, LogStore, NewSnapshot, SNAPSHOT_VERSION, SnapshotStore, StableStore,
};
pub use error::{RecoveryError, UnusableSnapshot};

pub(crate) use start::{recover, restore_newest_snapshot, scan_configurations};

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
    let restored = restore_newest_snapshot(fsm, snapshots, false)?;
    let (mut index, mut term) = restored.chosen.as_ref().map_or((0, 0), |m| (m.index, m.term));
    let last = logs.last_index()?;
    let first = logs.first_index()?;
    if last > index && first > index + 1 {
        return Err(RecoveryError::MissingEntries {
            from: index + 1,
            to: first - 1,
            snapshot_index: index,
            log_first: first,
            log_last: last,
            unusable: restored.unusable,
        }
        .into());
    }
    let mut gatherer = crate::fsm::restore::Gatherer::default();
    while index < last {
        let batch = logs.get_logs(index + 1, last, SCAN_BYTES_MAX)?;
        if batch.first().map(|l| l.index) != Some(index + 1) {
            return Err(crate::StoreError::Corrupt {
                location: format!("log index {}", index + 1),
                reason: "the entry is missing".into(),
            }
            .into());
        }
        apply_in_order(fsm, &batch, &mut gatherer)?;
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

/// Applies a batch of entries as the node would: commands in batches, and a
/// user's restore where its last piece stands.
fn apply_in_order<F: Fsm>(
    fsm: &mut F,
    batch: &[crate::Log],
    gatherer: &mut crate::fsm::restore::Gatherer,
) -> Result<(), RaftError> {
    let mut commands = Vec::new();
    for log in batch {
        if let crate::fsm::restore::Step::Complete(backup) = gatherer.take(log) {
            fsm.apply_batch(&std::mem::take(&mut commands));
            fsm.restore(Box::new(std::io::Cursor::new(backup)))?;
        } else if log.kind == LogKind::Command {
            commands.push(log.clone());
        }
    }
    fsm.apply_batch(&commands);
    Ok(())
}
