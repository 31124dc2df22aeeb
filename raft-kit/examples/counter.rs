//! Three raft-kit nodes in one process, replicating a counter.
//!
//! The nodes talk over the in-memory transport and keep their logs in
//! memory. The example elects a leader, applies commands, shows every node's
//! copy of the counter, then cuts the leader off and shows the cluster carry
//! on under a new one.
//!
//! Run it with `cargo run -p raft-kit --example counter --features inmem`.

use raft_kit::prelude::*;
use raft_kit::store::mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use raft_kit::transport::inmem::InmemNetwork;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// The replicated state: one integer. Commands are `+N` or `-N`.
struct Counter {
    value: Arc<AtomicI64>,
}

impl Fsm for Counter {
    type Response = i64;

    fn apply(&mut self, log: &Log) -> i64 {
        let delta: i64 = std::str::from_utf8(&log.data).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        self.value.fetch_add(delta, Ordering::SeqCst) + delta
    }

    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
        Ok(Box::new(CounterSnapshot(self.value.load(Ordering::SeqCst))))
    }

    fn restore(&mut self, mut snapshot: SnapshotReader) -> Result<(), FsmError> {
        let mut bytes = [0u8; 8];
        snapshot.read_exact(&mut bytes)?;
        self.value.store(i64::from_le_bytes(bytes), Ordering::SeqCst);
        Ok(())
    }

    // Applying is an atomic add: it never blocks, so the node may run this
    // FSM as a task instead of on a thread of its own.
    fn never_blocks(&self) -> bool {
        true
    }
}

struct CounterSnapshot(i64);

impl FsmSnapshot for CounterSnapshot {
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError> {
        sink.write_all(&self.0.to_le_bytes())?;
        Ok(())
    }
}

struct Node {
    raft: Raft<Counter>,
    value: Arc<AtomicI64>,
}

/// Waits up to five seconds for `check` to hold.
async fn wait_until(what: &str, check: impl Fn() -> bool) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn leader_of(nodes: &[Node], network: &InmemNetwork) -> Option<usize> {
    nodes.iter().position(|n| n.raft.is_leader() && network.is_connected(n.raft.local_addr()))
}

fn show(nodes: &[Node]) {
    for node in nodes {
        let stats = node.raft.stats();
        println!(
            "  {:<7} {:<9} term {:<2} applied {:<3} counter = {}",
            node.raft.id().to_string(),
            format!("{:?}", stats.state),
            stats.term,
            stats.applied_index,
            node.value.load(Ordering::SeqCst)
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let network = InmemNetwork::new(1);
    let members: Vec<Server> =
        (1..=3).map(|i| Server::voter(format!("node-{i}"), format!("mem-{i}"))).collect();
    let mut nodes = Vec::new();
    for member in &members {
        let value = Arc::new(AtomicI64::new(0));
        let mut config = Config::fast(member.id.clone());
        config.heartbeat_timeout = Duration::from_millis(100);
        config.election_timeout = Duration::from_millis(100);
        config.leader_lease_timeout = Duration::from_millis(100);
        let raft = Raft::new(
            config,
            Counter { value: value.clone() },
            MemLogStore::new(),
            MemStableStore::new(),
            InmemSnapshotStore::new(),
            network.transport(member.address.clone()),
        )
        .await?;
        raft.bootstrap_cluster(Configuration::new(members.clone())).await?;
        nodes.push(Node { raft, value });
    }

    wait_until("a leader", || leader_of(&nodes, &network).is_some()).await?;
    let leader = leader_of(&nodes, &network).ok_or("no leader")?;
    println!("elected {} as leader", nodes[leader].raft.id());
    for delta in ["+5", "+10", "-3"] {
        let applied = nodes[leader].raft.apply(delta, Duration::from_secs(1)).await?;
        println!("applied {delta:>3} at index {} -> counter {}", applied.index, applied.response);
    }
    let last = nodes[leader].raft.last_index();
    wait_until("every node to apply", || nodes.iter().all(|n| n.raft.applied_index() >= last)).await?;
    println!("every node's copy:");
    show(&nodes);

    println!("cutting {} off from the others", nodes[leader].raft.id());
    network.disconnect(nodes[leader].raft.local_addr());
    wait_until("a new leader", || leader_of(&nodes, &network).is_some_and(|l| l != leader)).await?;
    let new_leader = leader_of(&nodes, &network).ok_or("no leader")?;
    let applied = nodes[new_leader].raft.apply("+100", Duration::from_secs(1)).await?;
    println!(
        "new leader {} applied +100 at index {} -> counter {}",
        nodes[new_leader].raft.id(),
        applied.index,
        applied.response
    );

    network.connect(nodes[leader].raft.local_addr());
    let last = nodes[new_leader].raft.last_index();
    wait_until("the old leader to catch up", || nodes.iter().all(|n| n.raft.applied_index() >= last)).await?;
    println!("after the old leader rejoined:");
    show(&nodes);

    for node in &nodes {
        node.raft.shutdown().await?;
    }
    Ok(())
}
