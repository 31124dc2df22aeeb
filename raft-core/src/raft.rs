//! The node task: one task owns a node's Raft state and runs the loop of its
//! current role (`follower`, `candidate`, `leader`), selecting over incoming
//! RPCs, client requests, events from its helpers, and a timer.

mod candidate;
mod follower;
mod leader;
mod membership;
mod resync;
mod snapshot;

use crate::config::{Config, ReloadableConfig};
use crate::error::RaftError;
use crate::fsm::runner::{ApplyReply, FsmHandle};
use crate::log_cache::LogCache;
use crate::observer::Observation;
use crate::protocol::core::{Configurations, Core};
use crate::protocol::log_ids::LogIds;
use crate::state::{RaftState, Shared};
use crate::storage::Storage;
use crate::watch;
use crate::{
    Configuration, Fsm, LogKind, PreVoteResponse, RequestVoteResponse, Rpc, RpcHeader, RpcReceiver,
    ServerAddress, ServerId, StableStore, StoreError, Transport,
};
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio::time::sleep_until;
use tracing::Instrument;

pub(crate) use leader::LeaderState;
pub(crate) use snapshot::stream_snapshot;

pub(crate) use crate::stable::{KEY_CURRENT_TERM, KEY_LAST_VOTE_CAND, KEY_LAST_VOTE_TERM};

impl From<crate::storage::StorageReport> for Event {
    fn from(report: crate::storage::StorageReport) -> Self {
        match report {
            crate::storage::StorageReport::Durable { seq, last_index } => Event::Durable { seq, last_index },
            crate::storage::StorageReport::Failed { seq, error } => Event::StoreFailed { seq, error },
        }
    }
}

/// What the node's helpers (storage worker, replication, elections) report.
pub(crate) enum Event {
    /// Storage operations up to `seq` completed; the log is written through `last_index`.
    Durable { seq: u64, last_index: u64 },
    /// Storage operation `seq` failed.
    StoreFailed { seq: u64, error: Arc<StoreError> },
    /// A follower stores everything up to `match_index`.
    Progress { peer: ServerId, term: u64, match_index: u64 },
    /// The entries of a leader's request are durable here (no write has
    /// failed since, if `failures` is still the count): commit through
    /// `commit`, the leader's commit index as the request capped it.
    Stored { failures: u64, commit: u64 },
    /// A peer answered with a higher term.
    HigherTerm { term: u64 },
    /// A follower answered a heartbeat sent in leadership-check `round`.
    HeartbeatAck { peer: ServerId, term: u64, round: u64 },
    /// An answer to a pre-vote of election `round`.
    PreVote { round: u64, voter: ServerId, response: PreVoteResponse },
    /// An answer to a vote request of election `round`.
    Vote { round: u64, voter: ServerId, response: RequestVoteResponse },
    /// A snapshot finished (or failed).
    SnapshotDone { result: Result<crate::SnapshotMeta, RaftError>, reply: Option<snapshot::SnapshotReply> },
    /// A snapshot from the leader of `term` was received and opened (or not).
    SnapshotReceived {
        term: u64,
        outcome: Result<snapshot::Received, RaftError>,
        respond: snapshot::InstallReply,
    },
    /// The FSM was restored from a received snapshot (or not).
    SnapshotRestored {
        meta: crate::SnapshotMeta,
        result: Result<(), RaftError>,
        respond: snapshot::InstallReply,
    },
}

/// What a [`Raft`](crate::Raft) handle asks of its node.
pub(crate) enum Request<R> {
    Apply {
        kind: LogKind,
        data: Bytes,
        extensions: Bytes,
        reply: ApplyReply<R>,
    },
    VerifyLeader {
        reply: oneshot::Sender<Result<u64, RaftError>>,
    },
    Bootstrap {
        configuration: Configuration,
        reply: oneshot::Sender<Result<(), RaftError>>,
    },
    Reload {
        config: ReloadableConfig,
        reply: oneshot::Sender<Result<(), RaftError>>,
    },
    Snapshot {
        reply: snapshot::SnapshotReply,
    },
    ChangeConfiguration {
        change: crate::ConfigurationChange,
        prev_index: u64,
        timeout: std::time::Duration,
        reply: oneshot::Sender<Result<u64, RaftError>>,
    },
    TransferLeadership {
        target: Option<(ServerId, ServerAddress)>,
        reply: oneshot::Sender<Result<(), RaftError>>,
    },
    /// A user's restore: the data of its pieces, appended together.
    Restore {
        pieces: Vec<Bytes>,
        reply: ApplyReply<R>,
    },
}

/// One thing for a role loop to handle.
pub(crate) enum Input<R> {
    Rpc(Rpc),
    Request(Request<R>),
    Event(Event),
    Timer,
    SnapshotTimer,
    Shutdown,
}

/// What the node recovered from its stores on start.
pub(crate) struct Recovered {
    pub(crate) term: u64,
    pub(crate) voted_for: Option<ServerId>,
    pub(crate) last_index: u64,
    pub(crate) last_term: u64,
    pub(crate) commit_index: u64,
    pub(crate) configurations: Configurations,
    /// The snapshot the FSM was restored from (or the start of time).
    pub(crate) snapshot: crate::fsm::runner::AppliedPoint,
    /// The terms of the log the store holds.
    pub(crate) log_ids: LogIds,
}

/// Everything a node task owns.
pub(crate) struct Node<F: Fsm> {
    pub(crate) config: Config,
    pub(crate) id: ServerId,
    pub(crate) addr: ServerAddress,
    pub(crate) shared: Arc<Shared>,
    pub(crate) observers: broadcast::Sender<Observation>,
    pub(crate) stable: Arc<dyn StableStore>,
    pub(crate) log: Arc<LogCache>,
    pub(crate) storage: Storage,
    pub(crate) fsm: FsmHandle<F::Response>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) rpcs: RpcReceiver,
    pub(crate) requests: mpsc::Receiver<Request<F::Response>>,
    pub(crate) events: mpsc::Receiver<Event>,
    pub(crate) events_tx: mpsc::Sender<Event>,
    pub(crate) shutdown: watch::Receiver<bool>,

    /// The protocol state: term, vote, role, the log's shape, commit index
    /// and configurations.
    pub(crate) core: Core,
    pub(crate) snapshots: Arc<dyn crate::SnapshotStore>,
    pub(crate) snapshot_in_progress: bool,
    pub(crate) snapshot_deadline: Instant,
    pub(crate) snapshot_task: Option<crate::task::Owned>,
    /// The task receiving a snapshot from the leader, if one is.
    pub(crate) installing: Option<crate::task::Owned>,
    pub(crate) election_deadline: Instant,
    /// Numbers storage operations in submission order.
    pub(crate) next_seq: u64,
    /// Numbers election rounds, so late answers to an old round are ignored.
    pub(crate) election_round: u64,
    /// Set by TimeoutNow: campaign at once, skipping pre-vote.
    pub(crate) transfer_requested: bool,
    /// Draws election and snapshot jitter (seeded by `Config::random_seed`).
    pub(crate) rng: rand::rngs::StdRng,
    /// Rotates which input source the loop looks at first, so that none
    /// starves and the order is the same on every run.
    pub(crate) input_turn: usize,
    /// A failed write took committed entries from the log: tell the FSM the
    /// commit index again once the log holds them.
    pub(crate) refill_commit: bool,
    pub(crate) leader_state: Option<LeaderState<F::Response>>,
    pub(crate) metrics: crate::metrics::NodeMetrics,
}

impl<F: Fsm> Node<F> {
    /// Runs the node until shutdown, then stops every helper it started.
    pub(crate) async fn run(mut self) {
        self.publish_log();
        self.shared.commit_index.store(self.core.commit_index, Ordering::Release);
        // Each stretch of one role in one term runs in a span of its own
        // (`follower{term=3}`, `candidate{term=4}`, `leader{term=4}`) inside
        // the node's `raft{node=…}`, so every log line says who and when;
        // a leader's replication tasks inherit its span.
        let mut was_follower = false;
        loop {
            let term = self.core.current_term;
            match self.core.role {
                RaftState::Follower => {
                    let span = tracing::info_span!("follower", term);
                    self.run_follower(!was_follower).instrument(span).await;
                    was_follower = true;
                    continue;
                }
                RaftState::Candidate => {
                    let span = tracing::info_span!("candidate", term = term.saturating_add(1));
                    self.run_candidate().instrument(span).await;
                }
                RaftState::Leader => {
                    let span = tracing::info_span!("leader", term);
                    self.run_leader().instrument(span).await;
                }
                _ => break,
            }
            was_follower = false;
        }
        self.finish().await;
    }

    async fn finish(self) {
        let Node { storage, fsm, transport, shared, mut requests, snapshot_task, installing, .. } = self;
        if let Some(mut task) = snapshot_task {
            task.join().await;
        }
        if let Some(mut task) = installing {
            task.abort();
            task.join().await;
        }
        requests.close();
        while let Ok(request) = requests.try_recv() {
            fail_request(request, || RaftError::Shutdown);
        }
        transport.shutdown().await;
        storage.stop().await;
        fsm.stop().await;
        shared.set_state(RaftState::Shutdown);
    }

    pub(crate) fn header(&self) -> RpcHeader {
        RpcHeader::new(self.id.clone(), self.addr.clone())
    }

    pub(crate) fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(crate) fn publish_log(&self) {
        #[cfg(debug_assertions)]
        self.check_log_ids();
        self.shared.last_log_index.store(self.core.last_index, Ordering::Release);
        self.shared.last_log_term.store(self.core.last_term, Ordering::Release);
        self.shared.set_term(self.core.current_term);
        self.metrics.last_index.set(self.core.last_index as f64);
        self.metrics.term.set(self.core.current_term as f64);
    }

    /// Debug builds: the log's terms in memory end where the node says its
    /// log ends (an empty log ends at the snapshot), and agree with the
    /// entry cache on the newest entries. Every test run checks them so.
    #[cfg(debug_assertions)]
    fn check_log_ids(&self) {
        let ids = &self.core.log_ids;
        assert!(
            (ids.last_index(), ids.last_term()) == (self.core.last_index, self.core.last_term)
                || (ids.last_index() == 0 && self.core.last_index == self.core.snapshot_index),
            "log ids end at ({}, {}), the node's log at ({}, {})",
            ids.last_index(),
            ids.last_term(),
            self.core.last_index,
            self.core.last_term
        );
        for index in self.core.last_index.saturating_sub(16)..=self.core.last_index {
            if let Some(cached) = self.log.cached_term(index) {
                assert_eq!(
                    ids.term_at(index),
                    Some(cached),
                    "log ids and the entry cache disagree at {index}"
                );
            }
        }
    }

    pub(crate) fn set_role(&mut self, role: RaftState) {
        if self.core.role != role {
            tracing::info!(?role, "role change");
            self.core.role = role;
            self.shared.set_state(role);
            match role {
                RaftState::Follower => self.metrics.state_follower.increment(1),
                RaftState::Candidate => self.metrics.state_candidate.increment(1),
                RaftState::Leader => self.metrics.state_leader.increment(1),
                _ => {}
            }
            let _ = self.observers.send(Observation::StateChanged(role));
        }
    }

    pub(crate) fn set_leader(&mut self, leader: Option<(ServerId, ServerAddress)>) {
        if self.core.leader != leader {
            self.core.leader = leader.clone();
            self.shared.set_leader(leader.clone());
            let _ = self.observers.send(Observation::LeaderChanged { leader, term: self.core.current_term });
        }
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_deadline = Instant::now()
            + crate::protocol::election::randomized(&mut self.rng, self.config.heartbeat_timeout);
    }

    /// Whether a leader other than `candidate` was heard from recently enough
    /// that an election would only disrupt it ([`Core::leader_is_alive`], now).
    pub(crate) fn leader_is_alive(&self, candidate: &ServerId) -> bool {
        self.core.leader_is_alive(candidate, Instant::now().into_std(), self.config.heartbeat_timeout)
    }

    /// Persists `term` and, if given, a vote in it, before anything that
    /// depends on them is sent. A failed write shuts the node down: it can no
    /// longer promise what it has told others.
    pub(crate) async fn persist_term(&mut self, term: u64, vote: Option<ServerId>) -> bool {
        let stable = self.stable.clone();
        let term_changed = term != self.core.current_term;
        let vote_bytes = vote.as_ref().map(|id| id.as_str().as_bytes().to_vec());
        let inline = stable.never_blocks();
        let written = crate::blocking::run(inline, move || {
            if term_changed {
                stable.set_u64(KEY_CURRENT_TERM, term)?;
            }
            if let Some(candidate) = vote_bytes {
                stable.set(KEY_LAST_VOTE_CAND, &candidate)?;
                stable.set_u64(KEY_LAST_VOTE_TERM, term)?;
            }
            Ok::<(), StoreError>(())
        })
        .await;
        match written {
            Ok(Ok(())) => {
                if term_changed {
                    self.core.voted_for = None;
                }
                self.core.current_term = term;
                if vote.is_some() {
                    self.core.voted_for = vote;
                }
                self.shared.set_term(term);
                self.metrics.term.set(term as f64);
                true
            }
            Ok(Err(error)) => {
                tracing::error!(%error, term, "persisting term and vote failed; shutting down");
                self.set_role(RaftState::Shutdown);
                false
            }
            Err(_) => {
                self.set_role(RaftState::Shutdown);
                false
            }
        }
    }

    /// Adopts `term` if it is newer and becomes a follower. A term above
    /// [`TERM_MAX`](crate::TERM_MAX) is refused: nothing changes and the
    /// answer is `false`.
    pub(crate) async fn step_down(&mut self, term: u64) -> bool {
        if term > crate::TERM_MAX {
            tracing::warn!(term, "refusing a term that could not be incremented");
            return false;
        }
        if term > self.core.current_term && !self.persist_term(term, None).await {
            return false;
        }
        if self.core.role != RaftState::Follower {
            self.set_role(RaftState::Follower);
            self.reset_election_timer();
        }
        true
    }

    /// Waits for the next thing to handle, or the timer at `deadline`.
    ///
    /// Shutdown comes first; then events, RPCs and requests, starting each
    /// time with the next of the three, so that none starves the others and
    /// the order depends on nothing but the inputs (tokio's `select!` picks
    /// its first branch at random, which a replayed simulation cannot
    /// follow); then the two timers.
    pub(crate) async fn next_input(&mut self, deadline: Instant) -> Input<F::Response> {
        if let Some(report) = self.storage.take_event() {
            return Input::Event(report.into());
        }
        self.input_turn = self.input_turn.wrapping_add(1);
        let turn = self.input_turn;
        let Node { shutdown, events, rpcs, requests, snapshot_deadline, .. } = self;
        let shutdown = shutdown.changed();
        let timer = sleep_until(deadline);
        let snapshot_timer = sleep_until(*snapshot_deadline);
        tokio::pin!(shutdown, timer, snapshot_timer);
        std::future::poll_fn(|cx| {
            if shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Input::Shutdown);
            }
            // A due timer goes first: a stream of inputs (a busy leader's
            // acknowledgements, a peer flooding requests) must not keep an
            // election, a lease check or a snapshot from happening.
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Input::Timer);
            }
            if snapshot_timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Input::SnapshotTimer);
            }
            for source in 0..3 {
                let ready = match (turn + source) % 3 {
                    0 => events.poll_recv(cx).map(|event| event.map(Input::Event)),
                    1 => rpcs.poll_recv(cx).map(|rpc| Some(rpc.map_or(Input::Shutdown, Input::Rpc))),
                    _ => requests
                        .poll_recv(cx)
                        .map(|request| Some(request.map_or(Input::Shutdown, Input::Request))),
                };
                // A closed event channel is not an input (the node holds a sender).
                if let Poll::Ready(Some(input)) = ready {
                    return Poll::Ready(input);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Handles any input but the timer, whatever the role.
    pub(crate) async fn handle(&mut self, input: Input<F::Response>) {
        match input {
            Input::Rpc(rpc) => self.handle_rpc(rpc).await,
            Input::Request(request) => self.handle_request(request).await,
            Input::Event(event) => self.handle_event(event).await,
            Input::Shutdown => self.set_role(RaftState::Shutdown),
            Input::SnapshotTimer => self.snapshot_timer_fired(),
            Input::Timer => {}
        }
    }

    async fn handle_rpc(&mut self, rpc: Rpc) {
        let (kind, from, term) = rpc_summary(&rpc);
        let span = tracing::debug_span!("rpc", kind, from = %from, term);
        self.dispatch_rpc(rpc).instrument(span).await
    }

    async fn dispatch_rpc(&mut self, rpc: Rpc) {
        match rpc {
            Rpc::AppendEntries { request, respond } => {
                let started = Instant::now();
                let (response, pending) = self.on_append_entries(request).await;
                self.metrics.rpc_append_entries.record(crate::metrics::seconds(started.elapsed()));
                match pending {
                    // Answer once the entries are durable, while this task
                    // goes on with the next request: consecutive appends
                    // then share one write (follower group commit).
                    Some(follower::PendingWrite { seq, failures, commit }) => {
                        let (mut progress, events) = (self.storage.progress(), self.events_tx.clone());
                        tokio::spawn(tracing::Instrument::in_current_span(async move {
                            let mut response = response;
                            let stored = {
                                let reached = progress
                                    .wait_for(|p| p.completed_seq >= seq || p.failures != failures)
                                    .await;
                                matches!(reached, Ok(p) if p.failures == failures)
                            };
                            if !stored {
                                response.success = false;
                                response.no_retry_backoff = true;
                            }
                            respond.respond(Ok(response));
                            if stored {
                                let _ = events.send(Event::Stored { failures, commit }).await;
                            }
                        }));
                    }
                    None => respond.respond(Ok(response)),
                }
            }
            Rpc::RequestVote { request, respond } => {
                let started = Instant::now();
                let response = self.on_request_vote(request).await;
                self.metrics.rpc_request_vote.record(crate::metrics::seconds(started.elapsed()));
                respond.respond(Ok(response));
            }
            Rpc::PreVote { request, respond } => respond.respond(Ok(self.on_pre_vote(&request))),
            Rpc::TimeoutNow { request, respond } => {
                let response = self.on_timeout_now(request).await;
                respond.respond(Ok(response));
            }
            Rpc::InstallSnapshot { request, data, respond } => {
                self.on_install_snapshot(request, data, respond).await;
            }
        }
    }

    async fn handle_request(&mut self, request: Request<F::Response>) {
        if self.core.role == RaftState::Leader {
            return self.leader_request(request).await;
        }
        match request {
            Request::Bootstrap { configuration, reply } => {
                let result = self.bootstrap(configuration).await;
                let _ = reply.send(result);
            }
            Request::Reload { config, reply } => {
                let _ = reply.send(self.reload(&config));
            }
            Request::Snapshot { reply } => self.start_snapshot(Some(reply)),
            other => {
                let leader = self.core.leader.clone();
                fail_request(other, || RaftError::NotLeader { leader: leader.clone() });
            }
        }
    }

    async fn handle_event(&mut self, event: Event) {
        let event = match event {
            Event::SnapshotDone { result, reply } => return self.snapshot_done(result, reply).await,
            Event::SnapshotReceived { term, outcome, respond } => {
                return self.snapshot_received(term, outcome, respond).await;
            }
            Event::SnapshotRestored { meta, result, respond } => {
                return self.snapshot_restored(meta, result, respond).await;
            }
            Event::Stored { failures, commit } => {
                if self.storage.progress().borrow().failures == failures && commit > self.core.commit_index {
                    self.commit_to(commit, Vec::new()).await;
                    self.refill_commit_if_stored().await;
                }
                return;
            }
            other => other,
        };
        if self.core.role == RaftState::Leader {
            return self.leader_event(event).await;
        }
        if let Event::StoreFailed { seq, error } = event {
            tracing::error!(%error, seq, "log write failed while not leader");
            self.resync_log().await;
        }
    }

    /// Applies reloadable settings, if the result is a valid config.
    pub(crate) fn reload(&mut self, reload: &ReloadableConfig) -> Result<(), RaftError> {
        let config = reload.apply_to(&self.config);
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Records that everything up to `index` is committed and tells the FSM.
    pub(crate) async fn commit_to(&mut self, index: u64, futures: Vec<(u64, ApplyReply<F::Response>)>) {
        self.core.commit_to(index);
        self.shared.commit_index.store(index, Ordering::Release);
        self.metrics.commit_index.set(index as f64);
        self.check_removed();
        self.fsm.commit(index, futures).await;
    }

    /// Makes `configuration`, carried by the entry at `index`, the latest.
    pub(crate) fn set_latest_configuration(&mut self, index: u64, configuration: Configuration) {
        self.shared.set_configuration(index, configuration.clone());
        let observation = Observation::ConfigurationChanged { index, configuration: configuration.clone() };
        let _ = self.observers.send(observation);
        self.core.set_latest_configuration(index, configuration);
    }

    async fn bootstrap(&mut self, configuration: Configuration) -> Result<(), RaftError> {
        configuration.validate()?;
        if !configuration.is_voter(&self.id) {
            return Err(RaftError::NotVoter(self.id.clone()));
        }
        if self.core.current_term > 0 || self.core.last_index > 0 || self.core.snapshot_index > 0 {
            return Err(RaftError::CantBootstrap);
        }
        if !self.persist_term(1, None).await {
            return Err(RaftError::Shutdown);
        }
        let entry = crate::Log {
            index: 1,
            term: 1,
            kind: LogKind::Configuration,
            data: crate::codec::configuration_to_bytes(&configuration),
            extensions: Bytes::new(),
        };
        self.write_entries(vec![entry], 0).await?;
        self.set_latest_configuration(1, configuration);
        Ok(())
    }

    /// Appends entries continuing the log and waits until they are durable.
    pub(crate) async fn write_entries(
        &mut self,
        logs: Vec<crate::Log>,
        commit_index: u64,
    ) -> Result<(), RaftError> {
        let first = logs.first().map(|l| l.index);
        let written = self.submit_entries(logs, commit_index).await?;
        match written.await.unwrap_or(Err(Arc::new(StoreError::Closed))) {
            Ok(()) => Ok(()),
            Err(error) => {
                if let Some(first) = first {
                    self.forget_from(first).await;
                }
                Err(RaftError::Store(StoreError::Backend(Box::new(ArcError(error)))))
            }
        }
    }

    /// Appends entries continuing the log: they are part of the node's log
    /// (and readable from the cache) at once, and the returned receiver says
    /// when they are durable. Several queued submissions reach the store as
    /// one group-committed write.
    pub(crate) async fn submit_entries(
        &mut self,
        logs: Vec<crate::Log>,
        commit_index: u64,
    ) -> Result<oneshot::Receiver<Result<(), Arc<StoreError>>>, RaftError> {
        let (done, written) = oneshot::channel();
        let Some(last) = logs.last().map(|l| (l.index, l.term)) else {
            let _ = done.send(Ok(()));
            return Ok(written);
        };
        let seq = self.seq();
        self.log.append(&logs, seq);
        let ids: Vec<(u64, u64)> = logs.iter().map(|log| (log.index, log.term)).collect();
        let op =
            crate::storage::StorageOp::Append { seq, logs, commit_index, done: Some(done), clear: false };
        self.storage.submit(op).await?;
        self.core.log_ids.append(ids);
        (self.core.last_index, self.core.last_term) = last;
        self.publish_log();
        Ok(written)
    }
}

/// A shared store error, wrapped so it can be a `source` by value.
#[derive(Debug)]
struct ArcError(Arc<StoreError>);

impl std::fmt::Display for ArcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArcError {}

/// Answers a request that cannot be served with `error()`.
pub(crate) fn fail_request<R>(request: Request<R>, error: impl Fn() -> RaftError) {
    match request {
        Request::Apply { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Request::VerifyLeader { reply } => {
            let _ = reply.send(Err(error()));
        }
        Request::Bootstrap { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Request::Reload { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Request::Snapshot { reply } => {
            let _ = reply.send(Err(error()));
        }
        Request::Restore { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Request::ChangeConfiguration { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Request::TransferLeadership { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
    }
}

/// What a span says about an RPC: its kind, its sender and its term.
fn rpc_summary(rpc: &Rpc) -> (&'static str, ServerId, u64) {
    match rpc {
        Rpc::AppendEntries { request, .. } => ("append_entries", request.header.id.clone(), request.term),
        Rpc::RequestVote { request, .. } => ("request_vote", request.header.id.clone(), request.term),
        Rpc::PreVote { request, .. } => ("pre_vote", request.header.id.clone(), request.term),
        Rpc::TimeoutNow { request, .. } => ("timeout_now", request.header.id.clone(), request.term),
        Rpc::InstallSnapshot { request, .. } => ("install_snapshot", request.header.id.clone(), request.term),
    }
}
