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
//! | `inmem` | `transport::inmem`: the in-process transport with fault injection |
//!
//! The LMDB and redb stores and the TCP transport get their features as
//! their crates land.
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

pub use raft_core::*;

/// The storage plugins enabled by features.
pub mod store {
    /// In-memory stores (feature `mem`).
    #[cfg(feature = "mem")]
    pub mod mem {
        pub use store_mem::*;
    }
}

/// The transport plugins enabled by features.
pub mod transport {
    /// The in-process transport with fault injection (feature `inmem`).
    #[cfg(feature = "inmem")]
    pub mod inmem {
        pub use transport_inmem::*;
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
