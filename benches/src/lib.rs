//! Benchmarks for raft-kit: criterion benchmarks of the stores, the snapshot
//! store and the codec (`cargo bench -p benches`), the cluster benchmark
//! (`cargo run --release -p benches --bin cluster`), and the report that
//! turns their results into `docs/benchmarks.md`
//! (`cargo run --release -p benches --bin report`).
//!
//! This crate is not a default member of the workspace, so plain `cargo
//! build` and `cargo test` do not compile criterion.
//!
//! # Layout
//!
//! - [`raw`]: the raw-file baseline the stores are measured against.
//! - [`cluster`]: the three-node cluster and closed-loop clients of the cluster benchmarks.
//! - [`entries`]: the entries the benchmarks write.

pub mod cluster;
pub mod entries;
pub mod raw;
