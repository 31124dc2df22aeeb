//! A 64 MiB snapshot streams from a leader to a follower that fell behind
//! the compacted log, through FileSnapshotStores on both sides, without
//! either holding it in memory: the process's peak resident memory grows by
//! far less than the snapshot. (Its own test binary, so nothing else runs
//! beside it.)
//!
//! Both connected nodes take the snapshot and leadership moves between them
//! before the follower comes back, so that whichever node leads then (a
//! loaded machine can change leaders at any time) must send it a snapshot:
//! an earlier version snapshotted only the first leader, and when the other
//! node took over the follower caught up from the log and the test waited
//! its full minute for a snapshot that was never going to come.

use raft_core::*;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use transport_inmem::InmemNetwork;

const STATE_SIZE: u64 = 64 << 20;
const CHUNK: usize = 64 << 10;

fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(2654435761) >> 11) as u8
}

/// An FSM whose state is STATE_SIZE bytes of a pattern, generated when
/// persisted and checked when restored, never held in memory.
struct PatternFsm {
    restored: Arc<AtomicU64>,
}

impl Fsm for PatternFsm {
    type Response = ();

    fn apply(&mut self, _log: &Log) {}

    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
        Ok(Box::new(PatternSnapshot))
    }

    fn restore(&mut self, mut snapshot: SnapshotReader) -> Result<(), FsmError> {
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0u64;
        loop {
            let n = snapshot.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if buf[..n].iter().enumerate().any(|(i, b)| *b != pattern(offset + i as u64)) {
                return Err(FsmError::new("restored state differs from the pattern"));
            }
            offset += n as u64;
        }
        self.restored.store(offset, Ordering::SeqCst);
        Ok(())
    }
}

struct PatternSnapshot;

impl FsmSnapshot for PatternSnapshot {
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError> {
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0u64;
        while offset < STATE_SIZE {
            for (i, byte) in buf.iter_mut().enumerate() {
                *byte = pattern(offset + i as u64);
            }
            sink.write_all(&buf)?;
            offset += CHUNK as u64;
        }
        Ok(())
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for `check`, and on timeout says what it waited on: `describe`
/// gives the state of everything the check looks at.
async fn wait_for(what: &str, check: impl Fn() -> bool, describe: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}; {}", describe());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn describe(nodes: &[Raft<PatternFsm>], restored: &[Arc<AtomicU64>], network: &InmemNetwork) -> String {
    let lines: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, raft)| {
            format!(
                "n{i}: {:?} in term {}, leader {:?}, applied {}, last index {}, restored {} bytes, {} RPCs received",
                raft.state(),
                raft.current_term(),
                raft.leader().map(|(id, _)| id),
                raft.applied_index(),
                raft.last_index(),
                restored[i].load(Ordering::SeqCst),
                network.rpc_count(&format!("a{i}").into()),
            )
        })
        .collect();
    lines.join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_snapshot_installs_on_a_follower_in_bounded_memory() {
    let network = InmemNetwork::new(9);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let restored: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let members: Vec<Server> = (0..3).map(|i| Server::voter(format!("n{i}"), format!("a{i}"))).collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut config = Config::fast(format!("n{i}"));
        // Long enough that a busy machine rarely changes leaders mid-stream
        // (which restarts the install), short enough to keep the test quick.
        config.heartbeat_timeout = Duration::from_millis(300);
        config.election_timeout = Duration::from_millis(300);
        config.leader_lease_timeout = Duration::from_millis(300);
        config.snapshot_threshold = 1 << 40;
        config.snapshot_interval = Duration::from_secs(3600);
        config.trailing_logs = 0;
        let raft = Raft::new(
            config,
            PatternFsm { restored: restored[i].clone() },
            store_mem::MemLogStore::new(),
            store_mem::MemStableStore::new(),
            FileSnapshotStore::open_with(dirs[i].path(), raft_core::FileSnapshotOptions::default().retain(1))
                .expect("snapshot store"),
            network.transport(format!("a{i}")),
        )
        .await
        .expect("start");
        raft.bootstrap_cluster(Configuration::new(members.clone())).await.expect("bootstrap");
        nodes.push(raft);
    }
    let status = || describe(&nodes, &restored, &network);
    wait_for("a leader", || nodes.iter().any(|r| r.is_leader()), status).await;
    let leader = nodes.iter().position(|r| r.is_leader()).expect("leader");
    let follower = (leader + 1) % 3;
    network.disconnect(&format!("a{follower}").into());
    for n in 0..5 {
        nodes[leader].apply(format!("{n}"), Duration::from_secs(1)).await.expect("apply");
    }
    let meta = nodes[leader].snapshot().await.expect("snapshot").meta().clone();
    assert_eq!(meta.size, STATE_SIZE);
    let other = 3 - leader - follower;
    let other_meta = nodes[other].snapshot().await.expect("snapshot on the other node").meta().clone();
    assert_eq!(other_meta.index, meta.index, "both snapshots cover every entry");
    nodes[leader]
        .leadership_transfer_to_server(format!("n{other}").into(), format!("a{other}").into())
        .await
        .expect("transfer");
    wait_for("the other node to lead", || nodes[other].is_leader(), status).await;

    let before = peak_rss_kib();
    network.connect(&format!("a{follower}").into());
    let target = meta.index;
    wait_for(
        "the follower to install the snapshot",
        || {
            nodes[follower].applied_index() >= target
                && restored[follower].load(Ordering::SeqCst) == STATE_SIZE
        },
        status,
    )
    .await;
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let grown_mib = after.saturating_sub(before) / 1024;
        eprintln!("peak RSS grew by {grown_mib} MiB while a 64 MiB snapshot streamed to a follower");
        assert!(grown_mib < 24, "peak RSS grew by {grown_mib} MiB for a 64 MiB snapshot");
    }
    let leader = nodes.iter().find(|r| r.is_leader()).expect("a leader after the install");
    leader.apply("after", Duration::from_secs(1)).await.expect("the cluster goes on");
    for raft in nodes {
        raft.shutdown().await.expect("shutdown");
    }
}
