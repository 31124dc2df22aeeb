//! A linearizability checker for the key-value history the simulated
//! clients record: the search of Wing & Gong (1993), with the memoization
//! of Lowe (2017) that porcupine uses, run key by key (operations on
//! different keys commute, so each key's history is checked alone).
//!
//! An operation whose outcome the client does not know (it timed out, or
//! the node lost leadership or crashed) may have taken effect at any point
//! after it was called, or never: the search may place it anywhere after its
//! call, or leave it out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// What an operation does to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Sets the value.
    Put(String),
    /// Adds a token at the end of the value.
    Append(String),
    /// Removes the key.
    Delete,
    /// Reads the value.
    Get,
    /// Replaces the value with a backup's (a user restore).
    Restore(Option<String>),
}

/// One operation of one client on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The client that called it.
    pub client: usize,
    /// The key.
    pub key: String,
    /// What it does.
    pub op: Op,
    /// When it was called, in the history's order of events.
    pub call: u64,
    /// When it returned; `None` when its outcome is unknown.
    pub ret: Option<u64>,
    /// What a `Get` read (`None`: the key was absent).
    pub output: Option<String>,
}

/// The history the clients write into as the run goes. Calls and returns
/// are ordered by one counter, so their order is exactly the order in which
/// they happened on the simulation's one thread.
#[derive(Default)]
pub struct History {
    /// Indexed by operation id; `None` for a forgotten one.
    ops: Mutex<Vec<Option<Operation>>>,
    clock: AtomicU64,
}

impl History {
    fn lock(&self) -> MutexGuard<'_, Vec<Option<Operation>>> {
        self.ops.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a call; returns its id.
    pub fn call(&self, client: usize, key: &str, op: Op) -> usize {
        let call = self.tick();
        let mut ops = self.lock();
        ops.push(Some(Operation { client, key: key.to_owned(), op, call, ret: None, output: None }));
        ops.len() - 1
    }

    /// Records that operation `id` returned, reading `output` if a `Get`.
    pub fn returned(&self, id: usize, output: Option<String>) {
        let ret = self.tick();
        if let Some(Some(op)) = self.lock().get_mut(id) {
            op.ret = Some(ret);
            op.output = output;
        }
    }

    /// Forgets operation `id`: a read that got no value, or a write that
    /// certainly did not happen, says nothing about the state.
    pub fn forget(&self, id: usize) {
        if let Some(op) = self.lock().get_mut(id) {
            *op = None;
        }
    }

    /// Every operation recorded and not forgotten.
    pub fn operations(&self) -> Vec<Operation> {
        self.lock().iter().flatten().cloned().collect()
    }
}

/// Why a history is not linearizable, or could not be decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No order of the key's operations explains what the clients saw.
    NotLinearizable {
        /// The key.
        key: String,
        /// Its operations, in call order.
        operations: Vec<Operation>,
    },
    /// The search gave up (more states than its bound) for this key.
    Undecided {
        /// The key.
        key: String,
    },
}

/// The most (linearized set, state) pairs the search remembers for one key,
/// unless told otherwise ([`check_with`]).
pub const STATES_MAX: usize = 2_000_000;

/// Checks every key's history with the default bound ([`STATES_MAX`]).
pub fn check(operations: &[Operation]) -> Result<(), Verdict> {
    check_with(operations, STATES_MAX)
}

/// Checks every key's history, remembering at most `states_max` states per
/// key. The first key that is not linearizable is returned; a key the
/// search gives up on does not stop the others from being checked, and is
/// returned only when no other key fails.
pub fn check_with(operations: &[Operation], states_max: usize) -> Result<(), Verdict> {
    let mut by_key: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(op.key.as_str()).or_default().push(op.clone());
    }
    let mut undecided = None;
    for (key, mut ops) in by_key {
        ops.sort_by_key(|op| op.call);
        leave_out_unseen_unknown_writes(&mut ops);
        match check_key(&ops, states_max) {
            Some(true) => {}
            Some(false) => return Err(Verdict::NotLinearizable { key: key.to_owned(), operations: ops }),
            None => undecided = undecided.or_else(|| Some(Verdict::Undecided { key: key.to_owned() })),
        }
    }
    undecided.map_or(Ok(()), Err)
}

/// Drops the writes of unknown outcome that no read saw (an append whose
/// token, a put whose value, appears in no read). The search could leave
/// each of them out anyway, and a history that needs one is explained as
/// well without it: until a later put or delete overwrites it, every value
/// it leads to holds its text, and no read holds that text. Each unknown
/// write left in doubles the orders to try, so this is what keeps long runs
/// with many timeouts decidable.
fn leave_out_unseen_unknown_writes(ops: &mut Vec<Operation>) {
    let reads: Vec<&str> =
        ops.iter().filter(|op| op.op == Op::Get).filter_map(|op| op.output.as_deref()).collect();
    let seen = |text: &str| reads.iter().any(|read| read.contains(text));
    let keep: Vec<bool> = ops
        .iter()
        .map(|op| {
            op.ret.is_some()
                || match &op.op {
                    Op::Append(text) | Op::Put(text) => seen(text),
                    _ => true,
                }
        })
        .collect();
    let mut keep = keep.into_iter();
    ops.retain(|_| keep.next().unwrap_or(true));
}

/// The register's values, each held once and named by a number: a step
/// of the search moves between numbers, never copies a value, and the
/// memo remembers a number instead of a string.
struct Values {
    /// The text of each value (`None`: the key is absent); value 0 is absent.
    text: Vec<Option<String>>,
    /// Each value by its text.
    by_text: HashMap<Option<String>, u32, Fx>,
    /// The value an append of a token makes of a value, once computed.
    appended: HashMap<(u32, usize), u32, Fx>,
}

impl Values {
    fn new() -> Self {
        let mut values = Self { text: Vec::new(), by_text: HashMap::default(), appended: HashMap::default() };
        values.intern(None);
        values
    }

    fn intern(&mut self, text: Option<String>) -> u32 {
        if let Some(&id) = self.by_text.get(&text) {
            return id;
        }
        let id = u32::try_from(self.text.len()).expect("fewer than 2^32 values");
        self.text.push(text.clone());
        self.by_text.insert(text, id);
        id
    }

    /// The value after operation `at` (`op`), or `None` when `op` could not
    /// have seen `state`.
    fn step(&mut self, state: u32, at: usize, op: &Operation) -> Option<u32> {
        match &op.op {
            Op::Put(value) => Some(self.intern(Some(value.clone()))),
            Op::Append(token) => {
                if let Some(&id) = self.appended.get(&(state, at)) {
                    return Some(id);
                }
                let text = format!("{}{token}", self.text[state as usize].as_deref().unwrap_or(""));
                let id = self.intern(Some(text));
                self.appended.insert((state, at), id);
                Some(id)
            }
            Op::Delete => Some(0),
            Op::Restore(value) => Some(self.intern(value.clone())),
            Op::Get => (op.output == self.text[state as usize]).then_some(state),
        }
    }
}

/// SplitMix64: a well-mixed word for each number.
fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fast hasher for the search's own keys (numbers and bit sets; no
/// attacker chooses them): FxHash's rotate-multiply.
#[derive(Default, Clone, Copy)]
struct Fx;

impl std::hash::BuildHasher for Fx {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }
    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// One event of the search's list: an operation's call or its return.
struct Entry {
    op: usize,
    call: bool,
    /// For a call, the entry of its return (none for an unknown outcome).
    partner: Option<usize>,
}

/// Wing & Gong's search over one key: `Some(true)` when some order of the
/// operations (each placed between its call and return, unknown ones
/// anywhere after their call or nowhere) explains every read.
fn check_key(ops: &[Operation], states_max: usize) -> Option<bool> {
    let mut events: Vec<(u64, usize, bool)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, i, true));
        if let Some(ret) = op.ret {
            events.push((ret, i, false));
        }
    }
    events.sort_unstable_by_key(|&(time, _, _)| time);
    let mut entries: Vec<Entry> =
        events.iter().map(|&(_, op, call)| Entry { op, call, partner: None }).collect();
    let mut return_of = vec![None; ops.len()];
    for (at, entry) in entries.iter().enumerate() {
        if !entry.call {
            return_of[entry.op] = Some(at);
        }
    }
    for entry in &mut entries {
        if entry.call {
            entry.partner = return_of[entry.op];
        }
    }
    // A doubly linked list over the entries, with a head sentinel at `n`.
    let n = entries.len();
    let mut next: Vec<Option<usize>> =
        (0..=n).map(|i| if i == n { (n > 0).then_some(0) } else { (i + 1 < n).then_some(i + 1) }).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { n } else { i - 1 }).collect();
    let unlink = |next: &mut Vec<Option<usize>>, prev: &mut Vec<usize>, e: usize| {
        next[prev[e]] = next[e];
        if let Some(after) = next[e] {
            prev[after] = prev[e];
        }
    };
    let relink = |next: &mut Vec<Option<usize>>, prev: &mut Vec<usize>, e: usize| {
        next[prev[e]] = Some(e);
        if let Some(after) = next[e] {
            prev[after] = e;
        }
    };
    let mut known_left = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut values = Values::new();
    let mut state: u32 = 0;
    // The set of operations linearized so far, as a Zobrist hash: each
    // operation's random word XORed in and out. The memo holds 64-bit
    // hashes of (set, value); a collision could only prune a path, so it
    // could report a violation that is not one (to be replayed and read),
    // never hide one.
    let zobrist: Vec<u64> = (0..ops.len() as u64).map(splitmix).collect();
    let mut linearized = 0u64;
    let mut seen: HashSet<u64, Fx> = HashSet::default();
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut cursor = next[n];
    loop {
        if known_left == 0 {
            return Some(true);
        }
        // Only unknown calls are left ahead: they may be left out.
        let Some(e) = cursor else { return Some(true) };
        if entries[e].call {
            let op = entries[e].op;
            if let Some(after) = values.step(state, op, &ops[op]) {
                linearized ^= zobrist[op];
                if seen.insert(linearized ^ splitmix(u64::from(after) ^ 0x9e37_79b9_7f4a_7c15)) {
                    if seen.len() > states_max {
                        return None;
                    }
                    stack.push((e, std::mem::replace(&mut state, after)));
                    unlink(&mut next, &mut prev, e);
                    if let Some(r) = entries[e].partner {
                        unlink(&mut next, &mut prev, r);
                        known_left -= 1;
                    }
                    cursor = next[n];
                    continue;
                }
                linearized ^= zobrist[op];
            }
            cursor = next[e];
        } else {
            // An operation returned before any order placed it: undo the last choice.
            let Some((top, before)) = stack.pop() else { return Some(false) };
            state = before;
            let op = entries[top].op;
            linearized ^= zobrist[op];
            if let Some(r) = entries[top].partner {
                relink(&mut next, &mut prev, r);
                known_left += 1;
            }
            relink(&mut next, &mut prev, top);
            cursor = next[top];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (client, op, call, return, output): one row of a test history.
    type Row<'a> = (usize, Op, u64, Option<u64>, Option<&'a str>);

    /// Builds a history from rows on key "k".
    fn history(rows: &[Row<'_>]) -> Vec<Operation> {
        rows.iter()
            .map(|(client, op, call, ret, output)| Operation {
                client: *client,
                key: "k".into(),
                op: op.clone(),
                call: *call,
                ret: *ret,
                output: output.map(str::to_owned),
            })
            .collect()
    }

    fn put(v: &str) -> Op {
        Op::Put(v.into())
    }

    fn append(t: &str) -> Op {
        Op::Append(t.into())
    }

    #[test]
    fn sequential_and_concurrent_histories_that_are_linearizable_pass() {
        let cases = [
            history(&[(0, put("a"), 0, Some(1), None), (0, Op::Get, 2, Some(3), Some("a"))]),
            // Concurrent put and get: the get may see either value.
            history(&[(0, put("a"), 0, Some(3), None), (1, Op::Get, 1, Some(2), None)]),
            history(&[(0, put("a"), 0, Some(3), None), (1, Op::Get, 1, Some(2), Some("a"))]),
            // An unknown write may have happened...
            history(&[(0, append("x;"), 0, None, None), (1, Op::Get, 5, Some(6), Some("x;"))]),
            // ...or not.
            history(&[(0, append("x;"), 0, None, None), (1, Op::Get, 5, Some(6), None)]),
            history(&[
                (0, append("x;"), 0, Some(1), None),
                (1, append("y;"), 2, Some(3), None),
                (0, Op::Get, 4, Some(5), Some("x;y;")),
            ]),
        ];
        for (i, ops) in cases.iter().enumerate() {
            assert_eq!(check(ops), Ok(()), "case {i}");
        }
    }

    #[test]
    fn stale_reads_lost_and_duplicated_writes_fail() {
        let cases = [
            // A read after a completed write misses it (a stale read).
            history(&[
                (0, put("a"), 0, Some(1), None),
                (1, put("b"), 2, Some(3), None),
                (0, Op::Get, 4, Some(5), Some("a")),
            ]),
            // A completed append is lost.
            history(&[(0, append("x;"), 0, Some(1), None), (1, Op::Get, 2, Some(3), None)]),
            // An append applied twice.
            history(&[(0, append("x;"), 0, Some(1), None), (1, Op::Get, 2, Some(3), Some("x;x;"))]),
            // A read sees a write, the next read no longer does.
            history(&[
                (0, append("x;"), 0, None, None),
                (1, Op::Get, 1, Some(2), Some("x;")),
                (1, Op::Get, 3, Some(4), None),
            ]),
        ];
        for (i, ops) in cases.iter().enumerate() {
            assert!(matches!(check(ops), Err(Verdict::NotLinearizable { .. })), "case {i}");
        }
    }

    #[test]
    fn unknown_writes_no_read_saw_are_left_out_without_hiding_a_violation() {
        // Sixty appends that timed out, none seen, then a lost completed one.
        let mut rows: Vec<Row<'_>> =
            (0..60).map(|i| (i, append(&format!("t{i};")), i as u64, None, None)).collect();
        rows.push((0, append("x;"), 100, Some(101), None));
        rows.push((1, Op::Get, 102, Some(103), Some("t7;")));
        let ops = history(&rows);
        assert!(matches!(check(&ops), Err(Verdict::NotLinearizable { .. })), "{:?}", check(&ops).err());
        // The same with the read seeing the completed append after t7: fine.
        let last = rows.len() - 1;
        rows[last].4 = Some("t7;x;");
        assert_eq!(check(&history(&rows)), Ok(()));
    }

    #[test]
    fn keys_are_checked_apart() {
        let mut ops = history(&[(0, put("a"), 0, Some(1), None)]);
        ops.push(Operation {
            client: 1,
            key: "other".into(),
            op: Op::Get,
            call: 2,
            ret: Some(3),
            output: None,
        });
        ops.push(Operation {
            client: 1,
            key: "k".into(),
            op: Op::Get,
            call: 4,
            ret: Some(5),
            output: Some("a".into()),
        });
        assert_eq!(check(&ops), Ok(()));
    }

    #[test]
    fn a_key_the_search_gives_up_on_does_not_hide_a_violation_in_another() {
        // Key "k": concurrent appends, each seen, so the search must try
        // orders — more than a bound of 1 state allows.
        let mut ops = history(&[
            (0, append("x;"), 0, Some(10), None),
            (1, append("y;"), 0, Some(10), None),
            (2, Op::Get, 11, Some(12), Some("y;x;")),
        ]);
        assert!(matches!(check_with(&ops, 1), Err(Verdict::Undecided { .. })), "{:?}", check_with(&ops, 1));
        assert_eq!(check(&ops), Ok(()), "decided with the default bound");
        // Key "z", checked after "k": a lost write.
        for (call, op, output) in [(20, put("a"), None), (22, Op::Get, Some("b"))] {
            ops.push(Operation {
                client: 3,
                key: "z".into(),
                op,
                call,
                ret: Some(call + 1),
                output: output.map(str::to_owned),
            });
        }
        assert!(
            matches!(check_with(&ops, 1), Err(Verdict::NotLinearizable { ref key, .. }) if key == "z"),
            "{:?}",
            check_with(&ops, 1)
        );
    }
}
