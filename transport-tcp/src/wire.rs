//! The wire protocol: a handshake, then length-prefixed frames whose bodies
//! are `raft_core::codec` messages. Pure encoding and decoding, no I/O, so
//! it can be fuzzed; the layout is in `docs/wire-protocol.md`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft_core::TransportError;
use raft_core::codec::{DecodeError, decode_message, encode_message};
use raft_core::{Message, ServerId};

/// The first bytes of every handshake.
pub const MAGIC: [u8; 4] = *b"RKIT";
/// The wire protocol version this code speaks.
pub const WIRE_VERSION: u32 = 1;
/// A frame header: body length (u32 LE), kind (u8), request id (u64 LE).
pub const FRAME_HEADER: usize = 4 + 1 + 8;
/// The longest cluster id or node id a handshake carries.
pub const NAME_MAX: usize = 255;

/// What a connection is for, declared in its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionKind {
    /// One request at a time, from the pool.
    Rpc = 1,
    /// Pipelined AppendEntries, answered in order.
    Pipeline = 2,
}

/// The handshake each side sends first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's wire protocol version.
    pub version: u32,
    /// The cluster the sender belongs to.
    pub cluster_id: String,
    /// The sender's node id.
    pub node_id: ServerId,
    /// What the connection is for (the server echoes the client's).
    pub kind: ConnectionKind,
}

/// The most bytes a handshake can take.
pub const HELLO_MAX: usize = 4 + 4 + 1 + NAME_MAX + 1 + NAME_MAX + 1;

impl Hello {
    /// Encodes the handshake.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(HELLO_MAX);
        buf.put_slice(&MAGIC);
        buf.put_u32_le(self.version);
        put_name(&mut buf, &self.cluster_id);
        put_name(&mut buf, self.node_id.as_str());
        buf.put_u8(self.kind as u8);
        buf.freeze()
    }

    /// How many bytes the handshake at the start of `input` takes, once
    /// enough of it has arrived to tell; `None` while more is needed.
    pub fn length(input: &[u8]) -> Result<Option<usize>, WireError> {
        if input.len() >= 4 && input[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        if input.len() < 9 {
            return Ok(None);
        }
        let cluster_len = input[8] as usize;
        let at = 9 + cluster_len;
        if input.len() <= at {
            return Ok(None);
        }
        let node_len = input[at] as usize;
        Ok(Some(at + 1 + node_len + 1))
    }

    /// Decodes a complete handshake.
    pub fn decode(input: &[u8]) -> Result<Hello, WireError> {
        let mut buf = input;
        if buf.len() < 9 || buf[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        buf.advance(4);
        let version = buf.get_u32_le();
        let cluster_id = take_name(&mut buf)?;
        let node_id = ServerId(take_name(&mut buf)?);
        if buf.is_empty() {
            return Err(WireError::Truncated);
        }
        let kind = match buf.get_u8() {
            1 => ConnectionKind::Rpc,
            2 => ConnectionKind::Pipeline,
            other => return Err(WireError::UnknownConnectionKind(other)),
        };
        if !buf.is_empty() {
            return Err(WireError::Truncated);
        }
        Ok(Hello { version, cluster_id, node_id, kind })
    }
}

fn put_name(buf: &mut BytesMut, name: &str) {
    let bytes = &name.as_bytes()[..name.len().min(NAME_MAX)];
    buf.put_u8(bytes.len() as u8);
    buf.put_slice(bytes);
}

fn take_name(buf: &mut &[u8]) -> Result<String, WireError> {
    if buf.is_empty() {
        return Err(WireError::Truncated);
    }
    let len = buf.get_u8() as usize;
    if buf.len() < len {
        return Err(WireError::Truncated);
    }
    let name = std::str::from_utf8(&buf[..len]).map_err(|_| WireError::BadName)?.to_owned();
    buf.advance(len);
    Ok(name)
}

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// An RPC request: a codec message.
    Request = 1,
    /// An RPC response: a codec message.
    Response = 2,
    /// The peer failed the request: a UTF-8 reason.
    Error = 3,
    /// A chunk of the snapshot that follows an InstallSnapshot request.
    SnapshotChunk = 4,
    /// The end of a snapshot stream.
    SnapshotEnd = 5,
}

impl FrameKind {
    fn from_u8(value: u8) -> Result<Self, WireError> {
        Ok(match value {
            1 => FrameKind::Request,
            2 => FrameKind::Response,
            3 => FrameKind::Error,
            4 => FrameKind::SnapshotChunk,
            5 => FrameKind::SnapshotEnd,
            other => return Err(WireError::UnknownFrameKind(other)),
        })
    }
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What it carries.
    pub kind: FrameKind,
    /// Matches a response to its request on a connection.
    pub request_id: u64,
    /// The body.
    pub body: Bytes,
}

/// Why bytes from a peer are not a valid handshake or frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The handshake does not start with the magic bytes.
    #[error("the peer does not speak the raft-kit wire protocol (bad magic)")]
    BadMagic,
    /// The input ended inside a handshake field.
    #[error("truncated handshake")]
    Truncated,
    /// A name in the handshake is not UTF-8.
    #[error("a handshake name is not UTF-8")]
    BadName,
    /// The connection kind byte names no kind.
    #[error("unknown connection kind {0}")]
    UnknownConnectionKind(u8),
    /// The frame kind byte names no kind.
    #[error("unknown frame kind {0}")]
    UnknownFrameKind(u8),
    /// A frame's declared length exceeds the limit.
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The declared size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A frame's declared length is shorter than its header.
    #[error("frame length {0} is shorter than a frame header")]
    FrameTooShort(u32),
    /// A frame body did not decode as the message it should hold.
    #[error("frame body does not decode: {0}")]
    Body(#[from] DecodeError),
}

impl From<WireError> for TransportError {
    fn from(error: WireError) -> Self {
        match error {
            WireError::FrameTooLarge { size, max } => TransportError::FrameTooLarge { size, max },
            WireError::Body(error) => TransportError::Decode(error),
            other => TransportError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, other)),
        }
    }
}

/// Appends a frame to `buf`.
pub fn encode_frame(buf: &mut BytesMut, kind: FrameKind, request_id: u64, body: &[u8]) {
    let len = u32::try_from(1 + 8 + body.len()).expect("frames are limited far below 4 GiB");
    buf.reserve(4 + len as usize);
    buf.put_u32_le(len);
    buf.put_u8(kind as u8);
    buf.put_u64_le(request_id);
    buf.put_slice(body);
}

/// Appends a frame holding `message`, encoded straight into `buf`.
pub fn encode_message_frame(buf: &mut BytesMut, kind: FrameKind, request_id: u64, message: &Message) {
    let start = buf.len();
    buf.put_u32_le(0);
    buf.put_u8(kind as u8);
    buf.put_u64_le(request_id);
    encode_message(message, buf);
    let len = u32::try_from(buf.len() - start - 4).expect("frames are limited far below 4 GiB");
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Takes one complete frame off the front of `buf`, if one has arrived.
/// A declared length over `max` is refused before anything is allocated.
pub fn decode_frame(buf: &mut BytesMut, max: u64) -> Result<Option<Frame>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if u64::from(len) > max {
        return Err(WireError::FrameTooLarge { size: u64::from(len), max });
    }
    if (len as usize) < 1 + 8 {
        return Err(WireError::FrameTooShort(len));
    }
    if buf.len() < 4 + len as usize {
        // Nothing is reserved for what has not arrived: the reader grows the
        // buffer as bytes come, so an announced length costs no memory.
        return Ok(None);
    }
    buf.advance(4);
    let mut frame = buf.split_to(len as usize);
    let kind = FrameKind::from_u8(frame.get_u8())?;
    let request_id = frame.get_u64_le();
    Ok(Some(Frame { kind, request_id, body: frame.freeze() }))
}

/// The whole length (prefix included) of the frame whose start is in `buf`,
/// once its length prefix has arrived.
pub fn announced_len(buf: &[u8]) -> Option<u64> {
    let prefix: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    Some(4 + u64::from(u32::from_le_bytes(prefix)))
}

/// Decodes a frame body as a codec message.
pub fn frame_message(frame: &Frame) -> Result<Message, WireError> {
    Ok(decode_message(frame.body.clone())?)
}
