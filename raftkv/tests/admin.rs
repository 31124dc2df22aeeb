//! raftkv as real processes, tried as an operator and a hostile client would
//! (issue #23): forwarded admin paths name exactly what the client named,
//! joins are all-or-nothing and checked, the admin token guards cluster
//! changes, a new leader never answers a `default` read from before the
//! writes its predecessor acknowledged, a reused request id is refused, a
//! removed node knows it, and every error is JSON.

use raftkv::client::Outcome;
use raftkv::demo::{LocalCluster, write};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_raftkv");
const SECOND: Duration = Duration::from_secs(1);

async fn three_nodes(extra: &[&str]) -> LocalCluster {
    let mut cluster = LocalCluster::new(BINARY.as_ref(), 3, extra).expect("cluster");
    cluster.form().await.expect("three nodes form a cluster");
    cluster
}

/// A status and the JSON error body, which must have the documented fields.
async fn error_of(answer: reqwest::Response) -> (u16, serde_json::Value) {
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("body");
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("a {status} whose body is not JSON: {text:?}"));
    assert!(body["error"].is_string() && body.get("leader").is_some(), "{body}");
    (status, body)
}

async fn leader_and_follower(cluster: &LocalCluster) -> (usize, usize) {
    let leader = cluster.leader(&[0, 1, 2], SECOND * 10).await.expect("a leader");
    (leader, (leader + 1) % 3)
}

async fn voters(cluster: &LocalCluster, i: usize) -> Vec<String> {
    let status = cluster.client(i).status().await.expect("status");
    status.configuration.servers.iter().map(|s| s.id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_admin_paths_joins_request_ids_and_json_errors() {
    let mut cluster = three_nodes(&[]).await;
    let (leader, follower) = leader_and_follower(&cluster).await;
    let (l, f) = (cluster.nodes[leader].http.clone(), cluster.nodes[follower].http.clone());
    let http = reqwest::Client::new();
    write(&cluster, &[leader], "victim", "alive").await.expect("write");

    // Item 3: the follower forwards the path as sent, never re-formed.
    for path in ["..%2F..%2Fkv%2Fvictim", "node-3%3Fx", "nobody"] {
        for node in [&f, &l] {
            let answer =
                http.delete(format!("http://{node}/cluster/servers/{path}")).send().await.expect("send");
            let (status, body) = error_of(answer).await;
            assert_eq!(status, 404, "DELETE /cluster/servers/{path} via {node}: {body}");
        }
    }
    match cluster.client(leader).get("victim", "consistent").await {
        Outcome::Ok(value) => assert_eq!(value, b"alive"),
        other => panic!("the key was touched by an admin path: {other:?}"),
    }
    assert_eq!(voters(&cluster, leader).await.len(), 3);

    // Item 4: a join naming an existing member, or another member's address,
    // changes nothing; bad addresses are refused.
    let status = cluster.client(leader).status().await.expect("status");
    let leader_id = status.id.clone();
    let follower_id = cluster.nodes[follower].id.clone();
    let joins = [
        (
            serde_json::json!({"id": leader_id, "raft_addr": cluster.nodes[leader].raft, "http_addr": "127.0.0.1:9"}),
            409,
        ),
        (
            serde_json::json!({"id": "node-9", "raft_addr": cluster.nodes[follower].raft, "http_addr": "127.0.0.1:9"}),
            409,
        ),
        (
            serde_json::json!({"id": follower_id, "raft_addr": "127.0.0.1:19", "http_addr": "127.0.0.1:9"}),
            409,
        ),
        (serde_json::json!({"id": "node-9", "raft_addr": "not an address", "http_addr": "127.0.0.1:9"}), 400),
    ];
    for (join, expected) in joins {
        let answer = http.post(format!("http://{f}/cluster/join")).json(&join).send().await.expect("send");
        let (status, body) = error_of(answer).await;
        assert_eq!(status, expected, "{join}: {body}");
        assert_eq!(body["retryable"], false, "{body}");
    }
    let after = cluster.client(follower).status().await.expect("status");
    assert_eq!(after.http_addrs, status.http_addrs, "a refused join changed an HTTP address");
    assert_eq!(voters(&cluster, follower).await.len(), 3, "a refused join changed the configuration");
    let forwarded = cluster.client(follower).put("after-joins", b"1".to_vec(), None).await;
    assert!(
        matches!(forwarded, Outcome::Ok(_)),
        "writes through a follower still reach the leader: {forwarded:?}"
    );

    // An id with a slash joins and is removed through a follower.
    let join = serde_json::json!({"id": "a/b", "raft_addr": "127.0.0.1:19", "http_addr": "127.0.0.1:29", "voter": false});
    let answer = http.post(format!("http://{f}/cluster/join")).json(&join).send().await.expect("send");
    assert_eq!(answer.status().as_u16(), 200, "{}", answer.text().await.unwrap_or_default());
    assert!(voters(&cluster, leader).await.contains(&"a/b".to_string()));
    let deadline = Instant::now() + SECOND * 10;
    loop {
        let answer = http.delete(format!("http://{f}/cluster/servers/a%2Fb")).send().await.expect("send");
        let status = answer.status().as_u16();
        if status == 200 {
            break;
        }
        assert!(
            status == 409 && Instant::now() < deadline,
            "{status}: {}",
            answer.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster
        .wait_status(leader, "a/b removed", SECOND * 10, |s| s.configuration.servers.len() == 3)
        .await
        .expect("removed");

    // Item 6: a request id reused for another request is 422 and applies nothing.
    let client = cluster.client(follower);
    let first = match client.put("idem", b"1".to_vec(), Some("id-1")).await {
        Outcome::Ok(answer) => answer.index,
        other => panic!("{other:?}"),
    };
    for attempt in [("idem", Some(b"2".to_vec())), ("other", Some(b"1".to_vec())), ("idem", None)] {
        let request = match attempt.clone() {
            (key, Some(value)) => http.put(format!("http://{f}/kv/{key}")).body(value),
            (key, None) => http.delete(format!("http://{f}/kv/{key}")),
        };
        let answer = request.header("raftkv-request-id", "id-1").send().await.expect("send");
        let (status, body) = error_of(answer).await;
        assert_eq!(status, 422, "{attempt:?}: {body}");
    }
    match client.put("idem", b"1".to_vec(), Some("id-1")).await {
        Outcome::Ok(answer) => assert_eq!(answer.index, first, "a true retry still answers the first index"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(cluster.client(leader).get("other", "consistent").await, Outcome::Absent));
    assert_eq!(
        match client.get("idem", "consistent").await {
            Outcome::Ok(v) => v,
            o => panic!("{o:?}"),
        },
        b"1"
    );

    // Item 8: every error is JSON.
    let cases = [
        (http.get(format!("http://{f}/kv/%FF")), 400),
        (http.post(format!("http://{f}/kv/x")), 405),
        (http.get(format!("http://{f}/kv/{}", "k".repeat(9_000))), 414),
        (http.get(format!("http://{f}/kv/x")).header("x-filler", "v".repeat(40_000)), 431),
    ];
    for (request, expected) in cases {
        let (status, body) = error_of(request.send().await.expect("send")).await;
        assert_eq!(status, expected, "{body}");
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_guards_cluster_changes_and_joins_carry_it() {
    let mut cluster = LocalCluster::new(BINARY.as_ref(), 2, &[]).expect("cluster");
    let token_file = cluster.root.path().join("admin-token");
    std::fs::write(&token_file, "operator-secret-0123456789\n").expect("token file");
    let token_flag = ["--admin-token-file".to_string(), token_file.display().to_string()];
    cluster.start(0, &[&token_flag[..], &["--bootstrap".into()]].concat()).expect("start");
    cluster.leader(&[0], SECOND * 10).await.expect("leader");
    let seed = cluster.nodes[0].http.clone();
    // The joining node carries the token it was given.
    cluster.start(1, &[&token_flag[..], &["--join".into(), seed.clone()]].concat()).expect("start");
    cluster
        .wait_status(0, "two voters", SECOND * 20, |s| s.configuration.servers.len() == 2)
        .await
        .expect("joined with the token");
    let http = reqwest::Client::new();
    let node = &cluster.nodes[1].http;
    let calls = [
        http.post(format!("http://{node}/cluster/transfer")),
        http.delete(format!("http://{node}/cluster/servers/node-2")),
        http.post(format!("http://{node}/cluster/join")).json(
            &serde_json::json!({"id": "node-7", "raft_addr": "127.0.0.1:17", "http_addr": "127.0.0.1:27"}),
        ),
    ];
    for call in calls {
        for auth in [None, Some("Bearer wrong-token-0123456789"), Some("operator-secret-0123456789")] {
            let call = call.try_clone().expect("clone");
            let call = match auth {
                Some(value) => call.header("authorization", value),
                None => call,
            };
            let (status, body) = error_of(call.send().await.expect("send")).await;
            assert_eq!(status, 401, "{auth:?}: {body}");
        }
    }
    assert_eq!(voters(&cluster, 0).await.len(), 2, "a refused call changed the configuration");
    // Key writes need no token; cluster changes with it work.
    write(&cluster, &[1], "k", "v").await.expect("a write needs no token");
    let answer = http
        .post(format!("http://{node}/cluster/transfer"))
        .header("authorization", "Bearer operator-secret-0123456789")
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status().as_u16(), 200, "{}", answer.text().await.unwrap_or_default());
    cluster.stop().await;
}

/// One client writes a counter in a loop, readers ask every node for it
/// with `consistency=default` in loops, and leadership moves again and
/// again: no read may return less than what was acknowledged before it was
/// sent (before the fix, a new leader answered from a state one write
/// behind for a few milliseconds after taking over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_never_answers_a_default_read_older_than_an_acknowledged_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let mut cluster = three_nodes(&[]).await;
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let clients: Vec<_> = (0..3).map(|i| cluster.client(i)).collect();
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let value = format!("{n:08}").into_bytes();
                if let Outcome::Ok(_) = clients[n as usize % 3].put("counter", value, None).await {
                    acked.fetch_max(n, Ordering::SeqCst);
                }
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let client = cluster.client(i);
            let (acked, stop) = (acked.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut reads, mut stale) = (0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let floor = acked.load(Ordering::SeqCst);
                    if let Outcome::Ok(value) = client.get("counter", "default").await {
                        reads += 1;
                        let read: u64 = String::from_utf8_lossy(&value).parse().unwrap_or(0);
                        if read < floor {
                            stale.push(format!("node {i} read {read} after {floor} was acknowledged"));
                        }
                    }
                }
                (reads, stale)
            })
        })
        .collect();
    let http = reqwest::Client::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Ok(leader) = cluster.leader(&[0, 1, 2], SECOND * 5).await {
            let _ = http.post(format!("http://{}/cluster/transfer", cluster.nodes[leader].http)).send().await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let (mut reads, mut stale) = (0, Vec::new());
    for reader in readers {
        let (n, found) = reader.await.expect("reader");
        reads += n;
        stale.extend(found);
    }
    assert!(reads > 100 && acked.load(Ordering::SeqCst) > 20, "{reads} reads, {acked:?} writes");
    assert!(stale.is_empty(), "{} stale default reads of {reads}:\n{}", stale.len(), stale.join("\n"));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_says_so_serves_nothing_and_refuses_to_restart_on_its_directory() {
    let mut cluster = three_nodes(&[]).await;
    let (leader, _) = leader_and_follower(&cluster).await;
    let removed = (leader + 2) % 3;
    write(&cluster, &[leader], "k", "v").await.expect("write");
    let http = reqwest::Client::new();
    let id = cluster.nodes[removed].id.clone();
    let answer = http
        .delete(format!("http://{}/cluster/servers/{id}", cluster.nodes[leader].http))
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status().as_u16(), 200, "{}", answer.text().await.unwrap_or_default());
    if let Err(error) =
        cluster.wait_status(removed, "the node to know it was removed", SECOND * 10, |s| s.removed).await
    {
        let status = cluster.client(removed).status().await;
        let log = std::fs::read_to_string(&cluster.nodes[removed].log).unwrap_or_default();
        let marked = raftkv::membership::was_member(&cluster.nodes[removed].dir);
        panic!("{error}; marked a member: {marked}; status: {status:?}\nlog:\n{log}");
    }
    for consistency in ["stale", "default", "consistent"] {
        let answer = http
            .get(format!("http://{}/kv/k?consistency={consistency}", cluster.nodes[removed].http))
            .send()
            .await
            .expect("send");
        let (status, body) = error_of(answer).await;
        assert_eq!(status, 410, "{consistency}: {body}");
    }
    cluster.kill(removed).await;
    let mut again = std::process::Command::new(BINARY)
        .args(cluster.nodes[removed].args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("restart");
    let deadline = Instant::now() + SECOND * 15;
    let exit = loop {
        if let Some(exit) = again.try_wait().expect("wait") {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = again.kill();
            panic!("a removed node restarted on its data directory and kept running");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    again.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read");
    assert!(!exit.success(), "{stderr}");
    assert!(stderr.contains("removed") && stderr.contains("--join"), "{stderr}");
    cluster.stop().await;
}

/// A raw request the HTTP parser may refuse before raftkv sees it: the
/// answer is still an answer (a status line), whatever its body.
#[test]
fn a_raw_non_utf8_path_gets_an_answer() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut cluster = rt.block_on(async {
        let mut cluster = LocalCluster::new(BINARY.as_ref(), 1, &[]).expect("cluster");
        cluster.start(0, &["--bootstrap".into()]).expect("start");
        cluster.leader(&[0], SECOND * 10).await.expect("leader");
        cluster
    });
    let mut stream = std::net::TcpStream::connect(&cluster.nodes[0].http).expect("connect");
    stream.set_read_timeout(Some(SECOND * 5)).expect("timeout");
    stream.write_all(b"GET /kv/\xff\xfe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    eprintln!("{text}");
    rt.block_on(cluster.stop());
}

/// A node joining a cluster whose log is compacted catches up by snapshot,
/// which is routine: the leader's log has no ERROR line for it (before, every
/// such catch-up logged `ERROR … log index 1 is compacted`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_catch_up_logs_no_error() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = root.path().join("raftkv.toml");
    std::fs::write(
        &config,
        "[raft]\nsnapshot_threshold = 10\nsnapshot_interval = \"100ms\"\ntrailing_logs = 0\n",
    )
    .expect("config");
    let config = config.display().to_string();
    let mut cluster = LocalCluster::new(BINARY.as_ref(), 2, &["--config", &config]).expect("cluster");
    cluster.start(0, &["--bootstrap".into()]).expect("start");
    cluster.leader(&[0], SECOND * 10).await.expect("leader");
    for n in 0..40 {
        write(&cluster, &[0], &format!("k{n}"), "v").await.expect("write");
    }
    let applied = cluster.client(0).status().await.expect("status").applied_index;
    cluster
        .wait_status(0, "a snapshot past the writes", SECOND * 10, |_| {
            std::fs::read_to_string(&cluster.nodes[0].log).is_ok_and(|log| log.contains("snapshot taken"))
        })
        .await
        .expect("snapshot");
    let seed = cluster.nodes[0].http.clone();
    cluster.start(1, &["--join".into(), seed]).expect("start");
    cluster
        .wait_status(1, "the new node to catch up", SECOND * 20, |s| {
            s.applied_index >= applied && s.keys == 40
        })
        .await
        .expect("caught up");
    let log = std::fs::read_to_string(&cluster.nodes[0].log).expect("log");
    let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
    assert!(errors.is_empty(), "the leader logged errors for a routine catch-up:\n{}", errors.join("\n"));
    assert!(log.contains("sending a snapshot"), "the new node did not catch up by snapshot:\n{log}");
    cluster.stop().await;
}
