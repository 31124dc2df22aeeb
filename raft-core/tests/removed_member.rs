//! A follower shuts down on removal (`shutdown_on_remove`) only once its
//! log holds everything the leader has committed. Found by the simulator
//! (seeds 340, 356, 450, 559, 635, 678, 697, 705, 740, 922, 933, 950 of the
//! first soak): a member removed and later added back, restarted on its old
//! log, was sent the entries it lacked; the first batch held the committed
//! removal but not yet the re-addition, and the node shut itself down for
//! good while the leader kept replicating to it.

mod support;

use raft_core::*;
use std::time::Duration;
use support::*;

const SECOND: Duration = Duration::from_secs(1);

fn configuration_entry(index: u64, term: u64, configuration: &Configuration) -> Log {
    Log {
        index,
        term,
        kind: LogKind::Configuration,
        data: codec::configuration_to_bytes(configuration),
        extensions: Default::default(),
    }
}

/// A lone follower (node 0) of the probe; the configuration without it,
/// and the one that adds it back as a non-voter.
async fn removed_and_back() -> (Raft<SumFsm>, Probe, Configuration, Configuration) {
    // The transports keep the network alive.
    let (raft, probe, _) =
        lone_follower(SumFsm::default(), store_mem::MemLogStore::new(), config("node-0")).await;
    let without = Configuration::new(vec![probe.server()]);
    let mut back = without.clone();
    back.servers.push(Server::nonvoter(id(0), addr(0)));
    (raft, probe, without, back)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catching_up_follower_is_not_fooled_by_a_removal_that_was_undone() {
    let (raft, probe, without, back) = removed_and_back().await;
    // The leader has committed index 4; the first batch stops at the removal.
    let first = probe
        .append(&addr(0), 2, (1, 1), vec![configuration_entry(2, 2, &without), Log::command(3, 2, num(3))], 4)
        .await;
    assert!(first.success, "{first:?}");
    assert_eq!(raft.commit_index(), 3);
    assert_ne!(
        raft.state(),
        RaftState::Shutdown,
        "shut down on a removal that a later committed entry undoes"
    );
    let second = probe.append(&addr(0), 2, (3, 2), vec![configuration_entry(4, 2, &back)], 4).await;
    assert!(second.success, "{second:?}");
    wait_for("the re-added configuration to be committed", SECOND * 5, || {
        (raft.commit_index() == 4).then_some(())
    })
    .await;
    assert_eq!(raft.state(), RaftState::Follower);
    assert_eq!(raft.get_configuration().1, back);
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_follower_that_was_removed_shuts_down() {
    let (raft, probe, _network) =
        lone_follower(SumFsm::default(), store_mem::MemLogStore::new(), config("node-0")).await;
    let without = Configuration::new(vec![probe.server()]);
    let removal = probe.append(&addr(0), 2, (1, 1), vec![configuration_entry(2, 2, &without)], 1).await;
    assert!(removal.success, "{removal:?}");
    assert_ne!(raft.state(), RaftState::Shutdown, "shut down before the removal was committed");
    let _ = probe.append(&addr(0), 2, (2, 2), Vec::new(), 2).await;
    wait_for("the removed follower to shut down", SECOND * 5, || {
        (raft.state() == RaftState::Shutdown).then_some(())
    })
    .await;
}

/// Seed 100 of the second soak: restarted on a log whose committed
/// configuration left it out, a member being added back (the leader's
/// newest entry, not yet committed) shut down as soon as it heard of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_in_its_latest_configuration_is_not_removed() {
    let (raft, probe, without, back) = removed_and_back().await;
    let entries = vec![
        configuration_entry(2, 2, &without),
        Log::command(3, 2, num(3)),
        configuration_entry(4, 2, &back),
    ];
    // The removal and the command after it are committed; the re-addition is not yet.
    let appended = probe.append(&addr(0), 2, (1, 1), entries, 3).await;
    assert!(appended.success, "{appended:?}");
    assert_eq!(raft.commit_index(), 3);
    assert_ne!(raft.state(), RaftState::Shutdown, "shut down while its newest configuration holds it");
    let committed = probe.append(&addr(0), 2, (4, 2), Vec::new(), 4).await;
    assert!(committed.success, "{committed:?}");
    wait_for("the re-addition to commit", SECOND * 5, || (raft.commit_index() == 4).then_some(())).await;
    assert_eq!(raft.state(), RaftState::Follower);
    raft.shutdown().await.expect("shutdown");
}
