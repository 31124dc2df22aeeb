//! Election rules as pure functions: whose log is up to date, and the
//! randomized timeouts.

use rand::Rng;
use std::time::Duration;

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
}
