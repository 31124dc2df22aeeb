use crate::InmemTransport;
use crate::fabric::{Faults, INCOMING_QUEUE, MessageHook, Registration, Shared, State};
use raft_core::ServerAddress;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

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
        InmemTransport::new(self.shared.clone(), addr, instance, receiver)
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
