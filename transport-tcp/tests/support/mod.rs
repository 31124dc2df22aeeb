//! Helpers shared by the transport-tcp integration tests.

#![allow(dead_code)]

use raft_core::{RequestVoteResponse, Rpc, Transport};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use transport_tcp::TcpTransport;

/// Serves votes (granting each), counting the RPCs the node was handed.
pub(crate) fn serve(transport: &TcpTransport) -> Arc<AtomicUsize> {
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut incoming = transport.consumer().expect("consumer");
    let counter = delivered.clone();
    tokio::spawn(async move {
        while let Some(rpc) = incoming.recv().await {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Rpc::RequestVote { request, respond } = rpc {
                respond.respond(Ok(RequestVoteResponse {
                    term: request.term,
                    granted: true,
                    ..Default::default()
                }));
            }
        }
    });
    delivered
}

/// A peer that speaks the wire protocol by hand, frame by frame, so a test
/// can stop anywhere a buggy or hostile peer would.
pub(crate) struct RawPeer {
    pub(crate) stream: tokio::net::TcpStream,
    pub(crate) buf: bytes::BytesMut,
}

impl RawPeer {
    /// Connects to `addr` and completes the handshake as node `node_id` of `cluster`.
    pub(crate) async fn connect(addr: std::net::SocketAddr, cluster: &str, node_id: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use transport_tcp::wire::{Auth, ConnectionKind, Hello, Status, WELCOME_MAX, WIRE_VERSION, Welcome};
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let hello = Hello {
            version: WIRE_VERSION,
            cluster_id: cluster.into(),
            node_id: raft_core::ServerId::new(node_id),
            kind: ConnectionKind::Rpc,
            auth: Auth::None,
            nonce: [1; 16],
        };
        stream.write_all(&hello.encode()).await.expect("send hello");
        let mut answer = Vec::new();
        loop {
            if let Some(len) = Welcome::length(&answer).expect("the server's welcome")
                && answer.len() >= len
            {
                let welcome = Welcome::decode(&answer[..len]).expect("the server's welcome decodes");
                assert_eq!(welcome.status, Status::Ok, "the server refused the hello");
                answer.drain(..len);
                break;
            }
            assert!(answer.len() < WELCOME_MAX, "no welcome from the server");
            let mut byte = [0u8; 1];
            let n = stream.read(&mut byte).await.expect("read the welcome");
            assert!(n > 0, "the server closed during the handshake");
            answer.push(byte[0]);
        }
        Self { stream, buf: bytes::BytesMut::from(&answer[..]) }
    }

    /// Sends a request frame holding `message`.
    pub(crate) async fn send_message(&mut self, id: u64, message: &raft_core::Message) {
        use tokio::io::AsyncWriteExt;
        let mut out = bytes::BytesMut::new();
        transport_tcp::wire::encode_message_frame(
            &mut out,
            transport_tcp::wire::FrameKind::Request,
            id,
            message,
        );
        self.stream.write_all(&out).await.expect("send");
    }

    /// Sends a frame with a raw body.
    pub(crate) async fn send_raw(&mut self, kind: transport_tcp::wire::FrameKind, id: u64, body: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mut out = bytes::BytesMut::new();
        transport_tcp::wire::encode_frame(&mut out, kind, id, body);
        self.stream.write_all(&out).await.expect("send");
    }

    /// The next frame, or `None` once the server has closed the connection.
    pub(crate) async fn next_frame(&mut self) -> Option<transport_tcp::wire::Frame> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Ok(Some(frame)) = transport_tcp::wire::decode_frame(&mut self.buf, u64::MAX) {
                return Some(frame);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}
