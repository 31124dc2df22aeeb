//! [`DiscardSnapshotStore`]: accepts snapshots and keeps none.

use crate::snapshot::new_snapshot_id;
use crate::{NewSnapshot, SnapshotError, SnapshotMeta, SnapshotReader, SnapshotSink, SnapshotStore};
use std::io::{self, Write};

/// A snapshot store that throws every snapshot away and lists none, for
/// nodes whose FSM keeps its own durable state and never needs a snapshot
/// back (and for tests). A follower that falls behind the leader's log cannot
/// be caught up from a node using it.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardSnapshotStore;

impl DiscardSnapshotStore {
    /// The store.
    pub fn new() -> Self {
        Self
    }
}

impl SnapshotStore for DiscardSnapshotStore {
    fn create(&self, snapshot: NewSnapshot) -> Result<Box<dyn SnapshotSink>, SnapshotError> {
        let id = new_snapshot_id(snapshot.term, snapshot.index);
        Ok(Box::new(DiscardSink { id, snapshot, size: 0 }))
    }

    fn list(&self) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        Ok(Vec::new())
    }

    fn open(&self, id: &str) -> Result<(SnapshotMeta, SnapshotReader), SnapshotError> {
        Err(SnapshotError::NotFound { id: id.to_owned() })
    }

    /// `true`: it keeps nothing, so nothing waits.
    fn never_blocks(&self) -> bool {
        true
    }
}

struct DiscardSink {
    id: String,
    snapshot: NewSnapshot,
    size: u64,
}

impl Write for DiscardSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SnapshotSink for DiscardSink {
    fn id(&self) -> &str {
        &self.id
    }

    fn close(self: Box<Self>) -> Result<SnapshotMeta, SnapshotError> {
        Ok(self.snapshot.into_meta(self.id, self.size))
    }

    fn cancel(self: Box<Self>) -> Result<(), SnapshotError> {
        Ok(())
    }
}
