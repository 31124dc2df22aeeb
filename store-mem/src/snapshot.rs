use bytes::Bytes;
use raft_core::snapshot::newest_first;
use raft_core::{NewSnapshot, SnapshotError, SnapshotMeta, SnapshotReader, SnapshotSink, SnapshotStore};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// An in-memory [`SnapshotStore`] keeping the newest `retain` snapshots.
///
/// Each snapshot is held whole in memory, which suits tests and small state;
/// use the file store for anything large.
#[derive(Debug, Clone)]
pub struct InmemSnapshotStore {
    inner: Arc<Mutex<Vec<(SnapshotMeta, Bytes)>>>,
    retain: usize,
    /// Numbers the snapshots this store creates, for their ids: ids depend on
    /// nothing but the order of `create` calls, so a replayed run gets the same.
    created: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for InmemSnapshotStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InmemSnapshotStore {
    /// A store that keeps the two newest snapshots.
    pub fn new() -> Self {
        Self::with_retain(2)
    }

    /// A store that keeps the newest `retain` snapshots (at least one).
    pub fn with_retain(retain: usize) -> Self {
        Self { inner: Arc::default(), retain: retain.max(1), created: Arc::default() }
    }

    fn snapshots(&self) -> std::sync::MutexGuard<'_, Vec<(SnapshotMeta, Bytes)>> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SnapshotStore for InmemSnapshotStore {
    fn create(&self, snapshot: NewSnapshot) -> Result<Box<dyn SnapshotSink>, SnapshotError> {
        let n = self.created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{}-{n:06}", snapshot.term, snapshot.index);
        Ok(Box::new(InmemSink { store: self.clone(), id, snapshot, data: Vec::new() }))
    }

    fn list(&self) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        Ok(self.snapshots().iter().map(|(meta, _)| meta.clone()).collect())
    }

    fn open(&self, id: &str) -> Result<(SnapshotMeta, SnapshotReader), SnapshotError> {
        let snapshots = self.snapshots();
        let (meta, data) = snapshots
            .iter()
            .find(|(meta, _)| meta.id == id)
            .ok_or_else(|| SnapshotError::NotFound { id: id.to_owned() })?;
        Ok((meta.clone(), Box::new(std::io::Cursor::new(data.clone()))))
    }

    /// `true`: snapshots live in memory, so the core uses the store on the
    /// node's task.
    fn never_blocks(&self) -> bool {
        true
    }
}

struct InmemSink {
    store: InmemSnapshotStore,
    id: String,
    snapshot: NewSnapshot,
    data: Vec<u8>,
}

impl Write for InmemSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SnapshotSink for InmemSink {
    fn id(&self) -> &str {
        &self.id
    }

    fn close(self: Box<Self>) -> Result<SnapshotMeta, SnapshotError> {
        let InmemSink { store, id, snapshot, data } = *self;
        let meta = snapshot.into_meta(id, data.len() as u64);
        let mut snapshots = store.snapshots();
        snapshots.push((meta.clone(), Bytes::from(data)));
        snapshots.sort_by(|(a, _), (b, _)| newest_first(a, b));
        snapshots.truncate(store.retain);
        Ok(meta)
    }

    fn cancel(self: Box<Self>) -> Result<(), SnapshotError> {
        Ok(())
    }
}
