//! The TCP transport passes the transport conformance suite on loopback.

use raft_conformance::cluster::BoxFuture;
use raft_conformance::transport::TransportFactory;
use raft_core::{ServerAddress, Transport};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use transport_tcp::{TcpConfig, TcpTransport};

struct Tcp {
    next: AtomicU64,
}

fn config(id: u64, bind: std::net::SocketAddr) -> TcpConfig {
    let mut config = TcpConfig::new(format!("node-{id}"), "suite", bind);
    config.max_frame_size = 128 << 20;
    config.connect_timeout = std::time::Duration::from_secs(2);
    config
}

impl TransportFactory for Tcp {
    fn create(&self) -> BoxFuture<'_, Arc<dyn Transport>> {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let bind = "127.0.0.1:0".parse().expect("loopback");
            let transport: Arc<dyn Transport> =
                Arc::new(TcpTransport::bind(config(id, bind)).await.expect("bind"));
            transport
        })
    }

    fn restart(&self, address: ServerAddress) -> BoxFuture<'_, Arc<dyn Transport>> {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let bind = address.as_str().parse().expect("a socket address");
            let transport: Arc<dyn Transport> =
                Arc::new(TcpTransport::bind(config(id, bind)).await.expect("rebind"));
            transport
        })
    }

    fn unreachable(&self) -> ServerAddress {
        ServerAddress::new("127.0.0.1:1")
    }
}

raft_conformance::transport_suite!(Tcp { next: AtomicU64::new(0) });
