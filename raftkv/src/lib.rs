//! raftkv: a replicated key-value service built only on raft-kit's public
//! API — the service the README runs, and a template to copy.
//!
//! - [`fsm`]: the replicated state (keys, node HTTP addresses, request ids).
//! - [`config`]: `serve`'s settings (TOML file and flags).
//! - [`node`]: the data directory, the store, the transport, the `Raft`;
//!   [`membership`]: whether this node is (or was) a member of its cluster.
//! - [`admin`]: the admin token that cluster-changing calls carry.
//! - [`http`]: the HTTP API (axum); [`listener`]: its connection limits;
//!   [`serve`]: a node and its API.
//! - [`client`]: an HTTP client for the API.
//! - [`demo`], [`bench`](mod@bench), [`inspect`]: the other subcommands.

pub mod admin;
pub mod bench;
pub mod client;
pub mod config;
pub mod demo;
pub mod fsm;
pub mod http;
pub mod inspect;
pub mod listener;
pub mod membership;
pub mod node;
pub mod serve;
