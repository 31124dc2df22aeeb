//! What a node's observers see: leader changes and votes, heartbeat
//! failures and recoveries, peers removed and added, a stalled log store;
//! and that a dead peer is reported ever more rarely.

mod support;

use raft_core::*;
use std::time::Duration;
use support::*;

const SECOND: Duration = Duration::from_secs(1);

/// Every node is subscribed before any can hear another, so nothing is
/// missed. The winner of an election needed a granted vote from some other
/// node, so that node observed it; which node that was is up to the race
/// (a candidate stops asking once it has its quorum, so the third node may
/// never hear the request: CI once caught the old form of this test, which
/// expected node 1 to, doing exactly that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_see_leader_changes_votes_and_heartbeat_failures() {
    let mut cluster = TestCluster::apart(3, config).await;
    let mut node_events: Vec<_> = (0..3).map(|i| cluster.raft(i).subscribe()).collect();
    cluster.connect_all();
    let leader = cluster.leader().await;
    let mut leader_events = cluster.raft(leader).subscribe();
    let follower = (leader + 1) % 3;
    cluster.network.disconnect(&addr(follower));
    let failed = tokio::time::timeout(SECOND * 5, async {
        loop {
            if let Ok(Observation::PeerHeartbeatFailed { peer, .. }) = leader_events.recv().await
                && peer == id(follower)
            {
                return;
            }
        }
    })
    .await;
    assert!(failed.is_ok(), "no PeerHeartbeatFailed for the disconnected follower");
    cluster.network.connect(&addr(follower));
    let resumed = tokio::time::timeout(SECOND * 5, async {
        loop {
            if let Ok(Observation::PeerHeartbeatResumed { peer }) = leader_events.recv().await
                && peer == id(follower)
            {
                return;
            }
        }
    })
    .await;
    assert!(resumed.is_ok(), "no PeerHeartbeatResumed after reconnecting");
    let mut voted_for_leader = Vec::new();
    for (i, events) in node_events.iter_mut().enumerate() {
        let (mut saw_leader, mut saw_vote) = (false, false);
        loop {
            match events.try_recv() {
                Ok(Observation::LeaderChanged { leader: Some(_), .. })
                | Ok(Observation::StateChanged(RaftState::Leader)) => saw_leader = true,
                Ok(Observation::RequestVote { candidate, granted: true, .. }) => {
                    saw_vote |= candidate == id(leader);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        assert!(saw_leader, "node {i} never observed a leader");
        if saw_vote {
            voted_for_leader.push(i);
        }
    }
    assert!(!voted_for_leader.is_empty(), "node {leader} leads, but no node observed granting it a vote");
    cluster.crash(0).await;
    cluster.shutdown().await;
}

/// The stall is noticed after 200 ms, well inside a lease of a second: a
/// leader starved of CPU for a moment on a loaded machine must not lose its
/// lease first and step down without ever reporting the stall.
fn stall_config(id: &str) -> Config {
    let mut config = config(id);
    config.heartbeat_timeout = SECOND;
    config.election_timeout = SECOND;
    config.leader_lease_timeout = SECOND;
    config.log_store_stall_timeout = Duration::from_millis(200);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_log_store_stalls_steps_down() {
    let cluster = TestCluster::with_config(3, stall_config).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    raft.apply(num(1), SECOND).await.expect("apply");
    let mut events = raft.subscribe();
    cluster.parts[leader].logs.close_gate();
    let pending = tokio::spawn({
        let raft = raft.clone();
        async move { raft.apply(num(2), SECOND * 5).await }
    });
    let stalled = tokio::time::timeout(SECOND * 5, async {
        loop {
            match events.recv().await {
                Ok(Observation::LogStoreStalled { .. }) => return true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                _ => {}
            }
        }
    })
    .await;
    assert!(matches!(stalled, Ok(true)), "no LogStoreStalled observation");
    wait_for("the stalled leader to step down", SECOND * 5, || (!raft.is_leader()).then_some(())).await;
    let new_leader = wait_for("a healthy leader", SECOND * 10, || {
        (0..3).find(|&i| i != leader && cluster.raft(i).is_leader())
    })
    .await;
    cluster.raft(new_leader).apply(num(3), SECOND).await.expect("the new leader serves");
    cluster.parts[leader].logs.open_gate();
    let _ = pending.await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_see_peers_removed_and_added() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    let events = raft.subscribe();
    let follower = (leader + 1) % 3;
    raft.remove_server(id(follower), 0, SECOND * 5).await.expect("remove");
    let peer_change = |mut events: tokio::sync::broadcast::Receiver<Observation>| async move {
        loop {
            if let Ok(Observation::PeerChanged { peer, removed }) = events.recv().await {
                return (peer.id, removed);
            }
        }
    };
    // Replication to a removed peer stops after a short grace.
    let first = tokio::time::timeout(SECOND * 5, peer_change(events)).await;
    assert_eq!(first.ok(), Some((id(follower), true)), "no PeerChanged for the removed follower");
    let events = raft.subscribe();
    raft.add_nonvoter(id(follower), addr(follower), 0, SECOND * 5).await.expect("add back");
    let second = tokio::time::timeout(SECOND * 5, peer_change(events)).await;
    assert_eq!(second.ok(), Some((id(follower), false)), "no PeerChanged for the added follower");
    cluster.shutdown().await;
}

/// A peer that stays down is reported on its 1st, 2nd, 4th, 8th, … failed
/// heartbeat, not every heartbeat interval forever; a filtered subscription
/// sees only what it asked for (issue #15).
#[tokio::test(start_paused = true)]
async fn a_dead_peer_is_reported_ever_more_rarely_to_a_filtered_subscriber() {
    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let dead = id(follower);
    let mut failures = cluster.raft(leader).subscribe_filtered(
        move |o| matches!(o, Observation::PeerHeartbeatFailed { peer, .. } if *peer == dead),
    );
    cluster.network.disconnect(&addr(follower));
    // A minute of virtual time: hundreds of failed heartbeats.
    tokio::time::sleep(SECOND * 60).await;
    let mut reported = 0;
    loop {
        match failures.try_recv() {
            Ok(Observation::PeerHeartbeatFailed { .. }) => reported += 1,
            Ok(other) => panic!("the filter let {other:?} through"),
            Err(_) => break,
        }
    }
    // Heartbeats go out every 5 ms with the fast config: 12,000 failures at
    // most, so at most 14 reports (plus a couple of leeway for slow calls).
    assert!(reported >= 1, "the dead peer was never reported");
    assert!(reported <= 16, "{reported} reports in a minute");
    assert!(cluster.raft(leader).is_leader(), "two of three still lead");
    cluster.shutdown().await;
}
