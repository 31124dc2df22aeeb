//! The HTTP API (axum). Every error is JSON:
//! `{"error": "...", "leader": "<http addr of the leader, or null>"}`.
//!
//! | request | answer |
//! |---------|--------|
//! | `PUT /kv/{key}` (body: the value) | 200 `{"index": N}` once applied |
//! | `DELETE /kv/{key}` | 200 `{"index": N}` once applied |
//! | `GET /kv/{key}?consistency=stale\|default\|consistent` | 200 with the value's bytes, 404 if absent |
//! | `GET /cluster/status` | id, state, term, leader, indexes, configuration |
//! | `POST /cluster/join` `{"id", "raft_addr", "http_addr", "voter"}` | 200 `{"index": N}` |
//! | `DELETE /cluster/servers/{id}` | 200 `{"index": N}` |
//! | `POST /cluster/transfer` | 200 `{}` once another node leads |
//! | `GET /metrics` | the library's metrics, Prometheus text format |
//!
//! Writes and `default`/`consistent` reads sent to a follower are forwarded
//! to the leader. 503: no leader known; 504: the outcome is unknown (the
//! write may or may not have been applied); 409: a membership change or
//! leadership transfer is already under way (retry); 413: key or value too
//! large; 400: a malformed request. A write that carries the header
//! [`REQUEST_ID_HEADER`] applies once however often it is retried.

use crate::fsm::{Applied, Command, KvFsm};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use raft_kit::{Raft, RaftError, RaftState, ServerId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The header a client sets to make a write idempotent.
pub const REQUEST_ID_HEADER: &str = "raftkv-request-id";
/// Set on a request a follower forwarded, so it is never forwarded twice.
pub const FORWARDED_HEADER: &str = "raftkv-forwarded";

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
}

type Shared = Arc<AppState>;

/// An error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The leader's HTTP address, if known.
    pub leader: Option<String>,
}

struct ApiError(StatusCode, String, Option<String>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1, leader: self.2 })).into_response()
    }
}

impl AppState {
    fn leader_http(&self) -> Option<String> {
        let (id, _) = self.raft.leader()?;
        self.fsm.read().http_addrs.get(id.as_str()).cloned()
    }

    fn error(&self, status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into(), self.leader_http())
    }

    fn raft_error(&self, error: RaftError) -> ApiError {
        match error {
            RaftError::NotLeader { .. } | RaftError::Shutdown => {
                self.error(StatusCode::SERVICE_UNAVAILABLE, format!("not applied: {error}"))
            }
            RaftError::Timeout | RaftError::LeadershipLost => self.error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("outcome unknown ({error}): the write may or may not have been applied"),
            ),
            RaftError::ConfigurationChangeInProgress
            | RaftError::ConfigurationChanged { .. }
            | RaftError::LeadershipTransferInProgress => {
                self.error(StatusCode::CONFLICT, format!("{error}; retry when it is done"))
            }
            RaftError::Configuration(_)
            | RaftError::NotVoter(_)
            | RaftError::NoTransferTarget
            | RaftError::TransferToSelf => self.error(StatusCode::BAD_REQUEST, error.to_string()),
            other => self.error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }

    /// Sends a request this follower cannot answer to the leader, once.
    async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
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
        let mut request = self
            .client
            .request(method, format!("http://{leader}{path_and_query}"))
            .header(FORWARDED_HEADER, "1")
            .timeout(self.timeout + Duration::from_secs(1))
            .body(body);
        for name in [REQUEST_ID_HEADER, header::CONTENT_TYPE.as_str()] {
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
        self.raft
            .apply(command.encode(), self.timeout)
            .await
            .map(|r| r.response)
            .map_err(|e| self.raft_error(e))
    }
}

/// The router for a node.
pub fn router(state: Shared) -> Router {
    let body_limit = state.max_value_bytes + 64 * 1024;
    Router::new()
        .route("/kv/{key}", get(get_key).put(put_key).delete(delete_key))
        .route("/cluster/status", get(status))
        .route("/cluster/join", post(join))
        .route("/cluster/servers/{id}", delete(remove))
        .route("/cluster/transfer", post(transfer))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError(StatusCode::NOT_FOUND, "no such endpoint (see raftkv's README for the API)".into(), None)
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// The answer to a write.
#[derive(Debug, Serialize, Deserialize)]
pub struct WriteAnswer {
    /// The index the write took effect at.
    pub index: u64,
}

fn request_id(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(REQUEST_ID_HEADER) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Ok(id) if !id.is_empty() && id.len() <= 128 => Ok(Some(id.to_owned())),
            _ => Err(state.error(
                StatusCode::BAD_REQUEST,
                format!("{REQUEST_ID_HEADER} must be 1 to 128 visible ASCII characters"),
            )),
        },
    }
}

fn check_key(state: &AppState, key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(state.error(StatusCode::BAD_REQUEST, "the key is empty"));
    }
    if key.len() > state.max_key_bytes {
        return Err(state.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the key is {} bytes; the limit is {}", key.len(), state.max_key_bytes),
        ));
    }
    Ok(())
}

fn uri_of(request: &Request) -> String {
    request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned())
}

async fn put_key(State(state): State<Shared>, Path(key): Path<String>, request: Request) -> Response {
    write_key(state, key, request, true).await
}

async fn delete_key(State(state): State<Shared>, Path(key): Path<String>, request: Request) -> Response {
    write_key(state, key, request, false).await
}

async fn write_key(state: Shared, key: String, request: Request, put: bool) -> Response {
    let uri = uri_of(&request);
    let (parts, body) = request.into_parts();
    let limit = state.max_value_bytes;
    let value = match axum::body::to_bytes(body, limit + 1).await {
        Ok(bytes) if bytes.len() <= limit => bytes,
        Ok(bytes) => {
            return state
                .error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the value is {} bytes; the limit is {limit}", bytes.len()),
                )
                .into_response();
        }
        Err(_) => {
            return state
                .error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the value is larger than the limit of {limit} bytes"),
                )
                .into_response();
        }
    };
    let checked = check_key(&state, &key).and_then(|()| request_id(&state, &parts.headers));
    let request_id = match checked {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    if !state.raft.is_leader() {
        return state.forward(parts.method, &uri, &parts.headers, value).await;
    }
    let command = if put {
        Command::Put { key, value: value.to_vec(), request_id }
    } else {
        Command::Delete { key, request_id }
    };
    match state.apply(command).await {
        Ok(applied) => Json(WriteAnswer { index: applied.index }).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `?consistency=`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// From this node's state, whatever it is.
    Stale,
    /// From the leader's state, without a quorum round.
    #[default]
    Default,
    /// Linearizable: through `consistent_read` on the leader.
    Consistent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    #[serde(default)]
    consistency: Consistency,
}

async fn get_key(
    State(state): State<Shared>,
    Path(key): Path<String>,
    query: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Response {
    let Ok(Query(query)) = query else {
        return state
            .error(StatusCode::BAD_REQUEST, "consistency must be one of stale, default, consistent")
            .into_response();
    };
    if let Err(error) = check_key(&state, &key) {
        return error.into_response();
    }
    let read = |fsm: &KvFsm| fsm.read().kv.get(&key).cloned();
    let value = match query.consistency {
        Consistency::Stale => read(&state.fsm),
        _ if !state.raft.is_leader() => {
            let uri = uri_of(&request);
            return state.forward(Method::GET, &uri, request.headers(), Bytes::new()).await;
        }
        Consistency::Default => read(&state.fsm),
        Consistency::Consistent => {
            match state.raft.consistent_read(state.timeout, || read(&state.fsm)).await {
                Ok(value) => value,
                Err(error) => return state.raft_error(error).into_response(),
            }
        }
    };
    match value {
        Some(value) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))], value)
                .into_response()
        }
        None => state.error(StatusCode::NOT_FOUND, format!("no key `{key}`")).into_response(),
    }
}

/// `GET /cluster/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusAnswer {
    /// This node's id.
    pub id: String,
    /// Its HTTP address.
    pub http_addr: String,
    /// Its role.
    pub state: RaftState,
    /// Its term.
    pub term: u64,
    /// The leader's id, if known.
    pub leader: Option<String>,
    /// The leader's HTTP address, if known.
    pub leader_http: Option<String>,
    /// The commit index.
    pub commit_index: u64,
    /// The index applied to the key-value state.
    pub applied_index: u64,
    /// The last index in the log.
    pub last_index: u64,
    /// The latest configuration.
    pub configuration: raft_kit::Configuration,
    /// Every node's HTTP address, by id.
    pub http_addrs: std::collections::BTreeMap<String, String>,
    /// How many keys this node holds.
    pub keys: usize,
}

async fn status(State(state): State<Shared>) -> Json<StatusAnswer> {
    let stats = state.raft.stats();
    let (http_addrs, keys) = {
        let fsm = state.fsm.read();
        (fsm.http_addrs.clone(), fsm.kv.len())
    };
    Json(StatusAnswer {
        id: state.raft.id().to_string(),
        http_addr: state.http_addr.clone(),
        state: stats.state,
        term: stats.term,
        leader: stats.leader.as_ref().map(|(id, _)| id.to_string()),
        leader_http: state.leader_http(),
        commit_index: stats.commit_index,
        applied_index: stats.applied_index,
        last_index: stats.last_log_index,
        configuration: stats.configuration,
        http_addrs,
        keys,
    })
}

/// `POST /cluster/join`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The new node's id.
    pub id: String,
    /// Its Raft address.
    pub raft_addr: String,
    /// Its HTTP address.
    pub http_addr: String,
    /// Whether it votes (default true).
    #[serde(default = "yes")]
    pub voter: bool,
}

fn yes() -> bool {
    true
}

async fn join(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let join: JoinRequest = match serde_json::from_slice(&body) {
        Ok(join) => join,
        Err(error) => {
            return state.error(StatusCode::BAD_REQUEST, format!("a join request: {error}")).into_response();
        }
    };
    if join.id.is_empty() || join.raft_addr.is_empty() || join.http_addr.is_empty() {
        return state
            .error(StatusCode::BAD_REQUEST, "id, raft_addr and http_addr must not be empty")
            .into_response();
    }
    if !state.raft.is_leader() {
        return state.forward(Method::POST, "/cluster/join", &headers, body).await;
    }
    if let Err(error) =
        state.apply(Command::Register { id: join.id.clone(), http_addr: join.http_addr.clone() }).await
    {
        return error.into_response();
    }
    let (id, addr) = (ServerId::new(join.id), raft_kit::ServerAddress::new(join.raft_addr));
    let added = if join.voter {
        state.raft.add_voter(id, addr, 0, state.timeout).await
    } else {
        state.raft.add_nonvoter(id, addr, 0, state.timeout).await
    };
    match added {
        Ok(index) => Json(WriteAnswer { index }).into_response(),
        Err(error) => state.raft_error(error).into_response(),
    }
}

async fn remove(State(state): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !state.raft.is_leader() {
        return state
            .forward(Method::DELETE, &format!("/cluster/servers/{id}"), &headers, Bytes::new())
            .await;
    }
    match state.raft.remove_server(ServerId::new(id), 0, state.timeout).await {
        Ok(index) => Json(WriteAnswer { index }).into_response(),
        Err(error) => state.raft_error(error).into_response(),
    }
}

async fn transfer(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !state.raft.is_leader() {
        return state.forward(Method::POST, "/cluster/transfer", &headers, Bytes::new()).await;
    }
    match tokio::time::timeout(state.timeout, state.raft.leadership_transfer()).await {
        Ok(Ok(())) => Json(serde_json::json!({})).into_response(),
        Ok(Err(error)) => state.raft_error(error).into_response(),
        Err(_) => {
            state.error(StatusCode::GATEWAY_TIMEOUT, "the transfer did not finish in time").into_response()
        }
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    match &state.metrics {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => state.error(StatusCode::NOT_FOUND, "metrics are not enabled in this process").into_response(),
    }
}
