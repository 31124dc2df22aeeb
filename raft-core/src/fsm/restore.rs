//! A user's restore as log entries: the backup's bytes cut into
//! [`LogKind::Restore`] pieces, replicated and committed like any entry, and
//! put back together where they apply. Every node replaces its FSM's state
//! at the same index, the last piece's, or, if the pieces never all commit,
//! nowhere.
//!
//! A piece's data is one flags byte, then up to [`PIECE_BYTES`] of the
//! backup. `FIRST` marks the first piece of a restore, `LAST` its last (an
//! empty backup is one piece with both). The pieces of one restore are
//! consecutive entries: the leader appends them in one go. Any other entry
//! between a `FIRST` and its `LAST` means the leader that appended them lost
//! the rest, so what was gathered is dropped.

use crate::{Log, LogKind, RaftError, SnapshotError, SnapshotReader};
use bytes::{BufMut, Bytes, BytesMut};
use std::io::Read;

/// The most backup bytes in one piece.
pub(crate) const PIECE_BYTES: usize = 1 << 20;

const FIRST: u8 = 1;
const LAST: u8 = 2;

/// Cuts a backup into the data of its pieces, in order.
pub(crate) fn pieces(backup: &[u8]) -> Vec<Bytes> {
    let count = backup.len().div_ceil(PIECE_BYTES).max(1);
    (0..count)
        .map(|n| {
            let chunk = backup.get(n * PIECE_BYTES..backup.len().min((n + 1) * PIECE_BYTES)).unwrap_or(&[]);
            let mut flags = 0;
            if n == 0 {
                flags |= FIRST;
            }
            if n + 1 == count {
                flags |= LAST;
            }
            let mut data = BytesMut::with_capacity(1 + chunk.len());
            data.put_u8(flags);
            data.put_slice(chunk);
            data.freeze()
        })
        .collect()
}

/// Reads a user's backup of `size` bytes whole; a reader that fails or
/// holds more or fewer bytes is an error naming `id`.
pub(crate) fn read_backup(reader: SnapshotReader, size: u64, id: &str) -> Result<Vec<u8>, RaftError> {
    let mut backup = Vec::with_capacity(usize::try_from(size.min(64 << 20)).unwrap_or(0));
    let read = reader.take(size.saturating_add(1)).read_to_end(&mut backup);
    match read {
        Ok(_) if backup.len() as u64 == size => Ok(backup),
        Ok(_) => Err(RaftError::Snapshot(SnapshotError::Corrupt {
            id: id.to_string(),
            reason: format!("the backup has {} bytes or more, its meta says {size}", backup.len()),
        })),
        Err(error) => Err(RaftError::Snapshot(error.into())),
    }
}

/// What one applied entry means for a restore under way.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Not a restore piece, and no restore was under way.
    None,
    /// A restore began with this piece.
    Began,
    /// A piece of a restore under way (or a stray one, ignored).
    Gathered,
    /// The last piece: the whole backup.
    Complete(Vec<u8>),
    /// A restore under way was dropped: this entry is not its next piece.
    Abandoned,
}

/// Puts the pieces of a restore back together, entry by applied entry.
#[derive(Debug, Default)]
pub(crate) struct Gatherer {
    gathered: Option<Vec<u8>>,
}

impl Gatherer {
    /// Whether a restore is under way (its first piece applied, its last not).
    #[cfg(test)]
    pub(crate) fn under_way(&self) -> bool {
        self.gathered.is_some()
    }

    /// Drops a restore under way: the FSM's state was replaced wholesale
    /// (a snapshot from the leader, which already holds its outcome).
    pub(crate) fn reset(&mut self) {
        self.gathered = None;
    }

    /// Takes the next applied entry.
    pub(crate) fn take(&mut self, log: &Log) -> Step {
        if log.kind != LogKind::Restore {
            return if self.gathered.take().is_some() { Step::Abandoned } else { Step::None };
        }
        let Some((&flags, chunk)) = log.data.split_first() else {
            tracing::error!(index = log.index, "a restore piece without its flags; ignored");
            return if self.gathered.take().is_some() { Step::Abandoned } else { Step::Gathered };
        };
        let began = flags & FIRST != 0;
        if began {
            if self.gathered.is_some() {
                tracing::warn!(index = log.index, "a restore began inside another; the first is dropped");
            }
            self.gathered = Some(Vec::new());
        }
        let Some(gathered) = self.gathered.as_mut() else {
            tracing::warn!(index = log.index, "a restore piece without its first piece; ignored");
            return Step::Gathered;
        };
        gathered.extend_from_slice(chunk);
        if flags & LAST != 0 {
            return Step::Complete(self.gathered.take().unwrap_or_default());
        }
        if began { Step::Began } else { Step::Gathered }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pieces: Vec<Bytes>, first_index: u64) -> Vec<Log> {
        pieces
            .into_iter()
            .enumerate()
            .map(|(n, data)| Log {
                index: first_index + n as u64,
                term: 1,
                kind: LogKind::Restore,
                data,
                extensions: Bytes::new(),
            })
            .collect()
    }

    #[test]
    fn pieces_put_back_together_give_the_backup() {
        for size in [0, 1, PIECE_BYTES - 1, PIECE_BYTES, PIECE_BYTES + 1, 3 * PIECE_BYTES + 17] {
            let backup: Vec<u8> = (0..size).map(|n| (n % 251) as u8).collect();
            let logs = entries(pieces(&backup), 10);
            assert_eq!(logs.len(), size.div_ceil(PIECE_BYTES).max(1));
            let mut gatherer = Gatherer::default();
            let mut steps: Vec<Step> = logs.iter().map(|log| gatherer.take(log)).collect();
            assert_eq!(steps.pop(), Some(Step::Complete(backup)), "size {size}");
            if !steps.is_empty() {
                assert_eq!(steps[0], Step::Began);
                assert!(steps[1..].iter().all(|s| *s == Step::Gathered));
            }
            assert!(!gatherer.under_way());
        }
    }

    #[test]
    fn another_entry_between_the_pieces_drops_the_restore() {
        let backup = vec![7u8; 2 * PIECE_BYTES + 1];
        let logs = entries(pieces(&backup), 1);
        let mut gatherer = Gatherer::default();
        assert_eq!(gatherer.take(&logs[0]), Step::Began);
        let noop =
            Log { index: 2, term: 2, kind: LogKind::Noop, data: Bytes::new(), extensions: Bytes::new() };
        assert_eq!(gatherer.take(&noop), Step::Abandoned);
        // The rest of the dropped restore, should it come, changes nothing.
        assert_eq!(gatherer.take(&logs[2]), Step::Gathered);
        assert!(!gatherer.under_way());
        assert_eq!(gatherer.take(&noop), Step::None);
        // A restore that begins inside another replaces it.
        let small = entries(pieces(b"abc"), 5);
        assert_eq!(gatherer.take(&logs[0]), Step::Began);
        assert_eq!(gatherer.take(&small[0]), Step::Complete(b"abc".to_vec()));
        let empty =
            Log { index: 9, term: 2, kind: LogKind::Restore, data: Bytes::new(), extensions: Bytes::new() };
        assert_eq!(gatherer.take(&empty), Step::Gathered);
    }
}
