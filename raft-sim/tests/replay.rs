//! A seed replays the same run, event for event: the hash of the whole
//! trace (faults, messages, observations, client calls and answers) is the
//! same every time, and different seeds take different paths.

use raft_sim::kv::PlantedBugs;

#[test]
fn the_same_seed_gives_the_same_trace() {
    let mut hashes = std::collections::BTreeSet::new();
    for seed in [0, 4, 45, 100, 450] {
        let first = raft_sim::run(seed, PlantedBugs::default());
        let second = raft_sim::run(seed, PlantedBugs::default());
        assert!(first.events > 1000, "seed {seed}: only {} events", first.events);
        assert_eq!(
            (first.trace_hash, first.events, first.operations),
            (second.trace_hash, second.events, second.operations),
            "seed {seed} took two paths; the first ended:\n{}\nthe second:\n{}",
            first.last_events.join("\n"),
            second.last_events.join("\n"),
        );
        hashes.insert(first.trace_hash);
    }
    assert_eq!(hashes.len(), 5, "different seeds gave the same trace");
}
