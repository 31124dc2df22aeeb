//! The Raft protocol's decisions, apart from I/O: synchronous code that
//! never awaits, never reads a clock and never calls a store.
//!
//! Being built (issue #24); so far:
//! - [`quorum`]: who must agree — the one place a quorum is counted, for
//!   elections, commitment, read index confirmation and the leader's lease.

pub(crate) mod quorum;
