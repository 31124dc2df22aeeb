//! What every endpoint of one in-memory network shares: the nodes
//! registered by address, the faults and partitions between them, the seeded
//! random source for fault decisions, and per-node counters. Both the
//! network's control handle and the transports read it; it imports neither.

use raft_core::{Rpc, ServerAddress};
use rand::Rng;
use rand::rngs::StdRng;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// How many RPCs may wait in one node's incoming queue.
pub(crate) const INCOMING_QUEUE: usize = 1024;

/// Probabilistic faults applied to every message on the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// The chance (0.0–1.0) that a request is lost before delivery.
    pub drop_requests: f64,
    /// The chance that a reply is lost after the request was handled.
    pub drop_replies: f64,
    /// Every delivery waits a random time in this range (`None`: no delay).
    pub delay: Option<(Duration, Duration)>,
    /// The chance that a reply is held back by up to `reorder_delay_max`, so
    /// that later messages overtake it.
    pub reorder: f64,
    /// The longest a reordered reply is held back.
    pub reorder_delay_max: Duration,
    /// How long a call to an unreachable or lost destination waits before it
    /// fails, at most (a random time up to this), as a real timeout would.
    pub failure_delay_max: Duration,
    /// The chance that a request (other than InstallSnapshot) is delivered a
    /// second time, a little later, as a retransmitted packet would be; the
    /// second answer is dropped.
    pub duplicate: f64,
}

impl Faults {
    /// No faults: every message is delivered at once.
    pub fn reliable() -> Self {
        Self {
            drop_requests: 0.0,
            drop_replies: 0.0,
            delay: None,
            reorder: 0.0,
            reorder_delay_max: Duration::ZERO,
            failure_delay_max: Duration::from_millis(2),
            duplicate: 0.0,
        }
    }

    /// The unreliable network of the MIT 6.824 tests, scaled to raft-kit's
    /// test timeouts: 10% of requests and of replies lost, deliveries delayed
    /// up to 5 ms, and 5% of replies held back up to 40 ms.
    pub fn unreliable() -> Self {
        Self {
            drop_requests: 0.1,
            drop_replies: 0.1,
            delay: Some((Duration::ZERO, Duration::from_millis(5))),
            reorder: 0.05,
            reorder_delay_max: Duration::from_millis(40),
            failure_delay_max: Duration::from_millis(5),
            duplicate: 0.0,
        }
    }
}

/// Counters of what one node sent.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) rpcs: AtomicU64,
    pub(crate) bytes: AtomicU64,
    /// AppendEntries that are not bare heartbeats (they carry entries or a
    /// consistency check).
    pub(crate) appends: AtomicU64,
}

pub(crate) struct Registration {
    pub(crate) incoming: mpsc::Sender<Rpc>,
    /// Distinguishes a re-registration at the same address after a restart.
    pub(crate) instance: u64,
}

pub(crate) struct State {
    pub(crate) nodes: HashMap<ServerAddress, Registration>,
    pub(crate) disconnected: HashSet<ServerAddress>,
    pub(crate) cut: HashSet<(ServerAddress, ServerAddress)>,
    pub(crate) groups: Option<HashMap<ServerAddress, usize>>,
    /// Messages from or to a node wait until its time here before delivery.
    pub(crate) held: HashMap<ServerAddress, tokio::time::Instant>,
    pub(crate) faults: Faults,
    pub(crate) rng: StdRng,
    pub(crate) next_instance: u64,
}

/// Told of every message the network carries (see [`InmemNetwork::on_message`](crate::InmemNetwork::on_message)).
pub type MessageHook = Arc<dyn Fn(&str) + Send + Sync>;

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) hook: Mutex<Option<MessageHook>>,
    pub(crate) counters: Mutex<HashMap<ServerAddress, Arc<Counters>>>,
    pub(crate) codec: bool,
    pub(crate) seed: u64,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the message hook, if any, about a message.
    /// The line is only formatted when there is a hook.
    pub(crate) fn tell(&self, message: impl FnOnce() -> String) {
        let hook = self.hook.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(hook) = hook {
            hook(&message());
        }
    }

    pub(crate) fn counters(&self, addr: &ServerAddress) -> Arc<Counters> {
        let mut counters = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counters.entry(addr.clone()).or_default().clone()
    }
}

impl State {
    pub(crate) fn reachable(&self, from: &ServerAddress, to: &ServerAddress) -> bool {
        if self.disconnected.contains(from) || self.disconnected.contains(to) {
            return false;
        }
        if self.cut.contains(&(from.clone(), to.clone())) {
            return false;
        }
        match &self.groups {
            Some(groups) => groups.get(from) == groups.get(to),
            None => true,
        }
    }

    /// Until when messages between `from` and `to` are held, if they are.
    pub(crate) fn held_until(
        &self,
        from: &ServerAddress,
        to: &ServerAddress,
    ) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        [self.held.get(from), self.held.get(to)].into_iter().flatten().copied().filter(|&at| at > now).max()
    }

    pub(crate) fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random_bool(probability.min(1.0))
    }

    pub(crate) fn between(&mut self, min: Duration, max: Duration) -> Duration {
        if max <= min {
            return min;
        }
        let micros = self.rng.random_range(min.as_micros() as u64..=max.as_micros() as u64);
        Duration::from_micros(micros)
    }
}
