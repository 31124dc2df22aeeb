//! The replicated state: keys and values, the HTTP address of every node
//! (so a follower can point clients at the leader), and the request ids of
//! recent writes (so a retried write applies once).

use raft_kit::{Fsm, FsmError, FsmSnapshot, Log, SnapshotReader};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, RwLock};

/// How many request ids the state remembers; a retry older than this many
/// later writes applies again.
pub const DEDUP_WINDOW: usize = 100_000;

/// A command in the log (JSON-encoded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value.
        #[serde(with = "bytes_b64")]
        value: Vec<u8>,
        /// The client's request id, if it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
        /// The client's request id, if it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// Records the HTTP address a node serves on.
    Register {
        /// The node's id.
        id: String,
        /// Its HTTP address.
        http_addr: String,
    },
}

impl Command {
    /// The command as log bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a command always encodes")
    }
}

/// What applying a command gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The index the write took effect at: its own, or, for a retried
    /// request id, the index of its first application.
    pub index: u64,
    /// Whether the command was a retry already applied.
    pub duplicate: bool,
    /// Whether its request id was first used for another request (another
    /// operation, key or value): nothing was applied, and the client reused
    /// an id it should not have.
    pub mismatch: bool,
}

impl Command {
    /// A digest of what a write asks for (operation, key and value), kept with
    /// its request id; `None` for commands that carry no request id.
    pub fn digest(&self) -> Option<String> {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        match self {
            Command::Put { key, value, .. } => {
                hash.update(b"put\0");
                hash.update((key.len() as u64).to_le_bytes());
                hash.update(key.as_bytes());
                hash.update(value);
            }
            Command::Delete { key, .. } => {
                hash.update(b"delete\0");
                hash.update(key.as_bytes());
            }
            Command::Register { .. } => return None,
        }
        let digest = hash.finalize();
        Some(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// The state every node holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The keys and values.
    #[serde(with = "map_b64")]
    pub kv: BTreeMap<String, Vec<u8>>,
    /// Node id → HTTP address.
    pub http_addrs: BTreeMap<String, String>,
    /// Request id → index of its application, oldest first in `dedup_order`.
    dedup: HashMap<String, u64>,
    dedup_order: VecDeque<String>,
    /// Request id → digest of the request it was first used for (hex), so
    /// that the same id on another request is told apart from a retry.
    #[serde(default)]
    dedup_digest: HashMap<String, String>,
    /// The index of the last command applied.
    pub applied: u64,
}

impl State {
    fn apply(&mut self, index: u64, command: Command) -> Applied {
        self.applied = index;
        let request_id = match &command {
            Command::Put { request_id, .. } | Command::Delete { request_id, .. } => request_id.clone(),
            Command::Register { .. } => None,
        };
        let digest = request_id.as_ref().and_then(|_| command.digest());
        if let Some(id) = &request_id
            && let Some(&first) = self.dedup.get(id)
        {
            // A state from before digests were kept has none: take it as a retry.
            let mismatch = self.dedup_digest.get(id).is_some_and(|kept| Some(kept) != digest.as_ref());
            return Applied { index: first, duplicate: true, mismatch };
        }
        match command {
            Command::Put { key, value, .. } => {
                self.kv.insert(key, value);
            }
            Command::Delete { key, .. } => {
                self.kv.remove(&key);
            }
            Command::Register { id, http_addr } => {
                self.http_addrs.insert(id, http_addr);
            }
        }
        if let Some(id) = request_id {
            self.dedup.insert(id.clone(), index);
            if let Some(digest) = digest {
                self.dedup_digest.insert(id.clone(), digest);
            }
            self.dedup_order.push_back(id);
            while self.dedup_order.len() > DEDUP_WINDOW {
                if let Some(old) = self.dedup_order.pop_front() {
                    self.dedup.remove(&old);
                    self.dedup_digest.remove(&old);
                }
            }
        }
        Applied { index, duplicate: false, mismatch: false }
    }
}

/// The state machine: applies commands to a [`State`] it shares with the
/// HTTP handlers.
#[derive(Clone, Debug, Default)]
pub struct KvFsm {
    /// The state, read by the HTTP handlers.
    pub state: Arc<RwLock<State>>,
}

impl KvFsm {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the state.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Fsm for KvFsm {
    type Response = Applied;

    fn apply(&mut self, log: &Log) -> Applied {
        let mut state = self.write();
        match serde_json::from_slice::<Command>(&log.data) {
            Ok(command) => state.apply(log.index, command),
            Err(error) => {
                // Only this service writes the log; a command it cannot read
                // is a bug or another program's log: skip it, loudly.
                tracing::error!(index = log.index, %error, "skipping a command that does not decode");
                state.applied = log.index;
                Applied { index: log.index, duplicate: false, mismatch: false }
            }
        }
    }

    fn snapshot(&mut self) -> Result<Box<dyn FsmSnapshot>, FsmError> {
        let bytes = serde_json::to_vec(&*self.read()).map_err(|e| FsmError::new(e.to_string()))?;
        Ok(Box::new(JsonSnapshot(bytes)))
    }

    fn restore(&mut self, mut snapshot: SnapshotReader) -> Result<(), FsmError> {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut snapshot, &mut bytes).map_err(|e| FsmError::new(e.to_string()))?;
        let restored: State =
            serde_json::from_slice(&bytes).map_err(|e| FsmError::new(format!("snapshot: {e}")))?;
        *self.write() = restored;
        Ok(())
    }

    fn never_blocks(&self) -> bool {
        true
    }
}

struct JsonSnapshot(Vec<u8>);

impl FsmSnapshot for JsonSnapshot {
    fn persist(&mut self, sink: &mut dyn Write) -> Result<(), FsmError> {
        sink.write_all(&self.0).map_err(|e| FsmError::new(e.to_string()))
    }
}

/// Values as base64 in JSON (commands and snapshots), so any bytes survive.
mod bytes_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::b64::encode(value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::b64::decode(&text).ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }
}

mod map_b64 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub(super) fn serialize<S: Serializer>(map: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        let encoded: BTreeMap<&String, String> =
            map.iter().map(|(k, v)| (k, super::b64::encode(v))).collect();
        encoded.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let encoded = BTreeMap::<String, String>::deserialize(d)?;
        encoded
            .into_iter()
            .map(|(k, v)| {
                super::b64::decode(&v)
                    .map(|v| (k, v))
                    .ok_or_else(|| serde::de::Error::custom("invalid base64"))
            })
            .collect()
    }
}

/// Standard base64 with padding (small enough not to need a crate).
pub(crate) mod b64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(crate) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = (u32::from(chunk[0]) << 16)
                | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                | u32::from(*chunk.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
        let bytes = text.as_bytes();
        if !bytes.len().is_multiple_of(4) {
            return None;
        }
        let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
        for chunk in bytes.chunks(4) {
            let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
            if pad > 2 {
                return None;
            }
            let mut n = 0u32;
            for (i, &b) in chunk.iter().enumerate() {
                let v = if i >= 4 - pad { 0 } else { ALPHABET.iter().position(|&a| a == b)? as u32 };
                n = (n << 6) | v;
            }
            out.push((n >> 16) as u8);
            if pad < 2 {
                out.push((n >> 8) as u8);
            }
            if pad < 1 {
                out.push(n as u8);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_kit::Log;

    fn log(index: u64, command: &Command) -> Log {
        Log::command(index, 1, command.encode())
    }

    fn put(key: &str, value: &[u8], request_id: Option<&str>) -> Command {
        Command::Put { key: key.into(), value: value.to_vec(), request_id: request_id.map(Into::into) }
    }

    #[test]
    fn a_retried_request_id_applies_once() {
        let mut fsm = KvFsm::default();
        let fresh = |index| Applied { index, duplicate: false, mismatch: false };
        assert_eq!(fsm.apply(&log(1, &put("a", b"1", Some("r1")))), fresh(1));
        assert_eq!(fsm.apply(&log(2, &put("a", b"2", None))), fresh(2));
        // The retry of r1 must not set "a" back to 1.
        let retry = Applied { index: 1, duplicate: true, mismatch: false };
        assert_eq!(fsm.apply(&log(3, &put("a", b"1", Some("r1")))), retry);
        assert_eq!(fsm.read().kv["a"], b"2");
        assert_eq!(fsm.read().applied, 3);
    }

    #[test]
    fn a_request_id_reused_for_another_request_is_a_mismatch_and_applies_nothing() {
        let mut fsm = KvFsm::default();
        fsm.apply(&log(1, &put("a", b"1", Some("r1"))));
        let reused = Applied { index: 1, duplicate: true, mismatch: true };
        assert_eq!(fsm.apply(&log(2, &put("a", b"other", Some("r1")))), reused, "another value");
        assert_eq!(fsm.apply(&log(3, &put("b", b"1", Some("r1")))), reused, "another key");
        let delete = Command::Delete { key: "a".into(), request_id: Some("r1".into()) };
        assert_eq!(fsm.apply(&log(4, &delete)), reused, "another operation");
        assert_eq!(fsm.read().kv["a"], b"1");
        assert!(!fsm.read().kv.contains_key("b"));
        // Digests survive a snapshot.
        let mut bytes = Vec::new();
        fsm.snapshot().expect("snapshot").persist(&mut bytes).expect("persist");
        let mut other = KvFsm::default();
        other.restore(Box::new(std::io::Cursor::new(bytes))).expect("restore");
        assert!(other.apply(&log(5, &put("a", b"2", Some("r1")))).mismatch);
        assert!(!other.apply(&log(6, &put("a", b"1", Some("r1")))).mismatch);
    }

    #[test]
    fn snapshot_and_restore_keep_keys_addresses_and_request_ids() {
        let mut fsm = KvFsm::default();
        fsm.apply(&log(1, &put("bin", &[0, 255, 10, 13], Some("r1"))));
        fsm.apply(&log(2, &Command::Register { id: "n1".into(), http_addr: "127.0.0.1:1".into() }));
        fsm.apply(&log(3, &Command::Delete { key: "gone".into(), request_id: None }));
        let mut bytes = Vec::new();
        fsm.snapshot().expect("snapshot").persist(&mut bytes).expect("persist");
        let mut other = KvFsm::default();
        other.restore(Box::new(std::io::Cursor::new(bytes))).expect("restore");
        assert_eq!(other.read().kv["bin"], vec![0, 255, 10, 13]);
        assert_eq!(other.read().http_addrs["n1"], "127.0.0.1:1");
        assert_eq!(other.read().applied, 3);
        assert!(
            other.apply(&log(4, &put("bin", b"x", Some("r1")))).duplicate,
            "request ids survive a restore"
        );
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_and_changes_nothing() {
        let mut fsm = KvFsm::default();
        fsm.apply(&log(1, &put("a", b"1", None)));
        assert!(fsm.restore(Box::new(std::io::Cursor::new(b"{not json".to_vec()))).is_err());
        assert_eq!(fsm.read().kv["a"], b"1");
    }

    #[test]
    fn the_dedup_window_is_bounded() {
        let mut state = State::default();
        for i in 0..(DEDUP_WINDOW as u64 + 10) {
            state.apply(i + 1, put("k", b"v", Some(&format!("r{i}"))));
        }
        assert_eq!(state.dedup.len(), DEDUP_WINDOW);
        assert_eq!(state.dedup_digest.len(), DEDUP_WINDOW);
        assert!(!state.dedup.contains_key("r0"));
    }

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..20 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            assert_eq!(b64::decode(&b64::encode(&bytes)).as_deref(), Some(&bytes[..]));
        }
        assert_eq!(b64::encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64::decode("Zg=="), Some(b"f".to_vec()));
        assert_eq!(b64::decode("Zg="), None);
    }
}
