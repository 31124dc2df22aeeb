//! A writer killed with SIGKILL at random moments never loses an entry or a
//! stable value it was told was stored, and leaves a store that opens whole
//! and accepts writes.

use store_wal::{WalOptions, WalStore};

fn open(path: &std::path::Path) -> WalStore {
    // Small segments: kills land during rotations and preparations too.
    WalStore::open_with(path, WalOptions::default().segment_size(256 << 10)).expect("open after a crash")
}

raft_conformance::crash_suite!(open);

// Small segments here too, so that the store spans several segment files.
raft_conformance::damage_suite!(|path: &std::path::Path| {
    WalStore::open_with(path, WalOptions::default().segment_size(64 << 10))
});
