use crate::env;
use heed::byteorder::BigEndian;
use heed::types::{Bytes as RawBytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, EnvFlags, MdbError, PutFlags, RoTxn, RwTxn, WithoutTls};
use raft_core::log::{DeletePlan, check_batch, decode_stored_entry, plan_delete};
use raft_core::{Log, LogStore, StableStore, StoreError, codec};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

/// The storage format version this code writes; checked on open.
pub const FORMAT_VERSION: u64 = 1;

const META_FORMAT: &str = "format_version";
const META_COMMIT: &str = "commit_index";
/// LMDB's page size on the machines raft-kit targets; used only to check
/// that the data file is not shorter than the pages LMDB says it holds.
const PAGE_SIZE_MIN: u64 = 4096;

type Logs = Database<'static, U64<BigEndian>, RawBytes>;
type Stable = Database<'static, RawBytes, RawBytes>;
type Meta = Database<'static, Str, U64<BigEndian>>;

/// What a write promises when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is fsynced, data and meta page (LMDB's default): a
    /// returned write survives a crash of the machine.
    #[default]
    Full,
    /// The meta page is not fsynced (`MDB_NOMETASYNC`): a machine crash may
    /// undo the last commit, though the database stays consistent. That
    /// last commit may hold a vote or acknowledged entries, which can break
    /// Raft's safety.
    NoMetaSync,
    /// Nothing is fsynced (`MDB_NOSYNC`): a machine crash may undo any
    /// number of recent commits (a process crash loses nothing). For tests
    /// and throwaway nodes.
    NoSync,
}

/// How to open an [`LmdbStore`].
#[derive(Clone, Debug)]
pub struct LmdbOptions {
    dir: PathBuf,
    map_size_initial: usize,
    map_size_max: usize,
    durability: Durability,
}

impl LmdbOptions {
    /// Options for an environment in directory `dir` (created if missing):
    /// a 64 MiB map growing up to 64 GiB, full durability.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            map_size_initial: 64 << 20,
            map_size_max: 64 << 30,
            durability: Durability::Full,
        }
    }

    /// The map size to open with, in bytes (rounded up to 64 KiB).
    pub fn map_size_initial(mut self, bytes: usize) -> Self {
        self.map_size_initial = bytes;
        self
    }

    /// The largest the map may grow to, in bytes. A write that needs more
    /// fails with [`StoreError::Full`].
    pub fn map_size_max(mut self, bytes: usize) -> Self {
        self.map_size_max = bytes;
        self
    }

    /// Sets what a write promises.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Opens the store, creating the environment and its databases if
    /// needed. Another format version is [`StoreError::UnsupportedVersion`];
    /// a data file shorter than its pages (truncated) is [`StoreError::Corrupt`].
    pub fn open(self) -> Result<LmdbStore, StoreError> {
        std::fs::create_dir_all(&self.dir)?;
        let round = |bytes: usize| bytes.div_ceil(1 << 16).max(1) << 16;
        let map_size = round(self.map_size_initial.min(self.map_size_max));
        let flags = match self.durability {
            Durability::Full => EnvFlags::empty(),
            Durability::NoMetaSync => EnvFlags::NO_META_SYNC,
            Durability::NoSync => EnvFlags::NO_SYNC,
        };
        let dir = self.dir.clone();
        let env = env::open(&dir, map_size, flags).map_err(|e| map_error(&dir, e))?;
        check_not_truncated(&env, &dir)?;
        let wtxn = env.write_txn().map_err(|e| map_error(&dir, e))?;
        let created = env.create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            let logs: Database<'_, U64<BigEndian>, RawBytes> = opener.create_database(wtxn, Some("logs"))?;
            let stable: Database<'_, RawBytes, RawBytes> = opener.create_database(wtxn, Some("stable"))?;
            let meta: Database<'_, Str, U64<BigEndian>> = opener.create_database(wtxn, Some("meta"))?;
            Ok(CommitOrAbort::<_, ()>::Commit((logs, stable, meta)))
        });
        let (logs, stable, meta): (Logs, Stable, Meta) =
            created.map_err(|e| map_error(&dir, e))?.unwrap_commit();
        let mut wtxn = env.write_txn().map_err(|e| map_error(&dir, e))?;
        match meta.get(&wtxn, META_FORMAT).map_err(|e| map_error(&dir, e))? {
            None => meta.put(&mut wtxn, META_FORMAT, &FORMAT_VERSION).map_err(|e| map_error(&dir, e))?,
            Some(FORMAT_VERSION) => {}
            Some(found) => {
                let found = u32::try_from(found).unwrap_or(u32::MAX);
                return Err(StoreError::UnsupportedVersion { found, expected: FORMAT_VERSION as u32 });
            }
        }
        wtxn.commit().map_err(|e| map_error(&dir, e))?;
        Ok(LmdbStore {
            env,
            logs,
            stable,
            meta,
            dir: self.dir,
            map_size_max: round(self.map_size_max),
            resize: RwLock::new(()),
        })
    }
}

/// LMDB maps the data file into memory; reading a page past the end of a
/// truncated file would kill the process (SIGBUS). Refuse such a file up front.
fn check_not_truncated(env: &Env<WithoutTls>, dir: &Path) -> Result<(), StoreError> {
    let path = dir.join("data.mdb");
    let len = std::fs::metadata(&path)?.len();
    let pages = env.info().last_page_number as u64 + 1;
    let page_size = (env.unnamed_database_stat().page_size as u64).max(PAGE_SIZE_MIN);
    if len < pages * page_size {
        return Err(StoreError::Corrupt {
            location: path.display().to_string(),
            reason: format!(
                "the file is {len} bytes, but LMDB's meta page counts {pages} pages of {page_size}"
            ),
        });
    }
    Ok(())
}

fn map_error(dir: &Path, error: heed::Error) -> StoreError {
    match error {
        heed::Error::Mdb(
            MdbError::Corrupted | MdbError::Invalid | MdbError::PageNotFound | MdbError::BadTxn,
        ) => StoreError::Corrupt { location: dir.display().to_string(), reason: error.to_string() },
        heed::Error::Mdb(MdbError::VersionMismatch) => {
            StoreError::Corrupt { location: dir.display().to_string(), reason: error.to_string() }
        }
        heed::Error::Io(error) => StoreError::Io(error),
        other => StoreError::Backend(Box::new(other)),
    }
}

/// A durable [`LogStore`] and [`StableStore`] in one LMDB environment.
///
/// Each `store_logs` is one write transaction (one commit, one fsync with
/// full durability). Every entry carries a CRC32, so a damaged value is
/// reported, never returned as good. Reads use short read transactions: a
/// read sees every append that returned before it started. When the map is
/// full, the store doubles it (up to the maximum) and retries.
pub struct LmdbStore {
    env: Env<WithoutTls>,
    logs: Logs,
    stable: Stable,
    meta: Meta,
    dir: PathBuf,
    map_size_max: usize,
    /// Every transaction holds this shared; growing the map holds it alone.
    resize: RwLock<()>,
}

impl std::fmt::Debug for LmdbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmdbStore")
            .field("dir", &self.dir)
            .field("map_size", &self.env.info().map_size)
            .finish()
    }
}

impl LmdbStore {
    /// Opens the store in `dir` with the default options.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        LmdbOptions::new(dir).open()
    }

    /// The environment's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current size of the memory map, in bytes.
    pub fn map_size(&self) -> usize {
        self.env.info().map_size
    }

    /// This store needs log indexes to be contiguous and, after a snapshot
    /// restore, the log to be cleared rather than patched (as hashicorp's
    /// `MonotonicLogStore`); the raft-kit core always behaves so.
    pub fn is_monotonic(&self) -> bool {
        true
    }

    fn map(&self, error: heed::Error) -> StoreError {
        map_error(&self.dir, error)
    }

    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.resize.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read<T>(
        &self,
        body: impl FnOnce(&RoTxn<'_, WithoutTls>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _shared = self.shared();
        let rtxn = self.env.read_txn().map_err(|e| self.map(e))?;
        body(&rtxn)
    }

    /// Runs `body` in a write transaction and commits it; when the map is
    /// full, grows the map and runs it again.
    fn write<T>(&self, body: impl Fn(&mut RwTxn<'_>) -> Result<T, heed::Error>) -> Result<T, StoreError> {
        loop {
            let outcome = {
                let _shared = self.shared();
                let mut wtxn = self.env.write_txn().map_err(|e| self.map(e))?;
                body(&mut wtxn).and_then(|value| wtxn.commit().map(|()| value))
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(heed::Error::Mdb(MdbError::MapFull)) => self.grow()?,
                Err(error) => return Err(self.map(error)),
            }
        }
    }

    fn grow(&self) -> Result<(), StoreError> {
        let _exclusive = self.resize.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.env.info().map_size;
        if current >= self.map_size_max {
            return Err(StoreError::Full(format!(
                "the LMDB map in {} is at its maximum of {} bytes",
                self.dir.display(),
                self.map_size_max
            )));
        }
        let next = current.saturating_mul(2).min(self.map_size_max);
        tracing::info!(dir = %self.dir.display(), from = current, to = next, "growing the LMDB map");
        env::resize(&self.env, next).map_err(|e| self.map(e))
    }

    fn bounds(&self, rtxn: &RoTxn<'_, WithoutTls>) -> Result<(u64, u64), heed::Error> {
        let first = self.logs.first(rtxn)?.map(|(k, _)| k);
        let last = self.logs.last(rtxn)?.map(|(k, _)| k);
        Ok((first.unwrap_or(0), last.unwrap_or(0)))
    }
}

/// A store-level refusal raised inside a write transaction, carried through
/// heed's error type and back out.
fn refusal(error: StoreError) -> heed::Error {
    heed::Error::Encoding(Box::new(error))
}

fn take_refusal(error: StoreError) -> StoreError {
    match error {
        StoreError::Backend(inner) => match inner.downcast::<heed::Error>() {
            Ok(heed_error) => match *heed_error {
                heed::Error::Encoding(boxed) => match boxed.downcast::<StoreError>() {
                    Ok(store_error) => *store_error,
                    Err(other) => StoreError::Backend(other),
                },
                other => StoreError::Backend(Box::new(other)),
            },
            Err(other) => StoreError::Backend(other),
        },
        other => other,
    }
}

impl LogStore for LmdbStore {
    fn first_index(&self) -> Result<u64, StoreError> {
        self.read(|rtxn| self.bounds(rtxn).map(|b| b.0).map_err(|e| self.map(e)))
    }

    fn last_index(&self) -> Result<u64, StoreError> {
        self.read(|rtxn| self.bounds(rtxn).map(|b| b.1).map_err(|e| self.map(e)))
    }

    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        self.read(|rtxn| {
            let value = self.logs.get(rtxn, &index).map_err(|e| self.map(e))?;
            value.map(|v| decode_stored_entry(index, v)).transpose()
        })
    }

    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        if first > last {
            return Ok(Vec::new());
        }
        self.read(|rtxn| {
            let mut logs = Vec::new();
            let mut bytes_total = 0u64;
            for (expected, item) in
                (first..).zip(self.logs.range(rtxn, &(first..=last)).map_err(|e| self.map(e))?)
            {
                if !logs.is_empty() && bytes_total >= bytes_max {
                    break;
                }
                let (index, value) = item.map_err(|e| self.map(e))?;
                if index != expected {
                    break;
                }
                let log = decode_stored_entry(index, value)?;
                bytes_total += log.payload_size();
                logs.push(log);
            }
            Ok(logs)
        })
    }

    fn store_logs(&self, logs: &[Log]) -> Result<(), StoreError> {
        self.store_logs_with_commit(logs, 0)
    }

    fn store_logs_with_commit(&self, logs: &[Log], commit_index: u64) -> Result<(), StoreError> {
        if logs.is_empty() && commit_index == 0 {
            return Ok(());
        }
        let encoded: Vec<(u64, Vec<u8>)> =
            logs.iter().map(|l| (l.index, codec::encode_log_with_crc(l))).collect();
        let result = self.write(|wtxn| {
            let last = self.logs.last(wtxn)?.map_or(0, |(k, _)| k);
            check_batch(last, logs).map_err(refusal)?;
            // The batch continues the log, so every key sorts after the
            // last: MDB_APPEND skips the B-tree search and fills pages
            // instead of splitting them in half.
            for (index, value) in &encoded {
                self.logs.put_with_flags(wtxn, PutFlags::APPEND, index, value)?;
            }
            if commit_index > self.meta.get(wtxn, META_COMMIT)?.unwrap_or(0) {
                self.meta.put(wtxn, META_COMMIT, &commit_index)?;
            }
            Ok(())
        });
        result.map_err(take_refusal)
    }

    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        self.read(|rtxn| Ok(Some(self.meta.get(rtxn, META_COMMIT).map_err(|e| self.map(e))?.unwrap_or(0))))
    }

    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        let result = self.write(|wtxn| {
            let first = self.logs.first(wtxn)?.map_or(0, |(k, _)| k);
            let last = self.logs.last(wtxn)?.map_or(0, |(k, _)| k);
            match plan_delete(first, last, min, max).map_err(refusal)? {
                DeletePlan::Nothing => {}
                DeletePlan::All => self.logs.clear(wtxn)?,
                DeletePlan::Prefix(through) => {
                    self.logs.delete_range(wtxn, &(first..=through))?;
                }
                DeletePlan::Suffix(from) => {
                    self.logs.delete_range(wtxn, &(from..=last))?;
                }
            }
            Ok(())
        });
        result.map_err(take_refusal)
    }
}

/// LMDB refuses empty keys, so every stable key is stored behind one prefix byte.
fn stable_key(key: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(1 + key.len());
    stored.push(b'k');
    stored.extend_from_slice(key);
    stored
}

impl StableStore for LmdbStore {
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let key = stable_key(key);
        self.write(|wtxn| self.stable.put(wtxn, &key, value))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = stable_key(key);
        self.read(|rtxn| Ok(self.stable.get(rtxn, &key).map_err(|e| self.map(e))?.map(<[u8]>::to_vec)))
    }
}
