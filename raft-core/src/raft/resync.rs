//! After a failed log write: the node forgets what it assumed and rebuilds
//! its view of the log from what the store holds.
//!
//! The storage worker performs nothing submitted after a failure until the
//! node acknowledges it (see `storage`), so the store holds a prefix of what
//! was asked and nothing changes it while the node looks. The node then
//! takes the store's log as its own: its last entry and term, and the
//! configurations its entries carry. Entries it had counted on but that never
//! reached the disk are gone from its view; entries it meant to remove but
//! could not (a failed truncation) are back, and the leader's next append
//! finds the conflict again.

use super::Node;
use crate::log::LogStore;
use crate::{Fsm, StoreError};

/// The log as the store holds it, seen from a node whose snapshot ends at
/// `snapshot` (index, term): its last index and term, or `None` when the
/// entries do not continue the snapshot (a failed clear after an install)
/// and must be cleared before the next append.
pub(super) fn stored_log(
    store: &dyn LogStore,
    snapshot: (u64, u64),
) -> Result<Option<(u64, u64)>, StoreError> {
    let (first, last) = (store.first_index()?, store.last_index()?);
    let (snapshot_index, snapshot_term) = snapshot;
    if last == 0 {
        return Ok(Some(snapshot));
    }
    if last < snapshot_index || first > snapshot_index.saturating_add(1) {
        return Ok(None);
    }
    if snapshot_index >= first && store.get_log(snapshot_index)?.map(|l| l.term) != Some(snapshot_term) {
        return Ok(None);
    }
    let term = match store.get_log(last)? {
        Some(entry) => entry.term,
        None => {
            return Err(StoreError::Corrupt {
                location: format!("log index {last}"),
                reason: "last_index names an entry the store does not return".into(),
            });
        }
    };
    Ok(Some((last, term)))
}

impl<F: Fsm> Node<F> {
    /// After a failed write of entries from `index` on, waited for by the
    /// caller: rebuilds the node's view of its log from the store.
    pub(crate) async fn forget_from(&mut self, index: u64) {
        tracing::debug!(index, "a write failed; re-reading the log");
        self.resync_log().await;
    }

    /// Rebuilds the node's view of its log from what the store holds, then
    /// lets writes go on. If the store cannot be read, writes stay fenced and
    /// the next failure tries again.
    pub(crate) async fn resync_log(&mut self) {
        let store = self.log.store().clone();
        let snapshot = (self.core.snapshot_index, self.core.snapshot_term);
        let base = self.core.configurations.clone();
        let commit_index = self.core.commit_index;
        let inline = store.writes_never_block();
        let read = crate::blocking::run(inline, move || {
            let stored = stored_log(&*store, snapshot)?;
            let mut configurations = base;
            // What the log holds past the committed configuration decides the latest one.
            configurations.latest = configurations.committed.clone();
            configurations.latest_index = configurations.committed_index;
            if let Some((last, _)) = stored {
                let from = configurations.committed_index.max(snapshot.0) + 1;
                crate::recovery::scan_configurations(&*store, from, last, commit_index, &mut configurations)?;
            }
            let ids = crate::protocol::log_ids::LogIds::read(&*store, snapshot)?;
            Ok::<_, StoreError>((stored, configurations, ids))
        })
        .await;
        let (stored, configurations, ids) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(error)) => {
                tracing::error!(%error, "re-reading the log after a failed write failed; writes stay stopped");
                return;
            }
            Err(_) => return,
        };
        self.storage.acknowledge_failures();
        self.log.clear();
        let (last_index, last_term) = match stored {
            Some(last) => {
                self.core.log_ids = ids;
                last
            }
            None => {
                tracing::warn!("the log does not continue the snapshot; clearing it before the next write");
                self.storage.clear_before_next_append();
                self.core.log_ids.reset(snapshot);
                snapshot
            }
        };
        if (last_index, last_term) != (self.core.last_index, self.core.last_term) {
            tracing::info!(was = self.core.last_index, now = last_index, "the log ends where the store says");
            self.core.last_index = last_index;
            self.core.last_term = last_term;
            self.publish_log();
        }
        if configurations.latest_index != self.core.configurations.latest_index {
            self.set_latest_configuration(configurations.latest_index, configurations.latest);
        }
        // Committed entries this node had not yet stored are applied once
        // the leader sends them again.
        self.refill_commit = self.core.commit_index > self.core.last_index;
    }

    /// Tells the FSM again about the commit index once the log holds it, if
    /// a failed write had taken committed entries away.
    pub(crate) async fn refill_commit_if_stored(&mut self) {
        if self.refill_commit && self.core.last_index >= self.core.commit_index {
            self.refill_commit = false;
            self.fsm.commit(self.core.commit_index, Vec::new()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VecLog;

    #[test]
    fn the_stored_log_is_kept_only_where_it_continues_the_snapshot() {
        // No snapshot: whatever the store holds.
        assert_eq!(stored_log(&VecLog::of(1..=5, 2), (0, 0)).expect("read"), Some((5, 2)));
        // Empty: the log ends at the snapshot.
        assert_eq!(stored_log(&VecLog::default(), (7, 3)).expect("read"), Some((7, 3)));
        // Continues right after the snapshot, or overlaps it with the same term there.
        assert_eq!(stored_log(&VecLog::of(8..=9, 4), (7, 3)).expect("read"), Some((9, 4)));
        assert_eq!(stored_log(&VecLog::of(5..=9, 3), (7, 3)).expect("read"), Some((9, 3)));
        // Disagrees at the snapshot's index, ends before it, or leaves a gap: cleared.
        assert_eq!(stored_log(&VecLog::of(5..=9, 2), (7, 3)).expect("read"), None);
        assert_eq!(stored_log(&VecLog::of(1..=6, 3), (7, 3)).expect("read"), None);
        assert_eq!(stored_log(&VecLog::of(9..=12, 3), (7, 3)).expect("read"), None);
    }
}
