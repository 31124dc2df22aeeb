//! `/cluster/…`: status, and the operator's calls that change the cluster
//! (join, remove, transfer), which need the admin token when one is set.

use super::{ApiError, AppState, Shared, WriteAnswer, bad_path};
use crate::fsm::Command;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use raft_kit::{RaftState, ServerId};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// The largest join request body read.
const JOIN_BODY_MAX: usize = 16 << 10;
/// The longest node id accepted in a join.
const ID_MAX_BYTES: usize = 128;

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
    /// Whether this node was removed from the cluster (it then serves no
    /// reads or writes).
    #[serde(default)]
    pub removed: bool,
}

pub(super) async fn status(State(state): State<Shared>) -> Json<StatusAnswer> {
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
        removed: state.removed.load(Ordering::Acquire),
    })
}

/// `POST /cluster/join`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The new node's id.
    pub id: String,
    /// Its Raft address (`host:port`).
    pub raft_addr: String,
    /// Its HTTP address (`host:port`).
    pub http_addr: String,
    /// Whether it votes (default true).
    #[serde(default = "yes")]
    pub voter: bool,
    /// Allow changing the addresses of a server that is already a member
    /// (default false: a join naming a member with other addresses is 409).
    #[serde(default)]
    pub readdress: bool,
}

fn yes() -> bool {
    true
}

impl AppState {
    /// 401 unless the request carries the admin token (when one is set).
    fn authorize(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        match &self.admin_token {
            Some(token) if !token.admits(headers) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this call changes the cluster and needs the admin token: `Authorization: Bearer <token>`",
            )),
            _ => Ok(()),
        }
    }
}

/// Whether `addr` reads as `host:port`: a port from 1 to 65535 and a host
/// of letters, digits, dots and dashes, or a bracketed IPv6 address.
pub(crate) fn is_host_port(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else { return false };
    let port_ok = port.parse::<u16>().is_ok_and(|port| port > 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    };
    port_ok && host_ok
}

fn check_join(join: &JoinRequest) -> Result<(), String> {
    if join.id.is_empty() || join.id.len() > ID_MAX_BYTES {
        return Err(format!("id must be 1 to {ID_MAX_BYTES} bytes"));
    }
    if join.id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("id must not hold spaces or control characters".into());
    }
    for (name, addr) in [("raft_addr", &join.raft_addr), ("http_addr", &join.http_addr)] {
        if !is_host_port(addr) {
            return Err(format!("{name} `{addr}` is not an address (host:port)"));
        }
    }
    Ok(())
}

pub(super) async fn join(State(state): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(error) = state.authorize(&parts.headers) {
        return error.into_response();
    }
    let Ok(body) = axum::body::to_bytes(body, JOIN_BODY_MAX).await else {
        let message = format!("a join request is at most {JOIN_BODY_MAX} bytes");
        return state.error(StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
    };
    let join: JoinRequest = match serde_json::from_slice(&body) {
        Ok(join) => join,
        Err(error) => {
            return state.error(StatusCode::BAD_REQUEST, format!("a join request: {error}")).into_response();
        }
    };
    if let Err(reason) = check_join(&join) {
        return state.error(StatusCode::BAD_REQUEST, reason).into_response();
    }
    if !state.raft.is_leader() {
        return state.forward(parts.method, &parts.uri, &parts.headers, body).await;
    }
    match admit(&state, join).await {
        Ok(index) => Json(WriteAnswer { index }).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Adds (or, asked to, re-addresses) a server on the leader. Everything that
/// can refuse the join is checked before anything is applied; then the
/// membership change goes first, so a refused change leaves nothing
/// behind, and the HTTP address is recorded after it. If recording fails
/// (leadership lost, a timeout), the answer says so and the same join sent
/// again finishes it.
async fn admit(state: &AppState, join: JoinRequest) -> Result<u64, ApiError> {
    let (config_index, config) = state.raft.get_configuration();
    let id = ServerId::new(join.id.clone());
    let recorded = state.fsm.read().http_addrs.get(&join.id).cloned();
    let conflict = |message: String| Err(ApiError::new(StatusCode::CONFLICT, message).final_answer());
    if let Some(other) = config.servers.iter().find(|s| s.id != id && s.address.as_str() == join.raft_addr) {
        return conflict(format!(
            "raft_addr {} is server `{}`'s; nothing was changed",
            join.raft_addr, other.id
        ));
    }
    let http_owner = state
        .fsm
        .read()
        .http_addrs
        .iter()
        .find(|(k, v)| **k != join.id && **v == join.http_addr)
        .map(|(k, _)| k.clone());
    if let Some(owner) = http_owner.filter(|owner| config.server(&ServerId::new(owner.clone())).is_some()) {
        return conflict(format!("http_addr {} is server `{owner}`'s; nothing was changed", join.http_addr));
    }
    let existing = config.server(&id).cloned();
    if let Some(member) = &existing {
        let same_raft = member.address.as_str() == join.raft_addr;
        let same_http = recorded.as_deref().is_none_or(|http| http == join.http_addr);
        if !(join.readdress || same_raft && same_http) {
            return conflict(format!(
                "server `{}` is a member at raft_addr {} and http_addr {}; a join with other addresses needs \"readdress\": true (nothing was changed)",
                join.id,
                member.address,
                recorded.as_deref().unwrap_or("(not recorded)")
            ));
        }
    }
    let is_voter = existing.as_ref().is_some_and(|m| m.suffrage == raft_kit::Suffrage::Voter);
    let unchanged = existing.as_ref().is_some_and(|m| m.address.as_str() == join.raft_addr)
        && (join.voter == is_voter || (!join.voter && is_voter));
    let mut index = config_index;
    if !unchanged {
        let addr = raft_kit::ServerAddress::new(join.raft_addr.clone());
        let added = if join.voter {
            state.raft.add_voter(id, addr, 0, state.timeout).await
        } else {
            state.raft.add_nonvoter(id, addr, 0, state.timeout).await
        };
        index = added.map_err(|e| state.raft_error(e))?;
    }
    if recorded.as_deref() != Some(join.http_addr.as_str()) {
        let register = Command::Register { id: join.id.clone(), http_addr: join.http_addr.clone() };
        let applied = state.apply(register).await.map_err(|ApiError { status, message, leader, .. }| {
            ApiError {
                status,
                message: format!(
                    "server `{}` was added, but recording its http_addr failed ({message}); send the same join again to finish",
                    join.id
                ),
                leader,
                retryable: Some(true),
            }
        })?;
        index = index.max(applied.index);
    }
    Ok(index)
}

pub(super) async fn remove(
    State(state): State<Shared>,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => return bad_path(&state, &rejection),
    };
    if let Err(error) = state.authorize(request.headers()) {
        return error.into_response();
    }
    if !state.raft.is_leader() {
        return state.forward(request.method().clone(), request.uri(), request.headers(), Bytes::new()).await;
    }
    let id = ServerId::new(id);
    if state.raft.get_configuration().1.server(&id).is_none() {
        return state
            .error(
                StatusCode::NOT_FOUND,
                format!("no server `{id}` in the configuration; nothing was changed"),
            )
            .into_response();
    }
    match state.raft.remove_server(id, 0, state.timeout).await {
        Ok(index) => Json(WriteAnswer { index }).into_response(),
        Err(error) => state.raft_error(error).into_response(),
    }
}

pub(super) async fn transfer(State(state): State<Shared>, request: Request) -> Response {
    if let Err(error) = state.authorize(request.headers()) {
        return error.into_response();
    }
    if !state.raft.is_leader() {
        return state.forward(request.method().clone(), request.uri(), request.headers(), Bytes::new()).await;
    }
    match tokio::time::timeout(state.timeout, state.raft.leadership_transfer()).await {
        Ok(Ok(())) => Json(serde_json::json!({})).into_response(),
        Ok(Err(error)) => state.raft_error(error).into_response(),
        Err(_) => state
            .error(
                StatusCode::GATEWAY_TIMEOUT,
                "the transfer did not finish in time; another node may lead soon",
            )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_and_port() {
        for good in ["127.0.0.1:8080", "node-1.example:9000", "[::1]:7000", "localhost:1"] {
            assert!(is_host_port(good), "{good}");
        }
        for bad in
            ["not an address", "127.0.0.1", "127.0.0.1:0", "host:99999", ":80", "[::1:80", "a/b:80", "a b:1"]
        {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn a_join_is_checked_before_anything_is_applied() {
        let join = |id: &str, raft: &str, http: &str| JoinRequest {
            id: id.into(),
            raft_addr: raft.into(),
            http_addr: http.into(),
            voter: true,
            readdress: false,
        };
        assert!(check_join(&join("n1", "127.0.0.1:1", "127.0.0.1:2")).is_ok());
        assert!(check_join(&join("", "127.0.0.1:1", "127.0.0.1:2")).is_err());
        assert!(check_join(&join("n 1", "127.0.0.1:1", "127.0.0.1:2")).is_err());
        assert!(check_join(&join("n1", "not an address", "127.0.0.1:2")).is_err());
        assert!(check_join(&join("n1", "127.0.0.1:1", "x")).is_err());
        assert!(check_join(&join(&"n".repeat(ID_MAX_BYTES + 1), "127.0.0.1:1", "127.0.0.1:2")).is_err());
    }
}
