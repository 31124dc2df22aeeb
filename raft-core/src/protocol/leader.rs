//! What a leader decides from its followers' answers: the commit index,
//! what each follower stores, which leadership-check round a quorum has
//! confirmed (read index), and whether a quorum was heard from within the
//! lease (check-quorum).

use super::commitment::Commitment;
use super::quorum::Majority;
use crate::ServerId;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::Duration;

/// The protocol state of one leadership (one term as leader).
#[derive(Clone, Debug)]
pub(crate) struct Leadership {
    /// The commit index from the voters' match indexes.
    pub(crate) commitment: Commitment,
    /// The index of this term's first entry (its no-op).
    pub(crate) start_index: u64,
    /// What each follower (voter or not) is known to store.
    pub(crate) matches: BTreeMap<ServerId, u64>,
    /// The newest leadership-check round each follower answered.
    acks: BTreeMap<ServerId, u64>,
    /// The newest leadership-check round started.
    verify_round: u64,
}

impl Leadership {
    /// A leadership among `voters` whose first entry goes at `start_index`,
    /// starting from `commit_index`.
    pub(crate) fn begin(
        voters: impl IntoIterator<Item = ServerId>,
        commit_index: u64,
        start_index: u64,
    ) -> Self {
        Self {
            commitment: Commitment::new(voters, commit_index, start_index),
            start_index,
            matches: BTreeMap::new(),
            acks: BTreeMap::new(),
            verify_round: 0,
        }
    }

    /// The leader's own log is durable through `last_index`: the new commit
    /// index, if it moved.
    pub(crate) fn own_durable(&mut self, me: &ServerId, last_index: u64) -> Option<u64> {
        self.commitment.record(me, last_index)
    }

    /// `peer` stores everything through `match_index`: the new commit index,
    /// if it moved. A follower's match index never goes back.
    pub(crate) fn progress(&mut self, peer: &ServerId, match_index: u64) -> Option<u64> {
        let known = self.matches.entry(peer.clone()).or_insert(0);
        *known = (*known).max(match_index);
        self.commitment.record(peer, match_index)
    }

    /// What `peer` is known to store (0 when nothing is known).
    pub(crate) fn matched(&self, peer: &ServerId) -> u64 {
        self.matches.get(peer).copied().unwrap_or(0)
    }

    /// Starts a leadership check: its round, and the read index it confirms
    /// — the commit index, but never below this term's first entry, whose
    /// commit proves the leader knows every earlier commit.
    pub(crate) fn start_check(&mut self, commit_index: u64) -> (u64, u64) {
        self.verify_round += 1;
        (self.verify_round, commit_index.max(self.start_index))
    }

    /// `peer` answered a heartbeat of leadership-check `round`.
    pub(crate) fn heartbeat_ack(&mut self, peer: ServerId, round: u64) {
        let acked = self.acks.entry(peer).or_insert(0);
        *acked = (*acked).max(round);
    }

    /// The newest leadership-check round a quorum of `voters` has answered
    /// (the leader `me` answers every round itself).
    pub(crate) fn confirmed_round(&self, voters: &Majority, me: &ServerId) -> Option<u64> {
        voters.agreed(|id| if id == me { u64::MAX } else { self.acks.get(id).copied().unwrap_or(0) })
    }
}

/// How long ago a quorum of `voters` was last heard from, given how long
/// ago each was (`since`; the leader `me` hears itself now, and
/// [`Duration::MAX`] means never). `None` with no voters.
pub(crate) fn quorum_contact_age(
    voters: &Majority,
    me: &ServerId,
    since: impl Fn(&ServerId) -> Duration,
) -> Option<Duration> {
    let age = |id: &ServerId| if id == me { Duration::ZERO } else { since(id) };
    voters.agreed(|id| Reverse(age(id))).map(|Reverse(age)| age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ServerId {
        ServerId::from(s)
    }

    #[test]
    fn commit_follows_a_quorum_of_this_terms_entries() {
        let voters = ["a", "b", "c"].map(id);
        let mut leadership = Leadership::begin(voters, 4, 6);
        assert_eq!(
            leadership.progress(&id("b"), 5),
            None,
            "an entry of an older term never commits by counting"
        );
        assert_eq!(leadership.own_durable(&id("a"), 7), None);
        assert_eq!(leadership.progress(&id("b"), 7), Some(7));
        assert_eq!(leadership.progress(&id("b"), 3), None, "a match index never goes back");
        assert_eq!(leadership.matched(&id("b")), 7);
        assert_eq!(leadership.progress(&id("x"), 9), None, "a non-voter does not count");
        assert_eq!(leadership.matched(&id("x")), 9, "but what it stores is known");
    }

    #[test]
    fn a_check_is_confirmed_by_a_quorum_of_its_round_or_newer() {
        let voters = Majority::new(["a", "b", "c", "d", "e"].map(id));
        let mut leadership = Leadership::begin(["a", "b", "c", "d", "e"].map(id), 10, 12);
        assert_eq!(leadership.start_check(10), (1, 12), "the read index waits for this term's first entry");
        assert_eq!(leadership.start_check(15), (2, 15));
        assert_eq!(leadership.confirmed_round(&voters, &id("a")), Some(0));
        leadership.heartbeat_ack(id("b"), 2);
        leadership.heartbeat_ack(id("c"), 1);
        assert_eq!(leadership.confirmed_round(&voters, &id("a")), Some(1));
        leadership.heartbeat_ack(id("d"), 2);
        leadership.heartbeat_ack(id("d"), 1);
        assert_eq!(leadership.confirmed_round(&voters, &id("a")), Some(2));
    }

    #[test]
    fn the_lease_counts_the_newest_contact_a_quorum_shares() {
        let voters = Majority::new(["a", "b", "c", "d", "e"].map(id));
        let ms = Duration::from_millis;
        let ages = |id: &ServerId| match id.as_str() {
            "b" => ms(10),
            "c" => ms(50),
            "d" => ms(30),
            _ => Duration::MAX,
        };
        assert_eq!(quorum_contact_age(&voters, &id("a"), ages), Some(ms(30)));
        assert_eq!(quorum_contact_age(&voters, &id("a"), |_| Duration::MAX), Some(Duration::MAX));
        assert_eq!(
            quorum_contact_age(&Majority::new([id("a")]), &id("a"), |_| Duration::MAX),
            Some(Duration::ZERO)
        );
        assert_eq!(quorum_contact_age(&Majority::default(), &id("a"), ages), None);
    }
}
