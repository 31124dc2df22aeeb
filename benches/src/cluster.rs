//! The pieces of the cluster benchmark that the `cluster` and `compare`
//! binaries share: a three-node raft-kit cluster in one process, a state
//! machine that only counts, and the closed-loop client driver.

use bytes::Bytes;
use hdrhistogram::Histogram;
use raft_core::{
    Config, Configuration, Fsm, FsmError, FsmSnapshot, Log, Raft, Server, SnapshotReader, Transport,
};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store_lmdb::LmdbStore;
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use store_redb::RedbStore;
use transport_inmem::InmemNetwork;
use transport_tcp::{TcpConfig, TcpTransport};

/// A state machine that does nothing but count the commands it applied. It
/// never blocks, so the core runs it as a task (as openraft runs its state
/// machine in the comparison).
pub struct NoopFsm(pub Arc<AtomicU64>);

impl Fsm for NoopFsm {
    type Response = ();

    fn apply(&mut self, _log: &Log) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
        Ok(Box::new(NoopSnapshot))
    }

    fn restore(&mut self, _snapshot: SnapshotReader) -> Result<(), FsmError> {
        Ok(())
    }

    fn never_blocks(&self) -> bool {
        std::env::var_os("RAFT_BENCH_FSM_THREAD").is_none()
    }
}

/// The empty snapshot of [`NoopFsm`].
pub struct NoopSnapshot;

impl FsmSnapshot for NoopSnapshot {
    fn persist(&mut self, _sink: &mut dyn std::io::Write) -> Result<(), FsmError> {
        Ok(())
    }
}

/// The node configuration the cluster benchmarks use: large batches, many
/// in-flight AppendEntries, no snapshots during a run.
pub fn config(id: &str) -> Config {
    let mut config = Config::new(id);
    config.max_append_entries = 256;
    config.max_inflight = 16;
    config.heartbeat_timeout = Duration::from_millis(500);
    config.election_timeout = Duration::from_millis(500);
    config.leader_lease_timeout = Duration::from_millis(500);
    config.snapshot_threshold = 1 << 40;
    config
}

/// A running three-node cluster and what keeps its files alive.
pub struct Running {
    /// The three nodes.
    pub nodes: Vec<Raft<NoopFsm>>,
    /// Commands applied by each node's state machine.
    pub counters: Vec<Arc<AtomicU64>>,
    /// The directory of the durable stores.
    pub dir: tempfile::TempDir,
    /// The nodes' stores, for `tcp-wal` (to count their syncs).
    pub wal_stores: Vec<Arc<store_wal::WalStore>>,
}

/// CPU time this process has used (user and system), from `/proc/self/stat`;
/// zero where that file does not exist.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which is in parentheses): utime is the
    // 12th, stime the 13th, in clock ticks of 1/100 s.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Starts three nodes of `setup` (`inmem-mem`, `tcp-lmdb`, `tcp-redb` or `tcp-wal`)
/// and waits up to 10 s for a leader.
pub async fn start_cluster(setup: &str) -> Result<Running, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let network = InmemNetwork::without_codec(1);
    let mut transports: Vec<Arc<dyn Transport>> = Vec::new();
    for i in 0..3 {
        if setup == "inmem-mem" {
            transports.push(Arc::new(network.transport(format!("a{i}"))));
        } else {
            let config = TcpConfig::new(format!("n{i}"), "bench", "127.0.0.1:0".parse()?);
            transports.push(Arc::new(TcpTransport::bind(config).await?));
        }
    }
    let members: Vec<Server> =
        transports.iter().enumerate().map(|(i, t)| Server::voter(format!("n{i}"), t.local_addr())).collect();
    let mut nodes = Vec::new();
    let mut counters = Vec::new();
    let mut wal_stores = Vec::new();
    for (i, transport) in transports.into_iter().enumerate() {
        let applied = Arc::new(AtomicU64::new(0));
        let fsm = NoopFsm(applied.clone());
        let config = config(&format!("n{i}"));
        let snapshots = InmemSnapshotStore::new();
        let raft = match setup {
            "tcp-lmdb" => {
                let store = Arc::new(LmdbStore::open(dir.path().join(format!("lmdb-{i}")))?);
                Raft::new(config, fsm, store.clone(), store, snapshots, transport).await?
            }
            "tcp-redb" => {
                let store = Arc::new(RedbStore::open(dir.path().join(format!("redb-{i}.redb")))?);
                Raft::new(config, fsm, store.clone(), store, snapshots, transport).await?
            }
            "tcp-wal" => {
                let store = Arc::new(store_wal::WalStore::open(dir.path().join(format!("wal-{i}")))?);
                wal_stores.push(store.clone());
                Raft::new(config, fsm, store.clone(), store, snapshots, transport).await?
            }
            _ => {
                Raft::new(config, fsm, MemLogStore::new(), MemStableStore::new(), snapshots, transport)
                    .await?
            }
        };
        raft.bootstrap_cluster(Configuration::new(members.clone())).await?;
        nodes.push(raft);
        counters.push(applied);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !nodes.iter().any(|r| r.is_leader()) {
        if Instant::now() > deadline {
            return Err("no leader within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Running { nodes, counters, dir, wal_stores })
}

/// What a closed-loop run measured.
pub struct Outcome {
    /// Commands that completed successfully.
    pub applies: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency of each successful command, in microseconds.
    pub histogram: Histogram<u64>,
}

impl Outcome {
    /// Successful commands per second.
    pub fn rate(&self) -> f64 {
        self.applies as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `clients` closed-loop clients for `seconds`: each calls `apply`,
/// waits for it, records the latency when it returned `true`, and repeats.
pub async fn closed_loop<F, Fut>(clients: usize, seconds: u64, apply: F) -> Outcome
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (apply, stop) = (apply.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut histogram = new_histogram();
            let mut applies = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                if apply().await {
                    let micros = began.elapsed().as_micros().max(1) as u64;
                    let _ = histogram.record(micros.min(MAX_MICROS));
                    applies += 1;
                }
            }
            (applies, histogram)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut histogram = new_histogram();
    let mut applies = 0;
    for task in tasks {
        let (count, h) = task.await.expect("client task");
        applies += count;
        histogram.add(h).expect("same bounds");
    }
    Outcome { applies, elapsed: started.elapsed(), histogram }
}

/// The largest latency recorded (one minute).
const MAX_MICROS: u64 = 60_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3).expect("histogram bounds")
}

/// Runs closed-loop clients applying 128-byte commands to a raft-kit `leader`.
///
/// Each apply builds its command afresh, as a client serializing a request
/// would (and as the openraft side of the comparison does): commands sharing
/// one buffer would make every node's every copy of every entry count
/// references on a single contended cache line. The apply timeout is
/// `timeout`; zero means none (openraft's `client_write` takes none).
pub async fn run(leader: &Raft<NoopFsm>, clients: usize, seconds: u64, timeout: Duration) -> Outcome {
    let leader = leader.clone();
    closed_loop(clients, seconds, move || {
        let leader = leader.clone();
        async move { leader.apply(Bytes::from(vec![7u8; 128]), timeout).await.is_ok() }
    })
    .await
}
