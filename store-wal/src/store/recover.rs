//! Opening a directory: its segments read back in order, their records
//! replayed into the index; what the files say checked against each other,
//! so that a file cut short or lost is damage, never a shorter log.

use super::writer::{Active, Counters, Segment, Spare, Writer, lock_stable};
use crate::WalOptions;
use crate::index::{Index, Position};
use crate::record::{self, Key, Limit, Record};
use crate::segment::{self, SEGMENT_HEADER_LEN, SPARE_SUFFIX, SegmentHeader};
use crate::stable::StableFile;
use raft_core::StoreError;
use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

/// Reads the directory back: the segments in order, their records replayed
/// into the index. Creates the first segment of a new store.
pub(super) fn recover(
    dir: &Path,
    options: WalOptions,
    stats: Arc<Counters>,
    stable: Arc<Mutex<StableFile>>,
) -> Result<(Writer, Index), StoreError> {
    let (seqs, spares, spare_seen) = list(dir, &options)?;
    check_files(dir, &seqs, spare_seen, &lock_stable(&stable))?;
    let headers = read_headers(dir, &seqs)?;
    let mut index = Index::new(options.cache_entries);
    let mut segments = VecDeque::new();
    let mut active = None;
    let mut compacted = false;
    for (n, header) in headers.iter().enumerate() {
        let path = dir.join(segment::file_name(header.seq));
        let name = path.display().to_string();
        let data = std::fs::read(&path)?;
        let limit = headers.get(n + 1).map_or(Limit::Last, |next| Limit::At(next.prev_end));
        let key = Key { seq: header.seq, salt: header.salt };
        let (records, end) = record::scan(&data, key, SEGMENT_HEADER_LEN, limit, &name)?;
        if end.torn {
            tracing::warn!(segment = %name, offset = end.offset, "cutting off a record the process did not finish writing");
        }
        let mut max_index = 0;
        for (_, record) in records {
            index.commit = index.commit.max(record.commit());
            compacted |= matches!(record, Record::TruncateThrough { .. } | Record::Clear { .. });
            replay(&mut index, header.seq, record, &name, &mut max_index)?;
        }
        let file = Arc::new(std::fs::OpenOptions::new().read(true).write(true).open(&path)?);
        index.files.insert(header.seq, file.clone());
        let size = data.len() as u64;
        segments.push_back(Segment { seq: header.seq, path, file: file.clone(), size, max_index });
        if limit == Limit::Last {
            active = Some(Active { key, file, offset: end.offset, size });
        }
    }
    if let Some(&oldest) = seqs.first().filter(|&&seq| seq > 1 && !compacted) {
        // Segments are let go of only after a compaction record, and the
        // newest such record stays in a segment that is kept.
        return Err(StoreError::Corrupt {
            location: dir.join(segment::file_name(oldest - 1)).display().to_string(),
            reason: format!(
                "segments before {oldest} are missing, and no compaction record in the segments left lets go of them"
            ),
        });
    }
    let active = match active {
        Some(active) => active,
        None => {
            let mut stable = lock_stable(&stable);
            if !stable.existed() {
                stable.create()?;
            }
            let (segment, active) =
                super::segments::first_segment(dir, options.segment_size, &stats, &mut stable)?;
            index.files.insert(segment.seq, segment.file.clone());
            segments.push_back(segment);
            active
        }
    };
    let writer = Writer {
        dir: dir.to_path_buf(),
        options,
        active,
        segments,
        preparing: None,
        buf: Vec::new(),
        first: index.first,
        last: index.last,
        commit: index.commit,
        failed: None,
        spares,
        pending_spares: Vec::new(),
        removing: None,
        stats,
        stable,
    };
    Ok((writer, index))
}

/// The directory's segments (sorted) and the spares worth keeping; removes
/// `.tmp` files and spares past the limit. Says whether any spare was seen.
fn list(dir: &Path, options: &WalOptions) -> Result<(Vec<u64>, Vec<Spare>, bool), StoreError> {
    let mut seqs = Vec::new();
    let mut spares = Vec::new();
    let mut spare_seen = false;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = segment::parse_name(&name) {
            seqs.push(seq);
        } else if name.ends_with(".tmp") {
            // A segment being prepared, or a stable file being written,
            // when the process stopped: never part of the store.
            std::fs::remove_file(entry.path())?;
        } else if name.ends_with(SPARE_SUFFIX) {
            spare_seen = true;
            // A spare's contents are never read: one of another size is
            // simply not reused.
            let keep = spares.len() < options.spare_segments
                && entry.metadata().is_ok_and(|m| m.len() == options.segment_size);
            if keep {
                spares.push(Spare { path: entry.path(), readers: Weak::new() });
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    seqs.sort_unstable();
    spares.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((seqs, spares, spare_seen))
}

/// What the directory's files say of each other: a store is created with
/// its stable file, which records the newest segment made; compaction never
/// lets go of the segment being written. So segments without a stable file,
/// a stable file or spares without segments, or fewer segments than the
/// stable file records, are files lost, never a shorter or a new log.
fn check_files(dir: &Path, seqs: &[u64], spare_seen: bool, stable: &StableFile) -> Result<(), StoreError> {
    let corrupt = |location: &Path, reason: String| StoreError::Corrupt {
        location: location.display().to_string(),
        reason,
    };
    let newest_recorded = stable.newest_segment();
    match seqs.last() {
        Some(&newest) if !stable.existed() => Err(corrupt(
            &stable.path(),
            format!("the stable file (term, vote) is missing beside segments up to {newest}"),
        )),
        Some(&newest) if newest < newest_recorded => Err(corrupt(
            &dir.join(segment::file_name(newest_recorded)),
            format!(
                "segment {newest_recorded} is missing: the stable file records it, and the newest segment found is {newest}"
            ),
        )),
        None if newest_recorded > 0 || (stable.existed() && !stable.is_empty()) => Err(corrupt(
            dir,
            format!(
                "no segment file, but the stable file records segment {newest_recorded}{}: the log is missing",
                if stable.is_empty() { "" } else { " and holds values" }
            ),
        )),
        None if spare_seen => {
            Err(corrupt(dir, "spare segment files but no segment: the log is missing".to_string()))
        }
        _ => Ok(()),
    }
}

/// Every segment's header, checked against its name, its predecessor and
/// its file's length (a segment is made at its full size before it is
/// named, so any other length is damage: a copy or repair cut it short).
fn read_headers(dir: &Path, seqs: &[u64]) -> Result<Vec<SegmentHeader>, StoreError> {
    let mut headers = Vec::with_capacity(seqs.len());
    for (n, &seq) in seqs.iter().enumerate() {
        let path = dir.join(segment::file_name(seq));
        let name = path.display().to_string();
        if n > 0 && seq != seqs[n - 1] + 1 {
            return Err(StoreError::Corrupt {
                location: name,
                reason: format!("segment {} before it is missing", seqs[n - 1] + 1),
            });
        }
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, SEGMENT_HEADER_LEN as u64), &mut head)?;
        let header = SegmentHeader::decode(&head, &name)?;
        if header.seq != seq {
            return Err(StoreError::Corrupt {
                location: name,
                reason: format!("its header says segment {}", header.seq),
            });
        }
        if len != header.size {
            let how = if len < header.size { "cut short" } else { "grown" };
            return Err(StoreError::Corrupt {
                location: name,
                reason: format!(
                    "the file is {len} bytes and its header says {} ({how}: a segment is made at its full size)",
                    header.size
                ),
            });
        }
        headers.push(header);
    }
    Ok(headers)
}

/// Applies one record read back to the index.
fn replay(
    index: &mut Index,
    seq: u64,
    record: Record,
    name: &str,
    max_index: &mut u64,
) -> Result<(), StoreError> {
    match record {
        Record::Batch { first, entries, .. } => {
            if entries.is_empty() {
                return Ok(());
            }
            if index.last != 0 && first != index.last + 1 {
                return Err(StoreError::Corrupt {
                    location: name.to_string(),
                    reason: format!(
                        "a batch starting at index {first} does not continue the log {}..={}: entries are missing",
                        index.first, index.last
                    ),
                });
            }
            let positions: Vec<Position> =
                entries.iter().map(|&(offset, len)| Position { seq, offset, len }).collect();
            index.push(first, &positions, None);
            *max_index = (*max_index).max(index.last);
        }
        Record::TruncateFrom { index: from, .. } => index.truncate_from(from),
        Record::TruncateThrough { index: through, .. } => index.drop_through(through),
        Record::Clear { .. } => index.clear(),
    }
    Ok(())
}
