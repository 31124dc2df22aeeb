//! The executor of the driver tests: drivers, a simulated network (loss,
//! delay, partitions), logs that become durable a millisecond after they are
//! written, FSMs, snapshots, crashes and restarts from what is durable, on a
//! virtual clock. It performs each action as the node does and feeds the
//! outcomes back as inputs, and checks the Raft invariants as it goes.

use super::super::*;
use crate::protocol::core::{Configurations, Start};
use crate::protocol::log_ids::LogIds;
use crate::{Configuration, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;

pub(super) const MS: Duration = Duration::from_millis(1);

/// How long a sender waits before it takes a request as lost.
const LOST_AFTER: Duration = Duration::from_millis(20);

/// One node's stores and FSM, and its driver.
pub(super) struct Node {
    pub(super) driver: Driver,
    pub(super) up: bool,
    /// The durable term and vote.
    hard: (u64, Option<ServerId>),
    pub(super) log: BTreeMap<u64, Log>,
    /// Commands applied, in order, and the index applied through.
    pub(super) fsm: Vec<Bytes>,
    applied: u64,
    /// The newest snapshot: its point and the FSM state in it.
    snapshot: Option<(u64, u64, Vec<Bytes>)>,
    /// A snapshot received from a leader, waiting for `Action::Install`,
    /// and the request it came with.
    incoming: Option<(Vec<Bytes>, usize, Sent)>,
    pub(super) installs: usize,
    /// Log writes become durable at the end of the millisecond they were
    /// made in: the last index then, and the answers that wait for them.
    unsynced: Option<u64>,
    held: Vec<Envelope>,
    /// The role as the driver announced it (`Action::Role`).
    role: RaftState,
    /// The request being handled: who sent it, and what they know of it.
    answering: Option<(usize, Sent)>,
}

/// What the sender of a request knows of it: (prev index, entry count,
/// when it left).
type Sent = (u64, u64, Instant);

/// Something in flight.
enum Envelope {
    Request {
        from: usize,
        to: usize,
        sent: Sent,
        message: Message,
        data: Option<Vec<Bytes>>,
    },
    Reply {
        from: usize,
        to: usize,
        sent: Sent,
        reply: Reply,
    },
    /// The sender's deadline for a request to `peer` passed without an answer.
    Lost {
        to: usize,
        peer: usize,
    },
}

/// The faults in force.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Faults {
    /// Chance that a message is lost.
    pub(super) drop: f64,
    /// The most a delivery is delayed, in milliseconds.
    pub(super) delay_ms: u64,
}

pub(super) struct Cluster {
    pub(super) nodes: Vec<Node>,
    /// In flight: (delivery time, order sent, envelope).
    net: Vec<(Instant, u64, Envelope)>,
    sent: u64,
    /// Nodes cut off from every other.
    pub(super) isolated: BTreeSet<usize>,
    pub(super) faults: Faults,
    pub(super) now: Instant,
    start: Instant,
    rng: StdRng,
    configuration: Configuration,
    /// Every (term, leader) seen, to check election safety.
    leaders: BTreeMap<u64, usize>,
    /// What some FSM applied at each index: state machine safety.
    applied: BTreeMap<u64, (u64, Bytes)>,
}

pub(super) fn id(n: usize) -> ServerId {
    ServerId::from(format!("n{n}"))
}

fn index_of(id: &ServerId) -> usize {
    id.as_str()[1..].parse().expect("node id")
}

fn settings(n: usize) -> Settings {
    Settings {
        addr: ServerAddress::from(format!("addr-{n}")),
        election_timeout: 150 * MS,
        heartbeat_interval: 15 * MS,
        leader_lease: 150 * MS,
        max_append_entries: 4,
        prevote: true,
    }
}

impl Cluster {
    /// `n` nodes as bootstrap leaves them: the configuration at index 1, term 1.
    pub(super) fn new(n: usize, seed: u64) -> Self {
        let configuration = Configuration::new(
            (0..n).map(|i| Server::voter(id(i), ServerAddress::from(format!("addr-{i}")))).collect(),
        );
        let first = Log {
            index: 1,
            term: 1,
            kind: LogKind::Configuration,
            data: crate::codec::configuration_to_bytes(&configuration),
            extensions: Bytes::new(),
        };
        let now = Instant::now();
        let mut cluster = Self {
            nodes: Vec::new(),
            net: Vec::new(),
            sent: 0,
            isolated: BTreeSet::new(),
            faults: Faults::default(),
            now,
            start: now,
            rng: StdRng::seed_from_u64(seed),
            configuration,
            leaders: BTreeMap::new(),
            applied: BTreeMap::new(),
        };
        for i in 0..n {
            let driver = cluster.recover(i, (1, None), &BTreeMap::from([(1, first.clone())]), None, seed);
            cluster.nodes.push(Node {
                driver,
                up: true,
                hard: (1, None),
                log: BTreeMap::from([(1, first.clone())]),
                fsm: Vec::new(),
                applied: 0,
                snapshot: None,
                incoming: None,
                installs: 0,
                unsynced: None,
                held: Vec::new(),
                role: RaftState::Follower,
                answering: None,
            });
        }
        cluster
    }

    /// A driver for node `n` from what its stores hold (what recovery does).
    fn recover(
        &self,
        n: usize,
        hard: (u64, Option<ServerId>),
        log: &BTreeMap<u64, Log>,
        snapshot: Option<(u64, u64)>,
        seed: u64,
    ) -> Driver {
        let (snapshot_index, snapshot_term) = snapshot.unwrap_or((0, 0));
        let mut log_ids = LogIds::empty((snapshot_index, snapshot_term));
        log_ids.append(log.values().filter(|l| l.index > snapshot_index).map(|l| (l.index, l.term)));
        let (last_index, last_term) =
            log.values().next_back().map_or((snapshot_index, snapshot_term), |l| (l.index, l.term));
        let core = Core::start(Start {
            id: id(n),
            term: hard.0,
            voted_for: hard.1,
            last_index,
            last_term,
            snapshot_index,
            snapshot_term,
            commit_index: snapshot_index,
            configurations: Configurations {
                latest: self.configuration.clone(),
                latest_index: 1,
                ..Default::default()
            },
            log_ids,
        });
        Driver::new(
            core,
            settings(n),
            seed ^ (n as u64 + 1) ^ self.now.duration_since(self.start).as_millis() as u64,
            self.now,
        )
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.nodes[a].up && self.nodes[b].up && !self.isolated.contains(&a) && !self.isolated.contains(&b)
    }

    /// Steps node `n` and performs what it asks.
    pub(super) fn step(&mut self, n: usize, input: Input) {
        let actions = self.nodes[n].driver.step(self.now, input);
        for action in actions {
            self.perform(n, action);
        }
        let core = &self.nodes[n].driver.core;
        assert_eq!(self.nodes[n].role, core.role, "n{n}'s role changed without an Action::Role");
        assert!(self.nodes[n].hard.0 == core.current_term, "n{n} acts in a term it has not persisted");
        if core.role == RaftState::Leader {
            let previous = self.leaders.insert(core.current_term, n);
            assert!(
                previous.is_none_or(|p| p == n),
                "two leaders in term {}: {previous:?} and {n}",
                core.current_term
            );
        }
    }

    fn perform(&mut self, n: usize, action: Action) {
        let node = &mut self.nodes[n];
        match action {
            Action::Persist { term, voted_for } => {
                assert!(term >= node.hard.0, "the term went back");
                node.hard = (term, voted_for);
            }
            Action::Truncate { from } => {
                node.log.retain(|&index, _| from != 0 && index < from);
                node.unsynced = Some(node.driver.core.last_index);
            }
            Action::Append(entries) => {
                for entry in entries {
                    node.unsynced = Some(entry.index);
                    node.log.insert(entry.index, entry);
                }
            }
            Action::Compact { through } => node.log.retain(|&index, _| index > through),
            Action::Apply { through } => {
                for index in node.applied + 1..=through {
                    let entry = node
                        .log
                        .get(&index)
                        .unwrap_or_else(|| panic!("n{n} applies {index}, not in its log"));
                    let seen = self.applied.entry(index).or_insert_with(|| (entry.term, entry.data.clone()));
                    assert_eq!(
                        *seen,
                        (entry.term, entry.data.clone()),
                        "state machine safety at {index} (n{n})"
                    );
                    if entry.kind == LogKind::Command {
                        node.fsm.push(entry.data.clone());
                    }
                }
                node.applied = node.applied.max(through);
            }
            Action::Install { index, term } => {
                let (state, from, sent) = node.incoming.take().expect("the offered snapshot");
                node.fsm = state.clone();
                node.applied = index;
                node.snapshot = Some((index, term, state));
                node.installs += 1;
                let answering = node.answering.replace((from, sent));
                self.step(n, Input::Installed { index, term });
                self.nodes[n].answering = answering;
            }
            Action::Send { to, request } => self.send(n, index_of(&to), request),
            Action::Reply { to, reply, after_writes } => {
                let to = index_of(&to);
                let Some((asker, sent)) = node.answering.filter(|(asker, _)| *asker == to) else {
                    panic!("n{n} answers n{to}, which asked nothing");
                };
                let envelope = Envelope::Reply { from: n, to: asker, sent, reply };
                if after_writes && node.unsynced.is_some() {
                    node.held.push(envelope);
                } else {
                    self.post(envelope);
                }
            }
            Action::Role(role) => node.role = role,
        }
    }

    /// Builds the RPC for `request` from `n`'s log and snapshot, and sends it.
    fn send(&mut self, n: usize, to: usize, request: Request) {
        let node = &self.nodes[n];
        let header = RpcHeader::new(id(n), ServerAddress::from(format!("addr-{n}")));
        let (message, data, sent) = match request {
            Request::Append { term, prev_index, prev_term, first, last, commit } => {
                let entries: Vec<Log> = (first..=last).map(|i| node.log[&i].clone()).collect();
                let count = entries.len() as u64;
                let request = AppendEntriesRequest {
                    header,
                    term,
                    prev_log_index: prev_index,
                    prev_log_term: prev_term,
                    entries,
                    leader_commit: commit,
                };
                (Message::Append(request), None, (prev_index, count, self.now))
            }
            Request::Vote(request) => (Message::Vote(request), None, (0, 0, self.now)),
            Request::PreVote(request) => (Message::PreVote(request), None, (0, 0, self.now)),
            Request::Snapshot { term } => {
                let (index, snapshot_term, state) = node.snapshot.clone().expect("a snapshot to send");
                let request = InstallSnapshotRequest {
                    header,
                    snapshot_version: crate::SNAPSHOT_VERSION,
                    term,
                    last_log_index: index,
                    last_log_term: snapshot_term,
                    configuration: self.configuration.clone(),
                    configuration_index: 1,
                    size: 0,
                };
                (Message::Snapshot(request), Some(state), (index, 0, self.now))
            }
        };
        self.post(Envelope::Request { from: n, to, sent, message, data });
    }

    /// Puts `envelope` on the network, late or lost as the faults say (a
    /// lost message becomes its sender's timeout).
    fn post(&mut self, envelope: Envelope) {
        let (from, to) = match &envelope {
            Envelope::Request { from, to, .. } => (*from, *to),
            Envelope::Reply { from, to, .. } => (*to, *from),
            Envelope::Lost { .. } => unreachable!("not posted"),
        };
        let (sender, receiver) = match &envelope {
            Envelope::Reply { from, to, .. } => (*from, *to),
            _ => (from, to),
        };
        self.sent += 1;
        if !self.connected(sender, receiver) || self.rng.random_bool(self.faults.drop) {
            // `from` asked `to`: it gives up on the request after a while.
            let lost = Envelope::Lost { to: from, peer: to };
            return self.net.push((self.now + LOST_AFTER, self.sent, lost));
        }
        let delay = MS * self.rng.random_range(0..=self.faults.delay_ms) as u32;
        self.net.push((self.now + delay, self.sent, envelope));
    }

    /// Runs for `duration` of virtual time, a millisecond at a time:
    /// delivers what is due, makes writes durable, ticks whoever is due.
    pub(super) fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        while self.now < until {
            let mut delivered = 0;
            loop {
                let due = self
                    .net
                    .iter()
                    .enumerate()
                    .filter(|(_, (at, _, _))| *at <= self.now)
                    .min_by_key(|(_, (at, order, _))| (*at, *order))
                    .map(|(i, _)| i);
                let Some(i) = due else { break };
                let (_, _, envelope) = self.net.swap_remove(i);
                delivered += 1;
                assert!(delivered < 10_000, "a livelock: ten thousand messages within one millisecond");
                self.deliver(envelope);
            }
            self.sync();
            self.now += MS;
            for n in 0..self.nodes.len() {
                if self.nodes[n].up && self.nodes[n].driver.next_deadline() <= self.now {
                    self.step(n, Input::Tick);
                }
            }
        }
    }

    /// The millisecond's log writes are durable: answers that waited for
    /// them go out, and each driver hears how far its log is durable.
    fn sync(&mut self) {
        for n in 0..self.nodes.len() {
            let held = std::mem::take(&mut self.nodes[n].held);
            for envelope in held {
                self.post(envelope);
            }
            if let Some(last_index) = self.nodes[n].unsynced.take()
                && self.nodes[n].up
            {
                self.step(n, Input::Durable { last_index });
            }
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        match envelope {
            Envelope::Request { from, to, sent, message, data } => {
                if !self.connected(from, to) {
                    let lost = Envelope::Lost { to: from, peer: to };
                    return self.net.push((self.now + LOST_AFTER, self.sent, lost));
                }
                if let Some(data) = data {
                    self.nodes[to].incoming = Some((data, from, sent));
                }
                self.nodes[to].answering = Some((from, sent));
                self.step(to, Input::Message(message));
                self.nodes[to].answering = None;
            }
            Envelope::Reply { from, to, sent: (prev_index, count, sent), reply } => {
                if !self.connected(from, to) {
                    return;
                }
                let peer = id(from);
                let answer = match reply {
                    Reply::Append(response) => Answer::Append { peer, prev_index, count, sent, response },
                    Reply::Vote(response) => Answer::Vote { voter: peer, response },
                    Reply::PreVote(response) => Answer::PreVote { voter: peer, response },
                    Reply::Snapshot(response) => Answer::Snapshot { peer, index: prev_index, sent, response },
                };
                self.step(to, Input::Answer(answer));
            }
            Envelope::Lost { to, peer } => {
                if self.nodes[to].up {
                    self.step(to, Input::Answer(Answer::Lost { peer: id(peer) }));
                }
            }
        }
    }

    /// Node `n` stops where it stands: what is not durable is gone.
    pub(super) fn crash(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        node.up = false;
        node.held.clear();
        node.incoming = None;
        node.unsynced = None;
    }

    /// Node `n` starts again from its stores: its FSM from its snapshot.
    pub(super) fn restart(&mut self, n: usize, seed: u64) {
        let (hard, log) = (self.nodes[n].hard.clone(), self.nodes[n].log.clone());
        let snapshot = self.nodes[n].snapshot.clone();
        let driver = self.recover(n, hard, &log, snapshot.as_ref().map(|(i, t, _)| (*i, *t)), seed);
        let node = &mut self.nodes[n];
        node.driver = driver;
        node.up = true;
        node.role = RaftState::Follower;
        (node.fsm, node.applied) = snapshot.map_or((Vec::new(), 0), |(index, _, state)| (state, index));
    }

    pub(super) fn leader(&self) -> Option<usize> {
        let leaders = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].up && self.nodes[n].driver.core.role == RaftState::Leader);
        // Two leaders may coexist across a partition, in different terms.
        leaders.max_by_key(|&n| self.nodes[n].driver.core.current_term)
    }

    /// Runs until `done` holds, for at most `within`.
    pub(super) fn run_until(&mut self, what: &str, within: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = self.now + within;
        while !done(self) {
            assert!(self.now < deadline, "{what}: not within {within:?}\n{}", self.describe());
            self.run_for(MS);
        }
    }

    /// Each node's state, a line each.
    fn describe(&self) -> String {
        let line = |(n, node): (usize, &Node)| {
            let core = &node.driver.core;
            format!(
                "n{n}: up {}, {:?} term {}, log {}..={} (last {}/{}), snapshot {}/{}, commit {}, applied {}, {} commands, leader {:?}",
                node.up,
                core.role,
                core.current_term,
                node.log.keys().next().copied().unwrap_or(0),
                node.log.keys().next_back().copied().unwrap_or(0),
                core.last_index,
                core.last_term,
                core.snapshot_index,
                core.snapshot_term,
                core.commit_index,
                node.applied,
                node.fsm.len(),
                core.leader.as_ref().map(|(id, _)| id.as_str()),
            )
        };
        self.nodes.iter().enumerate().map(line).collect::<Vec<_>>().join("\n")
    }

    pub(super) fn propose(&mut self, leader: usize, command: &str) {
        self.step(leader, Input::Propose(Bytes::from(command.to_string())));
    }

    /// Snapshots `n` at its applied index (if past its last one): the point.
    pub(super) fn take_snapshot(&mut self, n: usize) -> Option<(u64, u64)> {
        let node = &mut self.nodes[n];
        let index = node.applied;
        if index <= node.snapshot.as_ref().map_or(0, |s| s.0) {
            return None;
        }
        let term = node.log.get(&index).map(|l| l.term)?;
        node.snapshot = Some((index, term, node.fsm.clone()));
        self.step(n, Input::Snapshotted { index, term });
        Some((index, term))
    }

    /// Every FSM applied the same commands, in the same order, as far as each got.
    pub(super) fn check_state_machine_safety(&self) {
        let longest = self.nodes.iter().map(|node| &node.fsm).max_by_key(|fsm| fsm.len()).expect("nodes");
        for (n, node) in self.nodes.iter().enumerate() {
            assert_eq!(node.fsm[..], longest[..node.fsm.len()], "n{n} applied other commands");
        }
    }

    /// Every entry two logs both hold at or below both commit indexes is the
    /// same entry, and logs that agree at an index agree before it.
    pub(super) fn check_log_matching(&self) {
        for a in &self.nodes {
            for b in &self.nodes {
                let mut agreed = false;
                for (index, entry) in a.log.iter().rev() {
                    let Some(other) = b.log.get(index) else { continue };
                    let same = (entry.term, &entry.data) == (other.term, &other.data);
                    assert!(same || !agreed, "logs agree after {index} but differ at it");
                    agreed |= same;
                }
            }
        }
    }
}
