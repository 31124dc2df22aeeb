//! In-memory stores for raft-kit: [`MemLogStore`], [`MemStableStore`] and
//! [`InmemSnapshotStore`].
//!
//! They keep everything in memory and lose it when dropped, which makes them
//! the stores of choice for tests, for examples, and for nodes whose state is
//! rebuilt from the cluster on every start. Each is safe to share between
//! threads, and cloning one (through an `Arc`) shares the same state, so a test
//! can "restart" a node by handing its stores to a new one.
//!
//! # Layout
//!
//! - [`log`](MemLogStore): the log, a contiguous deque indexed from its first entry.
//! - [`stable`](MemStableStore): a hash map of keys to values.
//! - [`snapshot`](InmemSnapshotStore): snapshots kept as byte buffers, the newest `retain` of them.
//!
//! # Quick start
//!
//! ```
//! use raft_core::{Log, LogStore};
//! use store_mem::MemLogStore;
//!
//! let store = MemLogStore::new();
//! store.store_logs(&[Log::command(1, 1, "a"), Log::command(2, 1, "b")])?;
//! assert_eq!((store.first_index()?, store.last_index()?), (1, 2));
//! # Ok::<(), raft_core::StoreError>(())
//! ```

mod log;
mod snapshot;
mod stable;

pub use log::MemLogStore;
pub use snapshot::InmemSnapshotStore;
pub use stable::MemStableStore;
