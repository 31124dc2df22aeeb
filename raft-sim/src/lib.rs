//! Deterministic simulation of whole raft-kit clusters.
//!
//! A run drives the real node code, the same [`Raft`](raft_core::Raft) users
//! run, with in-task stores, an in-task FSM and the in-memory transport, all
//! on one current-thread tokio runtime whose clock is paused: a simulated
//! minute takes well under a second, and every random choice (election
//! jitter, the fault schedule, the clients' choices, message loss) is drawn
//! from one seed, so a seed replays the same run, event for event, on any
//! machine. See `docs/simulation.md` for what is simulated and what is not.
//!
//! # Layout
//!
//! - [`sim`]: one run ([`run`]) and its [`Report`].
//! - [`nemesis`]: what a seed decides: the [`Plan`](nemesis::Plan) and its faults.
//! - [`cluster`]: the simulated nodes: start, crash, restart, observe.
//! - [`workload`]: the clients, and the history they record.
//! - [`kv`]: the key-value FSM (put, delete, append), and the bugs a test may plant.
//! - [`linearizability`]: the checker of the history.
//! - [`invariants`]: the Raft invariants, checked as the run goes.
//! - [`stores`]: the simulation's log store (failures on demand).
//! - [`trace`]: the run's trace, its hash and its tail.
//!
//! # Quick start
//!
//! ```
//! let report = raft_sim::run(7, raft_sim::kv::PlantedBugs::default());
//! assert_eq!(report.violation, None, "{report}");
//! // The same seed takes the same path.
//! assert_eq!(raft_sim::run(7, Default::default()).trace_hash, report.trace_hash);
//! ```

pub mod cluster;
pub mod invariants;
pub mod kv;
pub mod linearizability;
pub mod nemesis;
pub mod sim;
pub mod stores;
pub mod trace;
pub mod workload;

pub use nemesis::StorageMode;
pub use sim::{Report, run, run_in, run_with};
