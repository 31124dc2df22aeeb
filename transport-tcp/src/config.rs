//! [`TcpConfig`]: the knobs of a [`TcpTransport`](crate::TcpTransport).

use raft_core::{ServerAddress, ServerId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Decides whether this node may talk to a peer, by address when dialing
/// and by node id once a peer's handshake arrives. Refusing is how tests
/// partition a cluster over real sockets, and how an operator fences a node.
pub type PeerFilter = Arc<dyn Fn(&ServerAddress, Option<&ServerId>) -> bool + Send + Sync>;

/// How a [`TcpTransport`](crate::TcpTransport) behaves.
#[derive(Clone)]
#[non_exhaustive]
pub struct TcpConfig {
    /// This node's id, sent in every handshake.
    pub node_id: ServerId,
    /// The cluster's id: a peer of another cluster is refused at the handshake.
    pub cluster_id: String,
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub bind: SocketAddr,
    /// The address other nodes dial; required when `bind` is unspecified
    /// (`0.0.0.0`), which cannot be dialed.
    pub advertise: Option<SocketAddr>,
    /// Idle connections kept per peer.
    pub pool_size: usize,
    /// How long one RPC may take, from sending to the answer; also the
    /// longest an inbound snapshot stream may go without a chunk before the
    /// connection is closed.
    pub rpc_timeout: Duration,
    /// How long dialing and the handshake may take, on either side.
    pub connect_timeout: Duration,
    /// AppendEntries in flight on a pipeline.
    pub pipeline_depth: usize,
    /// The largest frame accepted or sent, in bytes.
    pub max_frame_size: u64,
    /// The most bytes all frames being received at once may hold, on every
    /// connection of the transport together: a frame over 64 KiB takes its
    /// announced length from this budget until it has arrived, waiting up to
    /// `rpc_timeout` for room. Never below `max_frame_size`.
    pub frame_memory_max: u64,
    /// The most inbound connections served at once, after their handshake.
    /// A peer's new connection beyond this closes the least recently used
    /// connection of any peer, so a known peer can always get in.
    pub max_inbound_connections: usize,
    /// An inbound connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// TCP keepalive on every connection, dialed or accepted: after this long
    /// without traffic the kernel probes the peer (every 5 s, 3 times), so a
    /// peer that lost power, whose connection is half-open, is noticed
    /// within about 30 s even when nothing is being sent. `None` turns it off.
    pub keepalive: Option<Duration>,
    /// The snapshot chunk size, in bytes.
    pub snapshot_chunk_size: usize,
    /// Which peers may be talked to (all, when `None`).
    pub peer_filter: Option<PeerFilter>,
    /// The cluster's shared secret: with one, each end of every connection
    /// proves in the handshake that it knows it (HMAC-SHA256 over both sides'
    /// nonces), and a peer that cannot is refused. Authentication without
    /// TLS (the traffic itself stays readable); every node needs the same
    /// secret, and all or none of them must have one.
    pub cluster_secret: Option<crate::ClusterSecret>,
    /// Connections that have not finished their handshake are served at most
    /// this many at once; a new one evicts the oldest, so connections that
    /// never say anything cannot keep a real peer out.
    pub max_pending_handshakes: usize,
    /// The most connections one peer (by node id) may hold open; a new one
    /// beyond this closes that peer's least recently used.
    pub max_connections_per_peer: usize,
    /// Mutual TLS (feature `tls`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls: Option<crate::tls::TlsConfig>,
}

impl std::fmt::Debug for TcpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConfig")
            .field("node_id", &self.node_id)
            .field("cluster_id", &self.cluster_id)
            .field("bind", &self.bind)
            .field("advertise", &self.advertise)
            .field("pool_size", &self.pool_size)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("pipeline_depth", &self.pipeline_depth)
            .field("max_frame_size", &self.max_frame_size)
            .field("cluster_secret", &self.cluster_secret)
            .finish_non_exhaustive()
    }
}

impl TcpConfig {
    /// A config for node `node_id` of cluster `cluster_id`, listening on
    /// `bind`, with defaults: 4 pooled connections per peer, 10 s RPC
    /// timeout, 3 s connect timeout, pipeline depth 16, 128 MiB frames within
    /// a 256 MiB budget for frames being received, 1024 inbound connections, 5 min idle timeout, keepalive after 15 s idle,
    /// 1 MiB snapshot chunks.
    pub fn new(node_id: impl Into<ServerId>, cluster_id: impl Into<String>, bind: SocketAddr) -> Self {
        Self {
            node_id: node_id.into(),
            cluster_id: cluster_id.into(),
            bind,
            advertise: None,
            pool_size: 4,
            rpc_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            pipeline_depth: 16,
            max_frame_size: 128 << 20,
            frame_memory_max: 256 << 20,
            max_inbound_connections: 1024,
            idle_timeout: Duration::from_secs(300),
            keepalive: Some(Duration::from_secs(15)),
            snapshot_chunk_size: 1 << 20,
            peer_filter: None,
            cluster_secret: None,
            max_pending_handshakes: 64,
            max_connections_per_peer: 32,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
