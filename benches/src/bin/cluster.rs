//! The cluster benchmark: three raft-kit nodes in one process, closed-loop
//! clients applying 128-byte commands to the leader for a fixed time.
//!
//! ```text
//! cargo run --release -p benches --bin cluster -- [--setup inmem-mem] [--clients 1,16,256] [--seconds 5]
//! cargo run --release -p benches --bin cluster -- --help
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
//! - `tcp-redb`: TCP on loopback and `RedbStore` with full durability;
//! - `tcp-wal`: TCP on loopback and `WalStore` (one fdatasync per batch).
//!
//! `--setup all` runs the four.

use benches::cluster::{Running, cpu_seconds, run, start_cluster};
use clap::Parser;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The cluster benchmark: three raft-kit nodes in one process, closed-loop
/// clients applying 128-byte commands to the leader for a fixed time.
#[derive(clap::Parser)]
struct Args {
    /// Which cluster to run.
    #[arg(long, value_enum, default_value = "inmem-mem")]
    setup: Setup,
    /// Client counts to run, one after the other (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    clients: Vec<usize>,
    /// Seconds per client count.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Setup {
    /// The in-memory transport and in-memory stores: the protocol's own cost.
    InmemMem,
    /// TCP on loopback and `LmdbStore` with full durability.
    TcpLmdb,
    /// TCP on loopback and `RedbStore` with full durability.
    TcpRedb,
    /// TCP on loopback and `WalStore`.
    TcpWal,
    /// The four, one after the other.
    All,
}

/// Each apply's timeout, as an application would set one.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

async fn bench(setup: &str, clients: usize, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let Running { nodes, counters, dir: _dir, wal_stores } = start_cluster(setup).await?;
    let leader = nodes.iter().find(|r| r.is_leader()).ok_or("no leader")?.clone();
    let (cpu_before, syncs_before) =
        (cpu_seconds(), wal_stores.iter().map(|s| s.stats()).collect::<Vec<_>>());
    let outcome = run(&leader, clients, seconds, APPLY_TIMEOUT).await;
    let cpu = cpu_seconds() - cpu_before;
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
        "  CPU {:.1} µs per apply (all three nodes and the clients)",
        cpu * 1e6 / outcome.applies.max(1) as f64
    );
    for (n, (store, before)) in wal_stores.iter().zip(&syncs_before).enumerate() {
        let now = store.stats();
        let (syncs, entries) = (now.syncs - before.syncs, now.entries - before.entries);
        println!(
            "  node {n}: {:.0} fdatasyncs/s, {:.1} entries per sync",
            syncs as f64 / outcome.elapsed.as_secs_f64(),
            entries as f64 / syncs.max(1) as f64
        );
    }
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
    let args = Args::parse();
    let setups: &[&str] = match args.setup {
        Setup::InmemMem => &["inmem-mem"],
        Setup::TcpLmdb => &["tcp-lmdb"],
        Setup::TcpRedb => &["tcp-redb"],
        Setup::TcpWal => &["tcp-wal"],
        Setup::All => &["inmem-mem", "tcp-lmdb", "tcp-redb", "tcp-wal"],
    };
    for &setup in setups {
        for &clients in &args.clients {
            bench(setup, clients, args.seconds).await?;
        }
    }
    Ok(())
}
