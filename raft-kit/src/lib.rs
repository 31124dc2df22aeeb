//! raft-kit: Raft consensus for Rust, with the stores and transports to put it
//! in production.
//!
//! This umbrella crate re-exports the protocol core ([`raft_core`], also at the
//! root of this crate) and the plugins chosen with feature flags.
//!
//! # Layout
//!
//! - the crate root: everything of [`raft_core`] (traits, messages, codec).
//! - [`store`]: the storage plugins enabled by features (`mem` by default).
//! - [`transport`]: the transport plugins enabled by features.
//! - [`prelude`]: the traits and types most programs name.
//!
//! # Features
//!
//! | feature | what it enables |
//! |---------|-----------------|
//! | `mem` (default) | `store::mem`: in-memory log, stable and snapshot stores |
//! | `lmdb` | `store::lmdb`: the durable LMDB store (heed) |
//! | `redb` | `store::redb`: the durable redb store |
//! | `wal` | `store::wal`: the segmented write-ahead log store, the fastest durable one |
//! | `inmem` | `transport::inmem`: the in-process transport with fault injection |
//! | `tcp` | `transport::tcp`: the tokio TCP transport |
//! | `tls` | mutual TLS for the TCP transport (implies `tcp`) |
//! | `serde` | `Serialize`/`Deserialize` for `Config` (e.g. from TOML), `Configuration`, `ServerId`, `ServerAddress`, `Stats`, `Status` and `SnapshotMeta` |
//! | `full` | all of the above |
//!
//! The file and discard snapshot stores are part of the core and always
//! available.
//!
//! # Choosing a backend
//!
//! A node on the durable LMDB store, its snapshots in files (feature `lmdb`):
//!
//! ```
//! # #[cfg(all(feature = "lmdb", feature = "inmem"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let network = raft_kit::transport::inmem::InmemNetwork::new(1);
//! # let transport = network.transport("node-1");
//! # let fsm = raft_kit::doc_fsm::Counter::default();
//! use raft_kit::prelude::*;
//! use raft_kit::store::lmdb::LmdbStore;
//! use raft_kit::FileSnapshotStore;
//! use std::sync::Arc;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Arc::new(LmdbStore::open(dir.path().join("raft"))?);
//! let snapshots = FileSnapshotStore::open(dir.path().join("snapshots"))?;
//! let raft = Raft::new(Config::new("node-1"), fsm, store.clone(), store, snapshots, transport).await?;
//! # raft.shutdown().await?;
//! # Ok(()) }
//! # #[cfg(not(all(feature = "lmdb", feature = "inmem")))] fn main() {}
//! ```
//!
//! The same on redb (feature `redb`):
//!
//! ```
//! # #[cfg(all(feature = "redb", feature = "inmem"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let network = raft_kit::transport::inmem::InmemNetwork::new(1);
//! # let transport = network.transport("node-1");
//! # let fsm = raft_kit::doc_fsm::Counter::default();
//! use raft_kit::prelude::*;
//! use raft_kit::store::redb::RedbStore;
//! use raft_kit::FileSnapshotStore;
//! use std::sync::Arc;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Arc::new(RedbStore::open(dir.path().join("raft.redb"))?);
//! let snapshots = FileSnapshotStore::open(dir.path().join("snapshots"))?;
//! let raft = Raft::new(Config::new("node-1"), fsm, store.clone(), store, snapshots, transport).await?;
//! # raft.shutdown().await?;
//! # Ok(()) }
//! # #[cfg(not(all(feature = "redb", feature = "inmem")))] fn main() {}
//! ```
//!
//! The same on the write-ahead log (feature `wal`), which takes a directory:
//!
//! ```
//! # #[cfg(all(feature = "wal", feature = "inmem"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let network = raft_kit::transport::inmem::InmemNetwork::new(1);
//! # let transport = network.transport("node-1");
//! # let fsm = raft_kit::doc_fsm::Counter::default();
//! use raft_kit::prelude::*;
//! use raft_kit::store::wal::WalStore;
//! use raft_kit::FileSnapshotStore;
//! use std::sync::Arc;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Arc::new(WalStore::open(dir.path().join("wal"))?);
//! let snapshots = FileSnapshotStore::open(dir.path().join("snapshots"))?;
//! let raft = Raft::new(Config::new("node-1"), fsm, store.clone(), store, snapshots, transport).await?;
//! # raft.shutdown().await?;
//! # Ok(()) }
//! # #[cfg(not(all(feature = "wal", feature = "inmem")))] fn main() {}
//! ```
//!
//! In memory, for tests and nodes rebuilt from the cluster (feature `mem`):
//!
//! ```
//! # #[cfg(all(feature = "mem", feature = "inmem"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let network = raft_kit::transport::inmem::InmemNetwork::new(1);
//! # let transport = network.transport("node-1");
//! # let fsm = raft_kit::doc_fsm::Counter::default();
//! use raft_kit::prelude::*;
//! use raft_kit::store::mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
//!
//! let (logs, stable, snapshots) = (MemLogStore::new(), MemStableStore::new(), InmemSnapshotStore::new());
//! let raft = Raft::new(Config::new("node-1"), fsm, logs, stable, snapshots, transport).await?;
//! # raft.shutdown().await?;
//! # Ok(()) }
//! # #[cfg(not(all(feature = "mem", feature = "inmem")))] fn main() {}
//! ```
//!
//! # Quick start
//!
//! ```
//! # #[cfg(feature = "mem")] {
//! use raft_kit::prelude::*;
//! use raft_kit::store::mem::MemLogStore;
//!
//! let logs = MemLogStore::new();
//! logs.store_logs(&[Log::command(1, 1, "hello")])?;
//! assert_eq!(logs.get_log(1)?.map(|log| log.data), Some("hello".into()));
//! # }
//! # Ok::<(), raft_kit::StoreError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use raft_core::*;

/// The storage plugins enabled by features.
pub mod store {
    /// In-memory stores (feature `mem`).
    #[cfg(feature = "mem")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mem")))]
    pub mod mem {
        pub use store_mem::*;
    }

    /// The durable LMDB store (feature `lmdb`).
    #[cfg(feature = "lmdb")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lmdb")))]
    pub mod lmdb {
        pub use store_lmdb::*;
    }

    /// The durable redb store (feature `redb`).
    #[cfg(feature = "redb")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redb")))]
    pub mod redb {
        pub use store_redb::*;
    }

    /// The segmented write-ahead log store (feature `wal`).
    #[cfg(feature = "wal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "wal")))]
    pub mod wal {
        pub use store_wal::*;
    }
}

/// A tiny state machine for the examples in these docs.
#[doc(hidden)]
pub mod doc_fsm {
    use raft_core::{Fsm, FsmError, FsmSnapshot, Log, SnapshotReader};

    /// Counts the commands it applies.
    #[derive(Default)]
    pub struct Counter(pub u64);

    impl Fsm for Counter {
        type Response = u64;

        fn apply(&mut self, _log: &Log) -> u64 {
            self.0 += 1;
            self.0
        }

        fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
            Err(FsmError::new("the example counter does not snapshot"))
        }

        fn restore(&mut self, _snapshot: SnapshotReader) -> Result<(), FsmError> {
            Ok(())
        }
    }
}

/// The transport plugins enabled by features.
pub mod transport {
    /// The in-process transport with fault injection (feature `inmem`).
    #[cfg(feature = "inmem")]
    #[cfg_attr(docsrs, doc(cfg(feature = "inmem")))]
    pub mod inmem {
        pub use transport_inmem::*;
    }

    /// The tokio TCP transport (feature `tcp`; mutual TLS with `tls`).
    #[cfg(feature = "tcp")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tcp")))]
    pub mod tcp {
        pub use transport_tcp::*;
    }
}

/// The traits and types most programs name.
pub mod prelude {
    pub use raft_core::{
        ApplyResponse, Config, Configuration, Fsm, FsmError, FsmSnapshot, Log, LogKind, LogStore, Raft,
        RaftError, RaftState, Server, ServerAddress, ServerId, SnapshotReader, SnapshotStore, StableStore,
        Transport,
    };
}
