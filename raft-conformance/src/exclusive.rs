//! The exclusive-open contract of durable stores: while one store has a
//! path open, a second open of the same path, in this process or in
//! another, fails with a typed "locked" error and changes nothing; once the
//! first is closed (or its process dies), the path opens again.
//!
//! A store's test file declares two tests, as for the [`crash`](crate::crash)
//! test: the child, which does nothing unless [`CHILD_ENV`] is set, and the
//! check, which re-runs the test binary with the child's name:
//!
//! ```ignore
//! #[test]
//! fn lock_child() {
//!     raft_conformance::exclusive::child(|path| MyStore::open(path));
//! }
//!
//! #[test]
//! fn a_second_open_is_refused() {
//!     raft_conformance::exclusive::second_open_is_refused("lock_child", |path| MyStore::open(path), |e| {
//!         matches!(e, StoreError::Locked { .. })
//!     });
//! }
//! ```

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The environment variable naming the path a child opens and holds.
pub const CHILD_ENV: &str = "RAFT_KIT_LOCK_CHILD";

/// What the child prints once it holds the store (the test harness may put
/// its own words before it on the line).
const OPENED: &str = "raft-kit lock child: open";

/// The child: if [`CHILD_ENV`] is set, opens the store there, prints that it
/// did, and holds it until its standard input closes. Does nothing when
/// the variable is not set.
pub fn child<S, E: std::fmt::Debug>(open: impl Fn(&Path) -> Result<S, E>) {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let store = open(Path::new(&path)).expect("the child opens the store");
    println!("{OPENED}");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(store);
}

/// Checks the contract on a fresh path: a second open in this process and
/// one in a child process (the test `child_test` of this binary) are refused
/// with an error `is_locked` accepts, and the path opens again after each
/// holder lets go. `open` creates the store when the path holds none.
pub fn second_open_is_refused<S, E: std::fmt::Debug>(
    child_test: &str,
    open: impl Fn(&Path) -> Result<S, E>,
    is_locked: impl Fn(&E) -> bool,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let first = open(&path).expect("the first open");
    match open(&path) {
        Err(error) if is_locked(&error) => {}
        Err(error) => panic!("a second open in this process failed, but not as locked: {error:?}"),
        Ok(_) => panic!("a second open in this process succeeded while the first is open"),
    }
    drop(first);
    drop(open(&path).expect("the path opens again once the first store is closed"));

    let exe = std::env::current_exe().expect("the test binary");
    let mut holder = crate::crash::child_command(&exe, child_test, CHILD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = holder.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(OPENED) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("the child opened the store within 20 s");
    match open(&path) {
        Err(error) if is_locked(&error) => {}
        Err(error) => {
            panic!("an open while another process holds the store failed, not as locked: {error:?}")
        }
        Ok(_) => panic!("an open succeeded while another process holds the store"),
    }
    drop(holder.stdin.take());
    let status = holder.wait().expect("reap the child");
    assert!(status.success(), "the child failed: {status}");
    drop(open(&path).expect("the path opens again once the other process is gone"));
}
