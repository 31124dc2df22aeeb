//! A durable raft-kit [`LogStore`](raft_core::LogStore) and
//! [`StableStore`](raft_core::StableStore) on LMDB, through [heed].
//!
//! One [`LmdbStore`] holds the log and the stable values in one LMDB
//! environment, as raft-boltdb does, so a node needs one store for both.
//!
//! Every entry carries a CRC32, a hole inside the log reads as
//! [`StoreError::Corrupt`](raft_core::StoreError::Corrupt), an emptied or
//! truncated data file is refused on open, and an open store holds an
//! exclusive lock on its directory. But **LMDB keeps no checksums of its own
//! pages**: damage to a B-tree page can go unnoticed or, at worst, crash the
//! process. Where the disk is not trusted, `store-redb` checks every page.
//!
//! # Layout
//!
//! - [`LmdbStore`]: the store; [`LmdbOptions`] opens it.
//! - [`Durability`]: what a returned write promises.
//! - `env.rs` (private): the only `unsafe` code, opening and resizing the environment.
//! - The file layout, and what damage is detected: `docs/storage-format.md`
//!   in this crate.
//!
//! # Quick start
//!
//! ```
//! use raft_core::{Log, LogStore, StableStore};
//! use store_lmdb::LmdbOptions;
//!
//! let dir = tempfile::tempdir()?;
//! let store = LmdbOptions::new(dir.path()).open()?;
//! store.store_logs(&[Log::command(1, 1, "set x = 1")])?;
//! store.set_u64(b"CurrentTerm", 1)?;
//! drop(store);
//! let store = LmdbOptions::new(dir.path()).open()?;
//! assert_eq!(store.get_log(1)?.map(|l| l.data), Some("set x = 1".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod env;
mod store;

pub use store::{Durability, FORMAT_VERSION, LmdbOptions, LmdbStore};
