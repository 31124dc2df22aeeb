//! The Raft protocol's decisions, apart from I/O: synchronous code that
//! never awaits, never reads a clock and never calls a store.
//!
//! Being built (issue #24); so far:
//! - [`quorum`]: who must agree — the one place a quorum is counted, for
//!   elections, commitment, read index confirmation and the leader's lease.
//! - [`log_ids`]: the first index of each term in the log, in memory, so
//!   that log matching never reads a store.
//! - [`commitment`]: the commit index from the voters' match indexes (only
//!   an entry of the leader's own term commits by counting).
//! - [`election`]: whose log is more up to date, the randomized timeouts,
//!   and the next index after a follower's conflict.
//! - [`append`]: a follower's log matching (does the previous entry match,
//!   what hint to send back, what to truncate and append).
//! - [`vote`]: whether to grant a vote or a pre-vote, from what the node
//!   holds in memory; the node carries the decision out.
//! - [`core`]: [`Core`](core::Core), the node's whole protocol state, built
//!   from what recovery read.
//! - [`leader`]: a leader's [`Leadership`](leader::Leadership): commitment,
//!   followers' match indexes, leadership checks, the lease age.
//! - [`snapshot`]: whether a leader's snapshot is stale, held or new.
//! - [`membership`]: whether a membership change may start, waits or is
//!   refused, and its stages (a new voter catches up as a non-voter first).

pub(crate) mod append;
pub(crate) mod commitment;
pub(crate) mod core;
#[cfg(test)]
pub(crate) mod driver;
pub(crate) mod election;
pub(crate) mod leader;
pub(crate) mod log_ids;
pub(crate) mod membership;
pub(crate) mod quorum;
pub(crate) mod snapshot;
pub(crate) mod vote;
