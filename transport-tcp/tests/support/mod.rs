//! Helpers shared by the transport-tcp integration tests.

use raft_core::{RequestVoteResponse, Rpc, Transport};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use transport_tcp::TcpTransport;

/// Serves votes (granting each), counting the RPCs the node was handed.
pub(crate) fn serve(transport: &TcpTransport) -> Arc<AtomicUsize> {
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut incoming = transport.consumer().expect("consumer");
    let counter = delivered.clone();
    tokio::spawn(async move {
        while let Some(rpc) = incoming.recv().await {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Rpc::RequestVote { request, respond } = rpc {
                respond.respond(Ok(RequestVoteResponse {
                    term: request.term,
                    granted: true,
                    ..Default::default()
                }));
            }
        }
    });
    delivered
}
