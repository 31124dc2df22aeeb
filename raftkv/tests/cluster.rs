//! raftkv as real processes on loopback (issue #16): every acknowledged
//! write survives a SIGKILLed leader, consistent reads are linearizable,
//! membership changes through the HTTP API, bad requests get their
//! documented 4xx, a node refuses a data directory that is not its own, and
//! a node whose join is refused stops with the reason.

use raft_sim::linearizability::{History, Op, check};
use raftkv::client::Outcome;
use raftkv::demo::{LocalCluster, write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raftkv");
const SECOND: Duration = Duration::from_secs(1);

async fn three_nodes() -> LocalCluster {
    let mut cluster = LocalCluster::new(BINARY.as_ref(), 3, &[]).expect("cluster");
    cluster.form().await.expect("three nodes form a cluster");
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_killed_and_restarted_leader() {
    let mut cluster = three_nodes().await;
    let all = [0, 1, 2];
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let clients: Vec<_> = all.iter().map(|&i| cluster.client(i)).collect();
            let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}-{n}");
                    let client = &clients[n % clients.len()];
                    if let Outcome::Ok(_) = client.put(&key, key.clone().into_bytes(), Some(&key)).await {
                        acknowledged.lock().expect("lock").push(key);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(SECOND).await;
    let leader = cluster.leader(&all, SECOND * 5).await.expect("a leader");
    cluster.kill(leader).await;
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    cluster.leader(&rest, SECOND * 10).await.expect("a new leader");
    tokio::time::sleep(SECOND).await;
    cluster.start(leader, &[]).expect("restart");
    tokio::time::sleep(SECOND).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() > 50, "only {} writes were acknowledged", acknowledged.len());
    let new_leader = cluster.leader(&all, SECOND * 10).await.expect("a leader");
    let target = cluster.client(new_leader).status().await.expect("status").commit_index;
    for i in all {
        cluster
            .wait_status(i, "catching up", SECOND * 15, |s| s.applied_index >= target)
            .await
            .expect("caught up");
        for key in &acknowledged {
            match cluster.client(i).get(key, "stale").await {
                Outcome::Ok(value) => assert_eq!(value, key.as_bytes()),
                other => panic!("node {i} lost acknowledged write {key}: {other:?}"),
            }
        }
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_see_linearizable_consistent_reads() {
    let mut cluster = three_nodes().await;
    let history = Arc::new(History::default());
    let deadline = Instant::now() + SECOND * 4;
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let client = cluster.client(c % 3);
            let history = history.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let key = format!("k{}", (n + c as u64) % 3);
                    if n.is_multiple_of(2) {
                        let value = format!("c{c}-{n}");
                        let id = history.call(c, &key, Op::Put(value.clone()));
                        match client.put(&key, value.into_bytes(), None).await {
                            Outcome::Ok(_) => history.returned(id, None),
                            // 503: certainly not applied; anything else: unknown.
                            Outcome::Failed(503, _) => history.forget(id),
                            _ => {}
                        }
                    } else {
                        let id = history.call(c, &key, Op::Get);
                        match client.get(&key, "consistent").await {
                            Outcome::Ok(value) => {
                                history.returned(id, Some(String::from_utf8(value).expect("utf-8")));
                            }
                            Outcome::Absent => history.returned(id, None),
                            Outcome::Failed(..) => history.forget(id),
                        }
                    }
                }
            })
        })
        .collect();
    // Leadership moves once in the middle of the run.
    tokio::time::sleep(SECOND * 2).await;
    let _ = reqwest::Client::new()
        .post(format!("http://{}/cluster/transfer", cluster.nodes[0].http))
        .send()
        .await;
    for client in clients {
        client.await.expect("client");
    }
    let operations = history.operations();
    let completed = operations.iter().filter(|op| op.ret.is_some()).count();
    assert!(completed > 100, "only {completed} operations completed");
    check(&operations).unwrap_or_else(|verdict| panic!("{verdict:?}"));
    cluster.stop().await;
}

async fn error_of(answer: reqwest::Response) -> (u16, serde_json::Value) {
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.expect("a JSON error body");
    assert!(body["error"].is_string() && body.get("leader").is_some(), "{body}");
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_and_bad_requests_through_the_http_api() {
    let mut cluster = LocalCluster::new(BINARY.as_ref(), 4, &[]).expect("cluster");
    cluster.start(0, &["--bootstrap".into()]).expect("start");
    cluster.leader(&[0], SECOND * 10).await.expect("leader");
    let seed = cluster.nodes[0].http.clone();
    for i in 1..4 {
        cluster.start(i, &["--join".into(), seed.clone()]).expect("start");
    }
    cluster
        .wait_status(0, "four voters", SECOND * 20, |s| s.configuration.servers.len() == 4)
        .await
        .expect("joined");
    let http = reqwest::Client::new();
    // Removing node-4, asked of a follower (forwarded to the leader); 409
    // while the join's change is still being committed, then 200.
    let deadline = Instant::now() + SECOND * 10;
    loop {
        let removed = http
            .delete(format!("http://{}/cluster/servers/node-4", cluster.nodes[1].http))
            .send()
            .await
            .expect("send");
        let status = removed.status().as_u16();
        if status == 200 {
            break;
        }
        let body = removed.text().await.unwrap_or_default();
        assert!([409, 503, 504].contains(&status) && Instant::now() < deadline, "{status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster
        .wait_status(0, "three voters", SECOND * 10, |s| s.configuration.servers.len() == 3)
        .await
        .expect("removed");

    let node = &cluster.nodes[1].http;
    let long_key = "k".repeat(2000);
    let (status, _) =
        error_of(http.put(format!("http://{node}/kv/{long_key}")).body("v").send().await.expect("send"))
            .await;
    assert_eq!(status, 413);
    let big = vec![0u8; 1024 * 1024 + 1];
    let (status, body) =
        error_of(http.put(format!("http://{node}/kv/big")).body(big).send().await.expect("send")).await;
    assert_eq!(status, 413, "{body}");
    let (status, _) =
        error_of(http.get(format!("http://{node}/kv/a?consistency=eventually")).send().await.expect("send"))
            .await;
    assert_eq!(status, 400);
    let (status, _) = error_of(
        http.post(format!("http://{node}/cluster/join")).body("{\"id\": 1}").send().await.expect("send"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) =
        error_of(http.get(format!("http://{node}/kv/absent")).send().await.expect("send")).await;
    assert_eq!(status, 404);
    assert!(body["leader"].is_string(), "a 404 from a follower still names the leader: {body}");
    let (status, _) =
        error_of(http.get(format!("http://{node}/nothing/here")).send().await.expect("send")).await;
    assert_eq!(status, 404);
    // A retried write with one request id applies once.
    let first = write(&cluster, &[1], "once", "1").await.expect("write");
    let again = cluster.client(2).put("once", b"1".to_vec(), Some("demo-once")).await;
    match again {
        Outcome::Ok(answer) => assert_eq!(answer.index, first, "the retry reports the first application"),
        other => panic!("{other:?}"),
    }
    let metrics = http.get(format!("http://{}/metrics", cluster.nodes[0].http)).send().await.expect("send");
    let text = metrics.text().await.expect("text");
    assert!(text.contains("raft_apply"), "no raft metrics in /metrics:\n{text}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_data_directory_that_is_not_its_own_and_inspect_reads_a_stopped_one() {
    let mut cluster = LocalCluster::new(BINARY.as_ref(), 1, &[]).expect("cluster");
    cluster.start(0, &["--bootstrap".into()]).expect("start");
    cluster.leader(&[0], SECOND * 10).await.expect("leader");
    write(&cluster, &[0], "a", "1").await.expect("write");
    let dir = cluster.nodes[0].dir.clone();
    let inspect = |dir: &std::path::Path| {
        std::process::Command::new(BINARY).args(["inspect", "--data-dir"]).arg(dir).output().expect("inspect")
    };
    let live = inspect(&dir);
    assert!(!live.status.success());
    assert!(String::from_utf8_lossy(&live.stderr).contains("a running node holds"), "{live:?}");
    cluster.kill(0).await;
    let stopped = inspect(&dir);
    let report = String::from_utf8_lossy(&stopped.stdout);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        report.contains("node node-1 of cluster raftkv")
            && report.contains("format version: 1")
            && report.contains("latest configuration"),
        "{report}"
    );

    let other = std::process::Command::new(BINARY)
        .args([
            "serve",
            "--id",
            "node-9",
            "--raft-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .expect("serve");
    assert!(!other.status.success(), "a node started on another node's directory");
    let message = String::from_utf8_lossy(&other.stderr);
    assert!(message.contains("holds the state of node `node-1`"), "{message}");
}

/// A node whose `--join` is refused for good stops with the reason and a
/// failure status, instead of serving as a node of no cluster until it is
/// killed (it did: the error surfaced only after Ctrl-C).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_join_is_refused_exits_with_the_reason() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Stands in for a seed node that refuses the join with a final 4xx.
    let seed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let seed_addr = seed.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = seed.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let body = r#"{"error":"refused by the test","leader":null}"#;
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args: Vec<std::ffi::OsString> =
        ["serve", "--id", "node-9", "--raft-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir"]
            .map(Into::into)
            .into();
    args.extend([dir.path().into(), "--join".into(), seed_addr.to_string().into()]);
    let child = spawn_node(args, true);
    let output = tokio::time::timeout(SECOND * 20, child.wait_with_output()).await;
    let output = output.expect("the node kept running after its join was refused").expect("output");
    assert!(!output.status.success(), "{output:?}");
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("joining through") && message.contains("refused by the test"), "{message}");
}

/// SIGTERM stops a node even while a client holds a request half sent:
/// requests under way get the request timeout and a second, then the node
/// stops without them. It waited for such a client for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_node_that_a_stalled_client_holds() {
    use tokio::io::AsyncWriteExt;
    let mut cluster = LocalCluster::new(BINARY.as_ref(), 1, &[]).expect("cluster");
    let config = cluster.root.path().join("raftkv.toml");
    std::fs::write(&config, "request_timeout = \"1s\"\n").expect("config");
    let config = config.display().to_string();
    let mut args: Vec<std::ffi::OsString> = cluster.nodes[0].args().iter().map(Into::into).collect();
    args.extend(["--bootstrap".into(), "--config".into(), config.into()]);
    let mut child = spawn_node(args, false);
    cluster.leader(&[0], SECOND * 10).await.expect("leader");
    let mut stalled = tokio::net::TcpStream::connect(&cluster.nodes[0].http).await.expect("connect");
    stalled
        .write_all(b"PUT /kv/a HTTP/1.1\r\nHost: raftkv\r\ncontent-length: 10\r\n\r\nabc")
        .await
        .expect("write");
    let pid = child.id().expect("pid").to_string();
    let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(sent.success());
    let exited = tokio::time::timeout(SECOND * 15, child.wait()).await;
    let status = exited.expect("the node did not stop: the stalled client held it").expect("wait");
    assert!(status.success(), "{status:?}");
    drop(stalled);
    cluster.stop().await;
}

/// Starts `raftkv` with `args`, killed when dropped; its output captured
/// (for `wait_with_output`) or discarded.
fn spawn_node(args: Vec<std::ffi::OsString>, capture: bool) -> tokio::process::Child {
    let output = || if capture { std::process::Stdio::piped() } else { std::process::Stdio::null() };
    tokio::process::Command::new(BINARY)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(output())
        .stderr(output())
        .kill_on_drop(true)
        .spawn()
        .expect("serve")
}
