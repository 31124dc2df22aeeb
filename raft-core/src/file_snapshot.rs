//! [`FileSnapshotStore`]: snapshots as directories on disk, written
//! atomically and checked by CRC.
//!
//! # Layout
//!
//! ```text
//! <dir>/<id>/meta.bin     magic "RKSNAPM1", state CRC32 (u32 LE), meta CRC32 (u32 LE),
//!                         then the snapshot meta as `codec::encode_snapshot_meta` writes it
//! <dir>/<id>/state.bin    the FSM's state, as its `persist` wrote it
//! <dir>/<id>.tmp/         a snapshot being written; never listed, removed on open
//! <dir>/raft-kit.lock     held (flock) by the open store, so that a second one
//!                         cannot open the directory
//! ```
//!
//! Anything else in the directory (a file that is not a snapshot directory,
//! a `.tmp` name that is not a directory) is not this store's: it is skipped
//! with a warning and left alone.
//!
//! A snapshot is written into `<id>.tmp`, both files are fsynced, then the
//! directory is renamed to `<id>` and the parent fsynced: a crash leaves a
//! whole snapshot or a `.tmp` directory that the next [`FileSnapshotStore::open`]
//! removes, never a half snapshot that `list` would show.

use crate::codec::{decode_snapshot_meta, encode_snapshot_meta};
use crate::snapshot::{new_snapshot_id, newest_first};
use crate::{
    NewSnapshot, SNAPSHOT_VERSION, SnapshotError, SnapshotMeta, SnapshotReader, SnapshotSink, SnapshotStore,
};
use bytes::{Buf, Bytes, BytesMut};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const META_FILE: &str = "meta.bin";
const STATE_FILE: &str = "state.bin";
const TMP_SUFFIX: &str = ".tmp";
const META_MAGIC: &[u8; 8] = b"RKSNAPM1";
/// The largest meta file read; a larger one is corrupt, not read into memory.
const META_SIZE_MAX: u64 = 16 << 20;
/// Buffer size of state reads and writes.
const BUFFER_SIZE: usize = 256 << 10;

const LOCK_FILE: &str = "raft-kit.lock";

/// Stores snapshots as directories under one directory, keeping the newest
/// `retain` of them. Clones share the store (and its lock on the directory).
#[derive(Debug, Clone)]
pub struct FileSnapshotStore {
    dir: PathBuf,
    retain: usize,
    _lock: std::sync::Arc<crate::lock::LockFile>,
}

/// How a [`FileSnapshotStore`] behaves, for [`FileSnapshotStore::open_with`].
///
/// ```
/// use raft_core::{FileSnapshotOptions, FileSnapshotStore};
/// # let dir = tempfile::tempdir()?;
/// let store = FileSnapshotStore::open_with(dir.path(), FileSnapshotOptions::default().retain(5))?;
/// assert_eq!(store.retain(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileSnapshotOptions {
    /// How many of the newest snapshots to keep (at least one; older ones
    /// are removed after each new snapshot). Default 2.
    pub retain: usize,
}

impl Default for FileSnapshotOptions {
    fn default() -> Self {
        Self { retain: 2 }
    }
}

impl FileSnapshotOptions {
    /// Keep the newest `retain` snapshots (at least one).
    pub fn retain(mut self, retain: usize) -> Self {
        self.retain = retain;
        self
    }
}

impl FileSnapshotStore {
    /// Opens (creating if needed) a store in `dir` with the default
    /// [`FileSnapshotOptions`] (keeping the newest two snapshots). Removes
    /// what an interrupted write left behind. A directory another open store
    /// holds is [`SnapshotError::Locked`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, SnapshotError> {
        Self::open_with(dir, FileSnapshotOptions::default())
    }

    /// As [`open`](Self::open), with `options`.
    pub fn open_with(dir: impl AsRef<Path>, options: FileSnapshotOptions) -> Result<Self, SnapshotError> {
        let retain = options.retain;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let lock = crate::lock::LockFile::acquire(dir.join(LOCK_FILE))?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(TMP_SUFFIX)) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                tracing::info!(path = %path.display(), "removing an unfinished snapshot");
                fs::remove_dir_all(&path)?;
            } else {
                tracing::warn!(path = %path.display(), "leaving alone a file that is not a snapshot");
            }
        }
        Ok(Self { dir, retain: retain.max(1), _lock: std::sync::Arc::new(lock) })
    }

    /// How many snapshots the store keeps.
    pub fn retain(&self) -> usize {
        self.retain
    }

    /// The directory the store keeps its snapshots in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of snapshot `id`, if `id` is a name this store could have made.
    fn snapshot_dir(&self, id: &str) -> Option<PathBuf> {
        let plain = !id.is_empty()
            && !id.ends_with(TMP_SUFFIX)
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        plain.then(|| self.dir.join(id))
    }

    fn read_meta(&self, id: &str, dir: &Path) -> Result<(SnapshotMeta, u32), SnapshotError> {
        let corrupt = |reason: String| SnapshotError::Corrupt { id: id.to_owned(), reason };
        let path = dir.join(META_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound { id: id.to_owned() });
            }
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        file.take(META_SIZE_MAX + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > META_SIZE_MAX {
            return Err(corrupt(format!("{} is larger than {META_SIZE_MAX} bytes", path.display())));
        }
        let mut input = Bytes::from(bytes);
        if input.len() < 16 || &input[..8] != META_MAGIC {
            return Err(corrupt(format!("{} does not start with the snapshot meta header", path.display())));
        }
        input.advance(8);
        let state_crc = input.get_u32_le();
        let meta_crc = input.get_u32_le();
        let actual = crc32fast::hash(&input);
        if actual != meta_crc {
            return Err(corrupt(format!("{} failed its checksum", path.display())));
        }
        let meta = decode_snapshot_meta(input).map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
        if meta.id != id {
            return Err(corrupt(format!("{} names snapshot {}", path.display(), meta.id)));
        }
        if meta.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion { id: id.to_owned(), version: meta.version });
        }
        Ok((meta, state_crc))
    }

    /// Removes all but the newest `retain` snapshots.
    fn reap(&self) -> Result<(), SnapshotError> {
        for meta in self.list()?.into_iter().skip(self.retain) {
            if let Some(dir) = self.snapshot_dir(&meta.id) {
                tracing::debug!(id = %meta.id, "removing an old snapshot");
                fs::remove_dir_all(dir)?;
            }
        }
        Ok(())
    }
}

impl SnapshotStore for FileSnapshotStore {
    fn create(&self, snapshot: NewSnapshot) -> Result<Box<dyn SnapshotSink>, SnapshotError> {
        let id = new_snapshot_id(snapshot.term, snapshot.index);
        let tmp_dir = self.dir.join(format!("{id}{TMP_SUFFIX}"));
        fs::create_dir_all(&tmp_dir)?;
        let file = File::create(tmp_dir.join(STATE_FILE))?;
        Ok(Box::new(FileSink {
            store: self.clone(),
            id,
            tmp_dir,
            state: Some(BufWriter::with_capacity(BUFFER_SIZE, file)),
            hasher: crc32fast::Hasher::new(),
            size: 0,
            snapshot,
        }))
    }

    fn list(&self) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        let mut metas = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if name.ends_with(TMP_SUFFIX) || !entry.file_type()?.is_dir() {
                if name != LOCK_FILE && !name.ends_with(TMP_SUFFIX) {
                    tracing::debug!(name, "skipping a file that is not a snapshot");
                }
                continue;
            }
            match self.read_meta(&name, &entry.path()) {
                Ok((meta, _)) => metas.push(meta),
                // Written by a newer release: what it holds cannot be read
                // here, and leaving it out could lose it.
                Err(error @ SnapshotError::UnsupportedVersion { .. }) => return Err(error),
                Err(error) => tracing::warn!(id = %name, %error, "skipping an unreadable snapshot"),
            }
        }
        metas.sort_by(newest_first);
        Ok(metas)
    }

    fn open(&self, id: &str) -> Result<(SnapshotMeta, SnapshotReader), SnapshotError> {
        let dir = self.snapshot_dir(id).ok_or_else(|| SnapshotError::NotFound { id: id.to_owned() })?;
        let (meta, state_crc) = self.read_meta(id, &dir)?;
        let path = dir.join(STATE_FILE);
        // Check the whole state before handing it out, streaming, so a damaged
        // snapshot is refused before an FSM starts restoring from it.
        let mut check = CheckedReader::new(File::open(&path)?, id, state_crc, meta.size);
        io::copy(&mut check, &mut io::sink()).map_err(|e| into_snapshot_error(e, id))?;
        let reader = CheckedReader::new(File::open(&path)?, id, state_crc, meta.size);
        Ok((meta, Box::new(reader)))
    }
}

/// Turns an I/O error from a [`CheckedReader`] back into the snapshot error it carries.
fn into_snapshot_error(error: io::Error, id: &str) -> SnapshotError {
    if error.kind() == io::ErrorKind::InvalidData
        && let Some(inner) = error.get_ref().and_then(|e| e.downcast_ref::<SnapshotError>())
    {
        return match inner {
            SnapshotError::ChecksumMismatch { id, expected, actual } => {
                SnapshotError::ChecksumMismatch { id: id.clone(), expected: *expected, actual: *actual }
            }
            SnapshotError::Corrupt { id, reason } => {
                SnapshotError::Corrupt { id: id.clone(), reason: reason.clone() }
            }
            other => SnapshotError::Corrupt { id: id.to_owned(), reason: other.to_string() },
        };
    }
    SnapshotError::Io(error)
}

/// Reads a state file, checking its size and CRC when it reaches the end.
struct CheckedReader {
    file: BufReader<File>,
    id: String,
    expected_crc: u32,
    expected_size: u64,
    hasher: crc32fast::Hasher,
    read: u64,
}

impl CheckedReader {
    fn new(file: File, id: &str, expected_crc: u32, expected_size: u64) -> Self {
        Self {
            file: BufReader::with_capacity(BUFFER_SIZE, file),
            id: id.to_owned(),
            expected_crc,
            expected_size,
            hasher: crc32fast::Hasher::new(),
            read: 0,
        }
    }

    fn fail(&self, error: SnapshotError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.expected_size {
            let reason = format!("state is longer than the {} bytes recorded", self.expected_size);
            return Err(self.fail(SnapshotError::Corrupt { id: self.id.clone(), reason }));
        }
        if n == 0 && !buf.is_empty() {
            if self.read != self.expected_size {
                let reason = format!("state is {} bytes, {} recorded", self.read, self.expected_size);
                return Err(self.fail(SnapshotError::Corrupt { id: self.id.clone(), reason }));
            }
            let actual = self.hasher.clone().finalize();
            if actual != self.expected_crc {
                let expected = self.expected_crc;
                return Err(self.fail(SnapshotError::ChecksumMismatch {
                    id: self.id.clone(),
                    expected,
                    actual,
                }));
            }
        }
        Ok(n)
    }
}

/// A snapshot being written into its `.tmp` directory.
struct FileSink {
    store: FileSnapshotStore,
    id: String,
    tmp_dir: PathBuf,
    state: Option<BufWriter<File>>,
    hasher: crc32fast::Hasher,
    size: u64,
    snapshot: NewSnapshot,
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let state = self.state.as_mut().ok_or_else(|| io::Error::other("the snapshot sink is closed"))?;
        let n = state.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.state.as_mut().map_or(Ok(()), |state| state.flush())
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl FileSink {
    fn commit(&mut self) -> Result<SnapshotMeta, SnapshotError> {
        let state = self.state.take().ok_or_else(|| io::Error::other("the snapshot sink is closed"))?;
        let file = state.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let meta = self.snapshot.clone().into_meta(self.id.clone(), self.size);
        let mut encoded = BytesMut::new();
        encode_snapshot_meta(&meta, &mut encoded);
        let mut bytes = Vec::with_capacity(16 + encoded.len());
        bytes.extend_from_slice(META_MAGIC);
        bytes.extend_from_slice(&self.hasher.clone().finalize().to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&encoded).to_le_bytes());
        bytes.extend_from_slice(&encoded);
        let mut meta_file = File::create(self.tmp_dir.join(META_FILE))?;
        meta_file.write_all(&bytes)?;
        meta_file.sync_all()?;
        sync_dir(&self.tmp_dir)?;
        fs::rename(&self.tmp_dir, self.store.dir.join(&self.id))?;
        sync_dir(&self.store.dir)?;
        Ok(meta)
    }
}

impl SnapshotSink for FileSink {
    fn id(&self) -> &str {
        &self.id
    }

    fn close(mut self: Box<Self>) -> Result<SnapshotMeta, SnapshotError> {
        match self.commit() {
            Ok(meta) => {
                if let Err(error) = self.store.reap() {
                    tracing::warn!(%error, "removing old snapshots failed");
                }
                Ok(meta)
            }
            Err(error) => {
                let _ = fs::remove_dir_all(&self.tmp_dir);
                Err(error)
            }
        }
    }

    fn cancel(mut self: Box<Self>) -> Result<(), SnapshotError> {
        self.state = None;
        fs::remove_dir_all(&self.tmp_dir)?;
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // A sink dropped without close or cancel leaves nothing behind either.
        if self.state.take().is_some() {
            let _ = fs::remove_dir_all(&self.tmp_dir);
        }
    }
}
