use crate::InmemTransport;
use raft_core::{Rpc, ServerAddress};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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
    disconnected: HashSet<ServerAddress>,
    cut: HashSet<(ServerAddress, ServerAddress)>,
    groups: Option<HashMap<ServerAddress, usize>>,
    /// Messages from or to a node wait until its time here before delivery.
    held: HashMap<ServerAddress, tokio::time::Instant>,
    pub(crate) faults: Faults,
    rng: StdRng,
    next_instance: u64,
}

/// Told of every message the network carries (see [`InmemNetwork::on_message`]).
pub type MessageHook = Arc<dyn Fn(&str) + Send + Sync>;

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) hook: Mutex<Option<MessageHook>>,
    pub(crate) counters: Mutex<HashMap<ServerAddress, Arc<Counters>>>,
    pub(crate) codec: bool,
    seed: u64,
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

/// Links [`InmemTransport`]s by address and injects faults between them.
/// Cheap to clone; clones control the same network.
#[derive(Clone)]
pub struct InmemNetwork {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for InmemNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InmemNetwork").field("seed", &self.shared.seed).finish()
    }
}

impl InmemNetwork {
    /// A reliable network whose fault decisions come from `seed`; messages
    /// go through the codec.
    pub fn new(seed: u64) -> Self {
        Self::build(seed, true)
    }

    /// As [`new`](Self::new), but messages are handed over as values without
    /// encoding (for benchmarks of the protocol alone). Byte counts are then
    /// payload bytes only.
    pub fn without_codec(seed: u64) -> Self {
        Self::build(seed, false)
    }

    fn build(seed: u64, codec: bool) -> Self {
        let state = State {
            nodes: HashMap::new(),
            disconnected: HashSet::new(),
            cut: HashSet::new(),
            groups: None,
            held: HashMap::new(),
            faults: Faults::reliable(),
            rng: StdRng::seed_from_u64(seed),
            next_instance: 0,
        };
        let shared = Shared {
            state: Mutex::new(state),
            hook: Mutex::default(),
            counters: Mutex::default(),
            codec,
            seed,
        };
        Self { shared: Arc::new(shared) }
    }

    /// Calls `hook` for every request delivered and every answer returned,
    /// with a line describing it (a deterministic simulation hashes these
    /// into its trace).
    pub fn on_message(&self, hook: MessageHook) {
        *self.shared.hook.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(hook);
    }

    /// The seed of this network's fault decisions.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// A transport for a node at `addr`. A transport already registered at
    /// `addr` (a crashed node's) is replaced: RPCs go to the new one.
    pub fn transport(&self, addr: impl Into<ServerAddress>) -> InmemTransport {
        let addr = addr.into();
        let (incoming, receiver) = mpsc::channel(INCOMING_QUEUE);
        let instance = {
            let mut state = self.shared.lock();
            state.next_instance += 1;
            let instance = state.next_instance;
            state.nodes.insert(addr.clone(), Registration { incoming, instance });
            instance
        };
        InmemTransport::new(self.clone(), addr, instance, receiver)
    }

    /// Cuts `addr` off from every other node (both directions).
    pub fn disconnect(&self, addr: &ServerAddress) {
        self.shared.lock().disconnected.insert(addr.clone());
    }

    /// Undoes [`disconnect`](Self::disconnect).
    pub fn connect(&self, addr: &ServerAddress) {
        self.shared.lock().disconnected.remove(addr);
    }

    /// Whether `addr` is disconnected.
    pub fn is_connected(&self, addr: &ServerAddress) -> bool {
        !self.shared.lock().disconnected.contains(addr)
    }

    /// Cuts the link between `a` and `b`, both directions.
    pub fn cut(&self, a: &ServerAddress, b: &ServerAddress) {
        let mut state = self.shared.lock();
        state.cut.insert((a.clone(), b.clone()));
        state.cut.insert((b.clone(), a.clone()));
    }

    /// Cuts the link from `from` to `to` only: `to` still reaches `from`.
    pub fn cut_one_way(&self, from: &ServerAddress, to: &ServerAddress) {
        self.shared.lock().cut.insert((from.clone(), to.clone()));
    }

    /// Holds every message from or to `addr` until `until` (tokio's clock),
    /// then delivers it: what the peers of a paused process, or of one whose
    /// disk stalls, see. Nothing is lost.
    pub fn hold(&self, addr: &ServerAddress, until: tokio::time::Instant) {
        self.shared.lock().held.insert(addr.clone(), until);
    }

    /// Restores the link between `a` and `b`.
    pub fn heal(&self, a: &ServerAddress, b: &ServerAddress) {
        let mut state = self.shared.lock();
        state.cut.remove(&(a.clone(), b.clone()));
        state.cut.remove(&(b.clone(), a.clone()));
    }

    /// Splits the network: nodes reach only nodes of their own group. Nodes
    /// in no group form one more group together.
    pub fn partition(&self, groups: &[Vec<ServerAddress>]) {
        let map = groups
            .iter()
            .enumerate()
            .flat_map(|(group, members)| members.iter().map(move |addr| (addr.clone(), group)))
            .collect();
        self.shared.lock().groups = Some(map);
    }

    /// Removes every disconnection, cut link, partition and hold (faults stay).
    pub fn heal_all(&self) {
        let mut state = self.shared.lock();
        state.disconnected.clear();
        state.cut.clear();
        state.groups = None;
        state.held.clear();
    }

    /// Sets the probabilistic faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Switches between [`Faults::unreliable`] and [`Faults::reliable`].
    pub fn set_unreliable(&self, unreliable: bool) {
        self.set_faults(if unreliable { Faults::unreliable() } else { Faults::reliable() });
    }

    /// How many RPCs `addr` has sent.
    pub fn rpc_count(&self, addr: &ServerAddress) -> u64 {
        self.shared.counters(addr).rpcs.load(Ordering::Relaxed)
    }

    /// How many AppendEntries `addr` has sent that were not bare heartbeats
    /// (heartbeats carry no entries and `prev_log_index == 0`).
    pub fn append_count(&self, addr: &ServerAddress) -> u64 {
        self.shared.counters(addr).appends.load(Ordering::Relaxed)
    }

    /// How many bytes `addr` has sent (encoded size of its requests).
    pub fn bytes_sent(&self, addr: &ServerAddress) -> u64 {
        self.shared.counters(addr).bytes.load(Ordering::Relaxed)
    }

    /// The RPCs sent by every node, summed.
    pub fn total_rpc_count(&self) -> u64 {
        let counters = self.shared.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counters.values().map(|c| c.rpcs.load(Ordering::Relaxed)).sum()
    }
}
