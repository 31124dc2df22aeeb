//! A 64 MiB snapshot streamed over TCP loopback is never held in memory
//! whole, on either side: the process's peak resident memory grows by far
//! less than the snapshot. (Its own test binary, so nothing runs beside it.)

use raft_conformance::transport::{PatternReader, pattern};
use raft_core::{InstallSnapshotRequest, InstallSnapshotResponse, Rpc, Transport};
use tokio::io::AsyncReadExt;
use transport_tcp::{TcpConfig, TcpTransport};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_snapshot_streams_over_tcp_in_bounded_memory() {
    const SIZE: u64 = 64 << 20;
    let loopback = "127.0.0.1:0".parse().expect("loopback");
    let client = TcpTransport::bind(TcpConfig::new("a", "mem", loopback)).await.expect("bind");
    let server = TcpTransport::bind(TcpConfig::new("b", "mem", loopback)).await.expect("bind");
    let mut incoming = server.consumer().expect("consumer");
    tokio::spawn(async move {
        while let Some(rpc) = incoming.recv().await {
            if let Rpc::InstallSnapshot { request, mut data, respond } = rpc {
                let mut buf = vec![0u8; 256 << 10];
                let mut offset = 0u64;
                let mut intact = true;
                loop {
                    let n = data.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    intact &= buf[..n].iter().enumerate().all(|(i, b)| *b == pattern(offset + i as u64));
                    offset += n as u64;
                }
                let success = intact && offset == request.size;
                respond.respond(Ok(InstallSnapshotResponse { success, ..Default::default() }));
            }
        }
    });
    let before = peak_rss_kib();
    let request = InstallSnapshotRequest { size: SIZE, snapshot_version: 1, ..Default::default() };
    let answer =
        client.install_snapshot(server.local_addr(), request, Box::pin(PatternReader::new(SIZE))).await;
    assert!(answer.expect("install_snapshot").success);
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let grown_mib = after.saturating_sub(before) / 1024;
        eprintln!("peak RSS grew by {grown_mib} MiB while a 64 MiB snapshot streamed over TCP");
        assert!(grown_mib < 24, "peak RSS grew by {grown_mib} MiB for a 64 MiB snapshot");
    }
}
