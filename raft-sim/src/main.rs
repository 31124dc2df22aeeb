//! The soak command: runs many seeds of mixed faults, with a progress bar
//! and a summary; any failure prints its seed, its faults, the last events
//! before the violation and the command that replays it.
//!
//! ```sh
//! cargo run --release -p raft-sim -- --seeds 100000
//! cargo run --release -p raft-sim -- --replay 1234 --storage worker
//! ```

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use raft_sim::StorageMode;
use raft_sim::kv::PlantedBugs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deterministic simulation of raft-kit clusters under mixed faults.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Runs this one seed and prints its report and trace tail.
    #[arg(long)]
    replay: Option<u64>,
    /// Worker threads, each running seeds on its own runtime (default: the CPUs).
    #[arg(long)]
    jobs: Option<usize>,
    /// Plants a bug the simulator must find: fsm-drops-writes, stale-reads, store-loses-last-batch.
    #[arg(long = "plant")]
    plant: Vec<String>,
    /// Stops at the first failing seed.
    #[arg(long)]
    fail_fast: bool,
    /// How the nodes write their logs: inline, worker (the storage worker
    /// of durable stores, as a task), or both (each seed runs twice; a
    /// replay takes one).
    #[arg(long, default_value = "both")]
    storage: String,
    /// The most states the linearizability search remembers per key; a
    /// seed it gives up on is listed as undecided, to be replayed with more.
    #[arg(long, default_value_t = raft_sim::linearizability::STATES_MAX)]
    states_max: usize,
}

fn planted(names: &[String]) -> Result<PlantedBugs, String> {
    let mut bugs = PlantedBugs::default();
    for name in names {
        match name.as_str() {
            "fsm-drops-writes" => bugs.fsm_drops_writes = true,
            "stale-reads" => bugs.stale_reads = true,
            "store-loses-last-batch" => bugs.store_loses_last_batch = true,
            other => return Err(format!("unknown bug to plant: {other}")),
        }
    }
    Ok(bugs)
}

fn main() {
    let args = Args::parse();
    let bugs = match planted(&args.plant) {
        Ok(bugs) => bugs,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let modes: Vec<StorageMode> = if args.storage == "both" {
        StorageMode::ALL.to_vec()
    } else {
        match args.storage.parse() {
            Ok(mode) => vec![mode],
            Err(error) => {
                eprintln!("{error}");
                std::process::exit(2);
            }
        }
    };
    if let Some(seed) = args.replay {
        if modes.len() != 1 {
            eprintln!("--replay runs one storage mode: add --storage inline or --storage worker");
            std::process::exit(2);
        }
        let report = raft_sim::run_in(seed, bugs, args.states_max, modes[0]);
        println!("{report}");
        println!(
            "  trace hash {:016x}, {} events, {} operations, {:?} virtual",
            report.trace_hash, report.events, report.operations, report.virtual_time
        );
        std::process::exit(i32::from(report.violation.is_some()));
    }
    let jobs =
        args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    let next = Arc::new(AtomicU64::new(args.start));
    let end = args.start + args.seeds;
    let bar = ProgressBar::new(args.seeds * modes.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} seeds ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let failures: Arc<Mutex<Vec<raft_sim::Report>>> = Arc::default();
    let totals = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)));
    let undecided: Arc<Mutex<Vec<(u64, StorageMode)>>> = Arc::default();
    let started = Instant::now();
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (next, bar, failures, totals) = (next.clone(), bar.clone(), failures.clone(), totals.clone());
            let (fail_fast, states_max) = (args.fail_fast, args.states_max);
            let (undecided, modes) = (undecided.clone(), modes.clone());
            std::thread::spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        return;
                    }
                    for &mode in &modes {
                        let report = raft_sim::run_in(seed, bugs, states_max, mode);
                        totals.0.fetch_add(report.operations as u64, Ordering::Relaxed);
                        totals.1.fetch_add(report.virtual_time.as_millis() as u64, Ordering::Relaxed);
                        if let Some(key) = &report.undecided {
                            totals.2.fetch_add(1, Ordering::Relaxed);
                            let line = format!("undecided: seed {seed} ({} storage), key {key}", mode.name());
                            if bar.is_hidden() {
                                eprintln!("{line}");
                            } else {
                                bar.println(line);
                            }
                            undecided
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push((seed, mode));
                        }
                        if report.violation.is_some() {
                            // A hidden bar (no terminal) prints nothing: say it plainly.
                            if bar.is_hidden() {
                                eprintln!("{report}");
                            } else {
                                bar.println(report.to_string());
                            }
                            let mut failures =
                                failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            failures.push(report);
                            bar.set_message(format!("{} failed", failures.len()));
                            if fail_fast {
                                next.store(end, Ordering::Relaxed);
                            }
                        }
                        bar.inc(1);
                    }
                    if bar.is_hidden() && (seed + 1).is_multiple_of(10_000) {
                        eprintln!("{} runs done", bar.position());
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    bar.finish();
    let elapsed = started.elapsed();
    let failures = failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let ran = bar.position();
    println!(
        "{ran} runs ({} seeds × {}) in {:.1} s ({:.1} runs/s on {jobs} threads): {} failed, {} undecided; {} operations, {:.1} virtual minutes",
        args.seeds,
        modes.iter().map(|mode| mode.name()).collect::<Vec<_>>().join(" and "),
        elapsed.as_secs_f64(),
        ran as f64 / elapsed.as_secs_f64().max(1e-9),
        failures.len(),
        totals.2.load(Ordering::Relaxed),
        totals.0.load(Ordering::Relaxed),
        Duration::from_millis(totals.1.load(Ordering::Relaxed)).as_secs_f64() / 60.0,
    );
    for report in failures.iter() {
        println!(
            "failed: seed {} ({} storage) — {}\n  replay: {}",
            report.seed,
            report.storage.name(),
            report.violation.as_deref().unwrap_or(""),
            report.replay_command()
        );
    }
    let mut undecided = undecided.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    undecided.sort_unstable();
    for (seed, mode) in undecided {
        println!(
            "undecided: seed {seed} (the linearizability search gave up)\n  decide with more states: cargo run --release -p raft-sim -- --replay {seed} --storage {} --states-max {}",
            mode.name(),
            args.states_max.saturating_mul(10)
        );
    }
    std::process::exit(i32::from(!failures.is_empty()));
}
