//! Rules every store applies alike: what a batch, a range read, a missing
//! entry and a deletion mean, and how a stored entry is decoded.

use super::entry::Log;
use super::error::StoreError;

/// Checks that `logs` may be appended to a log whose last index is `last`
/// (0 when empty): indexes non-zero, contiguous, and continuing the log.
///
/// Store implementations call this before writing so that every store refuses
/// the same malformed batches with the same errors.
pub fn check_batch(last: u64, logs: &[Log]) -> Result<(), StoreError> {
    let Some(head) = logs.first() else { return Ok(()) };
    if head.index == 0 {
        return Err(StoreError::ZeroIndex);
    }
    if last != 0 && head.index != last + 1 {
        return Err(StoreError::NonContiguous { expected: last + 1, got: head.index });
    }
    for pair in logs.windows(2) {
        if pair[1].index != pair[0].index + 1 {
            return Err(StoreError::NonContiguous { expected: pair[0].index + 1, got: pair[1].index });
        }
    }
    Ok(())
}

/// Applies [`LogStore::get_logs`](crate::LogStore::get_logs)' range rules to a request for
/// `first..=last` over a stored run `stored_first..=stored_last` (both 0
/// when empty): `Ok(None)` when nothing in the range is stored, the last
/// index to read otherwise, [`StoreError::Compacted`] for a range starting
/// before the run. Every store calls it so that all answer alike.
pub fn check_range(
    stored_first: u64,
    stored_last: u64,
    first: u64,
    last: u64,
) -> Result<Option<u64>, StoreError> {
    if stored_last == 0 || first > last || first > stored_last {
        return Ok(None);
    }
    if first < stored_first {
        return Err(StoreError::Compacted { index: first, first_index: stored_first });
    }
    Ok(Some(last.min(stored_last)))
}

/// The error for an entry inside the stored run `first..=last` that a store
/// cannot return: a hole in what must be contiguous, so damage.
pub fn missing_entry(index: u64, first: u64, last: u64) -> StoreError {
    StoreError::Corrupt {
        location: format!("log index {index}"),
        reason: format!("the entry is missing, though the log holds {first}..={last}"),
    }
}

/// What `get_log(index)` answers when a store did not find `index` in its
/// stored run `first..=last` (both 0 when empty): `None` outside the run,
/// [`StoreError::Corrupt`] inside it.
pub fn not_found(index: u64, first: u64, last: u64) -> Result<Option<Log>, StoreError> {
    if last != 0 && (first..=last).contains(&index) {
        Err(missing_entry(index, first, last))
    } else {
        Ok(None)
    }
}

/// Decodes an entry a store kept with [`codec::encode_log_with_crc`](crate::codec::encode_log_with_crc)
/// under key `index`: a bad checksum, a bad encoding or an entry of another
/// index is [`StoreError::Corrupt`] naming the index.
pub fn decode_stored_entry(index: u64, value: &[u8]) -> Result<Log, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { location: format!("log index {index}"), reason };
    let log = crate::codec::decode_log_with_crc(value).map_err(|e| corrupt(e.to_string()))?;
    if log.index != index {
        return Err(corrupt(format!("the entry stored there says index {}", log.index)));
    }
    Ok(log)
}

/// What a `delete_range(min, max)` does to a log `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePlan {
    /// Nothing is stored in the range.
    Nothing,
    /// Remove every entry.
    All,
    /// Remove the prefix up to and including this index.
    Prefix(u64),
    /// Remove the suffix from this index on.
    Suffix(u64),
}

/// Classifies `delete_range(min, max)` over the log `first..=last` (both 0 when
/// empty), so every store interprets ranges the same way.
pub fn plan_delete(first: u64, last: u64, min: u64, max: u64) -> Result<DeletePlan, StoreError> {
    if last == 0 || min > max || max < first || min > last {
        return Ok(DeletePlan::Nothing);
    }
    match (min <= first, max >= last) {
        (true, true) => Ok(DeletePlan::All),
        (true, false) => Ok(DeletePlan::Prefix(max)),
        (false, true) => Ok(DeletePlan::Suffix(min)),
        (false, false) => Err(StoreError::Hole { min, max, first, last }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_plans_cover_every_overlap() {
        let table = [
            // first, last, min, max, plan
            (0, 0, 1, 5, Some(DeletePlan::Nothing)),
            (5, 10, 1, 4, Some(DeletePlan::Nothing)),
            (5, 10, 11, 20, Some(DeletePlan::Nothing)),
            (5, 10, 8, 7, Some(DeletePlan::Nothing)),
            (5, 10, 1, 10, Some(DeletePlan::All)),
            (5, 10, 5, 12, Some(DeletePlan::All)),
            (5, 10, 1, 7, Some(DeletePlan::Prefix(7))),
            (5, 10, 5, 5, Some(DeletePlan::Prefix(5))),
            (5, 10, 8, 10, Some(DeletePlan::Suffix(8))),
            (5, 10, 10, 99, Some(DeletePlan::Suffix(10))),
            (5, 10, 6, 9, None),
        ];
        for (first, last, min, max, plan) in table {
            let got = plan_delete(first, last, min, max).ok();
            assert_eq!(got, plan, "log {first}..={last}, delete {min}..={max}");
        }
    }

    #[test]
    fn ranges_follow_the_get_logs_rules() {
        let table = [
            // stored first, last, asked first, last, outcome
            (0, 0, 1, 10, Ok(None)),
            (5, 10, 5, 10, Ok(Some(10))),
            (5, 10, 6, 20, Ok(Some(10))),
            (5, 10, 11, 20, Ok(None)),
            (5, 10, 8, 7, Ok(None)),
            (5, 10, 4, 10, Err(4)),
            (5, 10, 0, 3, Err(0)),
            (1, 10, 0, 3, Err(0)),
        ];
        for (stored_first, stored_last, first, last, outcome) in table {
            let got = check_range(stored_first, stored_last, first, last).map_err(|e| match e {
                StoreError::Compacted { index, first_index } => {
                    assert_eq!(first_index, stored_first);
                    index
                }
                other => panic!("{other:?}"),
            });
            assert_eq!(got, outcome, "stored {stored_first}..={stored_last}, asked {first}..={last}");
        }
    }

    #[test]
    fn batches_must_continue_the_log() {
        let batch = |indexes: &[u64]| indexes.iter().map(|&i| Log::command(i, 1, "x")).collect::<Vec<_>>();
        assert!(check_batch(0, &batch(&[7, 8, 9])).is_ok());
        assert!(check_batch(6, &batch(&[7, 8])).is_ok());
        assert!(check_batch(6, &[]).is_ok());
        assert!(matches!(check_batch(0, &batch(&[0])), Err(StoreError::ZeroIndex)));
        assert!(matches!(
            check_batch(5, &batch(&[7])),
            Err(StoreError::NonContiguous { expected: 6, got: 7 })
        ));
        assert!(matches!(
            check_batch(0, &batch(&[1, 2, 4])),
            Err(StoreError::NonContiguous { expected: 3, got: 4 })
        ));
    }
}
