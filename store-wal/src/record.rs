//! Records: what a segment holds after its header. Each is a 12-byte header
//! (`len:u32`, `header_crc:u32` over the segment's sequence number, its
//! salt and `len`, `crc:u32` over the payload) and `len` bytes of payload,
//! whose first byte says what it is, padded to a multiple of 8 bytes. See
//! `docs/storage-format.md`.

use bytes::{BufMut, BytesMut};
use raft_core::{Log, StoreError, codec};

/// Bytes before a record's payload.
pub(crate) const HEADER_LEN: usize = 12;

const BATCH: u8 = 1;
const TRUNCATE_FROM: u8 = 2;
const TRUNCATE_THROUGH: u8 = 3;
const CLEAR: u8 = 4;

/// Records start at multiples of this (from the file's start).
pub(crate) const ALIGN: usize = 8;

/// `len` rounded up to a multiple of [`ALIGN`].
pub(crate) const fn aligned(len: usize) -> usize {
    len.div_ceil(ALIGN) * ALIGN
}

/// What a record's header checksum covers besides its length: which
/// segment, and which incarnation of its file, the record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) seq: u64,
    pub(crate) salt: u64,
}

/// Bytes of a batch payload before its first entry.
const BATCH_HEAD: usize = 1 + 8 + 8 + 4;

/// A record, as read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// Entries `first..first + entries.len()`, each at its file offset with
    /// its encoded length; and the commit index known when they were written.
    Batch { commit: u64, first: u64, entries: Vec<(u64, u32)> },
    /// Entries from `index` on are removed.
    TruncateFrom { commit: u64, index: u64 },
    /// Entries up to and including `index` are removed.
    TruncateThrough { commit: u64, index: u64 },
    /// Every entry is removed.
    Clear { commit: u64 },
}

impl Record {
    pub(crate) fn commit(&self) -> u64 {
        match self {
            Record::Batch { commit, .. }
            | Record::TruncateFrom { commit, .. }
            | Record::TruncateThrough { commit, .. }
            | Record::Clear { commit } => *commit,
        }
    }
}

fn header_crc(key: Key, len: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&key.seq.to_le_bytes());
    hasher.update(&key.salt.to_le_bytes());
    hasher.update(&len.to_le_bytes());
    hasher.finalize()
}

/// Fills in the header of the record whose payload starts at
/// `payload_start` of `buf` and runs to its end, for segment `key`, and
/// pads it with zeros to a multiple of [`ALIGN`].
fn frame(buf: &mut Vec<u8>, key: Key, payload_start: usize) {
    let len = (buf.len() - payload_start) as u32;
    let crc = crc32fast::hash(&buf[payload_start..]);
    let header_at = payload_start - HEADER_LEN;
    buf[header_at..header_at + 4].copy_from_slice(&len.to_le_bytes());
    buf[header_at + 4..header_at + 8].copy_from_slice(&header_crc(key, len).to_le_bytes());
    buf[header_at + 8..header_at + 12].copy_from_slice(&crc.to_le_bytes());
    buf.resize(aligned(buf.len()), 0);
}

/// Encodes a batch record into `buf` (cleared first; padded); returns, for
/// each entry, its offset in `buf` and its encoded length.
pub(crate) fn encode_batch(buf: &mut Vec<u8>, key: Key, commit: u64, logs: &[Log]) -> Vec<(u64, u32)> {
    buf.clear();
    buf.resize(HEADER_LEN, 0);
    let start = buf.len();
    buf.push(BATCH);
    buf.extend_from_slice(&commit.to_le_bytes());
    buf.extend_from_slice(&logs.first().map_or(0, |l| l.index).to_le_bytes());
    buf.extend_from_slice(&(logs.len() as u32).to_le_bytes());
    let mut spans = Vec::with_capacity(logs.len());
    let mut scratch = BytesMut::new();
    for log in logs {
        scratch.clear();
        codec::encode_log(log, &mut scratch);
        let len = scratch.len() as u32;
        buf.extend_from_slice(&len.to_le_bytes());
        spans.push((buf.len() as u64, len));
        buf.put_slice(&scratch);
    }
    frame(buf, key, start);
    spans
}

/// Encodes a control record (a truncation or a clear) into `buf`.
pub(crate) fn encode_control(buf: &mut Vec<u8>, key: Key, record: &Record) {
    buf.clear();
    buf.resize(HEADER_LEN, 0);
    let start = buf.len();
    let (kind, index) = match record {
        Record::TruncateFrom { index, .. } => (TRUNCATE_FROM, Some(*index)),
        Record::TruncateThrough { index, .. } => (TRUNCATE_THROUGH, Some(*index)),
        Record::Clear { .. } => (CLEAR, None),
        Record::Batch { .. } => unreachable!("batches are encoded by encode_batch"),
    };
    buf.push(kind);
    buf.extend_from_slice(&record.commit().to_le_bytes());
    if let Some(index) = index {
        buf.extend_from_slice(&index.to_le_bytes());
    }
    frame(buf, key, start);
}

/// Decodes an entry read back from its position.
pub(crate) fn decode_entry(index: u64, bytes: bytes::Bytes) -> Result<Log, StoreError> {
    let log = codec::decode_log(bytes).map_err(|e| corrupt_entry(index, e.to_string()))?;
    if log.index != index {
        return Err(corrupt_entry(index, format!("the entry stored there says index {}", log.index)));
    }
    Ok(log)
}

fn corrupt_entry(index: u64, reason: String) -> StoreError {
    StoreError::Corrupt { location: format!("log index {index}"), reason }
}

/// Where a segment's records end, as a scan is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// A segment the writer has moved on from: its records end exactly
    /// here (the next segment's header says so).
    At(u64),
    /// The last segment: its records end at the first that fails a check,
    /// unless a valid one follows.
    Last,
}

/// How a scan of one segment's records ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct End {
    /// Where the next record goes.
    pub(crate) offset: u64,
    /// Whether what follows the last record is certainly a write the
    /// process did not finish: a header of this segment whose record fails.
    pub(crate) torn: bool,
}

/// The records of one segment (`data` is the whole file, `key` its
/// sequence number and salt), from `start`.
///
/// The writer writes records one after another, each synced before the
/// next is written, and moves to the next segment only after the last one
/// is durable. So a segment it moved on from must hold whole records up to
/// the end the next segment's header names ([`Limit::At`]): anything else
/// is damage. In the last segment, of everything after the last good
/// record only one write can have been under way when the process
/// stopped; what follows it is zeros or a reused file's old records, which
/// fail this segment's header checksum. A record that fails a check there
/// is that write, then — unless a whole valid record of this segment
/// starts anywhere after it, which no unfinished write can leave: that is
/// damage to a record that was acknowledged.
pub(crate) fn scan(
    data: &[u8],
    key: Key,
    start: usize,
    limit: Limit,
    name: &str,
) -> Result<(Vec<(u64, Record)>, End), StoreError> {
    let mut records = Vec::new();
    let mut at = start;
    let end_at = match limit {
        Limit::At(end) => Some(usize::try_from(end).unwrap_or(usize::MAX)),
        Limit::Last => None,
    };
    loop {
        let damage = |reason: &str| StoreError::Corrupt {
            location: format!("{name} at offset {at}"),
            reason: reason.to_string(),
        };
        if end_at == Some(at) {
            return Ok((records, End { offset: at as u64, torn: false }));
        }
        let header = data.get(at..at + HEADER_LEN);
        let problem = match header {
            None => "a record header runs past the end of its segment",
            Some(header) => {
                let word = |n: usize| u32::from_le_bytes(header[n..n + 4].try_into().unwrap_or([0; 4]));
                let (len, hcrc, crc) = (word(0), word(4), word(8));
                let end = at + HEADER_LEN + len as usize;
                if header.iter().all(|&b| b == 0) {
                    "a zero record header"
                } else if hcrc != header_crc(key, len) {
                    "a record header fails its checksum"
                } else if end > data.len() || end_at.is_some_and(|limit| end > limit) {
                    "a record runs past the end of its segment"
                } else if crc32fast::hash(&data[at + HEADER_LEN..end]) != crc {
                    "a record fails its checksum"
                } else {
                    let payload = &data[at + HEADER_LEN..end];
                    let record =
                        parse(payload, (at + HEADER_LEN) as u64).map_err(|reason| damage(&reason))?;
                    records.push((at as u64, record));
                    at = aligned(end);
                    continue;
                }
            }
        };
        if let Some(limit) = end_at {
            return Err(damage(&format!("{problem}, before the end of its records at offset {limit}")));
        }
        if valid_record_within(data, key, at + ALIGN) {
            return Err(damage(&format!("{problem}, with whole records after it")));
        }
        // A header of this segment whose payload failed: the write that was
        // under way. (A zero or foreign header may be that write too, or
        // just the end: the two cannot be told apart, and need not be.)
        let torn = header.is_some_and(|h| {
            let len = u32::from_le_bytes(h[..4].try_into().unwrap_or([0; 4]));
            len != 0 && u32::from_le_bytes(h[4..8].try_into().unwrap_or([0; 4])) == header_crc(key, len)
        });
        return Ok((records, End { offset: at as u64, torn }));
    }
}

/// Whether a whole record of segment `key` (both checksums good) starts at
/// any record boundary from `from` on.
fn valid_record_within(data: &[u8], key: Key, from: usize) -> bool {
    let from = aligned(from);
    (from..data.len().saturating_sub(HEADER_LEN - 1)).step_by(ALIGN).any(|at| {
        let word = |n: usize| u32::from_le_bytes(data[at + n..at + n + 4].try_into().unwrap_or([0; 4]));
        let len = word(0);
        if len == 0 || at + HEADER_LEN + len as usize > data.len() || word(4) != header_crc(key, len) {
            return false;
        }
        let payload_end = at + HEADER_LEN + len as usize;
        crc32fast::hash(&data[at + HEADER_LEN..payload_end]) == word(8)
    })
}

/// Parses a payload whose checksum matched; `base` is its file offset.
fn parse(payload: &[u8], base: u64) -> Result<Record, String> {
    let u64_at = |n: usize| {
        payload.get(n..n + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).ok_or("too short")
    };
    let kind = *payload.first().ok_or("an empty record")?;
    let commit = u64_at(1)?;
    match kind {
        BATCH => {
            let first = u64_at(9)?;
            let count = payload
                .get(17..21)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
                .ok_or("a batch record too short for its count")?;
            let mut entries = Vec::with_capacity((count as usize).min(payload.len() / 4));
            let mut at = BATCH_HEAD;
            for _ in 0..count {
                let len = payload
                    .get(at..at + 4)
                    .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
                    .ok_or("a batch record ends inside an entry")?;
                at += 4;
                if at + len as usize > payload.len() {
                    return Err("a batch record ends inside an entry".into());
                }
                entries.push((base + at as u64, len));
                at += len as usize;
            }
            if at != payload.len() {
                return Err("a batch record holds bytes after its last entry".into());
            }
            if count > 0 && first == 0 {
                return Err("a batch record starts at index 0".into());
            }
            Ok(Record::Batch { commit, first, entries })
        }
        TRUNCATE_FROM => Ok(Record::TruncateFrom { commit, index: u64_at(9)? }),
        TRUNCATE_THROUGH => Ok(Record::TruncateThrough { commit, index: u64_at(9)? }),
        CLEAR => Ok(Record::Clear { commit }),
        other => Err(format!("unknown record kind {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Key = Key { seq: 7, salt: 0x5eed };

    fn segment(records: &[Vec<u8>], size: usize) -> Vec<u8> {
        let mut data: Vec<u8> = records.concat();
        data.resize(size, 0);
        data
    }

    fn batch(key: Key, first: u64, count: u64) -> Vec<u8> {
        let logs: Vec<Log> =
            (first..first + count).map(|i| Log::command(i, 1, format!("entry {i}"))).collect();
        let mut buf = Vec::new();
        encode_batch(&mut buf, key, 3, &logs);
        buf
    }

    #[test]
    fn records_read_back_as_written_each_at_a_multiple_of_8() {
        let mut control = Vec::new();
        encode_control(&mut control, A, &Record::TruncateFrom { commit: 4, index: 9 });
        let parts = [batch(A, 5, 3), control.clone(), batch(A, 9, 1)];
        assert!(parts.iter().all(|p| p.len() % ALIGN == 0));
        let data = segment(&parts, 4096);
        let total: usize = parts.iter().map(Vec::len).sum();
        let (records, end) = scan(&data, A, 0, Limit::Last, "s").expect("scan");
        assert_eq!(records.len(), 3);
        assert!(
            matches!(&records[0].1, Record::Batch { first: 5, entries, commit: 3 } if entries.len() == 3)
        );
        assert_eq!(records[1].1, Record::TruncateFrom { commit: 4, index: 9 });
        assert_eq!(end, End { offset: total as u64, torn: false });
        if let Record::Batch { entries, .. } = &records[0].1 {
            let (offset, len) = entries[1];
            let bytes = bytes::Bytes::copy_from_slice(&data[offset as usize..(offset + len as u64) as usize]);
            assert_eq!(decode_entry(6, bytes).expect("decode").data, "entry 6");
        }
        // A sealed segment reads exactly to the end it is given.
        let (sealed, _) = scan(&data, A, 0, Limit::At(total as u64), "s").expect("sealed");
        assert_eq!(sealed.len(), 3);
        // An end inside a record, or past the records, is damage.
        assert!(matches!(scan(&data, A, 0, Limit::At(16), "s"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(
            scan(&data, A, 0, Limit::At(total as u64 + 8), "s"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_torn_last_record_is_cut_but_damage_before_it_is_an_error() {
        let (a, b) = (batch(A, 1, 2), batch(A, 3, 2));
        let mut data = segment(&[a.clone(), b.clone()], 4096);
        // The second record half written: its tail never reached the disk.
        let torn_at = a.len() + b.len() / 2;
        data[torn_at..a.len() + b.len()].fill(0);
        let (records, end) = scan(&data, A, 0, Limit::Last, "s").expect("a torn tail is not damage");
        assert_eq!(records.len(), 1);
        assert_eq!(end, End { offset: a.len() as u64, torn: true });
        // The same bytes in a segment the writer moved on from are damage.
        let limit = Limit::At((a.len() + b.len()) as u64);
        assert!(matches!(scan(&data, A, 0, limit, "s"), Err(StoreError::Corrupt { .. })));

        // The first sectors of the last write never reached the disk, later
        // ones did: its header reads as zeros, its tail does not.
        let mut data = segment(&[a.clone(), b.clone()], 4096);
        data[a.len()..a.len() + b.len() / 2].fill(0);
        let (records, end) = scan(&data, A, 0, Limit::Last, "s").expect("an unfinished write is not damage");
        assert_eq!(records.len(), 1);
        assert_eq!(end.offset, a.len() as u64);
        // But a zeroed header with a whole record after it is damage.
        let c = batch(A, 5, 1);
        let mut data = segment(&[a.clone(), b.clone(), c], 4096);
        data[a.len()..a.len() + HEADER_LEN].fill(0);
        assert!(matches!(scan(&data, A, 0, Limit::Last, "s"), Err(StoreError::Corrupt { .. })));

        // A flipped bit in the first record, with the second intact after it.
        let mut data = segment(&[a.clone(), b.clone()], 4096);
        data[a.len() - 12] ^= 0x10;
        assert!(matches!(scan(&data, A, 0, Limit::Last, "s"), Err(StoreError::Corrupt { .. })));
        // A flipped bit in a length is caught by the header checksum.
        let mut data = segment(&[a.clone(), b], 4096);
        data[1] ^= 0x01;
        assert!(matches!(scan(&data, A, 0, Limit::Last, "s"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_reused_files_old_records_end_the_log_and_never_pass_for_new_ones() {
        // The file held segment 3's records; it is segment 9 now, with two
        // records written over the start of the old ones.
        let old = Key { seq: 3, salt: 11 };
        let new = Key { seq: 9, salt: 12 };
        let stale: Vec<Vec<u8>> = (0..20).map(|n| batch(old, 100 + n * 4, 4)).collect();
        let mut data = segment(&stale, 8192);
        let fresh = [batch(new, 500, 2), batch(new, 502, 1)];
        let len: usize = fresh.iter().map(Vec::len).sum();
        data[..len].copy_from_slice(&fresh.concat());
        let (records, end) = scan(&data, new, 0, Limit::Last, "s").expect("old records are the end");
        assert_eq!(records.len(), 2);
        assert_eq!(end, End { offset: len as u64, torn: false });
        // Read as its old segment, the new records are no records of it: the
        // old ones after them make that damage.
        assert!(matches!(scan(&data, old, 0, Limit::Last, "s"), Err(StoreError::Corrupt { .. })));
        // Another salt, same sequence number: the old incarnation's records
        // are not this one's.
        let same_seq = Key { seq: 9, salt: 13 };
        assert!(matches!(scan(&data, same_seq, 0, Limit::Last, "s"), Ok((r, _)) if r.is_empty()));
        // Damage to the first new record, the second intact: Corrupt.
        data[20] ^= 0x40;
        assert!(matches!(scan(&data, new, 0, Limit::Last, "s"), Err(StoreError::Corrupt { .. })));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A segment's records (each a batch of 1–4 entries), their
        /// lengths without padding, and the file: records, then `tail`.
        fn written(counts: &[u64], tail: &[u8]) -> (Vec<u8>, Vec<(usize, usize)>) {
            let mut data = Vec::new();
            let mut spans = Vec::new();
            let mut next = 1;
            for &count in counts {
                let logs: Vec<Log> =
                    (next..next + count).map(|i| Log::command(i, 2, vec![i as u8; 9])).collect();
                next += count;
                let mut buf = Vec::new();
                encode_batch(&mut buf, A, 1, &logs);
                let unpadded =
                    HEADER_LEN + u32::from_le_bytes(buf[..4].try_into().unwrap_or([0; 4])) as usize;
                spans.push((data.len(), unpadded));
                data.extend_from_slice(&buf);
            }
            data.extend_from_slice(tail);
            (data, spans)
        }

        proptest! {
            #[test]
            fn random_bytes_never_panic_a_scan(data in proptest::collection::vec(any::<u8>(), 0..2048), last: bool) {
                let limit = if last { Limit::Last } else { Limit::At(data.len() as u64 / 2) };
                let _ = scan(&data, A, 0, limit, "s");
            }

            /// One changed byte anywhere in the records: in padding it is
            /// harmless, in the last record it is a torn write (cut), and
            /// anywhere else it is damage. Never a wrong record read back.
            #[test]
            fn one_changed_byte_is_cut_only_in_the_last_record(
                counts in proptest::collection::vec(1u64..5, 1..6),
                at in any::<prop::sample::Index>(),
                xor in 1u8..=255,
                zeros in 0usize..300,
            ) {
                let tail = vec![0u8; zeros];
                let (mut data, spans) = written(&counts, &tail);
                let records_end = data.len() - zeros;
                let p = at.index(records_end);
                data[p] ^= xor;
                let n = spans.len();
                let (start, len) = spans[n - 1];
                let in_padding = spans.iter().any(|&(s, l)| p >= s + l && p < aligned(s + l));
                let result = scan(&data, A, 0, Limit::Last, "s");
                if in_padding {
                    prop_assert_eq!(result.map(|(r, _)| r.len()).ok(), Some(n));
                } else if p >= start && p < start + len {
                    let (records, end) = result.expect("a change in the last record is a torn write");
                    prop_assert_eq!(records.len(), n - 1);
                    prop_assert_eq!(end.offset, start as u64);
                } else {
                    prop_assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{:?}", result);
                }
                // A segment the writer moved on from: any change outside
                // padding is damage.
                let sealed = scan(&data, A, 0, Limit::At(records_end as u64), "s");
                prop_assert_eq!(sealed.is_ok(), in_padding);
            }

            /// Whatever lies after the last record — zeros or a reused
            /// file's old records — the records read back are exactly those
            /// written.
            #[test]
            fn old_records_after_the_last_never_read_as_records(
                counts in proptest::collection::vec(1u64..5, 0..6),
                old in proptest::collection::vec(1u64..5, 0..6),
                salt: u64,
            ) {
                prop_assume!(salt != A.salt);
                let stale_key = Key { seq: A.seq, salt };
                let mut stale = Vec::new();
                for (n, &count) in old.iter().enumerate() {
                    let logs: Vec<Log> = (0..count).map(|i| Log::command(100 + n as u64 * 10 + i, 1, "old")).collect();
                    let mut buf = Vec::new();
                    encode_batch(&mut buf, stale_key, 1, &logs);
                    stale.extend_from_slice(&buf);
                }
                let (data, spans) = written(&counts, &stale);
                let (records, _) = scan(&data, A, 0, Limit::Last, "s").expect("old records are the end");
                prop_assert_eq!(records.len(), spans.len());
            }
        }
    }
}
