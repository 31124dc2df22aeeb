//! A crash test for durable stores: a child process writes, the parent kills
//! it with SIGKILL at random moments, and after each kill reopens the store
//! and checks that everything acknowledged survived and the store is whole.
//!
//! A store's test file declares the tests with
//! [`crash_suite!`](crate::crash_suite): a child, which does nothing unless
//! [`CHILD_ENV`] is set, and the parents, which re-run the test binary with
//! the child's name and that variable:
//!
//! ```ignore
//! raft_conformance::crash_suite!(|path: &std::path::Path| MyStore::open(path).unwrap());
//! ```

use bytes::Bytes;
use raft_core::{Log, LogKind, LogStore, StableStore};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the store path a child writes to.
pub const CHILD_ENV: &str = "RAFT_KIT_CRASH_CHILD";
/// The stable key the child counts in.
const COUNTER_KEY: &[u8] = b"crash-counter";

/// The payload of the entry at `index`: its length and bytes both follow
/// from the index, so a reader can check any entry byte for byte.
pub fn payload(index: u64) -> Bytes {
    let len = (index.wrapping_mul(7919) % 200) as usize + 1;
    Bytes::from(format!("{index}:").bytes().cycle().take(len).collect::<Vec<u8>>())
}

fn entry(index: u64) -> Log {
    Log {
        index,
        term: 1 + index / 1000,
        kind: LogKind::Command,
        data: payload(index),
        extensions: Bytes::new(),
    }
}

/// The child: if [`CHILD_ENV`] is set, opens the store there and appends
/// batches forever, printing `acked <last index>` after each `store_logs`
/// returns and `stable <n>` after each counter write; now and then compacts
/// the front of the log, and keeps it under about 3,000 entries. Does nothing when the variable is not set.
pub fn child<S: LogStore + StableStore>(open: impl Fn(&Path) -> S) {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let store = open(Path::new(&path));
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut stdout = std::io::stdout().lock();
    let mut counter = store.get_u64(COUNTER_KEY).expect("stable read").unwrap_or(0);
    loop {
        let last = store.last_index().expect("last_index");
        let count = rng.random_range(1..=32);
        let batch: Vec<Log> = (last + 1..=last + count).map(entry).collect();
        store.store_logs(&batch).expect("store_logs");
        writeln!(stdout, "acked {}", last + count).expect("stdout");
        if rng.random_ratio(1, 8) {
            counter += 1;
            store.set_u64(COUNTER_KEY, counter).expect("set_u64");
            writeln!(stdout, "stable {counter}").expect("stdout");
        }
        let first = store.first_index().expect("first_index");
        if rng.random_ratio(1, 16) && last > first + 100 {
            store.delete_range(first, first + 50).expect("delete_range");
        } else if last > first + 3_000 {
            // As after a snapshot: keep the newest 1,000, so that the front
            // of the log keeps moving (and a segmented store reuses files).
            store.delete_range(first, last - 1_000).expect("delete_range");
        }
    }
}

/// What the parent saw the child acknowledge.
#[derive(Default)]
struct Acked {
    last_index: u64,
    counter: u64,
}

fn run_child(exe: &Path, child_test: &str, path: &Path, kill_after: Duration) -> Acked {
    let mut process = child_command(exe, child_test, CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = process.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = Acked::default();
    let note = |acked: &mut Acked, line: &str| {
        if let Some(index) = line.strip_prefix("acked ").and_then(|s| s.parse().ok()) {
            acked.last_index = index;
        } else if let Some(n) = line.strip_prefix("stable ").and_then(|s| s.parse().ok()) {
            acked.counter = n;
        }
    };
    // Wait for the child to start writing, then let it write for `kill_after`.
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(line) => note(&mut acked, &line),
        Err(_) => panic!("the crash child printed nothing within 10 s"),
    }
    let deadline = Instant::now() + kill_after;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        note(&mut acked, &line);
        if Instant::now() >= deadline {
            break;
        }
    }
    process.kill().expect("SIGKILL the child");
    let status = process.wait().expect("reap the child");
    assert!(!status.success(), "the child exited by itself: {status}");
    // Lines the child printed before it died were acknowledged too.
    for line in rx.iter() {
        note(&mut acked, &line);
    }
    let _ = reader.join();
    acked
}

/// The command that runs the test `child_test` of the test binary `exe`
/// alone, with `env` naming `path`: how a store's test starts its child.
pub(crate) fn child_command(exe: &Path, child_test: &str, env: &str, path: &Path) -> Command {
    let mut command = Command::new(exe);
    command.args([child_test, "--exact", "--nocapture", "--test-threads=1"]).env(env, path);
    command
}

/// Checks a reopened store after a kill: every entry written since the
/// previous round (where a torn write would be) byte for byte, a sample of
/// the older ones, the bounds, and that nothing lies past the last index.
fn verify<S: LogStore + StableStore>(store: &S, acked: &Acked, checked_through: u64, round: usize) {
    let first = store.first_index().expect("first_index");
    let last = store.last_index().expect("last_index");
    assert!(
        last >= acked.last_index,
        "round {round}: acknowledged index {} lost, last is {last}",
        acked.last_index
    );
    // A child killed before its first write (a loaded machine can take
    // longer than the kill delay to start one) leaves an empty store.
    let empty = first == 0 && last == 0;
    assert!(empty || (first >= 1 && first <= last), "round {round}: bounds {first}..={last}");
    let step = (checked_through.saturating_sub(first) / 200).max(1) as usize;
    for index in (first..checked_through.min(last)).step_by(step) {
        let log = store.get_log(index).expect("get_log");
        assert_eq!(log, Some(entry(index)), "round {round}: older entry {index} differs or is missing");
    }
    let mut next = first.max(checked_through);
    while !empty && next <= last {
        let logs = store.get_logs(next, last, 1 << 20).expect("get_logs");
        assert!(!logs.is_empty(), "round {round}: entry {next} missing inside {first}..={last}");
        for log in &logs {
            assert_eq!(
                log,
                &entry(log.index),
                "round {round}: entry {} differs from what was written",
                log.index
            );
        }
        next = logs.last().map_or(next, |l| l.index + 1);
    }
    assert_eq!(store.get_log(last + 1).expect("get_log"), None, "round {round}: an entry past last");
    let counter = store.get_u64(b"crash-counter").expect("get_u64").unwrap_or(0);
    assert!(
        counter >= acked.counter,
        "round {round}: stable counter {counter} behind acknowledged {}",
        acked.counter
    );
    store.store_logs(&[entry(last + 1)]).expect("the store accepts writes after a crash");
}

/// Runs `rounds` kill-and-check rounds against one store file, the child
/// being the test named `child_test` in this same test binary.
pub fn kill_rounds<S: LogStore + StableStore>(child_test: &str, rounds: usize, open: impl Fn(&Path) -> S) {
    let exe = std::env::current_exe().expect("the test binary");
    let dir = tempfile_dir();
    let path = dir.join("store");
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut checked_through = 0;
    for round in 0..rounds {
        let kill_after = Duration::from_millis(rng.random_range(5..60));
        let acked = run_child(&exe, child_test, &path, kill_after);
        let store = open(&path);
        verify(&store, &acked, checked_through, round);
        checked_through = store.last_index().expect("last_index");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("raft-kit-crash-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
