//! The simulated workload's state machine: a key-value map with put, delete
//! and append (an append adds a unique token, so a lost or duplicated write
//! shows in the value), whose state the clients read at linearizable points.
//! Every apply and restore is reported to the [`Recorder`].

use crate::invariants::Recorder;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft_core::{Fsm, FsmError, FsmSnapshot, Log, SnapshotReader};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// A write a client sends through `Raft::apply`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Sets the key's value.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Adds `token` at the end of the key's value.
    Append {
        /// The key.
        key: String,
        /// A token no other write carries.
        token: String,
    },
    /// Removes the key.
    Delete {
        /// The key.
        key: String,
    },
}

impl Command {
    /// The bytes replicated for the command.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        let (tag, key, value) = match self {
            Command::Put { key, value } => (1, key, value.as_str()),
            Command::Append { key, token } => (2, key, token.as_str()),
            Command::Delete { key } => (3, key, ""),
        };
        buf.put_u8(tag);
        buf.put_u16_le(key.len() as u16);
        buf.put_slice(key.as_bytes());
        buf.put_slice(value.as_bytes());
        buf.freeze()
    }

    /// The command those bytes encode, if they encode one.
    pub fn decode(mut bytes: Bytes) -> Option<Self> {
        if bytes.remaining() < 3 {
            return None;
        }
        let tag = bytes.get_u8();
        let len = bytes.get_u16_le() as usize;
        if bytes.remaining() < len {
            return None;
        }
        let key = String::from_utf8(bytes.split_to(len).to_vec()).ok()?;
        let value = String::from_utf8(bytes.to_vec()).ok()?;
        match tag {
            1 => Some(Command::Put { key, value }),
            2 => Some(Command::Append { key, token: value }),
            3 => Some(Command::Delete { key }),
            _ => None,
        }
    }

    /// The key the command writes.
    pub fn key(&self) -> &str {
        match self {
            Command::Put { key, .. } | Command::Append { key, .. } | Command::Delete { key } => key,
        }
    }
}

/// The map, and the index of the last entry applied to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvState {
    /// Keys and values.
    pub map: BTreeMap<String, String>,
    /// The last log index applied (or restored from a snapshot).
    pub applied: u64,
}

/// A node's map, shared between its FSM and the clients that read it.
pub type SharedState = Arc<Mutex<KvState>>;

/// Locks a shared map.
pub fn lock(state: &SharedState) -> MutexGuard<'_, KvState> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bugs the simulator must catch, planted on purpose by the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// The FSM silently drops the write of every entry whose index is a
    /// multiple of 23 (on every node alike, so the nodes agree).
    pub fsm_drops_writes: bool,
    /// Clients read the leader's local state without `read_index`.
    pub stale_reads: bool,
    /// A restarted node's log store has lost the last batch it stored.
    pub store_loses_last_batch: bool,
}

/// The key-value FSM of one node incarnation.
pub struct KvFsm {
    node: usize,
    incarnation: u64,
    state: SharedState,
    recorder: Arc<Recorder>,
    drops_writes: bool,
}

impl KvFsm {
    /// The FSM of `node` in its `incarnation`, holding `state`.
    pub fn new(
        node: usize,
        incarnation: u64,
        state: SharedState,
        recorder: Arc<Recorder>,
        bugs: PlantedBugs,
    ) -> Self {
        Self { node, incarnation, state, recorder, drops_writes: bugs.fsm_drops_writes }
    }
}

impl Fsm for KvFsm {
    type Response = ();

    fn apply(&mut self, log: &Log) {
        self.recorder.applied(self.node, self.incarnation, log);
        let mut state = lock(&self.state);
        state.applied = log.index;
        if self.drops_writes && log.index.is_multiple_of(23) {
            return;
        }
        match Command::decode(log.data.clone()) {
            Some(Command::Put { key, value }) => {
                state.map.insert(key, value);
            }
            Some(Command::Append { key, token }) => state.map.entry(key).or_default().push_str(&token),
            Some(Command::Delete { key }) => {
                state.map.remove(&key);
            }
            None => {}
        }
    }

    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
        Ok(Box::new(KvSnapshot(lock(&self.state).clone())))
    }

    fn restore(&mut self, mut snapshot: SnapshotReader) -> Result<(), FsmError> {
        let mut bytes = Vec::new();
        snapshot.read_to_end(&mut bytes)?;
        let mut restored =
            decode_state(Bytes::from(bytes)).ok_or_else(|| FsmError::new("undecodable KV snapshot"))?;
        let mut state = lock(&self.state);
        if restored.applied == BACKUP {
            // A user's backup, restored where its entries commit: the map
            // is the backup's, the applied index stays this node's own.
            restored.applied = state.applied;
        } else {
            self.recorder.restored(self.node, self.incarnation, restored.applied);
        }
        *state = restored;
        Ok(())
    }

    fn never_blocks(&self) -> bool {
        true
    }
}

struct KvSnapshot(KvState);

impl FsmSnapshot for KvSnapshot {
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError> {
        sink.write_all(&encode_state(&self.0))?;
        Ok(())
    }
}

/// The applied index a user's backup carries: it stands at no index of its
/// own (a snapshot taken at index 0 holds no command, so none is taken).
pub const BACKUP: u64 = u64::MAX;

/// A map as a snapshot (or a user's backup) holds it.
pub fn encode_state(state: &KvState) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_u64_le(state.applied);
    buf.put_u32_le(state.map.len() as u32);
    for (key, value) in &state.map {
        buf.put_u32_le(key.len() as u32);
        buf.put_slice(key.as_bytes());
        buf.put_u32_le(value.len() as u32);
        buf.put_slice(value.as_bytes());
    }
    buf.to_vec()
}

fn decode_state(mut bytes: Bytes) -> Option<KvState> {
    if bytes.remaining() < 12 {
        return None;
    }
    let applied = bytes.get_u64_le();
    let count = bytes.get_u32_le();
    let mut map = BTreeMap::new();
    for _ in 0..count {
        let mut field = || {
            if bytes.remaining() < 4 {
                return None;
            }
            let len = bytes.get_u32_le() as usize;
            if bytes.remaining() < len {
                return None;
            }
            String::from_utf8(bytes.split_to(len).to_vec()).ok()
        };
        let key = field()?;
        let value = field()?;
        map.insert(key, value);
    }
    Some(KvState { map, applied })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_states_round_trip() {
        for command in [
            Command::Put { key: "k".into(), value: "v".into() },
            Command::Append { key: "key 2".into(), token: "c1-7;".into() },
            Command::Delete { key: "".into() },
        ] {
            assert_eq!(Command::decode(command.encode()), Some(command.clone()));
        }
        let mut state = KvState { applied: 42, ..KvState::default() };
        state.map.insert("a".into(), "1".into());
        state.map.insert("b".into(), String::new());
        assert_eq!(decode_state(Bytes::from(encode_state(&state))), Some(state));
        assert_eq!(Command::decode(Bytes::from_static(b"\x09\x00\x00")), None);
    }
}
