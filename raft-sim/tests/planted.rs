//! The checks can fail: each bug planted in the workload side is reported,
//! at the seed recorded here, and the same seed passes without it.

use raft_sim::kv::PlantedBugs;

fn assert_found(seed: u64, bugs: PlantedBugs, expected: &str) {
    let report = raft_sim::run(seed, bugs);
    let violation =
        report.violation.clone().unwrap_or_else(|| panic!("{bugs:?} went unnoticed at seed {seed}"));
    assert!(violation.contains(expected), "seed {seed}: {violation}");
    assert!(
        report.replay_command().contains(&format!("--replay {seed} --plant")),
        "{}",
        report.replay_command()
    );
    let clean = raft_sim::run(seed, PlantedBugs::default());
    assert_eq!(clean.violation, None, "seed {seed} fails without the planted bug:\n{clean}");
}

#[test]
fn an_fsm_that_drops_a_write_is_found() {
    assert_found(1, PlantedBugs { fsm_drops_writes: true, ..Default::default() }, "not linearizable");
}

#[test]
fn reads_from_the_leader_without_read_index_are_found_stale() {
    assert_found(66, PlantedBugs { stale_reads: true, ..Default::default() }, "not linearizable");
}

#[test]
fn a_store_that_loses_its_last_batch_on_restart_is_found() {
    // Seed 3 found it until idle leaders began sending their commit index
    // every `commit_timeout`, which changed every schedule; 4 finds it now.
    assert_found(
        4,
        PlantedBugs { store_loses_last_batch: true, ..Default::default() },
        "leader completeness",
    );
}
