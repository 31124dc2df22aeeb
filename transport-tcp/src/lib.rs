//! A production TCP [`Transport`](raft_core::Transport) for raft-kit, on tokio.
//!
//! Each connection starts with a handshake naming the wire protocol version,
//! the cluster id and the node id; the accepting side checks the dialing
//! side's before saying anything about itself, and a peer of another cluster
//! or another version is refused with a typed error. The cluster id guards
//! against misconfiguration only: for authentication, give every node the
//! same [`ClusterSecret`] (each side proves it with an HMAC challenge) or use
//! mutual TLS (feature `tls`), where a certificate names the node ids it may
//! claim. Then length-prefixed
//! frames carry `raft_core::codec` messages. Connections to each peer are
//! pooled; concurrent RPCs use separate connections, so a heartbeat never
//! waits behind a large AppendEntries; pipelined AppendEntries get a
//! connection of their own; snapshots stream in chunks. Frames over the
//! configured maximum are refused before anything of their size is
//! allocated. The layout is in `docs/wire-protocol.md`.
//!
//! # Layout
//!
//! - [`TcpTransport`]: the transport; [`TcpConfig`] configures it.
//! - `wire` ([`wire`]): handshake and frame encoding, pure and fuzzable.
//! - [`ClusterSecret`]: the optional shared secret of the handshake's proofs.
//! - Private, from the bottom up (each imports only modules above it in
//!   this list): `error` ([`TcpError`]), `stream` (the boxed TCP or TLS byte
//!   stream), `tls`, `config`, `conn` (one connection and its handshake),
//!   `shared` (what a transport's tasks share: settings, TLS, the dialing
//!   pool), `server` (the accepting side and its connection `slots`), and
//!   `transport` (the handle and the dialing side).
//!
//! # Quick start
//!
//! ```
//! use raft_core::{RequestVoteRequest, RequestVoteResponse, Rpc, Transport};
//! use transport_tcp::{TcpConfig, TcpTransport};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let loopback = "127.0.0.1:0".parse()?;
//! let a = TcpTransport::bind(TcpConfig::new("a", "demo", loopback)).await?;
//! let b = TcpTransport::bind(TcpConfig::new("b", "demo", loopback)).await?;
//! let mut incoming = b.consumer()?;
//! tokio::spawn(async move {
//!     while let Some(Rpc::RequestVote { request, respond }) = incoming.recv().await {
//!         respond.respond(Ok(RequestVoteResponse { term: request.term, granted: true, ..Default::default() }));
//!     }
//! });
//! let answer = a.request_vote(b.local_addr(), RequestVoteRequest { term: 3, ..Default::default() }).await?;
//! assert!(answer.granted);
//! a.shutdown().await;
//! b.shutdown().await;
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod config;
mod conn;
mod error;
mod ratelimit;
mod server;
mod shared;
mod slots;
mod stream;
#[cfg(feature = "tls")]
mod tls;
mod transport;
pub mod wire;

pub use auth::{ClusterSecret, SECRET_MIN};
pub use config::{PeerFilter, TcpConfig};
pub use error::TcpError;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{NodeNames, TlsConfig};
pub use transport::TcpTransport;
