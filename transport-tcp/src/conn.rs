//! One established connection: a byte stream (plain or TLS) with a frame
//! reader, and the handshake both ends perform on it.

use crate::TcpConfig;
use crate::wire::{self, ConnectionKind, Frame, FrameKind, Hello, WireError};
use bytes::BytesMut;
use raft_core::codec;
use raft_core::{Message, ServerId, TransportError};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A stream a connection runs over: TCP, or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A boxed stream.
pub(crate) type BoxStream = Pin<Box<dyn Stream>>;

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

async fn read_hello(stream: &mut BoxStream) -> Result<Hello, TransportError> {
    let mut buf = Vec::with_capacity(wire::HELLO_MAX);
    let mut byte = [0u8; 64];
    loop {
        if let Some(len) = Hello::length(&buf).map_err(TransportError::from)?
            && buf.len() >= len
        {
            return Hello::decode(&buf[..len]).map_err(TransportError::from);
        }
        if buf.len() >= wire::HELLO_MAX {
            return Err(WireError::Truncated.into());
        }
        // Read no further than the handshake could reach, so no frame byte is consumed.
        let want = match Hello::length(&buf).map_err(TransportError::from)? {
            Some(len) => len - buf.len(),
            None => (9usize.saturating_sub(buf.len())).max(1),
        };
        let n = stream.read(&mut byte[..want.min(64)]).await?;
        if n == 0 {
            return Err(TransportError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the peer closed the connection during the handshake",
            )));
        }
        buf.extend_from_slice(&byte[..n]);
    }
}

fn check_peer(config: &TcpConfig, theirs: &Hello) -> Result<(), TransportError> {
    if theirs.version != wire::WIRE_VERSION {
        return Err(TransportError::VersionMismatch { ours: wire::WIRE_VERSION, theirs: theirs.version });
    }
    if theirs.cluster_id != config.cluster_id {
        return Err(TransportError::ClusterMismatch {
            ours: config.cluster_id.clone(),
            theirs: theirs.cluster_id.clone(),
        });
    }
    Ok(())
}

fn hello(config: &TcpConfig, kind: ConnectionKind) -> Hello {
    Hello {
        version: wire::WIRE_VERSION,
        cluster_id: config.cluster_id.clone(),
        node_id: config.node_id.clone(),
        kind,
    }
}

/// The dialing side: sends its hello, reads the server's, checks it.
pub(crate) async fn client_handshake(
    mut stream: BoxStream,
    config: &TcpConfig,
    limits: &FrameLimits,
    kind: ConnectionKind,
) -> Result<Conn, TransportError> {
    stream.write_all(&hello(config, kind).encode()).await?;
    let theirs = read_hello(&mut stream).await?;
    check_peer(config, &theirs)?;
    Ok(Conn::new(stream, limits.clone(), theirs.node_id))
}

/// The accepting side: reads the client's hello, answers with its own (so
/// the client can name a mismatch too), then checks the client's.
pub(crate) async fn server_handshake(
    mut stream: BoxStream,
    config: &TcpConfig,
    limits: &FrameLimits,
) -> Result<(Conn, ConnectionKind), TransportError> {
    let theirs = read_hello(&mut stream).await?;
    stream.write_all(&hello(config, theirs.kind).encode()).await?;
    check_peer(config, &theirs)?;
    Ok((Conn::new(stream, limits.clone(), theirs.node_id), theirs.kind))
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
