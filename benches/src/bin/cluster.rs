//! The cluster benchmark: three raft-kit nodes in one process, closed-loop
//! clients applying 128-byte commands to the leader for a fixed time.
//!
//! ```text
//! cargo run --release -p benches --bin cluster -- [--setup inmem-mem] [--clients 1,16,256] [--seconds 5]
//! ```
//!
//! For each client count it prints applies per second and the latency
//! percentiles (from an HDR histogram), then checks that every node applied
//! the same last index. A `RESULT` line per run is what
//! `cargo run -p benches --bin report` reads.
//!
//! Setups:
//! - `inmem-mem`: the in-memory transport (messages handed over without
//!   encoding) and the in-memory stores: the protocol's own cost;
//! - `tcp-lmdb`: TCP on loopback and `LmdbStore` with full durability;
//! - `tcp-redb`: TCP on loopback and `RedbStore` with full durability.
//!
//! `--setup all` runs the three.

use bytes::Bytes;
use hdrhistogram::Histogram;
use raft_core::{
    Config, Configuration, Fsm, FsmError, FsmSnapshot, Log, Raft, Server, SnapshotReader, Transport,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store_lmdb::LmdbStore;
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use store_redb::RedbStore;
use transport_inmem::InmemNetwork;
use transport_tcp::{TcpConfig, TcpTransport};

/// A state machine that does nothing but count.
struct NoopFsm(Arc<AtomicU64>);

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
}

struct NoopSnapshot;

impl FsmSnapshot for NoopSnapshot {
    fn persist(&mut self, _sink: &mut dyn std::io::Write) -> Result<(), FsmError> {
        Ok(())
    }
}

struct Args {
    setup: String,
    clients: Vec<usize>,
    seconds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { setup: "inmem-mem".into(), clients: vec![1, 16, 256], seconds: 5 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--setup" => args.setup = value,
            "--clients" => {
                args.clients = value
                    .split(',')
                    .map(|c| c.parse().map_err(|_| format!("bad client count {c}")))
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => args.seconds = value.parse().map_err(|_| format!("bad seconds {value}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !["inmem-mem", "tcp-lmdb", "tcp-redb", "all"].contains(&args.setup.as_str()) {
        return Err(format!("unknown setup {} (inmem-mem, tcp-lmdb, tcp-redb, all)", args.setup));
    }
    Ok(args)
}

fn config(id: &str) -> Config {
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
struct Running {
    nodes: Vec<Raft<NoopFsm>>,
    counters: Vec<Arc<AtomicU64>>,
    _dir: tempfile::TempDir,
}

async fn start_cluster(setup: &str) -> Result<Running, Box<dyn std::error::Error>> {
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
    Ok(Running { nodes, counters, _dir: dir })
}

struct Outcome {
    applies: u64,
    elapsed: Duration,
    histogram: Histogram<u64>,
}

async fn run(leader: &Raft<NoopFsm>, clients: usize, seconds: u64) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let command = Bytes::from(vec![7u8; 128]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (leader, stop, command) = (leader.clone(), stop.clone(), command.clone());
        tasks.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut applies = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                if leader.apply(command.clone(), Duration::from_secs(10)).await.is_ok() {
                    let micros = began.elapsed().as_micros().max(1) as u64;
                    let _ = histogram.record(micros.min(60_000_000));
                    applies += 1;
                }
            }
            (applies, histogram)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut applies = 0;
    for task in tasks {
        let (count, h) = task.await.expect("client task");
        applies += count;
        histogram.add(h).expect("same bounds");
    }
    Outcome { applies, elapsed: started.elapsed(), histogram }
}

async fn bench(setup: &str, clients: usize, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let Running { nodes, counters, _dir } = start_cluster(setup).await?;
    let leader = nodes.iter().find(|r| r.is_leader()).ok_or("no leader")?.clone();
    let outcome = run(&leader, clients, seconds).await;
    let last = leader.last_index();
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes.iter().any(|r| r.applied_index() < last) {
        if Instant::now() > deadline {
            return Err("followers did not apply the last index within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let applied: Vec<u64> = nodes.iter().map(|r| r.applied_index()).collect();
    if applied.iter().any(|a| *a != applied[0]) {
        return Err(format!("nodes applied different last indexes: {applied:?}").into());
    }
    let per_node: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let rate = outcome.applies as f64 / outcome.elapsed.as_secs_f64();
    let h = &outcome.histogram;
    println!(
        "{setup} clients={clients:<4} applies/s={rate:>10.0}  p50={}us p99={}us p999={}us  (all nodes applied index {}, commands {per_node:?})",
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        applied[0],
    );
    println!(
        "RESULT setup={setup} clients={clients} applies_per_sec={rate:.0} p50_us={} p99_us={} p999_us={}",
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999)
    );
    for raft in nodes {
        raft.shutdown().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let setups: Vec<&str> = if args.setup == "all" {
        vec!["inmem-mem", "tcp-lmdb", "tcp-redb"]
    } else {
        vec![args.setup.as_str()]
    };
    for setup in setups {
        for &clients in &args.clients {
            bench(setup, clients, args.seconds).await?;
        }
    }
    Ok(())
}
