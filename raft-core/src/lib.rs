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
//! - [`observer`]: [`Observation`]s and filtered [`Observer`]s; [`state`]: [`RaftState`],
//!   [`Stats`] and the [`Status`] that [`Raft::watch_status`] publishes.
//! - [`metrics`]: the metrics a node records through the `metrics` facade
//!   (names, units and meanings in `docs/metrics.md`).
//! - [`recovery`]: `has_existing_state` and `recover_cluster`, for operators.
//! - `protocol` (private, being built): the node's protocol state (`Core`)
//!   and the decisions on it as synchronous code with no I/O — quorums,
//!   commitment, election rules and tallies, vote granting, AppendEntries
//!   admission and log matching, snapshot offers, leadership checks, the
//!   log's terms in memory (`docs/architecture.md`, "Module layers").
//!
//! Nodes log through `tracing`, inside a `raft{node=…}` span with one
//! `follower{term=…}`, `candidate{term=…}` or `leader{term=…}` span per
//! stretch of one role in one term, and an `rpc{kind, from, term}` span per
//! request handled. With the `serde` feature, [`Config`] (for example from
//! TOML, durations as `"150ms"`), [`Configuration`], the ids, [`Stats`],
//! [`Status`] and [`SnapshotMeta`] serialize.
//!
//! # Quick start
//!
//! A one-node cluster on in-memory stores and the in-process transport (the
//! `raft-kit` crate's features pick durable stores and TCP instead):
//!
//! ```
//! use raft_core::{Config, Configuration, Fsm, FsmError, FsmSnapshot, Log, Raft, Server, SnapshotReader};
//! use std::time::Duration;
//!
//! /// Adds up the numbers it is sent.
//! #[derive(Default)]
//! struct Sum(u64);
//!
//! impl Fsm for Sum {
//!     type Response = u64;
//!     fn apply(&mut self, log: &Log) -> u64 {
//!         self.0 += std::str::from_utf8(&log.data).ok().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
//!         self.0
//!     }
//!     fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
//!         Err(FsmError::new("this example does not snapshot"))
//!     }
//!     fn restore(&mut self, _: SnapshotReader) -> Result<(), FsmError> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let network = transport_inmem::InmemNetwork::new(1);
//! let (logs, stable, snapshots) =
//!     (store_mem::MemLogStore::new(), store_mem::MemStableStore::new(), store_mem::InmemSnapshotStore::new());
//! let raft = Raft::new(Config::new("node-1"), Sum::default(), logs, stable, snapshots, network.transport("addr-1"))
//!     .await?;
//! let me = Server::voter(raft.id().clone(), raft.local_addr().clone());
//! raft.bootstrap_cluster(Configuration::new(vec![me])).await?;
//! let mut status = raft.watch_status();
//! status.wait_for(|s| s.leader.is_some()).await?;
//! let applied = raft.apply("40", Duration::from_secs(1)).await?;
//! assert_eq!(raft.apply("2", Duration::from_secs(1)).await?.response, 42);
//! assert!(applied.index > 0);
//! raft.shutdown().await?;
//! # Ok(()) }
//! ```
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
#![cfg_attr(docsrs, feature(doc_cfg))]

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
pub use file_snapshot::{FileSnapshotOptions, FileSnapshotStore};
pub use fsm::{Fsm, FsmError, FsmSnapshot};
pub use log::{Log, LogKind, LogStore, StoreError};
pub use snapshot::{
    NewSnapshot, SNAPSHOT_VERSION, Snapshot, SnapshotError, SnapshotMeta, SnapshotReader, SnapshotSink,
    SnapshotStore,
};
pub use stable::StableStore;
pub use transport::{
    AppendPipeline, BoxFuture, Responder, Rpc, RpcReceiver, RpcRejection, SnapshotStream, Transport,
    TransportError,
};

mod api;
mod blocking;
pub mod config;
pub mod error;
mod log_cache;
pub mod metrics;
pub mod observer;
mod protocol;
mod raft;
pub mod recovery;
mod replication;
#[cfg(feature = "serde")]
mod serde_duration;
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
pub use config::{Config, ConfigError, LogWriter, ReloadableConfig};
pub use error::RaftError;
pub use observer::{Observation, Observer};
pub use state::{RaftState, Stats, Status};
