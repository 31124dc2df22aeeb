//! The RPC messages servers exchange, with the fields hashicorp/raft carries.

use crate::{Configuration, Log, ServerAddress, ServerId};

/// The RPC protocol version this code speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Carried by every RPC: who sent it and which protocol version it speaks.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RpcHeader {
    /// The sender's protocol version.
    pub protocol_version: u32,
    /// The sender's id.
    pub id: ServerId,
    /// The sender's address.
    pub addr: ServerAddress,
}

impl RpcHeader {
    /// A header for this server at the current [`PROTOCOL_VERSION`].
    pub fn new(id: ServerId, addr: ServerAddress) -> Self {
        Self { protocol_version: PROTOCOL_VERSION, id, addr }
    }
}

/// Sent by the leader to replicate entries, and empty as a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppendEntriesRequest {
    /// The leader's id and address (the header of a leader's RPC names the leader).
    pub header: RpcHeader,
    /// The leader's term.
    pub term: u64,
    /// The index of the entry just before `entries`.
    pub prev_log_index: u64,
    /// The term of that entry.
    pub prev_log_term: u64,
    /// The entries to append, contiguous from `prev_log_index + 1`; empty for a heartbeat.
    pub entries: Vec<Log>,
    /// The leader's commit index.
    pub leader_commit: u64,
}

/// The follower's answer to [`AppendEntriesRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppendEntriesResponse {
    /// The responder's header.
    pub header: RpcHeader,
    /// The responder's current term, for the leader to update itself.
    pub term: u64,
    /// The responder's last log index.
    pub last_log: u64,
    /// Whether the entries were appended (the consistency check passed).
    pub success: bool,
    /// Set when retrying with an earlier `prev_log_index` would not help
    /// (for example the responder's store failed).
    pub no_retry_backoff: bool,
    /// On a failed consistency check: the term of the responder's entry at
    /// `prev_log_index`, or 0 when it has no entry there.
    pub conflict_term: u64,
    /// On a failed consistency check: the first index the responder holds with
    /// `conflict_term`, or its `last_log + 1` when `conflict_term` is 0. The
    /// leader skips a whole conflicting term per round trip with it.
    pub conflict_index: u64,
}

/// Sent by a candidate to ask for a vote.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RequestVoteRequest {
    /// The candidate's header.
    pub header: RpcHeader,
    /// The candidate's term.
    pub term: u64,
    /// The candidate's last log index.
    pub last_log_index: u64,
    /// The candidate's last log term.
    pub last_log_term: u64,
    /// Set during a leadership transfer, so voters do not refuse because they
    /// still hear from the old leader.
    pub leadership_transfer: bool,
}

/// The answer to [`RequestVoteRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RequestVoteResponse {
    /// The responder's header.
    pub header: RpcHeader,
    /// The responder's current term.
    pub term: u64,
    /// Whether the vote was granted.
    pub granted: bool,
}

/// Asks whether a vote would be granted, without anyone changing term.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PreVoteRequest {
    /// The would-be candidate's header.
    pub header: RpcHeader,
    /// The term the candidate would campaign in (its current term + 1).
    pub term: u64,
    /// The candidate's last log index.
    pub last_log_index: u64,
    /// The candidate's last log term.
    pub last_log_term: u64,
}

/// The answer to [`PreVoteRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PreVoteResponse {
    /// The responder's header.
    pub header: RpcHeader,
    /// The responder's current term.
    pub term: u64,
    /// Whether a vote would be granted.
    pub granted: bool,
}

/// Sent by the leader ahead of a snapshot's state, which follows as a stream.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InstallSnapshotRequest {
    /// The leader's header.
    pub header: RpcHeader,
    /// The snapshot format version.
    pub snapshot_version: u32,
    /// The leader's term.
    pub term: u64,
    /// The last index the snapshot covers.
    pub last_log_index: u64,
    /// The term of that entry.
    pub last_log_term: u64,
    /// The configuration at `last_log_index`.
    pub configuration: Configuration,
    /// The index of the entry that carried `configuration`.
    pub configuration_index: u64,
    /// The size of the state that follows, in bytes.
    pub size: u64,
}

/// The answer to [`InstallSnapshotRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InstallSnapshotResponse {
    /// The responder's header.
    pub header: RpcHeader,
    /// The responder's current term.
    pub term: u64,
    /// Whether the snapshot was installed.
    pub success: bool,
}

/// Tells a follower to start an election at once (leadership transfer).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TimeoutNowRequest {
    /// The leader's header.
    pub header: RpcHeader,
    /// The leader's term.
    pub term: u64,
}

/// The answer to [`TimeoutNowRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TimeoutNowResponse {
    /// The responder's header.
    pub header: RpcHeader,
    /// The responder's current term.
    pub term: u64,
}

/// Any RPC message, as the codec encodes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// See [`AppendEntriesRequest`].
    AppendEntriesRequest(AppendEntriesRequest),
    /// See [`AppendEntriesResponse`].
    AppendEntriesResponse(AppendEntriesResponse),
    /// See [`RequestVoteRequest`].
    RequestVoteRequest(RequestVoteRequest),
    /// See [`RequestVoteResponse`].
    RequestVoteResponse(RequestVoteResponse),
    /// See [`PreVoteRequest`].
    PreVoteRequest(PreVoteRequest),
    /// See [`PreVoteResponse`].
    PreVoteResponse(PreVoteResponse),
    /// See [`InstallSnapshotRequest`].
    InstallSnapshotRequest(InstallSnapshotRequest),
    /// See [`InstallSnapshotResponse`].
    InstallSnapshotResponse(InstallSnapshotResponse),
    /// See [`TimeoutNowRequest`].
    TimeoutNowRequest(TimeoutNowRequest),
    /// See [`TimeoutNowResponse`].
    TimeoutNowResponse(TimeoutNowResponse),
}
