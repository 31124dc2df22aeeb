//! What a seed decides: the cluster's shape and settings, the workload's
//! size, and the schedule of faults (the nemeses), mixed at random per seed.
//! Faults that need to know the cluster's state when they strike (who leads,
//! who is a member) pick their target then, from the run's own generator.

use crate::kv::PlantedBugs;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::time::Duration;

/// One fault, or its end.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Two random halves that cannot reach each other.
    PartitionHalves,
    /// Two halves joined by one node that reaches both.
    PartitionBridge,
    /// The leader (when there is one) alone on one side.
    IsolateLeader,
    /// A random link cut in one direction only.
    CutOneWay,
    /// Every partition, cut link and hold removed.
    Heal,
    /// Messages lost, duplicated, delayed and reordered.
    Lossy {
        /// Requests lost.
        drop_requests: f64,
        /// Replies lost.
        drop_replies: f64,
        /// Requests delivered twice.
        duplicate: f64,
        /// Replies held back.
        reorder: f64,
        /// Every delivery delayed up to this.
        delay_max: Duration,
    },
    /// The network delivers everything again.
    Reliable,
    /// A random running node crashes (killed between two awaits).
    Crash,
    /// Every crashed node starts again on its stores.
    RestartAll,
    /// A random running node's store fails its next writes.
    FailWrites(u32),
    /// A random node's messages are held for this long (a paused process,
    /// a stalled disk, as its peers see it).
    Hold(Duration),
    /// A node outside the configuration is added as a voter.
    AddVoter,
    /// A node outside the configuration is added as a non-voter.
    AddNonvoter,
    /// A voter (never the last three) is made a non-voter.
    Demote,
    /// A member (the leader included; never below three voters) is removed.
    Remove,
    /// The leader hands leadership to another voter.
    Transfer,
    /// A random node takes a snapshot now.
    Snapshot,
    /// The leader's state is backed up and restored as a user would.
    UserRestore,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Lossy { drop_requests, drop_replies, duplicate, reorder, delay_max } => write!(
                f,
                "lossy(drop {drop_requests:.2}/{drop_replies:.2}, dup {duplicate:.2}, reorder {reorder:.2}, delay ≤ {delay_max:?})"
            ),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Which kinds of faults a run mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Partitions of every shape, and heals.
    pub partitions: bool,
    /// Message loss, duplication, delay, reordering.
    pub network: bool,
    /// Crashes and restarts.
    pub crashes: bool,
    /// Failed writes and held nodes.
    pub stores: bool,
    /// Membership changes.
    pub membership: bool,
    /// Leadership transfers.
    pub transfers: bool,
    /// Snapshots taken at once, and user restores.
    pub snapshots: bool,
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.partitions, "partitions"),
            (self.network, "network"),
            (self.crashes, "crashes"),
            (self.stores, "stores"),
            (self.membership, "membership"),
            (self.transfers, "transfers"),
            (self.snapshots, "snapshots"),
        ];
        let on: Vec<&str> = names.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect();
        write!(f, "{}", on.join("+"))
    }
}

/// Everything a seed decides before the run starts.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// The voters the cluster starts with (3 or 5).
    pub voters: usize,
    /// Nodes that run outside the configuration, for membership changes.
    pub spares: usize,
    /// How many clients run at once.
    pub clients: usize,
    /// How many keys they share.
    pub keys: usize,
    /// How long faults strike before everything heals.
    pub faults_for: Duration,
    /// Each node's timers run this much slower (or faster) than nominal.
    pub drift: Vec<f64>,
    /// Snapshots after this many applied entries.
    pub snapshot_threshold: u64,
    /// Entries kept behind a snapshot.
    pub trailing_logs: u64,
    /// The most entries in one AppendEntries.
    pub max_append_entries: usize,
    /// The kinds of faults mixed.
    pub mix: Mix,
    /// When each fault strikes, from the start.
    pub schedule: Vec<(Duration, Fault)>,
    /// Bugs planted on purpose (tests of the simulator itself).
    pub bugs: PlantedBugs,
    /// How the nodes write their logs (not drawn from the seed: a seed
    /// replays in either mode).
    pub storage: StorageMode,
}

/// How the simulated nodes write their logs: the two modes of
/// `raft_core`'s storage, both deterministic here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageMode {
    /// Inline on the node's task, as for the in-memory store.
    #[default]
    Inline,
    /// Through the storage worker, as for every durable store: writes
    /// queue, are grouped, and are reported back as the worker completes
    /// them. The worker runs as a task (`LogWriter::Task`) on the
    /// simulation's runtime instead of a thread, so the run replays.
    Worker,
}

impl StorageMode {
    /// Both modes.
    pub const ALL: [StorageMode; 2] = [StorageMode::Inline, StorageMode::Worker];

    /// The name `--storage` takes.
    pub fn name(self) -> &'static str {
        match self {
            StorageMode::Inline => "inline",
            StorageMode::Worker => "worker",
        }
    }
}

impl std::str::FromStr for StorageMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "inline" => Ok(StorageMode::Inline),
            "worker" => Ok(StorageMode::Worker),
            other => Err(format!("unknown storage mode {other:?} (inline or worker)")),
        }
    }
}

impl Plan {
    /// The plan of `seed`.
    pub fn new(seed: u64, bugs: PlantedBugs) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let voters = if rng.random_bool(0.7) { 3 } else { 5 };
        let mut mix = Mix {
            partitions: rng.random_bool(0.6),
            network: rng.random_bool(0.5),
            crashes: rng.random_bool(0.5),
            stores: rng.random_bool(0.3),
            membership: rng.random_bool(0.3),
            transfers: rng.random_bool(0.3),
            snapshots: rng.random_bool(0.4),
        };
        if mix
            == (Mix {
                partitions: false,
                network: false,
                crashes: false,
                stores: false,
                membership: false,
                transfers: false,
                snapshots: false,
            })
        {
            mix.partitions = true;
        }
        if bugs.store_loses_last_batch {
            mix.crashes = true;
        }
        let spares = if mix.membership { rng.random_range(1..=2) } else { 0 };
        let nodes = voters + spares;
        let faults_for = Duration::from_millis(rng.random_range(3_000..8_000));
        let schedule = schedule(&mut rng, &mix, faults_for);
        Plan {
            seed,
            voters,
            spares,
            clients: rng.random_range(2..=5),
            keys: rng.random_range(2..=6),
            faults_for,
            drift: (0..nodes).map(|_| rng.random_range(0.8..1.25)).collect(),
            snapshot_threshold: if rng.random_bool(0.5) { rng.random_range(4..32) } else { 1024 },
            trailing_logs: if rng.random_bool(0.5) { 0 } else { rng.random_range(1..64) },
            max_append_entries: rng.random_range(1..=64),
            mix,
            schedule,
            bugs,
            storage: StorageMode::Inline,
        }
    }

    /// How many nodes run (voters and spares).
    pub fn nodes(&self) -> usize {
        self.voters + self.spares
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} voters + {} spares, {} clients on {} keys, faults for {:?} ({}), snapshots every {} (trailing {}), {} per append, {} storage",
            self.voters,
            self.spares,
            self.clients,
            self.keys,
            self.faults_for,
            self.mix,
            self.snapshot_threshold,
            self.trailing_logs,
            self.max_append_entries,
            self.storage.name()
        )
    }
}

/// Draws one kind of fault: the fault, and the one that ends it, if any.
type Draw = fn(&mut StdRng) -> (Fault, Option<Fault>);

/// Draws the fault schedule: a fault every 50–600 ms, each window (a
/// partition, a lossy spell, a hold) closed again a while later.
fn schedule(rng: &mut StdRng, mix: &Mix, faults_for: Duration) -> Vec<(Duration, Fault)> {
    let mut kinds: Vec<Draw> = Vec::new();
    if mix.partitions {
        kinds.push(|_| (Fault::PartitionHalves, Some(Fault::Heal)));
        kinds.push(|_| (Fault::PartitionBridge, Some(Fault::Heal)));
        kinds.push(|_| (Fault::IsolateLeader, Some(Fault::Heal)));
        kinds.push(|_| (Fault::CutOneWay, Some(Fault::Heal)));
    }
    if mix.network {
        kinds.push(|rng| {
            let lossy = Fault::Lossy {
                drop_requests: rng.random_range(0.0..0.2),
                drop_replies: rng.random_range(0.0..0.2),
                duplicate: rng.random_range(0.0..0.2),
                reorder: rng.random_range(0.0..0.3),
                delay_max: Duration::from_millis(rng.random_range(0..40)),
            };
            (lossy, Some(Fault::Reliable))
        });
    }
    if mix.crashes {
        kinds.push(|_| (Fault::Crash, Some(Fault::RestartAll)));
    }
    if mix.stores {
        kinds.push(|rng| (Fault::FailWrites(rng.random_range(1..4)), None));
        kinds.push(|rng| (Fault::Hold(Duration::from_millis(rng.random_range(50..1_500))), None));
    }
    if mix.membership {
        kinds.push(|_| (Fault::AddVoter, None));
        kinds.push(|_| (Fault::AddNonvoter, None));
        kinds.push(|_| (Fault::Demote, None));
        kinds.push(|_| (Fault::Remove, None));
    }
    if mix.transfers {
        kinds.push(|_| (Fault::Transfer, None));
    }
    if mix.snapshots {
        kinds.push(|_| (Fault::Snapshot, None));
        kinds.push(|_| (Fault::UserRestore, None));
    }
    let mut schedule = Vec::new();
    let mut at = Duration::from_millis(rng.random_range(100..600));
    while at < faults_for {
        let (fault, end) = kinds[rng.random_range(0..kinds.len())](rng);
        schedule.push((at, fault));
        if let Some(end) = end {
            let ends = at + Duration::from_millis(rng.random_range(100..2_000));
            schedule.push((ends.min(faults_for), end));
        }
        at += Duration::from_millis(rng.random_range(50..600));
    }
    schedule.sort_by_key(|(at, _)| *at);
    schedule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_plan() {
        let a = Plan::new(42, PlantedBugs::default());
        let b = Plan::new(42, PlantedBugs::default());
        assert_eq!(a.schedule, b.schedule);
        assert_eq!(a.to_string(), b.to_string());
        assert!(!a.schedule.is_empty());
        let other = Plan::new(43, PlantedBugs::default());
        assert!(a.schedule != other.schedule || a.to_string() != other.to_string());
    }
}
