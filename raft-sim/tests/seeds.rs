//! CI's seed set: seeds 0..500 of mixed faults, none with a violation.
//! Any failure prints its report (faults, last events, replay command).

use raft_sim::kv::PlantedBugs;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const SEEDS: u64 = 500;

#[test]
fn five_hundred_seeds_of_mixed_faults_pass() {
    let next = Arc::new(AtomicU64::new(0));
    let workers = std::thread::available_parallelism().map_or(2, usize::from).clamp(2, 8);
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let next = next.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= SEEDS {
                        return failures;
                    }
                    let report = raft_sim::run(seed, PlantedBugs::default());
                    if report.violation.is_some() {
                        failures.push(report.to_string());
                    }
                }
            })
        })
        .collect();
    let failures: Vec<String> =
        handles.into_iter().flat_map(|h| h.join().expect("a worker panicked")).collect();
    assert!(failures.is_empty(), "{} of {SEEDS} seeds failed:\n{}", failures.len(), failures.join("\n\n"));
}
