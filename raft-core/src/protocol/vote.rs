//! Granting votes and pre-votes: what a node answers a candidate, decided
//! from facts the node holds in memory. The node carries the decision out
//! (adopting a newer term, recording its vote) and may still refuse if a
//! write fails.

use super::election::candidate_log_ok;
use crate::{PreVoteRequest, RequestVoteRequest, ServerId};

/// What a node knows when a candidate asks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VoterState<'a> {
    /// Its current term.
    pub(crate) current_term: u64,
    /// Whom it voted for in that term.
    pub(crate) voted_for: Option<&'a ServerId>,
    /// Its log's last index and term.
    pub(crate) last_index: u64,
    pub(crate) last_term: u64,
    /// Whether the candidate votes in the latest configuration (or the node
    /// knows no configuration yet).
    pub(crate) candidate_is_voter: bool,
    /// Whether it heard from a live leader (other than the candidate)
    /// within the election timeout.
    pub(crate) leader_alive: bool,
}

/// What to do with a RequestVote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VoteDecision {
    /// Adopt this newer term first (and forget the vote of the old one).
    pub(crate) adopt_term: Option<u64>,
    /// Grant the vote.
    pub(crate) grant: bool,
    /// Record the vote durably before answering (a vote already recorded
    /// for the same candidate in this term needs no second write).
    pub(crate) record_vote: bool,
}

/// Decides a RequestVote (Raft §5.2, §5.4.1; a leader that is alive is not
/// deposed unless it asked for the election by a leadership transfer).
pub(crate) fn decide_vote(state: VoterState<'_>, request: &RequestVoteRequest) -> VoteDecision {
    let refuse = |adopt_term| VoteDecision { adopt_term, grant: false, record_vote: false };
    let candidate = &request.header.id;
    if request.term > crate::TERM_MAX || !state.candidate_is_voter || request.term < state.current_term {
        return refuse(None);
    }
    if !request.leadership_transfer && state.leader_alive {
        return refuse(None);
    }
    let adopt_term = (request.term > state.current_term).then_some(request.term);
    let voted_for = if adopt_term.is_some() { None } else { state.voted_for };
    if voted_for.is_some_and(|voted| voted != candidate) {
        return refuse(adopt_term);
    }
    if !candidate_log_ok(request.last_log_term, request.last_log_index, state.last_term, state.last_index) {
        return refuse(adopt_term);
    }
    VoteDecision { adopt_term, grant: true, record_vote: voted_for.is_none() }
}

/// Decides a PreVote: whether this node would vote for the candidate in the
/// term it names, changing nothing.
pub(crate) fn decide_pre_vote(state: VoterState<'_>, request: &PreVoteRequest) -> bool {
    state.candidate_is_voter
        && request.term >= state.current_term
        && request.term <= crate::TERM_MAX
        && !state.leader_alive
        && candidate_log_ok(request.last_log_term, request.last_log_index, state.last_term, state.last_index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RpcHeader;

    fn header() -> RpcHeader {
        RpcHeader { protocol_version: 1, id: "c".into(), addr: "c".into() }
    }

    fn request(term: u64, last_index: u64, last_term: u64, transfer: bool) -> RequestVoteRequest {
        RequestVoteRequest {
            header: header(),
            term,
            last_log_index: last_index,
            last_log_term: last_term,
            leadership_transfer: transfer,
        }
    }

    #[test]
    fn votes_follow_the_rules_of_the_paper() {
        let c: ServerId = "c".into();
        let other: ServerId = "o".into();
        let base = VoterState {
            current_term: 5,
            voted_for: None,
            last_index: 10,
            last_term: 4,
            candidate_is_voter: true,
            leader_alive: false,
        };
        let grant = |adopt_term, record_vote| VoteDecision { adopt_term, grant: true, record_vote };
        let refuse = |adopt_term| VoteDecision { adopt_term, grant: false, record_vote: false };
        let table: Vec<(&str, VoterState<'_>, RequestVoteRequest, VoteDecision)> = vec![
            ("same term, no vote yet, log as new", base, request(5, 10, 4, false), grant(None, true)),
            ("a newer term is adopted", base, request(6, 10, 4, false), grant(Some(6), true)),
            ("an older term", base, request(4, 99, 9, false), refuse(None)),
            ("a term past TERM_MAX", base, request(crate::TERM_MAX + 1, 10, 4, false), refuse(None)),
            (
                "not a voter",
                VoterState { candidate_is_voter: false, ..base },
                request(6, 10, 4, false),
                refuse(None),
            ),
            (
                "a live leader is kept",
                VoterState { leader_alive: true, ..base },
                request(6, 10, 4, false),
                refuse(None),
            ),
            (
                "unless it asked for the election",
                VoterState { leader_alive: true, ..base },
                request(6, 10, 4, true),
                grant(Some(6), true),
            ),
            (
                "voted for another in this term",
                VoterState { voted_for: Some(&other), ..base },
                request(5, 10, 4, false),
                refuse(None),
            ),
            (
                "the vote of an older term does not bind",
                VoterState { voted_for: Some(&other), ..base },
                request(6, 10, 4, false),
                grant(Some(6), true),
            ),
            (
                "voted for this candidate already: no second write",
                VoterState { voted_for: Some(&c), ..base },
                request(5, 10, 4, false),
                grant(None, false),
            ),
            ("a shorter log of the same last term", base, request(6, 9, 4, false), refuse(Some(6))),
            ("an older last term, however long", base, request(6, 99, 3, false), refuse(Some(6))),
            ("a newer last term, however short", base, request(6, 1, 5, false), grant(Some(6), true)),
        ];
        for (what, state, request, expected) in table {
            assert_eq!(decide_vote(state, &request), expected, "{what}");
        }
    }

    #[test]
    fn pre_votes_change_nothing_and_follow_the_same_log_rule() {
        let base = VoterState {
            current_term: 5,
            voted_for: Some(&ServerId(String::new())),
            last_index: 10,
            last_term: 4,
            candidate_is_voter: true,
            leader_alive: false,
        };
        let pre = |term, last_index, last_term| PreVoteRequest {
            header: header(),
            term,
            last_log_index: last_index,
            last_log_term: last_term,
        };
        // A pre-vote ignores votes already cast: it asks about the next term.
        assert!(decide_pre_vote(base, &pre(6, 10, 4)));
        assert!(decide_pre_vote(base, &pre(5, 10, 4)));
        assert!(!decide_pre_vote(base, &pre(4, 10, 4)), "an older term");
        assert!(!decide_pre_vote(base, &pre(6, 9, 4)), "a shorter log");
        assert!(!decide_pre_vote(VoterState { leader_alive: true, ..base }, &pre(6, 10, 4)), "a live leader");
        assert!(
            !decide_pre_vote(VoterState { candidate_is_voter: false, ..base }, &pre(6, 10, 4)),
            "not a voter"
        );
        assert!(!decide_pre_vote(base, &pre(crate::TERM_MAX + 1, 10, 4)), "past TERM_MAX");
    }
}
