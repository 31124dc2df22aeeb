//! The [`LogStore`] conformance cases, run through [`log_store_suite!`](crate::log_store_suite).
//!
//! Each function is one case; the macro turns each into its own `#[test]`.

use crate::Fixture;
use bytes::Bytes;
use raft_core::{Log, LogKind, LogStore, StoreError};

/// Entries `indexes` in `term`, each with a payload that names its index and
/// term, so a misplaced entry is caught byte for byte.
pub fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Log> {
    indexes.map(|index| entry(index, term)).collect()
}

fn entry(index: u64, term: u64) -> Log {
    Log {
        index,
        term,
        kind: LogKind::Command,
        data: Bytes::from(format!("entry {index} of term {term}")),
        extensions: Bytes::from(index.to_le_bytes().to_vec()),
    }
}

fn bounds<S: LogStore>(store: &S) -> (u64, u64) {
    (store.first_index().expect("first_index"), store.last_index().expect("last_index"))
}

/// Asserts that `store` holds exactly `expected`, in order, and nothing around it.
pub fn assert_holds<S: LogStore>(store: &S, expected: &[Log]) {
    let want = match (expected.first(), expected.last()) {
        (Some(first), Some(last)) => (first.index, last.index),
        _ => (0, 0),
    };
    assert_eq!(bounds(store), want, "first and last index");
    for log in expected {
        assert_eq!(store.get_log(log.index).expect("get_log").as_ref(), Some(log), "entry {}", log.index);
    }
    if want.0 > 1 {
        assert_eq!(store.get_log(want.0 - 1).expect("get_log"), None, "no entry before first");
    }
    assert_eq!(store.get_log(want.1 + 1).expect("get_log"), None, "no entry after last");
}

/// An empty store has first and last index 0 and no entries.
pub fn empty_store<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    assert_eq!(bounds(&store), (0, 0));
    assert_eq!(store.get_log(1).expect("get_log"), None);
    assert_eq!(store.get_log(0).expect("get_log"), None);
    assert!(store.get_logs(1, 10, u64::MAX).expect("get_logs").is_empty());
}

fn round_trip<S: LogStore>(fixture: &Fixture<S>, log: Log) {
    let store = fixture.fresh();
    store.store_logs(std::slice::from_ref(&log)).expect("store_logs");
    assert_holds(&store, &[log]);
}

/// Every [`LogKind`] round-trips with its term, data and extensions.
pub fn round_trips_every_kind<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs: Vec<Log> =
        LogKind::ALL.iter().enumerate().map(|(i, &kind)| Log { kind, ..entry(i as u64 + 1, 7) }).collect();
    store.store_logs(&logs).expect("store_logs");
    assert_holds(&store, &logs);
}

/// Extensions are kept byte for byte and apart from the data.
pub fn round_trips_extensions<S: LogStore>(fixture: &Fixture<S>) {
    let extensions = Bytes::from((0..=255u8).collect::<Vec<_>>());
    round_trip(fixture, Log { extensions, data: Bytes::from_static(b"\0\xff"), ..entry(1, 1) });
}

/// An entry with empty data and empty extensions round-trips.
pub fn round_trips_empty_data<S: LogStore>(fixture: &Fixture<S>) {
    round_trip(fixture, Log { data: Bytes::new(), extensions: Bytes::new(), ..entry(1, 1) });
}

/// An 8 MiB entry round-trips byte for byte.
pub fn round_trips_8_mib_entry<S: LogStore>(fixture: &Fixture<S>) {
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    round_trip(fixture, Log { data: Bytes::from(data), ..entry(1, 3) });
}

/// A batch sets first and last index, and each entry is readable.
pub fn batch_sets_first_and_last<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1..=10, 1);
    store.store_logs(&logs).expect("store_logs");
    assert_holds(&store, &logs);
    let more = entries(11..=12, 2);
    store.store_logs(&more).expect("store_logs");
    assert_eq!(bounds(&store), (1, 12));
}

/// `get_logs` returns the asked range, in order, clipped to what is stored.
pub fn get_logs_returns_range_in_order<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1..=20, 1);
    store.store_logs(&logs).expect("store_logs");
    assert_eq!(store.get_logs(5, 9, u64::MAX).expect("get_logs"), logs[4..9].to_vec());
    assert_eq!(store.get_logs(18, 30, u64::MAX).expect("get_logs"), logs[17..].to_vec());
    assert!(store.get_logs(21, 30, u64::MAX).expect("get_logs").is_empty());
}

/// `get_logs` stops once its byte budget is reached, returning at least one entry.
pub fn get_logs_stops_at_byte_budget<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs: Vec<Log> = (1..=10)
        .map(|index| Log {
            data: Bytes::from(vec![index as u8; 100]),
            extensions: Bytes::new(),
            ..entry(index, 1)
        })
        .collect();
    store.store_logs(&logs).expect("store_logs");
    let got = store.get_logs(1, 10, 250).expect("get_logs");
    assert!(!got.is_empty() && got.len() <= 3, "a 250-byte budget returned {} entries", got.len());
    assert_eq!(got, logs[..got.len()].to_vec());
    let one = store.get_logs(4, 10, 1).expect("get_logs");
    assert_eq!(one, vec![logs[3].clone()], "at least one entry, even over budget");
}

/// A range that starts before the first stored entry is `Compacted`, one
/// that starts after the last is empty, and one that ends after it stops at
/// the last: the rules of `LogStore::get_logs`.
pub fn get_logs_before_the_first_entry_is_compacted<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    assert!(store.get_logs(0, 10, u64::MAX).expect("an empty store has nothing compacted").is_empty());
    let logs = entries(10..=20, 1);
    store.store_logs(&logs).expect("store_logs");
    for (first, last) in [(5, 15), (0, 3), (9, 9), (0, u64::MAX)] {
        match store.get_logs(first, last, u64::MAX) {
            Err(StoreError::Compacted { index, first_index: 10 }) if index == first => {}
            other => panic!("get_logs({first}, {last}) on 10..=20: expected Compacted, got {other:?}"),
        }
    }
    assert_eq!(store.get_logs(10, 12, u64::MAX).expect("get_logs"), logs[..3].to_vec());
    assert_eq!(store.get_logs(19, u64::MAX, u64::MAX).expect("get_logs"), logs[9..].to_vec());
    assert!(store.get_logs(21, 30, u64::MAX).expect("get_logs").is_empty());
    assert_eq!(store.get_log(9).expect("get_log"), None, "a single compacted entry is absent");
}

/// The commit index stored with a batch reads back as the highest stored,
/// and a batch without one leaves it alone; a store that keeps none always
/// answers `None`.
pub fn commit_index_is_stored_with_batches<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let initial = store.commit_index().expect("commit_index");
    assert!(matches!(initial, None | Some(0)), "a fresh store says {initial:?} is committed");
    store.store_logs_with_commit(&entries(1..=5, 1), 3).expect("store_logs_with_commit");
    let Some(stored) = store.commit_index().expect("commit_index") else {
        assert_eq!(initial, None, "a store that keeps a commit index must keep it from the start");
        return;
    };
    assert_eq!(stored, 3, "the commit index stored with the batch");
    store.store_logs(&entries(6..=7, 1)).expect("store_logs");
    assert_eq!(store.commit_index().expect("commit_index"), Some(3), "a batch without a commit index");
    store.store_logs_with_commit(&entries(8..=8, 1), 2).expect("store_logs_with_commit");
    assert_eq!(store.commit_index().expect("commit_index"), Some(3), "the commit index never goes back");
    store.store_logs_with_commit(&entries(9..=10, 1), 9).expect("store_logs_with_commit");
    assert_eq!(store.commit_index().expect("commit_index"), Some(9));
    assert_holds(&store, &entries(1..=10, 1));
}

/// Deleting a prefix moves the first index and keeps the rest.
pub fn delete_front_moves_first_index<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1..=10, 1);
    store.store_logs(&logs).expect("store_logs");
    store.delete_range(1, 4).expect("delete_range");
    assert_holds(&store, &logs[4..]);
    store.delete_range(0, 6).expect("delete_range");
    assert_holds(&store, &logs[6..]);
}

/// Deleting a suffix moves the last index and keeps the rest.
pub fn delete_back_moves_last_index<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1..=10, 1);
    store.store_logs(&logs).expect("store_logs");
    store.delete_range(8, 10).expect("delete_range");
    assert_holds(&store, &logs[..7]);
    store.delete_range(6, u64::MAX).expect("delete_range");
    assert_holds(&store, &logs[..5]);
}

/// Entries stored after truncating a suffix replace the removed ones.
pub fn store_after_truncation_replaces_entries<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let mut logs = entries(1..=10, 1);
    store.store_logs(&logs).expect("store_logs");
    store.delete_range(6, 10).expect("delete_range");
    let replacements = entries(6..=8, 2);
    store.store_logs(&replacements).expect("store_logs");
    logs.truncate(5);
    logs.extend(replacements);
    assert_holds(&store, &logs);
}

/// Deleting every entry leaves an empty store.
pub fn delete_everything_empties_store<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.store_logs(&entries(3..=9, 1)).expect("store_logs");
    store.delete_range(3, 9).expect("delete_range");
    assert_holds(&store, &[]);
}

/// A range wholly outside the stored entries (or empty) deletes nothing.
pub fn delete_outside_range_is_noop<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.delete_range(1, 100).expect("delete_range on an empty store");
    let logs = entries(10..=20, 1);
    store.store_logs(&logs).expect("store_logs");
    store.delete_range(1, 9).expect("delete_range below");
    store.delete_range(21, 30).expect("delete_range above");
    store.delete_range(15, 14).expect("delete_range with min > max");
    assert_holds(&store, &logs);
}

/// Deleting from the middle would leave a hole and is refused, changing nothing.
pub fn delete_middle_is_refused<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1..=10, 1);
    store.store_logs(&logs).expect("store_logs");
    let err = store.delete_range(4, 6).expect_err("a hole must be refused");
    assert!(matches!(err, StoreError::Hole { min: 4, max: 6, .. }), "{err:?}");
    assert_holds(&store, &logs);
}

/// The first append into an empty store may start at any index.
pub fn first_append_may_start_anywhere<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1000..=1004, 9);
    store.store_logs(&logs).expect("store_logs");
    assert_holds(&store, &logs);
}

/// After deleting everything, the next append may start at any index.
pub fn first_append_after_clearing_may_start_anywhere<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.store_logs(&entries(1..=10, 1)).expect("store_logs");
    store.delete_range(1, 10).expect("delete_range");
    let logs = entries(500..=510, 4);
    store.store_logs(&logs).expect("store_logs");
    assert_holds(&store, &logs);
}

/// A batch that is not contiguous is refused whole: nothing of it is stored.
pub fn batch_is_all_or_nothing<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1..=5, 1);
    store.store_logs(&logs).expect("store_logs");
    let mut bad = entries(6..=10, 1);
    bad[3].index = 42;
    let err = store.store_logs(&bad).expect_err("a gap inside the batch must be refused");
    assert!(matches!(err, StoreError::NonContiguous { expected: 9, got: 42 }), "{err:?}");
    assert_holds(&store, &logs);
}

/// A batch that does not continue the log, or holds index 0, is refused.
pub fn non_contiguous_append_is_refused<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1..=5, 1);
    store.store_logs(&logs).expect("store_logs");
    let err = store.store_logs(&entries(7..=8, 1)).expect_err("a gap after the log");
    assert!(matches!(err, StoreError::NonContiguous { expected: 6, got: 7 }), "{err:?}");
    let err = store.store_logs(&entries(3..=4, 1)).expect_err("an overlap with the log");
    assert!(matches!(err, StoreError::NonContiguous { expected: 6, got: 3 }), "{err:?}");
    assert_holds(&store, &logs);
    let empty = fixture.fresh();
    let err = empty.store_logs(&entries(0..=1, 1)).expect_err("index 0");
    assert!(matches!(err, StoreError::ZeroIndex), "{err:?}");
    assert_holds(&empty, &[]);
}

/// A reader running while a writer stores batches only ever sees whole batches.
pub fn readers_see_whole_batches<S: LogStore>(fixture: &Fixture<S>) {
    const BATCH: u64 = 8;
    const BATCHES: u64 = 150;
    let store = fixture.fresh();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for batch in 0..BATCHES {
                let first = batch * BATCH + 1;
                store.store_logs(&entries(first..=first + BATCH - 1, 1)).expect("store_logs");
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut observations = 0u64;
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst);
            let last = store.last_index().expect("last_index");
            assert_eq!(last % BATCH, 0, "last index {last} is inside a batch");
            if last > 0 {
                let tail = store.get_logs(last - BATCH + 1, last, u64::MAX).expect("get_logs");
                assert_eq!(tail, entries(last - BATCH + 1..=last, 1), "the batch ending at {last}");
            }
            observations += 1;
            if finished {
                break;
            }
        }
        assert!(observations > 0);
    });
    assert_eq!(bounds(&store), (1, BATCH * BATCHES));
}

/// Stored entries survive close and reopen.
pub fn reopen_keeps_entries<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let mut logs = entries(1..=50, 1);
    logs.push(Log { kind: LogKind::Configuration, ..entry(51, 2) });
    store.store_logs(&logs[..25]).expect("store_logs");
    store.store_logs(&logs[25..]).expect("store_logs");
    let store = fixture.reopen(store);
    assert_holds(&store, &logs);
}

/// Compaction and truncation survive reopen, and the store accepts appends after it.
pub fn reopen_keeps_deletions<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    let logs = entries(1..=30, 1);
    store.store_logs(&logs).expect("store_logs");
    store.delete_range(1, 10).expect("delete_range");
    store.delete_range(26, 30).expect("delete_range");
    let store = fixture.reopen(store);
    assert_holds(&store, &logs[10..25]);
    let more = entries(26..=27, 3);
    store.store_logs(&more).expect("store_logs after reopen");
    let store = fixture.reopen(store);
    let mut expected = logs[10..25].to_vec();
    expected.extend(more);
    assert_holds(&store, &expected);
}

/// An emptied store is still empty after reopen, and accepts any first index.
pub fn reopen_keeps_empty_store<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.store_logs(&entries(1..=5, 1)).expect("store_logs");
    store.delete_range(1, 5).expect("delete_range");
    let store = fixture.reopen(store);
    assert_holds(&store, &[]);
    let logs = entries(77..=78, 5);
    store.store_logs(&logs).expect("store_logs after reopen");
    assert_holds(&fixture.reopen(store), &logs);
}

/// The stored commit index survives close and reopen.
pub fn reopen_keeps_commit_index<S: LogStore>(fixture: &Fixture<S>) {
    let store = fixture.fresh();
    store.store_logs_with_commit(&entries(1..=6, 2), 4).expect("store_logs_with_commit");
    let before = store.commit_index().expect("commit_index");
    let store = fixture.reopen(store);
    assert_eq!(store.commit_index().expect("commit_index"), before);
    assert!(matches!(before, None | Some(4)), "{before:?}");
}
