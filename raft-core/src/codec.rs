//! The one encoding of every byte that crosses a disk or a wire.
//!
//! The layout is versioned and written down in `docs/codec.md`. In short: all
//! integers are fixed-width little-endian; strings and byte strings are a `u32`
//! length followed by that many bytes; a message starts with a format version
//! byte and a tag byte naming its type.
//!
//! Decoding is total. Any input yields a value or a [`DecodeError`]; it never
//! panics, and it never allocates more than the input's own length plus
//! [`DECODE_OVERHEAD_MAX`]: byte fields are zero-copy slices of the input
//! [`Bytes`], strings are copied (at most their own encoded length), and
//! lists are capped ([`ENTRIES_MAX`] entries, [`SERVERS_MAX`] servers) and
//! checked against the bytes remaining before anything is reserved, so their
//! decoded structures, larger in memory than on the wire, stay within that
//! bound.

use crate::commands::*;
use crate::{Configuration, Log, LogKind, Server, ServerAddress, ServerId, SnapshotMeta, Suffrage};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The codec format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// The most entries one AppendEntries may carry (a node sends at most
/// `Config::max_append_entries`, itself at most 1024).
pub const ENTRIES_MAX: usize = 4096;
/// The most servers one configuration may list (`Configuration::validate`
/// refuses more); defined beside `Configuration`.
pub use crate::configuration::SERVERS_MAX;
/// The most a decode allocates beyond its input's length: the capped lists'
/// decoded structures, which are larger in memory than on the wire.
pub const DECODE_OVERHEAD_MAX: usize =
    ENTRIES_MAX * std::mem::size_of::<Log>() + SERVERS_MAX * std::mem::size_of::<Server>();

/// The fewest bytes an encoded log body can take (index, term, kind, two empty lengths).
const LOG_BODY_MIN: usize = 8 + 8 + 1 + 4 + 4;
/// The fewest bytes an encoded server can take (suffrage, two empty strings).
const SERVER_MIN: usize = 1 + 4 + 4;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated input: {field} needs {needed} bytes, {remaining} remain")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// How many bytes it needs.
        needed: usize,
        /// How many were left.
        remaining: usize,
    },
    /// The format version byte is not one this code reads.
    #[error("unsupported codec format version {found} (this code reads {expected})")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
        /// The version this code reads.
        expected: u8,
    },
    /// The message tag names no message type.
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    /// The log kind byte names no [`LogKind`].
    #[error("unknown log kind {0}")]
    UnknownLogKind(u8),
    /// The suffrage byte names no [`Suffrage`].
    #[error("unknown suffrage {0}")]
    UnknownSuffrage(u8),
    /// A boolean byte was neither 0 nor 1.
    #[error("field {field} holds {value}, which is not a boolean")]
    InvalidBool {
        /// The field being read.
        field: &'static str,
        /// The byte found.
        value: u8,
    },
    /// A string field was not UTF-8.
    #[error("field {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A checksummed value's checksum does not match its bytes.
    #[error("checksum {actual:#010x} does not match the stored {expected:#010x}")]
    ChecksumMismatch {
        /// The checksum stored with the value.
        expected: u32,
        /// The checksum of the bytes read.
        actual: u32,
    },
    /// A list holds more items than any valid message does.
    #[error("{field} holds {count} items, more than the {max} allowed")]
    TooMany {
        /// The list.
        field: &'static str,
        /// How many it claims.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// Bytes were left over after a complete value.
    #[error("{count} unexpected bytes after the value")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
}

const TAG_APPEND_REQ: u8 = 1;
const TAG_APPEND_RESP: u8 = 2;
const TAG_VOTE_REQ: u8 = 3;
const TAG_VOTE_RESP: u8 = 4;
const TAG_PREVOTE_REQ: u8 = 5;
const TAG_PREVOTE_RESP: u8 = 6;
const TAG_SNAPSHOT_REQ: u8 = 7;
const TAG_SNAPSHOT_RESP: u8 = 8;
const TAG_TIMEOUT_REQ: u8 = 9;
const TAG_TIMEOUT_RESP: u8 = 10;

fn kind_tag(kind: LogKind) -> u8 {
    match kind {
        LogKind::Command => 1,
        LogKind::Noop => 2,
        LogKind::Barrier => 3,
        LogKind::Configuration => 4,
        LogKind::Restore => 5,
    }
}

fn suffrage_tag(suffrage: Suffrage) -> u8 {
    match suffrage {
        Suffrage::Voter => 1,
        Suffrage::Nonvoter => 2,
    }
}

// ---------------------------------------------------------------- encoding

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("a field is at most 4 GiB by the codec's layout");
    buf.put_u32_le(len);
    buf.put_slice(bytes);
}

fn put_bool(buf: &mut BytesMut, value: bool) {
    buf.put_u8(u8::from(value));
}

fn put_header(buf: &mut BytesMut, header: &RpcHeader) {
    buf.put_u32_le(header.protocol_version);
    put_bytes(buf, header.id.0.as_bytes());
    put_bytes(buf, header.addr.0.as_bytes());
}

fn put_log_body(buf: &mut BytesMut, log: &Log) {
    buf.put_u64_le(log.index);
    buf.put_u64_le(log.term);
    buf.put_u8(kind_tag(log.kind));
    put_bytes(buf, &log.data);
    put_bytes(buf, &log.extensions);
}

fn put_configuration(buf: &mut BytesMut, configuration: &Configuration) {
    let count = u32::try_from(configuration.servers.len()).expect("fewer than 2^32 servers");
    buf.put_u32_le(count);
    for server in &configuration.servers {
        buf.put_u8(suffrage_tag(server.suffrage));
        put_bytes(buf, server.id.0.as_bytes());
        put_bytes(buf, server.address.0.as_bytes());
    }
}

/// The exact length of [`encode_log`]'s output for `log`.
pub fn encoded_log_len(log: &Log) -> usize {
    1 + LOG_BODY_MIN + log.data.len() + log.extensions.len()
}

/// Appends a standalone log entry (version byte, then the entry) to `buf`.
///
/// # Panics
///
/// If `data` or `extensions` is 4 GiB or longer, which the layout cannot hold.
pub fn encode_log(log: &Log, buf: &mut BytesMut) {
    buf.reserve(encoded_log_len(log));
    buf.put_u8(FORMAT_VERSION);
    put_log_body(buf, log);
}

/// Appends a configuration (version byte, then the servers) to `buf`.
pub fn encode_configuration(configuration: &Configuration, buf: &mut BytesMut) {
    buf.put_u8(FORMAT_VERSION);
    put_configuration(buf, configuration);
}

/// Appends a snapshot meta (version byte, then its fields) to `buf`.
pub fn encode_snapshot_meta(meta: &SnapshotMeta, buf: &mut BytesMut) {
    buf.put_u8(FORMAT_VERSION);
    put_bytes(buf, meta.id.as_bytes());
    buf.put_u64_le(meta.index);
    buf.put_u64_le(meta.term);
    put_configuration(buf, &meta.configuration);
    buf.put_u64_le(meta.configuration_index);
    buf.put_u64_le(meta.size);
    buf.put_u32_le(meta.version);
}

/// Appends an RPC message (version byte, tag byte, body) to `buf`.
///
/// # Panics
///
/// If a byte field is 4 GiB or longer, which the layout cannot hold.
pub fn encode_message(message: &Message, buf: &mut BytesMut) {
    buf.put_u8(FORMAT_VERSION);
    match message {
        Message::AppendEntriesRequest(m) => {
            buf.put_u8(TAG_APPEND_REQ);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
            buf.put_u64_le(m.prev_log_index);
            buf.put_u64_le(m.prev_log_term);
            buf.put_u64_le(m.leader_commit);
            let count = u32::try_from(m.entries.len()).expect("fewer than 2^32 entries");
            buf.put_u32_le(count);
            for log in &m.entries {
                buf.reserve(LOG_BODY_MIN + log.data.len() + log.extensions.len());
                put_log_body(buf, log);
            }
        }
        Message::AppendEntriesResponse(m) => {
            buf.put_u8(TAG_APPEND_RESP);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
            buf.put_u64_le(m.last_log);
            put_bool(buf, m.success);
            put_bool(buf, m.no_retry_backoff);
            buf.put_u64_le(m.conflict_term);
            buf.put_u64_le(m.conflict_index);
        }
        Message::RequestVoteRequest(m) => {
            buf.put_u8(TAG_VOTE_REQ);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
            buf.put_u64_le(m.last_log_index);
            buf.put_u64_le(m.last_log_term);
            put_bool(buf, m.leadership_transfer);
        }
        Message::RequestVoteResponse(m) => {
            buf.put_u8(TAG_VOTE_RESP);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
            put_bool(buf, m.granted);
        }
        Message::PreVoteRequest(m) => {
            buf.put_u8(TAG_PREVOTE_REQ);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
            buf.put_u64_le(m.last_log_index);
            buf.put_u64_le(m.last_log_term);
        }
        Message::PreVoteResponse(m) => {
            buf.put_u8(TAG_PREVOTE_RESP);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
            put_bool(buf, m.granted);
        }
        Message::InstallSnapshotRequest(m) => {
            buf.put_u8(TAG_SNAPSHOT_REQ);
            put_header(buf, &m.header);
            buf.put_u32_le(m.snapshot_version);
            buf.put_u64_le(m.term);
            buf.put_u64_le(m.last_log_index);
            buf.put_u64_le(m.last_log_term);
            put_configuration(buf, &m.configuration);
            buf.put_u64_le(m.configuration_index);
            buf.put_u64_le(m.size);
        }
        Message::InstallSnapshotResponse(m) => {
            buf.put_u8(TAG_SNAPSHOT_RESP);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
            put_bool(buf, m.success);
        }
        Message::TimeoutNowRequest(m) => {
            buf.put_u8(TAG_TIMEOUT_REQ);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
        }
        Message::TimeoutNowResponse(m) => {
            buf.put_u8(TAG_TIMEOUT_RESP);
            put_header(buf, &m.header);
            buf.put_u64_le(m.term);
        }
    }
}

// ---------------------------------------------------------------- decoding

/// A cursor over input bytes whose reads are all bounds-checked.
struct Reader {
    input: Bytes,
}

impl Reader {
    fn need(&self, field: &'static str, needed: usize) -> Result<(), DecodeError> {
        let remaining = self.input.remaining();
        if remaining < needed {
            return Err(DecodeError::Truncated { field, needed, remaining });
        }
        Ok(())
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(field, 1)?;
        Ok(self.input.get_u8())
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(field, 4)?;
        Ok(self.input.get_u32_le())
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.need(field, 8)?;
        Ok(self.input.get_u64_le())
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::InvalidBool { field, value }),
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u32(field)? as usize;
        self.need(field, len)?;
        Ok(self.input.split_to(len))
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// Reads a count of items each at least `item_min` bytes long, refusing
    /// more than `max` and more than the remaining input could hold, so no
    /// reservation is larger than the bound.
    fn count(&mut self, field: &'static str, item_min: usize, max: usize) -> Result<usize, DecodeError> {
        let count = self.u32(field)? as usize;
        if count > max {
            return Err(DecodeError::TooMany { field, count, max });
        }
        self.need(field, count.saturating_mul(item_min))?;
        Ok(count)
    }

    fn version(&mut self) -> Result<(), DecodeError> {
        let found = self.u8("format version")?;
        if found != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { found, expected: FORMAT_VERSION });
        }
        Ok(())
    }

    fn finish(self) -> Result<(), DecodeError> {
        match self.input.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn header(&mut self) -> Result<RpcHeader, DecodeError> {
        Ok(RpcHeader {
            protocol_version: self.u32("header.protocol_version")?,
            id: ServerId(self.string("header.id")?),
            addr: ServerAddress(self.string("header.addr")?),
        })
    }

    fn log_body(&mut self) -> Result<Log, DecodeError> {
        let index = self.u64("log.index")?;
        let term = self.u64("log.term")?;
        let kind = match self.u8("log.kind")? {
            1 => LogKind::Command,
            2 => LogKind::Noop,
            3 => LogKind::Barrier,
            4 => LogKind::Configuration,
            5 => LogKind::Restore,
            other => return Err(DecodeError::UnknownLogKind(other)),
        };
        let data = self.bytes("log.data")?;
        let extensions = self.bytes("log.extensions")?;
        Ok(Log { index, term, kind, data, extensions })
    }

    fn configuration(&mut self) -> Result<Configuration, DecodeError> {
        let count = self.count("configuration.servers", SERVER_MIN, SERVERS_MAX)?;
        let mut servers = Vec::with_capacity(count);
        for _ in 0..count {
            let suffrage = match self.u8("server.suffrage")? {
                1 => Suffrage::Voter,
                2 => Suffrage::Nonvoter,
                other => return Err(DecodeError::UnknownSuffrage(other)),
            };
            let id = ServerId(self.string("server.id")?);
            let address = ServerAddress(self.string("server.address")?);
            servers.push(Server { suffrage, id, address });
        }
        Ok(Configuration { servers })
    }

    fn message(&mut self) -> Result<Message, DecodeError> {
        let tag = self.u8("message tag")?;
        let message = match tag {
            TAG_APPEND_REQ => {
                let header = self.header()?;
                let term = self.u64("term")?;
                let prev_log_index = self.u64("prev_log_index")?;
                let prev_log_term = self.u64("prev_log_term")?;
                let leader_commit = self.u64("leader_commit")?;
                let count = self.count("entries", LOG_BODY_MIN, ENTRIES_MAX)?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    entries.push(self.log_body()?);
                }
                Message::AppendEntriesRequest(AppendEntriesRequest {
                    header,
                    term,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                })
            }
            TAG_APPEND_RESP => Message::AppendEntriesResponse(AppendEntriesResponse {
                header: self.header()?,
                term: self.u64("term")?,
                last_log: self.u64("last_log")?,
                success: self.bool("success")?,
                no_retry_backoff: self.bool("no_retry_backoff")?,
                conflict_term: self.u64("conflict_term")?,
                conflict_index: self.u64("conflict_index")?,
            }),
            TAG_VOTE_REQ => Message::RequestVoteRequest(RequestVoteRequest {
                header: self.header()?,
                term: self.u64("term")?,
                last_log_index: self.u64("last_log_index")?,
                last_log_term: self.u64("last_log_term")?,
                leadership_transfer: self.bool("leadership_transfer")?,
            }),
            TAG_VOTE_RESP => Message::RequestVoteResponse(RequestVoteResponse {
                header: self.header()?,
                term: self.u64("term")?,
                granted: self.bool("granted")?,
            }),
            TAG_PREVOTE_REQ => Message::PreVoteRequest(PreVoteRequest {
                header: self.header()?,
                term: self.u64("term")?,
                last_log_index: self.u64("last_log_index")?,
                last_log_term: self.u64("last_log_term")?,
            }),
            TAG_PREVOTE_RESP => Message::PreVoteResponse(PreVoteResponse {
                header: self.header()?,
                term: self.u64("term")?,
                granted: self.bool("granted")?,
            }),
            TAG_SNAPSHOT_REQ => Message::InstallSnapshotRequest(InstallSnapshotRequest {
                header: self.header()?,
                snapshot_version: self.u32("snapshot_version")?,
                term: self.u64("term")?,
                last_log_index: self.u64("last_log_index")?,
                last_log_term: self.u64("last_log_term")?,
                configuration: self.configuration()?,
                configuration_index: self.u64("configuration_index")?,
                size: self.u64("size")?,
            }),
            TAG_SNAPSHOT_RESP => Message::InstallSnapshotResponse(InstallSnapshotResponse {
                header: self.header()?,
                term: self.u64("term")?,
                success: self.bool("success")?,
            }),
            TAG_TIMEOUT_REQ => Message::TimeoutNowRequest(TimeoutNowRequest {
                header: self.header()?,
                term: self.u64("term")?,
            }),
            TAG_TIMEOUT_RESP => Message::TimeoutNowResponse(TimeoutNowResponse {
                header: self.header()?,
                term: self.u64("term")?,
            }),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        Ok(message)
    }
}

/// Decodes one standalone log entry written by [`encode_log`]; the whole input
/// must be the entry. Byte fields share `input`'s memory.
pub fn decode_log(input: Bytes) -> Result<Log, DecodeError> {
    let mut reader = Reader { input };
    reader.version()?;
    let log = reader.log_body()?;
    reader.finish()?;
    Ok(log)
}

/// Decodes a configuration written by [`encode_configuration`].
pub fn decode_configuration(input: Bytes) -> Result<Configuration, DecodeError> {
    let mut reader = Reader { input };
    reader.version()?;
    let configuration = reader.configuration()?;
    reader.finish()?;
    Ok(configuration)
}

/// Decodes a snapshot meta written by [`encode_snapshot_meta`].
pub fn decode_snapshot_meta(input: Bytes) -> Result<SnapshotMeta, DecodeError> {
    let mut reader = Reader { input };
    reader.version()?;
    let meta = SnapshotMeta {
        id: reader.string("snapshot.id")?,
        index: reader.u64("snapshot.index")?,
        term: reader.u64("snapshot.term")?,
        configuration: reader.configuration()?,
        configuration_index: reader.u64("snapshot.configuration_index")?,
        size: reader.u64("snapshot.size")?,
        version: reader.u32("snapshot.version")?,
    };
    reader.finish()?;
    Ok(meta)
}

/// Decodes one RPC message written by [`encode_message`]; the whole input must
/// be the message. Entry payloads share `input`'s memory.
pub fn decode_message(input: Bytes) -> Result<Message, DecodeError> {
    let mut reader = Reader { input };
    reader.version()?;
    let message = reader.message()?;
    reader.finish()?;
    Ok(message)
}

/// Encodes a log entry for a store that keeps no checksums of its own:
/// a CRC32 (u32 LE) of the rest, then [`encode_log`]'s bytes.
pub fn encode_log_with_crc(log: &Log) -> Vec<u8> {
    let mut body = BytesMut::with_capacity(encoded_log_len(log));
    encode_log(log, &mut body);
    let mut value = Vec::with_capacity(4 + body.len());
    value.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    value.extend_from_slice(&body);
    value
}

/// Decodes what [`encode_log_with_crc`] wrote, checking the CRC first. The
/// entry's byte fields are copied out of `value` (stores hand out borrowed
/// pages).
pub fn decode_log_with_crc(value: &[u8]) -> Result<Log, DecodeError> {
    if value.len() < 4 {
        return Err(DecodeError::Truncated { field: "entry checksum", needed: 4, remaining: value.len() });
    }
    let (crc, body) = value.split_at(4);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32fast::hash(body);
    if expected != actual {
        return Err(DecodeError::ChecksumMismatch { expected, actual });
    }
    decode_log(Bytes::copy_from_slice(body))
}

/// Encodes a configuration into a fresh buffer, as stored in a
/// [`LogKind::Configuration`] entry's data.
pub fn configuration_to_bytes(configuration: &Configuration) -> Bytes {
    let mut buf = BytesMut::new();
    encode_configuration(configuration, &mut buf);
    buf.freeze()
}

/// Encodes a log entry into a fresh buffer.
pub fn log_to_bytes(log: &Log) -> Bytes {
    let mut buf = BytesMut::with_capacity(encoded_log_len(log));
    encode_log(log, &mut buf);
    buf.freeze()
}

/// Encodes a message into a fresh buffer.
pub fn message_to_bytes(message: &Message) -> Bytes {
    let mut buf = BytesMut::new();
    encode_message(message, &mut buf);
    buf.freeze()
}

#[cfg(test)]
mod tests;
