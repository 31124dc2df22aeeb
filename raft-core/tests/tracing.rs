//! A node's log lines say which node wrote them, and in which term: the node
//! loop runs inside `raft{node=…}`, each stretch of one role in one term
//! inside `follower{term=…}`, `candidate{term=…}` or `leader{term=…}`, and
//! each RPC it handles inside `rpc{kind, from, term}` (issue #15).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_the_node_id_and_term() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("raft_core=debug")
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");

    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let term = cluster.raft(leader).current_term();
    cluster.raft(leader).apply(num(1), Duration::from_secs(5)).await.expect("apply");
    cluster.shutdown().await;

    let text = captured.text();
    let won = format!("raft{{node={}}}:candidate{{term={term}}}", id(leader));
    assert!(
        text.lines().any(|line| line.contains(&won) && line.contains("won the election")),
        "no line says that {} won in term {term}:\n{text}",
        id(leader)
    );
    // Handling an RPC is a span of its own inside the node's.
    let follower = (leader + 1) % 3;
    let handled = format!(
        "raft{{node={}}}:follower{{term={term}}}:rpc{{kind=\"append_entries\" from={} term={term}}}",
        id(follower),
        id(leader)
    );
    assert!(text.contains(&handled), "no {handled} span:\n{text}");
}
