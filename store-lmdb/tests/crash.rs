//! A writer killed with SIGKILL at random moments never loses an entry or a
//! stable value it was told was stored, and leaves a store that opens whole
//! and accepts writes.

use store_lmdb::LmdbStore;

fn open(path: &std::path::Path) -> LmdbStore {
    LmdbStore::open(path).expect("open after a crash")
}

/// The child process of the crash tests; does nothing in a normal run.
#[test]
fn crash_child() {
    raft_conformance::crash::child(open);
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    raft_conformance::crash::kill_rounds("crash_child", 20, open);
}

#[test]
#[ignore = "long: 500 kills; run with --ignored"]
fn sigkill_500_times_loses_nothing_acknowledged() {
    raft_conformance::crash::kill_rounds("crash_child", 500, open);
}
