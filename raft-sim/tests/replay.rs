//! A seed replays the same run, event for event: the hash of the whole
//! trace (faults, messages, observations, client calls and answers) is the
//! same every time, in either storage mode, and different seeds take
//! different paths.

use raft_sim::StorageMode;
use raft_sim::kv::PlantedBugs;
use raft_sim::linearizability::STATES_MAX;

#[test]
fn the_same_seed_gives_the_same_trace_in_each_storage_mode() {
    let mut hashes = std::collections::BTreeSet::new();
    for storage in StorageMode::ALL {
        for seed in [0, 4, 45, 100, 450] {
            let run = || raft_sim::run_in(seed, PlantedBugs::default(), STATES_MAX, storage);
            let (first, second) = (run(), run());
            assert!(first.events > 1000, "seed {seed} ({storage:?}): only {} events", first.events);
            assert_eq!(
                (first.trace_hash, first.events, first.operations),
                (second.trace_hash, second.events, second.operations),
                "seed {seed} ({storage:?}) took two paths; the first ended:\n{}\nthe second:\n{}",
                first.last_events.join("\n"),
                second.last_events.join("\n"),
            );
            hashes.insert(first.trace_hash);
        }
    }
    // The storage worker reports asynchronously, so a seed takes another
    // path through it than inline: ten runs, ten traces.
    assert_eq!(hashes.len(), 10, "different seeds or modes gave the same trace");
}
