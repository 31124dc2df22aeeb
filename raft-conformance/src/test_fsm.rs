//! [`TestFsm`], the state machine of the cluster scenarios, and the
//! [`Checker`] that every node's FSM reports to, which catches out-of-order
//! applies and two different commands at one index the moment they happen.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft_core::{Fsm, FsmError, FsmSnapshot, Log, SnapshotReader};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::ops::Bound::Excluded;
use std::sync::{Arc, Mutex, MutexGuard};

/// What every node of a cluster applied, checked as it happens.
#[derive(Default)]
pub struct Checker {
    inner: Mutex<CheckerState>,
}

#[derive(Default)]
struct CheckerState {
    /// The command first applied at each index by any node.
    committed: BTreeMap<u64, Bytes>,
    /// What each node applied since it last started.
    applied: HashMap<usize, BTreeMap<u64, Bytes>>,
    violation: Option<String>,
}

impl Checker {
    fn lock(&self) -> MutexGuard<'_, CheckerState> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `node` applied `command` at `index`.
    pub fn record(&self, node: usize, index: u64, command: Bytes) {
        let mut state = self.lock();
        let last = state.applied.get(&node).and_then(|m| m.keys().next_back().copied()).unwrap_or(0);
        if index <= last && state.violation.is_none() {
            state.violation = Some(format!("node {node} applied index {index} after index {last}"));
        }
        // Applying in order, a node must have applied every command committed
        // between its last apply and this one; one it skipped was lost (for
        // example overwritten by a non-command entry).
        if let Some((skipped, command)) = state.committed.range((Excluded(last), Excluded(index))).next()
            && state.violation.is_none()
        {
            state.violation = Some(format!(
                "node {node} applied index {index} but skipped committed {command:?} at {skipped}"
            ));
        }
        match state.committed.get(&index) {
            Some(existing) if existing != &command && state.violation.is_none() => {
                state.violation = Some(format!(
                    "node {node} applied {command:?} at index {index}, where another node applied {existing:?}"
                ));
            }
            Some(_) => {}
            None => {
                state.committed.insert(index, command.clone());
            }
        }
        state.applied.entry(node).or_default().insert(index, command);
    }

    /// Records a violation found outside [`record`](Self::record); the first one is kept.
    pub fn report(&self, violation: String) {
        let mut state = self.lock();
        if state.violation.is_none() {
            state.violation = Some(violation);
        }
    }

    /// Forgets what `node` applied (it restarts with an empty FSM).
    pub fn forget_node(&self, node: usize) {
        self.lock().applied.remove(&node);
    }

    /// How many nodes applied `index`, and the command there.
    pub fn applied_at(&self, index: u64) -> (usize, Option<Bytes>) {
        let state = self.lock();
        let mut count = 0;
        let mut command = None;
        for applied in state.applied.values() {
            if let Some(c) = applied.get(&index) {
                count += 1;
                command = Some(c.clone());
            }
        }
        (count, command)
    }

    /// The first violation seen, if any.
    pub fn violation(&self) -> Option<String> {
        self.lock().violation.clone()
    }

    /// The first committed command up to `index` that `node` has not
    /// applied, if any: a node that applied past a command must hold it.
    pub fn missing_on(&self, node: usize, index: u64) -> Option<(u64, Bytes)> {
        let state = self.lock();
        let applied = state.applied.get(&node);
        state
            .committed
            .range(..=index)
            .find(|(i, _)| applied.is_none_or(|a| !a.contains_key(*i)))
            .map(|(i, c)| (*i, c.clone()))
    }

    /// What `node` has applied, in index order.
    pub fn applied_by(&self, node: usize) -> Vec<(u64, Bytes)> {
        self.lock()
            .applied
            .get(&node)
            .map(|m| m.iter().map(|(i, c)| (*i, c.clone())).collect())
            .unwrap_or_default()
    }
}

/// A state machine that records every command it applies with the
/// [`Checker`], and answers each with the command's index.
pub struct TestFsm {
    node: usize,
    checker: Arc<Checker>,
    entries: BTreeMap<u64, Bytes>,
    as_task: bool,
}

impl TestFsm {
    /// The FSM of node `node`, reporting to `checker`. It runs on a thread
    /// of its own, as an FSM does by default.
    pub fn new(node: usize, checker: Arc<Checker>) -> Self {
        Self { node, checker, entries: BTreeMap::new(), as_task: false }
    }

    /// With `true`, the FSM answers [`Fsm::never_blocks`] with `true`, so
    /// the core runs it as a task on the async runtime instead.
    #[must_use]
    pub fn as_task(mut self, as_task: bool) -> Self {
        self.as_task = as_task;
        self
    }
}

impl Fsm for TestFsm {
    type Response = u64;

    fn apply(&mut self, log: &Log) -> u64 {
        self.checker.record(self.node, log.index, log.data.clone());
        self.entries.insert(log.index, log.data.clone());
        log.index
    }

    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
        Ok(Box::new(TestSnapshot { entries: self.entries.clone() }))
    }

    fn restore(&mut self, mut snapshot: SnapshotReader) -> Result<(), FsmError> {
        let mut bytes = Vec::new();
        snapshot.read_to_end(&mut bytes)?;
        let mut input = Bytes::from(bytes);
        let mut entries = BTreeMap::new();
        while input.has_remaining() {
            if input.remaining() < 12 {
                return Err(FsmError::new("truncated test snapshot"));
            }
            let index = input.get_u64_le();
            let len = input.get_u32_le() as usize;
            if input.remaining() < len {
                return Err(FsmError::new("truncated test snapshot"));
            }
            entries.insert(index, input.split_to(len));
        }
        let applied = self.entries.keys().next_back().copied().unwrap_or(0);
        let covered = entries.keys().next_back().copied().unwrap_or(0);
        if covered < applied {
            self.checker.report(format!(
                "node {} restored a snapshot covering index {covered} after applying index {applied}",
                self.node
            ));
        }
        self.checker.forget_node(self.node);
        for (index, command) in &entries {
            self.checker.record(self.node, *index, command.clone());
        }
        self.entries = entries;
        Ok(())
    }

    fn never_blocks(&self) -> bool {
        self.as_task
    }
}

struct TestSnapshot {
    entries: BTreeMap<u64, Bytes>,
}

impl FsmSnapshot for TestSnapshot {
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError> {
        let mut buf = BytesMut::new();
        for (index, command) in &self.entries {
            buf.put_u64_le(*index);
            buf.put_u32_le(command.len() as u32);
            buf.put_slice(command);
        }
        sink.write_all(&buf)?;
        Ok(())
    }
}
