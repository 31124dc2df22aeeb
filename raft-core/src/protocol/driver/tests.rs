//! Three drivers, a simulated network, in-memory logs and FSMs, a virtual
//! clock, and no runtime: an election, replication, a leader change behind a
//! partition, and a snapshot that brings the old leader back, entirely
//! through the drivers' inputs and actions. The harness below is the
//! executor: it performs each action the way the node does (persist, write
//! the log, send, answer, apply, install) and feeds the outcomes back.

use super::*;
use crate::protocol::core::{Configurations, Start};
use crate::protocol::log_ids::LogIds;
use crate::{Configuration, Server};
use std::collections::{BTreeSet, VecDeque};

const MS: Duration = Duration::from_millis(1);

/// One node's stores and FSM, and its driver.
struct Node {
    driver: Driver,
    /// The durable term and vote.
    hard: (u64, Option<ServerId>),
    log: BTreeMap<u64, Log>,
    /// Commands applied, in order, and the index applied through.
    fsm: Vec<Bytes>,
    applied: u64,
    /// The newest snapshot: its point and the FSM state in it.
    snapshot: Option<(u64, u64, Vec<Bytes>)>,
    /// A snapshot received from a leader, waiting for `Action::Install`.
    incoming: Option<Vec<Bytes>>,
    installs: usize,
    /// Log writes become durable at the end of the millisecond they were
    /// made in (as a storage worker's would, later): the last index then,
    /// and the answers that wait for them.
    unsynced: Option<u64>,
    held: Vec<Envelope>,
    /// The role as the driver announced it (`Action::Role`).
    role: RaftState,
}

/// A request in flight, with what its sender knows of it.
enum Envelope {
    Request { from: usize, to: usize, message: Message, data: Option<Vec<Bytes>> },
    Reply { from: usize, to: usize, sent: Instant, summary: (u64, u64), reply: Reply },
}

/// What the sender of a request remembers of it: (prev index, entry
/// count, when it left).
type Sent = (u64, u64, Instant);

struct Cluster {
    nodes: Vec<Node>,
    net: VecDeque<Envelope>,
    /// Nodes cut off from every other.
    isolated: BTreeSet<usize>,
    now: Instant,
    /// Requests a node sent and has not had answered: (from, to) → (prev, count, sent).
    outstanding: BTreeMap<(usize, usize), VecDeque<Sent>>,
    /// Every (term, leader) seen, to check election safety.
    leaders: BTreeMap<u64, usize>,
}

fn id(n: usize) -> ServerId {
    ServerId::from(format!("n{n}"))
}

fn index_of(id: &ServerId) -> usize {
    id.as_str()[1..].parse().expect("node id")
}

impl Cluster {
    fn new(n: usize) -> Self {
        let configuration = Configuration::new(
            (0..n).map(|i| Server::voter(id(i), ServerAddress::from(format!("addr-{i}")))).collect(),
        );
        let now = Instant::now();
        // Each node as bootstrap leaves it: the configuration at index 1, term 1.
        let first = Log {
            index: 1,
            term: 1,
            kind: LogKind::Configuration,
            data: crate::codec::configuration_to_bytes(&configuration),
            extensions: Bytes::new(),
        };
        let nodes = (0..n)
            .map(|i| {
                let mut log_ids = LogIds::empty((0, 0));
                log_ids.append([(1, 1)]);
                let core = Core::start(Start {
                    id: id(i),
                    term: 1,
                    voted_for: None,
                    last_index: 1,
                    last_term: 1,
                    snapshot_index: 0,
                    snapshot_term: 0,
                    commit_index: 0,
                    configurations: Configurations {
                        latest: configuration.clone(),
                        latest_index: 1,
                        ..Default::default()
                    },
                    log_ids,
                });
                let settings = Settings {
                    addr: ServerAddress::from(format!("addr-{i}")),
                    election_timeout: 150 * MS,
                    heartbeat_interval: 15 * MS,
                    leader_lease: 150 * MS,
                    max_append_entries: 4,
                    prevote: true,
                };
                Node {
                    driver: Driver::new(core, settings, i as u64 + 7, now),
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
                }
            })
            .collect();
        Self {
            nodes,
            net: VecDeque::new(),
            isolated: BTreeSet::new(),
            now,
            outstanding: BTreeMap::new(),
            leaders: BTreeMap::new(),
        }
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        !self.isolated.contains(&a) && !self.isolated.contains(&b)
    }

    /// Steps node `n` and performs what it asks.
    fn step(&mut self, n: usize, input: Input) {
        let actions = self.nodes[n].driver.step(self.now, input);
        for action in actions {
            self.perform(n, action);
        }
        let core = &self.nodes[n].driver.core;
        assert_eq!(self.nodes[n].role, core.role, "n{n}'s role changed without an Action::Role");
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
                    if entry.kind == LogKind::Command {
                        node.fsm.push(entry.data.clone());
                    }
                }
                node.applied = node.applied.max(through);
            }
            Action::Install { index, term } => {
                let state = node.incoming.take().expect("the offered snapshot");
                node.fsm = state.clone();
                node.applied = index;
                node.snapshot = Some((index, term, state));
                node.installs += 1;
                self.step(n, Input::Installed { index, term });
            }
            Action::Send { to, request } => self.send(n, index_of(&to), request),
            Action::Reply { to, reply, after_writes } => {
                let to = index_of(&to);
                // Answers go back over the same link.
                let Some((prev, count, sent)) =
                    self.outstanding.get_mut(&(to, n)).and_then(VecDeque::pop_front)
                else {
                    return;
                };
                let envelope = Envelope::Reply { from: n, to, sent, summary: (prev, count), reply };
                if after_writes && self.nodes[n].unsynced.is_some() {
                    self.nodes[n].held.push(envelope);
                } else {
                    self.net.push_back(envelope);
                }
            }
            Action::Role(role) => node.role = role,
        }
    }

    /// Builds the RPC for `request` from `n`'s log and snapshot, and sends it.
    fn send(&mut self, n: usize, to: usize, request: Request) {
        let node = &self.nodes[n];
        let header = RpcHeader::new(id(n), ServerAddress::from(format!("addr-{n}")));
        let (message, data, summary) = match request {
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
                (Message::Append(request), None, (prev_index, count))
            }
            Request::Vote(request) => (Message::Vote(request), None, (0, 0)),
            Request::PreVote(request) => (Message::PreVote(request), None, (0, 0)),
            Request::Snapshot { term } => {
                let (index, snapshot_term, state) = node.snapshot.clone().expect("a snapshot to send");
                let configuration = node.driver.core.configurations.committed.clone();
                let request = InstallSnapshotRequest {
                    header,
                    snapshot_version: crate::SNAPSHOT_VERSION,
                    term,
                    last_log_index: index,
                    last_log_term: snapshot_term,
                    configuration,
                    configuration_index: node.driver.core.configurations.committed_index,
                    size: 0,
                };
                (Message::Snapshot(request), Some(state), (index, 0))
            }
        };
        let sent = self.now;
        self.outstanding.entry((n, to)).or_default().push_back((summary.0, summary.1, sent));
        self.net.push_back(Envelope::Request { from: n, to, message, data });
    }

    /// Delivers what is in flight (dropping what crosses a cut), then
    /// advances the clock by a millisecond and ticks whoever is due.
    fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        while self.now < until {
            let mut delivered = 0;
            while let Some(envelope) = self.net.pop_front() {
                delivered += 1;
                assert!(delivered < 10_000, "a livelock: ten thousand messages within one millisecond");
                self.deliver(envelope);
            }
            self.sync();
            self.now += MS;
            for n in 0..self.nodes.len() {
                if self.nodes[n].driver.next_deadline() <= self.now {
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
            self.net.extend(held);
            if let Some(last_index) = self.nodes[n].unsynced.take() {
                self.step(n, Input::Durable { last_index });
            }
        }
    }

    fn deliver(&mut self, envelope: Envelope) {
        match envelope {
            Envelope::Request { from, to, message, data, .. } => {
                if !self.connected(from, to) {
                    self.outstanding.get_mut(&(from, to)).and_then(VecDeque::pop_back);
                    return self.step(from, Input::Answer(Answer::Lost { peer: id(to) }));
                }
                self.nodes[to].incoming = data.or(self.nodes[to].incoming.take());
                self.step(to, Input::Message(message));
            }
            Envelope::Reply { from, to, sent, summary: (prev_index, count), reply } => {
                if !self.connected(from, to) {
                    return self.step(to, Input::Answer(Answer::Lost { peer: id(from) }));
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
        }
    }

    fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> =
            (0..self.nodes.len()).filter(|&n| self.nodes[n].driver.core.role == RaftState::Leader).collect();
        // Two leaders may coexist across a partition, in different terms.
        leaders.into_iter().max_by_key(|&n| self.nodes[n].driver.core.current_term)
    }

    /// Runs until `done` holds, for at most `within`.
    fn run_until(&mut self, what: &str, within: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = self.now + within;
        while !done(self) {
            assert!(self.now < deadline, "{what}: not within {within:?}");
            self.run_for(MS);
        }
    }

    fn propose(&mut self, leader: usize, command: &str) {
        self.step(leader, Input::Propose(Bytes::from(command.to_string())));
    }

    /// Snapshots `n` at its applied index: its point.
    fn take_snapshot(&mut self, n: usize) -> (u64, u64) {
        let node = &mut self.nodes[n];
        let index = node.applied;
        let term = node.driver.core.log_ids.term_at(index).expect("the applied entry's term");
        node.snapshot = Some((index, term, node.fsm.clone()));
        self.step(n, Input::Snapshotted { index, term });
        (index, term)
    }

    /// Every FSM applied the same commands, in the same order, as far as each got.
    fn check_state_machine_safety(&self) {
        let longest = self.nodes.iter().map(|node| &node.fsm).max_by_key(|fsm| fsm.len()).expect("nodes");
        for (n, node) in self.nodes.iter().enumerate() {
            assert_eq!(node.fsm[..], longest[..node.fsm.len()], "n{n} applied other commands");
        }
    }
}

#[test]
fn three_drivers_elect_replicate_change_leader_and_catch_up_by_snapshot() {
    let mut cluster = Cluster::new(3);

    // An election.
    cluster.run_until("a leader", Duration::from_secs(2), |c| c.leader().is_some());
    let first = cluster.leader().expect("leader");
    let first_term = cluster.nodes[first].driver.core.current_term;
    assert!(first_term >= 2, "a new term ({first_term})");

    // Replication: ten commands commit and apply everywhere.
    for i in 0..10 {
        cluster.propose(first, &format!("a{i}"));
    }
    cluster.run_until("ten commands applied everywhere", Duration::from_secs(1), |c| {
        c.nodes.iter().all(|node| node.fsm.len() == 10)
    });
    cluster.check_state_machine_safety();

    // A leader change: the leader is cut off; the others elect one of theirs
    // in a newer term and commit without it, and the old leader's lease runs out.
    cluster.isolated.insert(first);
    cluster.run_until("a new leader", Duration::from_secs(2), |c| c.leader().is_some_and(|l| l != first));
    let second = cluster.leader().expect("leader");
    assert!(cluster.nodes[second].driver.core.current_term > first_term);
    cluster.run_until("the old leader steps down", Duration::from_secs(1), |c| {
        c.nodes[first].driver.core.role != RaftState::Leader
    });
    for i in 0..8 {
        cluster.propose(second, &format!("b{i}"));
    }
    cluster.run_until("the majority applies", Duration::from_secs(1), |c| {
        c.nodes.iter().enumerate().filter(|&(n, _)| n != first).all(|(_, node)| node.fsm.len() == 18)
    });
    assert_eq!(cluster.nodes[first].fsm.len(), 10, "the cut-off node applied nothing new");

    // A snapshot: the new leader compacts its log past what the old one has.
    let (index, _) = cluster.take_snapshot(second);
    assert!(index > cluster.nodes[first].driver.core.last_index, "{index}");
    assert!(!cluster.nodes[second].log.contains_key(&index), "compacted");

    // Healed: the old leader can only catch up from the snapshot.
    cluster.isolated.clear();
    cluster.propose(second, "c0");
    cluster.run_until("every node applies everything", Duration::from_secs(2), |c| {
        c.nodes.iter().all(|node| node.fsm.len() == 19)
    });
    assert_eq!(cluster.nodes[first].installs, 1, "the old leader installed the snapshot");
    assert_eq!(cluster.leader(), Some(second), "the snapshot did not disturb the leader");
    cluster.check_state_machine_safety();
    let commits: Vec<u64> = cluster.nodes.iter().map(|node| node.driver.core.commit_index).collect();
    assert!(commits.iter().all(|&c| c == commits[0]), "{commits:?}");
    // Log matching: every entry two logs both hold is the same entry.
    for a in &cluster.nodes {
        for b in &cluster.nodes {
            for (index, entry) in &a.log {
                if let Some(other) = b.log.get(index) {
                    assert_eq!((entry.term, &entry.data), (other.term, &other.data), "at {index}");
                }
            }
        }
    }
}
