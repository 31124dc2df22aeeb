use raft_core::log::{
    DeletePlan, check_batch, check_range, decode_stored_entry, missing_entry, not_found, plan_delete,
};
use raft_core::stable::check_key;
use raft_core::{Log, LogStore, StableStore, StoreError, codec};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The storage format version this code writes; checked on open.
pub const FORMAT_VERSION: u64 = 1;

const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
const STABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("stable");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_FORMAT: &str = "format_version";
const META_COMMIT: &str = "commit_index";

/// What a write promises when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is on stable storage when it returns (redb's
    /// `Durability::Immediate`: one fsync per commit, with checksums).
    #[default]
    Full,
    /// Commits are not fsynced (redb's `Durability::None`): a crash of the
    /// machine may lose the writes since the last durable commit, and with
    /// them votes and acknowledged entries, which can break Raft's safety.
    /// A crash of the process alone loses nothing. For tests and for nodes
    /// whose durability comes from elsewhere.
    None,
}

/// How to open a [`RedbStore`].
#[derive(Clone, Debug)]
pub struct RedbOptions {
    path: PathBuf,
    durability: Durability,
    verify_on_open: bool,
    cache_size: Option<usize>,
}

impl RedbOptions {
    /// Options for the database file at `path` (created if missing), with
    /// full durability and every page's checksum verified on open.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), durability: Durability::Full, verify_on_open: true, cache_size: None }
    }

    /// Sets what a write promises.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether to verify every page's checksum when opening (the default).
    /// Without it an open trusts the file, and redb may panic on a file
    /// damaged outside it.
    pub fn verify_on_open(mut self, verify: bool) -> Self {
        self.verify_on_open = verify;
        self
    }

    /// The size of redb's page cache, in bytes.
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = Some(bytes);
        self
    }

    /// Opens the store, creating the file (and its parent directory), its
    /// tables and its format record if the file does not exist.
    ///
    /// - A file written by another format version is [`StoreError::UnsupportedVersion`].
    /// - A damaged file is [`StoreError::Corrupt`]; so is a file that exists
    ///   but is empty or lacks the store's tables or format record: it was
    ///   created and has lost its contents, and is never taken for a new store.
    /// - A file another open store holds, in this process or another, is
    ///   [`StoreError::Locked`] (redb locks the file itself).
    ///
    /// A new store is written under a temporary name beside `path` and
    /// renamed into place, so a crash while creating leaves no file at all.
    pub fn open(self) -> Result<RedbStore, StoreError> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.len() == 0 => return Err(lost(&self.path, "the file is empty")),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => self.create()?,
            Err(error) => return Err(error.into()),
        }
        let path = self.path.clone();
        let db = guarded(&path, || {
            self.builder().open(&path).map_err(redb::Error::from).map_err(|e| map_error(&path, e))
        })?;
        let store = RedbStore { db, path: self.path, durability: self.durability };
        store.check_format()?;
        Ok(store)
    }

    fn builder(&self) -> redb::Builder {
        let mut builder = redb::Database::builder();
        builder.set_check_integrity_on_open(self.verify_on_open);
        if let Some(bytes) = self.cache_size {
            builder.set_cache_size(bytes);
        }
        builder
    }

    /// Creates the database with its tables and format record under a
    /// temporary name, then renames it into place and syncs the directory.
    fn create(&self) -> Result<(), StoreError> {
        let mut staging = self.path.clone().into_os_string();
        staging.push(".creating");
        let staging = PathBuf::from(staging);
        if staging.exists() {
            std::fs::remove_file(&staging)?;
        }
        let db = guarded(&staging, || {
            redb::Database::builder()
                .create(&staging)
                .map_err(redb::Error::from)
                .map_err(|e| map_error(&staging, e))
        })?;
        let store = RedbStore { db, path: staging.clone(), durability: Durability::Full };
        store.init()?;
        drop(store);
        std::fs::rename(&staging, &self.path)?;
        let parent = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(parent)?.sync_all()?;
        Ok(())
    }
}

/// The error for a file that was created and has lost its contents.
fn lost(path: &Path, what: &str) -> StoreError {
    StoreError::Corrupt {
        location: path.display().to_string(),
        reason: format!("{what}: the store was created and has lost its contents"),
    }
}

/// A durable [`LogStore`] and [`StableStore`] in one redb database file.
///
/// Each `store_logs` is one write transaction (one commit). Every stored
/// entry carries a CRC32, so a damaged value is reported, never returned as
/// good. Reads use short read transactions, so a read sees every append that
/// returned before it started.
pub struct RedbStore {
    db: redb::Database,
    path: PathBuf,
    durability: Durability,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.path).field("durability", &self.durability).finish()
    }
}

/// Runs a redb call, turning a panic inside redb (which its debug builds
/// raise on some damaged files) into a typed error.
fn guarded<T>(path: &Path, call: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|_| {
        Err(StoreError::Corrupt {
            location: path.display().to_string(),
            reason: "the storage engine failed on damaged data".into(),
        })
    })
}

fn map_error(path: &Path, error: redb::Error) -> StoreError {
    match error {
        redb::Error::Corrupted(reason) => {
            StoreError::Corrupt { location: path.display().to_string(), reason }
        }
        redb::Error::DatabaseAlreadyOpen => StoreError::Locked { path: path.to_path_buf() },
        redb::Error::Io(error) => StoreError::Io(error),
        other => StoreError::Backend(Box::new(other)),
    }
}

impl RedbStore {
    /// Opens the store at `path` with the default options.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        RedbOptions::new(path).open()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This store needs log indexes to be contiguous and, after a snapshot
    /// restore, the log to be cleared rather than patched (as hashicorp's
    /// `MonotonicLogStore`); the raft-kit core always behaves so.
    pub fn is_monotonic(&self) -> bool {
        true
    }

    fn map(&self, error: impl Into<redb::Error>) -> StoreError {
        map_error(&self.path, error.into())
    }

    fn write<T>(
        &self,
        body: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        guarded(&self.path, || {
            let mut txn = self.db.begin_write().map_err(|e| self.map(e))?;
            let durability = match self.durability {
                Durability::Full => redb::Durability::Immediate,
                Durability::None => redb::Durability::None,
            };
            txn.set_durability(durability).map_err(|e| StoreError::Backend(Box::new(e)))?;
            let value = body(&txn)?;
            txn.commit().map_err(|e| self.map(e))?;
            Ok(value)
        })
    }

    fn read<T>(
        &self,
        body: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.map(e))?;
            body(&txn)
        })
    }

    /// Checks that an existing file has the store's tables and this code's
    /// format record, reading only.
    fn check_format(&self) -> Result<(), StoreError> {
        self.read(|txn| {
            let meta = match txn.open_table(META) {
                Ok(meta) => meta,
                Err(redb::TableError::TableDoesNotExist(_)) => {
                    return Err(lost(&self.path, "the store's tables are missing"));
                }
                Err(error) => return Err(self.map(error)),
            };
            match meta.get(META_FORMAT).map_err(|e| self.map(e))?.map(|v| v.value()) {
                Some(FORMAT_VERSION) => Ok(()),
                None => Err(lost(&self.path, "the format record is missing")),
                Some(found) => {
                    let found = u32::try_from(found).unwrap_or(u32::MAX);
                    Err(StoreError::UnsupportedVersion { found, expected: FORMAT_VERSION as u32 })
                }
            }
        })
    }

    /// Creates the tables and the format record, or checks the record.
    fn init(&self) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut meta = txn.open_table(META).map_err(|e| self.map(e))?;
            txn.open_table(LOGS).map_err(|e| self.map(e))?;
            txn.open_table(STABLE).map_err(|e| self.map(e))?;
            let found = meta.get(META_FORMAT).map_err(|e| self.map(e))?.map(|v| v.value());
            match found {
                None => {
                    meta.insert(META_FORMAT, FORMAT_VERSION).map_err(|e| self.map(e))?;
                }
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    let found = u32::try_from(found).unwrap_or(u32::MAX);
                    return Err(StoreError::UnsupportedVersion { found, expected: FORMAT_VERSION as u32 });
                }
            }
            Ok(())
        })
    }

    fn bounds_in(&self, table: &impl ReadableTable<u64, &'static [u8]>) -> Result<(u64, u64), StoreError> {
        let first = table.first().map_err(|e| self.map(e))?.map(|(k, _)| k.value());
        let last = table.last().map_err(|e| self.map(e))?.map(|(k, _)| k.value());
        Ok((first.unwrap_or(0), last.unwrap_or(0)))
    }

    fn bounds(&self) -> Result<(u64, u64), StoreError> {
        self.read(|txn| {
            let table = txn.open_table(LOGS).map_err(|e| self.map(e))?;
            self.bounds_in(&table)
        })
    }
}

impl LogStore for RedbStore {
    fn first_index(&self) -> Result<u64, StoreError> {
        Ok(self.bounds()?.0)
    }

    fn last_index(&self) -> Result<u64, StoreError> {
        Ok(self.bounds()?.1)
    }

    fn get_log(&self, index: u64) -> Result<Option<Log>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(LOGS).map_err(|e| self.map(e))?;
            match table.get(index).map_err(|e| self.map(e))? {
                Some(value) => decode_stored_entry(index, value.value()).map(Some),
                None => {
                    // Inside the stored run a miss can only be damage.
                    let (first, last) = self.bounds_in(&table)?;
                    not_found(index, first, last)
                }
            }
        })
    }

    fn get_logs(&self, first: u64, last: u64, bytes_max: u64) -> Result<Vec<Log>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(LOGS).map_err(|e| self.map(e))?;
            let (stored_first, stored_last) = self.bounds_in(&table)?;
            let Some(last) = check_range(stored_first, stored_last, first, last)? else {
                return Ok(Vec::new());
            };
            let mut logs = Vec::new();
            let mut bytes_total = 0u64;
            let mut expected = first;
            for item in table.range(first..=last).map_err(|e| self.map(e))? {
                if !logs.is_empty() && bytes_total >= bytes_max {
                    return Ok(logs);
                }
                let (key, value) = item.map_err(|e| self.map(e))?;
                if key.value() != expected {
                    return Err(missing_entry(expected, stored_first, stored_last));
                }
                let log = decode_stored_entry(key.value(), value.value())?;
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
        self.write(|txn| {
            let mut table = txn.open_table(LOGS).map_err(|e| self.map(e))?;
            let (_, last) = self.bounds_in(&table)?;
            check_batch(last, logs)?;
            for log in logs {
                table
                    .insert(log.index, codec::encode_log_with_crc(log).as_slice())
                    .map_err(|e| self.map(e))?;
            }
            if commit_index > 0 {
                let mut meta = txn.open_table(META).map_err(|e| self.map(e))?;
                let known = meta.get(META_COMMIT).map_err(|e| self.map(e))?.map_or(0, |v| v.value());
                if commit_index > known {
                    meta.insert(META_COMMIT, commit_index).map_err(|e| self.map(e))?;
                }
            }
            Ok(())
        })
    }

    fn commit_index(&self) -> Result<Option<u64>, StoreError> {
        self.read(|txn| {
            let meta = txn.open_table(META).map_err(|e| self.map(e))?;
            Ok(Some(meta.get(META_COMMIT).map_err(|e| self.map(e))?.map_or(0, |v| v.value())))
        })
    }

    fn delete_range(&self, min: u64, max: u64) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(LOGS).map_err(|e| self.map(e))?;
            let (first, last) = self.bounds_in(&table)?;
            match plan_delete(first, last, min, max)? {
                DeletePlan::Nothing => {}
                DeletePlan::All => table.retain(|_, _| false).map_err(|e| self.map(e))?,
                DeletePlan::Prefix(through) => {
                    table.retain_in(first..=through, |_, _| false).map_err(|e| self.map(e))?;
                }
                DeletePlan::Suffix(from) => {
                    table.retain_in(from..=last, |_, _| false).map_err(|e| self.map(e))?
                }
            }
            Ok(())
        })
    }
}

impl StableStore for RedbStore {
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        self.write(|txn| {
            let mut table = txn.open_table(STABLE).map_err(|e| self.map(e))?;
            table.insert(key, value).map_err(|e| self.map(e))?;
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        self.read(|txn| {
            let table = txn.open_table(STABLE).map_err(|e| self.map(e))?;
            Ok(table.get(key).map_err(|e| self.map(e))?.map(|v| v.value().to_vec()))
        })
    }
}
