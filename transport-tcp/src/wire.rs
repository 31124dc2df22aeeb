//! The wire protocol: a handshake (the client's [`Hello`], the server's
//! [`Welcome`], and with a cluster secret one proof each way), then
//! length-prefixed frames whose bodies are `raft_core::codec` messages. Pure
//! encoding and decoding, no I/O, so it can be fuzzed; the layout is in
//! `docs/wire-protocol.md`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft_core::TransportError;
use raft_core::codec::{DecodeError, decode_message, encode_message};
use raft_core::{Message, ServerId};

/// The first bytes of every handshake message.
pub const MAGIC: [u8; 4] = *b"RKIT";
/// The wire protocol version this code speaks.
pub const WIRE_VERSION: u32 = 2;
/// A frame header: body length (u32 LE), kind (u8), request id (u64 LE).
pub const FRAME_HEADER: usize = 4 + 1 + 8;
/// The longest cluster id or node id a handshake carries.
pub const NAME_MAX: usize = 255;
/// The length of the nonces each side sends.
pub const NONCE_LEN: usize = 16;
/// The length of an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;

/// What a connection is for, declared in its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionKind {
    /// One request at a time, from the pool.
    Rpc = 1,
    /// Pipelined AppendEntries, answered in order.
    Pipeline = 2,
}

/// How the two ends prove they share the cluster secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No proof (the cluster id guards against misconfiguration only).
    None = 0,
    /// Each side proves it knows the cluster secret with an HMAC-SHA256 over
    /// both sides' nonces and hello bytes.
    HmacSha256 = 1,
}

impl Auth {
    fn from_u8(value: u8) -> Result<Self, WireError> {
        match value {
            0 => Ok(Auth::None),
            1 => Ok(Auth::HmacSha256),
            other => Err(WireError::UnknownAuth(other)),
        }
    }
}

/// The dialing side's first message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The sender's wire protocol version.
    pub version: u32,
    /// The cluster the sender belongs to.
    pub cluster_id: String,
    /// The sender's node id.
    pub node_id: ServerId,
    /// What the connection is for.
    pub kind: ConnectionKind,
    /// How the sender will prove it knows the cluster secret.
    pub auth: Auth,
    /// Fresh random bytes, so that the server's proof cannot be replayed.
    pub nonce: [u8; NONCE_LEN],
}

/// The most bytes a hello can take.
pub const HELLO_MAX: usize = 4 + 4 + 1 + NAME_MAX + 1 + NAME_MAX + 1 + 1 + NONCE_LEN;

impl Hello {
    /// Encodes the hello.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(HELLO_MAX);
        buf.put_slice(&MAGIC);
        buf.put_u32_le(self.version);
        put_name(&mut buf, &self.cluster_id);
        put_name(&mut buf, self.node_id.as_str());
        buf.put_u8(self.kind as u8);
        buf.put_u8(self.auth as u8);
        buf.put_slice(&self.nonce);
        buf.freeze()
    }

    /// How many bytes the hello at the start of `input` takes, once enough of
    /// it has arrived to tell; `None` while more is needed. A hello of
    /// another wire version is [`WireError::Version`] as soon as its version
    /// has arrived, so the server can say so without reading the rest.
    pub fn length(input: &[u8]) -> Result<Option<usize>, WireError> {
        if input.len() >= 4 && input[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        if input.len() < 8 {
            return Ok(None);
        }
        let version = u32::from_le_bytes([input[4], input[5], input[6], input[7]]);
        if version != WIRE_VERSION {
            return Err(WireError::Version(version));
        }
        let Some(&cluster_len) = input.get(8) else { return Ok(None) };
        let at = 9 + cluster_len as usize;
        let Some(&node_len) = input.get(at) else { return Ok(None) };
        Ok(Some(at + 1 + node_len as usize + 1 + 1 + NONCE_LEN))
    }

    /// Decodes a complete hello.
    pub fn decode(input: &[u8]) -> Result<Hello, WireError> {
        let mut buf = input;
        if buf.len() < 8 || buf[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        buf.advance(4);
        let version = buf.get_u32_le();
        if version != WIRE_VERSION {
            return Err(WireError::Version(version));
        }
        let cluster_id = take_name(&mut buf)?;
        let node_id = ServerId(take_name(&mut buf)?);
        if buf.len() != 2 + NONCE_LEN {
            return Err(WireError::Truncated);
        }
        let kind = match buf.get_u8() {
            1 => ConnectionKind::Rpc,
            2 => ConnectionKind::Pipeline,
            other => return Err(WireError::UnknownConnectionKind(other)),
        };
        let auth = Auth::from_u8(buf.get_u8())?;
        let mut nonce = [0u8; NONCE_LEN];
        buf.copy_to_slice(&mut nonce);
        Ok(Hello { version, cluster_id, node_id, kind, auth, nonce })
    }
}

/// How the accepting side answers a hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Accepted.
    Ok = 0,
    /// The client speaks another wire version (the answer carries the server's).
    VersionMismatch = 1,
    /// The client names another cluster (the answer does not say which is the server's).
    ClusterMismatch = 2,
    /// The two sides disagree on whether to prove the cluster secret.
    AuthModeMismatch = 3,
    /// The client's proof of the cluster secret was wrong.
    AuthenticationFailed = 4,
    /// Under mutual TLS, the client's certificate does not name the node id it claims.
    IdentityMismatch = 5,
    /// The server does not talk to this peer (its peer filter).
    Refused = 6,
}

impl Status {
    fn from_u8(value: u8) -> Result<Self, WireError> {
        Ok(match value {
            0 => Status::Ok,
            1 => Status::VersionMismatch,
            2 => Status::ClusterMismatch,
            3 => Status::AuthModeMismatch,
            4 => Status::AuthenticationFailed,
            5 => Status::IdentityMismatch,
            6 => Status::Refused,
            other => return Err(WireError::UnknownStatus(other)),
        })
    }
}

/// The accepting side's answer to a hello. Only an accepted hello learns
/// who the server is; a refusal says why and nothing more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The server's wire protocol version.
    pub version: u32,
    /// Whether the hello was accepted, and if not, why.
    pub status: Status,
    /// The server's node id (empty unless accepted).
    pub node_id: ServerId,
    /// The server's nonce (zero unless accepted).
    pub nonce: [u8; NONCE_LEN],
    /// The server's proof of the cluster secret (empty unless accepted with HMAC).
    pub mac: Vec<u8>,
}

/// The most bytes a welcome can take.
pub const WELCOME_MAX: usize = 4 + 4 + 1 + 1 + NAME_MAX + NONCE_LEN + 1 + MAC_LEN;

impl Welcome {
    /// A refusal with `status`.
    pub fn refusal(status: Status) -> Self {
        Self {
            version: WIRE_VERSION,
            status,
            node_id: ServerId::new(""),
            nonce: [0; NONCE_LEN],
            mac: Vec::new(),
        }
    }

    /// Encodes the welcome.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(WELCOME_MAX);
        buf.put_slice(&MAGIC);
        buf.put_u32_le(self.version);
        buf.put_u8(self.status as u8);
        if self.status == Status::Ok {
            put_name(&mut buf, self.node_id.as_str());
            buf.put_slice(&self.nonce);
            let mac = &self.mac[..self.mac.len().min(MAC_LEN)];
            buf.put_u8(mac.len() as u8);
            buf.put_slice(mac);
        }
        buf.freeze()
    }

    /// How many bytes the welcome at the start of `input` takes, once
    /// enough of it has arrived to tell; `None` while more is needed.
    pub fn length(input: &[u8]) -> Result<Option<usize>, WireError> {
        if input.len() >= 4 && input[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        let Some(&status) = input.get(8) else { return Ok(None) };
        if Status::from_u8(status)? != Status::Ok {
            return Ok(Some(9));
        }
        let Some(&node_len) = input.get(9) else { return Ok(None) };
        let at = 10 + node_len as usize + NONCE_LEN;
        let Some(&mac_len) = input.get(at) else { return Ok(None) };
        if mac_len as usize > MAC_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Some(at + 1 + mac_len as usize))
    }

    /// Decodes a complete welcome.
    pub fn decode(input: &[u8]) -> Result<Welcome, WireError> {
        let mut buf = input;
        if buf.len() < 9 || buf[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        buf.advance(4);
        let version = buf.get_u32_le();
        let status = Status::from_u8(buf.get_u8())?;
        if status != Status::Ok {
            return if buf.is_empty() {
                Ok(Welcome { version, ..Welcome::refusal(status) })
            } else {
                Err(WireError::Truncated)
            };
        }
        let node_id = ServerId(take_name(&mut buf)?);
        if buf.len() < NONCE_LEN + 1 {
            return Err(WireError::Truncated);
        }
        let mut nonce = [0u8; NONCE_LEN];
        buf.copy_to_slice(&mut nonce);
        let mac_len = buf.get_u8() as usize;
        if mac_len > MAC_LEN || buf.len() != mac_len {
            return Err(WireError::Truncated);
        }
        Ok(Welcome { version, status, node_id, nonce, mac: buf.to_vec() })
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
    /// The peer speaks another wire protocol version.
    #[error("wire protocol version {0} is not {WIRE_VERSION}")]
    Version(u32),
    /// The authentication byte names no method.
    #[error("unknown authentication method {0}")]
    UnknownAuth(u8),
    /// The handshake status byte names no status.
    #[error("unknown handshake status {0}")]
    UnknownStatus(u8),
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
    Body(DecodeError),
}

impl From<DecodeError> for WireError {
    fn from(error: DecodeError) -> Self {
        WireError::Body(error)
    }
}

impl From<WireError> for TransportError {
    fn from(error: WireError) -> Self {
        match error {
            WireError::FrameTooLarge { size, max } => TransportError::FrameTooLarge { size, max },
            WireError::Version(theirs) => TransportError::VersionMismatch { ours: WIRE_VERSION, theirs },
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
