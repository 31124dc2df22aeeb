//! The node's metrics, through the [`metrics`] facade: names a
//! hashicorp/raft operator recognises, in the facade's conventions
//! (lowercase, dot-separated, snake case; durations in seconds). Every
//! metric carries a `node` label with the node's id. `docs/metrics.md`
//! lists them with their meaning and unit.
//!
//! Handles are registered once, when a node (or a peer's replication)
//! starts, so recording is one call on a handle: with no recorder installed
//! that call does nothing. Install the recorder before starting nodes.

use metrics::{Counter, Gauge, Histogram, Unit, counter, gauge, histogram};
use std::time::Duration;

/// Every metric name, with its unit and meaning (what `docs/metrics.md` shows).
pub const METRICS: &[(&str, &str, &str)] = &[
    ("raft.apply", "count", "commands a leader accepted for replication"),
    ("raft.commit_time", "seconds", "from a leader appending a batch to committing it"),
    ("raft.fsm.apply", "seconds", "the FSM applying one batch of committed entries"),
    ("raft.fsm.applied", "count", "entries the FSM applied"),
    ("raft.fsm.snapshot", "seconds", "the FSM capturing its state for a snapshot"),
    ("raft.fsm.restore", "seconds", "the FSM restoring a snapshot"),
    ("raft.snapshot.create", "seconds", "taking a snapshot, from capture to the store's sink closed"),
    ("raft.snapshot.persist", "seconds", "writing a captured state into the snapshot store"),
    (
        "raft.leader.last_contact",
        "seconds",
        "on a leader, checking its lease: how long since a quorum last answered",
    ),
    ("raft.state.follower", "count", "times the node became a follower"),
    ("raft.state.candidate", "count", "times the node became a candidate (elections started)"),
    ("raft.state.leader", "count", "times the node became leader"),
    (
        "raft.transition.heartbeat_timeout",
        "count",
        "times a follower heard from no leader in time and campaigned",
    ),
    ("raft.rpc.append_entries", "seconds", "handling an AppendEntries request (until its answer is ready)"),
    ("raft.rpc.request_vote", "seconds", "handling a RequestVote request"),
    ("raft.rpc.install_snapshot", "seconds", "receiving an InstallSnapshot stream"),
    (
        "raft.replication.append_entries.rpc",
        "seconds",
        "an AppendEntries round trip to a peer (label `peer`)",
    ),
    ("raft.replication.append_entries.logs", "count", "entries sent to a peer (label `peer`)"),
    ("raft.replication.heartbeat", "seconds", "a heartbeat round trip to a peer (label `peer`)"),
    ("raft.replication.install_snapshot", "seconds", "sending a snapshot to a peer (label `peer`)"),
    ("raft.term", "gauge", "the current term"),
    ("raft.commit_index", "gauge", "the highest index known committed"),
    ("raft.last_index", "gauge", "the last index in the log"),
    ("raft.applied_index", "gauge", "the highest index the FSM applied"),
];

fn describe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for &(name, unit, help) in METRICS {
            match unit {
                "seconds" => metrics::describe_histogram!(name, Unit::Seconds, help),
                "count" => metrics::describe_counter!(name, Unit::Count, help),
                _ => metrics::describe_gauge!(name, help),
            }
        }
    });
}

/// A node's own metrics.
#[derive(Clone)]
pub(crate) struct NodeMetrics {
    node: String,
    pub(crate) apply: Counter,
    pub(crate) commit_time: Histogram,
    pub(crate) leader_last_contact: Histogram,
    pub(crate) state_follower: Counter,
    pub(crate) state_candidate: Counter,
    pub(crate) state_leader: Counter,
    pub(crate) heartbeat_timeout: Counter,
    pub(crate) rpc_append_entries: Histogram,
    pub(crate) rpc_request_vote: Histogram,
    pub(crate) rpc_install_snapshot: Histogram,
    pub(crate) snapshot_create: Histogram,
    pub(crate) snapshot_persist: Histogram,
    pub(crate) term: Gauge,
    pub(crate) commit_index: Gauge,
    pub(crate) last_index: Gauge,
}

impl NodeMetrics {
    pub(crate) fn new(node: &str) -> Self {
        describe();
        let label = || [("node", node.to_owned())];
        Self {
            node: node.to_owned(),
            apply: counter!("raft.apply", &label()),
            commit_time: histogram!("raft.commit_time", &label()),
            leader_last_contact: histogram!("raft.leader.last_contact", &label()),
            state_follower: counter!("raft.state.follower", &label()),
            state_candidate: counter!("raft.state.candidate", &label()),
            state_leader: counter!("raft.state.leader", &label()),
            heartbeat_timeout: counter!("raft.transition.heartbeat_timeout", &label()),
            rpc_append_entries: histogram!("raft.rpc.append_entries", &label()),
            rpc_request_vote: histogram!("raft.rpc.request_vote", &label()),
            rpc_install_snapshot: histogram!("raft.rpc.install_snapshot", &label()),
            snapshot_create: histogram!("raft.snapshot.create", &label()),
            snapshot_persist: histogram!("raft.snapshot.persist", &label()),
            term: gauge!("raft.term", &label()),
            commit_index: gauge!("raft.commit_index", &label()),
            last_index: gauge!("raft.last_index", &label()),
        }
    }

    /// The FSM runner's metrics for this node.
    pub(crate) fn fsm(&self) -> FsmMetrics {
        let label = || [("node", self.node.clone())];
        FsmMetrics {
            apply: histogram!("raft.fsm.apply", &label()),
            applied: counter!("raft.fsm.applied", &label()),
            snapshot: histogram!("raft.fsm.snapshot", &label()),
            restore: histogram!("raft.fsm.restore", &label()),
            applied_index: gauge!("raft.applied_index", &label()),
        }
    }

    /// The replication metrics of this node's traffic to `peer`.
    pub(crate) fn peer(&self, peer: &str) -> PeerMetrics {
        let labels = || [("node", self.node.clone()), ("peer", peer.to_owned())];
        PeerMetrics {
            append_rpc: histogram!("raft.replication.append_entries.rpc", &labels()),
            append_logs: counter!("raft.replication.append_entries.logs", &labels()),
            heartbeat: histogram!("raft.replication.heartbeat", &labels()),
            install_snapshot: histogram!("raft.replication.install_snapshot", &labels()),
        }
    }
}

/// The FSM runner's metrics.
#[derive(Clone)]
pub(crate) struct FsmMetrics {
    pub(crate) apply: Histogram,
    pub(crate) applied: Counter,
    pub(crate) snapshot: Histogram,
    pub(crate) restore: Histogram,
    pub(crate) applied_index: Gauge,
}

/// One peer's replication metrics.
#[derive(Clone)]
pub(crate) struct PeerMetrics {
    pub(crate) append_rpc: Histogram,
    pub(crate) append_logs: Counter,
    pub(crate) heartbeat: Histogram,
    pub(crate) install_snapshot: Histogram,
}

/// A duration as the facade's histograms take it.
pub(crate) fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}
