//! The entries the benchmarks write.

use bytes::Bytes;
use raft_core::Log;

/// A batch of `count` command entries of `payload` bytes each, starting at
/// index `first`; the payloads share one buffer.
pub fn batch(first: u64, count: usize, payload: usize) -> Vec<Log> {
    let data = Bytes::from(vec![0xA5u8; payload]);
    (0..count as u64).map(|i| Log::command(first + i, 1, data.clone())).collect()
}

/// Renumbers `batch` to start at `first`.
pub fn renumber(batch: &mut [Log], first: u64) {
    for (i, log) in batch.iter_mut().enumerate() {
        log.index = first + i as u64;
    }
}
