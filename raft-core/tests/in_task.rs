//! A node whose log store and FSM say they never block
//! (`LogStore::writes_never_block`, `Fsm::never_blocks`) runs without a
//! storage thread or an FSM thread, on any runtime, including a
//! current-thread one; a node whose parts may block gets both threads; and
//! `LogWriter::Task` runs the storage worker as a task.
//!
//! This file holds one test only: it counts the process's threads by name,
//! which other tests running beside it would disturb.

mod support;

use raft_core::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
use support::*;

const SECOND: Duration = Duration::from_secs(1);

/// How many of this process's threads are called `name`.
fn threads_named(name: &str) -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[test]
fn never_blocking_parts_run_on_the_nodes_tasks_and_blocking_ones_get_threads() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let network = transport_inmem::InmemNetwork::new(7);
        let sum = Arc::new(AtomicU64::new(0));
        let fsm = SumFsm { sum: sum.clone(), as_task: true };
        let raft = Raft::new(
            config("node-0"),
            fsm,
            MemLogStore::new(),
            MemStableStore::new(),
            InmemSnapshotStore::new(),
            network.transport(addr(0)),
        )
        .await
        .expect("start");
        assert_eq!((threads_named("raft-storage"), threads_named("raft-fsm")), (0, 0));

        raft.bootstrap_cluster(configuration(1)).await.expect("bootstrap");
        wait_for("leadership", SECOND * 5, || raft.is_leader().then_some(())).await;
        assert_eq!(raft.apply(num(5), SECOND).await.expect("apply").response, 5);
        assert_eq!(raft.apply(num(7), SECOND).await.expect("apply").response, 12);
        let taken = raft.snapshot().await.expect("snapshot").meta().clone();
        assert!(taken.index >= 3, "{taken:?}");

        // A restore reads the snapshot on the FSM task: on a current-thread
        // runtime there is no other thread to move it to.
        let backup = 1000u64.to_le_bytes().to_vec();
        let meta = SnapshotMeta {
            id: "backup".into(),
            index: 50,
            term: 1,
            configuration: Configuration::default(),
            configuration_index: 0,
            size: backup.len() as u64,
            version: SNAPSHOT_VERSION,
        };
        raft.restore(&meta, Box::new(std::io::Cursor::new(backup)), SECOND * 5).await.expect("restore");
        assert_eq!(sum.load(Ordering::SeqCst), 1000);
        assert_eq!(raft.apply(num(5), SECOND).await.expect("apply after restore").response, 1005);
        raft.shutdown().await.expect("shutdown");

        // The same node with a store that may block and an FSM on a thread.
        let logs = Arc::new(GatedLogStore::default());
        let fsm = SumFsm { sum: Arc::default(), as_task: false };
        let raft = Raft::new(
            config("node-1"),
            fsm,
            logs,
            MemStableStore::new(),
            InmemSnapshotStore::new(),
            network.transport(addr(1)),
        )
        .await
        .expect("start");
        // A new thread names itself once it runs, so wait for the names.
        wait_for("a storage and an FSM thread", SECOND * 5, || {
            ((threads_named("raft-storage"), threads_named("raft-fsm")) == (1, 1)).then_some(())
        })
        .await;
        raft.shutdown().await.expect("shutdown");
        assert_eq!((threads_named("raft-storage"), threads_named("raft-fsm")), (0, 0), "joined at shutdown");

        // `LogWriter::Task`: the threaded mode's worker, as a task of this
        // current-thread runtime; refused for a store that may block.
        let refused = Raft::new(
            config("node-2").with_log_writer(LogWriter::Task),
            SumFsm { sum: Arc::default(), as_task: true },
            Arc::new(GatedLogStore::default()),
            MemStableStore::new(),
            InmemSnapshotStore::new(),
            network.transport(addr(2)),
        )
        .await;
        assert!(
            matches!(refused, Err(RaftError::Config(ConfigError::TaskWriterWouldBlock))),
            "{:?}",
            refused.err()
        );
        let sum = Arc::new(AtomicU64::new(0));
        let raft = Raft::new(
            config("node-3").with_log_writer(LogWriter::Task),
            SumFsm { sum: sum.clone(), as_task: true },
            MemLogStore::new(),
            MemStableStore::new(),
            InmemSnapshotStore::new(),
            network.transport(addr(3)),
        )
        .await
        .expect("start");
        raft.bootstrap_cluster(Configuration::new(vec![Server::voter(id(3), addr(3))]))
            .await
            .expect("bootstrap");
        wait_for("leadership", SECOND * 5, || raft.is_leader().then_some(())).await;
        assert_eq!(raft.apply(num(4), SECOND).await.expect("apply").response, 4);
        assert_eq!(threads_named("raft-storage"), 0, "the worker is a task");
        raft.shutdown().await.expect("shutdown");
    });
}
