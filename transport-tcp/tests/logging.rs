//! The transport logs what its connections do, and a flood of refused
//! connections (a port scanner, a peer of another cluster retrying in a
//! tight loop) gives one warning per interval with a count, not a line each
//! (issue #15).

use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport_tcp::{TcpConfig, TcpTransport};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_logged_once_per_interval() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("transport_tcp=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");

    let config = TcpConfig::new("node-1", "logging", "127.0.0.1:0".parse().expect("addr"));
    let transport = TcpTransport::bind(config).await.expect("bind");
    let addr = transport.bound_addr();
    const SCANS: usize = 50;
    for _ in 0..SCANS {
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        socket.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
        // The transport closes the connection at the bad magic.
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    }
    let text = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    let refused = text.lines().filter(|line| line.contains("refused an inbound connection")).count();
    assert_eq!(
        refused, 1,
        "{SCANS} refused connections within one interval gave {refused} warnings:\n{text}"
    );
    assert!(text.contains("TCP transport listening"), "{text}");
    assert!(text.contains("inbound{peer=127.0.0.1:"), "the refusal names the connection's address:\n{text}");
    drop(transport);
}
