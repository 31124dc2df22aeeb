//! Writes `docs/benchmarks.md` from the benchmark results on disk: the
//! criterion estimates under `target/criterion`, the cluster benchmark's
//! output in `target/cluster-bench.txt` and the openraft comparison's in
//! `target/compare-bench.txt`. Nothing in the tables is typed by hand.
//!
//! ```text
//! cargo bench -p benches
//! cargo run --release -p benches --bin cluster -- --setup all | tee target/cluster-bench.txt
//! cargo run --release -p benches --features openraft --bin compare | tee target/compare-bench.txt
//! cargo run --release -p benches --bin report
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One criterion benchmark's result.
struct Estimate {
    /// Mean time per iteration, in nanoseconds.
    mean_ns: f64,
    /// Bytes or elements per iteration, if the benchmark declared them.
    bytes: Option<f64>,
    elements: Option<f64>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Reads every `new/estimates.json` with its `benchmark.json`, keyed by
/// (group, function, value) as criterion names them.
fn read_estimates(dir: &Path, out: &mut BTreeMap<(String, String, String), Estimate>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                if let Some(estimate) = read_one(&path) {
                    out.insert(estimate.0, estimate.1);
                }
            } else {
                read_estimates(&path, out);
            }
        }
    }
}

fn read_one(dir: &Path) -> Option<((String, String, String), Estimate)> {
    let estimates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("estimates.json")).ok()?).ok()?;
    let benchmark: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("benchmark.json")).ok()?).ok()?;
    let mean_ns = estimates["mean"]["point_estimate"].as_f64()?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let key = (text(&benchmark["group_id"]), text(&benchmark["function_id"]), text(&benchmark["value_str"]));
    let bytes = benchmark["throughput"]["Bytes"].as_f64();
    let elements = benchmark["throughput"]["Elements"].as_f64();
    Some((key, Estimate { mean_ns, bytes, elements }))
}

fn time(ns: f64) -> String {
    match ns {
        ns if ns < 1_000.0 => format!("{ns:.0} ns"),
        ns if ns < 1_000_000.0 => format!("{:.1} µs", ns / 1_000.0),
        ns if ns < 1_000_000_000.0 => format!("{:.2} ms", ns / 1_000_000.0),
        ns => format!("{:.2} s", ns / 1_000_000_000.0),
    }
}

fn rate(per_second: f64) -> String {
    match per_second {
        r if r >= 1_000_000.0 => format!("{:.2} M", r / 1_000_000.0),
        r if r >= 1_000.0 => format!("{:.1} k", r / 1_000.0),
        r => format!("{r:.0}"),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("unknown".into(), |kb| format!("{} GiB", kb / (1 << 20)));
    format!("{cores} cores ({cpu}), {memory} of memory")
}

fn store_logs_table(estimates: &BTreeMap<(String, String, String), Estimate>, out: &mut String) {
    let stores = ["raw-file", "raw-prealloc", "mem", "lmdb", "redb", "wal"];
    let _ = writeln!(out, "### `store_logs`: one batch per call\n");
    let _ = writeln!(
        out,
        "Entries per second and MB/s; `raw-file` appends the same bytes to a file with one `fdatasync` per batch, `raw-prealloc` overwrites a preallocated file.\n"
    );
    let _ = writeln!(out, "| batch × payload | {} |", stores.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(stores.len()));
    for count in [1, 16, 256] {
        for payload in [128, 1024, 16384] {
            let value = format!("{count}x{payload}");
            let cells: Vec<String> = stores
                .iter()
                .map(|store| match estimates.get(&("store_logs".into(), (*store).into(), value.clone())) {
                    Some(e) => {
                        let per_second = 1e9 / e.mean_ns;
                        let mb = e.bytes.unwrap_or(0.0) * per_second / 1e6;
                        format!("{} entries/s, {mb:.1} MB/s", rate(per_second * count as f64))
                    }
                    None => "–".into(),
                })
                .collect();
            let _ = writeln!(out, "| {count} × {payload} B | {} |", cells.join(" | "));
        }
    }
    let _ = writeln!(out);
}

fn simple_table(
    estimates: &BTreeMap<(String, String, String), Estimate>,
    group: &str,
    title: &str,
    out: &mut String,
) {
    let rows: Vec<_> = estimates.iter().filter(|((g, _, _), _)| g == group).collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(out, "| benchmark | store | time per call | throughput |");
    let _ = writeln!(out, "|---|---|---|---|");
    for ((_, function, value), e) in rows {
        let per_second = 1e9 / e.mean_ns;
        let throughput = match (e.bytes, e.elements) {
            (Some(bytes), _) => format!("{:.1} MB/s", bytes * per_second / 1e6),
            (_, Some(elements)) => format!("{}/s", rate(elements * per_second)),
            _ => format!("{}/s", rate(per_second)),
        };
        let _ = writeln!(out, "| {function} | {value} | {} | {throughput} |", time(e.mean_ns));
    }
    let _ = writeln!(out);
}

fn cluster_table(root: &Path, out: &mut String) {
    let _ =
        writeln!(out, "### Cluster: three nodes in one process, closed-loop clients, 128-byte commands\n");
    let _ = writeln!(
        out,
        "Each `apply` has a 10 s timeout, as an application would set. The state machine says it never\n\
         blocks, so it runs as a task; `inmem-mem` also writes its log on the node task (`MemLogStore`).\n"
    );
    let Ok(text) = std::fs::read_to_string(root.join("target/cluster-bench.txt")) else {
        let _ = writeln!(out, "(no `target/cluster-bench.txt`: run the cluster benchmark first)\n");
        return;
    };
    result_table(&text, out);
}

/// The side-by-side run of the `compare` binary: both results per client
/// count, then the ratios.
fn compare_table(root: &Path, out: &mut String) {
    let _ = writeln!(
        out,
        "### raft-kit beside openraft {OPENRAFT}: in memory, direct network, 128-byte commands\n"
    );
    let _ = writeln!(
        out,
        "Both sides run back to back in one process, in rounds (the side that goes first alternates);\n\
         the table shows the round with the median throughput ratio. Neither side's clients set a\n\
         timeout (openraft's `client_write` takes none; raft-kit's `apply` gets a zero timeout, which\n\
         means none; in an interleaved comparison a 10 s timeout made no measurable difference,\n\
         0.98×). On this shared virtual machine the same run varies by up to about 40% from one\n\
         minute to the next, so compare the two sides within this table, not with the cluster table\n\
         above. openraft {OPENRAFT} is its newest release: 0.10 has been published only as\n\
         pre-releases (0.10.0-alpha.37 when this was written), which `cargo add openraft` does not\n\
         pick, so it is not yet what a user would choose.\n"
    );
    let Ok(text) = std::fs::read_to_string(root.join("target/compare-bench.txt")) else {
        let _ = writeln!(out, "(no `target/compare-bench.txt`: run the compare binary first)\n");
        return;
    };
    result_table(&text, out);
    let _ = writeln!(
        out,
        "| clients | raft-kit / openraft applies/s (median round) | lowest – highest round | rounds | raft-kit / openraft p50 |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for fields in tagged_lines(text.as_str(), "RATIO ") {
        let get = |k: &str| fields.get(k).copied().unwrap_or("–");
        let _ = writeln!(
            out,
            "| {} | {}× | {}× – {}× | {} | {}× |",
            get("clients"),
            get("applies_per_sec"),
            get("min"),
            get("max"),
            get("rounds"),
            get("p50")
        );
    }
    let _ = writeln!(out);
}

/// The openraft version the workspace pins for the comparison.
const OPENRAFT: &str = "0.9.21";

/// The `key=value` fields of every line of `text` that starts with `tag`.
fn tagged_lines<'a>(text: &'a str, tag: &'a str) -> impl Iterator<Item = BTreeMap<&'a str, &'a str>> + 'a {
    text.lines()
        .filter_map(move |l| l.strip_prefix(tag))
        .map(|line| line.split_whitespace().filter_map(|kv| kv.split_once('=')).collect())
}

/// One row per `RESULT` line of a cluster or compare run.
fn result_table(text: &str, out: &mut String) {
    let _ = writeln!(out, "| setup | clients | applies/s | p50 | p99 | p999 |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for fields in tagged_lines(text, "RESULT ") {
        let get = |k: &str| fields.get(k).copied().unwrap_or("–");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} µs | {} µs | {} µs |",
            get("setup"),
            get("clients"),
            get("applies_per_sec"),
            get("p50_us"),
            get("p99_us"),
            get("p999_us")
        );
    }
    let _ = writeln!(out);
}

/// Rewrites `docs/benchmarks.md` from the benchmark results under `target/`.
#[derive(clap::Parser)]
struct Args {}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {} = clap::Parser::parse();
    let root = workspace_root();
    let mut estimates = BTreeMap::new();
    read_estimates(&root.join("target/criterion"), &mut estimates);
    let mut out = String::new();
    let _ = writeln!(out, "# raft-kit benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `cargo run --release -p benches --bin report` from the criterion results in"
    );
    let _ = writeln!(
        out,
        "`target/criterion`, the cluster benchmark's output in `target/cluster-bench.txt` and the openraft"
    );
    let _ = writeln!(out, "comparison's output in `target/compare-bench.txt`.");
    let _ = writeln!(out, "Do not edit the tables by hand: rerun the benchmarks and the report.\n");
    let _ = writeln!(out, "## How to run\n");
    let _ = writeln!(out, "```sh");
    let _ = writeln!(
        out,
        "cargo bench -p benches                      # stores, snapshot store, codec (criterion, HTML in target/criterion)"
    );
    let _ = writeln!(
        out,
        "cargo run --release -p benches --bin cluster -- --setup all | tee target/cluster-bench.txt"
    );
    let _ = writeln!(
        out,
        "cargo run --release -p benches --features openraft --bin compare | tee target/compare-bench.txt"
    );
    let _ = writeln!(out, "cargo run --release -p benches --bin report  # rewrites this file");
    let _ = writeln!(out, "```\n");
    let _ = writeln!(
        out,
        "## Machine\n\n{}; full durability (fsync per commit) for the durable stores.\n",
        machine()
    );
    let _ = writeln!(out, "## Results\n");
    store_logs_table(&estimates, &mut out);
    simple_table(&estimates, "reads", "Reads over 100,000 stored entries of 128 B", &mut out);
    simple_table(&estimates, "delete_range", "`delete_range` of 10,000 entries from the front", &mut out);
    simple_table(&estimates, "stable", "Stable store", &mut out);
    simple_table(
        &estimates,
        "wal",
        "store-wal: `delete_range` of a 1,000,000-entry prefix; `get_log` in sealed segments and in memory",
        &mut out,
    );
    simple_table(
        &estimates,
        "wal_steady",
        "store-wal in steady state (compaction as it goes, segments reused) beside the raw baselines, same run",
        &mut out,
    );
    simple_table(&estimates, "file_snapshot", "FileSnapshotStore, 64 MiB in 64 KiB chunks", &mut out);
    simple_table(&estimates, "codec", "Codec", &mut out);
    cluster_table(&root, &mut out);
    compare_table(&root, &mut out);
    std::fs::write(root.join("docs/benchmarks.md"), out)?;
    println!("wrote {}", root.join("docs/benchmarks.md").display());
    Ok(())
}
