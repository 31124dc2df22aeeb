//! A membership change asked of a leader whose configuration is not yet
//! stable (it has not committed an entry of its own term) waits until it is,
//! as in hashicorp/raft, instead of failing; and a change is never started
//! before that entry commits (the single-server change rule).

mod support;

use raft_core::*;
use std::time::Duration;
use support::*;

const SECOND: Duration = Duration::from_secs(1);

fn patient_config(id: &str) -> Config {
    let mut config = config(id);
    config.log_store_stall_timeout = SECOND * 30;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_asked_of_a_new_leader_waits_for_its_first_entry_to_commit() {
    let cluster = TestCluster::with_config(1, patient_config).await;
    // The new leader's first entry cannot become durable yet.
    cluster.parts[0].logs.close_gate();
    let raft = cluster.raft(0);
    wait_for("leadership", SECOND * 5, || raft.is_leader().then_some(())).await;
    let (before_index, before) = raft.get_configuration();
    assert!(raft.commit_index() < raft.last_index(), "the leader's first entry committed already");
    let change = tokio::spawn({
        let raft = raft.clone();
        async move { raft.remove_server(ServerId::new("stranger"), 0, SECOND * 10).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!change.is_finished(), "the change was answered before the configuration was stable");
    assert_eq!(
        raft.get_configuration().0,
        before_index,
        "a change started before this term's first entry committed"
    );
    cluster.parts[0].logs.open_gate();
    let index = change.await.expect("task").expect("the change goes through once the leader is stable");
    assert!(index > before_index);
    assert_eq!(raft.get_configuration(), (index, before));
    cluster.shutdown().await;
}
