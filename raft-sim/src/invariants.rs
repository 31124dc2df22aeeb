//! The Raft invariants, checked as the run goes: at most one leader per
//! term, state-machine safety (every FSM applies the same command at an
//! index), each entry applied once and in order per FSM incarnation, no
//! restore that goes back, terms and commit indexes that never go back; and,
//! from the nodes' logs, log matching and leader completeness.

use bytes::Bytes;
use raft_core::{Log, LogStore};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// What every node reported, and the first violation seen.
#[derive(Default)]
pub struct Recorder {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The term and command first applied at each index, by any node.
    committed: BTreeMap<u64, (u64, Bytes)>,
    /// The last index each FSM incarnation applied or restored.
    applied: BTreeMap<(usize, u64), u64>,
    /// The leader of each term.
    leaders: BTreeMap<u64, usize>,
    /// The highest term each node has reported, across incarnations.
    terms: BTreeMap<usize, u64>,
    /// The highest commit index each node incarnation has reported.
    commits: BTreeMap<(usize, u64), u64>,
    violation: Option<String>,
}

impl State {
    fn violate(&mut self, violation: String) {
        if self.violation.is_none() {
            self.violation = Some(violation);
        }
    }
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first violation seen, if any.
    pub fn violation(&self) -> Option<String> {
        self.lock().violation.clone()
    }

    /// Records a violation found elsewhere (the linearizability checker, a
    /// liveness deadline); the first one is kept.
    pub fn report(&self, violation: String) {
        self.lock().violate(violation);
    }

    /// `node`'s FSM (in `incarnation`) applied `log`.
    pub fn applied(&self, node: usize, incarnation: u64, log: &Log) {
        let mut state = self.lock();
        let last = state.applied.get(&(node, incarnation)).copied().unwrap_or(0);
        if log.index <= last {
            state.violate(format!(
                "node {node} applied index {} after {last}: an entry applied twice or out of order",
                log.index
            ));
        }
        state.applied.insert((node, incarnation), log.index);
        match state.committed.get(&log.index) {
            Some((term, data)) if (*term, data) != (log.term, &log.data) => {
                let message = format!(
                    "state machine safety: node {node} applied (term {}, {:?}) at index {}, another node (term {term}, {data:?})",
                    log.term, log.data, log.index
                );
                state.violate(message);
            }
            Some(_) => {}
            None => {
                state.committed.insert(log.index, (log.term, log.data.clone()));
            }
        }
    }

    /// `node`'s FSM (in `incarnation`) restored a snapshot covering up to `covered`.
    pub fn restored(&self, node: usize, incarnation: u64, covered: u64) {
        let mut state = self.lock();
        let last = state.applied.get(&(node, incarnation)).copied().unwrap_or(0);
        if covered < last {
            state
                .violate(format!("node {node} restored a snapshot covering {covered} after applying {last}"));
        }
        state.applied.insert((node, incarnation), covered);
    }

    /// `node` says it leads `term`.
    pub fn leader(&self, term: u64, node: usize) {
        let mut state = self.lock();
        match state.leaders.get(&term) {
            Some(&other) if other != node => {
                state.violate(format!("term {term} has two leaders: nodes {other} and {node}"))
            }
            Some(_) => {}
            None => {
                state.leaders.insert(term, node);
            }
        }
    }

    /// A sample of `node`'s term and commit index in `incarnation`.
    pub fn sample(&self, node: usize, incarnation: u64, term: u64, commit: u64) {
        let mut state = self.lock();
        let known_term = state.terms.get(&node).copied().unwrap_or(0);
        if term < known_term {
            state.violate(format!("node {node}'s term went back from {known_term} to {term}"));
        }
        state.terms.insert(node, term.max(known_term));
        let known_commit = state.commits.get(&(node, incarnation)).copied().unwrap_or(0);
        if commit < known_commit {
            state.violate(format!("node {node}'s commit index went back from {known_commit} to {commit}"));
        }
        state.commits.insert((node, incarnation), commit.max(known_commit));
    }

    /// Leader completeness: `node`, leader of `term`, must hold every entry
    /// committed in an earlier term at or after its snapshot point.
    pub fn check_leader_log(&self, node: usize, term: u64, log: &dyn LogStore, snapshot_index: u64) {
        let committed: Vec<(u64, u64)> = self
            .lock()
            .committed
            .iter()
            .filter(|(index, (t, _))| **index > snapshot_index && *t < term)
            .map(|(index, (t, _))| (*index, *t))
            .collect();
        for (index, committed_term) in committed {
            match log.get_log(index) {
                Ok(Some(entry)) if entry.term == committed_term => {}
                Ok(Some(entry)) => {
                    return self.report(format!(
                        "leader completeness: node {node}, leader of term {term}, has term {} at index {index}, committed in term {committed_term}",
                        entry.term
                    ));
                }
                // Compacted behind a snapshot taken since the caller looked.
                Ok(None) if log.first_index().unwrap_or(0) > index => {}
                Ok(None) => {
                    return self.report(format!(
                        "leader completeness: node {node}, leader of term {term}, lacks index {index}, committed in term {committed_term}"
                    ));
                }
                Err(_) => {}
            }
        }
    }

    /// How many distinct indexes some FSM applied.
    pub fn committed_count(&self) -> usize {
        self.lock().committed.len()
    }
}

/// Log matching over the nodes' logs: two logs that hold an entry of the
/// same index and term hold the same entries up to it.
pub fn check_log_matching(logs: &[(usize, Vec<Log>)]) -> Result<(), String> {
    for (a, log_a) in logs {
        for (b, log_b) in logs.iter().filter(|(b, _)| b > a) {
            let by_index: BTreeMap<u64, &Log> = log_b.iter().map(|l| (l.index, l)).collect();
            // The highest index where both hold the same term...
            let Some(top) = log_a
                .iter()
                .rev()
                .find(|l| by_index.get(&l.index).is_some_and(|other| other.term == l.term))
                .map(|l| l.index)
            else {
                continue;
            };
            // ...below which every entry both hold is identical.
            for entry in log_a.iter().filter(|l| l.index <= top) {
                if let Some(other) = by_index.get(&entry.index)
                    && (other.term, &other.data, other.kind) != (entry.term, &entry.data, entry.kind)
                {
                    return Err(format!(
                        "log matching: nodes {a} and {b} agree at index {top} but differ at index {} (terms {} and {})",
                        entry.index, entry.term, other.term
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: &[(u64, u64)]) -> Vec<Log> {
        entries.iter().map(|&(index, term)| Log::command(index, term, format!("{index}/{term}"))).collect()
    }

    #[test]
    fn logs_that_agree_at_an_index_agree_before_it() {
        let good = [(0, log(&[(1, 1), (2, 1), (3, 2)])), (1, log(&[(1, 1), (2, 1), (3, 3), (4, 3)]))];
        assert!(check_log_matching(&good).is_ok());
        let mut bad = good.clone();
        bad[1].1[0].data = Bytes::from("something else");
        assert!(check_log_matching(&bad).is_err());
    }

    #[test]
    fn the_recorder_catches_two_leaders_and_a_different_command() {
        let recorder = Recorder::default();
        recorder.leader(3, 0);
        recorder.leader(3, 0);
        assert!(recorder.violation().is_none());
        recorder.leader(3, 1);
        assert!(recorder.violation().expect("two leaders").contains("two leaders"));

        let recorder = Recorder::default();
        recorder.applied(0, 1, &Log::command(5, 2, "a"));
        recorder.applied(1, 1, &Log::command(5, 2, "b"));
        assert!(recorder.violation().expect("safety").contains("state machine safety"));

        let recorder = Recorder::default();
        recorder.applied(0, 1, &Log::command(5, 2, "a"));
        recorder.applied(0, 1, &Log::command(5, 2, "a"));
        assert!(recorder.violation().expect("twice").contains("applied twice"));
    }
}
