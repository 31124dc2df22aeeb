//! [`Config`]: the knobs of a node, with [`Config::validate`].

use crate::ServerId;
use std::time::Duration;

/// How a node behaves. Mirrors hashicorp/raft's `Config`.
///
/// Start from [`Config::new`] (production-leaning defaults) and change what
/// you need, field by field or with the `with_*` methods;
/// [`Raft::new`](crate::Raft::new) refuses a config that fails
/// [`validate`](Self::validate).
///
/// ```
/// use raft_core::Config;
/// use std::time::Duration;
///
/// let config = Config::new("node-1")
///     .with_heartbeat_timeout(Duration::from_millis(200))
///     .with_election_timeout(Duration::from_millis(200))
///     .with_leader_lease_timeout(Duration::from_millis(100));
/// assert_eq!(config.validate(), Ok(()));
/// ```
///
/// With the `serde` feature a config reads from any serde format. Missing
/// fields keep [`Config::new`]'s defaults, unknown ones are refused, and
/// durations are written as a number and a unit (`"150ms"`, `"2s"`):
///
/// ```toml
/// local_id = "node-1"
/// heartbeat_timeout = "200ms"
/// election_timeout = "200ms"
/// leader_lease_timeout = "100ms"
/// ```
///
/// # Timing envelope
///
/// Where the timeouts stop working, for a network with a given round-trip
/// time (RTT) between the leader and its followers:
///
/// - A leader sends a heartbeat every `heartbeat_timeout / 10` to each
///   follower, without waiting for earlier ones to be answered; each gives
///   up after `heartbeat_timeout`.
/// - With check-quorum, a leader stays leader only while a quorum of voters
///   has answered a request **sent** within the last `leader_lease_timeout`.
///   An answer counts by the time its request left, so an answer that comes
///   back later than `leader_lease_timeout` after its request renews nothing:
///   the lease cannot be held across round trips longer than itself. Some
///   late answers do no harm while others arrive in time; if most answers to
///   a quorum take longer than the lease, leaders are elected and step down
///   again, and little commits.
/// - A follower that hears from no leader for `heartbeat_timeout` to twice
///   that campaigns.
/// - Replication calls have a deadline of their own, starting at
///   `heartbeat_timeout` (plus transfer time for large batches) and doubling
///   after each one that times out, so a slow link still gets its entries
///   through and a dead one costs one short deadline before a retry; a
///   follower that answers a heartbeat again is retried at once.
///
/// So keep `leader_lease_timeout` at least three times the worst RTT to a
/// quorum you expect (its 99th percentile), and `heartbeat_timeout` at or
/// above the lease (`validate` insists). For example:
///
/// | RTT (p99) | `heartbeat_timeout` / `election_timeout` | `leader_lease_timeout` |
/// |-----------|------------------------------------------|------------------------|
/// | ≤ 2 ms (one machine, one rack) | 50 ms ([`Config::fast`]) | 50 ms |
/// | ≤ 30 ms (one region) | 200 ms | 100 ms |
/// | ≤ 150 ms (across regions) | 1 s (the default, as hashicorp/raft) | 500 ms |
/// | ≤ 600 ms (long-haul, satellite) | 4 s | 2 s |
#[derive(Clone, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct Config {
    /// This server's id; must be unique in the cluster and never change.
    pub local_id: ServerId,
    /// A follower that hears nothing from a leader for a random time between
    /// this and twice this starts an election. A leader sends heartbeats ten
    /// times as often.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub heartbeat_timeout: Duration,
    /// A candidate that has not won within a random time between this and
    /// twice this starts a new election.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub election_timeout: Duration,
    /// How long a leader's replication waits with nothing new to send before
    /// it sends the latest commit index anyway.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub commit_timeout: Duration,
    /// A leader that has not heard from a quorum of voters within this long
    /// steps down (check-quorum). Answers count by the time their request was
    /// sent, so a quorum must answer within this long of being asked (see the
    /// timing envelope above). At most `heartbeat_timeout`.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub leader_lease_timeout: Duration,
    /// The most entries sent in one AppendEntries, and taken from the queue
    /// of `apply` calls into one append on the leader. The storage thread
    /// merges appends queued behind one another into one `store_logs` call
    /// of up to 8 MiB, whatever this is, so group commits keep growing with
    /// the load.
    pub max_append_entries: usize,
    /// Hand committed commands to [`Fsm::apply_batch`](crate::Fsm::apply_batch)
    /// in batches rather than one [`Fsm::apply`](crate::Fsm::apply) each.
    pub batch_apply: bool,
    /// Ask voters whether they would grant a vote before raising the term, so
    /// a node cut off and reconnected does not disrupt the cluster.
    pub prevote: bool,
    /// How many AppendEntries may be in flight to one follower that is in sync.
    pub max_inflight: usize,
    /// A leader whose own log write has not returned within this long stops
    /// acting as leader so that a healthy node can be elected. Not checked
    /// for a store whose writes never block
    /// ([`LogStore::writes_never_block`](crate::LogStore::writes_never_block)),
    /// which the node writes on its own task.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub log_store_stall_timeout: Duration,
    /// How many recent entries are kept in memory in front of the log store.
    pub log_cache_size: usize,
    /// How many entries to keep in the log after a snapshot, so that slightly
    /// lagging followers catch up from the log rather than a snapshot.
    pub trailing_logs: u64,
    /// How often to check whether a snapshot is due.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub snapshot_interval: Duration,
    /// How many entries applied since the last snapshot make one due.
    pub snapshot_threshold: u64,
    /// An InstallSnapshot whose stream delivers no bytes for this long is
    /// abandoned and what was received of it removed; the node receives
    /// snapshots beside its loop, so a stalled sender never stops it
    /// answering meanwhile.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub snapshot_receive_timeout: Duration,
    /// Shut the node down when it learns it was removed from the cluster.
    pub shutdown_on_remove: bool,
    /// Do not restore the newest snapshot into the FSM on start.
    pub no_snapshot_restore_on_start: bool,
    /// Seeds the node's random choices (election and snapshot jitter) so
    /// that a run can be replayed; `None` (the default) draws them from the
    /// operating system. For deterministic simulation (`raft-sim`): give
    /// every node its own seed derived from the run's.
    pub random_seed: Option<u64>,
    /// Where the node performs its log writes; [`LogWriter::Auto`] (the
    /// default) lets the store decide.
    pub log_writer: LogWriter,
}

/// Where a node performs its log writes (and learns that they are durable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum LogWriter {
    /// Inline on the node's task for a store whose writes never block
    /// ([`LogStore::writes_never_block`](crate::LogStore::writes_never_block)),
    /// on a storage thread otherwise.
    #[default]
    Auto,
    /// On a storage thread, whatever the store: appends queue behind one
    /// another, are written together (group commit) and reported back to
    /// the node as they complete.
    Thread,
    /// As [`Thread`](Self::Thread), but the worker is a task on the node's
    /// runtime instead of a thread. Only for a store whose writes never
    /// block (a blocking write would stall the runtime; `Raft::new` refuses
    /// any other). The simulator uses it to replay the threaded mode
    /// deterministically on one current-thread runtime.
    Task,
}

/// [`Config::new`]'s defaults with an empty `local_id`, which
/// [`validate`](Config::validate) refuses: set it. (What a deserialized
/// config starts from.)
impl Default for Config {
    fn default() -> Self {
        Self::new(ServerId::default())
    }
}

/// Why a [`Config`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `local_id` is empty.
    #[error("local_id must not be empty")]
    EmptyLocalId,
    /// A duration is below the smallest value that makes sense.
    #[error("{field} is {value:?}, below the minimum of {min:?}")]
    TooShort {
        /// The field.
        field: &'static str,
        /// Its value.
        value: Duration,
        /// The minimum.
        min: Duration,
    },
    /// A count is outside its range.
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The transport introduces itself with another node id than the
    /// node's `local_id` (one node id, not one per part).
    #[error("the transport's node id {transport} is not the node's local_id {node}")]
    TransportIdMismatch {
        /// The node's `local_id`.
        node: ServerId,
        /// The transport's.
        transport: ServerId,
    },
    /// The leader lease is longer than the heartbeat timeout, so a leader
    /// could keep its lease after followers have started an election.
    #[error("leader_lease_timeout ({lease:?}) must not exceed heartbeat_timeout ({heartbeat:?})")]
    LeaseLongerThanHeartbeat {
        /// The lease.
        lease: Duration,
        /// The heartbeat timeout.
        heartbeat: Duration,
    },
    /// [`LogWriter::Task`] with a log store whose writes may block: the
    /// node's runtime would stall on them.
    #[error("log_writer = task needs a log store whose writes never block")]
    TaskWriterWouldBlock,
}

impl Config {
    /// A config for `local_id` with hashicorp/raft's default timings
    /// (1 s heartbeat and election timeouts, 500 ms lease, 50 ms commit timeout).
    pub fn new(local_id: impl Into<ServerId>) -> Self {
        Self {
            local_id: local_id.into(),
            heartbeat_timeout: Duration::from_millis(1000),
            election_timeout: Duration::from_millis(1000),
            commit_timeout: Duration::from_millis(50),
            leader_lease_timeout: Duration::from_millis(500),
            max_append_entries: 64,
            batch_apply: true,
            prevote: true,
            max_inflight: 8,
            log_store_stall_timeout: Duration::from_secs(5),
            log_cache_size: 4096,
            trailing_logs: 10_240,
            snapshot_interval: Duration::from_secs(120),
            snapshot_threshold: 8192,
            snapshot_receive_timeout: Duration::from_secs(10),
            shutdown_on_remove: true,
            no_snapshot_restore_on_start: false,
            random_seed: None,
            log_writer: LogWriter::Auto,
        }
    }

    /// Timings scaled down for tests and single-machine demos: 50 ms heartbeat
    /// and election timeouts, a 1 s snapshot receive timeout.
    pub fn fast(local_id: impl Into<ServerId>) -> Self {
        Self {
            heartbeat_timeout: Duration::from_millis(50),
            election_timeout: Duration::from_millis(50),
            leader_lease_timeout: Duration::from_millis(50),
            commit_timeout: Duration::from_millis(5),
            log_store_stall_timeout: Duration::from_millis(500),
            snapshot_interval: Duration::from_millis(100),
            snapshot_receive_timeout: Duration::from_secs(1),
            ..Self::new(local_id)
        }
    }

    /// Sets [`local_id`](Self::local_id).
    pub fn with_local_id(mut self, value: impl Into<ServerId>) -> Self {
        self.local_id = value.into();
        self
    }

    /// Sets [`heartbeat_timeout`](Self::heartbeat_timeout).
    pub fn with_heartbeat_timeout(mut self, value: Duration) -> Self {
        self.heartbeat_timeout = value;
        self
    }

    /// Sets [`election_timeout`](Self::election_timeout).
    pub fn with_election_timeout(mut self, value: Duration) -> Self {
        self.election_timeout = value;
        self
    }

    /// Sets [`commit_timeout`](Self::commit_timeout).
    pub fn with_commit_timeout(mut self, value: Duration) -> Self {
        self.commit_timeout = value;
        self
    }

    /// Sets [`leader_lease_timeout`](Self::leader_lease_timeout).
    pub fn with_leader_lease_timeout(mut self, value: Duration) -> Self {
        self.leader_lease_timeout = value;
        self
    }

    /// Sets [`max_append_entries`](Self::max_append_entries).
    pub fn with_max_append_entries(mut self, value: usize) -> Self {
        self.max_append_entries = value;
        self
    }

    /// Sets [`batch_apply`](Self::batch_apply).
    pub fn with_batch_apply(mut self, value: bool) -> Self {
        self.batch_apply = value;
        self
    }

    /// Sets [`prevote`](Self::prevote).
    pub fn with_prevote(mut self, value: bool) -> Self {
        self.prevote = value;
        self
    }

    /// Sets [`max_inflight`](Self::max_inflight).
    pub fn with_max_inflight(mut self, value: usize) -> Self {
        self.max_inflight = value;
        self
    }

    /// Sets [`log_store_stall_timeout`](Self::log_store_stall_timeout).
    pub fn with_log_store_stall_timeout(mut self, value: Duration) -> Self {
        self.log_store_stall_timeout = value;
        self
    }

    /// Sets [`log_cache_size`](Self::log_cache_size).
    pub fn with_log_cache_size(mut self, value: usize) -> Self {
        self.log_cache_size = value;
        self
    }

    /// Sets [`trailing_logs`](Self::trailing_logs).
    pub fn with_trailing_logs(mut self, value: u64) -> Self {
        self.trailing_logs = value;
        self
    }

    /// Sets [`snapshot_interval`](Self::snapshot_interval).
    pub fn with_snapshot_interval(mut self, value: Duration) -> Self {
        self.snapshot_interval = value;
        self
    }

    /// Sets [`snapshot_threshold`](Self::snapshot_threshold).
    pub fn with_snapshot_threshold(mut self, value: u64) -> Self {
        self.snapshot_threshold = value;
        self
    }

    /// Sets [`snapshot_receive_timeout`](Self::snapshot_receive_timeout).
    pub fn with_snapshot_receive_timeout(mut self, value: Duration) -> Self {
        self.snapshot_receive_timeout = value;
        self
    }

    /// Sets [`shutdown_on_remove`](Self::shutdown_on_remove).
    pub fn with_shutdown_on_remove(mut self, value: bool) -> Self {
        self.shutdown_on_remove = value;
        self
    }

    /// Sets [`no_snapshot_restore_on_start`](Self::no_snapshot_restore_on_start).
    pub fn with_no_snapshot_restore_on_start(mut self, value: bool) -> Self {
        self.no_snapshot_restore_on_start = value;
        self
    }

    /// Sets [`random_seed`](Self::random_seed).
    pub fn with_random_seed(mut self, value: Option<u64>) -> Self {
        self.random_seed = value;
        self
    }

    /// Sets [`log_writer`](Self::log_writer).
    pub fn with_log_writer(mut self, value: LogWriter) -> Self {
        self.log_writer = value;
        self
    }

    /// How often a leader sends heartbeats.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_timeout / 10
    }

    /// Checks that every value makes sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_id.as_str().is_empty() {
            return Err(ConfigError::EmptyLocalId);
        }
        let at_least = |field, value: Duration, min: Duration| {
            if value < min { Err(ConfigError::TooShort { field, value, min }) } else { Ok(()) }
        };
        let ms = Duration::from_millis;
        at_least("heartbeat_timeout", self.heartbeat_timeout, ms(5))?;
        at_least("election_timeout", self.election_timeout, ms(5))?;
        at_least("commit_timeout", self.commit_timeout, ms(1))?;
        at_least("leader_lease_timeout", self.leader_lease_timeout, ms(5))?;
        at_least("snapshot_interval", self.snapshot_interval, ms(5))?;
        at_least("log_store_stall_timeout", self.log_store_stall_timeout, ms(5))?;
        at_least("snapshot_receive_timeout", self.snapshot_receive_timeout, ms(5))?;
        if self.leader_lease_timeout > self.heartbeat_timeout {
            return Err(ConfigError::LeaseLongerThanHeartbeat {
                lease: self.leader_lease_timeout,
                heartbeat: self.heartbeat_timeout,
            });
        }
        let in_range = |field, value: u64, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange { field, value, min, max })
            }
        };
        in_range("max_append_entries", self.max_append_entries as u64, 1, 1024)?;
        in_range("max_inflight", self.max_inflight as u64, 1, 1024)?;
        in_range("log_cache_size", self.log_cache_size as u64, 1, 1 << 24)?;
        in_range("trailing_logs", self.trailing_logs, 0, u64::MAX)?;
        in_range("snapshot_threshold", self.snapshot_threshold, 1, u64::MAX)?;
        Ok(())
    }
}

/// The subset of [`Config`] that [`Raft::reload_config`](crate::Raft::reload_config)
/// can change on a running node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadableConfig {
    /// See [`Config::trailing_logs`].
    pub trailing_logs: u64,
    /// See [`Config::snapshot_interval`].
    pub snapshot_interval: Duration,
    /// See [`Config::snapshot_threshold`].
    pub snapshot_threshold: u64,
    /// See [`Config::heartbeat_timeout`].
    pub heartbeat_timeout: Duration,
    /// See [`Config::election_timeout`].
    pub election_timeout: Duration,
}

impl ReloadableConfig {
    /// The reloadable values of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            trailing_logs: config.trailing_logs,
            snapshot_interval: config.snapshot_interval,
            snapshot_threshold: config.snapshot_threshold,
            heartbeat_timeout: config.heartbeat_timeout,
            election_timeout: config.election_timeout,
        }
    }

    /// `config` with these values applied.
    pub fn apply_to(&self, config: &Config) -> Config {
        Config {
            trailing_logs: self.trailing_logs,
            snapshot_interval: self.snapshot_interval,
            snapshot_threshold: self.snapshot_threshold,
            heartbeat_timeout: self.heartbeat_timeout,
            election_timeout: self.election_timeout,
            ..config.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::new("a").validate(), Ok(()));
        assert_eq!(Config::fast("a").validate(), Ok(()));
    }

    #[test]
    fn nonsense_is_refused_with_the_field_named() {
        let ms = Duration::from_millis;
        let cases: Vec<(Config, &str)> = vec![
            (Config::new(""), "local_id"),
            (Config { heartbeat_timeout: ms(1), ..Config::new("a") }, "heartbeat_timeout"),
            (Config { election_timeout: ms(0), ..Config::new("a") }, "election_timeout"),
            (Config { commit_timeout: Duration::ZERO, ..Config::new("a") }, "commit_timeout"),
            (Config { leader_lease_timeout: ms(2000), ..Config::new("a") }, "leader_lease_timeout"),
            (Config { max_append_entries: 0, ..Config::new("a") }, "max_append_entries"),
            (Config { max_append_entries: 5000, ..Config::new("a") }, "max_append_entries"),
            (Config { max_inflight: 0, ..Config::new("a") }, "max_inflight"),
            (Config { snapshot_threshold: 0, ..Config::new("a") }, "snapshot_threshold"),
        ];
        for (config, field) in cases {
            let err = config.validate().expect_err(field);
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn reloadable_values_round_trip() {
        let base = Config::new("a");
        let mut reload = ReloadableConfig::from_config(&base);
        reload.trailing_logs = 7;
        reload.heartbeat_timeout = Duration::from_millis(300);
        let changed = reload.apply_to(&base);
        assert_eq!(changed.trailing_logs, 7);
        assert_eq!(changed.heartbeat_timeout, Duration::from_millis(300));
        assert_eq!(ReloadableConfig::from_config(&changed), reload);
    }
}
