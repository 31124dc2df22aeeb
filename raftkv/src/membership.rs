//! Whether this node is, or was, a member of its cluster. A node that has
//! seen itself in the configuration leaves a mark in its data directory
//! ([`MEMBER_FILE`]); a marked node whose configuration no longer holds it
//! was removed. It then serves no reads or writes (they answer 410), says
//! so in `/cluster/status` and its log, and refuses to start again on the
//! same data directory: a removed node is added back by starting it on an
//! empty directory with `--join`.
//!
//! The mark tells a removed node from one still joining: a new node catching
//! up reads configurations that do not name it yet (everything before the
//! entry that adds it), and must not take that for a removal. It is written
//! when a bootstrap or a join succeeds, and whenever the node sees itself in
//! its configuration; a node whose Raft shut itself down because a
//! committed configuration left it out counts as removed even unmarked.

use crate::fsm::KvFsm;
use raft_kit::Raft;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The file that says this node has been a member of its cluster.
pub const MEMBER_FILE: &str = "raftkv-member";

/// Whether the node whose data directory is `dir` has been a member.
pub fn was_member(dir: &Path) -> bool {
    dir.join(MEMBER_FILE).exists()
}

/// Writes the mark, synced with its directory.
pub fn mark_member(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(MEMBER_FILE);
    std::fs::write(&path, b"this node has been a member of its cluster\n")?;
    std::fs::File::open(&path)?.sync_all()?;
    std::fs::File::open(dir)?.sync_all()
}

/// Whether `raft`'s configuration shows it removed: it holds servers, and
/// not this one.
pub fn shows_removed(raft: &Raft<KvFsm>) -> bool {
    let (_, configuration) = raft.get_configuration();
    !configuration.servers.is_empty() && configuration.server(raft.id()).is_none()
}

/// Watches the configuration for as long as the node runs: marks the data
/// directory once the node sees itself a member, and sets `removed` (with
/// an error in the log) once a marked node no longer is one.
pub async fn watch(raft: Raft<KvFsm>, dir: PathBuf, removed: std::sync::Arc<AtomicBool>) {
    let mut status = raft.watch_status();
    let mut marked = was_member(&dir);
    let mut running = true;
    while running {
        let (_, configuration) = raft.get_configuration();
        let member = configuration.server(raft.id()).is_some();
        if member && !marked {
            match mark_member(&dir) {
                Ok(()) => marked = true,
                Err(error) => {
                    tracing::warn!(%error, dir = %dir.display(), "marking the node a member failed")
                }
            }
        }
        let marked = marked || was_member(&dir);
        let stopped = raft.state() == raft_kit::RaftState::Shutdown;
        if (marked || stopped) && shows_removed(&raft) && !removed.swap(true, Ordering::AcqRel) {
            tracing::error!(
                id = %raft.id(),
                "this node was removed from the cluster: it serves no reads or writes; to add it back, start it on an empty data directory with --join"
            );
        }
        // The status watch says when the role or leader changes; a removal
        // can come without either, so look again now and then too.
        // (A node removed with `shutdown_on_remove` stops: one last look.)
        tokio::select! {
            changed = status.changed() => running = changed.is_ok(),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}
