//! The in-memory network's fault injection does what it says: disconnects,
//! cut links and partitions block exactly the paths they name, drops follow
//! the seed, delays hold messages back, counters count, and a shut-down or
//! replaced transport stops receiving.

use raft_core::*;
use std::time::Duration;
use tokio::time::Instant;
use transport_inmem::{Faults, InmemNetwork, InmemTransport};

/// Answers every RequestVote by granting it, with the request's term.
fn serve(transport: &InmemTransport) -> tokio::task::JoinHandle<usize> {
    let mut incoming = transport.consumer().expect("consumer");
    tokio::spawn(async move {
        let mut served = 0;
        while let Some(rpc) = incoming.recv().await {
            served += 1;
            match rpc {
                Rpc::RequestVote { request, respond } => respond.respond(Ok(RequestVoteResponse {
                    term: request.term,
                    granted: true,
                    ..Default::default()
                })),
                Rpc::AppendEntries { request, respond } => respond.respond(Ok(AppendEntriesResponse {
                    term: request.term,
                    success: true,
                    last_log: request.prev_log_index + request.entries.len() as u64,
                    ..Default::default()
                })),
                _ => {}
            }
        }
        served
    })
}

async fn vote(from: &InmemTransport, to: &str, term: u64) -> Result<RequestVoteResponse, TransportError> {
    from.request_vote(to.into(), RequestVoteRequest { term, ..Default::default() }).await
}

#[tokio::test]
async fn messages_round_trip_through_the_codec_and_are_counted() {
    let network = InmemNetwork::new(1);
    let a = network.transport("a");
    let b = network.transport("b");
    serve(&b);
    let entries = vec![Log::command(1, 1, vec![7u8; 1000])];
    let request = AppendEntriesRequest { term: 3, entries, ..Default::default() };
    let response = a.append_entries("b".into(), request).await.expect("append");
    assert!(response.success);
    assert_eq!(response.last_log, 1);
    assert_eq!(vote(&a, "b", 9).await.expect("vote").term, 9);
    assert_eq!(network.rpc_count(&"a".into()), 2);
    assert!(network.bytes_sent(&"a".into()) > 1000, "the 1000-byte entry was counted");
    assert_eq!(network.append_count(&"a".into()), 1);
    assert_eq!(network.rpc_count(&"b".into()), 0);
}

#[tokio::test]
async fn disconnect_cut_and_partition_block_exactly_their_paths() {
    let network = InmemNetwork::new(2);
    let nodes: Vec<InmemTransport> = ["a", "b", "c"].iter().map(|n| network.transport(*n)).collect();
    for node in &nodes {
        serve(node);
    }
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    network.disconnect(&"c".into());
    assert!(vote(a, "b", 1).await.is_ok());
    assert!(matches!(vote(a, "c", 1).await, Err(TransportError::Unreachable(_))));
    assert!(vote(c, "a", 1).await.is_err(), "a disconnected node cannot send either");
    network.connect(&"c".into());
    network.cut(&"a".into(), &"b".into());
    assert!(vote(a, "b", 1).await.is_err() && vote(b, "a", 1).await.is_err());
    assert!(vote(a, "c", 1).await.is_ok() && vote(b, "c", 1).await.is_ok());
    network.heal(&"a".into(), &"b".into());
    network.partition(&[vec!["a".into()], vec!["b".into(), "c".into()]]);
    assert!(vote(a, "b", 1).await.is_err() && vote(a, "c", 1).await.is_err());
    assert!(vote(b, "c", 1).await.is_ok());
    network.heal_all();
    assert!(vote(a, "b", 1).await.is_ok() && vote(c, "a", 1).await.is_ok());
}

async fn drop_pattern(seed: u64) -> Vec<bool> {
    let network = InmemNetwork::new(seed);
    let a = network.transport("a");
    let b = network.transport("b");
    serve(&b);
    network.set_faults(Faults { drop_requests: 0.3, drop_replies: 0.2, ..Faults::reliable() });
    let mut pattern = Vec::new();
    for term in 0..100 {
        pattern.push(vote(&a, "b", term).await.is_ok());
    }
    pattern
}

#[tokio::test]
async fn drops_follow_the_seed() {
    let first = drop_pattern(42).await;
    assert_eq!(first, drop_pattern(42).await, "the same seed drops the same calls");
    let delivered = first.iter().filter(|ok| **ok).count();
    assert!((35..=75).contains(&delivered), "{delivered} of 100 delivered with 30% + 20% loss");
    assert_ne!(first, drop_pattern(43).await, "another seed drops other calls");
}

#[tokio::test]
async fn delays_hold_messages_back_within_bounds() {
    let network = InmemNetwork::new(5);
    let a = network.transport("a");
    let b = network.transport("b");
    serve(&b);
    let delay = Duration::from_millis(20);
    network.set_faults(Faults { delay: Some((delay, delay)), ..Faults::reliable() });
    let started = Instant::now();
    vote(&a, "b", 1).await.expect("delivered");
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn reordering_lets_later_replies_overtake_earlier_ones() {
    let network = InmemNetwork::new(6);
    let a = std::sync::Arc::new(network.transport("a"));
    let b = network.transport("b");
    serve(&b);
    network.set_faults(Faults {
        reorder: 0.5,
        reorder_delay_max: Duration::from_millis(30),
        ..Faults::reliable()
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for term in 0..40u64 {
        let (a, tx) = (a.clone(), tx.clone());
        tokio::spawn(async move {
            if let Ok(response) = vote(&a, "b", term).await {
                let _ = tx.send(response.term);
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(tx);
    let mut order = Vec::new();
    while let Some(term) = rx.recv().await {
        order.push(term);
    }
    assert_eq!(order.len(), 40);
    assert!(order.windows(2).any(|w| w[0] > w[1]), "no reply was overtaken: {order:?}");
}

#[tokio::test]
async fn a_shut_down_transport_fails_calls_and_a_restarted_node_takes_its_address() {
    let network = InmemNetwork::new(7);
    let a = network.transport("a");
    let b = network.transport("b");
    let server = serve(&b);
    assert!(vote(&a, "b", 1).await.is_ok());
    b.shutdown().await;
    assert!(matches!(vote(&b, "a", 1).await, Err(TransportError::Shutdown)));
    assert!(vote(&a, "b", 1).await.is_err(), "a shut-down node receives nothing");
    assert_eq!(server.await.expect("server"), 1, "the incoming stream ended");
    let b2 = network.transport("b");
    serve(&b2);
    assert!(vote(&a, "b", 2).await.is_ok(), "the restarted node is reachable at the same address");
    assert!(matches!(b2.consumer(), Err(TransportError::ConsumerTaken)));
}

#[tokio::test(start_paused = true)]
async fn one_way_cuts_duplicates_and_holds_do_what_they_say() {
    let network = InmemNetwork::new(5);
    let a = network.transport("a");
    let b = network.transport("b");
    let served_by_b = serve(&b);
    let served_by_a = serve(&a);
    // a → b cut, b → a open: a's request never arrives; b's arrives and is
    // handled, but its answer (a → b) is lost.
    network.cut_one_way(&"a".into(), &"b".into());
    assert!(vote(&a, "b", 1).await.is_err(), "a reached b over a cut link");
    assert!(vote(&b, "a", 1).await.is_err(), "an answer crossed the cut link");
    network.heal_all();
    a.shutdown().await;
    assert_eq!(served_by_a.await.expect("task"), 1, "b's request reached a");
    let a = network.transport("c");
    // Every request delivered twice: b serves two for each one a sends.
    network.set_faults(Faults { duplicate: 1.0, ..Faults::reliable() });
    for term in 1..=5 {
        assert_eq!(vote(&a, "b", term).await.expect("vote").term, term, "the first answer is the caller's");
    }
    network.set_faults(Faults::reliable());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Held messages arrive when the hold ends, not before.
    let until = Instant::now() + Duration::from_secs(2);
    network.hold(&"b".into(), until);
    let started = Instant::now();
    vote(&a, "b", 9).await.expect("a held message is delivered");
    assert!(started.elapsed() >= Duration::from_secs(2), "delivered after {:?}", started.elapsed());
    b.shutdown().await;
    let served = served_by_b.await.expect("task");
    assert_eq!(served, 5 * 2 + 1, "b served the duplicates (and only them)");
}
