//! A writer killed with SIGKILL at random moments never loses an entry or a
//! stable value it was told was stored, and leaves a store that opens whole
//! and accepts writes.

use store_redb::RedbStore;

fn open(path: &std::path::Path) -> RedbStore {
    RedbStore::open(path).expect("open after a crash")
}

raft_conformance::crash_suite!(open);

raft_conformance::damage_suite!(|path: &std::path::Path| RedbStore::open(path));
