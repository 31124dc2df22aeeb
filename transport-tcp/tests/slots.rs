//! Inbound connection slots cannot be exhausted (issue #13, item 5):
//! connections that never finish their handshake share a small budget of
//! their own, where a new one evicts the oldest; connections that did are
//! bounded per peer and in all, and a new one closes the least recently
//! used, so a real peer always gets in.

mod support;

use raft_core::{RequestVoteRequest, Transport};
use std::time::Duration;
use support::{RawPeer, serve};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use transport_tcp::{TcpConfig, TcpTransport};

const SECOND: Duration = Duration::from_secs(1);

async fn server(configure: impl FnOnce(&mut TcpConfig)) -> TcpTransport {
    let mut config = TcpConfig::new("server", "slots", "127.0.0.1:0".parse().expect("addr"));
    config.connect_timeout = SECOND * 3;
    configure(&mut config);
    let transport = TcpTransport::bind(config).await.expect("bind");
    serve(&transport);
    transport
}

/// A real peer's vote, which must be answered within a second.
async fn real_vote(server: &TcpTransport) {
    let mut config = TcpConfig::new("real", "slots", "127.0.0.1:0".parse().expect("addr"));
    config.connect_timeout = SECOND;
    let client = TcpTransport::bind(config).await.expect("bind");
    let vote = client.request_vote(server.local_addr(), RequestVoteRequest { term: 1, ..Default::default() });
    let answer = tokio::time::timeout(SECOND, vote).await.expect("answered in time");
    assert!(answer.expect("a real peer gets in").granted);
    client.shutdown().await;
}

/// Whether the server has closed `stream` (within a short wait).
async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_never_say_anything_cannot_keep_a_real_peer_out() {
    let server = server(|c| {
        c.max_inbound_connections = 16;
        c.max_pending_handshakes = 4;
    })
    .await;
    // Far more silent sockets than slots of any kind.
    let mut silent = Vec::new();
    for _ in 0..64 {
        silent.push(TcpStream::connect(server.bound_addr()).await.expect("connect"));
    }
    real_vote(&server).await;
    let mut closed = 0;
    for socket in &mut silent {
        closed += usize::from(is_closed(socket).await);
    }
    assert!(closed >= 60, "only {closed} of 64 silent sockets were closed; at most 4 may wait");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_identified_connections_give_way_to_a_new_peer() {
    let server = server(|c| c.max_inbound_connections = 8).await;
    let mut idle = Vec::new();
    for i in 0..8 {
        idle.push(RawPeer::connect(server.bound_addr(), "slots", &format!("idle-{i}")).await);
    }
    real_vote(&server).await;
    // The least recently used gave its slot up: the first one.
    assert!(is_closed(&mut idle[0].stream).await, "no idle connection was closed for the new peer");
    let mut open = 0;
    for peer in &mut idle[1..] {
        open += usize::from(!is_closed(&mut peer.stream).await);
    }
    assert!(open >= 6, "more idle connections were closed than needed: {open} of 7 stay");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_holds_at_most_its_share_of_connections() {
    let server = server(|c| c.max_connections_per_peer = 3).await;
    let mut same = Vec::new();
    for _ in 0..6 {
        same.push(RawPeer::connect(server.bound_addr(), "slots", "greedy").await);
    }
    let mut states = Vec::new();
    for peer in &mut same {
        states.push(is_closed(&mut peer.stream).await);
    }
    assert_eq!(states, [true, true, true, false, false, false], "the oldest three should be closed");
    real_vote(&server).await;
    server.shutdown().await;
}
