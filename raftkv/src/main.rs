//! The `raftkv` command: `serve`, `demo`, `bench`, `inspect`.

use clap::{Parser, Subcommand};
use raftkv::config::{ServeConfig, StoreKind, TlsFiles};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// raftkv: a replicated key-value service on raft-kit (TCP transport, LMDB).
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Runs a node and its HTTP API until Ctrl-C or SIGTERM.
    Serve(Box<ServeArgs>),
    /// Starts three nodes on loopback, kills the leader, restarts it, checks every key.
    Demo,
    /// Closed-loop HTTP load against a running cluster.
    Bench(BenchArgs),
    /// Shows what a stopped node's data directory holds (read-only).
    Inspect {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A TOML config file; flags override what it says.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The node id.
    #[arg(long)]
    id: Option<String>,
    /// The cluster's name (peers of other clusters are refused).
    #[arg(long)]
    cluster: Option<String>,
    /// Where the Raft transport listens (HOST:PORT).
    #[arg(long)]
    raft_addr: Option<SocketAddr>,
    /// Where the HTTP API listens (HOST:PORT).
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// The data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The log and stable store.
    #[arg(long, value_enum)]
    store: Option<StoreKind>,
    /// Make a one-node cluster of this node if it has no state yet.
    #[arg(long)]
    bootstrap: bool,
    /// Ask the node at this HTTP address to add this one (if it has no state
    /// yet), retrying for up to 30 s; the node stops with an error if it is refused.
    #[arg(long)]
    join: Option<String>,
    /// The cluster CA (PEM) for mutual TLS between nodes.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// This node's certificate chain (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_key: Option<PathBuf>,
    /// A file holding the admin token that joins, removals and transfers
    /// must carry (`Authorization: Bearer <token>`).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// The nodes' HTTP addresses (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    targets: Vec<String>,
    /// Concurrent clients, one run per count (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    clients: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 128)]
    value_size: usize,
    /// Share of requests that are consistent reads (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    read_ratio: f64,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
}

fn serve_config(args: Box<ServeArgs>) -> Result<ServeConfig, Box<dyn std::error::Error>> {
    let mut config = match &args.config {
        Some(path) => ServeConfig::from_file(path)?,
        None => ServeConfig::default(),
    };
    if let Some(id) = args.id {
        config.id = id;
    }
    if let Some(cluster) = args.cluster {
        config.cluster = cluster;
    }
    config.raft_addr = args.raft_addr.or(config.raft_addr);
    config.http_addr = args.http_addr.or(config.http_addr);
    config.data_dir = args.data_dir.or(config.data_dir);
    config.store = args.store.unwrap_or(config.store);
    config.bootstrap |= args.bootstrap;
    config.join = args.join.or(config.join);
    config.admin_token_file = args.admin_token_file.or(config.admin_token_file);
    if let (Some(ca), Some(cert), Some(key)) = (args.tls_ca, args.tls_cert, args.tls_key) {
        config.tls = Some(TlsFiles { ca, cert, key });
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let outcome: Result<(), Box<dyn std::error::Error>> = match Cli::parse().command {
        Commands::Serve(args) => match serve_config(args) {
            Ok(config) => raftkv::serve::serve(config).await.map_err(Into::into),
            Err(error) => Err(error),
        },
        Commands::Demo => match std::env::current_exe() {
            Ok(binary) => raftkv::demo::run(&binary).await.map_err(|e| e as Box<dyn std::error::Error>),
            Err(error) => Err(error.into()),
        },
        Commands::Bench(args) => {
            for &clients in &args.clients {
                let settings = raftkv::bench::BenchSettings {
                    targets: args.targets.clone(),
                    clients,
                    duration: Duration::from_secs(args.seconds),
                    value_size: args.value_size,
                    read_ratio: args.read_ratio,
                    keys: args.keys,
                };
                let report =
                    raftkv::bench::run(&settings, std::io::IsTerminal::is_terminal(&std::io::stderr())).await;
                println!("{}", report.summary(clients));
            }
            Ok(())
        }
        Commands::Inspect { data_dir } => match raftkv::inspect::inspect(&data_dir) {
            Ok(report) => {
                print!("{report}");
                Ok(())
            }
            Err(error) => Err(error.into()),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("raftkv: {error}");
            ExitCode::FAILURE
        }
    }
}
