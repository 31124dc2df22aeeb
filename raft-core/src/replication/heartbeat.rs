//! Heartbeats to one follower, and when it was last known alive.
//!
//! A heartbeat leaves every `heartbeat_interval` (and at once for a
//! leadership check) whether or not earlier ones were answered: one late
//! answer never delays the next heartbeat, so a network that holds some
//! answers back still renews the lease with the others. Each answer counts
//! for the lease by the time its request was sent, the moment after which
//! the follower is known to have heard from this leader: an answer that
//! arrives later than `leader_lease_timeout` after its request renews
//! nothing. That is the envelope of check-quorum (see `Config`).

use super::Replication;
use crate::AppendEntriesRequest;
use crate::observer::Observation;
use crate::raft::Event;
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How many heartbeats may be in flight to one follower; more would only
/// pile up on a peer that does not answer (each gives up after
/// `heartbeat_timeout`, ten heartbeat intervals).
const HEARTBEATS_INFLIGHT_MAX: usize = 16;

/// When a follower was last known alive: the send time of the newest
/// request it answered. Read by the leader's check-quorum.
#[derive(Debug)]
pub(crate) struct PeerContact {
    last: Mutex<Instant>,
}

impl PeerContact {
    /// A contact that counts as fresh now (a new leader gives its followers
    /// one lease to answer).
    pub(crate) fn new() -> Self {
        Self { last: Mutex::new(Instant::now()) }
    }

    /// Records an answer to a request sent at `sent`; an older request's
    /// late answer never moves the contact back.
    pub(crate) fn touch_at(&self, sent: Instant) {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = (*last).max(sent);
    }

    /// How long ago the newest answered request was sent.
    pub(crate) fn elapsed(&self) -> Duration {
        self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).elapsed()
    }
}

/// What one heartbeat came back with: its verify round, when it was sent,
/// and the answer (or `None` when it timed out).
type Answered = (u64, Instant, Option<Result<crate::AppendEntriesResponse, crate::TransportError>>);

/// Sends heartbeats to one follower until aborted or a higher term is seen.
pub(super) async fn run(mut r: Replication) {
    let mut inflight: JoinSet<Answered> = JoinSet::new();
    let mut failures = 0u32;
    let mut next = Instant::now();
    loop {
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(next) => {
                next = Instant::now() + r.heartbeat_interval;
                send(&mut r, &mut inflight);
            }
            changed = r.verify_round.changed() => {
                if changed.is_err() {
                    return;
                }
                next = Instant::now() + r.heartbeat_interval;
                send(&mut r, &mut inflight);
            }
            Some(answered) = inflight.join_next() => {
                let Ok((round, sent, answer)) = answered else { continue };
                if !answered_ok(&r, round, sent, answer, &mut failures).await {
                    return;
                }
            }
        }
    }
}

/// Sends one heartbeat in the current verify round, unless too many are in flight.
fn send(r: &mut Replication, inflight: &mut JoinSet<Answered>) {
    let round = *r.verify_round.borrow_and_update();
    if inflight.len() >= HEARTBEATS_INFLIGHT_MAX {
        return;
    }
    let request = AppendEntriesRequest { header: r.header.clone(), term: r.term, ..Default::default() };
    let (transport, target, timeout) = (r.transport.clone(), r.peer.address.clone(), r.heartbeat_timeout);
    inflight.spawn(async move {
        let sent = Instant::now();
        let answer = tokio::time::timeout(timeout, transport.append_entries(target, request)).await.ok();
        (round, sent, answer)
    });
}

/// Handles one heartbeat's answer; false when this leadership is over.
async fn answered_ok(
    r: &Replication,
    round: u64,
    sent: Instant,
    answer: Option<Result<crate::AppendEntriesResponse, crate::TransportError>>,
    failures: &mut u32,
) -> bool {
    if answer.is_some() {
        r.metrics.heartbeat.record(crate::metrics::seconds(sent.elapsed()));
    }
    match answer {
        Some(Ok(response)) if response.term > r.term => {
            r.report(Event::HigherTerm { term: response.term }).await;
            false
        }
        Some(Ok(_)) => {
            r.contact.touch_at(sent);
            if *failures > 0 {
                let _ = r.observers.send(Observation::PeerHeartbeatResumed { peer: r.peer.id.clone() });
                // The follower is back: replication need not wait out its back-off.
                r.resume.notify_one();
            }
            *failures = 0;
            r.report(Event::HeartbeatAck { peer: r.peer.id.clone(), term: r.term, round }).await;
            true
        }
        _ => {
            *failures = failures.saturating_add(1);
            // Said on the first failure and then ever more rarely (the 2nd,
            // 4th, 8th, ...): a peer that stays down does not flood observers.
            if failures.is_power_of_two() {
                let last_contact = Some(r.contact.elapsed());
                let peer = r.peer.id.clone();
                let _ = r.observers.send(Observation::PeerHeartbeatFailed { peer, last_contact });
                tracing::debug!(peer = %r.peer.id, failures = *failures, "heartbeats failing");
            }
            true
        }
    }
}
