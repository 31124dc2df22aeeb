//! The [`Transport`] conformance cases, run through
//! [`transport_suite!`](crate::transport_suite) for any transport a
//! [`TransportFactory`] makes.

use crate::cluster::BoxFuture;
use bytes::Bytes;
use raft_core::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Makes transports for the cases.
pub trait TransportFactory: Send + Sync + 'static {
    /// A transport at a fresh address.
    fn create(&self) -> BoxFuture<'_, Arc<dyn Transport>>;
    /// A new transport at `address`, where an earlier one was shut down (a restart).
    fn restart(&self, address: ServerAddress) -> BoxFuture<'_, Arc<dyn Transport>>;
    /// An address where nothing answers.
    fn unreachable(&self) -> ServerAddress;
}

/// What a test server saw.
enum Seen {
    AppendEntries(AppendEntriesRequest),
    RequestVote(RequestVoteRequest),
    PreVote(PreVoteRequest),
    InstallSnapshot(InstallSnapshotRequest, u64),
    TimeoutNow(TimeoutNowRequest),
}

/// Serves `transport`'s RPCs: answers each with a response derived from the
/// request (its term + 1, and for AppendEntries `last_log` = prev + entries),
/// and reports the request. A snapshot's bytes are checked against
/// [`pattern`] and counted.
fn serve(transport: &Arc<dyn Transport>) -> mpsc::UnboundedReceiver<Seen> {
    let mut incoming = transport.consumer().expect("consumer");
    let (seen, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(rpc) = incoming.recv().await {
            match rpc {
                Rpc::AppendEntries { request, respond } => {
                    let response = AppendEntriesResponse {
                        term: request.term + 1,
                        last_log: request.prev_log_index + request.entries.len() as u64,
                        success: true,
                        ..Default::default()
                    };
                    let _ = seen.send(Seen::AppendEntries(request));
                    respond.respond(Ok(response));
                }
                Rpc::RequestVote { request, respond } => {
                    let response =
                        RequestVoteResponse { term: request.term + 1, granted: true, ..Default::default() };
                    let _ = seen.send(Seen::RequestVote(request));
                    respond.respond(Ok(response));
                }
                Rpc::PreVote { request, respond } => {
                    let response =
                        PreVoteResponse { term: request.term + 1, granted: true, ..Default::default() };
                    let _ = seen.send(Seen::PreVote(request));
                    respond.respond(Ok(response));
                }
                Rpc::TimeoutNow { request, respond } => {
                    let response = TimeoutNowResponse { term: request.term + 1, ..Default::default() };
                    let _ = seen.send(Seen::TimeoutNow(request));
                    respond.respond(Ok(response));
                }
                Rpc::InstallSnapshot { request, mut data, respond } => {
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 << 10];
                        let mut offset = 0u64;
                        let mut intact = true;
                        loop {
                            match data.read(&mut buf).await {
                                Ok(0) => break,
                                Ok(n) => {
                                    intact &= buf[..n]
                                        .iter()
                                        .enumerate()
                                        .all(|(i, b)| *b == pattern(offset + i as u64));
                                    offset += n as u64;
                                }
                                Err(_) => {
                                    intact = false;
                                    break;
                                }
                            }
                        }
                        let success = intact && offset == request.size;
                        let response =
                            InstallSnapshotResponse { term: request.term + 1, success, ..Default::default() };
                        let _ = seen.send(Seen::InstallSnapshot(request, offset));
                        respond.respond(Ok(response));
                    });
                }
                _ => {}
            }
        }
    });
    rx
}

/// The byte at `offset` of the test snapshots.
pub fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(2654435761) >> 7) as u8
}

/// An `AsyncRead` of `size` pattern bytes, generated as read.
pub struct PatternReader {
    offset: u64,
    size: u64,
}

impl PatternReader {
    /// A reader of `size` bytes.
    pub fn new(size: u64) -> Self {
        Self { offset: 0, size }
    }
}

impl tokio::io::AsyncRead for PatternReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (self.size - self.offset).min(buf.remaining() as u64) as usize;
        let start = self.offset;
        let bytes: Vec<u8> = (0..n as u64).map(|i| pattern(start + i)).collect();
        buf.put_slice(&bytes);
        self.offset += n as u64;
        std::task::Poll::Ready(Ok(()))
    }
}

fn header() -> RpcHeader {
    RpcHeader::new("caller".into(), "caller-address".into())
}

fn configuration() -> Configuration {
    Configuration::new(vec![Server::voter("a", "1.2.3.4:5"), Server::nonvoter("b", "[::1]:6")])
}

/// Every RPC arrives field for field and its answer comes back.
pub async fn every_rpc_round_trips<F: TransportFactory>(factory: F) {
    let (client, server) = (factory.create().await, factory.create().await);
    let mut seen = serve(&server);
    let target = server.local_addr();
    let entries = vec![
        Log {
            index: 8,
            term: 3,
            kind: LogKind::Command,
            data: Bytes::from_static(b"cmd"),
            extensions: Bytes::from_static(b"ext"),
        },
        Log {
            index: 9,
            term: 3,
            kind: LogKind::Configuration,
            data: Bytes::from_static(b"cfg"),
            extensions: Bytes::new(),
        },
    ];
    let append = AppendEntriesRequest {
        header: header(),
        term: 3,
        prev_log_index: 7,
        prev_log_term: 2,
        entries,
        leader_commit: 6,
    };
    let answer = client.append_entries(target.clone(), append.clone()).await.expect("append_entries");
    assert_eq!((answer.term, answer.last_log, answer.success), (4, 9, true));
    assert!(matches!(seen.recv().await, Some(Seen::AppendEntries(r)) if r == append));
    let vote = RequestVoteRequest {
        header: header(),
        term: 5,
        last_log_index: 9,
        last_log_term: 3,
        leadership_transfer: true,
    };
    assert_eq!(client.request_vote(target.clone(), vote.clone()).await.expect("request_vote").term, 6);
    assert!(matches!(seen.recv().await, Some(Seen::RequestVote(r)) if r == vote));
    let pre = PreVoteRequest { header: header(), term: 6, last_log_index: 9, last_log_term: 3 };
    assert!(client.pre_vote(target.clone(), pre.clone()).await.expect("pre_vote").granted);
    assert!(matches!(seen.recv().await, Some(Seen::PreVote(r)) if r == pre));
    let timeout = TimeoutNowRequest { header: header(), term: 7 };
    assert_eq!(client.timeout_now(target.clone(), timeout.clone()).await.expect("timeout_now").term, 8);
    assert!(matches!(seen.recv().await, Some(Seen::TimeoutNow(r)) if r == timeout));
    let install = InstallSnapshotRequest {
        header: header(),
        snapshot_version: 1,
        term: 9,
        last_log_index: 100,
        last_log_term: 8,
        configuration: configuration(),
        configuration_index: 90,
        size: 1000,
    };
    let answer = client.install_snapshot(target, install.clone(), Box::pin(PatternReader::new(1000))).await;
    assert!(answer.expect("install_snapshot").success);
    assert!(matches!(seen.recv().await, Some(Seen::InstallSnapshot(r, 1000)) if r == install));
    client.shutdown().await;
    server.shutdown().await;
}

/// A pipeline answers in order, and stops taking requests when its window
/// is full of unanswered ones.
pub async fn pipeline_keeps_order_and_applies_back_pressure<F: TransportFactory>(factory: F) {
    let (client, server) = (factory.create().await, factory.create().await);
    let mut incoming = server.consumer().expect("consumer");
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let (release_tx, mut release_rx) = mpsc::unbounded_channel::<()>();
    let held_by_server = held.clone();
    tokio::spawn(async move {
        let mut released = false;
        loop {
            tokio::select! {
                rpc = incoming.recv() => match rpc {
                    Some(Rpc::AppendEntries { request, respond }) => {
                        let response = AppendEntriesResponse { last_log: request.prev_log_index, success: true, ..Default::default() };
                        if released { respond.respond(Ok(response)) } else { held_by_server.lock().await.push((respond, response)) }
                    }
                    Some(_) => {}
                    None => return,
                },
                Some(()) = release_rx.recv(), if !released => {
                    released = true;
                    for (respond, response) in held_by_server.lock().await.drain(..) {
                        respond.respond(Ok(response));
                    }
                }
            }
        }
    });
    let mut pipeline = client.append_entries_pipeline(server.local_addr()).await.expect("pipeline");
    let mut sent = 0u64;
    let deadline = Instant::now() + Duration::from_secs(2);
    // Send without answers until the pipeline refuses more.
    loop {
        let request = AppendEntriesRequest { prev_log_index: sent + 1, ..Default::default() };
        match pipeline.requests.try_send(request) {
            Ok(()) => sent += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                if pipeline.requests.capacity() == 0 {
                    break;
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => panic!("the pipeline closed"),
        }
        assert!(sent <= 1024, "a pipeline with nothing answered took {sent} requests: no back-pressure");
    }
    assert!(sent >= 2, "the pipeline took only {sent} request before pushing back");
    release_tx.send(()).expect("release");
    for expected in 1..=sent {
        let answer = tokio::time::timeout(Duration::from_secs(10), pipeline.responses.recv())
            .await
            .expect("an answer");
        let answer = answer.expect("the pipeline is open").expect("a success");
        assert_eq!(answer.last_log, expected, "answers out of order");
    }
    for more in sent + 1..=sent + 20 {
        pipeline
            .requests
            .send(AppendEntriesRequest { prev_log_index: more, ..Default::default() })
            .await
            .expect("send");
        let answer = pipeline.responses.recv().await.expect("open").expect("success");
        assert_eq!(answer.last_log, more);
    }
    client.shutdown().await;
    server.shutdown().await;
}

/// One AppendEntries carrying 64 MiB of entries goes through whole.
pub async fn large_append_entries_goes_through<F: TransportFactory>(factory: F) {
    let (client, server) = (factory.create().await, factory.create().await);
    let mut seen = serve(&server);
    let payload = Bytes::from(vec![0x42u8; 1 << 20]);
    let entries: Vec<Log> = (1..=64).map(|i| Log::command(i, 1, payload.clone())).collect();
    let request = AppendEntriesRequest { term: 1, entries, ..Default::default() };
    let answer = client.append_entries(server.local_addr(), request).await.expect("a 64 MiB AppendEntries");
    assert_eq!(answer.last_log, 64);
    match seen.recv().await {
        Some(Seen::AppendEntries(r)) => {
            assert_eq!(r.entries.len(), 64);
            assert!(r.entries.iter().all(|e| e.data == payload));
        }
        _ => panic!("the server saw no AppendEntries"),
    }
    client.shutdown().await;
    server.shutdown().await;
}

/// A 64 MiB snapshot streams through, generated and checked as it flows.
pub async fn large_snapshot_streams<F: TransportFactory>(factory: F) {
    let (client, server) = (factory.create().await, factory.create().await);
    let mut seen = serve(&server);
    let size = 64 << 20;
    let request = InstallSnapshotRequest { term: 1, size, snapshot_version: 1, ..Default::default() };
    let answer =
        client.install_snapshot(server.local_addr(), request, Box::pin(PatternReader::new(size))).await;
    assert!(answer.expect("install_snapshot").success, "the snapshot arrived damaged or short");
    assert!(matches!(seen.recv().await, Some(Seen::InstallSnapshot(_, n)) if n == size));
    client.shutdown().await;
    server.shutdown().await;
}

/// A call to an address where nothing answers fails, within the timeout.
pub async fn unreachable_peer_errors_in_time<F: TransportFactory>(factory: F) {
    let client = factory.create().await;
    let started = Instant::now();
    let outcome = client.request_vote(factory.unreachable(), RequestVoteRequest::default()).await;
    assert!(outcome.is_err(), "a call to nowhere succeeded");
    assert!(started.elapsed() < Duration::from_secs(15), "the failure took {:?}", started.elapsed());
    client.shutdown().await;
}

/// After a peer restarts at the same address, calls reach the new one.
pub async fn restarted_peer_is_reconnected<F: TransportFactory>(factory: F) {
    let client = factory.create().await;
    let server = factory.create().await;
    let address = server.local_addr();
    let _seen = serve(&server);
    client.request_vote(address.clone(), RequestVoteRequest::default()).await.expect("first call");
    server.shutdown().await;
    drop(server);
    let restarted = factory.restart(address.clone()).await;
    let _seen = serve(&restarted);
    // The connection pooled to the old peer is dead; the first call must
    // still reach the new one.
    let answer =
        client.request_vote(address.clone(), RequestVoteRequest { term: 41, ..Default::default() }).await;
    assert_eq!(answer.expect("the restarted peer is reached at once").term, 42);
    client.shutdown().await;
    restarted.shutdown().await;
}

/// Many tasks calling at once all get their own answers.
pub async fn many_concurrent_callers<F: TransportFactory>(factory: F) {
    let client = factory.create().await;
    let server = factory.create().await;
    let _seen = serve(&server);
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..32u64 {
        let (client, target) = (client.clone(), server.local_addr());
        tasks.spawn(async move {
            for call in 0..20u64 {
                let term = caller * 1000 + call;
                let answer = client
                    .request_vote(target.clone(), RequestVoteRequest { term, ..Default::default() })
                    .await;
                assert_eq!(answer.expect("call").term, term + 1, "an answer went to the wrong caller");
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("caller task");
    }
    client.shutdown().await;
    server.shutdown().await;
}

/// Calls after shutdown fail cleanly, and calls to a shut-down peer fail too.
pub async fn calls_after_shutdown_fail_cleanly<F: TransportFactory>(factory: F) {
    let client = factory.create().await;
    let server = factory.create().await;
    let _seen = serve(&server);
    let target = server.local_addr();
    client.request_vote(target.clone(), RequestVoteRequest::default()).await.expect("a call before shutdown");
    server.shutdown().await;
    let to_dead = tokio::time::timeout(
        Duration::from_secs(15),
        client.request_vote(target.clone(), RequestVoteRequest::default()),
    )
    .await;
    assert!(matches!(to_dead, Ok(Err(_))), "a call to a shut-down peer did not fail in time");
    client.shutdown().await;
    let after = client.request_vote(target.clone(), RequestVoteRequest::default()).await;
    assert!(matches!(after, Err(TransportError::Shutdown)), "{after:?}");
    let pipeline = client.append_entries_pipeline(target).await;
    assert!(pipeline.is_err(), "a pipeline opened on a shut-down transport");
    assert!(matches!(client.consumer(), Err(TransportError::ConsumerTaken)));
}
