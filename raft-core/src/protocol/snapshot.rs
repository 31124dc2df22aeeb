//! What a follower makes of a snapshot its leader offers: nothing new, a
//! point its log already holds, or state to install.

use super::append::FollowerLog;

/// A follower's verdict on a snapshot ending at `(index, term)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// The log holds every entry through `index` and they are committed:
    /// nothing changes (Raft Figure 13, step 6).
    Stale,
    /// The log holds the snapshot's last entry, so everything through
    /// `index` is committed (a snapshot covers committed entries only):
    /// the commit index moves up to it, and the FSM keeps its state.
    Held,
    /// The log lacks entries the snapshot covers: install it.
    Install,
}

/// Judges a snapshot ending at `(index, term)` against the follower's log.
///
/// The commit index alone does not make a snapshot stale: after a failed
/// write the log can end below the commit index (the entries are committed
/// by the cluster, but the store lost this node's copy), and a snapshot
/// covering the lost entries is what the follower needs. Taking it for stale
/// there answered "success" without installing it, the leader resent the
/// entries after it, the follower refused them, and the two traded the
/// snapshot and the refusal forever (found by the simulator in its worker
/// storage mode, seeds 304 and 375).
pub(crate) fn judge_offer(log: FollowerLog<'_>, index: u64, term: u64) -> Offer {
    if index <= log.commit_index.min(log.last_index) {
        return Offer::Stale;
    }
    if index <= log.last_index && log.ids.term_at(index) == Some(term) {
        return Offer::Held;
    }
    Offer::Install
}

/// What a node's own new snapshot through `(index, term)` does to its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compaction {
    /// The log holds the snapshot's last entry: drop the entries through
    /// this index (the snapshot's, less the trailing entries kept for
    /// followers that lag a little).
    Through(u64),
    /// The log does not hold the snapshot's last entry — it ends before it,
    /// or holds another entry there — so no entry at or below it can be
    /// trusted as a trailing entry, nor any after it as its continuation:
    /// the log starts afresh after the snapshot.
    Clear,
}

/// Decides how a node's log follows its own snapshot through `(index,
/// term)`, keeping `trailing` entries behind it when the log agrees.
///
/// The FSM applies committed entries as soon as the node knows them
/// committed, and a failed write can leave the store without them, or
/// still holding the conflicting entries a truncation was to remove. A
/// snapshot taken then covers entries the log does not hold as applied;
/// keeping the log's stale entries as "trailing" (and appending the next
/// leader's entries after them) broke log matching and, after a restart,
/// leader completeness (found by the simulator's worker storage mode, seeds
/// 217255 and 215250).
pub(crate) fn compaction(log: FollowerLog<'_>, index: u64, term: u64, trailing: u64) -> Compaction {
    if index <= log.last_index && log.ids.term_at(index) == Some(term) {
        Compaction::Through(index.saturating_sub(trailing))
    } else {
        Compaction::Clear
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::log_ids::LogIds;

    #[test]
    fn a_snapshot_is_new_when_the_log_lacks_what_it_covers() {
        // Entries 11..=20 of term 2 after a snapshot through 10 (term 1).
        let mut ids = LogIds::empty((10, 1));
        ids.append((11..=20).map(|index| (index, 2)));
        let log = |last_index, commit_index| FollowerLog {
            ids: &ids,
            last_index,
            snapshot_index: 10,
            snapshot_term: 1,
            commit_index,
        };
        let table = [
            // (last, commit), snapshot (index, term), verdict
            ((20, 15), (12, 2), Offer::Stale),
            ((20, 15), (15, 2), Offer::Stale),
            ((20, 15), (18, 2), Offer::Held),
            ((20, 15), (18, 3), Offer::Install),
            ((20, 15), (25, 2), Offer::Install),
            // A failed write left the log at 17 under a commit index of 20.
            ((17, 20), (16, 2), Offer::Stale),
            ((17, 20), (20, 2), Offer::Install),
            ((17, 20), (19, 2), Offer::Install),
        ];
        for ((last, commit), (index, term), expected) in table {
            assert_eq!(
                judge_offer(log(last, commit), index, term),
                expected,
                "log to {last}, commit {commit}, snapshot {index}/{term}"
            );
        }
        // A node's own snapshot, ten entries kept behind it.
        assert_eq!(compaction(log(20, 20), 18, 2, 10), Compaction::Through(8));
        assert_eq!(compaction(log(20, 20), 15, 2, 0), Compaction::Through(15));
        assert_eq!(compaction(log(20, 20), 18, 3, 10), Compaction::Clear, "another entry at 18");
        assert_eq!(compaction(log(17, 20), 19, 2, 10), Compaction::Clear, "the log ends before it");
    }
}
