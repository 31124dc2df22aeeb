//! Opening a directory: its segments read back in order, their records
//! replayed into the index.

use super::writer::{Active, Counters, Segment, Spare, Writer};
use crate::WalOptions;
use crate::index::{Index, Position};
use crate::record::{self, Key, Limit, Record};
use crate::segment::{self, SEGMENT_HEADER_LEN, SPARE_SUFFIX, SegmentHeader};
use raft_core::StoreError;
use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Weak};

/// Reads the directory back: the segments in order, their records replayed
/// into the index. Creates the first segment of a new store.
pub(super) fn recover(
    dir: &Path,
    options: WalOptions,
    stats: Arc<Counters>,
) -> Result<(Writer, Index), StoreError> {
    let mut seqs = Vec::new();
    let mut spares = Vec::new();
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
    // Every header first: a segment's end is in the next one's.
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
        let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(File::open(&path)?, SEGMENT_HEADER_LEN as u64),
            &mut head,
        )?;
        let header = SegmentHeader::decode(&head, &name)?;
        if header.seq != seq {
            return Err(StoreError::Corrupt {
                location: name,
                reason: format!("its header says segment {}", header.seq),
            });
        }
        headers.push(header);
    }
    let mut index = Index::new(options.cache_entries);
    let mut segments = VecDeque::new();
    let mut active = None;
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
    let active = match active {
        Some(active) => active,
        None => {
            let (segment, active) = super::segments::first_segment(dir, options.segment_size, &stats)?;
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
    };
    Ok((writer, index))
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
