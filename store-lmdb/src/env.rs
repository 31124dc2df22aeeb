//! The only `unsafe` code of raft-kit: opening and resizing an LMDB
//! environment through heed.

use heed::{Env, EnvFlags, EnvOpenOptions, WithoutTls};
use std::path::Path;

/// Opens the environment in directory `dir` with a map of `map_size` bytes.
#[allow(unsafe_code)]
pub(crate) fn open(dir: &Path, map_size: usize, flags: EnvFlags) -> heed::Result<Env<WithoutTls>> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_dbs(3);
    // SAFETY: heed marks these unsafe because LMDB memory-maps the file: the
    // map must not be changed behind LMDB's back (by truncating or rewriting
    // the file while it is open, in or out of this process), and the flags
    // weaken durability as documented on `Durability`. raft-kit opens one
    // environment per directory per process (heed refuses a second open of
    // the same path with different options), never modifies the files
    // itself, and uses LMDB's own lock file against other processes.
    unsafe {
        options.flags(flags);
        options.open(dir)
    }
}

/// Grows the memory map to `new_size` bytes.
///
/// The caller must hold the store's resize lock exclusively, so that no
/// transaction of this process is active.
#[allow(unsafe_code)]
pub(crate) fn resize(env: &Env<WithoutTls>, new_size: usize) -> heed::Result<()> {
    // SAFETY: LMDB allows `mdb_env_set_mapsize` on an open environment while
    // no transaction is active; every transaction of `LmdbStore` runs under a
    // shared hold of its resize lock, which the caller holds exclusively.
    unsafe { env.resize(new_size) }
}
