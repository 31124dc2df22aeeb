//! `raftkv demo`: three `raftkv serve` processes on loopback, a leader
//! SIGKILLed mid-run, and a check that every node ends with every write.
//! Everything it starts is stopped and removed when it ends, also on Ctrl-C.

use crate::client::{Client, Outcome};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One `raftkv serve` child process.
pub struct Process {
    /// The node id.
    pub id: String,
    /// Its HTTP address.
    pub http: String,
    /// Its Raft address.
    pub raft: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// Its log file.
    pub log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Process {
    /// The `raftkv serve` arguments it starts with (id, addresses, data
    /// directory), for starting it some other way.
    pub fn args(&self) -> &[String] {
        &self.args
    }
}

/// A set of local `raftkv serve` processes in one temporary directory.
pub struct LocalCluster {
    /// The `raftkv` binary.
    pub binary: PathBuf,
    /// The processes, by index.
    pub nodes: Vec<Process>,
    /// Where their data and logs are (removed on drop).
    pub root: tempfile::TempDir,
}

/// A free loopback port (bound and released; good enough for a demo).
fn free_addr() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

impl LocalCluster {
    /// Prepares `n` nodes (none started yet) for the binary at `binary`.
    pub fn new(binary: &Path, n: usize, extra: &[&str]) -> DemoResult<Self> {
        let root = tempfile::Builder::new().prefix("raftkv-demo-").tempdir()?;
        let mut nodes = Vec::new();
        for i in 0..n {
            let (id, http, raft) = (format!("node-{}", i + 1), free_addr()?, free_addr()?);
            let dir = root.path().join(&id);
            let log = root.path().join(format!("{id}.log"));
            let mut args: Vec<String> = vec![
                "serve".into(),
                "--id".into(),
                id.clone(),
                "--raft-addr".into(),
                raft.clone(),
                "--http-addr".into(),
                http.clone(),
                "--data-dir".into(),
                dir.display().to_string(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            nodes.push(Process { id, http, raft, dir, log, args, child: None });
        }
        Ok(Self { binary: binary.to_owned(), nodes, root })
    }

    /// Starts node `i` with these extra flags (e.g. `--bootstrap`).
    pub fn start(&mut self, i: usize, flags: &[String]) -> DemoResult<()> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&node.log)?;
        let child = Command::new(&self.binary)
            .args(&node.args)
            .args(flags)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        node.child = Some(child);
        Ok(())
    }

    /// SIGKILLs node `i` and waits for it to be gone.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops every node (SIGKILL: the demo's data is thrown away anyway).
    pub async fn stop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i).await;
        }
    }

    /// A client for node `i`.
    pub fn client(&self, i: usize) -> Client {
        Client::new(self.nodes[i].http.clone())
    }

    /// Waits until some running node says it leads; its index.
    pub async fn leader(&self, among: &[usize], within: Duration) -> DemoResult<usize> {
        let deadline = Instant::now() + within;
        loop {
            for &i in among {
                if let Some(status) = self.client(i).status().await
                    && status.state == raft_kit::RaftState::Leader
                    && status.http_addrs.contains_key(&status.id)
                {
                    return Ok(i);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no leader among nodes {among:?} within {within:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `check` holds for node `i`'s status.
    pub async fn wait_status(
        &self,
        i: usize,
        what: &str,
        within: Duration,
        check: impl Fn(&crate::http::StatusAnswer) -> bool,
    ) -> DemoResult<crate::http::StatusAnswer> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.client(i).status().await
                && check(&status)
            {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{what}: not within {within:?} (logs in {})",
                    self.nodes[i].log.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts node 0 with `--bootstrap` and the rest with `--join` it, and
    /// waits until all are voters with known HTTP addresses.
    pub async fn form(&mut self) -> DemoResult<()> {
        self.start(0, &["--bootstrap".into()])?;
        self.leader(&[0], Duration::from_secs(15)).await?;
        let seed = self.nodes[0].http.clone();
        for i in 1..self.nodes.len() {
            self.start(i, &["--join".into(), seed.clone()])?;
        }
        let n = self.nodes.len();
        self.wait_status(0, "every node to join", Duration::from_secs(20), |s| {
            s.configuration.servers.len() == n && s.http_addrs.len() == n
        })
        .await?;
        Ok(())
    }
}

/// Writes `key = value` through the nodes in `via`, retrying (with one
/// request id, so it applies once) until a node says it was applied.
pub async fn write(cluster: &LocalCluster, via: &[usize], key: &str, value: &str) -> DemoResult<u64> {
    let request_id = format!("demo-{key}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut attempt = 0;
    loop {
        let node = via[attempt % via.len()];
        attempt += 1;
        match cluster.client(node).put(key, value.as_bytes().to_vec(), Some(&request_id)).await {
            Outcome::Ok(answer) => return Ok(answer.index),
            other if Instant::now() > deadline => return Err(format!("writing {key}: {other:?}").into()),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Runs the demo with the `raftkv` binary at `binary`.
pub async fn run(binary: &Path) -> DemoResult<()> {
    let mut cluster = LocalCluster::new(binary, 3, &[])?;
    println!("raftkv demo: three nodes on loopback, data in {}", cluster.root.path().display());
    let outcome = tokio::select! {
        outcome = script(&mut cluster) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    cluster.stop().await;
    println!("stopped every node; removing {}", cluster.root.path().display());
    outcome
}

async fn script(cluster: &mut LocalCluster) -> DemoResult<()> {
    let started = Instant::now();
    cluster.form().await?;
    for (i, node) in cluster.nodes.iter().enumerate() {
        println!(
            "  {} raft {} http {} (log: {})",
            node.id,
            node.raft,
            node.http,
            cluster.nodes[i].log.display()
        );
    }
    let all: Vec<usize> = (0..cluster.nodes.len()).collect();
    let leader = cluster.leader(&all, Duration::from_secs(10)).await?;
    println!(
        "cluster formed in {:.1} s; leader {}",
        started.elapsed().as_secs_f64(),
        cluster.nodes[leader].id
    );

    let mut expected = Vec::new();
    for n in 0..100 {
        let (key, value) = (format!("key-{n:03}"), format!("value-{n}"));
        write(cluster, &all, &key, &value).await?;
        expected.push((key, value));
    }
    println!("wrote 100 keys through all three nodes (followers forward to the leader)");

    let killed_at = Instant::now();
    cluster.kill(leader).await;
    println!("SIGKILLed the leader {}", cluster.nodes[leader].id);
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let new_leader = cluster.leader(&rest, Duration::from_secs(15)).await?;
    println!("new leader {} after {:.2} s", cluster.nodes[new_leader].id, killed_at.elapsed().as_secs_f64());
    for n in 100..200 {
        let (key, value) = (format!("key-{n:03}"), format!("value-{n}"));
        write(cluster, &rest, &key, &value).await?;
        expected.push((key, value));
    }
    println!("wrote 100 more keys with one node down");

    cluster.start(leader, &[])?;
    let target =
        cluster.client(new_leader).status().await.ok_or("the leader stopped answering")?.commit_index;
    let restarted_at = Instant::now();
    cluster
        .wait_status(leader, "the restarted node to catch up", Duration::from_secs(15), |s| {
            s.applied_index >= target
        })
        .await?;
    println!(
        "restarted {}: caught up to index {target} in {:.2} s",
        cluster.nodes[leader].id,
        restarted_at.elapsed().as_secs_f64()
    );

    let mut checked = 0;
    for &i in &all {
        for (key, value) in &expected {
            for consistency in ["consistent", "stale"] {
                match cluster.client(i).get(key, consistency).await {
                    Outcome::Ok(got) if got == value.as_bytes() => checked += 1,
                    other => {
                        return Err(format!(
                            "{} {consistency} read of {key}: {other:?}",
                            cluster.nodes[i].id
                        )
                        .into());
                    }
                }
            }
        }
    }
    println!(
        "checked all {} keys on all 3 nodes, consistent and stale reads: {checked} reads, all correct",
        expected.len()
    );
    println!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
