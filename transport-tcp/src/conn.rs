//! One established connection: a byte stream (plain or TLS) with a frame
//! reader, and the handshake both ends perform on it.

use crate::TcpConfig;
use crate::wire::{self, Auth, ConnectionKind, Frame, FrameKind, Hello, Status, Welcome, WireError};
use bytes::BytesMut;
use raft_core::codec;
use raft_core::{Message, ServerAddress, ServerId, TransportError};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) use crate::stream::BoxStream;

/// Sets the socket options every connection gets, dialed or accepted: no
/// Nagle delay, and TCP keepalive when configured.
pub(crate) fn tune(stream: &tokio::net::TcpStream, config: &TcpConfig) {
    let _ = stream.set_nodelay(true);
    if let Some(idle) = config.keepalive {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(std::time::Duration::from_secs(5))
            .with_retries(3);
        if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
            tracing::warn!(%error, "setting TCP keepalive failed");
        }
    }
}

/// Frames up to this size are read without asking the memory budget.
const SMALL_FRAME: u64 = 64 << 10;
/// The most a frame buffer grows by in one step, however much is announced.
const READ_STEP: usize = 256 << 10;

/// What bounds reading frames on every connection of a transport: the
/// largest frame, one memory budget that every frame larger than 64 KiB
/// takes its announced length from while it is being received (so all
/// in-flight frame buffers together stay within it), and how long a frame
/// already begun may go without a byte.
#[derive(Clone, Debug)]
pub(crate) struct FrameLimits {
    pub(crate) max_frame: u64,
    budget: Arc<Semaphore>,
    budget_bytes: u64,
    /// How long to wait for budget, and for the next byte of a begun frame.
    progress: Duration,
}

impl FrameLimits {
    pub(crate) fn new(config: &TcpConfig) -> Self {
        // A budget below the largest frame could never admit one.
        let bytes = config.frame_memory_max.max(config.max_frame_size).min(u64::from(u32::MAX));
        let budget = Arc::new(Semaphore::new(usize::try_from(bytes).unwrap_or(usize::MAX)));
        Self { max_frame: config.max_frame_size, budget, budget_bytes: bytes, progress: config.rpc_timeout }
    }

    /// Takes `len` bytes of the budget for a frame being received.
    async fn reserve(&self, len: u64) -> Result<OwnedSemaphorePermit, TransportError> {
        let permits = u32::try_from(len.min(self.budget_bytes)).unwrap_or(u32::MAX);
        match tokio::time::timeout(self.progress, self.budget.clone().acquire_many_owned(permits)).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(TransportError::Shutdown),
            Err(_) => Err(TransportError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no frame memory for {len} bytes within {:?}: the budget is in use", self.progress),
            ))),
        }
    }
}

/// A connection after its handshake.
pub(crate) struct Conn {
    pub(crate) stream: BoxStream,
    pub(crate) buf: BytesMut,
    pub(crate) limits: FrameLimits,
    pub(crate) next_id: u64,
    /// The node on the other end, from its handshake.
    pub(crate) peer: ServerId,
}

impl Conn {
    pub(crate) fn new(stream: BoxStream, limits: FrameLimits, peer: ServerId) -> Self {
        Self { stream, buf: BytesMut::with_capacity(8 << 10), limits, next_id: 1, peer }
    }

    /// Reads the next frame; `Ok(None)` when the peer closed cleanly between frames.
    pub(crate) async fn read_frame(&mut self) -> Result<Option<Frame>, TransportError> {
        read_frame(&mut self.stream, &mut self.buf, &self.limits).await
    }

    /// Writes a frame holding `message`.
    pub(crate) async fn write_message(
        &mut self,
        kind: FrameKind,
        id: u64,
        message: &Message,
    ) -> Result<(), TransportError> {
        let mut out = BytesMut::new();
        wire::encode_message_frame(&mut out, kind, id, message);
        self.check_size(out.len())?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Writes a frame with a raw body.
    pub(crate) async fn write_raw(
        &mut self,
        kind: FrameKind,
        id: u64,
        body: &[u8],
    ) -> Result<(), TransportError> {
        let mut out = BytesMut::with_capacity(wire::FRAME_HEADER + body.len());
        wire::encode_frame(&mut out, kind, id, body);
        self.check_size(out.len())?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    fn check_size(&self, encoded: usize) -> Result<(), TransportError> {
        let size = (encoded - 4) as u64;
        if size > self.limits.max_frame {
            return Err(TransportError::FrameTooLarge { size, max: self.limits.max_frame });
        }
        Ok(())
    }
}

/// Reads the next frame from `reader` through `buf`; `Ok(None)` when the
/// peer closed cleanly between frames. The buffer grows as bytes arrive (at
/// most [`READ_STEP`] at a time), a frame over 64 KiB holds its length of
/// the transport's memory budget while it is received, and a frame begun
/// that gets no byte for the progress deadline is an error.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    limits: &FrameLimits,
) -> Result<Option<Frame>, TransportError> {
    let mut held = None;
    loop {
        if let Some(frame) = wire::decode_frame(buf, limits.max_frame)? {
            return Ok(Some(frame));
        }
        let announced = wire::announced_len(buf);
        if let Some(len) = announced.filter(|&len| len > SMALL_FRAME)
            && held.is_none()
        {
            held = Some(limits.reserve(len).await?);
        }
        let missing = announced.map_or(4, |len| len.saturating_sub(buf.len() as u64));
        buf.reserve(usize::try_from(missing).unwrap_or(READ_STEP).clamp(1, READ_STEP));
        let read = if buf.is_empty() {
            reader.read_buf(buf).await?
        } else {
            tokio::time::timeout(limits.progress, reader.read_buf(buf)).await.map_err(|_| {
                TransportError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no byte of a begun frame for {:?}", limits.progress),
                ))
            })??
        };
        if read == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(TransportError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the peer closed the connection inside a frame",
            )));
        }
    }
}

/// Decodes a frame's body as a message.
pub(crate) fn message(frame: &Frame) -> Result<Message, TransportError> {
    codec::decode_message(frame.body.clone()).map_err(TransportError::Decode)
}

/// What the TLS layer proves about the peer: nothing without TLS.
#[derive(Default)]
pub(crate) struct PeerIdentity {
    #[cfg(feature = "tls")]
    pub(crate) cert: Option<crate::tls::PeerCert>,
}

impl PeerIdentity {
    /// Whether the peer may claim node id `id` (always, without TLS).
    fn check(&self, id: &ServerId) -> Result<(), String> {
        #[cfg(feature = "tls")]
        if let Some(cert) = &self.cert {
            return cert.check(id);
        }
        let _ = id;
        Ok(())
    }
}

/// Reads one handshake message, whose length `length` tells from its first
/// bytes, reading no byte past it (the frames that follow stay unread).
async fn read_message(
    stream: &mut BoxStream,
    max: usize,
    length: fn(&[u8]) -> Result<Option<usize>, WireError>,
) -> Result<Vec<u8>, TransportError> {
    let mut buf = Vec::with_capacity(max);
    let mut chunk = [0u8; 64];
    loop {
        let known = length(&buf).map_err(TransportError::from)?;
        if let Some(len) = known
            && buf.len() >= len
        {
            return Ok(buf);
        }
        if buf.len() >= max {
            return Err(WireError::Truncated.into());
        }
        let want = known.map_or(1, |len| len - buf.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Err(TransportError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the peer closed the connection during the handshake",
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn auth_mode(config: &TcpConfig) -> Auth {
    if config.cluster_secret.is_some() { Auth::HmacSha256 } else { Auth::None }
}

fn auth_failed(reason: impl Into<String>) -> TransportError {
    TransportError::AuthenticationFailed { reason: reason.into() }
}

/// The dialing side: sends its hello, reads the server's answer, checks the
/// server's node id against its certificate (TLS) and, with a cluster
/// secret, checks the server's proof, sends its own and waits for the
/// server to accept it.
pub(crate) async fn client_handshake(
    mut stream: BoxStream,
    identity: PeerIdentity,
    config: &TcpConfig,
    limits: &FrameLimits,
    target: &ServerAddress,
    kind: ConnectionKind,
) -> Result<Conn, TransportError> {
    let hello = Hello {
        version: wire::WIRE_VERSION,
        cluster_id: config.cluster_id.clone(),
        node_id: config.node_id.clone(),
        kind,
        auth: auth_mode(config),
        nonce: crate::auth::nonce(),
    };
    let hello_bytes = hello.encode();
    stream.write_all(&hello_bytes).await?;
    let welcome_bytes = read_message(&mut stream, wire::WELCOME_MAX, Welcome::length).await?;
    let welcome = Welcome::decode(&welcome_bytes)?;
    if welcome.version != wire::WIRE_VERSION && welcome.status == Status::Ok {
        return Err(TransportError::VersionMismatch { ours: wire::WIRE_VERSION, theirs: welcome.version });
    }
    match welcome.status {
        Status::Ok => {}
        Status::VersionMismatch => {
            return Err(TransportError::VersionMismatch {
                ours: wire::WIRE_VERSION,
                theirs: welcome.version,
            });
        }
        Status::ClusterMismatch => {
            return Err(TransportError::ClusterMismatch { ours: config.cluster_id.clone(), theirs: None });
        }
        Status::AuthModeMismatch => {
            return Err(auth_failed("only one of this node and the peer has a cluster secret"));
        }
        Status::AuthenticationFailed => return Err(auth_failed("the peer refused this node's proof")),
        Status::IdentityMismatch => {
            return Err(auth_failed(format!(
                "the peer says this node's certificate does not name node id {}",
                config.node_id
            )));
        }
        Status::Refused => return Err(TransportError::Unreachable(target.clone())),
    }
    identity.check(&welcome.node_id).map_err(auth_failed)?;
    if let Some(secret) = &config.cluster_secret {
        let unsigned = Welcome { mac: Vec::new(), ..welcome.clone() }.encode();
        if !secret.check_server(&hello_bytes, &unsigned, &welcome.mac) {
            return Err(auth_failed("the peer does not know the cluster secret"));
        }
        stream.write_all(&secret.client_proof(&hello_bytes, &welcome_bytes)).await?;
        let mut ack = [0u8; 1];
        stream.read_exact(&mut ack).await?;
        if ack[0] != Status::Ok as u8 {
            return Err(auth_failed("the peer refused this node's proof of the cluster secret"));
        }
    }
    Ok(Conn::new(stream, limits.clone(), welcome.node_id))
}

/// The accepting side: reads the client's hello and checks it before saying
/// anything about itself (version, cluster id, whether a secret is used, the
/// node id against the client's certificate, the peer filter); a refusal
/// answers with the reason only. Then it answers with its node id and, with
/// a cluster secret, its proof, and checks the client's.
pub(crate) async fn server_handshake(
    mut stream: BoxStream,
    identity: PeerIdentity,
    config: &TcpConfig,
    limits: &FrameLimits,
) -> Result<(Conn, ConnectionKind), TransportError> {
    let hello_bytes = match read_message(&mut stream, wire::HELLO_MAX, Hello::length).await {
        Err(error @ TransportError::VersionMismatch { .. }) => {
            refuse(&mut stream, Status::VersionMismatch).await;
            return Err(error);
        }
        other => other?,
    };
    let hello = Hello::decode(&hello_bytes)?;
    let allowed = |id: &ServerId| {
        let anywhere = ServerAddress::new(String::new());
        config.peer_filter.as_ref().is_none_or(|filter| filter(&anywhere, Some(id)))
    };
    let refusal = if hello.cluster_id != config.cluster_id {
        let theirs = Some(hello.cluster_id.clone());
        Some((
            Status::ClusterMismatch,
            TransportError::ClusterMismatch { ours: config.cluster_id.clone(), theirs },
        ))
    } else if hello.auth != auth_mode(config) {
        Some((
            Status::AuthModeMismatch,
            auth_failed("only one of this node and the peer has a cluster secret"),
        ))
    } else if let Err(reason) = identity.check(&hello.node_id) {
        Some((Status::IdentityMismatch, auth_failed(reason)))
    } else if !allowed(&hello.node_id) {
        Some((Status::Refused, TransportError::Unreachable(ServerAddress::new(hello.node_id.to_string()))))
    } else {
        None
    };
    if let Some((status, error)) = refusal {
        refuse(&mut stream, status).await;
        return Err(error);
    }
    let mut welcome = Welcome {
        version: wire::WIRE_VERSION,
        status: Status::Ok,
        node_id: config.node_id.clone(),
        nonce: crate::auth::nonce(),
        mac: Vec::new(),
    };
    if let Some(secret) = &config.cluster_secret {
        welcome.mac = secret.server_proof(&hello_bytes, &welcome.encode()).to_vec();
    }
    let welcome_bytes = welcome.encode();
    stream.write_all(&welcome_bytes).await?;
    if let Some(secret) = &config.cluster_secret {
        let mut proof = [0u8; wire::MAC_LEN];
        stream.read_exact(&mut proof).await?;
        if !secret.check_client(&hello_bytes, &welcome_bytes, &proof) {
            let _ = stream.write_all(&[Status::AuthenticationFailed as u8]).await;
            return Err(auth_failed(format!("peer {} does not know the cluster secret", hello.node_id)));
        }
        stream.write_all(&[Status::Ok as u8]).await?;
    }
    Ok((Conn::new(stream, limits.clone(), hello.node_id), hello.kind))
}

/// Answers a hello with a refusal and nothing else.
async fn refuse(stream: &mut BoxStream, status: Status) {
    let _ = stream.write_all(&Welcome::refusal(status).encode()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_connection_gets_keepalive_unless_turned_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = TcpConfig::new("a", "c", addr);
        let dialed = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        tune(&dialed, &config);
        tune(&accepted, &config);
        for stream in [&dialed, &accepted] {
            let socket = socket2::SockRef::from(stream);
            assert!(socket.keepalive().expect("SO_KEEPALIVE"), "keepalive is off");
            assert_eq!(
                socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
                std::time::Duration::from_secs(15)
            );
            assert!(stream.nodelay().expect("TCP_NODELAY"));
        }
        config.keepalive = None;
        let plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tune(&plain, &config);
        assert!(!socket2::SockRef::from(&plain).keepalive().expect("SO_KEEPALIVE"));
    }
}
