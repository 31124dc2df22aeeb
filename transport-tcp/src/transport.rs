//! The dialing side and the [`Transport`] implementation: pooled
//! connections, pipelines, snapshot streaming, and shutdown.

use crate::TcpConfig;
use crate::conn::{self, Conn};
use crate::error::TcpError;
use crate::shared::Shared;
use crate::wire::{ConnectionKind, FrameKind};
use bytes::BytesMut;
use raft_core::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

/// How many RPCs may wait for the node.
const INCOMING_QUEUE: usize = 1024;
/// The slowest a snapshot stream is allowed to be before it times out.
const SNAPSHOT_BYTES_PER_SEC_MIN: u64 = 10 << 20;

/// A [`Transport`] over TCP (optionally TLS), with connection pooling,
/// pipelined AppendEntries, and streamed snapshots.
///
/// [`Transport::shutdown`] closes the listener and every connection and
/// waits for them; dropping the transport closes them too, without waiting.
pub struct TcpTransport {
    shared: Arc<Shared>,
    bound: SocketAddr,
    consumer: Mutex<Option<RpcReceiver>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for TcpTransport {
    /// Stops accepting and closes every connection, as
    /// [`Transport::shutdown`] does, without waiting for them to end.
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport").field("local", &self.shared.local).field("bound", &self.bound).finish()
    }
}

impl TcpTransport {
    /// Binds the listener and starts accepting. The advertised address is
    /// `config.advertise`, or the bound address when that is not unspecified.
    pub async fn bind(config: TcpConfig) -> Result<Self, TcpError> {
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|error| TcpError::Bind { addr: config.bind, error })?;
        let bound = listener.local_addr().map_err(|error| TcpError::Bind { addr: config.bind, error })?;
        let advertise = config.advertise.unwrap_or(bound);
        if advertise.ip().is_unspecified() {
            return Err(TcpError::UnspecifiedAdvertiseAddress(advertise));
        }
        #[cfg(feature = "tls")]
        let tls = config.tls.as_ref().map(crate::tls::TlsParts::new).transpose()?;
        let local = ServerAddress::new(advertise.to_string());
        #[cfg(feature = "tls")]
        let shared = Arc::new(Shared::new(config, local, tls));
        #[cfg(not(feature = "tls"))]
        let shared = Arc::new(Shared::new(config, local));
        tracing::info!(node = %shared.config.node_id, %bound, advertise = %shared.local, "TCP transport listening");
        let (rpcs_tx, rpcs_rx) = mpsc::channel(INCOMING_QUEUE);
        let server = tokio::spawn(crate::server::accept_loop(listener, shared.clone(), rpcs_tx));
        Ok(Self { shared, bound, consumer: Mutex::new(Some(rpcs_rx)), server: Mutex::new(Some(server)) })
    }

    /// The socket address the listener is bound to.
    pub fn bound_addr(&self) -> SocketAddr {
        self.bound
    }

    fn closed(&self) -> bool {
        *self.shared.shutdown.borrow()
    }

    /// Runs `work` unless the transport shuts down or `limit` passes first.
    async fn guarded<T>(
        &self,
        target: &ServerAddress,
        limit: Duration,
        work: impl std::future::Future<Output = Result<T, TransportError>>,
    ) -> Result<T, TransportError> {
        if self.closed() {
            return Err(TransportError::Shutdown);
        }
        tokio::select! {
            () = self.shared.closing() => Err(TransportError::Shutdown),
            outcome = tokio::time::timeout(limit, work) => {
                outcome.map_err(|_| TransportError::Timeout(target.clone()))?
            }
        }
    }

    async fn exchange(&self, target: ServerAddress, request: Message) -> Result<Message, TransportError> {
        let work = async {
            let (mut conn, pooled) = self.shared.checkout(&target).await?;
            match self.round_trip(&mut conn, &target, &request).await {
                Ok(response) => {
                    self.shared.checkin(target.clone(), conn);
                    Ok(response)
                }
                // A pooled connection may have died while idle (the peer
                // restarted): try once more on a fresh one.
                Err(TransportError::Io(_)) if pooled => {
                    let mut conn = self.shared.dial(&target, ConnectionKind::Rpc).await?;
                    let response = self.round_trip(&mut conn, &target, &request).await?;
                    self.shared.checkin(target.clone(), conn);
                    Ok(response)
                }
                Err(error) => Err(error),
            }
        };
        self.guarded(&target, self.shared.config.rpc_timeout, work).await
    }

    async fn round_trip(
        &self,
        conn: &mut Conn,
        target: &ServerAddress,
        request: &Message,
    ) -> Result<Message, TransportError> {
        let id = conn.next_id;
        conn.next_id += 1;
        conn.write_message(FrameKind::Request, id, request).await?;
        read_answer(conn, id, target).await
    }

    async fn snapshot_exchange(
        &self,
        target: ServerAddress,
        request: InstallSnapshotRequest,
        mut data: SnapshotStream,
    ) -> Result<Message, TransportError> {
        let chunk_size = self.shared.config.snapshot_chunk_size.max(1);
        let limit =
            self.shared.config.rpc_timeout + Duration::from_secs(request.size / SNAPSHOT_BYTES_PER_SEC_MIN);
        let work = async {
            // A snapshot stream cannot be replayed, so it always gets a fresh connection.
            let mut conn = self.shared.dial(&target, ConnectionKind::Rpc).await?;
            let id = conn.next_id;
            conn.next_id += 1;
            conn.write_message(FrameKind::Request, id, &Message::InstallSnapshotRequest(request)).await?;
            let mut chunk = vec![0u8; chunk_size];
            loop {
                let n = data.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                conn.write_raw(FrameKind::SnapshotChunk, id, &chunk[..n]).await?;
            }
            conn.write_raw(FrameKind::SnapshotEnd, id, &[]).await?;
            let response = read_answer(&mut conn, id, &target).await?;
            self.shared.checkin(target.clone(), conn);
            Ok(response)
        };
        self.guarded(&target, limit, work).await
    }
}

/// Reads the answer to request `id`.
async fn read_answer(conn: &mut Conn, id: u64, target: &ServerAddress) -> Result<Message, TransportError> {
    let frame = conn.read_frame().await?.ok_or_else(|| {
        TransportError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the peer closed the connection",
        ))
    })?;
    if frame.request_id != id {
        return Err(mismatch(format!("answer to request {} while waiting for {id}", frame.request_id)));
    }
    match frame.kind {
        FrameKind::Response => conn::message(&frame),
        FrameKind::Error => Err(TransportError::Remote {
            peer: target.clone(),
            message: String::from_utf8_lossy(&frame.body).into_owned(),
        }),
        other => Err(mismatch(format!("{other:?} frame where an answer belongs"))),
    }
}

fn mismatch(reason: String) -> TransportError {
    TransportError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, reason))
}

macro_rules! expect_answer {
    ($answer:expr, $variant:ident) => {
        match $answer? {
            Message::$variant(response) => Ok(response),
            other => Err(mismatch(format!("expected {}, got {other:?}", stringify!($variant)))),
        }
    };
}

impl Transport for TcpTransport {
    fn local_addr(&self) -> ServerAddress {
        self.shared.local.clone()
    }

    fn local_id(&self) -> Option<ServerId> {
        Some(self.shared.config.node_id.clone())
    }

    fn consumer(&self) -> Result<RpcReceiver, TransportError> {
        let mut consumer = self.consumer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        consumer.take().ok_or(TransportError::ConsumerTaken)
    }

    fn append_entries(
        &self,
        target: ServerAddress,
        request: AppendEntriesRequest,
    ) -> BoxFuture<'_, Result<AppendEntriesResponse, TransportError>> {
        Box::pin(async move {
            expect_answer!(
                self.exchange(target, Message::AppendEntriesRequest(request)).await,
                AppendEntriesResponse
            )
        })
    }

    fn request_vote(
        &self,
        target: ServerAddress,
        request: RequestVoteRequest,
    ) -> BoxFuture<'_, Result<RequestVoteResponse, TransportError>> {
        Box::pin(async move {
            expect_answer!(
                self.exchange(target, Message::RequestVoteRequest(request)).await,
                RequestVoteResponse
            )
        })
    }

    fn pre_vote(
        &self,
        target: ServerAddress,
        request: PreVoteRequest,
    ) -> BoxFuture<'_, Result<PreVoteResponse, TransportError>> {
        Box::pin(async move {
            expect_answer!(self.exchange(target, Message::PreVoteRequest(request)).await, PreVoteResponse)
        })
    }

    fn install_snapshot(
        &self,
        target: ServerAddress,
        request: InstallSnapshotRequest,
        data: SnapshotStream,
    ) -> BoxFuture<'_, Result<InstallSnapshotResponse, TransportError>> {
        Box::pin(async move {
            expect_answer!(self.snapshot_exchange(target, request, data).await, InstallSnapshotResponse)
        })
    }

    fn timeout_now(
        &self,
        target: ServerAddress,
        request: TimeoutNowRequest,
    ) -> BoxFuture<'_, Result<TimeoutNowResponse, TransportError>> {
        Box::pin(async move {
            expect_answer!(
                self.exchange(target, Message::TimeoutNowRequest(request)).await,
                TimeoutNowResponse
            )
        })
    }

    fn append_entries_pipeline(
        &self,
        target: ServerAddress,
    ) -> BoxFuture<'_, Result<AppendPipeline, TransportError>> {
        Box::pin(async move {
            if self.closed() {
                return Err(TransportError::Shutdown);
            }
            let conn = self.shared.dial(&target, ConnectionKind::Pipeline).await?;
            Ok(spawn_pipeline(conn, target, self.shared.clone()))
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // `send` would drop the value when no task is subscribed yet.
            self.shared.shutdown.send_replace(true);
            let server = self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let Some(server) = server {
                let _ = server.await;
            }
            self.shared.lock_pools().clear();
            drop(self.consumer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        })
    }
}

/// Runs a pipeline on its own connection: a writer sends requests as they
/// come, at most `pipeline_depth` unanswered; a reader matches answers to
/// requests in order. Any error ends both.
fn spawn_pipeline(conn: Conn, target: ServerAddress, shared: Arc<Shared>) -> AppendPipeline {
    let depth = shared.config.pipeline_depth.max(1);
    let (requests_tx, mut requests_rx) = mpsc::channel::<AppendEntriesRequest>(depth);
    let (responses_tx, responses_rx) = mpsc::channel(depth);
    let (ids_tx, mut ids_rx) = mpsc::channel::<u64>(depth);
    let window = Arc::new(Semaphore::new(depth));
    let Conn { stream, mut buf, limits, .. } = conn;
    let max_frame = limits.max_frame;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let closing = shared.closing();
    let writer_window = window.clone();
    tokio::spawn(async move {
        let mut next_id = 1u64;
        let mut out = BytesMut::new();
        while let Some(request) = requests_rx.recv().await {
            let Ok(permit) = writer_window.acquire().await else { break };
            permit.forget();
            out.clear();
            crate::wire::encode_message_frame(
                &mut out,
                FrameKind::Request,
                next_id,
                &Message::AppendEntriesRequest(request),
            );
            if (out.len() - 4) as u64 > max_frame || writer.write_all(&out).await.is_err() {
                break;
            }
            if ids_tx.send(next_id).await.is_err() {
                break;
            }
            next_id += 1;
        }
    });
    let rpc_timeout = shared.config.rpc_timeout;
    tokio::spawn(async move {
        tokio::pin!(closing);
        loop {
            let id = tokio::select! {
                () = &mut closing => {
                    let _ = responses_tx.send(Err(TransportError::Shutdown)).await;
                    return;
                }
                id = ids_rx.recv() => match id { Some(id) => id, None => return },
            };
            let frame =
                tokio::time::timeout(rpc_timeout, conn::read_frame(&mut reader, &mut buf, &limits)).await;
            let result = match frame {
                Err(_) => Err(TransportError::Timeout(target.clone())),
                Ok(Err(error)) => Err(error),
                Ok(Ok(None)) => Err(TransportError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the peer closed the pipeline",
                ))),
                Ok(Ok(Some(frame))) if frame.request_id != id => {
                    Err(mismatch(format!("pipeline answer {} for request {id}", frame.request_id)))
                }
                Ok(Ok(Some(frame))) => match frame.kind {
                    FrameKind::Response => match conn::message(&frame) {
                        Ok(Message::AppendEntriesResponse(response)) => Ok(response),
                        Ok(other) => Err(mismatch(format!("expected AppendEntriesResponse, got {other:?}"))),
                        Err(error) => Err(error),
                    },
                    FrameKind::Error => Err(TransportError::Remote {
                        peer: target.clone(),
                        message: String::from_utf8_lossy(&frame.body).into_owned(),
                    }),
                    other => Err(mismatch(format!("{other:?} frame in a pipeline"))),
                },
            };
            let failed = result.is_err();
            window.add_permits(1);
            if responses_tx.send(result).await.is_err() || failed {
                return;
            }
        }
    });
    AppendPipeline { requests: requests_tx, responses: responses_rx }
}
