//! The in-memory transport passes the transport conformance suite.

use raft_conformance::cluster::BoxFuture;
use raft_conformance::transport::TransportFactory;
use raft_core::{ServerAddress, Transport};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use transport_inmem::InmemNetwork;

struct Inmem {
    network: InmemNetwork,
    next: AtomicU64,
}

impl Inmem {
    fn new() -> Self {
        Self {
            network: InmemNetwork::new(raft_conformance::cluster::seed_from_env()),
            next: AtomicU64::new(0),
        }
    }
}

impl TransportFactory for Inmem {
    fn create(&self) -> BoxFuture<'_, Arc<dyn Transport>> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let transport: Arc<dyn Transport> = Arc::new(self.network.transport(format!("node-{n}")));
        Box::pin(async move { transport })
    }

    fn restart(&self, address: ServerAddress) -> BoxFuture<'_, Arc<dyn Transport>> {
        let transport: Arc<dyn Transport> = Arc::new(self.network.transport(address));
        Box::pin(async move { transport })
    }

    fn unreachable(&self) -> ServerAddress {
        ServerAddress::new("nobody-listens-here")
    }
}

raft_conformance::transport_suite!(Inmem::new());
