//! The leader's side of the driver: what to send each follower and when,
//! what its answers mean, when entries commit, and when to step down.

use super::{Action, Driver, Request};
use crate::protocol::election::next_index_after_conflict;
use crate::protocol::leader::{Leadership, quorum_contact_age};
use crate::state::RaftState;
use crate::{AppendEntriesResponse, InstallSnapshotResponse, Log, LogKind, ServerId};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// What a leader knows of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// The next entry to send.
    next: u64,
    /// A request is out and not yet answered (one at a time).
    waiting: bool,
    /// The newest time a request that the follower answered was sent.
    contact: Option<Instant>,
}

impl Driver {
    /// Wins an election: a no-op of the new term, then replication.
    pub(super) fn become_leader(&mut self, now: Instant) {
        self.set_role(RaftState::Leader);
        self.core.leader = Some((self.core.id.clone(), self.settings.addr.clone()));
        let start_index = self.core.last_index + 1;
        let voters = self.core.configurations.latest.voters().map(|s| s.id.clone());
        self.core.leadership = Some(Leadership::begin(voters, self.core.commit_index, start_index));
        let me = self.core.id.clone();
        self.peers = self
            .core
            .configurations
            .latest
            .servers
            .iter()
            .filter(|server| server.id != me)
            .map(|server| (server.id.clone(), Peer { next: start_index, waiting: false, contact: Some(now) }))
            .collect();
        let noop = Log {
            index: start_index,
            term: self.core.current_term,
            kind: LogKind::Noop,
            data: Bytes::new(),
            extensions: Bytes::new(),
        };
        self.append(vec![noop]);
        self.send_all(now);
    }

    pub(super) fn end_leadership(&mut self) {
        self.core.leadership = None;
        self.peers.clear();
        if self.core.leader.as_ref().is_some_and(|(id, _)| id == &self.core.id) {
            self.core.leader = None;
        }
    }

    pub(super) fn propose(&mut self, now: Instant, data: Bytes) {
        if self.core.role != RaftState::Leader {
            return;
        }
        let index = self.core.last_index + 1;
        self.append(vec![Log::command(index, self.core.current_term, data)]);
        self.send_all(now);
    }

    pub(super) fn on_durable(&mut self, last_index: u64) {
        let me = self.core.id.clone();
        let commit = self.core.leadership.as_mut().and_then(|l| l.own_durable(&me, last_index));
        if let Some(commit) = commit {
            self.commit_to(commit);
        }
    }

    /// Heartbeats (and retries) when due; steps down without a quorum's
    /// answers within the lease.
    pub(super) fn leader_tick(&mut self, now: Instant) {
        let since = |peer: Option<&Peer>| {
            peer.and_then(|p| p.contact).map_or(Duration::MAX, |at| now.saturating_duration_since(at))
        };
        let age = quorum_contact_age(&self.core.voters, &self.core.id, |id| since(self.peers.get(id)));
        if age.is_none_or(|age| age > self.settings.leader_lease) {
            return self.step_down(now, self.core.current_term);
        }
        if now < self.next_heartbeat {
            return;
        }
        self.next_heartbeat = now + self.settings.heartbeat_interval;
        for peer in self.peers.values_mut() {
            // Heartbeats go whatever is out: an answer lost costs one interval.
            peer.waiting = false;
        }
        self.send_all(now);
    }

    fn send_all(&mut self, now: Instant) {
        let ids: Vec<ServerId> = self.peers.keys().cloned().collect();
        for id in ids {
            self.send_to(now, id);
        }
    }

    /// Sends `id` what it needs next, unless a request to it is out.
    fn send_to(&mut self, _now: Instant, id: ServerId) {
        let term = self.core.current_term;
        let (last_index, commit) = (self.core.last_index, self.core.commit_index);
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if peer.waiting {
            return;
        }
        peer.waiting = true;
        let prev_index = peer.next - 1;
        let request = match self.core.log_ids.term_at(prev_index) {
            Some(prev_term) if prev_index >= self.core.snapshot_index => {
                let last = last_index.min(peer.next.saturating_add(self.settings.max_append_entries - 1));
                Request::Append { term, prev_index, prev_term, first: peer.next, last, commit }
            }
            _ => Request::Snapshot { term },
        };
        self.actions.push(Action::Send { to: id, request });
    }

    pub(super) fn on_append_answer(
        &mut self,
        now: Instant,
        id: ServerId,
        prev_index: u64,
        count: u64,
        sent: Instant,
        response: AppendEntriesResponse,
    ) {
        if !self.answered(now, &id, response.term, sent) {
            return;
        }
        let ours = self.core.last_index + 1;
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let mut matched = None;
        if response.success {
            peer.next = peer.next.max(prev_index + count + 1);
            matched = Some(prev_index + count);
        } else if response.no_retry_backoff {
            // Retried at the next heartbeat.
            peer.waiting = true;
            return;
        } else if response.conflict_index > prev_index + 1 {
            // The follower's snapshot ends past what we sent.
            peer.next = response.conflict_index.min(response.last_log + 1).min(ours).max(1);
        } else {
            peer.next = next_index_after_conflict(prev_index + 1, response.conflict_index)
                .min(response.last_log + 1)
                .max(1);
        }
        let more = peer.next <= self.core.last_index || !response.success;
        if let Some(matched) = matched {
            self.record_match(&id, matched);
        }
        if more {
            self.send_to(now, id);
        }
    }

    pub(super) fn on_snapshot_answer(
        &mut self,
        now: Instant,
        id: ServerId,
        index: u64,
        sent: Instant,
        response: InstallSnapshotResponse,
    ) {
        if !self.answered(now, &id, response.term, sent) {
            return;
        }
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if !response.success {
            peer.waiting = true;
            return;
        }
        peer.next = peer.next.max(index + 1);
        // A follower that took the snapshot yet would need another (a newer
        // one was taken meanwhile) waits for the next heartbeat: snapshots
        // are never sent back to back.
        let again = peer.next <= self.core.snapshot_index;
        self.record_match(&id, index);
        if !again {
            self.send_to(now, id);
        }
    }

    /// Takes an answer from `id` given at `term` to a request sent at
    /// `sent`: steps down for a newer term; otherwise, if this node still
    /// leads that term, the follower is no longer waited on and was alive
    /// then. Whether to go on with the answer.
    fn answered(&mut self, now: Instant, id: &ServerId, term: u64, sent: Instant) -> bool {
        if term > self.core.current_term {
            self.step_down(now, term);
            return false;
        }
        if self.core.role != RaftState::Leader || term < self.core.current_term {
            return false;
        }
        let Some(peer) = self.peers.get_mut(id) else { return false };
        peer.waiting = false;
        peer.contact = peer.contact.max(Some(sent));
        true
    }

    /// `id` holds the log through `index`: commits what a quorum holds.
    fn record_match(&mut self, id: &ServerId, index: u64) {
        let commit = self.core.leadership.as_mut().and_then(|l| l.progress(id, index));
        if let Some(commit) = commit {
            self.commit_to(commit);
        }
    }

    /// A request to `id` was lost: the next heartbeat retries it.
    pub(super) fn on_lost(&mut self, id: ServerId) {
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.waiting = true;
        }
    }
}
