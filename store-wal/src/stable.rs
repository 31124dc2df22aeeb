//! The stable store: every key and value in one small file, `stable`,
//! replaced whole on each write (written as `stable.tmp`, synced, renamed
//! over the old one, directory synced). It changes only when the node's
//! term or vote does, so a rewrite per change costs little.
//!
//! Besides the values it records the newest segment the store has made, so
//! that a lost newest segment (or a store whose segments are all gone) is
//! told from a shorter log. It is written when the store is created, before
//! its first segment, so that segments without it are damage too.

use raft_core::StoreError;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"RKWALSTB";
pub(crate) const FILE: &str = "stable";
const TEMP: &str = "stable.tmp";
/// The stable file's own format version: 3 adds the newest segment's number.
/// Version 2 (the segments' version, which the file shared until then) is
/// still read; its newest segment is unknown (0).
pub(crate) const STABLE_VERSION: u16 = 3;
const STABLE_VERSION_OLD: u16 = 2;

/// The stable values, and the file they are kept in.
#[derive(Debug)]
pub(crate) struct StableFile {
    dir: PathBuf,
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The newest segment the store made (0: none yet, or a version-2 file).
    newest_segment: u64,
    /// Whether the file was there when the store was opened.
    existed: bool,
}

impl StableFile {
    /// Reads `dir/stable`; none is an empty stable store, which
    /// [`existed`](Self::existed) tells the opener about.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FILE);
        let (values, newest_segment, existed) = match std::fs::read(&path) {
            Ok(data) => {
                let (values, newest) = decode(&data)
                    .map_err(|reason| StoreError::Corrupt { location: path.display().to_string(), reason })?;
                (values, newest, true)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), 0, false),
            Err(error) => return Err(error.into()),
        };
        Ok(Self { dir: dir.to_path_buf(), values, newest_segment, existed })
    }

    /// The file's path, for errors.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Whether the file was there when the store was opened.
    pub(crate) fn existed(&self) -> bool {
        self.existed
    }

    /// Whether it holds any value.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The newest segment the store made, as recorded (0 for none or unknown).
    pub(crate) fn newest_segment(&self) -> u64 {
        self.newest_segment
    }

    /// Writes the file for a store being created, before its first segment.
    pub(crate) fn create(&mut self) -> Result<(), StoreError> {
        self.write()?;
        self.existed = true;
        Ok(())
    }

    /// Records that segment `seq` exists; on failure nothing changes.
    pub(crate) fn set_newest_segment(&mut self, seq: u64) -> Result<(), StoreError> {
        let old = std::mem::replace(&mut self.newest_segment, seq);
        if let Err(error) = self.write() {
            self.newest_segment = old;
            return Err(error);
        }
        Ok(())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.values.get(key).cloned()
    }

    /// Sets `key` and replaces the file; on failure nothing changes.
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let old = self.values.insert(key.to_vec(), value.to_vec());
        if let Err(error) = self.write() {
            match old {
                Some(old) => self.values.insert(key.to_vec(), old),
                None => self.values.remove(key),
            };
            return Err(error);
        }
        Ok(())
    }

    fn write(&self) -> Result<(), StoreError> {
        let temp = self.dir.join(TEMP);
        let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(&temp)?;
        file.write_all(&encode(&self.values, self.newest_segment))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, self.dir.join(FILE))?;
        crate::segment::sync_dir(&self.dir)?;
        Ok(())
    }
}

type Values = BTreeMap<Vec<u8>, Vec<u8>>;

fn encode(values: &Values, newest_segment: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + values.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&STABLE_VERSION.to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for (key, value) in values {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&newest_segment.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The values and the newest segment (0 in a version-2 file).
fn decode(data: &[u8]) -> Result<(Values, u64), String> {
    if data.is_empty() {
        return Err("the file is empty".into());
    }
    if data.len() < 18 || &data[..8] != MAGIC {
        return Err("not a raft-kit WAL stable file".into());
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap_or([0; 4])) {
        return Err("the file fails its checksum".into());
    }
    let version = u16::from_le_bytes([body[8], body[9]]);
    if version != STABLE_VERSION && version != STABLE_VERSION_OLD {
        return Err(format!(
            "format version {version} is not supported (expected {STABLE_VERSION} or {STABLE_VERSION_OLD})"
        ));
    }
    let mut at = 14;
    let count = u32::from_le_bytes(body[10..14].try_into().unwrap_or([0; 4]));
    let field = |at: &mut usize| -> Result<Vec<u8>, String> {
        let len = body.get(*at..*at + 4).ok_or("truncated")?;
        let len = u32::from_le_bytes(len.try_into().unwrap_or([0; 4])) as usize;
        let bytes = body.get(*at + 4..*at + 4 + len).ok_or("truncated")?;
        *at += 4 + len;
        Ok(bytes.to_vec())
    };
    let mut values = BTreeMap::new();
    for _ in 0..count {
        let key = field(&mut at)?;
        let value = field(&mut at)?;
        values.insert(key, value);
    }
    let mut newest_segment = 0;
    if version == STABLE_VERSION {
        let bytes = body.get(at..at + 8).ok_or("truncated")?;
        newest_segment = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
        at += 8;
    }
    if at != body.len() {
        return Err("bytes after the last value".into());
    }
    Ok((values, newest_segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_damage_is_refused() {
        let mut values = BTreeMap::new();
        values.insert(b"CurrentTerm".to_vec(), 7u64.to_be_bytes().to_vec());
        values.insert(b"LastVoteCand".to_vec(), b"node-2".to_vec());
        let bytes = encode(&values, 9);
        assert_eq!(decode(&bytes), Ok((values.clone(), 9)));
        assert!(decode(&[]).is_err());
        for n in [0, 9, 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[n] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {n}");
        }
        assert!(decode(&bytes[..bytes.len() - 5]).is_err());
    }

    /// A version-2 file (the layout before the newest segment was recorded)
    /// still reads, with the newest segment unknown.
    #[test]
    fn a_version_2_file_reads_without_a_newest_segment() {
        let mut values = BTreeMap::new();
        values.insert(b"CurrentTerm".to_vec(), 7u64.to_be_bytes().to_vec());
        let mut old = encode(&values, 0);
        old.truncate(old.len() - 12);
        old[8..10].copy_from_slice(&STABLE_VERSION_OLD.to_le_bytes());
        let crc = crc32fast::hash(&old);
        old.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&old), Ok((values, 0)));
        let mut newer = old[..old.len() - 4].to_vec();
        newer[8] = 4;
        let crc = crc32fast::hash(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert!(decode(&newer).expect_err("version 4").contains("version 4"));
    }
}
