//! A durable raft-kit [`LogStore`](raft_core::LogStore) and [`StableStore`](raft_core::StableStore) on [redb], a pure-Rust
//! embedded database with ACID transactions.
//!
//! One [`RedbStore`] holds the log and the stable values in one database
//! file, as raft-boltdb does, so a node needs one store for both.
//!
//! # Layout
//!
//! - [`RedbStore`]: the store; [`RedbOptions`] opens it.
//! - [`Durability`]: what a returned write promises.
//! - The file layout, and what damage is detected: `docs/storage-format.md`
//!   in this crate.
//!
//! # Quick start
//!
//! ```
//! use raft_core::{Log, LogStore, StableStore};
//! use store_redb::RedbOptions;
//!
//! let dir = tempfile::tempdir()?;
//! let store = RedbOptions::new(dir.path().join("raft.redb")).open()?;
//! store.store_logs(&[Log::command(1, 1, "set x = 1")])?;
//! store.set_u64(b"CurrentTerm", 1)?;
//! drop(store);
//! let store = RedbOptions::new(dir.path().join("raft.redb")).open()?;
//! assert_eq!(store.get_log(1)?.map(|l| l.data), Some("set x = 1".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod store;

pub use store::{Durability, FORMAT_VERSION, RedbOptions, RedbStore};
