//! The checks can fail: each bug planted in the workload side is reported,
//! at the seed recorded here, in each storage mode, and the same seed passes
//! without it.

use raft_sim::StorageMode::{self, Inline, Worker};
use raft_sim::kv::PlantedBugs;
use raft_sim::linearizability::STATES_MAX;

fn assert_found(seed: u64, storage: StorageMode, bugs: PlantedBugs, expected: &str) {
    let report = raft_sim::run_in(seed, bugs, STATES_MAX, storage);
    let violation = report
        .violation
        .clone()
        .unwrap_or_else(|| panic!("{bugs:?} went unnoticed at seed {seed} ({storage:?})"));
    assert!(violation.contains(expected), "seed {seed} ({storage:?}): {violation}");
    let replay = report.replay_command();
    assert!(replay.contains(&format!("--replay {seed}")) && replay.contains("--plant"), "{replay}");
    assert_eq!(replay.contains("--storage worker"), storage == Worker, "{replay}");
    let clean = raft_sim::run_in(seed, PlantedBugs::default(), STATES_MAX, storage);
    assert_eq!(clean.violation, None, "seed {seed} ({storage:?}) fails without the planted bug:\n{clean}");
}

#[test]
fn an_fsm_that_drops_a_write_is_found() {
    for storage in [Inline, Worker] {
        assert_found(
            1,
            storage,
            PlantedBugs { fsm_drops_writes: true, ..Default::default() },
            "not linearizable",
        );
    }
}

#[test]
fn reads_from_the_leader_without_read_index_are_found_stale() {
    let bugs = PlantedBugs { stale_reads: true, ..Default::default() };
    assert_found(66, Inline, bugs, "not linearizable");
    assert_found(164, Worker, bugs, "not linearizable");
}

#[test]
fn a_store_that_loses_its_last_batch_on_restart_is_found() {
    // Seed 3 found it until idle leaders began sending their commit index
    // every `commit_timeout`, which changed every schedule; 4 finds it now.
    for storage in [Inline, Worker] {
        assert_found(
            4,
            storage,
            PlantedBugs { store_loses_last_batch: true, ..Default::default() },
            "leader completeness",
        );
    }
}
