//! Frames cost memory only as their bytes arrive, and all the frames being
//! received on a transport share one budget (`TcpConfig::frame_memory_max`):
//! peers that announce huge frames and send a little of each cannot make a
//! node hold the announced sizes, and a begun frame that stops making
//! progress is cut off after `rpc_timeout` (issue #13, item 6).
//!
//! This test binary counts every allocation (peak_alloc), so its tests run
//! one at a time (`serial`).

mod support;

use peak_alloc::PeakAlloc;
use raft_core::{RequestVoteRequest, Transport};
use std::time::Duration;
use support::RawPeer;
use tokio::io::AsyncWriteExt;
use transport_tcp::{TcpConfig, TcpTransport};

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: usize = 1 << 20;

async fn node(configure: impl FnOnce(&mut TcpConfig)) -> TcpTransport {
    let mut config = TcpConfig::new("node", "frames", "127.0.0.1:0".parse().expect("addr"));
    configure(&mut config);
    let transport = TcpTransport::bind(config).await.expect("bind");
    support::serve(&transport);
    transport
}

/// Opens a raw connection and sends the length prefix of a frame of `len`
/// bytes, then `sent` bytes of its body, and keeps the connection open.
async fn partial_frame(addr: std::net::SocketAddr, len: u32, sent: usize) -> RawPeer {
    let mut peer = RawPeer::connect(addr, "frames", "peer").await;
    peer.stream.write_all(&len.to_le_bytes()).await.expect("prefix");
    let chunk = vec![0u8; 64 << 10];
    let mut left = sent;
    while left > 0 {
        let n = left.min(chunk.len());
        peer.stream.write_all(&chunk[..n]).await.expect("body");
        left -= n;
    }
    peer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_frames_cost_nothing_until_their_bytes_arrive() {
    let _serial = SERIAL.lock().await;
    let transport = node(|c| c.frame_memory_max = 512 << 20).await;
    let addr = transport.bound_addr();
    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    // Four frames of 100 MiB announced, 1 MiB of each sent.
    let mut peers = Vec::new();
    for _ in 0..4 {
        peers.push(partial_frame(addr, 100 << 20, MIB).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let peak = ALLOCATOR.peak_usage().saturating_sub(before);
    assert!(peak < 24 * MIB, "four partial frames of 1 MiB made the node allocate {} MiB", peak / MIB);
    drop(peers);
    transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_being_received_share_one_budget_and_stalled_ones_are_cut_off() {
    let _serial = SERIAL.lock().await;
    let transport = node(|c| {
        c.max_frame_size = 4 << 20;
        c.frame_memory_max = 4 << 20;
        c.rpc_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = transport.bound_addr();
    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    // Three frames of 3 MiB, each with 1.5 MiB sent: the budget admits one
    // at a time, and none makes progress after that.
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(partial_frame(addr, 3 << 20, 3 * MIB / 2).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = ALLOCATOR.peak_usage().saturating_sub(before);
    assert!(
        peak < 12 * MIB,
        "three partial frames within a 4 MiB budget made the node allocate {} MiB",
        peak / MIB
    );
    // Each stalled or waiting connection is closed within its deadline.
    for (i, peer) in peers.iter_mut().enumerate() {
        let closed = tokio::time::timeout(Duration::from_secs(5), peer.next_frame()).await;
        assert!(matches!(closed, Ok(None)), "connection {i} of a stalled frame stayed open");
    }
    // The node still serves a real peer.
    let client = TcpTransport::bind(TcpConfig::new("client", "frames", "127.0.0.1:0".parse().expect("addr")))
        .await
        .expect("bind");
    let vote =
        client.request_vote(transport.local_addr(), RequestVoteRequest { term: 1, ..Default::default() });
    assert!(vote.await.expect("a vote after the stalled frames").granted);
    client.shutdown().await;
    transport.shutdown().await;
}
