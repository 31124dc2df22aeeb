//! The candidate role: a pre-vote round (unless disabled or transferring
//! leadership), then an election in a new term.

use super::{Event, Input, Node};
use crate::protocol::election::{Tally, TallyOutcome, campaign_term, randomized};
use crate::state::RaftState;
use crate::{Fsm, PreVoteRequest, RequestVoteRequest};
use tokio::task::JoinSet;
use tokio::time::Instant;

impl<F: Fsm> Node<F> {
    pub(super) async fn run_candidate(&mut self) {
        let transfer = std::mem::take(&mut self.transfer_requested);
        if self.config.prevote && !transfer && !self.pre_vote_round().await {
            if self.core.role == RaftState::Candidate {
                self.set_role(RaftState::Follower);
            }
            return;
        }
        if self.core.role == RaftState::Candidate {
            self.election_round(transfer).await;
        }
    }

    /// The term to campaign in, unless this node is at [`TERM_MAX`](crate::TERM_MAX).
    fn next_term(&self) -> Option<u64> {
        let next = campaign_term(self.core.current_term);
        if next.is_none() {
            tracing::error!(term = self.core.current_term, "at the highest term; not campaigning");
        }
        next
    }

    /// The voters other than this node, with their addresses.
    fn other_voters(&self) -> Vec<crate::Server> {
        self.core.configurations.latest.voters().filter(|s| s.id != self.id).cloned().collect()
    }

    /// Asks the voters whether they would vote for us in the next term,
    /// changing no one's term. True when a quorum would.
    async fn pre_vote_round(&mut self) -> bool {
        let Some(term) = self.next_term() else { return false };
        self.election_round += 1;
        let round = self.election_round;
        // The voters when the round starts decide it.
        let mut tally = Tally::start(self.core.voters.clone(), self.id.clone(), term, true);
        if tally.won() {
            return true;
        }
        let request = PreVoteRequest {
            header: self.header(),
            term,
            last_log_index: self.core.last_index,
            last_log_term: self.core.last_term,
        };
        let mut tasks = JoinSet::new();
        for voter in self.other_voters() {
            let (transport, events, request) =
                (self.transport.clone(), self.events_tx.clone(), request.clone());
            tasks.spawn(async move {
                if let Ok(response) = transport.pre_vote(voter.address, request).await {
                    let _ = events.send(Event::PreVote { round, voter: voter.id, response }).await;
                }
            });
        }
        let deadline = Instant::now() + randomized(&mut self.rng, self.config.election_timeout);
        loop {
            match self.next_input(deadline).await {
                Input::Timer => return false,
                Input::Event(Event::PreVote { round: r, voter, response }) if r == round => {
                    match tally.record(self.core.current_term, voter, response.term, response.granted) {
                        TallyOutcome::Pending => {}
                        TallyOutcome::Won => return true,
                        TallyOutcome::HigherTerm(term) => {
                            self.step_down(term).await;
                            return false;
                        }
                    }
                }
                input => {
                    self.handle(input).await;
                    if self.core.role != RaftState::Candidate {
                        return false;
                    }
                }
            }
        }
    }

    /// Campaigns in a new term; becomes leader on a quorum of votes.
    async fn election_round(&mut self, transfer: bool) {
        let Some(term) = self.next_term() else {
            self.set_role(RaftState::Follower);
            return;
        };
        if !self.persist_term(term, Some(self.id.clone())).await {
            return;
        }
        self.set_leader(None);
        self.election_round += 1;
        let round = self.election_round;
        tracing::debug!(term, "election started");
        // The voters when the round starts decide it.
        let mut tally = Tally::start(self.core.voters.clone(), self.id.clone(), term, false);
        if tally.won() {
            self.set_role(RaftState::Leader);
            return;
        }
        let request = RequestVoteRequest {
            header: self.header(),
            term,
            last_log_index: self.core.last_index,
            last_log_term: self.core.last_term,
            leadership_transfer: transfer,
        };
        let mut tasks = JoinSet::new();
        for voter in self.other_voters() {
            let (transport, events, request) =
                (self.transport.clone(), self.events_tx.clone(), request.clone());
            tasks.spawn(async move {
                if let Ok(response) = transport.request_vote(voter.address, request).await {
                    let _ = events.send(Event::Vote { round, voter: voter.id, response }).await;
                }
            });
        }
        let deadline = Instant::now() + randomized(&mut self.rng, self.config.election_timeout);
        loop {
            match self.next_input(deadline).await {
                Input::Timer => return,
                Input::Event(Event::Vote { round: r, voter, response }) if r == round => {
                    match tally.record(self.core.current_term, voter, response.term, response.granted) {
                        TallyOutcome::Pending => {}
                        TallyOutcome::Won => {
                            tracing::info!(term, "won the election");
                            self.set_role(RaftState::Leader);
                            return;
                        }
                        TallyOutcome::HigherTerm(term) => {
                            self.step_down(term).await;
                            return;
                        }
                    }
                }
                input => {
                    self.handle(input).await;
                    if self.core.role != RaftState::Candidate || self.core.current_term != term {
                        return;
                    }
                }
            }
        }
    }
}
