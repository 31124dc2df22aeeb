//! The documented metrics appear, with sane values, when a recorder is
//! installed: a 3-node cluster applies commands and snapshots, and a
//! recorder of our own sees every metric of `docs/metrics.md` that such a
//! run produces, each carrying its node's id (issue #15).

mod support;

use metrics::{
    Counter, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use raft_core::metrics::METRICS;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const SECOND: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().expect("lock").push(value);
    }
}

struct Value(AtomicU64);

impl GaugeFn for Value {
    fn increment(&self, value: f64) {
        self.set(self.get() + value);
    }
    fn decrement(&self, value: f64) {
        self.set(self.get() - value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl Value {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Every metric registered, by name and labels.
#[derive(Default)]
struct Registry {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<Value>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
    described: Mutex<BTreeMap<String, Option<Unit>>>,
}

/// `name{label=value,...}`, labels in order.
fn name(key: &Key) -> String {
    let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

struct Installed(&'static Registry);

impl Recorder for Installed {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.0.described.lock().expect("lock").insert(key.as_str().to_owned(), unit);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.0.described.lock().expect("lock").insert(key.as_str().to_owned(), unit);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.0.described.lock().expect("lock").insert(key.as_str().to_owned(), unit);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let counter = self.0.counters.lock().expect("lock").entry(name(key)).or_default().clone();
        Counter::from_arc(counter)
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let gauge = self
            .0
            .gauges
            .lock()
            .expect("lock")
            .entry(name(key))
            .or_insert_with(|| Arc::new(Value(AtomicU64::new(0))))
            .clone();
        Gauge::from_arc(gauge)
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let samples = self.0.histograms.lock().expect("lock").entry(name(key)).or_default().clone();
        Histogram::from_arc(samples)
    }
}

impl Registry {
    fn counter(&self, name: &str) -> u64 {
        self.counters.lock().expect("lock").get(name).map_or(0, |c| c.load(Ordering::Relaxed))
    }
    fn gauge(&self, name: &str) -> Option<f64> {
        self.gauges.lock().expect("lock").get(name).map(|g| g.get())
    }
    fn samples(&self, name: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .expect("lock")
            .get(name)
            .map(|h| h.0.lock().expect("lock").clone())
            .unwrap_or_default()
    }
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.counters.lock().expect("lock").keys().cloned().collect();
        names.extend(self.gauges.lock().expect("lock").keys().cloned());
        names.extend(self.histograms.lock().expect("lock").keys().cloned());
        names
    }
}

fn assert_durations(what: &str, samples: &[f64]) {
    assert!(!samples.is_empty(), "no {what} samples");
    assert!(samples.iter().all(|s| (0.0..10.0).contains(s)), "{what}: {samples:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_reports_the_documented_metrics() {
    let registry: &'static Registry = Box::leak(Box::default());
    metrics::set_global_recorder(Installed(registry)).expect("the only recorder of this test binary");

    let cluster = TestCluster::new(3).await;
    let leader = cluster.leader().await;
    let raft = cluster.raft(leader);
    for i in 0..50u64 {
        raft.apply(num(i), SECOND * 5).await.expect("apply");
    }
    let last = raft.last_index();
    for i in 0..3 {
        let node = cluster.raft(i);
        wait_for("every node to apply", SECOND * 10, || (node.applied_index() >= last).then_some(())).await;
    }
    raft.snapshot().await.expect("snapshot");

    let l = |metric: &str| format!("{metric}{{node={}}}", id(leader));
    // The lease is checked on the leader's timer, a fifth of the lease apart:
    // a fast run can finish its applies before the first check.
    wait_for("a lease check on the leader", SECOND * 5, || {
        (!registry.samples(&l("raft.leader.last_contact")).is_empty()).then_some(())
    })
    .await;
    assert!(registry.counter(&l("raft.apply")) >= 50, "raft.apply: {}", registry.counter(&l("raft.apply")));
    assert_durations("raft.commit_time", &registry.samples(&l("raft.commit_time")));
    assert!(registry.counter(&l("raft.state.leader")) >= 1);
    assert_durations("raft.leader.last_contact", &registry.samples(&l("raft.leader.last_contact")));
    assert_durations("raft.snapshot.create", &registry.samples(&l("raft.snapshot.create")));
    assert_durations("raft.snapshot.persist", &registry.samples(&l("raft.snapshot.persist")));
    assert_durations("raft.fsm.snapshot", &registry.samples(&l("raft.fsm.snapshot")));
    for i in 0..3 {
        let n = |metric: &str| format!("{metric}{{node={}}}", id(i));
        assert!(registry.counter(&n("raft.fsm.applied")) >= 50, "node {i}: raft.fsm.applied");
        assert_durations("raft.fsm.apply", &registry.samples(&n("raft.fsm.apply")));
        assert!(registry.gauge(&n("raft.applied_index")) >= Some(last as f64), "node {i}: applied_index");
        assert!(registry.gauge(&n("raft.commit_index")) >= Some(last as f64), "node {i}: commit_index");
        assert!(registry.gauge(&n("raft.last_index")) >= Some(last as f64), "node {i}: last_index");
        assert!(registry.gauge(&n("raft.term")) >= Some(1.0), "node {i}: term");
        if i == leader {
            continue;
        }
        assert_durations("raft.rpc.append_entries", &registry.samples(&n("raft.rpc.append_entries")));
        let p = |metric: &str| format!("{metric}{{node={},peer={}}}", id(leader), id(i));
        assert_durations(
            "raft.replication.append_entries.rpc",
            &registry.samples(&p("raft.replication.append_entries.rpc")),
        );
        assert!(
            registry.counter(&p("raft.replication.append_entries.logs")) >= 50,
            "entries sent to node {i}"
        );
        assert_durations("raft.replication.heartbeat", &registry.samples(&p("raft.replication.heartbeat")));
    }
    // Every metric the run produced is documented, with its unit.
    let documented: Vec<&str> = METRICS.iter().map(|(name, _, _)| *name).collect();
    for name in registry.names() {
        let bare = name.split('{').next().unwrap_or_default();
        assert!(documented.contains(&bare), "{bare} is not in raft_core::metrics::METRICS");
    }
    let described = registry.described.lock().expect("lock").clone();
    for (name, unit, _) in METRICS {
        assert!(described.contains_key(*name), "{name} was not described");
        if *unit == "seconds" {
            assert_eq!(described[*name], Some(Unit::Seconds), "{name}");
        }
    }
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .expect("docs/metrics.md");
    for (name, unit, _) in METRICS {
        assert!(page.contains(&format!("| `{name}` | {unit} |")), "docs/metrics.md lacks `{name}` ({unit})");
    }
    cluster.shutdown().await;
}
