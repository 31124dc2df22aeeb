//! Per-follower replication: one task sends entries (pipelined once the
//! follower is in sync), another sends heartbeats (`replication/heartbeat.rs`),
//! so a heartbeat never waits behind a large AppendEntries.
//!
//! Every call to the follower has a deadline of its own, shorter than any
//! transport timeout: an RPC lost in a network that drops packets silently
//! costs one deadline, not the transport's seconds. A pipeline gives up on a
//! call that outlives its deadline instead of holding every later answer
//! behind it, and when a heartbeat gets through to a follower that was
//! failing, replication retries at once instead of finishing its back-off.

mod heartbeat;

use crate::log_cache::LogCache;
use crate::observer::Observation;
use crate::protocol::election::next_index_after_conflict;
use crate::raft::Event;
use crate::raft::stream_snapshot;
use crate::task::Owned;
use crate::transport::spawn_pipeline;
use crate::watch;
use crate::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, RpcHeader, Server, SnapshotStore,
    Transport, TransportError,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::Instant;

pub(crate) use heartbeat::PeerContact;

/// The most payload bytes one AppendEntries carries.
const APPEND_BYTES_MAX: u64 = 8 << 20;
/// The longest a failing peer waits between retries.
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// How many payload bytes an AppendEntries may take per second of its
/// deadline beyond the heartbeat timeout (a slow link, not a dead peer).
const APPEND_BYTES_PER_SEC_MIN: u64 = 8 << 20;
/// After each AppendEntries that timed out, the next one's deadline doubles,
/// up to 2^6 times the first: a link that is slow but alive still gets its
/// entries through, a dead one costs one short deadline per attempt.
const DEADLINE_DOUBLINGS_MAX: u32 = 6;

/// Everything a follower's replication tasks need; cloned into both.
#[derive(Clone)]
pub(crate) struct Replication {
    pub(crate) peer: Server,
    pub(crate) term: u64,
    pub(crate) header: RpcHeader,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) log: Arc<LogCache>,
    pub(crate) snapshots: Arc<dyn SnapshotStore>,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) observers: broadcast::Sender<Observation>,
    pub(crate) last_index: watch::Receiver<u64>,
    pub(crate) commit_index: watch::Receiver<u64>,
    pub(crate) verify_round: watch::Receiver<u64>,
    pub(crate) contact: Arc<PeerContact>,
    /// Set by the heartbeat task when a follower that was failing answers
    /// again: replication stops waiting and retries at once.
    pub(crate) resume: Arc<Notify>,
    pub(crate) max_append_entries: usize,
    pub(crate) max_inflight: usize,
    pub(crate) commit_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) metrics: crate::metrics::PeerMetrics,
}

/// The two tasks of one follower; aborted when leadership ends.
pub(crate) struct PeerTasks {
    /// The follower.
    pub(crate) peer: crate::Server,
    pub(crate) contact: Arc<PeerContact>,
    replicate: Owned,
    heartbeat: Owned,
}

impl PeerTasks {
    pub(crate) fn abort(&self) {
        self.replicate.abort();
        self.heartbeat.abort();
    }

    pub(crate) async fn join(mut self) {
        self.replicate.join().await;
        self.heartbeat.join().await;
    }
}

/// Starts replicating to `replication.peer`, beginning at `next_index`.
pub(crate) fn start(replication: Replication, next_index: u64) -> PeerTasks {
    let (peer, contact) = (replication.peer.clone(), replication.contact.clone());
    let heartbeat = Owned::spawn(heartbeat::run(replication.clone()));
    let replicate = Owned::spawn(replicate(replication, next_index));
    PeerTasks { peer, contact, replicate, heartbeat }
}

pub(crate) fn backoff(failures: u32, base: Duration) -> Duration {
    let factor = 1u32 << failures.min(8);
    (base * factor).min(BACKOFF_MAX)
}

/// What one AppendEntries round trip told us.
enum Outcome {
    Matched(u64),
    Conflict {
        conflict_index: u64,
        last_log: u64,
    },
    HigherTerm(u64),
    /// The entries the follower needs are no longer in the log.
    NeedSnapshot,
    Failed,
    /// The call outlived its deadline.
    TimedOut,
}

impl Replication {
    async fn report(&self, event: Event) {
        let _ = self.events.send(event).await;
    }

    /// Builds the AppendEntries for entries from `next_index` up to `last`.
    async fn request(&self, next_index: u64, last: u64, commit: u64) -> Option<AppendEntriesRequest> {
        let log = self.log.clone();
        let prev = next_index - 1;
        let last = last.min(next_index + self.max_append_entries as u64 - 1);
        // Recent entries come from memory without leaving the task; only a
        // follower far behind sends the read to a blocking thread.
        let read = match log.cached_append(next_index, last, APPEND_BYTES_MAX) {
            Some((prev_term, entries)) => Ok(Ok((Some(prev_term), entries))),
            None => {
                let inline = log.store().writes_never_block();
                crate::blocking::run(inline, move || {
                    let prev_term = log.term_at(prev)?;
                    let entries = if next_index <= last {
                        log.get_range(next_index, last, APPEND_BYTES_MAX)?
                    } else {
                        Vec::new()
                    };
                    Ok::<_, crate::StoreError>((prev_term, entries))
                })
                .await
            }
        };
        let (prev_term, entries) = match read {
            Ok(Ok((Some(prev_term), entries))) => (prev_term, entries),
            Ok(Ok((None, _))) => return None,
            // A compacted index is how replication learns that the follower
            // needs a snapshot: nothing is wrong.
            Ok(Err(error @ crate::StoreError::Compacted { .. })) => {
                tracing::debug!(%error, peer = %self.peer.id, "the follower needs entries the log no longer has");
                return None;
            }
            Ok(Err(error)) => {
                tracing::error!(%error, peer = %self.peer.id, "reading entries to replicate failed");
                return None;
            }
            Err(_) => return None,
        };
        if next_index <= last && entries.first().map(|l| l.index) != Some(next_index) {
            return None;
        }
        Some(AppendEntriesRequest {
            header: self.header.clone(),
            term: self.term,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries,
            leader_commit: commit,
        })
    }

    /// How long an AppendEntries carrying `bytes` of payload may take: the
    /// heartbeat timeout, plus time to move the bytes on a slow link.
    fn append_deadline(&self, bytes: u64) -> Duration {
        self.heartbeat_timeout + Duration::from_millis(bytes.saturating_mul(1000) / APPEND_BYTES_PER_SEC_MIN)
    }

    /// Reads an answer to a request sent at `sent`: the follower was alive
    /// after that moment, which is what the lease counts.
    fn judge(
        &self,
        request_prev: u64,
        count: u64,
        response: &AppendEntriesResponse,
        sent: Instant,
    ) -> Outcome {
        self.metrics.append_rpc.record(crate::metrics::seconds(sent.elapsed()));
        if response.success {
            self.metrics.append_logs.increment(count);
        }
        if response.term > self.term {
            return Outcome::HigherTerm(response.term);
        }
        self.contact.touch_at(sent);
        if response.success {
            Outcome::Matched(request_prev + count)
        } else if response.no_retry_backoff {
            Outcome::Failed
        } else {
            Outcome::Conflict { conflict_index: response.conflict_index, last_log: response.last_log }
        }
    }

    /// Sends the newest snapshot, streamed, for a follower that needs
    /// entries the log no longer has.
    async fn send_snapshot(&self) -> Outcome {
        let store = self.snapshots.clone();
        let inline = store.never_blocks();
        let opened = crate::blocking::run(inline, move || {
            let newest = store.list()?.into_iter().next();
            newest.map(|meta| store.open(&meta.id)).transpose()
        })
        .await;
        let (meta, reader) = match opened {
            Ok(Ok(Some(opened))) => opened,
            Ok(Ok(None)) => {
                tracing::error!(peer = %self.peer.id, "a follower needs a snapshot, and there is none");
                return Outcome::NeedSnapshot;
            }
            Ok(Err(error)) => {
                tracing::error!(%error, peer = %self.peer.id, "opening the snapshot to send failed");
                return Outcome::Failed;
            }
            Err(_) => return Outcome::Failed,
        };
        tracing::info!(peer = %self.peer.id, index = meta.index, size = meta.size, "sending a snapshot");
        let request = InstallSnapshotRequest {
            header: self.header.clone(),
            snapshot_version: meta.version,
            term: self.term,
            last_log_index: meta.index,
            last_log_term: meta.term,
            configuration: meta.configuration.clone(),
            configuration_index: meta.configuration_index,
            size: meta.size,
        };
        // Generous: ten heartbeat timeouts plus a second per MiB.
        let deadline = self.heartbeat_timeout * 10 + Duration::from_secs(meta.size >> 20);
        let started = Instant::now();
        let sent = self.transport.install_snapshot(
            self.peer.address.clone(),
            request,
            stream_snapshot(reader, self.snapshots.never_blocks()),
        );
        let answer = tokio::time::timeout(deadline, sent).await;
        self.metrics.install_snapshot.record(crate::metrics::seconds(started.elapsed()));
        match answer {
            Ok(Ok(response)) if response.term > self.term => Outcome::HigherTerm(response.term),
            Ok(Ok(response)) if response.success => {
                self.contact.touch_at(started);
                Outcome::Matched(meta.index)
            }
            Ok(Ok(_)) => Outcome::Failed,
            Ok(Err(error)) => {
                tracing::warn!(%error, peer = %self.peer.id, "InstallSnapshot failed");
                Outcome::Failed
            }
            Err(_) => {
                tracing::warn!(peer = %self.peer.id, ?deadline, "InstallSnapshot timed out");
                Outcome::Failed
            }
        }
    }

    /// Sends one AppendEntries, with its deadline doubled `doublings` times.
    async fn send_one(&self, next_index: u64, last: u64, commit: u64, doublings: u32) -> Outcome {
        let Some(request) = self.request(next_index, last, commit).await else {
            return Outcome::NeedSnapshot;
        };
        let (prev, count) = (request.prev_log_index, request.entries.len() as u64);
        let bytes = request.entries.iter().map(crate::Log::payload_size).sum();
        let deadline = self.append_deadline(bytes) * (1 << doublings.min(DEADLINE_DOUBLINGS_MAX));
        let sent = Instant::now();
        let call = self.transport.append_entries(self.peer.address.clone(), request);
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(response)) => self.judge(prev, count, &response, sent),
            Ok(Err(error)) => {
                tracing::debug!(%error, peer = %self.peer.id, "AppendEntries failed");
                Outcome::Failed
            }
            Err(_) => {
                tracing::debug!(peer = %self.peer.id, ?deadline, "AppendEntries timed out");
                Outcome::TimedOut
            }
        }
    }

    /// Sleeps `wait`, or less if the follower answers a heartbeat again.
    async fn back_off(&self, wait: Duration) {
        tokio::select! {
            biased;
            () = tokio::time::sleep(wait) => {}
            () = self.resume.notified() => {}
        }
    }
}

/// Sends entries to one follower until aborted: one request at a time until
/// the follower matches, then pipelined.
async fn replicate(mut r: Replication, mut next_index: u64) {
    let mut matched = 0u64;
    let mut sent_commit = 0u64;
    let mut failures = 0u32;
    let mut doublings = 0u32;
    loop {
        let last = *r.last_index.borrow_and_update();
        let commit = *r.commit_index.borrow_and_update();
        if next_index <= last || commit > sent_commit {
            // A follower that answers a heartbeat again is worth a fresh
            // call now rather than the end of one that may hang for long.
            let mut outcome = tokio::select! {
                biased;
                outcome = r.send_one(next_index, last, commit, doublings) => outcome,
                () = r.resume.notified() => continue,
            };
            if matches!(outcome, Outcome::NeedSnapshot) {
                outcome = r.send_snapshot().await;
            }
            match outcome {
                Outcome::Matched(index) => {
                    failures = 0;
                    doublings = 0;
                    sent_commit = commit;
                    next_index = index + 1;
                    if index > matched {
                        matched = index;
                        r.report(Event::Progress {
                            peer: r.peer.id.clone(),
                            term: r.term,
                            match_index: index,
                        })
                        .await;
                    }
                    if next_index > last {
                        match pipeline(&mut r, next_index, matched, sent_commit).await {
                            Some(state) => (next_index, matched, sent_commit) = state,
                            None => return,
                        }
                    }
                }
                Outcome::Conflict { conflict_index, last_log } if conflict_index > next_index => {
                    // The follower's snapshot ends past what we sent: resend
                    // from just after it, so the request shows its last
                    // entry (or from our own end, if our log is shorter).
                    // A follower that keeps refusing this way holds a
                    // snapshot our log disagrees with: back off, or the two
                    // would trade requests and refusals without pause.
                    let ours = r.last_index.borrow().saturating_add(1);
                    next_index = conflict_index.min(last_log.saturating_add(1)).min(ours).max(1);
                    failures += 1;
                    r.back_off(backoff(failures, r.heartbeat_interval / 4)).await;
                }
                Outcome::Conflict { conflict_index, last_log } => {
                    next_index = next_index_after_conflict(next_index, conflict_index)
                        .min(last_log.saturating_add(1))
                        .max(1);
                    // The follower refuses what it acknowledged before: its
                    // log lost entries it said it held. Whatever made it say
                    // so, back off rather than trade entries (or snapshots)
                    // and refusals without pause.
                    if next_index <= matched {
                        tracing::warn!(
                            peer = %r.peer.id,
                            matched,
                            conflict_index,
                            "the follower refuses entries it acknowledged; backing off"
                        );
                        failures += 1;
                        r.back_off(backoff(failures, r.heartbeat_interval / 4)).await;
                    }
                }
                Outcome::HigherTerm(term) => {
                    r.report(Event::HigherTerm { term }).await;
                    return;
                }
                Outcome::NeedSnapshot => {
                    failures += 1;
                    r.back_off(backoff(failures, r.heartbeat_interval)).await;
                }
                Outcome::Failed => {
                    failures += 1;
                    r.back_off(backoff(failures, r.heartbeat_interval / 4)).await;
                }
                // Retry at once with a longer deadline: the time is spent already.
                Outcome::TimedOut => doublings = (doublings + 1).min(DEADLINE_DOUBLINGS_MAX),
            }
            continue;
        }
        tokio::select! {
            biased;
            changed = r.last_index.changed() => if changed.is_err() { return },
            changed = r.commit_index.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(r.commit_timeout) => {}
        }
    }
}

/// Pipelined replication to a follower in sync. Returns the state to resume
/// one-at-a-time replication with after any failure, or `None` when this
/// leadership is over.
async fn pipeline(
    r: &mut Replication,
    mut next_index: u64,
    mut matched: u64,
    mut sent_commit: u64,
) -> Option<(u64, u64, u64)> {
    let opened = r.transport.append_entries_pipeline(r.peer.address.clone()).await;
    let mut pipe = match opened {
        Ok(pipe) => pipe,
        Err(TransportError::PipelineUnsupported) => {
            spawn_pipeline(r.transport.clone(), r.peer.address.clone(), r.max_inflight)
        }
        Err(_) => return Some((next_index, matched, sent_commit)),
    };
    // What is in flight, oldest first: (prev index, entry count, sent at, deadline).
    let mut inflight: VecDeque<(u64, u64, Instant, Instant)> = VecDeque::new();
    // Set when `commit_timeout` passes without a request: the next one goes
    // even if it carries nothing new, so a follower that restarted (and
    // lost the commit index it had not stored) learns it again.
    let mut idle = false;
    loop {
        let last = *r.last_index.borrow_and_update();
        let commit = *r.commit_index.borrow_and_update();
        let room = inflight.len() < r.max_inflight;
        if room && (next_index <= last || ((commit > sent_commit || idle) && inflight.is_empty())) {
            idle = false;
            let Some(request) = r.request(next_index, last, commit).await else { break };
            let (prev, count) = (request.prev_log_index, request.entries.len() as u64);
            let bytes = request.entries.iter().map(crate::Log::payload_size).sum();
            let sent = Instant::now();
            if pipe.requests.send(request).await.is_err() {
                break;
            }
            inflight.push_back((prev, count, sent, sent + r.append_deadline(bytes)));
            next_index += count;
            sent_commit = commit;
            continue;
        }
        // Answers come in order: a call that outlives its deadline holds
        // every later one, so give up on the pipeline then.
        let oldest_deadline = inflight.front().map(|entry| entry.3);
        tokio::select! {
            biased;
            () = sleep_until_some(oldest_deadline) => {
                tracing::debug!(peer = %r.peer.id, "a pipelined AppendEntries outlived its deadline");
                break;
            }
            response = pipe.responses.recv() => {
                let Some(Ok(response)) = response else { break };
                let Some((prev, count, sent, _)) = inflight.pop_front() else { break };
                match r.judge(prev, count, &response, sent) {
                    Outcome::Matched(index) => {
                        if index > matched {
                            matched = index;
                            r.report(Event::Progress { peer: r.peer.id.clone(), term: r.term, match_index: index }).await;
                        }
                    }
                    Outcome::HigherTerm(term) => {
                        r.report(Event::HigherTerm { term }).await;
                        return None;
                    }
                    _ => break,
                }
            }
            changed = r.last_index.changed() => if changed.is_err() { return None },
            changed = r.commit_index.changed() => if changed.is_err() { return None },
            () = tokio::time::sleep(r.commit_timeout) => idle = true,
        }
    }
    // Resume after what was sent, not after what was acknowledged: a lost
    // reply does not mean a lost request, and the consistency check of the
    // next request tells whether the follower has them. Going back to the
    // last acknowledged entry would find it compacted after a snapshot and
    // send a snapshot the follower does not need.
    Some((next_index, matched, 0))
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
