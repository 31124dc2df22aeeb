//! An in-process [`Transport`](raft_core::Transport) for raft-kit, with fault injection.
//!
//! An [`InmemNetwork`] links any number of [`InmemTransport`]s by address.
//! Tests use it to run whole clusters in one process and to break them on
//! purpose: per node or per link it can disconnect and reconnect, split the
//! nodes into partitions, drop a fraction of requests and replies, delay
//! messages within bounds, and reorder them. Every fault decision comes from
//! one seeded RNG; [`InmemNetwork::seed`] tells the seed to print when a test
//! fails, and the same seed makes the same decisions for the same calls.
//!
//! By default every message is encoded and decoded with `raft_core::codec`
//! on its way, as on a real wire, and counted (RPCs and bytes per sender).
//!
//! # Layout
//!
//! - `fabric`: what every endpoint shares (registrations, partitions, the
//!   seeded fault source, counters), and [`Faults`], the probabilistic faults
//!   in force; it imports neither of the modules below.
//! - `network`: [`InmemNetwork`], the switchboard and its fault controls.
//! - `transport`: [`InmemTransport`], one node's [`Transport`](raft_core::Transport).
//!
//! # Quick start
//!
//! ```
//! use raft_core::{RequestVoteRequest, Rpc, Transport};
//! use transport_inmem::InmemNetwork;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let network = InmemNetwork::new(7);
//! let a = network.transport("a");
//! let b = network.transport("b");
//! let mut incoming = b.consumer().unwrap();
//! tokio::spawn(async move {
//!     while let Some(Rpc::RequestVote { request, respond }) = incoming.recv().await {
//!         respond.respond(Ok(raft_core::RequestVoteResponse { term: request.term, granted: true, ..Default::default() }));
//!     }
//! });
//! let response = a.request_vote("b".into(), RequestVoteRequest { term: 3, ..Default::default() }).await.unwrap();
//! assert!(response.granted);
//! network.disconnect(&"b".into());
//! assert!(a.request_vote("b".into(), RequestVoteRequest::default()).await.is_err());
//! # }
//! ```

mod fabric;
mod network;
mod transport;

pub use fabric::{Faults, MessageHook};
pub use network::InmemNetwork;
pub use transport::InmemTransport;
