//! [`RecoveryError`]: why a node's stores cannot be started from.

/// Why a node's stores cannot be started from: what they hold does not fit
/// together, and starting anyway would lose committed entries. Nothing was
/// changed in the stores; the operator decides what to do (each message says
/// what the choices are).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// Entries `from..=to` are neither in a usable snapshot nor in the log:
    /// the newest snapshot is unusable and the log was compacted past the
    /// older one, or the log starts after a gap.
    #[error(
        "entries {from}..={to} are in neither a usable snapshot nor the log (newest usable snapshot: {}; \
         log: {}{}); starting would lose committed entries. Restore the snapshot from a backup, or empty \
         this node's stores and add it back to the cluster so that it catches up from the leader; if it \
         holds the cluster's last copy, recover_cluster can start from what is left (read its warnings)",
        describe_snapshot(*snapshot_index),
        describe_log(*log_first, *log_last),
        describe_unusable(unusable)
    )]
    MissingEntries {
        /// The first missing index.
        from: u64,
        /// The last missing index.
        to: u64,
        /// The index of the snapshot the FSM was restored from (0: none).
        snapshot_index: u64,
        /// The log's first index (0: empty).
        log_first: u64,
        /// The log's last index (0: empty).
        log_last: u64,
        /// Snapshots newer than that one that could not be used, and why.
        unusable: Vec<UnusableSnapshot>,
    },
    /// The log holds an entry at the snapshot's last index with another term,
    /// though that entry is committed: the stores come from different
    /// histories, or one of them is damaged.
    #[error(
        "the log's entry {index} has term {log_term}, but the snapshot {snapshot_id} that ends there has \
         term {snapshot_term}, and the entry is committed{}; the stores disagree. Empty this node's stores \
         and add it back to the cluster",
        describe_unusable(unusable)
    )]
    LogConflictsWithSnapshot {
        /// The snapshot's last index.
        index: u64,
        /// The snapshot used.
        snapshot_id: String,
        /// The snapshot's term at `index`.
        snapshot_term: u64,
        /// The log's term at `index`.
        log_term: u64,
        /// Snapshots newer than that one that could not be used, and why.
        unusable: Vec<UnusableSnapshot>,
    },
}

/// A snapshot that could not be restored on start, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableSnapshot {
    /// The snapshot's id.
    pub id: String,
    /// Its last index.
    pub index: u64,
    /// Why it could not be used.
    pub reason: String,
}

fn describe_snapshot(index: u64) -> String {
    if index == 0 { "none".into() } else { format!("through index {index}") }
}

fn describe_log(first: u64, last: u64) -> String {
    if last == 0 { "empty".into() } else { format!("{first}..={last}") }
}

fn describe_unusable(unusable: &[UnusableSnapshot]) -> String {
    unusable
        .iter()
        .map(|u| format!("; snapshot {} (through {}) is unusable: {}", u.id, u.index, u.reason))
        .collect()
}
