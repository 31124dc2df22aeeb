//! The stable store: every key and value in one small file, `stable`,
//! replaced whole on each write (written as `stable.tmp`, synced, renamed
//! over the old one, directory synced). It changes only when the node's
//! term or vote does, so a rewrite per change costs little.

use raft_core::StoreError;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"RKWALSTB";
pub(crate) const FILE: &str = "stable";
const TEMP: &str = "stable.tmp";

/// The stable values, and the file they are kept in.
#[derive(Debug)]
pub(crate) struct StableFile {
    dir: PathBuf,
    values: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl StableFile {
    /// Reads `dir/stable`; none is an empty store.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FILE);
        let values = match std::fs::read(&path) {
            Ok(data) => decode(&data)
                .map_err(|reason| StoreError::Corrupt { location: path.display().to_string(), reason })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => return Err(error.into()),
        };
        Ok(Self { dir: dir.to_path_buf(), values })
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
        file.write_all(&encode(&self.values))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, self.dir.join(FILE))?;
        crate::segment::sync_dir(&self.dir)?;
        Ok(())
    }
}

fn encode(values: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + values.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crate::segment::FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for (key, value) in values {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(data: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
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
    if version != crate::segment::FORMAT_VERSION {
        return Err(format!(
            "format version {version} is not supported (expected {})",
            crate::segment::FORMAT_VERSION
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
    if at != body.len() {
        return Err("bytes after the last value".into());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_damage_is_refused() {
        let mut values = BTreeMap::new();
        values.insert(b"CurrentTerm".to_vec(), 7u64.to_be_bytes().to_vec());
        values.insert(b"LastVoteCand".to_vec(), b"node-2".to_vec());
        let bytes = encode(&values);
        assert_eq!(decode(&bytes), Ok(values));
        assert!(decode(&[]).is_err());
        for n in [0, 9, 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[n] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {n}");
        }
        assert!(decode(&bytes[..bytes.len() - 5]).is_err());
    }
}
