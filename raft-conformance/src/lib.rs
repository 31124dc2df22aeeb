//! Conformance suites for raft-kit plugins.
//!
//! Every store and transport in the workspace runs the same cases, and so can
//! a store written outside it: one macro call expands to one `#[test]` per case.
//!
//! # Layout
//!
//! - [`log_store`]: the [`LogStore`] cases, run by [`log_store_suite!`].
//! - [`stable_store`]: the [`StableStore`] cases, run by [`stable_store_suite!`].
//! - [`snapshot_store`]: the [`SnapshotStore`] cases, run by [`snapshot_store_suite!`].
//! - [`Fixture`]: how a case makes a fresh store and reopens a durable one.
//! - [`Guarded`]: a store bundled with what must outlive it (a temporary directory).
//! - [`cluster`]: the cluster harness ([`cluster::Cluster`]) over any
//!   [`cluster::Network`] and [`cluster::StoreFactory`].
//! - [`scenarios`]: the cluster scenarios, run by [`cluster_suite!`].
//! - [`test_fsm`]: the scenarios' state machine and its consistency checker.
//! - [`crash`]: the SIGKILL crash test for durable stores.
//! - [`damage`]: files cut short are refused or lose nothing, run by [`damage_suite!`].
//! - [`exclusive`]: a second open of a durable store's path is refused, in-process and from another process.
//! - [`transport`]: the [`Transport`](raft_core::Transport) cases, run by [`transport_suite!`].
//!
//! # Running a suite
//!
//! Give the macro an expression that makes a fresh store. For a durable store,
//! also give `reopen = …`, a function that closes a store and opens it again
//! on the same data; without one, the reopen cases are generated as ignored
//! tests (`#[ignore = "…no reopen function"]`), so the test run says they were
//! skipped.
//!
//! ```
//! use raft_conformance::{log_store_suite, stable_store_suite, snapshot_store_suite};
//! use store_mem::{InmemSnapshotStore, MemLogStore, MemStableStore};
//!
//! log_store_suite!(MemLogStore::new());
//! stable_store_suite!(MemStableStore::new());
//! snapshot_store_suite!(InmemSnapshotStore::new());
//! # fn main() {}
//! ```
//!
//! Each call generates a module (`log_store_conformance`, …) of tests, so one
//! file may run all three suites; put each store's calls in its own module.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "bench")]
#[cfg_attr(docsrs, doc(cfg(feature = "bench")))]
pub mod bench;
pub mod cluster;
pub mod crash;
pub mod damage;
pub mod exclusive;
pub mod log_store;
pub mod scenarios;
pub mod snapshot_store;
pub mod stable_store;
pub mod test_fsm;
pub mod transport;

use raft_core::{
    Log, LogStore, NewSnapshot, SnapshotError, SnapshotMeta, SnapshotReader, SnapshotSink, SnapshotStore,
    StableStore, StoreError,
};

/// How a conformance case gets its stores.
pub struct Fixture<S> {
    make: Box<dyn Fn() -> S>,
    reopen: Option<Box<dyn Fn(S) -> S>>,
}

impl<S> Fixture<S> {
    /// A fixture that makes fresh stores with `make`.
    pub fn new(make: impl Fn() -> S + 'static) -> Self {
        Self { make: Box::new(make), reopen: None }
    }

    /// Adds the function that closes a store and opens it again on the same data.
    pub fn with_reopen(mut self, reopen: impl Fn(S) -> S + 'static) -> Self {
        self.reopen = Some(Box::new(reopen));
        self
    }

    /// A fresh, empty store.
    pub fn fresh(&self) -> S {
        (self.make)()
    }

    /// Closes `store` and opens it again.
    ///
    /// # Panics
    ///
    /// If the fixture has no reopen function; the suite macros only run the
    /// reopen cases when one was given.
    pub fn reopen(&self, store: S) -> S {
        let reopen = self.reopen.as_ref().expect("this case needs a reopen function");
        reopen(store)
    }
}

/// A store together with something that must live as long as it, such as the
/// temporary directory holding its files. It implements the store traits by
/// delegating to `store`.
#[derive(Debug)]
pub struct Guarded<S, G> {
    /// The store.
    pub store: S,
    /// What must outlive it.
    pub guard: G,
}

impl<S: LogStore, G: Send + Sync + 'static> LogStore for Guarded<S, G> {
    fn first_index(&self) -> Result<u64, StoreError> {
        self.store.first_index()
    }
    fn last_index(&self) -> Result<u64, StoreError> {
        self.store.last_index()
    }
    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        self.store.get_log(index)
    }
    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        self.store.get_logs(first, last, bytes_max)
    }
    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        self.store.store_logs(logs)
    }
    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        self.store.delete_range(min, max)
    }
    fn store_logs_with_commit(&self, logs: &[Log], commit_index: u64) -> Result<(), StoreError> {
        self.store.store_logs_with_commit(logs, commit_index)
    }
    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        self.store.commit_index()
    }
    fn writes_never_block(&self) -> bool {
        self.store.writes_never_block()
    }
}

impl<S: StableStore, G: Send + Sync + 'static> StableStore for Guarded<S, G> {
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.store.set(key, value)
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(key)
    }
    fn set_u64(&self, key: &[u8], value: u64) -> Result<(), StoreError> {
        self.store.set_u64(key, value)
    }
    fn get_u64(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        self.store.get_u64(key)
    }
    fn never_blocks(&self) -> bool {
        self.store.never_blocks()
    }
}

impl<S: SnapshotStore, G: Send + Sync + 'static> SnapshotStore for Guarded<S, G> {
    fn create(&self, snapshot: NewSnapshot) -> Result<Box<dyn SnapshotSink>, SnapshotError> {
        self.store.create(snapshot)
    }
    fn list(&self) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        self.store.list()
    }
    fn open(&self, id: &str) -> Result<(SnapshotMeta, SnapshotReader), SnapshotError> {
        self.store.open(id)
    }
    fn never_blocks(&self) -> bool {
        self.store.never_blocks()
    }
}

/// Generates a module of tests, one per case; reopen cases run or are ignored.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($suite:ident, $module:ident, run, $fixture:tt, [$($case:ident),*], [$($reopen:ident),*]) => {
        #[allow(unused_imports)]
        mod $suite {
            use super::*;
            $( #[test] fn $case() { $crate::$module::$case(&$fixture); } )*
            $( #[test] fn $reopen() { $crate::$module::$reopen(&$fixture); } )*
        }
    };
    ($suite:ident, $module:ident, ignore, $fixture:tt, [$($case:ident),*], [$($reopen:ident),*]) => {
        #[allow(unused_imports)]
        mod $suite {
            use super::*;
            $( #[test] fn $case() { $crate::$module::$case(&$fixture); } )*
            $( #[test] #[ignore = "skipped: the suite was given no reopen function"] fn $reopen() {} )*
        }
    };
}

/// The log store cases, listed once for both forms of [`log_store_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __log_store_cases {
    ($mode:ident, $fixture:tt) => {
        $crate::__suite!(
            log_store_conformance,
            log_store,
            $mode,
            $fixture,
            [
                empty_store,
                round_trips_every_kind,
                round_trips_extensions,
                round_trips_empty_data,
                round_trips_8_mib_entry,
                batch_sets_first_and_last,
                get_logs_returns_range_in_order,
                get_logs_stops_at_byte_budget,
                get_logs_before_the_first_entry_is_compacted,
                commit_index_is_stored_with_batches,
                delete_front_moves_first_index,
                delete_back_moves_last_index,
                store_after_truncation_replaces_entries,
                delete_everything_empties_store,
                delete_outside_range_is_noop,
                delete_middle_is_refused,
                first_append_may_start_anywhere,
                first_append_after_clearing_may_start_anywhere,
                batch_is_all_or_nothing,
                non_contiguous_append_is_refused,
                readers_see_whole_batches
            ],
            [
                reopen_keeps_entries,
                reopen_keeps_deletions,
                reopen_keeps_empty_store,
                reopen_keeps_commit_index
            ]
        );
    };
}

/// The stable store cases, listed once for both forms of [`stable_store_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __stable_store_cases {
    ($mode:ident, $fixture:tt) => {
        $crate::__suite!(
            stable_store_conformance,
            stable_store,
            $mode,
            $fixture,
            [
                missing_key_is_none,
                set_get_overwrite,
                u64_values_round_trip,
                empty_key_and_value,
                wrong_width_u64_is_corrupt,
                keys_up_to_the_maximum_are_stored_and_longer_ones_refused
            ],
            [reopen_keeps_values]
        );
    };
}

/// The snapshot store cases, listed once for both forms of [`snapshot_store_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __snapshot_store_cases {
    ($mode:ident, $fixture:tt) => {
        $crate::__suite!(
            snapshot_store_conformance,
            snapshot_store,
            $mode,
            $fixture,
            [
                create_close_list_open,
                empty_snapshot_round_trips,
                list_is_newest_first,
                cancel_leaves_nothing,
                unclosed_sink_is_not_listed,
                open_unknown_id_is_error,
                large_snapshot_streams
            ],
            [reopen_keeps_snapshots]
        );
    };
}

/// Runs the [`LogStore`](raft_core::LogStore) conformance cases, each as its
/// own `#[test]` in a module `log_store_conformance`.
///
/// `log_store_suite!(make)` takes an expression evaluated afresh for every
/// case; `log_store_suite!(make, reopen = f)` also runs the reopen cases, with
/// `f` a closure taking the store and returning it reopened.
#[macro_export]
macro_rules! log_store_suite {
    ($new:expr $(,)?) => {
        $crate::__log_store_cases!(ignore, ($crate::Fixture::new(move || $new)));
    };
    ($new:expr, reopen = $reopen:expr $(,)?) => {
        $crate::__log_store_cases!(run, ($crate::Fixture::new(move || $new).with_reopen($reopen)));
    };
}

/// Declares the SIGKILL crash tests of [`crash`] for a durable store, with
/// `open` a function from a path to the opened store (it may panic):
/// `crash_child` (the child process; it does nothing in a normal run),
/// `sigkill_loses_nothing_acknowledged` (20 kills) and the ignored
/// `sigkill_500_times_loses_nothing_acknowledged` (500; run with `--ignored`).
#[macro_export]
macro_rules! crash_suite {
    ($open:expr $(,)?) => {
        /// The child process of the crash tests; does nothing in a normal run.
        #[test]
        fn crash_child() {
            $crate::crash::child($open);
        }

        #[test]
        fn sigkill_loses_nothing_acknowledged() {
            $crate::crash::kill_rounds("crash_child", 20, $open);
        }

        #[test]
        #[ignore = "long: 500 kills; run with --ignored"]
        fn sigkill_500_times_loses_nothing_acknowledged() {
            $crate::crash::kill_rounds("crash_child", 500, $open);
        }
    };
}

/// Declares the damage test of [`damage`] for a durable store, with `open` a
/// function from a path to the opened store as a `Result` (refusing damage
/// is the expected outcome): `a_file_cut_short_is_refused_or_loses_nothing`.
#[macro_export]
macro_rules! damage_suite {
    ($open:expr $(,)?) => {
        /// Every file of a filled store cut short in turn: the store refuses
        /// to open, or opens with every entry, its term and its vote.
        #[test]
        fn a_file_cut_short_is_refused_or_loses_nothing() {
            $crate::damage::cut_short($open);
        }
    };
}

/// Runs the [`StableStore`](raft_core::StableStore) conformance cases in a
/// module `stable_store_conformance`; arguments as for [`log_store_suite!`].
#[macro_export]
macro_rules! stable_store_suite {
    ($new:expr $(,)?) => {
        $crate::__stable_store_cases!(ignore, ($crate::Fixture::new(move || $new)));
    };
    ($new:expr, reopen = $reopen:expr $(,)?) => {
        $crate::__stable_store_cases!(run, ($crate::Fixture::new(move || $new).with_reopen($reopen)));
    };
}

/// Runs the [`SnapshotStore`](raft_core::SnapshotStore) conformance cases in a
/// module `snapshot_store_conformance`; arguments as for [`log_store_suite!`].
#[macro_export]
macro_rules! snapshot_store_suite {
    ($new:expr $(,)?) => {
        $crate::__snapshot_store_cases!(ignore, ($crate::Fixture::new(move || $new)));
    };
    ($new:expr, reopen = $reopen:expr $(,)?) => {
        $crate::__snapshot_store_cases!(run, ($crate::Fixture::new(move || $new).with_reopen($reopen)));
    };
}

/// The cluster scenarios, listed once.
#[doc(hidden)]
#[macro_export]
macro_rules! __cluster_cases {
    ($network:expr, $stores:expr, [$($case:ident),* $(,)?]) => {
        #[allow(unused_imports)]
        mod cluster_scenarios {
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::cluster::run_scenario(::std::time::Duration::from_secs(120), || {
                        $crate::scenarios::$case($network, $stores)
                    });
                }
            )*
        }
    };
}

/// Runs every cluster scenario of [`scenarios`] (or those listed after
/// `scenarios = [...]`, or with `scenarios = durable` the ones that exercise
/// a durable store: persistence across crashes, Figure 8, churn, snapshots
/// and restarts), each as its own `#[test]` in a module `cluster_scenarios`.
///
/// `network` is an expression making a fresh [`cluster::Network`] (evaluated
/// once per scenario, so use a fresh seed each time, e.g. with
/// [`cluster::seed_from_env`]); `stores` makes a [`cluster::StoreFactory`].
///
/// ```ignore
/// use raft_conformance::cluster::{seed_from_env, InmemCluster, NodeStores};
/// raft_conformance::cluster_suite!(
///     network = InmemCluster::new(seed_from_env()),
///     stores = |_node| NodeStores::new(MemLogStore::new(), MemStableStore::new(), InmemSnapshotStore::new()),
/// );
/// ```
#[macro_export]
macro_rules! cluster_suite {
    (network = $network:expr, stores = $stores:expr, scenarios = durable $(,)?) => {
        $crate::__cluster_cases!($network, $stores, [
            basic_agreement_3,
            persist_1,
            persist_2,
            persist_3,
            figure_8,
            reliable_churn,
            unreliable_churn,
            snapshot_install,
            snapshot_install_after_crash,
            snapshot_all_crash_and_restart,
            snapshot_restart_without_log,
            membership_add_far_behind_node,
        ]);
    };
    (network = $network:expr, stores = $stores:expr, scenarios = [$($case:ident),* $(,)?] $(,)?) => {
        $crate::__cluster_cases!($network, $stores, [$($case),*]);
    };
    (network = $network:expr, stores = $stores:expr $(,)?) => {
        $crate::__cluster_cases!(
            $network,
            $stores,
            [
                initial_election,
                re_election,
                many_elections,
                basic_agreement_3,
                basic_agreement_5,
                rpc_bytes_bounded,
                follower_failure,
                leader_failure,
                fail_no_agree,
                concurrent_applies,
                rejoin,
                backup,
                persist_1,
                persist_2,
                persist_2_without_prevote,
                persist_3,
                figure_8,
                figure_8_without_prevote,
                unreliable_agreement,
                figure_8_unreliable,
                reliable_churn,
                unreliable_churn,
                prevote_keeps_term,
                leader_steps_down_without_quorum,
                snapshot_basic,
                snapshot_install,
                snapshot_install_unreliable,
                snapshot_install_after_crash,
                snapshot_all_crash_and_restart,
                snapshot_restart_without_log,
                snapshot_store_failure_keeps_serving,
                membership_grow_1_3_5,
                membership_shrink_5_3_removing_leader,
                membership_replace_crashed_node,
                membership_add_far_behind_node,
                membership_demote_and_promote,
                membership_nonvoter_never_votes_nor_counts,
                membership_conflicting_changes_refused,
                membership_removed_node_does_not_disrupt,
                leadership_transfer_moves_leadership,
                leadership_transfer_refusals_and_timeout,
            ]
        );
    };
}

/// Runs the [`Transport`](raft_core::Transport) conformance cases, each as
/// its own `#[test]` in a module `transport_conformance`, with transports
/// made by `$factory` (an expression giving a fresh
/// [`transport::TransportFactory`] for each case).
#[macro_export]
macro_rules! transport_suite {
    ($factory:expr $(,)?) => {
        #[allow(unused_imports)]
        mod transport_conformance {
            use super::*;
            $crate::__transport_cases!(
                $factory,
                [
                    every_rpc_round_trips,
                    pipeline_keeps_order_and_applies_back_pressure,
                    large_append_entries_goes_through,
                    large_snapshot_streams,
                    unreachable_peer_errors_in_time,
                    restarted_peer_is_reconnected,
                    many_concurrent_callers,
                    calls_after_shutdown_fail_cleanly
                ]
            );
        }
    };
}

/// One test per transport case.
#[doc(hidden)]
#[macro_export]
macro_rules! __transport_cases {
    ($factory:expr, [$($case:ident),*]) => {
        $(
            #[test]
            fn $case() {
                $crate::cluster::run_scenario(::std::time::Duration::from_secs(120), || {
                    $crate::transport::$case($factory)
                });
            }
        )*
    };
}
