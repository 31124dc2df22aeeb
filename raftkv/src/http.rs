//! The HTTP API (axum). Every error is JSON:
//! `{"error": "...", "leader": "<http addr of the leader, or null>", "retryable": bool}`.
//!
//! | request | answer |
//! |---------|--------|
//! | `PUT /kv/{key}` (body: the value) | 200 `{"index": N}` once applied |
//! | `DELETE /kv/{key}` | 200 `{"index": N}` once applied |
//! | `GET /kv/{key}?consistency=stale\|default\|consistent` | 200 with the value's bytes, 404 if absent |
//! | `GET /cluster/status` | id, state, term, leader, indexes, configuration, whether removed |
//! | `POST /cluster/join` `{"id", "raft_addr", "http_addr", "voter", "readdress"}` | 200 `{"index": N}` |
//! | `DELETE /cluster/servers/{id}` | 200 `{"index": N}`; 404 if not a member |
//! | `POST /cluster/transfer` | 200 `{}` once another node leads |
//! | `GET /metrics` | the library's metrics, Prometheus text format |
//!
//! Writes and `default`/`consistent` reads sent to a follower are forwarded
//! to the leader, with the path and query exactly as the client sent them.
//! 503: no leader known; 504: the outcome is unknown (the write may or may
//! not have been applied); 409: a membership change or leadership transfer
//! is already under way (retry), or a join names a member with other
//! addresses — a write answered 409 was never applied; 410: this node was
//! removed from the cluster; 401: the admin token is missing or wrong; 422:
//! a request id reused for another request; 413: key or value too large;
//! 414, 431: request line or headers too long; 400: a malformed request. A
//! write that carries the header [`REQUEST_ID_HEADER`] applies once however
//! often it is retried.

mod cluster;
mod kv;

pub use cluster::{JoinRequest, StatusAnswer};
pub use kv::{Consistency, WriteAnswer};

use crate::fsm::{Applied, Command, KvFsm};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use raft_kit::{Raft, RaftError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The header a client sets to make a write idempotent.
pub const REQUEST_ID_HEADER: &str = "raftkv-request-id";
/// Set on a request a follower forwarded, so it is never forwarded twice.
pub const FORWARDED_HEADER: &str = "raftkv-forwarded";
/// The longest request target (path and query) answered; longer is 414.
pub const URI_MAX_BYTES: usize = 8 << 10;
/// The most bytes of headers answered; more is 431.
pub const HEADERS_MAX_BYTES: usize = 32 << 10;

/// What the handlers share.
pub struct AppState {
    /// The node.
    pub raft: Raft<KvFsm>,
    /// Its state machine.
    pub fsm: KvFsm,
    /// This node's HTTP address, as others reach it.
    pub http_addr: String,
    /// For forwarding to the leader.
    pub client: reqwest::Client,
    /// The longest key accepted.
    pub max_key_bytes: usize,
    /// The largest value accepted.
    pub max_value_bytes: usize,
    /// How long to wait for the cluster.
    pub timeout: Duration,
    /// Renders the metrics.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The admin token every cluster-changing request must carry, if set.
    pub admin_token: Option<crate::admin::AdminToken>,
    /// Set once this node learns it was removed from the cluster.
    pub removed: Arc<AtomicBool>,
    /// When this node leads: whether it has applied an entry of its own
    /// term yet, so that its state holds every write an earlier leader
    /// acknowledged (see [`LeaderReady`]).
    pub leader_ready: LeaderReady,
}

/// Whether a leader's state is as new as its term: a new leader may not yet
/// have applied writes the previous leader acknowledged, and a `default`
/// read from it would go back in time. It becomes ready once a barrier (an
/// entry of its own term) has applied; readers that come before wait for
/// one barrier together.
#[derive(Debug, Default)]
pub struct LeaderReady {
    /// The term in which this node, as leader, applied an entry of its own.
    term: AtomicU64,
    /// Held by the one reader running the barrier.
    barrier: tokio::sync::Mutex<()>,
}

type Shared = Arc<AppState>;

/// An error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The leader's HTTP address, if known.
    pub leader: Option<String>,
    /// Whether the same request may succeed if sent again later (no leader
    /// yet, a change under way, an unknown outcome).
    #[serde(default)]
    pub retryable: bool,
}

/// An error answer on its way out.
struct ApiError {
    status: StatusCode,
    message: String,
    leader: Option<String>,
    /// `None`: as the status says (503, 504 and 409 are worth a retry).
    retryable: Option<bool>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), leader: None, retryable: None }
    }

    /// Marks an answer that the same request will always get (a 409 for a
    /// conflicting member, say), whatever its status.
    fn final_answer(mut self) -> Self {
        self.retryable = Some(false);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retryable = self.retryable.unwrap_or(matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT | StatusCode::CONFLICT
        ));
        let body = ErrorBody { error: self.message, leader: self.leader, retryable };
        (self.status, Json(body)).into_response()
    }
}

impl AppState {
    fn leader_http(&self) -> Option<String> {
        let (id, _) = self.raft.leader()?;
        self.fsm.read().http_addrs.get(id.as_str()).cloned()
    }

    fn error(&self, status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { leader: self.leader_http(), ..ApiError::new(status, message) }
    }

    fn raft_error(&self, error: RaftError) -> ApiError {
        match error {
            RaftError::NotLeader { .. } | RaftError::Shutdown => {
                self.error(StatusCode::SERVICE_UNAVAILABLE, format!("not applied: {error}"))
            }
            RaftError::Timeout | RaftError::LeadershipLost => self.error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("outcome unknown ({error}): the request may or may not have taken effect"),
            ),
            RaftError::ConfigurationChangeInProgress
            | RaftError::ConfigurationChanged { .. }
            | RaftError::LeadershipTransferInProgress => {
                self.error(StatusCode::CONFLICT, format!("{error}; not applied, retry when it is done"))
            }
            RaftError::Configuration(_)
            | RaftError::NotVoter(_)
            | RaftError::NoTransferTarget
            | RaftError::TransferToSelf => self.error(StatusCode::BAD_REQUEST, error.to_string()),
            other => self.error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }

    /// Sends a request this follower cannot answer to the leader, once, with
    /// the path and query the client sent (never one re-formed from decoded
    /// parts, which could name another resource).
    async fn forward(
        &self,
        method: Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        if headers.contains_key(FORWARDED_HEADER) {
            return self
                .error(StatusCode::SERVICE_UNAVAILABLE, "forwarded to a node that is not the leader")
                .into_response();
        }
        let Some(leader) = self.leader_http().filter(|leader| *leader != self.http_addr) else {
            return self.error(StatusCode::SERVICE_UNAVAILABLE, "no leader is known").into_response();
        };
        let path_and_query = uri.path_and_query().map_or_else(|| uri.path(), |p| p.as_str());
        let mut request = self
            .client
            .request(method, format!("http://{leader}{path_and_query}"))
            .header(FORWARDED_HEADER, "1")
            .timeout(self.timeout + Duration::from_secs(1))
            .body(body);
        for name in [REQUEST_ID_HEADER, header::CONTENT_TYPE.as_str(), header::AUTHORIZATION.as_str()] {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(answer) => {
                let status =
                    StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
                let bytes = answer.bytes().await.unwrap_or_default();
                let mut response = (status, bytes).into_response();
                if let Some(content_type) = content_type {
                    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
                }
                response
            }
            // The leader may have applied it before the connection failed.
            Err(error) if error.is_timeout() => self
                .error(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("outcome unknown: forwarding to the leader timed out ({error})"),
                )
                .into_response(),
            Err(error) => {
                let status = if error.is_connect() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::GATEWAY_TIMEOUT
                };
                self.error(status, format!("forwarding to the leader at {leader} failed: {error}"))
                    .into_response()
            }
        }
    }

    async fn apply(&self, command: Command) -> Result<Applied, ApiError> {
        let applied = self
            .raft
            .apply(command.encode(), self.timeout)
            .await
            .map(|r| r.response)
            .map_err(|e| self.raft_error(e))?;
        if applied.mismatch {
            return Err(self.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the {REQUEST_ID_HEADER} was first used at index {} for another request; nothing was applied (use a new id for a new request)",
                    applied.index
                ),
            ));
        }
        Ok(applied)
    }

    /// Waits, as leader, until an entry of this term has applied (at once
    /// when one has). Readers that arrive together share one barrier.
    async fn until_leader_ready(&self) -> Result<(), ApiError> {
        let term = self.raft.current_term();
        if self.leader_ready.term.load(Ordering::Acquire) == term {
            return Ok(());
        }
        let _one = self.leader_ready.barrier.lock().await;
        if self.leader_ready.term.load(Ordering::Acquire) == term {
            return Ok(());
        }
        self.raft.barrier(self.timeout).await.map_err(|e| self.raft_error(e))?;
        if self.raft.current_term() != term || !self.raft.is_leader() {
            return Err(self.error(StatusCode::SERVICE_UNAVAILABLE, "leadership changed during the read"));
        }
        self.leader_ready.term.store(term, Ordering::Release);
        Ok(())
    }

    fn removed_error(&self) -> ApiError {
        ApiError::new(
            StatusCode::GONE,
            "this node was removed from the cluster: it serves no reads or writes (restart it on an empty data directory with --join to add it again)",
        )
        .final_answer()
    }
}

/// The router for a node.
pub fn router(state: Shared) -> Router {
    let body_limit = state.max_value_bytes + 64 * 1024;
    let guards = axum::middleware::from_fn_with_state(state.clone(), guard);
    Router::new()
        .route("/kv/{key}", get(kv::get_key).put(kv::put_key).delete(kv::delete_key))
        .route("/cluster/status", get(cluster::status))
        .route("/cluster/join", post(cluster::join))
        .route("/cluster/servers/{id}", delete(cluster::remove))
        .route("/cluster/transfer", post(cluster::transfer))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see raftkv's README for the API)")
        })
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here (see raftkv's README for the API)"),
            )
        })
        .layer(guards)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// What every request passes first: its request line and headers within
/// bounds (414, 431), and a node that was removed serves only its status
/// and metrics (410).
async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > URI_MAX_BYTES {
        let message = format!("the request target is {target} bytes; the limit is {URI_MAX_BYTES}");
        return ApiError::new(StatusCode::URI_TOO_LONG, message).into_response();
    }
    let headers: usize =
        request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers > HEADERS_MAX_BYTES {
        let message = format!("the headers are {headers} bytes; the limit is {HEADERS_MAX_BYTES}");
        return ApiError::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, message).into_response();
    }
    let path = request.uri().path();
    let always = path == "/cluster/status" || path == "/metrics";
    if !always && state.removed.load(Ordering::Acquire) {
        return state.removed_error().into_response();
    }
    next.run(request).await
}

async fn metrics(State(state): State<Shared>) -> Response {
    match &state.metrics {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => state.error(StatusCode::NOT_FOUND, "metrics are not enabled in this process").into_response(),
    }
}

/// A path parameter that did not decode (not UTF-8, say), as a JSON 400.
fn bad_path(state: &AppState, rejection: &axum::extract::rejection::PathRejection) -> Response {
    state.error(StatusCode::BAD_REQUEST, format!("the path: {}", rejection.body_text())).into_response()
}
