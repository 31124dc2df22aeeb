//! The raw-file baseline the stores are measured against; it lives in
//! `raft_conformance::bench` so that users' store benchmarks share it.

pub use raft_conformance::bench::RawLog;
