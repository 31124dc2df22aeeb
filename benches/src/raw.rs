//! The baseline: the same bytes a store would write, appended to a plain
//! file with one `fdatasync` per batch — the least a durable log can do.

use raft_core::{Log, codec};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// An append-only file.
pub struct RawLog {
    file: File,
    buf: Vec<u8>,
}

impl RawLog {
    /// Creates (truncating) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
        Ok(Self { file, buf: Vec::new() })
    }

    /// Appends the batch, encoded as the stores encode it, and fdatasyncs.
    pub fn append(&mut self, logs: &[Log]) -> std::io::Result<()> {
        self.buf.clear();
        for log in logs {
            self.buf.extend_from_slice(&codec::encode_log_with_crc(log));
        }
        self.file.write_all(&self.buf)?;
        self.file.sync_data()
    }
}
