//! Election rules: whose log is up to date, the randomized timeouts, the
//! term to campaign in, and the tally of one round of votes or pre-votes.

use super::quorum::Majority;
use crate::ServerId;
use rand::Rng;
use std::collections::BTreeSet;
use std::time::Duration;

/// The term a node at `current_term` campaigns in, unless it is at
/// [`TERM_MAX`](crate::TERM_MAX) (a term that could never be incremented
/// again is never entered).
pub(crate) fn campaign_term(current_term: u64) -> Option<u64> {
    current_term.checked_add(1).filter(|&term| term <= crate::TERM_MAX)
}

/// One round of votes or pre-votes, decided by the voters when it started.
#[derive(Clone, Debug)]
pub(crate) struct Tally {
    voters: Majority,
    granted: BTreeSet<ServerId>,
    /// The term campaigned in (the next term, for a pre-vote).
    term: u64,
    pre_vote: bool,
}

/// Where a round stands after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TallyOutcome {
    /// Not decided yet.
    Pending,
    /// A quorum has granted.
    Won,
    /// A voter is at a newer term: adopt it and stop campaigning.
    HigherTerm(u64),
}

impl Tally {
    /// A round in `term` among `voters`; the candidate `me` votes for itself.
    pub(crate) fn start(voters: Majority, me: ServerId, term: u64, pre_vote: bool) -> Self {
        Self { voters, granted: BTreeSet::from([me]), term, pre_vote }
    }

    /// Whether this is a pre-vote round.
    #[cfg(test)]
    pub(crate) fn is_pre_vote(&self) -> bool {
        self.pre_vote
    }

    /// Whether a quorum has granted (a single voter wins at once).
    pub(crate) fn won(&self) -> bool {
        self.voters.is_reached(|id| self.granted.contains(id))
    }

    /// Counts `voter`'s answer, given at its `term`, while the candidate is
    /// at `current_term`. A vote counts only if given in the round's term (a
    /// pre-vote is answered at the voter's own, older term).
    pub(crate) fn record(
        &mut self,
        current_term: u64,
        voter: ServerId,
        term: u64,
        granted: bool,
    ) -> TallyOutcome {
        if term > current_term {
            return TallyOutcome::HigherTerm(term);
        }
        if granted && (self.pre_vote || term == self.term) {
            self.granted.insert(voter);
        }
        if self.won() { TallyOutcome::Won } else { TallyOutcome::Pending }
    }
}

/// Whether a candidate whose log ends at (`candidate_term`, `candidate_index`)
/// is at least as up to date as ours, ending at (`our_term`, `our_index`)
/// (Raft §5.4.1): a later last term wins; equal terms compare length.
pub(crate) fn candidate_log_ok(
    candidate_term: u64,
    candidate_index: u64,
    our_term: u64,
    our_index: u64,
) -> bool {
    (candidate_term, candidate_index) >= (our_term, our_index)
}

/// A random duration in `[base, 2 × base)`, so that nodes time out apart.
/// The node's own generator draws it, so a seeded node times out the same
/// way every run.
pub(crate) fn randomized(rng: &mut impl Rng, base: Duration) -> Duration {
    let extra = rng.random_range(0..=base.as_micros().max(1) as u64);
    base + Duration::from_micros(extra)
}

/// The node's random generator: from `seed` when given (deterministic
/// simulation), else from the operating system.
pub(crate) fn node_rng(seed: Option<u64>) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    match seed {
        Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
        None => rand::rngs::StdRng::from_os_rng(),
    }
}

/// The next index to try after a follower refused an AppendEntries whose
/// entries started at `next_index`. The follower's `conflict_index` is the
/// first index of its conflicting term (or its last index + 1), so the leader
/// skips a whole term per round trip; it never goes below 1 nor fails to
/// move back at least one entry.
pub(crate) fn next_index_after_conflict(next_index: u64, conflict_index: u64) -> u64 {
    let fallback = next_index.saturating_sub(1);
    let target = if conflict_index == 0 { fallback } else { conflict_index.min(fallback) };
    target.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_date_compares_last_term_then_length() {
        let table = [
            // candidate term, index, our term, index, ok
            (3, 5, 2, 9, true),
            (2, 9, 3, 5, false),
            (3, 5, 3, 5, true),
            (3, 6, 3, 5, true),
            (3, 4, 3, 5, false),
            (0, 0, 0, 0, true),
            (0, 0, 1, 1, false),
        ];
        for (ct, ci, ot, oi, ok) in table {
            assert_eq!(candidate_log_ok(ct, ci, ot, oi), ok, "candidate ({ct},{ci}) vs ours ({ot},{oi})");
        }
    }

    #[test]
    fn back_off_skips_to_the_conflict_and_always_moves() {
        let table = [
            // next_index, conflict_index, expected
            (100, 40, 40),
            (100, 0, 99),
            (100, 100, 99),
            (100, 150, 99),
            (1, 1, 1),
            (2, 0, 1),
            (0, 0, 1),
        ];
        for (next, conflict, expected) in table {
            assert_eq!(
                next_index_after_conflict(next, conflict),
                expected,
                "next {next}, conflict {conflict}"
            );
        }
    }

    #[test]
    fn randomized_stays_within_one_to_two_times() {
        let base = Duration::from_millis(10);
        let mut rng = node_rng(None);
        for _ in 0..1000 {
            let d = randomized(&mut rng, base);
            assert!(d >= base && d <= base * 2, "{d:?}");
        }
    }
}

#[cfg(test)]
mod seeded {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_timeouts() {
        let draw = |seed| {
            let mut rng = node_rng(Some(seed));
            (0..8).map(|_| randomized(&mut rng, Duration::from_millis(100))).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn a_round_is_won_by_a_quorum_of_the_voters_it_started_with() {
        let id = |s: &str| ServerId::from(s);
        let voters = Majority::new(["a", "b", "c", "d", "e"].map(id));
        let mut tally = Tally::start(voters.clone(), id("a"), 7, false);
        assert!(!tally.won());
        assert_eq!(tally.record(7, id("b"), 7, true), TallyOutcome::Pending);
        assert_eq!(tally.record(7, id("b"), 7, true), TallyOutcome::Pending, "a voter counts once");
        assert_eq!(tally.record(7, id("x"), 7, true), TallyOutcome::Pending, "a non-voter does not count");
        assert_eq!(tally.record(7, id("c"), 6, true), TallyOutcome::Pending, "a vote of another term");
        assert_eq!(tally.record(7, id("d"), 7, false), TallyOutcome::Pending);
        assert_eq!(tally.record(7, id("e"), 9, false), TallyOutcome::HigherTerm(9));
        assert_eq!(tally.record(7, id("c"), 7, true), TallyOutcome::Won);

        let mut pre = Tally::start(voters, id("a"), 8, true);
        assert_eq!(pre.record(7, id("b"), 7, true), TallyOutcome::Pending);
        assert_eq!(pre.record(7, id("c"), 5, true), TallyOutcome::Won, "pre-votes come at the voters' terms");
        assert!(Tally::start(Majority::new([id("a")]), id("a"), 1, false).won());
    }

    #[test]
    fn no_campaign_past_the_highest_term() {
        assert_eq!(campaign_term(4), Some(5));
        assert_eq!(campaign_term(crate::TERM_MAX - 1), Some(crate::TERM_MAX));
        assert_eq!(campaign_term(crate::TERM_MAX), None);
        assert_eq!(campaign_term(u64::MAX), None);
    }
}
