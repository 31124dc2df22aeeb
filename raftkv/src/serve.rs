//! `raftkv serve`: a node and its HTTP API, until Ctrl-C or SIGTERM.

use crate::admin::AdminToken;
use crate::config::ServeConfig;
use crate::fsm::Command;
use crate::http::{AppState, JoinRequest, router};
use crate::node::{self, StartError};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The node did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The HTTP address could not be bound.
    #[error("binding the HTTP address {addr}: {error}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// Joining the cluster through `--join` failed.
    #[error("joining through {via}: {reason}")]
    Join {
        /// The node asked.
        via: String,
        /// Why.
        reason: String,
    },
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    /// The admin token file could not be used.
    #[error("admin token: {0}")]
    AdminToken(String),
}

/// Runs a node until Ctrl-C or SIGTERM.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok();
    let admin_token = match &config.admin_token_file {
        Some(path) => Some(AdminToken::from_file(path).map_err(ServeError::AdminToken)?),
        None => None,
    };
    let started = node::start(&config).await?;
    let http_addr = config.http_addr.expect("checked by start");
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|error| ServeError::Bind { addr: http_addr, error })?;
    let advertised =
        listener.local_addr().map_err(|error| ServeError::Bind { addr: http_addr, error })?.to_string();
    let state = Arc::new(AppState {
        raft: started.raft.clone(),
        fsm: started.fsm.clone(),
        http_addr: advertised.clone(),
        // Forwarding to the leader reuses connections; a pooled one is let
        // go before the leader's idle limit would close it under a request
        // (nodes of a cluster share their settings).
        client: reqwest::Client::builder()
            .pool_idle_timeout(config.http_idle_timeout / 2)
            .build()
            .map_err(|error| ServeError::Http(std::io::Error::other(error)))?,
        max_key_bytes: config.max_key_bytes,
        max_value_bytes: config.max_value_bytes,
        timeout: config.request_timeout,
        metrics,
        admin_token,
        removed: Arc::new(AtomicBool::new(false)),
        leader_ready: Default::default(),
    });
    tracing::info!(id = %config.id, raft = %started.raft.local_addr(), http = %advertised, "raftkv node serving");
    let registrar = tokio::spawn(register_when_leading(state.clone()));
    let dir = config.data_dir.clone().expect("checked by start");
    let membership = tokio::spawn(crate::membership::watch(started.raft.clone(), dir, state.removed.clone()));
    // A join refused for good stops the node too: serving as a member of
    // no cluster until someone notices would only hide the error.
    let (join_failed, join_failure) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        tokio::select! {
            () = stop_signal() => {}
            // A sender dropped without sending (the join worked) disables this branch.
            Ok(()) = join_failure => tracing::info!("stopping: the join failed"),
        }
    };
    // Requests under way when the stop comes get as long as a request may
    // take, and a second; a client that holds a request open (half sent, or
    // never reading its answer) must not keep the node from stopping.
    let grace = config.request_timeout + Duration::from_secs(1);
    let (stopping, stop_begun) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        stop.await;
        let _ = stopping.send(());
    };
    let listener = crate::listener::GuardedListener::new(
        listener,
        config.max_http_connections,
        config.http_idle_timeout,
    );
    let server = axum::serve(listener, router(state.clone())).with_graceful_shutdown(stop);
    let grace_over = async move {
        match stop_begun.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The server ended without a stop: nothing to cut short.
            Err(_) => std::future::pending().await,
        }
    };
    let server = async move {
        tokio::select! {
            served = std::future::IntoFuture::into_future(server) => served,
            () = grace_over => {
                tracing::warn!(?grace, "HTTP requests still open after the grace period; stopping without them");
                Ok(())
            }
        }
    };
    let joined = async {
        let joined = match (&config.join, started.had_state) {
            (Some(via), false) => join(&state, via, &config).await,
            _ => Ok(()),
        };
        if joined.is_err() {
            let _ = join_failed.send(());
        }
        joined
    };
    let (served, joined) = tokio::join!(server, joined);
    registrar.abort();
    membership.abort();
    let _ = started.raft.shutdown().await;
    joined?;
    served.map_err(ServeError::Http)
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping");
}

/// Whenever this node leads and the cluster does not know its HTTP address
/// (the bootstrap node; a node restarted on another port), records it.
async fn register_when_leading(state: Arc<AppState>) {
    let mut status = state.raft.watch_status();
    loop {
        let leads = status.borrow_and_update().state == raft_kit::RaftState::Leader;
        let id = state.raft.id().to_string();
        let known = state.fsm.read().http_addrs.get(&id) == Some(&state.http_addr);
        if leads && !known {
            let command = Command::Register { id, http_addr: state.http_addr.clone() };
            if state.raft.apply(command.encode(), state.timeout).await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

/// Asks the node at `via` to add this one, retrying for up to 30 s.
async fn join(state: &AppState, via: &str, config: &ServeConfig) -> Result<(), ServeError> {
    let request = JoinRequest {
        id: config.id.clone(),
        raft_addr: state.raft.local_addr().to_string(),
        http_addr: state.http_addr.clone(),
        voter: true,
        readdress: false,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut post = state
            .client
            .post(format!("http://{via}/cluster/join"))
            .json(&request)
            .timeout(config.request_timeout + Duration::from_secs(2));
        if let Some(token) = &state.admin_token {
            post = post.header(reqwest::header::AUTHORIZATION, token.header_value());
        }
        let reason = match post.send().await {
            Ok(answer) if answer.status().is_success() => {
                tracing::info!(via, "joined the cluster");
                let dir = config.data_dir.as_deref().expect("checked by start");
                if let Err(error) = crate::membership::mark_member(dir) {
                    tracing::warn!(%error, "marking the node a member failed");
                }
                return Ok(());
            }
            Ok(answer) => {
                let status = answer.status();
                let text = answer.text().await.unwrap_or_default();
                // The answer says whether the same join may work later (a
                // change under way, no leader yet); a 4xx that does not is final.
                let body = serde_json::from_str::<crate::http::ErrorBody>(&text).ok();
                let retryable = body.as_ref().map_or(status.is_server_error(), |body| body.retryable);
                if status.is_client_error() && !retryable {
                    return Err(ServeError::Join { via: via.into(), reason: format!("{status}: {text}") });
                }
                format!("{status}: {text}")
            }
            Err(error) => error.to_string(),
        };
        if tokio::time::Instant::now() > deadline {
            return Err(ServeError::Join { via: via.into(), reason });
        }
        tracing::debug!(via, %reason, "join not done yet; retrying");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
