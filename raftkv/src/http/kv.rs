//! `/kv/{key}`: writes and the three read modes.

use super::{ApiError, AppState, REQUEST_ID_HEADER, Shared, bad_path};
use crate::fsm::{Command, KvFsm};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

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

pub(super) async fn put_key(
    State(state): State<Shared>,
    key: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    match key {
        Ok(Path(key)) => write_key(state, key, request, true).await,
        Err(rejection) => bad_path(&state, &rejection),
    }
}

pub(super) async fn delete_key(
    State(state): State<Shared>,
    key: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    match key {
        Ok(Path(key)) => write_key(state, key, request, false).await,
        Err(rejection) => bad_path(&state, &rejection),
    }
}

async fn write_key(state: Shared, key: String, request: Request, put: bool) -> Response {
    let (parts, body) = request.into_parts();
    let limit = state.max_value_bytes;
    let value = match axum::body::to_bytes(body, limit + 1).await {
        Ok(bytes) if bytes.len() <= limit => bytes,
        Ok(bytes) => {
            let message = format!("the value is {} bytes; the limit is {limit}", bytes.len());
            return state.error(StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
        }
        Err(_) => {
            let message = format!("the value is larger than the limit of {limit} bytes");
            return state.error(StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
        }
    };
    let checked = check_key(&state, &key).and_then(|()| request_id(&state, &parts.headers));
    let request_id = match checked {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    if !state.raft.is_leader() {
        return state.forward(parts.method, &parts.uri, &parts.headers, value).await;
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
    /// From the leader's state, without a quorum round, once the leader has
    /// applied an entry of its own term.
    #[default]
    Default,
    /// Linearizable: through `consistent_read` on the leader.
    Consistent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadQuery {
    #[serde(default)]
    consistency: Consistency,
}

pub(super) async fn get_key(
    State(state): State<Shared>,
    key: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let key = match key {
        Ok(Path(key)) => key,
        Err(rejection) => return bad_path(&state, &rejection),
    };
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
            return state.forward(Method::GET, request.uri(), request.headers(), Bytes::new()).await;
        }
        Consistency::Default => match state.until_leader_ready().await {
            Ok(()) => read(&state.fsm),
            Err(error) => return error.into_response(),
        },
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
