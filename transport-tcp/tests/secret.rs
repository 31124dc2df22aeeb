//! Authentication without TLS: with a cluster secret, each end of every
//! connection proves it knows the secret (HMAC-SHA256 over both sides'
//! nonces), so a peer that only knows the cluster id is refused, on both
//! sides, before any RPC reaches the node (issue #13, item 7).

mod support;

use raft_core::{RequestVoteRequest, Transport, TransportError};
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::serve;
use transport_tcp::{ClusterSecret, TcpConfig, TcpTransport};

async fn node(id: &str, secret: Option<&[u8]>) -> TcpTransport {
    let mut config = TcpConfig::new(id, "secret", "127.0.0.1:0".parse().expect("loopback"));
    config.connect_timeout = Duration::from_secs(1);
    config.cluster_secret = secret.map(|s| ClusterSecret::new(s.to_vec()).expect("a long enough secret"));
    TcpTransport::bind(config).await.expect("bind")
}

async fn vote(from: &TcpTransport, to: &TcpTransport) -> Result<bool, TransportError> {
    from.request_vote(to.local_addr(), RequestVoteRequest { term: 1, ..Default::default() })
        .await
        .map(|r| r.granted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_peers_that_know_the_cluster_secret_are_served() {
    let secret = b"a secret of at least sixteen bytes";
    let server = node("s", Some(secret)).await;
    let delivered = serve(&server);
    let member = node("m", Some(secret)).await;
    assert!(vote(&member, &server).await.expect("the same secret"), "members talk");
    assert_eq!(delivered.load(Ordering::SeqCst), 1);

    let wrong = node("w", Some(b"another secret, sixteen or more")).await;
    assert!(matches!(vote(&wrong, &server).await, Err(TransportError::AuthenticationFailed { .. })));
    let none = node("n", None).await;
    assert!(matches!(vote(&none, &server).await, Err(TransportError::AuthenticationFailed { .. })));
    // A server without the secret is refused by a client that has it.
    let open_server = node("o", None).await;
    serve(&open_server);
    assert!(matches!(vote(&member, &open_server).await, Err(TransportError::AuthenticationFailed { .. })));
    // A server with another secret cannot prove it, so the client refuses it first.
    let wrong_server = node("x", Some(b"another secret, sixteen or more")).await;
    let wrong_delivered = serve(&wrong_server);
    assert!(matches!(vote(&member, &wrong_server).await, Err(TransportError::AuthenticationFailed { .. })));
    assert_eq!(wrong_delivered.load(Ordering::SeqCst), 0);
    assert_eq!(delivered.load(Ordering::SeqCst), 1, "a peer without the secret reached the node");
    assert!(ClusterSecret::new(b"short".to_vec()).is_none(), "secrets under 16 bytes are refused");
}
