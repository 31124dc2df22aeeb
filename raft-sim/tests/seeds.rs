//! CI's seed set: seeds 0..500 of mixed faults, each in both storage modes
//! (inline, and through the storage worker), none with a violation. Any
//! failure prints its report (faults, last events, replay command).

use raft_sim::StorageMode;
use raft_sim::kv::PlantedBugs;
use raft_sim::linearizability::STATES_MAX;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const SEEDS: u64 = 500;

#[test]
fn five_hundred_seeds_of_mixed_faults_pass_in_both_storage_modes() {
    let next = Arc::new(AtomicU64::new(0));
    let workers = std::thread::available_parallelism().map_or(2, usize::from).clamp(2, 8);
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let next = next.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                loop {
                    let run = next.fetch_add(1, Ordering::Relaxed);
                    if run >= SEEDS * 2 {
                        return failures;
                    }
                    let (seed, storage) = (run / 2, StorageMode::ALL[(run % 2) as usize]);
                    let report = raft_sim::run_in(seed, PlantedBugs::default(), STATES_MAX, storage);
                    if report.violation.is_some() {
                        failures.push(report.to_string());
                    }
                }
            })
        })
        .collect();
    let failures: Vec<String> =
        handles.into_iter().flat_map(|h| h.join().expect("a worker panicked")).collect();
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        SEEDS * 2,
        failures.join("\n\n")
    );
}

/// Seeds the soak of seeds 0..20000 failed on, kept as regressions.
/// 3230 and eleven more: a node whose start failed on an injected write
/// failure was taken for one that can never start (the harness now retries
/// on a working store). 4658, 13309, 15094, 16263: a follower holding an
/// uncommitted user-restored snapshot acknowledged a later leader's entries
/// "inside" it, and committed entries were lost (fixed in the core).
/// 34509 (soak of 20000..40000): two cut-off leaders each restored a backup
/// at once, before any quorum held it; the next leader had neither, both
/// refused its entries, and nothing committed again. User restores now
/// commit through the log.
const SOAK_FOUND: [u64; 17] = [
    3230, 4658, 6863, 7661, 8303, 9375, 11251, 11377, 13309, 13597, 13828, 13910, 15094, 15488, 16263, 19312,
    34509,
];

/// Seeds the worker storage mode found when it was added (inline, they
/// passed), all after injected write failures:
/// - 304, 375: a follower's log ended below its commit index; the leader's
///   snapshot covering the lost entries was taken for stale, answered
///   "success" without being installed, and leader and follower traded that
///   snapshot and a refusal of the entries after it forever, with no virtual
///   time passing (`protocol/snapshot.rs::judge_offer`; replication also
///   backs off now when a follower refuses entries it acknowledged).
/// - 217255 (log matching): a node snapshotted at an index where its log
///   still held the stale entry a failed truncation left, kept it as a
///   trailing entry and appended the next leader's entries after it
///   (`protocol/snapshot.rs::compaction`: the log starts afresh then).
/// - 215250 (leader completeness, state machine safety): a follower took the
///   leader's commit index before its write was durable; the write failed,
///   the log re-read from the store held stale entries at those indexes, and
///   the FSM applied them (a follower now commits once its write is durable).
const WORKER_FOUND: [u64; 4] = [304, 375, 215250, 217255];

#[test]
fn the_seeds_the_soak_found_pass() {
    for seed in SOAK_FOUND.into_iter().chain(WORKER_FOUND) {
        for storage in StorageMode::ALL {
            let report = raft_sim::run_in(seed, PlantedBugs::default(), STATES_MAX, storage);
            assert!(report.violation.is_none(), "{report}");
        }
    }
}
