//! The accepting side: a listener whose connections hold slots of a
//! [`Registry`](crate::slots::Registry) (a small budget while they
//! handshake, bounded per peer and in all after), a handshake per
//! connection, and a task per connection that hands requests to the node
//! and writes the answers back in order.

use crate::conn;
use crate::shared::Shared;
use crate::slots::{Limits, Registry, Slot};
use crate::stream::BoxStream;
use crate::wire::{self, Frame, FrameKind};
use bytes::{Bytes, BytesMut};
use raft_core::{Message, Responder, Rpc, RpcRejection, SnapshotStream, TransportError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// An answer the node will give, as a message to send back.
type Pending = Pin<Box<dyn Future<Output = Result<Message, String>> + Send>>;

/// How many answers may wait to be written on one connection.
const PENDING_MAX: usize = 64;
/// How many snapshot chunks may wait for the node on one connection.
const CHUNKS_MAX: usize = 4;

/// Accepts connections until shutdown, retrying accept errors with backoff.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, rpcs: mpsc::Sender<Rpc>) {
    let config = &shared.config;
    let registry = Registry::new(Limits {
        pending_max: config.max_pending_handshakes,
        per_peer_max: config.max_connections_per_peer,
        total_max: config.max_inbound_connections,
    });
    let closing = shared.closing();
    tokio::pin!(closing);
    let mut backoff = Duration::from_millis(5);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut closing => {
                // Every connection ends before shutdown returns, so no RPC
                // is handed to the node after it.
                connections.shutdown().await;
                return;
            }
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(5);
                accepted
            }
            Err(error) => {
                tracing::warn!(%error, ?backoff, "accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        conn::tune(&stream, &shared.config);
        let (shared, rpcs, registry_) = (shared.clone(), rpcs.clone(), registry.clone());
        registry.admit(|slot| {
            let span = tracing::debug_span!("inbound", %peer);
            connections.spawn(tracing::Instrument::instrument(
                async move {
                    match serve(stream, &shared, rpcs, &registry_, &slot).await {
                        Ok(()) => tracing::debug!("inbound connection closed"),
                        Err(Refusal::Handshake(error)) => {
                            if let Some(suppressed) = shared.refused.admit(std::time::Instant::now()) {
                                tracing::warn!(%error, suppressed, "refused an inbound connection in its handshake");
                            }
                        }
                        Err(Refusal::Later(error)) => tracing::debug!(%error, "inbound connection closed"),
                    }
                    drop(slot);
                },
                span,
            ))
        });
    }
}

/// Why an inbound connection ended with an error: in its handshake (a
/// refusal, logged as a warning) or after it.
enum Refusal {
    Handshake(TransportError),
    Later(TransportError),
}

async fn serve(
    stream: tokio::net::TcpStream,
    shared: &Shared,
    rpcs: mpsc::Sender<Rpc>,
    registry: &Registry,
    slot: &Slot,
) -> Result<(), Refusal> {
    let config = &shared.config;
    let handshake = async {
        let (stream, identity) = shared.accept_stream(stream).await?;
        conn::server_handshake(stream, identity, config, &shared.limits).await
    };
    let (conn, kind) = tokio::time::timeout(config.connect_timeout, handshake)
        .await
        .map_err(|_| {
            TransportError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake timed out"))
        })
        .and_then(|shaken| shaken)
        .map_err(Refusal::Handshake)?;
    tracing::debug!(peer = %conn.peer, ?kind, "inbound connection accepted");
    serve_frames(conn, shared, rpcs, registry, slot).await.map_err(Refusal::Later)
}

async fn serve_frames(
    conn: conn::Conn,
    shared: &Shared,
    rpcs: mpsc::Sender<Rpc>,
    registry: &Registry,
    slot: &Slot,
) -> Result<(), TransportError> {
    let config = &shared.config;
    let closing = shared.closing();
    tokio::pin!(closing);
    registry.identified(slot.id, &conn.peer);
    let peer_addr = raft_core::ServerAddress::new(String::new());
    let peer = conn.peer.clone();
    let (reader, writer) = tokio::io::split(conn.stream);
    let (pending_tx, pending_rx) = mpsc::channel::<(u64, Pending)>(PENDING_MAX);
    let writer_task = tokio::spawn(write_answers(writer, pending_rx, config.max_frame_size));
    let mut frames = FrameReader { reader, buf: conn.buf, limits: conn.limits };
    let outcome = loop {
        let next = tokio::select! {
            biased;
            () = &mut closing => break Err(TransportError::Shutdown),
            next = tokio::time::timeout(config.idle_timeout, frames.next()) => next,
        };
        let frame = match next {
            Err(_) => break Err(TransportError::Timeout(raft_core::ServerAddress::new(peer.to_string()))),
            Ok(Ok(Some(frame))) => {
                slot.activity.touch();
                frame
            }
            Ok(Ok(None)) => break Ok(()),
            Ok(Err(error)) => break Err(error),
        };
        if let Some(filter) = &config.peer_filter
            && !filter(&peer_addr, Some(&peer))
        {
            break Err(TransportError::Unreachable(raft_core::ServerAddress::new(peer.to_string())));
        }
        match handle(frame, &mut frames, &rpcs, &pending_tx, config).await {
            Ok(()) => {}
            Err(error) => break Err(error),
        }
    };
    drop(pending_tx);
    let _ = writer_task.await;
    outcome
}

/// Reads frames from one half of a connection.
struct FrameReader<R> {
    reader: R,
    buf: BytesMut,
    limits: conn::FrameLimits,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    async fn next(&mut self) -> Result<Option<Frame>, TransportError> {
        conn::read_frame(&mut self.reader, &mut self.buf, &self.limits).await
    }
}

fn answer<T: Send + 'static>(
    rx: tokio::sync::oneshot::Receiver<Result<T, RpcRejection>>,
    wrap: fn(T) -> Message,
) -> Pending {
    Box::pin(async move {
        match rx.await {
            Ok(Ok(response)) => Ok(wrap(response)),
            Ok(Err(rejection)) => Err(rejection.0),
            Err(_) => Err("the node is shutting down".into()),
        }
    })
}

/// Hands one request to the node; for InstallSnapshot, also forwards the
/// snapshot's chunks until its end marker, draining them if the node stops
/// reading so the connection stays in step.
async fn handle(
    frame: Frame,
    frames: &mut FrameReader<ReadHalf<BoxStream>>,
    rpcs: &mpsc::Sender<Rpc>,
    pending: &mpsc::Sender<(u64, Pending)>,
    config: &crate::TcpConfig,
) -> Result<(), TransportError> {
    if frame.kind != FrameKind::Request {
        return Err(protocol(format!("expected a request frame, got {:?}", frame.kind)));
    }
    let id = frame.request_id;
    let (rpc, answer, snapshot) = match conn::message(&frame)? {
        Message::AppendEntriesRequest(request) => {
            let (respond, rx) = Responder::new();
            (Rpc::AppendEntries { request, respond }, answer(rx, Message::AppendEntriesResponse), None)
        }
        Message::RequestVoteRequest(request) => {
            let (respond, rx) = Responder::new();
            (Rpc::RequestVote { request, respond }, answer(rx, Message::RequestVoteResponse), None)
        }
        Message::PreVoteRequest(request) => {
            let (respond, rx) = Responder::new();
            (Rpc::PreVote { request, respond }, answer(rx, Message::PreVoteResponse), None)
        }
        Message::TimeoutNowRequest(request) => {
            let (respond, rx) = Responder::new();
            (Rpc::TimeoutNow { request, respond }, answer(rx, Message::TimeoutNowResponse), None)
        }
        Message::InstallSnapshotRequest(request) => {
            let (respond, rx) = Responder::new();
            let (chunks_tx, chunks_rx) = mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_MAX);
            let data: SnapshotStream = raft_core::transport::chunk_stream(chunks_rx);
            let size = request.size;
            let rpc = Rpc::InstallSnapshot { request, data, respond };
            (rpc, answer(rx, Message::InstallSnapshotResponse), Some((chunks_tx, size)))
        }
        other => return Err(protocol(format!("{other:?} is not a request"))),
    };
    rpcs.send(rpc).await.map_err(|_| TransportError::Shutdown)?;
    pending.send((id, answer)).await.map_err(|_| TransportError::Shutdown)?;
    if let Some((chunks, size)) = snapshot {
        forward_chunks(frames, chunks, size, config.snapshot_chunk_size, config.rpc_timeout).await?;
    }
    Ok(())
}

/// Forwards a snapshot's chunks to the node; a sender that sends no chunk
/// for `idle` is cut off (the node's stream ends with an error).
async fn forward_chunks(
    frames: &mut FrameReader<ReadHalf<BoxStream>>,
    chunks: mpsc::Sender<std::io::Result<Bytes>>,
    size: u64,
    chunk_size: usize,
    idle: Duration,
) -> Result<(), TransportError> {
    let mut received = 0u64;
    let mut open = true;
    loop {
        let next = match tokio::time::timeout(idle, frames.next()).await {
            Ok(next) => next?,
            Err(_) => {
                let reason = format!("no snapshot chunk for {idle:?}");
                let _ =
                    chunks.try_send(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, reason.clone())));
                return Err(protocol(reason));
            }
        };
        let frame = next.ok_or_else(|| protocol("the connection closed inside a snapshot".into()))?;
        match frame.kind {
            FrameKind::SnapshotChunk => {
                if frame.body.len() > chunk_size.max(1 << 20) * 2 {
                    return Err(protocol(format!("a snapshot chunk of {} bytes", frame.body.len())));
                }
                received += frame.body.len() as u64;
                if received > size {
                    let _ = chunks
                        .send(Err(std::io::Error::other("the snapshot is longer than announced")))
                        .await;
                    return Err(protocol(format!("snapshot longer than the {size} bytes announced")));
                }
                // A node that rejected the snapshot dropped the stream: drain.
                if open && chunks.send(Ok(frame.body)).await.is_err() {
                    open = false;
                }
            }
            FrameKind::SnapshotEnd => return Ok(()),
            other => return Err(protocol(format!("expected a snapshot chunk, got {other:?}"))),
        }
    }
}

fn protocol(reason: String) -> TransportError {
    TransportError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, reason))
}

/// Writes the node's answers back, in the order the requests arrived.
async fn write_answers(
    mut writer: WriteHalf<BoxStream>,
    mut pending: mpsc::Receiver<(u64, Pending)>,
    max_frame: u64,
) {
    let mut out = BytesMut::new();
    while let Some((id, answer)) = pending.recv().await {
        out.clear();
        match answer.await {
            Ok(message) => wire::encode_message_frame(&mut out, FrameKind::Response, id, &message),
            Err(reason) => wire::encode_frame(&mut out, FrameKind::Error, id, reason.as_bytes()),
        }
        if (out.len() - 4) as u64 > max_frame {
            out.clear();
            wire::encode_frame(&mut out, FrameKind::Error, id, b"the response exceeds the frame limit");
        }
        if writer.write_all(&out).await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}
