//! How much a store writes to disk per entry, and how long its commits take:
//! appends 200 batches of 256 × 1 KiB to each durable store and to the raw
//! file, and reads the process's `write_bytes` from `/proc/self/io` around
//! each run. Run under `strace -f -c -e trace=fsync,fdatasync,msync` to count
//! the syncs.
//!
//! ```text
//! cargo run --release -p benches --bin write_amp
//! ```

use benches::entries::{batch, renumber};
use benches::raw::RawLog;
use raft_core::LogStore;
use std::time::Instant;

const BATCHES: u64 = 200;
const COUNT: usize = 256;
const PAYLOAD: usize = 1024;

fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find(|l| l.starts_with("write_bytes:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn measure(name: &str, mut append: impl FnMut(&[raft_core::Log])) {
    let mut logs = batch(1, COUNT, PAYLOAD);
    let before = write_bytes();
    let started = Instant::now();
    for b in 0..BATCHES {
        renumber(&mut logs, 1 + b * COUNT as u64);
        append(&logs);
    }
    let elapsed = started.elapsed();
    let written = write_bytes() - before;
    let entries = BATCHES * COUNT as u64;
    println!(
        "{name:<9} {:>7.0} bytes written per 1 KiB entry, {:>6.2} ms per 256-entry commit, {:>6.1} MB/s of payload",
        written as f64 / entries as f64,
        elapsed.as_secs_f64() * 1000.0 / BATCHES as f64,
        (entries as usize * PAYLOAD) as f64 / elapsed.as_secs_f64() / 1e6,
    );
}

/// Bytes written per entry and commit time, for each durable store and the raw file.
#[derive(clap::Parser)]
struct Args {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {} = clap::Parser::parse();
    let dir = tempfile::tempdir()?;
    let mut raw = RawLog::create(&dir.path().join("raw.log"))?;
    measure("raw-file", |logs| raw.append(logs).expect("append"));
    let lmdb = store_lmdb::LmdbStore::open(dir.path().join("lmdb"))?;
    measure("lmdb", |logs| lmdb.store_logs(logs).expect("store_logs"));
    let redb = store_redb::RedbStore::open(dir.path().join("raft.redb"))?;
    measure("redb", |logs| redb.store_logs(logs).expect("store_logs"));
    let wal = store_wal::WalStore::open(dir.path().join("wal"))?;
    measure("wal", |logs| wal.store_logs(logs).expect("store_logs"));
    Ok(())
}
