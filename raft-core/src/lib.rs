//! The Raft protocol core of raft-kit.
//!
//! This crate holds what every raft-kit node is made of: the plugin traits
//! that storage and transport crates implement, the one codec for every byte
//! that reaches a disk or a wire, and the Raft node itself.
//!
//! # Layout
//!
//! - [`configuration`]: [`ServerId`], [`ServerAddress`], [`Suffrage`], [`Server`], [`Configuration`].
//! - [`log`]: [`Log`], [`LogKind`] and the [`LogStore`] trait with its [`StoreError`].
//! - [`stable`]: the [`StableStore`] trait (term, vote, commit index).
//! - [`lock`]: [`lock::LockFile`], the exclusive lock durable stores take on their files.
//! - [`snapshot`]: [`SnapshotMeta`], the [`SnapshotStore`] trait and its [`SnapshotSink`].
//! - [`file_snapshot`]: [`FileSnapshotStore`], snapshots on disk, atomic and CRC-checked.
//! - [`discard_snapshot`]: [`DiscardSnapshotStore`], which keeps nothing.
//! - [`commands`]: the RPC messages (AppendEntries, RequestVote, PreVote, InstallSnapshot, TimeoutNow).
//! - [`transport`]: the async [`Transport`] trait and incoming [`Rpc`]s.
//! - [`fsm`]: the user's state machine, [`Fsm`] and [`FsmSnapshot`].
//! - [`codec`]: the versioned binary encoding (layout in `docs/codec.md`).
//! - [`Raft`]: the node handle — commands, reads, snapshots, membership, transfer.
//! - [`config`]: [`Config`] and its validation; [`error`]: [`RaftError`].
//! - [`observer`]: [`Observation`]s; [`state`]: [`RaftState`] and [`Stats`].
//! - [`recovery`]: `has_existing_state` and `recover_cluster`, for operators.
//!
//! # Quick start
//!
//! Encode an entry the way every store and transport does, and decode it back:
//!
//! ```
//! use raft_core::{codec, Log};
//!
//! let log = Log::command(1, 1, "set x = 1");
//! let bytes = codec::log_to_bytes(&log);
//! assert_eq!(codec::decode_log(bytes)?, log);
//! # Ok::<(), raft_core::codec::DecodeError>(())
//! ```

pub mod codec;
pub mod commands;
pub mod configuration;
pub mod discard_snapshot;
pub mod file_snapshot;
pub mod fsm;
pub mod lock;
pub mod log;
pub mod snapshot;
pub mod stable;
pub mod transport;

pub use commands::*;
pub use configuration::{
    Configuration, ConfigurationChange, ConfigurationError, Server, ServerAddress, ServerId, Suffrage,
};
pub use discard_snapshot::DiscardSnapshotStore;
pub use file_snapshot::FileSnapshotStore;
pub use fsm::{Fsm, FsmError, FsmSnapshot};
pub use log::{Log, LogKind, LogStore, StoreError};
pub use snapshot::{
    NewSnapshot, SNAPSHOT_VERSION, SnapshotError, SnapshotMeta, SnapshotReader, SnapshotSink, SnapshotStore,
};
pub use stable::StableStore;
pub use transport::{
    AppendPipeline, BoxFuture, Responder, Rpc, RpcReceiver, RpcRejection, SnapshotStream, Transport,
    TransportError,
};

mod api;
mod blocking;
mod commitment;
pub mod config;
mod election;
pub mod error;
mod log_cache;
pub mod observer;
mod raft;
pub mod recovery;
mod replication;
pub mod state;
mod storage;
mod task;
#[cfg(test)]
mod testing;
mod watch;

pub use api::{ApplyResponse, Raft};

/// The highest term a node adopts or campaigns in (2^63 − 1). A request or
/// answer carrying a higher one is refused, never adopted, so that
/// `term + 1` can never wrap; a node at this term no longer campaigns.
pub const TERM_MAX: u64 = (1 << 63) - 1;

/// The highest log index a node accepts (2^63 − 1). A request naming a
/// higher one is refused, so that no index arithmetic can overflow.
pub const INDEX_MAX: u64 = (1 << 63) - 1;
pub use config::{Config, ConfigError, ReloadableConfig};
pub use error::RaftError;
pub use observer::Observation;
pub use state::{RaftState, Stats};
