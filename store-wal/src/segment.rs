//! Segment files: `<seq>.wal`, named by a 20-digit sequence number, each
//! at its full size before it is named — zero-filled when new, or a
//! compacted segment's file reused — so that a record's `fdatasync` flushes
//! data and never the file's size. A 64-byte header says what the file is:
//! see `docs/storage-format.md`.

use raft_core::StoreError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// Bytes of a segment's header; records start after it.
pub(crate) const SEGMENT_HEADER_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"RKWALSEG";
/// The name a segment is prepared under before it is numbered.
pub(crate) const PREPARING: &str = "next-segment.tmp";
/// How the files of compacted segments kept for reuse end.
pub(crate) const SPARE_SUFFIX: &str = ".spare";

/// What a segment's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) seq: u64,
    /// The log's next index when the segment was started.
    pub(crate) base_index: u64,
    pub(crate) size: u64,
    /// Drawn at random each time a file becomes a segment, and part of
    /// every record's header checksum: records left in a reused file, or
    /// crafted inside an entry's bytes, never pass for this segment's.
    pub(crate) salt: u64,
    /// Where the previous segment's records end (0 when there was none):
    /// the writer moves on only after its last record is durable, so this
    /// is that segment's exact end.
    pub(crate) prev_end: u64,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.seq.to_le_bytes());
        out[24..32].copy_from_slice(&self.base_index.to_le_bytes());
        out[32..40].copy_from_slice(&self.size.to_le_bytes());
        out[40..48].copy_from_slice(&self.salt.to_le_bytes());
        out[48..56].copy_from_slice(&self.prev_end.to_le_bytes());
        let crc = crc32fast::hash(&out[..60]);
        out[60..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a header; `name` is the file, for errors.
    pub(crate) fn decode(data: &[u8], name: &str) -> Result<Self, StoreError> {
        let corrupt =
            |reason: &str| StoreError::Corrupt { location: name.to_string(), reason: reason.to_string() };
        if data.is_empty() {
            return Err(corrupt("the segment file is empty (a new store has none)"));
        }
        let header =
            data.get(..SEGMENT_HEADER_LEN).ok_or_else(|| corrupt("shorter than a segment header"))?;
        if &header[..8] != MAGIC {
            return Err(corrupt("not a raft-kit WAL segment (bad magic)"));
        }
        let version = u16::from_le_bytes([header[8], header[9]]);
        if version != FORMAT_VERSION {
            return Err(StoreError::UnsupportedVersion {
                found: u32::from(version),
                expected: u32::from(FORMAT_VERSION),
            });
        }
        let stored = u32::from_le_bytes(header[60..64].try_into().unwrap_or([0; 4]));
        if crc32fast::hash(&header[..60]) != stored {
            return Err(corrupt("the segment header fails its checksum"));
        }
        let u64_at = |n: usize| u64::from_le_bytes(header[n..n + 8].try_into().unwrap_or([0; 8]));
        Ok(Self {
            seq: u64_at(16),
            base_index: u64_at(24),
            size: u64_at(32),
            salt: u64_at(40),
            prev_end: u64_at(48),
        })
    }
}

/// The file name of segment `seq`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// The sequence number a segment's file name says, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// A salt for a new segment: random, from the standard library's
/// per-process random keys, mixed with the time and the sequence number.
pub(crate) fn new_salt(seq: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(seq);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.finish()
}

/// The name a compacted segment's file is kept under for reuse.
pub(crate) fn spare_name(seq: u64) -> String {
    format!("{seq:020}{SPARE_SUFFIX}")
}

/// Writes a zero-filled file of `size` bytes at `path` and syncs it: its
/// blocks are allocated and its size is on disk before any record goes in.
pub(crate) fn preallocate(path: &Path, size: u64) -> std::io::Result<File> {
    let mut file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(file)
}

/// Makes a prepared file segment `seq`: writes its header, syncs, and
/// renames it into place with the directory synced, so that a segment
/// that has a name has its header and its full size.
pub(crate) fn install(
    dir: &Path,
    file: &File,
    prepared: &Path,
    header: SegmentHeader,
) -> std::io::Result<PathBuf> {
    file.write_all_at(&header.encode(), 0)?;
    file.sync_data()?;
    let path = dir.join(file_name(header.seq));
    std::fs::rename(prepared, &path)?;
    sync_dir(dir)?;
    Ok(path)
}

/// Syncs a directory, so that names created, renamed or removed in it last.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_names_round_trip_and_refuse_what_is_not_a_segment() {
        let header = SegmentHeader { seq: 42, base_index: 1001, size: 1 << 20, salt: 7, prev_end: 4096 };
        assert_eq!(SegmentHeader::decode(&header.encode(), "x").expect("decode"), header);
        assert_eq!(parse_name(&file_name(42)), Some(42));
        assert_eq!(parse_name("00000000000000000042.tmp"), None);
        assert_eq!(parse_name("42.wal"), None);
        assert!(matches!(SegmentHeader::decode(&[], "x"), Err(StoreError::Corrupt { .. })));
        let mut bad = header.encode();
        bad[20] ^= 1;
        assert!(matches!(SegmentHeader::decode(&bad, "x"), Err(StoreError::Corrupt { .. })));
        let mut newer = header.encode();
        newer[8] = 3;
        assert!(matches!(
            SegmentHeader::decode(&newer, "x"),
            Err(StoreError::UnsupportedVersion { found: 3, expected: 2 })
        ));
        assert!(matches!(SegmentHeader::decode(b"SQLite format 3\0", "x"), Err(StoreError::Corrupt { .. })));
    }
}
