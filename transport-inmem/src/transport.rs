use crate::fabric::{Counters, Shared};
use bytes::BytesMut;
use raft_core::codec::{decode_message, encode_message};
use raft_core::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One node's end of an [`InmemNetwork`](crate::InmemNetwork).
///
/// Cheap to clone: clones are the same endpoint.
#[derive(Clone)]
pub struct InmemTransport {
    inner: Arc<Endpoint>,
}

/// The state every clone of an [`InmemTransport`] shares.
#[doc(hidden)]
pub struct Endpoint {
    network: Arc<Shared>,
    addr: ServerAddress,
    instance: u64,
    consumer: Mutex<Option<RpcReceiver>>,
    closed: AtomicBool,
    counters: Arc<Counters>,
}

impl std::ops::Deref for InmemTransport {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.inner
    }
}

impl std::fmt::Debug for InmemTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InmemTransport").field("addr", &self.addr).finish()
    }
}

/// How many AppendEntries a pipeline keeps in flight.
const PIPELINE_DEPTH: usize = 16;

/// A message type that can travel through the codec as a [`Message`].
trait Wire: Sized {
    fn into_message(self) -> Message;
    fn from_message(message: Message) -> Option<Self>;
    fn payload_size(&self) -> u64 {
        64
    }
}

macro_rules! wire {
    ($($ty:ident),*) => {$(
        impl Wire for $ty {
            fn into_message(self) -> Message {
                Message::$ty(self)
            }
            fn from_message(message: Message) -> Option<Self> {
                match message {
                    Message::$ty(value) => Some(value),
                    _ => None,
                }
            }
        }
    )*};
}

wire!(
    AppendEntriesResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    PreVoteRequest,
    PreVoteResponse,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    TimeoutNowRequest,
    TimeoutNowResponse
);

impl Wire for AppendEntriesRequest {
    fn into_message(self) -> Message {
        Message::AppendEntriesRequest(self)
    }
    fn from_message(message: Message) -> Option<Self> {
        match message {
            Message::AppendEntriesRequest(value) => Some(value),
            _ => None,
        }
    }
    fn payload_size(&self) -> u64 {
        64 + self.entries.iter().map(|e| e.payload_size() + 25).sum::<u64>()
    }
}

/// Sends `value` through the codec, as a wire would; returns it decoded and
/// its encoded size.
fn through_codec<T: Wire>(value: T, codec: bool) -> Result<(T, u64), TransportError> {
    if !codec {
        let size = value.payload_size();
        return Ok((value, size));
    }
    let mut buf = BytesMut::new();
    encode_message(&value.into_message(), &mut buf);
    let size = buf.len() as u64;
    let decoded = decode_message(buf.freeze())?;
    let value = T::from_message(decoded).ok_or(TransportError::Decode(codec::DecodeError::UnknownTag(0)))?;
    Ok((value, size))
}

impl InmemTransport {
    pub(crate) fn new(
        network: Arc<Shared>,
        addr: ServerAddress,
        instance: u64,
        receiver: RpcReceiver,
    ) -> Self {
        let counters = network.counters(&addr);
        let consumer = Mutex::new(Some(receiver));
        let endpoint =
            Endpoint { network, addr, instance, consumer, closed: AtomicBool::new(false), counters };
        Self { inner: Arc::new(endpoint) }
    }

    async fn fail_after_a_while(&self, error: TransportError) -> TransportError {
        let wait = {
            let mut state = self.network.lock();
            let max = state.faults.failure_delay_max;
            state.between(Duration::ZERO, max)
        };
        tokio::time::sleep(wait).await;
        error
    }

    /// One RPC: fault checks, delivery to the target's queue, the answer.
    async fn call<Req: Wire, Resp: Wire>(
        &self,
        target: ServerAddress,
        request: Req,
        wrap: impl FnOnce(Req, Responder<Resp>) -> Rpc,
    ) -> Result<Resp, TransportError> {
        self.call_with(target, request, wrap, None::<fn() -> Option<Rpc>>).await
    }

    /// As [`call`](Self::call), for a request that may also be delivered a
    /// second time (`Faults::duplicate`).
    async fn call_duplicable<Req: Wire + Clone + Send + 'static, Resp: Wire + Send + 'static>(
        &self,
        target: ServerAddress,
        request: Req,
        wrap: fn(Req, Responder<Resp>) -> Rpc,
    ) -> Result<Resp, TransportError> {
        let copy = request.clone();
        let duplicate = move || Some(wrap(copy, Responder::new().0));
        self.call_with(target, request, wrap, Some(duplicate)).await
    }

    async fn call_with<Req: Wire, Resp: Wire>(
        &self,
        target: ServerAddress,
        request: Req,
        wrap: impl FnOnce(Req, Responder<Resp>) -> Rpc,
        duplicate: Option<impl FnOnce() -> Option<Rpc>>,
    ) -> Result<Resp, TransportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TransportError::Shutdown);
        }
        let (request, size) = through_codec(request, self.network.codec)?;
        self.counters.rpcs.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(size, Ordering::Relaxed);
        let (incoming, delay, drop_request, held, duplicate_after) = {
            let mut state = self.network.lock();
            let reachable = state.reachable(&self.addr, &target);
            let incoming = state.nodes.get(&target).filter(|_| reachable).map(|r| r.incoming.clone());
            let faults = state.faults.clone();
            let delay = faults.delay.map(|(min, max)| state.between(min, max));
            let held = state.held_until(&self.addr, &target);
            let duplicate_after = (duplicate.is_some() && state.chance(faults.duplicate)).then(|| {
                state.between(Duration::ZERO, faults.reorder_delay_max.max(Duration::from_millis(5)))
            });
            (incoming, delay, state.chance(faults.drop_requests), held, duplicate_after)
        };
        let Some(incoming) = incoming else {
            return Err(self.fail_after_a_while(TransportError::Unreachable(target)).await);
        };
        if drop_request {
            return Err(self.fail_after_a_while(TransportError::Timeout(target)).await);
        }
        if let Some(until) = held {
            tokio::time::sleep_until(until).await;
        }
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if let (Some(after), Some(duplicate)) = (duplicate_after, duplicate)
            && let Some(rpc) = duplicate()
        {
            let incoming = incoming.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = incoming.send(rpc).await;
            });
        }
        let (respond, answer) = Responder::new();
        let rpc = wrap(request, respond);
        self.network.tell(|| format!("{} → {target} {}", self.addr, describe(&rpc)));
        if incoming.send(rpc).await.is_err() {
            return Err(TransportError::Unreachable(target));
        }
        let response = match answer.await {
            Ok(Ok(response)) => response,
            Ok(Err(rejection)) => return Err(TransportError::Remote { peer: target, message: rejection.0 }),
            Err(_) => return Err(TransportError::Unreachable(target)),
        };
        let (reachable, drop_reply, hold, held) = {
            let mut state = self.network.lock();
            let reachable = state.reachable(&target, &self.addr);
            let faults = state.faults.clone();
            let hold =
                state.chance(faults.reorder).then(|| state.between(Duration::ZERO, faults.reorder_delay_max));
            (reachable, state.chance(faults.drop_replies), hold, state.held_until(&target, &self.addr))
        };
        if !reachable {
            return Err(self.fail_after_a_while(TransportError::Unreachable(target)).await);
        }
        if drop_reply {
            return Err(self.fail_after_a_while(TransportError::Timeout(target)).await);
        }
        if let Some(until) = held {
            tokio::time::sleep_until(until).await;
        }
        if let Some(hold) = hold {
            tokio::time::sleep(hold).await;
        }
        self.network.tell(|| format!("{target} → {} answer", self.addr));
        Ok(through_codec(response, self.network.codec)?.0)
    }
}

/// A line naming an RPC and the fields that shape what the receiver does.
fn describe(rpc: &Rpc) -> String {
    match rpc {
        Rpc::AppendEntries { request: r, .. } => format!(
            "AppendEntries(term {}, prev {}/{}, {} entries, commit {})",
            r.term,
            r.prev_log_index,
            r.prev_log_term,
            r.entries.len(),
            r.leader_commit
        ),
        Rpc::RequestVote { request: r, .. } => {
            format!("RequestVote(term {}, last {}/{})", r.term, r.last_log_index, r.last_log_term)
        }
        Rpc::PreVote { request: r, .. } => {
            format!("PreVote(term {}, last {}/{})", r.term, r.last_log_index, r.last_log_term)
        }
        Rpc::InstallSnapshot { request: r, .. } => {
            format!("InstallSnapshot(term {}, through {}/{})", r.term, r.last_log_index, r.last_log_term)
        }
        Rpc::TimeoutNow { request: r, .. } => format!("TimeoutNow(term {})", r.term),
        other => format!("{other:?}"),
    }
}

impl Transport for InmemTransport {
    fn local_addr(&self) -> ServerAddress {
        self.addr.clone()
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
        if request.prev_log_index > 0 || !request.entries.is_empty() {
            self.counters.appends.fetch_add(1, Ordering::Relaxed);
        }
        Box::pin(
            self.call_duplicable(target, request, |request, respond| Rpc::AppendEntries { request, respond }),
        )
    }

    fn request_vote(
        &self,
        target: ServerAddress,
        request: RequestVoteRequest,
    ) -> BoxFuture<'_, Result<RequestVoteResponse, TransportError>> {
        Box::pin(
            self.call_duplicable(target, request, |request, respond| Rpc::RequestVote { request, respond }),
        )
    }

    fn pre_vote(
        &self,
        target: ServerAddress,
        request: PreVoteRequest,
    ) -> BoxFuture<'_, Result<PreVoteResponse, TransportError>> {
        Box::pin(self.call_duplicable(target, request, |request, respond| Rpc::PreVote { request, respond }))
    }

    fn install_snapshot(
        &self,
        target: ServerAddress,
        request: InstallSnapshotRequest,
        data: SnapshotStream,
    ) -> BoxFuture<'_, Result<InstallSnapshotResponse, TransportError>> {
        Box::pin(self.call(target, request, move |request, respond| Rpc::InstallSnapshot {
            request,
            data,
            respond,
        }))
    }

    fn timeout_now(
        &self,
        target: ServerAddress,
        request: TimeoutNowRequest,
    ) -> BoxFuture<'_, Result<TimeoutNowResponse, TransportError>> {
        Box::pin(
            self.call_duplicable(target, request, |request, respond| Rpc::TimeoutNow { request, respond }),
        )
    }

    fn append_entries_pipeline(
        &self,
        target: ServerAddress,
    ) -> BoxFuture<'_, Result<AppendPipeline, TransportError>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(TransportError::Shutdown);
            }
            let transport: Arc<dyn Transport> = Arc::new(self.clone());
            Ok(raft_core::transport::spawn_pipeline(transport, target, PIPELINE_DEPTH))
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.closed.store(true, Ordering::Release);
            let mut state = self.network.lock();
            if state.nodes.get(&self.addr).is_some_and(|r| r.instance == self.instance) {
                state.nodes.remove(&self.addr);
            }
            drop(state);
            drop(self.consumer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        })
    }
}
