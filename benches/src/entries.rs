//! The entries the benchmarks write (shared with `raft_conformance::bench`).

pub use raft_conformance::bench::{batch, renumber};
