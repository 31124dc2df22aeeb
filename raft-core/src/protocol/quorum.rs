//! Quorums: who must agree before the protocol decides.
//!
//! Every decision that needs "enough voters" asks one question of a voter
//! set: *the greatest value a quorum of voters has reached*
//! ([`Majority::agreed`]). The commit index is the greatest match index a
//! quorum holds; an election is won when a quorum has granted (`true` is
//! greater than `false`); a read index is confirmed when a quorum has
//! answered a heartbeat round at least as new as the read's; a leader's lease
//! holds while a quorum has been heard from within it (the newest contact
//! age a quorum shares, compared with [`std::cmp::Reverse`]).
//!
//! A majority of one voter set is the only quorum today. A joint
//! configuration (the old and the new voters during a membership change)
//! will be a second implementation of the same questions — its agreed value
//! is the lesser of its two majorities' — not a second code path.

use crate::{Configuration, ServerId};
use std::collections::BTreeSet;

/// A majority of one set of voters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Majority {
    voters: BTreeSet<ServerId>,
}

impl Majority {
    /// A majority of `voters` (duplicates count once).
    pub(crate) fn new(voters: impl IntoIterator<Item = ServerId>) -> Self {
        Self { voters: voters.into_iter().collect() }
    }

    /// A majority of `configuration`'s voters.
    pub(crate) fn of(configuration: &Configuration) -> Self {
        Self::new(configuration.voters().map(|server| server.id.clone()))
    }

    /// The voters.
    pub(crate) fn voters(&self) -> impl Iterator<Item = &ServerId> {
        self.voters.iter()
    }

    /// How many voters make a quorum (0 with no voters).
    pub(crate) fn size(&self) -> usize {
        if self.voters.is_empty() { 0 } else { self.voters.len() / 2 + 1 }
    }

    /// The greatest value that a quorum of voters has reached: each voter
    /// reports a value, and the answer is the greatest `v` such that a
    /// quorum reports at least `v`. `None` with no voters (nothing can be
    /// agreed by nobody).
    pub(crate) fn agreed<T: Ord + Copy>(&self, mut report: impl FnMut(&ServerId) -> T) -> Option<T> {
        let mut values: Vec<T> = self.voters.iter().map(&mut report).collect();
        if values.is_empty() {
            return None;
        }
        // Sorted from the greatest: the quorum-th greatest is reached by a quorum.
        values.sort_unstable_by(|a, b| b.cmp(a));
        Some(values[self.size() - 1])
    }

    /// Whether a quorum of voters says yes.
    pub(crate) fn is_reached(&self, mut yes: impl FnMut(&ServerId) -> bool) -> bool {
        self.agreed(|id| yes(id)).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;

    fn ids(names: &str) -> Vec<ServerId> {
        names.chars().map(|c| ServerId::new(c.to_string())).collect()
    }

    fn set(names: &str) -> BTreeSet<ServerId> {
        ids(names).into_iter().collect()
    }

    #[test]
    fn quorum_sizes_are_majorities() {
        for (voters, size) in
            [("", 0), ("a", 1), ("ab", 2), ("abc", 2), ("abcd", 3), ("abcde", 3), ("abcdefg", 4)]
        {
            assert_eq!(Majority::new(ids(voters)).size(), size, "{voters}");
        }
        assert_eq!(Majority::new(ids("aab")).size(), 2, "a duplicate voter counts once");
    }

    #[test]
    fn the_agreed_index_is_the_greatest_a_quorum_holds() {
        // voters' match indexes (by position) → the commit index a quorum allows
        let table: &[(&[u64], Option<u64>)] = &[
            (&[], None),
            (&[7], Some(7)),
            (&[5, 3], Some(3)),
            (&[5, 3, 1], Some(3)),
            (&[1, 3, 5], Some(3)),
            (&[9, 9, 0], Some(9)),
            (&[4, 4, 2, 2], Some(2)),
            (&[10, 8, 6, 4, 2], Some(6)),
            (&[u64::MAX, u64::MAX, 0], Some(u64::MAX)),
            (&[9, 9, 9, 2], Some(9)),
            (&[7, 1, 7, 1, 7], Some(7)),
            (&[7, 1, 7, 1, 1], Some(1)),
        ];
        for (matches, expected) in table {
            let names: String = ('a'..).take(matches.len()).collect();
            let majority = Majority::new(ids(&names));
            let agreed = majority.agreed(|id| {
                let n = id.as_str().as_bytes()[0] - b'a';
                matches[n as usize]
            });
            assert_eq!(agreed, *expected, "{matches:?}");
        }
    }

    #[test]
    fn an_election_is_won_by_a_quorum_of_distinct_voters() {
        let majority = Majority::new(ids("abcde"));
        // who granted → won
        let table = [
            ("", false),
            ("ab", false),
            ("abc", true),
            ("cde", true),
            // Non-voters do not count, and a voter counts once.
            ("abxyz", false),
            ("aabb", false),
        ];
        for (granted, won) in table {
            let granted = set(granted);
            assert_eq!(majority.is_reached(|id| granted.contains(id)), won, "{granted:?}");
        }
        assert!(!Majority::default().is_reached(|_| true), "no voters, no quorum");
        assert!(Majority::new(ids("a")).is_reached(|id| id.as_str() == "a"));
    }

    #[test]
    fn a_lease_holds_while_a_quorum_was_heard_within_it() {
        let majority = Majority::new(ids("abc"));
        // Milliseconds since each voter was last heard from (the leader "a": 0).
        let heard = |a: u64, b: u64, c: u64| {
            move |id: &ServerId| match id.as_str() {
                "a" => Reverse(a),
                "b" => Reverse(b),
                _ => Reverse(c),
            }
        };
        // The contact age a quorum shares is the second smallest of three.
        assert_eq!(majority.agreed(heard(0, 40, 900)), Some(Reverse(40)));
        assert_eq!(majority.agreed(heard(0, 900, 40)), Some(Reverse(40)));
        assert_eq!(majority.agreed(heard(0, 900, 800)), Some(Reverse(800)));
    }
}
