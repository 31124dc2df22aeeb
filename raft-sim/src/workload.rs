//! The simulated clients: each one writes (put, append, delete) through
//! `apply` and reads through `consistent_read` or `read_index`, following
//! `NotLeader` hints, and records every call and answer in the history. A
//! write whose outcome it cannot know (a timeout, lost leadership, a crashed
//! node) is recorded as such: it may or may not have happened.

use crate::cluster::{Cluster, Handle, index_of};
use crate::kv::{Command, lock};
use crate::linearizability::{History, Op};
use crate::trace::Trace;
use raft_core::RaftError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a client waits for one call.
const CALL_TIMEOUT: Duration = Duration::from_millis(800);
/// How many nodes a client tries for one operation before giving up.
const ATTEMPTS_MAX: usize = 4;

/// What every client shares.
pub struct Workload {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// The history the checker reads.
    pub history: Arc<History>,
    /// The trace.
    pub trace: Arc<Trace>,
    /// How many keys the clients share.
    pub keys: usize,
    /// Read the leader's state without `read_index` (a planted bug).
    pub stale_reads: bool,
    /// Set when the clients are to stop.
    pub stop: AtomicBool,
}

/// The key named `n`.
pub fn key(n: usize) -> String {
    format!("k{n}")
}

/// How a write attempt ended.
enum Attempt {
    Done,
    /// Certainly not appended: try `next` (a hinted leader) or another node.
    NotHere(Option<usize>),
    /// It may or may not take effect.
    Unknown,
}

impl Workload {
    /// One client, until told to stop.
    pub async fn client(self: Arc<Self>, client: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut target = rng.random_range(0..self.cluster.len());
        let mut seq = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let key = key(rng.random_range(0..self.keys));
            let pick = rng.random_range(0..100);
            if pick < 55 {
                seq += 1;
                let command = match pick {
                    0..15 => Command::Put { key, value: format!("c{client}-{seq}") },
                    15..50 => Command::Append { key, token: format!("c{client}-{seq};") },
                    _ => Command::Delete { key },
                };
                self.write(client, command, &mut target, &mut rng).await;
            } else {
                let via_read_index = rng.random_bool(0.3);
                self.read(client, &key, via_read_index, &mut target, &mut rng).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
        }
    }

    fn pick_node(&self, rng: &mut StdRng, target: &mut usize) -> Option<Handle> {
        if let Some(handle) = self.cluster.handle(*target) {
            return Some(handle);
        }
        *target = rng.random_range(0..self.cluster.len());
        self.cluster.handle(*target)
    }

    async fn write(&self, client: usize, command: Command, target: &mut usize, rng: &mut StdRng) {
        let op = match &command {
            Command::Put { value, .. } => Op::Put(value.clone()),
            Command::Append { token, .. } => Op::Append(token.clone()),
            Command::Delete { .. } => Op::Delete,
        };
        let id = self.history.call(client, command.key(), op);
        for _ in 0..ATTEMPTS_MAX {
            let Some(node) = self.pick_node(rng, target) else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let outcome = self.attempt(&node, &command).await;
            let said = match &outcome {
                Attempt::Done => "done".to_owned(),
                Attempt::Unknown => "unknown".to_owned(),
                Attempt::NotHere(hint) => format!("not leader (hint {hint:?})"),
            };
            self.trace.record(format!("c{client} {command:?} at n{}: {said}", node.node));
            match outcome {
                Attempt::Done => {
                    self.history.returned(id, None);
                    return;
                }
                Attempt::Unknown => return,
                Attempt::NotHere(hint) => {
                    *target = hint.unwrap_or_else(|| rng.random_range(0..self.cluster.len()));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        // Every node it reached said it did not append it.
        self.history.forget(id);
    }

    async fn attempt(&self, node: &Handle, command: &Command) -> Attempt {
        match node.raft.apply(command.encode(), CALL_TIMEOUT).await {
            Ok(_) => Attempt::Done,
            Err(RaftError::NotLeader { leader }) => {
                Attempt::NotHere(leader.and_then(|(id, _)| index_of(&id)))
            }
            Err(RaftError::LeadershipTransferInProgress) => Attempt::NotHere(None),
            Err(_) => Attempt::Unknown,
        }
    }

    async fn read(
        &self,
        client: usize,
        key: &str,
        via_read_index: bool,
        target: &mut usize,
        rng: &mut StdRng,
    ) {
        let Some(node) = self.pick_node(rng, target) else { return };
        let id = self.history.call(client, key, Op::Get);
        let read = || lock(&node.state).map.get(key).cloned();
        let value = if self.stale_reads {
            if node.raft.is_leader() {
                Ok(read())
            } else {
                Err(RaftError::NotLeader { leader: node.raft.leader() })
            }
        } else if via_read_index {
            node.raft.read_index(CALL_TIMEOUT).await.map(|_| read())
        } else {
            node.raft.consistent_read(CALL_TIMEOUT, read).await
        };
        self.trace.record(format!("c{client} get {key} at n{}: {value:?}", node.node));
        match value {
            Ok(value) => self.history.returned(id, value),
            Err(error) => {
                // A read that returned nothing says nothing.
                self.history.forget(id);
                if let RaftError::NotLeader { leader } = error {
                    *target = leader
                        .and_then(|(id, _)| index_of(&id))
                        .unwrap_or_else(|| rng.random_range(0..self.cluster.len()));
                }
            }
        }
    }

    /// After the run: a linearizable read of every key, so that a write
    /// acknowledged and then lost shows even if no client read it.
    pub async fn final_reads(&self, leader: &Handle) -> Result<(), RaftError> {
        for n in 0..self.keys {
            let key = key(n);
            let id = self.history.call(usize::MAX, &key, Op::Get);
            let value = leader
                .raft
                .consistent_read(Duration::from_secs(5), || lock(&leader.state).map.get(&key).cloned())
                .await;
            match value {
                Ok(value) => self.history.returned(id, value),
                Err(error) => {
                    self.history.forget(id);
                    return Err(error);
                }
            }
        }
        Ok(())
    }
}
