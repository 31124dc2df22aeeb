//! The [`Transport`] that carries RPCs between servers, and the incoming
//! [`Rpc`]s it hands the core.

use crate::codec::DecodeError;
use crate::commands::*;
use crate::{ServerAddress, ServerId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::AsyncRead;
use tokio::sync::{mpsc, oneshot};

/// A boxed, sendable future, as the object-safe [`Transport`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A snapshot's state streamed over a transport.
pub type SnapshotStream = Pin<Box<dyn AsyncRead + Send>>;

/// Why an RPC failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No peer is reachable at the address.
    #[error("peer {0} is unreachable")]
    Unreachable(ServerAddress),
    /// The peer did not answer in time.
    #[error("RPC to {0} timed out")]
    Timeout(ServerAddress),
    /// The transport, or the peer's, is shut down.
    #[error("transport is shut down")]
    Shutdown,
    /// The peer handled the RPC and answered with an error.
    #[error("peer {peer} failed the RPC: {message}")]
    Remote {
        /// The peer.
        peer: ServerAddress,
        /// What it said.
        message: String,
    },
    /// A frame was larger than the configured limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The frame's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {theirs}, this node {ours}")]
    VersionMismatch {
        /// Ours.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },
    /// The peer belongs to another cluster. The cluster id guards against
    /// misconfiguration, not against an attacker.
    #[error("peer belongs to another cluster than {ours:?}{}", theirs.as_ref().map(|t| format!(" (it says {t:?})")).unwrap_or_default())]
    ClusterMismatch {
        /// Ours.
        ours: String,
        /// Theirs, when the peer said (a server never tells a client that
        /// named the wrong cluster which one is right).
        theirs: Option<String>,
    },
    /// The peer could not prove it belongs to the cluster, or this node
    /// could not: the cluster secrets differ, only one side has one, or the
    /// node id a peer claims is not the one its TLS certificate names.
    #[error("authentication failed: {reason}")]
    AuthenticationFailed {
        /// What did not match.
        reason: String,
    },
    /// The peer sent bytes that do not decode.
    #[error("peer sent an undecodable message: {0}")]
    Decode(DecodeError),
    /// The operating system reported an I/O error.
    #[error("transport I/O failed: {0}")]
    Io(std::io::Error),
    /// The transport does not support pipelined AppendEntries.
    #[error("pipelined replication is not supported by this transport")]
    PipelineUnsupported,
    /// [`Transport::consumer`] was called a second time.
    #[error("the incoming RPC stream was already taken")]
    ConsumerTaken,
}

// Each error says its cause's message itself and does not also return it
// from `source()`, so that no report says it twice.
impl From<DecodeError> for TransportError {
    fn from(error: DecodeError) -> Self {
        TransportError::Decode(error)
    }
}

impl From<std::io::Error> for TransportError {
    fn from(error: std::io::Error) -> Self {
        TransportError::Io(error)
    }
}

/// Why a server refused to handle an RPC; sent back to the caller, who sees
/// it as [`TransportError::Remote`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RpcRejection(pub String);

/// Answers one incoming RPC. Dropping it unanswered tells the caller the
/// server is shutting down.
#[derive(Debug)]
pub struct Responder<T> {
    tx: oneshot::Sender<Result<T, RpcRejection>>,
}

impl<T> Responder<T> {
    /// A responder and the receiver its answer arrives on.
    pub fn new() -> (Self, oneshot::Receiver<Result<T, RpcRejection>>) {
        let (tx, rx) = oneshot::channel();
        (Self { tx }, rx)
    }

    /// Sends the answer. A caller that gave up is not an error.
    pub fn respond(self, result: Result<T, RpcRejection>) {
        let _ = self.tx.send(result);
    }
}

/// An RPC received by the transport, for the core to handle.
#[non_exhaustive]
pub enum Rpc {
    /// See [`AppendEntriesRequest`].
    AppendEntries {
        /// The request.
        request: AppendEntriesRequest,
        /// Where the answer goes.
        respond: Responder<AppendEntriesResponse>,
    },
    /// See [`RequestVoteRequest`].
    RequestVote {
        /// The request.
        request: RequestVoteRequest,
        /// Where the answer goes.
        respond: Responder<RequestVoteResponse>,
    },
    /// See [`PreVoteRequest`].
    PreVote {
        /// The request.
        request: PreVoteRequest,
        /// Where the answer goes.
        respond: Responder<PreVoteResponse>,
    },
    /// See [`InstallSnapshotRequest`]; the state follows in `data`.
    InstallSnapshot {
        /// The request.
        request: InstallSnapshotRequest,
        /// The snapshot's state, `request.size` bytes.
        data: SnapshotStream,
        /// Where the answer goes.
        respond: Responder<InstallSnapshotResponse>,
    },
    /// See [`TimeoutNowRequest`].
    TimeoutNow {
        /// The request.
        request: TimeoutNowRequest,
        /// Where the answer goes.
        respond: Responder<TimeoutNowResponse>,
    },
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rpc::AppendEntries { request, .. } => f.debug_tuple("AppendEntries").field(request).finish(),
            Rpc::RequestVote { request, .. } => f.debug_tuple("RequestVote").field(request).finish(),
            Rpc::PreVote { request, .. } => f.debug_tuple("PreVote").field(request).finish(),
            Rpc::InstallSnapshot { request, .. } => f.debug_tuple("InstallSnapshot").field(request).finish(),
            Rpc::TimeoutNow { request, .. } => f.debug_tuple("TimeoutNow").field(request).finish(),
        }
    }
}

/// The stream of incoming RPCs a transport hands the core.
pub type RpcReceiver = mpsc::Receiver<Rpc>;

/// A pipeline of AppendEntries to one peer: requests go in, responses come
/// back in the same order. At most the channel's capacity is in flight; a full
/// pipeline makes `send` wait (back-pressure). Any error ends the pipeline:
/// the responses channel yields it and then closes.
#[derive(Debug)]
pub struct AppendPipeline {
    /// Where requests go.
    pub requests: mpsc::Sender<AppendEntriesRequest>,
    /// Where responses come back, in request order.
    pub responses: mpsc::Receiver<Result<AppendEntriesResponse, TransportError>>,
}

/// Carries RPCs between servers.
///
/// The methods are async and object-safe (they return [`BoxFuture`]), so the
/// core holds an `Arc<dyn Transport>`.
pub trait Transport: Send + Sync + 'static {
    /// The address other servers reach this one at.
    fn local_addr(&self) -> ServerAddress;

    /// The node id this transport introduces itself with, if it has one
    /// (the TCP transport's handshake does). [`Raft::new`](crate::Raft::new)
    /// refuses a transport whose id is not the node's. Default: none.
    fn local_id(&self) -> Option<ServerId> {
        None
    }

    /// The stream of incoming RPCs. It can be taken once; a second call is
    /// [`TransportError::ConsumerTaken`].
    fn consumer(&self) -> Result<RpcReceiver, TransportError>;

    /// Sends an AppendEntries and waits for the answer.
    fn append_entries(
        &self,
        target: ServerAddress,
        request: AppendEntriesRequest,
    ) -> BoxFuture<'_, Result<AppendEntriesResponse, TransportError>>;

    /// Sends a RequestVote and waits for the answer.
    fn request_vote(
        &self,
        target: ServerAddress,
        request: RequestVoteRequest,
    ) -> BoxFuture<'_, Result<RequestVoteResponse, TransportError>>;

    /// Sends a PreVote and waits for the answer.
    fn pre_vote(
        &self,
        target: ServerAddress,
        request: PreVoteRequest,
    ) -> BoxFuture<'_, Result<PreVoteResponse, TransportError>>;

    /// Sends an InstallSnapshot and streams `data` after it; never holds the
    /// whole snapshot in memory.
    fn install_snapshot(
        &self,
        target: ServerAddress,
        request: InstallSnapshotRequest,
        data: SnapshotStream,
    ) -> BoxFuture<'_, Result<InstallSnapshotResponse, TransportError>>;

    /// Sends a TimeoutNow and waits for the answer.
    fn timeout_now(
        &self,
        target: ServerAddress,
        request: TimeoutNowRequest,
    ) -> BoxFuture<'_, Result<TimeoutNowResponse, TransportError>>;

    /// Opens a pipeline of AppendEntries to `target`. The default says
    /// [`TransportError::PipelineUnsupported`]; the core then uses
    /// [`spawn_pipeline`] over [`append_entries`](Self::append_entries).
    fn append_entries_pipeline(
        &self,
        target: ServerAddress,
    ) -> BoxFuture<'_, Result<AppendPipeline, TransportError>> {
        let _ = target;
        Box::pin(async { Err(TransportError::PipelineUnsupported) })
    }

    /// Stops the transport: incoming RPCs end and later calls fail with
    /// [`TransportError::Shutdown`].
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn local_addr(&self) -> ServerAddress {
        (**self).local_addr()
    }
    fn local_id(&self) -> Option<ServerId> {
        (**self).local_id()
    }
    fn consumer(&self) -> Result<RpcReceiver, TransportError> {
        (**self).consumer()
    }
    fn append_entries(
        &self,
        target: ServerAddress,
        request: AppendEntriesRequest,
    ) -> BoxFuture<'_, Result<AppendEntriesResponse, TransportError>> {
        (**self).append_entries(target, request)
    }
    fn request_vote(
        &self,
        target: ServerAddress,
        request: RequestVoteRequest,
    ) -> BoxFuture<'_, Result<RequestVoteResponse, TransportError>> {
        (**self).request_vote(target, request)
    }
    fn pre_vote(
        &self,
        target: ServerAddress,
        request: PreVoteRequest,
    ) -> BoxFuture<'_, Result<PreVoteResponse, TransportError>> {
        (**self).pre_vote(target, request)
    }
    fn install_snapshot(
        &self,
        target: ServerAddress,
        request: InstallSnapshotRequest,
        data: SnapshotStream,
    ) -> BoxFuture<'_, Result<InstallSnapshotResponse, TransportError>> {
        (**self).install_snapshot(target, request, data)
    }
    fn timeout_now(
        &self,
        target: ServerAddress,
        request: TimeoutNowRequest,
    ) -> BoxFuture<'_, Result<TimeoutNowResponse, TransportError>> {
        (**self).timeout_now(target, request)
    }
    fn append_entries_pipeline(
        &self,
        target: ServerAddress,
    ) -> BoxFuture<'_, Result<AppendPipeline, TransportError>> {
        (**self).append_entries_pipeline(target)
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        (**self).shutdown()
    }
}

/// A generic [`AppendPipeline`] over any transport's plain `append_entries`:
/// up to `depth` calls in flight at once, answers delivered in order, and the
/// pipeline closed after the first error.
pub fn spawn_pipeline(transport: Arc<dyn Transport>, target: ServerAddress, depth: usize) -> AppendPipeline {
    let depth = depth.max(1);
    let (requests_tx, mut requests_rx) = mpsc::channel::<AppendEntriesRequest>(depth);
    let (in_flight_tx, mut in_flight_rx) = mpsc::channel(depth);
    let (responses_tx, responses_rx) = mpsc::channel(depth);
    tokio::spawn(async move {
        while let Some(request) = requests_rx.recv().await {
            let transport = transport.clone();
            let target = target.clone();
            let call = tokio::spawn(async move { transport.append_entries(target, request).await });
            if in_flight_tx.send(call).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(call) = in_flight_rx.recv().await {
            let result = match call.await {
                Ok(result) => result,
                Err(_) => Err(TransportError::Shutdown),
            };
            let failed = result.is_err();
            if responses_tx.send(result).await.is_err() || failed {
                break;
            }
        }
    });
    AppendPipeline { requests: requests_tx, responses: responses_rx }
}

/// A [`SnapshotStream`] over chunks arriving on a channel: each `Ok` chunk
/// is read in order, an `Err` ends the stream with that error, and the
/// stream ends when every sender is dropped. Transports use it to hand a
/// snapshot arriving in frames to the node without buffering it whole.
pub fn chunk_stream(chunks: mpsc::Receiver<std::io::Result<bytes::Bytes>>) -> SnapshotStream {
    Box::pin(ChunkStream { chunks, current: bytes::Bytes::new() })
}

struct ChunkStream {
    chunks: mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl AsyncRead for ChunkStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while self.current.is_empty() {
            match self.chunks.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.current = chunk,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.current.len().min(buf.remaining());
        let chunk = self.current.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}
