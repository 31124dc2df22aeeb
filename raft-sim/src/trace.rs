//! The run's trace: every event that shapes it (faults, what each node
//! observes, client calls and answers), stamped with virtual time. Its hash
//! proves a replay takes the same path; its tail explains a failure; with
//! `RAFT_SIM_TRACE` set, every event is printed as it happens.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

/// How many of the last events a failure report shows.
pub const TAIL: usize = 60;

/// The trace of one run.
pub struct Trace {
    started: Instant,
    /// Print every event to standard error as well (`RAFT_SIM_TRACE` set).
    echo: bool,
    inner: Mutex<Inner>,
}

struct Inner {
    hash: u64,
    events: u64,
    tail: VecDeque<String>,
}

impl Trace {
    /// A trace whose times count from now (the virtual clock).
    pub fn new() -> Self {
        let inner = Inner { hash: FNV_OFFSET, events: 0, tail: VecDeque::with_capacity(TAIL) };
        let echo = std::env::var_os("RAFT_SIM_TRACE").is_some();
        Self { started: Instant::now(), echo, inner: Mutex::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event.
    pub fn record(&self, event: impl std::fmt::Display) {
        let line = format!("{:>10.3}ms {event}", self.started.elapsed().as_secs_f64() * 1000.0);
        if self.echo {
            eprintln!("{line}");
        }
        let mut inner = self.lock();
        inner.hash = fnv1a(inner.hash, line.as_bytes());
        inner.events += 1;
        if inner.tail.len() == TAIL {
            inner.tail.pop_front();
        }
        inner.tail.push_back(line);
    }

    /// The hash of every event so far, in order (FNV-1a, the same on every machine).
    pub fn hash(&self) -> u64 {
        self.lock().hash
    }

    /// How many events were recorded.
    pub fn events(&self) -> u64 {
        self.lock().events
    }

    /// The last events, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.lock().tail.iter().cloned().collect()
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^ 0xff
}
