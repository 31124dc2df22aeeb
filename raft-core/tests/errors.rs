//! Every error says each thing once (issue #13, item 8): an error either
//! includes its cause's message in its own or returns the cause from
//! `source()`, never both, so neither `to_string()` nor a reporter that
//! walks the chain (anyhow's `{:#}`, say) repeats a clause.

use raft_core::*;
use std::error::Error;
use std::io::Write;

/// The chain as a reporter prints it: each error's message, then its source's.
fn report(error: &dyn Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut next = error.source();
    while let Some(source) = next {
        parts.push(source.to_string());
        next = source.source();
    }
    parts.join(": ")
}

/// Fails when a clause of the report stands twice in a row, or when an
/// error's message already holds its source's.
fn assert_says_once(what: &str, error: &dyn Error) {
    let mut current: &dyn Error = error;
    while let Some(source) = current.source() {
        assert!(
            !current.to_string().contains(&source.to_string()),
            "{what}: {:?} both says and returns its source {:?}",
            current.to_string(),
            source.to_string()
        );
        current = source;
    }
    let report = report(error);
    let clauses: Vec<&str> = report.split(": ").collect();
    for pair in clauses.windows(2) {
        assert_ne!(pair[0], pair[1], "{what}: a clause repeats in {report:?}");
    }
    for category in ["store", "snapshot", "transport", "state machine"] {
        let times = report.matches(&format!("{category} failed")).count()
            + report.matches(&format!("{category} I/O failed")).count();
        assert!(times <= 1, "{what}: {report:?} names the failing {category} {times} times");
    }
}

fn io(message: &str) -> std::io::Error {
    std::io::Error::other(message.to_owned())
}

#[test]
fn every_error_says_each_thing_once() {
    let cases: Vec<(&str, Box<dyn Error>)> = vec![
        ("store I/O", Box::new(RaftError::from(StoreError::from(io("disk on fire"))))),
        ("store backend", Box::new(RaftError::from(StoreError::Backend(Box::new(io("engine")))))),
        ("snapshot I/O", Box::new(RaftError::from(SnapshotError::from(io("disk on fire"))))),
        ("snapshot backend", Box::new(SnapshotError::Backend(Box::new(io("engine"))))),
        ("transport I/O", Box::new(RaftError::from(TransportError::from(io("reset"))))),
        (
            "transport decode",
            Box::new(RaftError::from(TransportError::from(
                codec::decode_message(bytes::Bytes::new()).expect_err("empty"),
            ))),
        ),
        ("fsm", Box::new(RaftError::from(FsmError::new(io("bad state"))))),
        ("fsm message", Box::new(RaftError::from(FsmError::new("plain message")))),
        ("configuration", Box::new(RaftError::from(ConfigurationError::NoVoter))),
        ("lock", Box::new(StoreError::from(lock::LockError::Io(io("no such file"))))),
    ];
    for (what, error) in &cases {
        assert_says_once(what, error.as_ref());
    }
}

#[test]
fn a_damaged_snapshot_says_it_is_corrupt_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSnapshotStore::open(dir.path()).expect("open");
    let new = NewSnapshot {
        version: SNAPSHOT_VERSION,
        index: 5,
        term: 1,
        configuration: Configuration::new(vec![Server::voter("a", "b")]),
        configuration_index: 1,
    };
    let mut sink = store.create(new).expect("create");
    sink.write_all(&[1u8; 1000]).expect("write");
    let id = sink.close().expect("close").id;
    std::fs::write(dir.path().join(&id).join("state.bin"), [1u8; 999]).expect("truncate");
    let error = match store.open(&id) {
        Err(error) => error,
        Ok(_) => panic!("a truncated snapshot opened"),
    };
    assert_eq!(error.to_string().matches("is corrupt").count(), 1, "{error}");
    assert_says_once("truncated snapshot", &error);
    assert_says_once("as a RaftError", &RaftError::from(error));
}
