//! The core as one synchronous state machine: [`Driver::step`] takes an
//! [`Input`] (a timer tick, a proposal, a peer's request, the answer to a
//! request this node sent, "the log is durable through N", a snapshot taken
//! or installed) at a time given by the caller, and returns the
//! [`Action`]s to perform, in order. It never awaits, never reads a clock
//! and never calls a store; every decision is one of the `protocol`
//! modules' (vote granting, AppendEntries admission and matching, tallies,
//! commitment, snapshot offers).
//!
//! Today it drives the runtime-free cluster test (`driver/tests.rs`): three
//! drivers, a simulated network and in-memory logs, through elections,
//! replication, leader changes and snapshots. The node adopts it input by
//! input next (issue #24), replacing the glue in `raft/*` that calls the same
//! decisions today.

mod replicate;
#[cfg(test)]
mod tests;

use super::append::{self, Admission, AppendDecision};
use super::core::Core;
use super::election::{Tally, TallyOutcome, campaign_term, randomized};
use super::snapshot::{Offer, judge_offer};
use super::vote::{self, VoterState};
use crate::state::RaftState;
use crate::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, Log,
    LogKind, PreVoteRequest, PreVoteResponse, RequestVoteRequest, RequestVoteResponse, RpcHeader,
    ServerAddress, ServerId,
};
use bytes::Bytes;
use replicate::Peer;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The timings and limits a driver decides with.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// This node's address (in the headers of what it sends).
    pub(crate) addr: ServerAddress,
    /// Followers campaign after a random time in `[this, 2 × this)` without a leader.
    pub(crate) election_timeout: Duration,
    /// A leader sends each follower something at least this often.
    pub(crate) heartbeat_interval: Duration,
    /// A leader steps down when no quorum answered within this.
    pub(crate) leader_lease: Duration,
    /// The most entries in one AppendEntries.
    pub(crate) max_append_entries: u64,
    /// Run a pre-vote round before each election.
    pub(crate) prevote: bool,
}

/// A request from a peer.
#[derive(Clone, Debug)]
pub(crate) enum Message {
    Append(AppendEntriesRequest),
    Vote(RequestVoteRequest),
    PreVote(PreVoteRequest),
    /// A snapshot offer (its data travels beside it, with the executor).
    Snapshot(InstallSnapshotRequest),
}

/// The answer to a request this node sent, with what the executor knows of
/// the request it answers.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    Append {
        peer: ServerId,
        prev_index: u64,
        count: u64,
        sent: Instant,
        response: AppendEntriesResponse,
    },
    Vote {
        voter: ServerId,
        response: RequestVoteResponse,
    },
    PreVote {
        voter: ServerId,
        response: PreVoteResponse,
    },
    Snapshot {
        peer: ServerId,
        index: u64,
        sent: Instant,
        response: InstallSnapshotResponse,
    },
    /// The request to `peer` failed or timed out: it may be retried.
    Lost {
        peer: ServerId,
    },
}

/// One thing for the driver to handle.
#[derive(Clone, Debug)]
pub(crate) enum Input {
    /// Time passed: timers that are due fire.
    Tick,
    /// A client's command, for a leader to append.
    Propose(Bytes),
    Message(Message),
    Answer(Answer),
    /// The log is durable through `last_index`.
    Durable {
        last_index: u64,
    },
    /// This node took a snapshot through `(index, term)`: compact the log.
    Snapshotted {
        index: u64,
        term: u64,
    },
    /// The FSM was restored from the snapshot a leader sent (`Action::Install`).
    Installed {
        index: u64,
        term: u64,
    },
}

/// What a request to a peer carries; the executor builds the RPC from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// The entries `first..=last` (none when `first > last`) after `prev`.
    Append {
        term: u64,
        prev_index: u64,
        prev_term: u64,
        first: u64,
        last: u64,
        commit: u64,
    },
    Vote(RequestVoteRequest),
    PreVote(PreVoteRequest),
    /// The newest snapshot the executor holds.
    Snapshot {
        term: u64,
    },
}

/// An answer to a peer's request.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    Append(AppendEntriesResponse),
    Vote(RequestVoteResponse),
    PreVote(PreVoteResponse),
    Snapshot(InstallSnapshotResponse),
}

/// What the executor performs, in the order given.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Make the term and vote durable before anything after this is sent.
    Persist {
        term: u64,
        voted_for: Option<ServerId>,
    },
    /// Remove the log's entries from `from` on (0: the whole log).
    Truncate {
        from: u64,
    },
    /// Append entries continuing the log.
    Append(Vec<Log>),
    /// Drop the log's entries through `through` (a snapshot covers them).
    Compact {
        through: u64,
    },
    Send {
        to: ServerId,
        request: Request,
    },
    /// Answer `to`; with `after_writes`, only once every log write asked
    /// for before this action is durable.
    Reply {
        to: ServerId,
        reply: Reply,
        after_writes: bool,
    },
    /// Apply the committed entries through this index.
    Apply {
        through: u64,
    },
    /// Restore the FSM from the snapshot `to`'s leader offered (through
    /// `index`), then report [`Input::Installed`].
    Install {
        index: u64,
        term: u64,
    },
    /// The role changed (for observers and the shared state).
    Role(RaftState),
}

/// A [`Core`] with the timers, peers and rounds needed to step it.
pub(crate) struct Driver {
    pub(crate) core: Core,
    settings: Settings,
    rng: rand::rngs::StdRng,
    election_deadline: Instant,
    /// A round of pre-votes or votes under way.
    tally: Option<Tally>,
    /// A leader's view of each follower.
    peers: BTreeMap<ServerId, Peer>,
    next_heartbeat: Instant,
    /// A snapshot being installed: the leader to answer, and its term.
    installing: Option<(ServerId, u64)>,
    actions: Vec<Action>,
}

impl Driver {
    /// A driver for `core` (as recovery left it) at time `now`.
    pub(crate) fn new(core: Core, settings: Settings, seed: u64, now: Instant) -> Self {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let election_deadline = now + randomized(&mut rng, settings.election_timeout);
        Self {
            core,
            settings,
            rng,
            election_deadline,
            tally: None,
            peers: BTreeMap::new(),
            next_heartbeat: now,
            installing: None,
            actions: Vec::new(),
        }
    }

    /// Handles `input` at `now`; the actions to perform, in order.
    pub(crate) fn step(&mut self, now: Instant, input: Input) -> Vec<Action> {
        match input {
            Input::Tick => self.tick(now),
            Input::Propose(data) => self.propose(now, data),
            Input::Message(Message::Append(request)) => self.on_append(now, request),
            Input::Message(Message::Vote(request)) => self.on_vote(now, request),
            Input::Message(Message::PreVote(request)) => self.on_pre_vote(now, request),
            Input::Message(Message::Snapshot(request)) => self.on_snapshot(now, request),
            Input::Answer(answer) => self.on_answer(now, answer),
            Input::Durable { last_index } => self.on_durable(last_index),
            Input::Snapshotted { index, term } => self.on_snapshotted(index, term),
            Input::Installed { index, term } => self.on_installed(now, index, term),
        }
        std::mem::take(&mut self.actions)
    }

    /// When the driver next needs a [`Input::Tick`].
    pub(crate) fn next_deadline(&self) -> Instant {
        if self.core.role == RaftState::Leader { self.next_heartbeat } else { self.election_deadline }
    }

    fn header(&self) -> RpcHeader {
        RpcHeader::new(self.core.id.clone(), self.settings.addr.clone())
    }

    fn set_role(&mut self, role: RaftState) {
        if self.core.role != role {
            self.core.role = role;
            self.actions.push(Action::Role(role));
        }
    }

    fn reset_election_timer(&mut self, now: Instant) {
        self.election_deadline = now + randomized(&mut self.rng, self.settings.election_timeout);
    }

    /// Adopts a newer `term` (durably, before anything else is sent) and
    /// becomes a follower.
    fn step_down(&mut self, now: Instant, term: u64) {
        if term > self.core.current_term {
            self.core.current_term = term;
            self.core.voted_for = None;
            self.actions.push(Action::Persist { term, voted_for: None });
        }
        if self.core.role != RaftState::Follower {
            self.end_leadership();
            self.tally = None;
            self.set_role(RaftState::Follower);
            self.reset_election_timer(now);
        }
    }

    fn commit_to(&mut self, index: u64) {
        if index > self.core.commit_index {
            self.core.commit_to(index);
            self.actions.push(Action::Apply { through: index });
        }
    }

    fn tick(&mut self, now: Instant) {
        if self.core.role == RaftState::Leader {
            return self.leader_tick(now);
        }
        if now < self.election_deadline {
            return;
        }
        self.reset_election_timer(now);
        if !self.core.configurations.latest.is_voter(&self.core.id) {
            return;
        }
        self.core.leader = None;
        self.campaign(now, self.settings.prevote);
    }

    /// Starts a pre-vote round (`pre`) or an election in the next term.
    fn campaign(&mut self, now: Instant, pre: bool) {
        let Some(term) = campaign_term(self.core.current_term) else { return };
        self.set_role(RaftState::Candidate);
        if !pre {
            self.core.current_term = term;
            self.core.voted_for = Some(self.core.id.clone());
            let voted_for = self.core.voted_for.clone();
            self.actions.push(Action::Persist { term, voted_for });
        }
        let tally = Tally::start(self.core.voters.clone(), self.core.id.clone(), term, pre);
        let won = tally.won();
        self.tally = Some(tally);
        if won {
            return self.round_won(now, pre);
        }
        let (header, last_index, last_term) = (self.header(), self.core.last_index, self.core.last_term);
        let voters: Vec<ServerId> =
            self.core.voters.voters().filter(|id| **id != self.core.id).cloned().collect();
        for to in voters {
            let request = if pre {
                Request::PreVote(PreVoteRequest {
                    header: header.clone(),
                    term,
                    last_log_index: last_index,
                    last_log_term: last_term,
                })
            } else {
                Request::Vote(RequestVoteRequest {
                    header: header.clone(),
                    term,
                    last_log_index: last_index,
                    last_log_term: last_term,
                    leadership_transfer: false,
                })
            };
            self.actions.push(Action::Send { to, request });
        }
    }

    fn round_won(&mut self, now: Instant, pre: bool) {
        self.tally = None;
        if pre { self.campaign(now, false) } else { self.become_leader(now) }
    }

    fn voter_state(&self, now: Instant, candidate: &ServerId) -> VoterState<'_> {
        let latest = &self.core.configurations.latest;
        VoterState {
            current_term: self.core.current_term,
            voted_for: self.core.voted_for.as_ref(),
            last_index: self.core.last_index,
            last_term: self.core.last_term,
            candidate_is_voter: latest.servers.is_empty() || latest.is_voter(candidate),
            leader_alive: self.core.leader_is_alive(candidate, now, self.settings.election_timeout),
        }
    }

    fn on_vote(&mut self, now: Instant, request: RequestVoteRequest) {
        let decision = vote::decide_vote(self.voter_state(now, &request.header.id), &request);
        if let Some(term) = decision.adopt_term {
            self.step_down(now, term);
            self.core.leader = None;
        }
        if decision.grant && decision.record_vote {
            self.core.voted_for = Some(request.header.id.clone());
            let (term, voted_for) = (self.core.current_term, self.core.voted_for.clone());
            self.actions.push(Action::Persist { term, voted_for });
        }
        if decision.grant {
            self.reset_election_timer(now);
        }
        let reply = RequestVoteResponse {
            header: self.header(),
            term: self.core.current_term,
            granted: decision.grant,
        };
        self.actions.push(Action::Reply {
            to: request.header.id,
            reply: Reply::Vote(reply),
            after_writes: false,
        });
    }

    fn on_pre_vote(&mut self, now: Instant, request: PreVoteRequest) {
        let granted = vote::decide_pre_vote(self.voter_state(now, &request.header.id), &request);
        let reply = PreVoteResponse { header: self.header(), term: self.core.current_term, granted };
        self.actions.push(Action::Reply {
            to: request.header.id,
            reply: Reply::PreVote(reply),
            after_writes: false,
        });
    }

    fn on_tally(&mut self, now: Instant, voter: ServerId, term: u64, granted: bool, pre: bool) {
        let current = self.core.current_term;
        let Some(tally) = self.tally.as_mut().filter(|tally| tally.is_pre_vote() == pre) else { return };
        match tally.record(current, voter, term, granted) {
            TallyOutcome::Pending => {}
            TallyOutcome::Won => self.round_won(now, pre),
            TallyOutcome::HigherTerm(term) => self.step_down(now, term),
        }
    }

    /// Takes the leader of this (or a newer) term's word: adopts the term,
    /// follows it, and pushes the election back.
    fn follow(&mut self, now: Instant, header: &RpcHeader, leader_commit: u64) {
        self.core.leader = Some((header.id.clone(), header.addr.clone()));
        self.core.last_leader_contact = Some(now);
        self.core.leader_commit = self.core.leader_commit.max(leader_commit);
        self.reset_election_timer(now);
    }

    fn on_append(&mut self, now: Instant, request: AppendEntriesRequest) {
        let to = request.header.id.clone();
        let mut response = AppendEntriesResponse {
            header: self.header(),
            term: self.core.current_term,
            last_log: self.core.last_index,
            ..Default::default()
        };
        match append::admit(self.core.current_term, self.core.role, &request) {
            Admission::Stale => {}
            Admission::Malformed(_) => response.no_retry_backoff = true,
            Admission::Admit { step_down } => {
                if step_down {
                    self.step_down(now, request.term);
                }
                self.follow(now, &request.header, request.leader_commit);
                response.term = self.core.current_term;
                match append::decide(self.core.follower_log(), self.core.restoring, &request) {
                    AppendDecision::Mismatch { conflict_term, conflict_index } => {
                        response.conflict_term = conflict_term;
                        response.conflict_index = conflict_index;
                    }
                    AppendDecision::Refuse { .. } => response.no_retry_backoff = true,
                    AppendDecision::Accept { truncate_from, append_from, commit } => {
                        self.accept(truncate_from, append_from, request.entries);
                        self.commit_to(commit);
                        response.success = true;
                        response.last_log = self.core.last_index;
                        let reply = Reply::Append(response);
                        return self.actions.push(Action::Reply { to, reply, after_writes: true });
                    }
                }
            }
        }
        self.actions.push(Action::Reply { to, reply: Reply::Append(response), after_writes: false });
    }

    /// Carries out an accepted AppendEntries on the log.
    fn accept(&mut self, truncate_from: Option<u64>, append_from: Option<usize>, mut entries: Vec<Log>) {
        if let Some(from) = truncate_from {
            self.core.log_ids.truncate_from(from);
            self.core.last_index = from - 1;
            self.core.last_term = self.core.log_ids.term_at(from - 1).unwrap_or(0);
            self.actions.push(Action::Truncate { from });
            if self.core.configurations.latest_index >= from {
                let committed = self.core.configurations.clone();
                self.core.set_latest_configuration(committed.committed_index, committed.committed);
            }
        }
        let Some(from) = append_from else { return };
        let new = entries.split_off(from);
        self.append(new);
    }

    /// Appends entries continuing the log; a configuration among them is
    /// in effect at once.
    fn append(&mut self, entries: Vec<Log>) {
        let Some(last) = entries.last().map(|log| (log.index, log.term)) else { return };
        for log in entries.iter().filter(|log| log.kind == LogKind::Configuration) {
            if let Ok(configuration) = crate::codec::decode_configuration(log.data.clone()) {
                self.core.set_latest_configuration(log.index, configuration);
            }
        }
        self.core.log_ids.append(entries.iter().map(|log| (log.index, log.term)));
        (self.core.last_index, self.core.last_term) = last;
        self.actions.push(Action::Append(entries));
    }

    fn on_snapshot(&mut self, now: Instant, request: InstallSnapshotRequest) {
        let to = request.header.id.clone();
        let mut response =
            InstallSnapshotResponse { header: self.header(), term: self.core.current_term, success: false };
        if request.term >= self.core.current_term && !self.core.restoring {
            if request.term > self.core.current_term || self.core.role != RaftState::Follower {
                self.step_down(now, request.term);
            }
            self.follow(now, &request.header, 0);
            response.term = self.core.current_term;
            match judge_offer(self.core.follower_log(), request.last_log_index, request.last_log_term) {
                Offer::Stale => response.success = true,
                Offer::Held => {
                    self.commit_to(request.last_log_index);
                    response.success = true;
                }
                Offer::Install => {
                    self.core.restoring = true;
                    self.installing = Some((to, self.core.current_term));
                    let (index, term) = (request.last_log_index, request.last_log_term);
                    self.core.configurations.committed = request.configuration.clone();
                    self.core.configurations.committed_index = request.configuration_index;
                    return self.actions.push(Action::Install { index, term });
                }
            }
        }
        self.actions.push(Action::Reply { to, reply: Reply::Snapshot(response), after_writes: false });
    }

    /// The FSM holds a received snapshot's state: the log now starts after it.
    fn on_installed(&mut self, now: Instant, index: u64, term: u64) {
        self.core.restoring = false;
        let Some((to, term_asked)) = self.installing.take() else { return };
        let agrees = index <= self.core.last_index && self.core.log_ids.term_at(index) == Some(term);
        if agrees {
            self.core.log_ids.set_snapshot(index, term);
            self.core.log_ids.compact_through(index);
            self.actions.push(Action::Compact { through: index });
        } else {
            self.core.log_ids.reset((index, term));
            self.actions.push(Action::Truncate { from: 0 });
            (self.core.last_index, self.core.last_term) = (index, term);
        }
        (self.core.snapshot_index, self.core.snapshot_term) = (index, term);
        let committed = self.core.configurations.clone();
        if !agrees || committed.latest_index <= index {
            self.core.set_latest_configuration(committed.committed_index, committed.committed);
        }
        if index > self.core.commit_index {
            self.core.commit_to(index);
        }
        self.core.last_leader_contact = Some(now);
        let success = term_asked == self.core.current_term;
        let reply = InstallSnapshotResponse { header: self.header(), term: self.core.current_term, success };
        self.actions.push(Action::Reply { to, reply: Reply::Snapshot(reply), after_writes: true });
    }

    /// This node took a snapshot through `(index, term)`: the log lets go of
    /// what it covers.
    fn on_snapshotted(&mut self, index: u64, term: u64) {
        if index <= self.core.snapshot_index || index > self.core.last_index {
            return;
        }
        (self.core.snapshot_index, self.core.snapshot_term) = (index, term);
        self.core.log_ids.set_snapshot(index, term);
        self.core.log_ids.compact_through(index);
        self.actions.push(Action::Compact { through: index });
    }

    fn on_answer(&mut self, now: Instant, answer: Answer) {
        match answer {
            Answer::Vote { voter, response } => {
                self.on_tally(now, voter, response.term, response.granted, false)
            }
            Answer::PreVote { voter, response } => {
                self.on_tally(now, voter, response.term, response.granted, true);
            }
            Answer::Append { peer, prev_index, count, sent, response } => {
                self.on_append_answer(now, peer, prev_index, count, sent, response);
            }
            Answer::Snapshot { peer, index, sent, response } => {
                self.on_snapshot_answer(now, peer, index, sent, response);
            }
            Answer::Lost { peer } => self.on_lost(peer),
        }
    }
}
