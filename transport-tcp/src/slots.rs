//! Who holds the server's inbound connection slots, and who gives one up
//! when a new connection needs it.
//!
//! A connection that has not finished its handshake is unknown: such
//! connections get a small budget of their own (`max_pending_handshakes`),
//! and a new one evicts the oldest, so sockets that connect and say nothing
//! can never keep a real peer out. Once a connection has named its node in
//! the handshake, it counts against `max_connections_per_peer` for that node
//! and `max_inbound_connections` in all; a new one beyond either closes the
//! least recently active connection (of that peer, or of any peer), so a
//! known peer can always get in and idle connections go first.

use raft_core::ServerId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// When a connection last received a frame, as microseconds since the
/// registry's epoch; shared with the connection's task.
#[derive(Debug)]
pub(crate) struct Activity {
    epoch: Instant,
    last: AtomicU64,
}

impl Activity {
    pub(crate) fn touch(&self) {
        self.last.store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}

struct Entry {
    /// The node it named in its handshake; `None` while handshaking.
    peer: Option<ServerId>,
    activity: Arc<Activity>,
    abort: Option<AbortHandle>,
}

/// The limits the registry enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) pending_max: usize,
    pub(crate) per_peer_max: usize,
    pub(crate) total_max: usize,
}

/// The server's inbound connections. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Registry {
    inner: Arc<Mutex<Inner>>,
    limits: Limits,
    epoch: Instant,
}

struct Inner {
    next_id: u64,
    entries: HashMap<u64, Entry>,
}

/// A connection's place in the registry; leaving it (however the
/// connection's task ends, aborted or not) frees the slot.
pub(crate) struct Slot {
    registry: Registry,
    pub(crate) id: u64,
    pub(crate) activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.lock().entries.remove(&self.id);
    }
}

impl Registry {
    pub(crate) fn new(limits: Limits) -> Self {
        let inner = Inner { next_id: 0, entries: HashMap::new() };
        Self { inner: Arc::new(Mutex::new(inner)), limits, epoch: Instant::now() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes room for one more handshaking connection (closing the oldest
    /// one if the budget is full) and registers it. `spawn` starts its task
    /// with its slot and returns the task's abort handle.
    pub(crate) fn admit(&self, spawn: impl FnOnce(Slot) -> AbortHandle) {
        let activity = Arc::new(Activity { epoch: self.epoch, last: AtomicU64::new(0) });
        activity.touch();
        let mut evicted = Vec::new();
        let id = {
            let mut inner = self.lock();
            let pending: Vec<(u64, u64)> = inner
                .entries
                .iter()
                .filter(|(_, entry)| entry.peer.is_none())
                .map(|(id, entry)| (*id, entry.activity.last()))
                .collect();
            for id in victims(pending, self.limits.pending_max.max(1) - 1) {
                tracing::warn!(
                    connection = id,
                    "too many connections in their handshake; closing the oldest"
                );
                evicted.extend(inner.remove(id));
            }
            inner.next_id += 1;
            let id = inner.next_id;
            // The entry exists before the task could leave it.
            inner.entries.insert(id, Entry { peer: None, activity: activity.clone(), abort: None });
            id
        };
        evicted.into_iter().for_each(|abort| abort.abort());
        // Not under the lock: a task may end inside `spawn` (dropped at
        // once by a runtime that is shutting down), and its slot's drop
        // takes the lock.
        let abort = spawn(Slot { registry: self.clone(), id, activity });
        match self.lock().entries.get_mut(&id) {
            Some(entry) => entry.abort = Some(abort),
            // It ended already, or was closed to make room for another
            // before it had an abort handle: make sure it stops.
            None => abort.abort(),
        }
    }

    /// Records that connection `id` named node `peer` in its handshake, and
    /// closes the least recently active connections beyond the per-peer and
    /// total limits (never `id` itself).
    pub(crate) fn identified(&self, id: u64, peer: &ServerId) {
        let evicted = self.make_room(id, peer);
        evicted.into_iter().for_each(|abort| abort.abort());
    }

    fn make_room(&self, id: u64, peer: &ServerId) -> Vec<AbortHandle> {
        let mut evicted = Vec::new();
        let mut inner = self.lock();
        let Some(entry) = inner.entries.get_mut(&id) else { return evicted };
        entry.peer = Some(peer.clone());
        let known = |inner: &Inner, same_peer: bool| -> Vec<(u64, u64)> {
            inner
                .entries
                .iter()
                .filter(|(other, entry)| {
                    **other != id && entry.peer.as_ref().is_some_and(|p| !same_peer || p == peer)
                })
                .map(|(other, entry)| (*other, entry.activity.last()))
                .collect()
        };
        for other in victims(known(&inner, true), self.limits.per_peer_max.max(1) - 1) {
            tracing::info!(%peer, connection = other, "too many connections from one peer; closing its least used");
            evicted.extend(inner.remove(other));
        }
        for other in victims(known(&inner, false), self.limits.total_max.max(1) - 1) {
            tracing::info!(connection = other, "inbound connections full; closing the least used");
            evicted.extend(inner.remove(other));
        }
        evicted
    }
}

impl Inner {
    /// Forgets a connection; its task is to be aborted (after the lock is released).
    fn remove(&mut self, id: u64) -> Option<AbortHandle> {
        self.entries.remove(&id).and_then(|entry| entry.abort)
    }
}

/// Which of `entries` (id, last activity) to close so that at most `keep`
/// remain: the least recently active first (the oldest id on a tie).
pub(crate) fn victims(mut entries: Vec<(u64, u64)>, keep: usize) -> Vec<u64> {
    if entries.len() <= keep {
        return Vec::new();
    }
    entries.sort_by_key(|&(id, last)| (last, id));
    let excess = entries.len() - keep;
    entries.into_iter().take(excess).map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, last activity) of each connection, how many to keep, who goes.
    type Case = (&'static [(u64, u64)], usize, &'static [u64]);

    /// A task that ends before `admit` returns (here: spawned on a runtime
    /// that has shut down, which drops it at once, as happens to an accept
    /// that races the end of a runtime) frees its slot without
    /// deadlocking on the registry's lock.
    #[test]
    fn a_task_that_ends_inside_admit_frees_its_slot() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let handle = runtime.handle().clone();
        drop(runtime);
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let registry = Registry::new(Limits { pending_max: 2, per_peer_max: 2, total_max: 4 });
            registry.admit(|slot| handle.spawn(async move { drop(slot) }).abort_handle());
            let _ = done_tx.send(registry.lock().entries.len());
        });
        let left = done.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(left, Ok(0), "admit deadlocked, or the slot stayed taken");
    }

    #[test]
    fn the_least_recently_active_go_first() {
        let table: &[Case] = &[
            (&[], 3, &[]),
            (&[(1, 10), (2, 20)], 2, &[]),
            (&[(1, 10), (2, 20), (3, 5)], 2, &[3]),
            (&[(1, 10), (2, 20), (3, 5)], 0, &[3, 1, 2]),
            (&[(4, 7), (2, 7), (9, 1)], 1, &[9, 2]),
        ];
        for (entries, keep, expected) in table {
            assert_eq!(victims(entries.to_vec(), *keep), expected.to_vec(), "{entries:?} keeping {keep}");
        }
    }
}
