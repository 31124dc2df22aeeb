//! Records: what a segment holds after its header. Each is a 12-byte header
//! (`len:u32`, `header_crc:u32` over the segment's sequence number and
//! `len`, `crc:u32` over the payload) and `len` bytes of payload, whose
//! first byte says what it is. See `docs/storage-format.md`.

use bytes::{BufMut, BytesMut};
use raft_core::{Log, StoreError, codec};

/// Bytes before a record's payload.
pub(crate) const HEADER_LEN: usize = 12;

const BATCH: u8 = 1;
const TRUNCATE_FROM: u8 = 2;
const TRUNCATE_THROUGH: u8 = 3;
const CLEAR: u8 = 4;

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

fn header_crc(seq: u64, len: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(&len.to_le_bytes());
    hasher.finalize()
}

/// Fills in the header of the record whose payload starts at
/// `payload_start` of `buf` and runs to its end, for segment `seq`.
fn frame(buf: &mut [u8], seq: u64, payload_start: usize) {
    let len = (buf.len() - payload_start) as u32;
    let crc = crc32fast::hash(&buf[payload_start..]);
    let header_at = payload_start - HEADER_LEN;
    buf[header_at..header_at + 4].copy_from_slice(&len.to_le_bytes());
    buf[header_at + 4..header_at + 8].copy_from_slice(&header_crc(seq, len).to_le_bytes());
    buf[header_at + 8..header_at + 12].copy_from_slice(&crc.to_le_bytes());
}

/// Encodes a batch record into `buf` (cleared first); returns, for each
/// entry, its offset in `buf` and its encoded length.
pub(crate) fn encode_batch(buf: &mut Vec<u8>, seq: u64, commit: u64, logs: &[Log]) -> Vec<(u64, u32)> {
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
    frame(buf, seq, start);
    spans
}

/// Encodes a control record (a truncation or a clear) into `buf`.
pub(crate) fn encode_control(buf: &mut Vec<u8>, seq: u64, record: &Record) {
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
    frame(buf, seq, start);
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

/// How a scan of one segment's records ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// At zero bytes (never written), at this offset.
    Clean(u64),
    /// At a write that was under way when the process stopped: it starts at
    /// the first offset, and its bytes (all that is not zero after it) end
    /// before the second. Only the last segment may end so.
    Torn(u64, u64),
}

/// The records of one segment (`data` is the whole file, `seq` its sequence
/// number), from `start`.
///
/// The writer writes records one after another, each synced before the
/// next is written, so of everything after the last good record only one
/// write can have been under way when the process stopped. In the last
/// segment, then, a record that fails a check, or a zero header with bytes
/// after it, is that write — unless a whole valid record of this segment
/// starts anywhere after it, which no unfinished write can leave: that is
/// damage to a record that was acknowledged, and so is any such failure in
/// an earlier segment.
pub(crate) fn scan(
    data: &[u8],
    seq: u64,
    start: usize,
    last_segment: bool,
    name: &str,
) -> Result<(Vec<(u64, Record)>, End), StoreError> {
    let mut records = Vec::new();
    let mut at = start;
    // Bytes from here on are never read as records: only zeros may follow.
    let written_end = written_end(data);
    loop {
        let damage = |reason: &str| StoreError::Corrupt {
            location: format!("{name} at offset {at}"),
            reason: reason.to_string(),
        };
        let header = data.get(at..at + HEADER_LEN).filter(|h| h.iter().any(|&b| b != 0));
        let problem = match header {
            None if at >= written_end => return Ok((records, End::Clean(at as u64))),
            None => "a zero record header with bytes after it",
            Some(header) => {
                let word = |n: usize| u32::from_le_bytes(header[n..n + 4].try_into().unwrap_or([0; 4]));
                let (len, hcrc, crc) = (word(0), word(4), word(8));
                let end = at + HEADER_LEN + len as usize;
                if hcrc != header_crc(seq, len) {
                    "a record header fails its checksum"
                } else if end > data.len() {
                    "a record runs past the end of its segment"
                } else if crc32fast::hash(&data[at + HEADER_LEN..end]) != crc {
                    "a record fails its checksum"
                } else {
                    let payload = &data[at + HEADER_LEN..end];
                    let record =
                        parse(payload, (at + HEADER_LEN) as u64).map_err(|reason| damage(&reason))?;
                    records.push((at as u64, record));
                    at = end;
                    continue;
                }
            }
        };
        if last_segment && !valid_record_within(data, seq, at + 1, written_end) {
            return Ok((records, End::Torn(at as u64, written_end.max(at + 1) as u64)));
        }
        return Err(damage(problem));
    }
}

/// Where the last non-zero byte of `data` ends.
fn written_end(data: &[u8]) -> usize {
    let mut end = data.len();
    while end >= 64 && data[end - 64..end].iter().all(|&b| b == 0) {
        end -= 64;
    }
    while end > 0 && data[end - 1] == 0 {
        end -= 1;
    }
    end
}

/// Whether a whole record of segment `seq` (both checksums good) starts at
/// any offset in `from..end`.
fn valid_record_within(data: &[u8], seq: u64, from: usize, end: usize) -> bool {
    (from..end.saturating_sub(HEADER_LEN - 1)).any(|at| {
        let word = |n: usize| u32::from_le_bytes(data[at + n..at + n + 4].try_into().unwrap_or([0; 4]));
        let len = word(0);
        if len == 0 || word(4) != header_crc(seq, len) {
            return false;
        }
        let payload_end = at + HEADER_LEN + len as usize;
        payload_end <= data.len() && crc32fast::hash(&data[at + HEADER_LEN..payload_end]) == word(8)
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

    fn segment(records: &[Vec<u8>], size: usize) -> Vec<u8> {
        let mut data: Vec<u8> = records.concat();
        data.resize(size, 0);
        data
    }

    fn batch(seq: u64, first: u64, count: u64) -> Vec<u8> {
        let logs: Vec<Log> =
            (first..first + count).map(|i| Log::command(i, 1, format!("entry {i}"))).collect();
        let mut buf = Vec::new();
        encode_batch(&mut buf, seq, 3, &logs);
        buf
    }

    #[test]
    fn records_read_back_as_written() {
        let mut control = Vec::new();
        encode_control(&mut control, 7, &Record::TruncateFrom { commit: 4, index: 9 });
        let data = segment(&[batch(7, 5, 3), control.clone(), batch(7, 9, 1)], 4096);
        let (records, end) = scan(&data, 7, 0, false, "s").expect("scan");
        assert_eq!(records.len(), 3);
        assert!(
            matches!(&records[0].1, Record::Batch { first: 5, entries, commit: 3 } if entries.len() == 3)
        );
        assert_eq!(records[1].1, Record::TruncateFrom { commit: 4, index: 9 });
        let total = batch(7, 5, 3).len() + control.len() + batch(7, 9, 1).len();
        assert_eq!(end, End::Clean(total as u64));
        if let Record::Batch { entries, .. } = &records[0].1 {
            let (offset, len) = entries[1];
            let bytes = bytes::Bytes::copy_from_slice(&data[offset as usize..(offset + len as u64) as usize]);
            assert_eq!(decode_entry(6, bytes).expect("decode").data, "entry 6");
        }
    }

    #[test]
    fn a_torn_last_record_is_cut_but_damage_before_it_is_an_error() {
        let (a, b) = (batch(1, 1, 2), batch(1, 3, 2));
        let mut data = segment(&[a.clone(), b.clone()], 4096);
        // The second record half written: its tail never reached the disk.
        let torn_at = a.len() + b.len() / 2;
        data[torn_at..a.len() + b.len()].fill(0);
        let (records, end) = scan(&data, 1, 0, true, "s").expect("a torn tail is not damage");
        assert_eq!(records.len(), 1);
        assert!(
            matches!(end, End::Torn(from, to) if from == a.len() as u64 && to <= torn_at as u64),
            "{end:?}"
        );
        // The same bytes in a segment that is not the last are damage.
        assert!(matches!(scan(&data, 1, 0, false, "s"), Err(StoreError::Corrupt { .. })));

        // The first sectors of the last write never reached the disk, later
        // ones did: its header reads as zeros, its tail does not.
        let mut data = segment(&[a.clone(), b.clone()], 4096);
        data[a.len()..a.len() + b.len() / 2].fill(0);
        let (records, end) = scan(&data, 1, 0, true, "s").expect("an unfinished write is not damage");
        assert_eq!(records.len(), 1);
        // Cut from the write's start through its last non-zero byte.
        assert!(
            matches!(end, End::Torn(from, to) if from == a.len() as u64 && to > (a.len() + b.len() / 2) as u64),
            "{end:?}"
        );
        // But a zeroed header with a whole record after it is damage.
        let c = batch(1, 5, 1);
        let mut data = segment(&[a.clone(), b.clone(), c], 4096);
        data[a.len()..a.len() + HEADER_LEN].fill(0);
        assert!(matches!(scan(&data, 1, 0, true, "s"), Err(StoreError::Corrupt { .. })));

        // A flipped bit in the first record, with the second intact after it.
        let mut data = segment(&[a.clone(), b.clone()], 4096);
        data[a.len() - 3] ^= 0x10;
        assert!(matches!(scan(&data, 1, 0, true, "s"), Err(StoreError::Corrupt { .. })));
        // A flipped bit in a length is caught by the header checksum.
        let mut data = segment(&[a.clone(), b], 4096);
        data[1] ^= 0x01;
        assert!(matches!(scan(&data, 1, 0, true, "s"), Err(StoreError::Corrupt { .. })));
        // Records of another segment (a file copied or renamed) do not pass.
        let data = segment(&[a], 4096);
        assert!(matches!(scan(&data, 2, 0, false, "s"), Err(StoreError::Corrupt { .. })));
    }
}
