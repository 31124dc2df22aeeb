use crate::env;
use heed::byteorder::BigEndian;
use heed::types::{Bytes as RawBytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, EnvFlags, MdbError, PutFlags, RoTxn, RwTxn, WithoutTls};
use raft_core::lock::LockFile;
use raft_core::log::{
    DeletePlan, check_batch, check_range, decode_stored_entry, missing_entry, not_found, plan_delete,
};
use raft_core::stable::check_key;
use raft_core::{Log, LogStore, StableStore, StoreError, codec};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

/// The storage format version this code writes; checked on open.
pub const FORMAT_VERSION: u64 = 1;

const META_FORMAT: &str = "format_version";
const DATA_FILE: &str = "data.mdb";
/// Held (flock) by the open store, so that no other store opens the directory.
const LOCK_FILE: &str = "raft-kit.lock";
/// Where a new store is made before its data file is moved in.
const STAGING_DIR: &str = ".raft-kit-creating";
const META_COMMIT: &str = "commit_index";
/// LMDB's page size on the machines raft-kit targets; used only to check
/// that the data file is not shorter than the pages LMDB says it holds.
const PAGE_SIZE_MIN: u64 = 4096;

type LogsIn<'e> = Database<'e, U64<BigEndian>, RawBytes>;
type StableIn<'e> = Database<'e, RawBytes, RawBytes>;
type MetaIn<'e> = Database<'e, Str, U64<BigEndian>>;
type Logs = LogsIn<'static>;
type Stable = StableIn<'static>;
type Meta = MetaIn<'static>;

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

    /// Opens the store, creating the environment, its databases and its
    /// format record if the directory holds no data file.
    ///
    /// - Another format version is [`StoreError::UnsupportedVersion`].
    /// - A data file that exists but is empty, shorter than its pages
    ///   (truncated) or lacks the store's tables or format record was created
    ///   and has lost its contents: [`StoreError::Corrupt`], never a new store.
    /// - A directory another open `LmdbStore` holds, in this process or
    ///   another, is [`StoreError::Locked`] (naming the lock file).
    ///
    /// A new store is written in a staging directory and its data file
    /// moved in whole, so a crash while creating leaves no data file at all.
    pub fn open(self) -> Result<LmdbStore, StoreError> {
        std::fs::create_dir_all(&self.dir)?;
        let lock = LockFile::acquire(self.dir.join(LOCK_FILE))?;
        let data = self.dir.join(DATA_FILE);
        match std::fs::metadata(&data) {
            Ok(meta) if meta.len() == 0 => {
                return Err(lost(&data, "the data file is empty"));
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => self.create(&data)?,
            Err(error) => return Err(error.into()),
        }
        let dir = self.dir.clone();
        let env = env::open(&dir, self.map_size(), self.flags()).map_err(|e| map_error(&dir, e))?;
        check_not_truncated(&env, &dir)?;
        let rtxn = env.read_txn().map_err(|e| map_error(&dir, e))?;
        let opened = env.open_databases_and_commit(rtxn, |opener, rtxn| -> heed::Result<_> {
            let logs: Option<LogsIn<'_>> = opener.open_database(rtxn, Some("logs"))?;
            let stable: Option<StableIn<'_>> = opener.open_database(rtxn, Some("stable"))?;
            let meta: Option<MetaIn<'_>> = opener.open_database(rtxn, Some("meta"))?;
            Ok(CommitOrAbort::<_, ()>::Commit((logs, stable, meta)))
        });
        let opened: (Option<Logs>, Option<Stable>, Option<Meta>) =
            opened.map_err(|e| map_error(&dir, e))?.unwrap_commit();
        let (Some(logs), Some(stable), Some(meta)) = opened else {
            return Err(lost(&data, "the store's tables are missing"));
        };
        let rtxn = env.read_txn().map_err(|e| map_error(&dir, e))?;
        match meta.get(&rtxn, META_FORMAT).map_err(|e| map_error(&dir, e))? {
            Some(FORMAT_VERSION) => {}
            None => return Err(lost(&data, "the format record is missing")),
            Some(found) => {
                let found = u32::try_from(found).unwrap_or(u32::MAX);
                return Err(StoreError::UnsupportedVersion { found, expected: FORMAT_VERSION as u32 });
            }
        }
        drop(rtxn);
        Ok(LmdbStore {
            env,
            logs,
            stable,
            meta,
            dir: self.dir,
            map_size_max: round_map_size(self.map_size_max),
            resize: RwLock::new(()),
            _lock: lock,
        })
    }

    fn map_size(&self) -> usize {
        round_map_size(self.map_size_initial.min(self.map_size_max))
    }

    fn flags(&self) -> EnvFlags {
        match self.durability {
            Durability::Full => EnvFlags::empty(),
            Durability::NoMetaSync => EnvFlags::NO_META_SYNC,
            Durability::NoSync => EnvFlags::NO_SYNC,
        }
    }

    /// Creates a new environment with its tables and format record in a
    /// staging directory, then moves its data file to `data` and syncs the
    /// directory: the data file appears whole or not at all.
    fn create(&self, data: &Path) -> Result<(), StoreError> {
        let staging = self.dir.join(STAGING_DIR);
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir(&staging)?;
        {
            let env =
                env::open(&staging, self.map_size(), self.flags()).map_err(|e| map_error(&staging, e))?;
            let wtxn = env.write_txn().map_err(|e| map_error(&staging, e))?;
            let created = env.create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                let _: LogsIn<'_> = opener.create_database(wtxn, Some("logs"))?;
                let _: StableIn<'_> = opener.create_database(wtxn, Some("stable"))?;
                let meta: MetaIn<'_> = opener.create_database(wtxn, Some("meta"))?;
                meta.put(wtxn, META_FORMAT, &FORMAT_VERSION)?;
                Ok(CommitOrAbort::<_, ()>::Commit(()))
            });
            created.map_err(|e| map_error(&staging, e))?;
            env.force_sync().map_err(|e| map_error(&staging, e))?;
            env.prepare_for_closing().wait();
        }
        std::fs::rename(staging.join(DATA_FILE), data)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        std::fs::remove_dir_all(&staging)?;
        Ok(())
    }
}

fn round_map_size(bytes: usize) -> usize {
    bytes.div_ceil(1 << 16).max(1) << 16
}

/// The error for a data file that was created and has lost its contents.
fn lost(data: &Path, what: &str) -> StoreError {
    StoreError::Corrupt {
        location: data.display().to_string(),
        reason: format!("{what}: the store was created and has lost its contents"),
    }
}

/// LMDB maps the data file into memory; reading a page past the end of a
/// truncated file would kill the process (SIGBUS). Refuse such a file up front.
fn check_not_truncated(env: &Env<WithoutTls>, dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(DATA_FILE);
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
    _lock: LockFile,
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
            match self.logs.get(rtxn, &index).map_err(|e| self.map(e))? {
                Some(value) => decode_stored_entry(index, value).map(Some),
                None => {
                    // Inside the stored run a miss can only be damage.
                    let (first, last) = self.bounds(rtxn).map_err(|e| self.map(e))?;
                    not_found(index, first, last)
                }
            }
        })
    }

    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        self.read(|rtxn| {
            let (stored_first, stored_last) = self.bounds(rtxn).map_err(|e| self.map(e))?;
            let Some(last) = check_range(stored_first, stored_last, first, last)? else {
                return Ok(Vec::new());
            };
            let mut logs = Vec::new();
            let mut bytes_total = 0u64;
            let mut expected = first;
            for item in self.logs.range(rtxn, &(first..=last)).map_err(|e| self.map(e))? {
                if !logs.is_empty() && bytes_total >= bytes_max {
                    return Ok(logs);
                }
                let (index, value) = item.map_err(|e| self.map(e))?;
                if index != expected {
                    return Err(missing_entry(expected, stored_first, stored_last));
                }
                let log = decode_stored_entry(index, value)?;
                bytes_total += log.payload_size();
                logs.push(log);
                expected += 1;
            }
            if expected <= last {
                return Err(missing_entry(expected, stored_first, stored_last));
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
        check_key(key)?;
        let key = stable_key(key);
        self.write(|wtxn| self.stable.put(wtxn, &key, value))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        let key = stable_key(key);
        self.read(|rtxn| Ok(self.stable.get(rtxn, &key).map_err(|e| self.map(e))?.map(<[u8]>::to_vec)))
    }
}
