//! What a starting node reads back from its stores: the newest usable
//! snapshot, term and vote, log bounds, commit index and configurations;
//! and the checks that refuse to start when they do not fit together.

use super::{RecoveryError, SCAN_BYTES_MAX, UnusableSnapshot};
use crate::error::RaftError;
use crate::fsm::runner::AppliedPoint;
use crate::protocol::core::Configurations;
use crate::protocol::log_ids::LogIds;
use crate::raft::Recovered;
use crate::stable::{KEY_CURRENT_TERM, KEY_LAST_VOTE_CAND, KEY_LAST_VOTE_TERM};
use crate::{
    Fsm, LogKind, LogStore, ServerId, SnapshotError, SnapshotMeta, SnapshotStore, StableStore, StoreError,
};

/// The snapshot the FSM was restored from, and the newer ones that could not be used.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) chosen: Option<SnapshotMeta>,
    pub(crate) unusable: Vec<UnusableSnapshot>,
}

/// Restores the FSM from the newest snapshot that opens and restores
/// cleanly, falling back to older ones (each one skipped is recorded, for
/// [`recover`] to check that nothing it held is lost). With `skip_restore` the
/// FSM is left alone (it keeps its own state) and the newest meta is the point
/// the FSM stands at.
///
/// A store that cannot list its snapshots, or a snapshot of a format newer
/// than this code, is an error: starting without it could lose what it holds.
pub(crate) fn restore_newest_snapshot<F: Fsm>(
    fsm: &mut F,
    store: &dyn SnapshotStore,
    skip_restore: bool,
) -> Result<Restored, RaftError> {
    let metas = store.list()?;
    if skip_restore {
        return Ok(Restored { chosen: metas.into_iter().next(), unusable: Vec::new() });
    }
    let mut unusable = Vec::new();
    for meta in metas {
        let restored = match store.open(&meta.id) {
            Ok((_, reader)) => fsm.restore(reader).map_err(RaftError::from),
            Err(error @ SnapshotError::UnsupportedVersion { .. }) => return Err(error.into()),
            Err(error) => Err(error.into()),
        };
        match restored {
            Ok(()) => {
                tracing::info!(id = %meta.id, index = meta.index, "restored the FSM from a snapshot");
                return Ok(Restored { chosen: Some(meta), unusable });
            }
            Err(error) => {
                tracing::warn!(id = %meta.id, %error, "snapshot unusable; trying an older one");
                unusable.push(UnusableSnapshot { id: meta.id, index: meta.index, reason: error.to_string() });
            }
        }
    }
    Ok(Restored { chosen: None, unusable })
}

/// What to do with the log so that it continues a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFit {
    /// Keep it as it is.
    Keep,
    /// Every entry is covered by the snapshot, or conflicts with it and was
    /// never committed (a crash during an install): clear it.
    Clear,
}

/// The bounds a continuity check needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The snapshot's last index (0: none).
    pub(crate) snapshot_index: u64,
    /// The log's first and last index (0, 0: empty).
    pub(crate) log: (u64, u64),
    /// The highest index known committed: the stored commit index, or a
    /// newer snapshot that could not be used.
    pub(crate) required: u64,
}

/// Decides whether a log `first..=last` continues a snapshot through
/// `snapshot_index`, and whether entries through `required` are all still
/// somewhere: `Err((from, to))` names the missing range. A pure function of
/// the bounds; the term check at the snapshot's index is the caller's.
pub(crate) fn fit(bounds: Bounds) -> Result<LogFit, (u64, u64)> {
    let Bounds { snapshot_index: s, log: (first, last), required } = bounds;
    if last > 0 && first > s.saturating_add(1) {
        return Err((s + 1, first - 1));
    }
    let available = s.max(last);
    if available < required {
        return Err((available + 1, required));
    }
    if last > 0 && last <= s && s > 0 { Ok(LogFit::Clear) } else { Ok(LogFit::Keep) }
}

/// Reads term, vote, log bounds, commit index and configurations back,
/// starting from the restored snapshot when there is one. A log wholly
/// covered by the snapshot is cleared; a log that disagrees with the newest
/// snapshot at its index is cleared only if that entry was never committed (a
/// crash while installing it). Anything else that does not fit — a gap after
/// the snapshot, committed entries missing, a committed conflict — refuses to
/// start with a [`RecoveryError`], before anything in the stores changes.
pub(crate) fn recover(
    log: &dyn LogStore,
    stable: &dyn StableStore,
    restored: Restored,
) -> Result<Recovered, RaftError> {
    let term = stable.get_u64(KEY_CURRENT_TERM)?.unwrap_or(0);
    if term > crate::TERM_MAX {
        return Err(StoreError::Corrupt {
            location: "stable key CurrentTerm".into(),
            reason: format!("term {term} is above the highest term"),
        }
        .into());
    }
    let vote_term = stable.get_u64(KEY_LAST_VOTE_TERM)?.unwrap_or(0);
    let voted_for = match (vote_term == term && term > 0, stable.get(KEY_LAST_VOTE_CAND)?) {
        (true, Some(candidate)) => Some(ServerId(String::from_utf8_lossy(&candidate).into_owned())),
        _ => None,
    };
    let Restored { chosen, unusable } = restored;
    let mut point = AppliedPoint::default();
    let mut configurations = Configurations::default();
    if let Some(meta) = &chosen {
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
    }
    let stored_commit = log.commit_index()?.unwrap_or(0);
    let newest_unusable = unusable.iter().map(|u| u.index).filter(|&i| i > point.index).max().unwrap_or(0);
    let bounds = Bounds {
        snapshot_index: point.index,
        log: (log.first_index()?, log.last_index()?),
        required: stored_commit.max(newest_unusable),
    };
    if bounds.log.1.max(point.index) > crate::INDEX_MAX {
        return Err(StoreError::Corrupt {
            location: format!("log index {}", bounds.log.1.max(point.index)),
            reason: "the index is above the highest index".into(),
        }
        .into());
    }
    let missing = |(from, to): (u64, u64), unusable: Vec<UnusableSnapshot>| {
        RaftError::from(RecoveryError::MissingEntries {
            from,
            to,
            snapshot_index: bounds.snapshot_index,
            log_first: bounds.log.0,
            log_last: bounds.log.1,
            unusable,
        })
    };
    let mut fit_log = fit(bounds).map_err(|range| missing(range, unusable.clone()))?;
    if let (Some(meta), LogFit::Keep) = (&chosen, fit_log)
        && let Some(entry) = log.get_log(meta.index)?.filter(|entry| entry.term != meta.term)
    {
        if !unusable.is_empty() || stored_commit >= meta.index {
            return Err(RecoveryError::LogConflictsWithSnapshot {
                index: meta.index,
                snapshot_id: meta.id.clone(),
                snapshot_term: meta.term,
                log_term: entry.term,
                unusable,
            }
            .into());
        }
        tracing::warn!(
            index = meta.index,
            "the log conflicts with the snapshot it was installing; clearing it"
        );
        fit_log = LogFit::Clear;
    }
    if fit_log == LogFit::Clear {
        log.delete_range(0, u64::MAX)?;
    }
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
    let commit_index = stored_commit.min(last_index).max(point.index);
    scan_configurations(log, point.configuration_index + 1, last_index, commit_index, &mut configurations)?;
    let log_ids = LogIds::read(log, (point.index, point.term))?;
    Ok(Recovered {
        term,
        voted_for,
        last_index,
        last_term,
        commit_index,
        configurations,
        snapshot: point,
        log_ids,
    })
}

/// Moves `configurations` forward through the configuration entries the
/// log holds in `from..=last` (those through `commit_index` count as
/// committed).
pub(crate) fn scan_configurations(
    log: &dyn LogStore,
    from: u64,
    last: u64,
    commit_index: u64,
    configurations: &mut Configurations,
) -> Result<(), StoreError> {
    let first_index = log.first_index()?;
    let mut next = first_index.max(from).max(1);
    while first_index > 0 && next <= last {
        let batch = log.get_logs(next, last, SCAN_BYTES_MAX)?;
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_must_continue_the_snapshot_and_hold_every_committed_entry() {
        let table = [
            // snapshot, log first, log last, required, outcome
            (0, 0, 0, 0, Ok(LogFit::Keep)),
            (0, 1, 10, 10, Ok(LogFit::Keep)),
            (0, 5, 10, 0, Err((1, 4))),
            (100, 98, 120, 110, Ok(LogFit::Keep)),
            (100, 101, 120, 110, Ok(LogFit::Keep)),
            (100, 102, 120, 110, Err((101, 101))),
            (102, 198, 212, 210, Err((103, 197))),
            (100, 0, 0, 100, Ok(LogFit::Keep)),
            (100, 0, 0, 150, Err((101, 150))),
            (100, 50, 90, 100, Ok(LogFit::Clear)),
            (100, 50, 100, 100, Ok(LogFit::Clear)),
            (102, 50, 100, 202, Err((103, 202))),
            (100, 90, 120, 130, Err((121, 130))),
        ];
        for (snapshot_index, first, last, required, outcome) in table {
            let bounds = Bounds { snapshot_index, log: (first, last), required };
            assert_eq!(fit(bounds), outcome, "{bounds:?}");
        }
    }
}
