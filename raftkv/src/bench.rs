//! `raftkv bench`: closed-loop HTTP load against a running cluster — each
//! client sends its next request as soon as the last is answered — with a
//! progress bar and an HDR latency histogram at the end.

use crate::client::{Client, Outcome};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchSettings {
    /// The nodes' HTTP addresses; clients spread over them.
    pub targets: Vec<String>,
    /// Concurrent clients.
    pub clients: usize,
    /// How long to run.
    pub duration: Duration,
    /// Bytes per value written.
    pub value_size: usize,
    /// The share of requests that are (consistent) reads, 0.0 to 1.0.
    pub read_ratio: f64,
    /// Distinct keys.
    pub keys: u64,
}

/// What a run measured.
#[derive(Debug)]
pub struct BenchReport {
    /// Requests answered with success.
    pub ok: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Latencies of successful requests, in microseconds.
    pub histogram: Histogram<u64>,
}

impl BenchReport {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line: rate and p50/p99/p999.
    pub fn summary(&self, clients: usize) -> String {
        let h = &self.histogram;
        format!(
            "clients={clients} ok={} failed={} requests_per_sec={:.0} p50_us={} p99_us={} p999_us={}",
            self.ok,
            self.failed,
            self.rate(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999)
        )
    }
}

/// Runs the load; `progress` shows a bar on a terminal.
pub async fn run(settings: &BenchSettings, progress: bool) -> BenchReport {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + settings.duration;
    let mut tasks = Vec::new();
    for c in 0..settings.clients {
        let client = Client::new(settings.targets[c % settings.targets.len()].clone());
        let (ok, failed, settings) = (ok.clone(), failed.clone(), settings.clone());
        tasks.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let value = vec![b'v'; settings.value_size];
            let mut n = c as u64;
            while Instant::now() < deadline {
                n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let key = format!("bench-{}", (n >> 33) % settings.keys.max(1));
                let read = ((n >> 11) as f64 / (1u64 << 53) as f64) < settings.read_ratio;
                let began = Instant::now();
                let success = if read {
                    matches!(client.get(&key, "consistent").await, Outcome::Ok(_) | Outcome::Absent)
                } else {
                    matches!(client.put(&key, value.clone(), None).await, Outcome::Ok(_))
                };
                if success {
                    let _ = histogram.record(began.elapsed().as_micros().max(1) as u64);
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            histogram
        }));
    }
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new(settings.duration.as_secs().max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} s {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(bar) = &bar {
            bar.set_position(started.elapsed().as_secs());
            let rate = ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
            bar.set_message(format!("{rate:.0} req/s"));
        }
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    for task in tasks {
        if let Ok(part) = task.await {
            let _ = histogram.add(part);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    BenchReport {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        histogram,
    }
}
