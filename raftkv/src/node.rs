//! Starting a node: the data directory (checked against the node's id and
//! cluster), the store, `FileSnapshotStore`, the TCP transport and the
//! `Raft` itself; bootstrapping or joining a cluster.

use crate::config::{ServeConfig, StoreKind};
use crate::fsm::KvFsm;
use raft_kit::store::{lmdb::LmdbStore, mem, redb::RedbStore, wal::WalStore};
use raft_kit::transport::tcp::{TcpConfig, TcpTransport, TlsConfig};
use raft_kit::{Config, FileSnapshotStore, Raft, RaftError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file in a data directory that says whose it is.
pub const IDENTITY_FILE: &str = "raftkv-node.json";

/// Who a data directory belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The node id.
    pub id: String,
    /// The cluster name.
    pub cluster: String,
    /// The store kind the directory holds.
    pub store: String,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory belongs to another node or cluster.
    #[error(transparent)]
    WrongDirectory(Box<Mismatch>),
    /// The identity file is damaged.
    #[error("{path} is not a raftkv identity file: {reason}")]
    BadIdentity {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading or writing the data directory failed.
    #[error("data directory {dir}: {error}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A store would not open (damaged, locked by a running node, …).
    #[error("opening the store in {dir}: {error}")]
    Store {
        /// The directory.
        dir: PathBuf,
        /// Why.
        error: raft_kit::StoreError,
    },
    /// The snapshot store would not open.
    #[error("opening the snapshots in {dir}: {error}")]
    Snapshots {
        /// The directory.
        dir: PathBuf,
        /// Why.
        error: raft_kit::SnapshotError,
    },
    /// The transport would not start.
    #[error("starting the Raft transport: {0}")]
    Transport(#[from] raft_kit::transport::tcp::TcpError),
    /// A TLS file could not be read.
    #[error("reading {path}: {error}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The Raft node refused to start.
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// The node was removed from its cluster; its data directory is done.
    #[error(
        "node `{id}` was removed from its cluster (the configuration in {dir} no longer holds it): start it on an empty data directory with --join to add it again"
    )]
    Removed {
        /// The node id.
        id: String,
        /// The data directory.
        dir: PathBuf,
    },
    /// A setting is missing or wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// A data directory that belongs to another node, cluster or store kind.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} holds the state of node `{}` of cluster `{}` ({}), not of node `{}` of cluster `{}` ({}); \
     start with the matching --id/--cluster/--store, or use an empty directory",
    dir.display(), found.id, found.cluster, found.store, wanted.id, wanted.cluster, wanted.store
)]
pub struct Mismatch {
    /// The directory.
    pub dir: PathBuf,
    /// What was asked for.
    pub wanted: Identity,
    /// What the directory says.
    pub found: Identity,
}

fn store_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Lmdb => "lmdb",
        StoreKind::Redb => "redb",
        StoreKind::Wal => "wal",
        StoreKind::Mem => "mem",
    }
}

/// Checks (or, in an empty directory, writes) who the directory belongs to.
pub fn claim_directory(dir: &Path, config: &ServeConfig) -> Result<(), StartError> {
    let io = |error| StartError::Io { dir: dir.to_owned(), error };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(IDENTITY_FILE);
    let wanted = Identity {
        id: config.id.clone(),
        cluster: config.cluster.clone(),
        store: store_name(config.store).into(),
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let found: Identity = serde_json::from_slice(&bytes)
                .map_err(|e| StartError::BadIdentity { path: path.clone(), reason: e.to_string() })?;
            if found != wanted {
                return Err(StartError::WrongDirectory(Box::new(Mismatch {
                    dir: dir.to_owned(),
                    wanted,
                    found,
                })));
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
            let bytes = serde_json::to_vec_pretty(&wanted).expect("an identity encodes");
            std::fs::write(&tmp, bytes).map_err(io)?;
            std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
        }
        Err(error) => Err(io(error)),
    }
}

/// A running node: the Raft handle and the state its FSM applies to.
pub struct Node {
    /// The Raft node.
    pub raft: Raft<KvFsm>,
    /// The state machine (shared with the HTTP handlers).
    pub fsm: KvFsm,
    /// Whether the node had state when it started.
    pub had_state: bool,
}

/// Opens the data directory and starts the Raft node on it.
pub async fn start(config: &ServeConfig) -> Result<Node, StartError> {
    config.check()?;
    let dir = config.data_dir.clone().expect("checked");
    claim_directory(&dir, config)?;
    let raft_addr = config.raft_addr.expect("checked");
    let mut tcp = TcpConfig::new(config.id.as_str(), config.cluster.as_str(), raft_addr);
    if let Some(files) = &config.tls {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|error| StartError::TlsFile { path: path.clone(), error })
        };
        tcp.tls = Some(TlsConfig::new(read(&files.ca)?, read(&files.cert)?, read(&files.key)?));
    }
    let transport = TcpTransport::bind(tcp).await?;
    let mut raft_config = config.raft.clone().unwrap_or_default();
    raft_config.local_id = config.id.as_str().into();
    let snapshots_dir = dir.join("snapshots");
    let snapshots = FileSnapshotStore::open(&snapshots_dir)
        .map_err(|error| StartError::Snapshots { dir: snapshots_dir.clone(), error })?;
    let fsm = KvFsm::default();
    let store_error = |error| StartError::Store { dir: dir.clone(), error };
    let (raft, had_state) = match config.store {
        StoreKind::Lmdb => {
            let store = Arc::new(LmdbStore::open(dir.join("raft")).map_err(store_error)?);
            let had = raft_kit::recovery::has_existing_state(&*store, &*store, &snapshots)?;
            (new_raft(raft_config, fsm.clone(), store.clone(), store, snapshots, transport).await?, had)
        }
        StoreKind::Redb => {
            let store = Arc::new(RedbStore::open(dir.join("raft.redb")).map_err(store_error)?);
            let had = raft_kit::recovery::has_existing_state(&*store, &*store, &snapshots)?;
            (new_raft(raft_config, fsm.clone(), store.clone(), store, snapshots, transport).await?, had)
        }
        StoreKind::Wal => {
            let store = Arc::new(WalStore::open(dir.join("wal")).map_err(store_error)?);
            let had = raft_kit::recovery::has_existing_state(&*store, &*store, &snapshots)?;
            (new_raft(raft_config, fsm.clone(), store.clone(), store, snapshots, transport).await?, had)
        }
        StoreKind::Mem => {
            let (logs, stable) = (mem::MemLogStore::new(), mem::MemStableStore::new());
            (new_raft(raft_config, fsm.clone(), logs, stable, snapshots, transport).await?, false)
        }
    };
    if crate::membership::was_member(&dir) && crate::membership::shows_removed(&raft) {
        let _ = raft.shutdown().await;
        return Err(StartError::Removed { id: config.id.clone(), dir });
    }
    if config.bootstrap && !had_state {
        let me = raft_kit::Server::voter(raft.id().clone(), raft.local_addr().clone());
        raft.bootstrap_cluster(raft_kit::Configuration::new(vec![me])).await?;
        crate::membership::mark_member(&dir).map_err(|error| StartError::Io { dir: dir.clone(), error })?;
    }
    Ok(Node { raft, fsm, had_state })
}

async fn new_raft(
    config: Config,
    fsm: KvFsm,
    logs: impl raft_kit::LogStore,
    stable: impl raft_kit::StableStore,
    snapshots: FileSnapshotStore,
    transport: TcpTransport,
) -> Result<Raft<KvFsm>, RaftError> {
    Raft::new(config, fsm, logs, stable, snapshots, transport).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(id: &str, cluster: &str) -> ServeConfig {
        ServeConfig { id: id.into(), cluster: cluster.into(), ..ServeConfig::default() }
    }

    #[test]
    fn a_directory_is_claimed_once_and_refused_to_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        claim_directory(dir.path(), &config("n1", "a")).expect("claim");
        claim_directory(dir.path(), &config("n1", "a")).expect("the same node again");
        let other_node = claim_directory(dir.path(), &config("n2", "a")).expect_err("another id");
        assert!(other_node.to_string().contains("node `n1` of cluster `a`"), "{other_node}");
        let other_cluster = claim_directory(dir.path(), &config("n1", "b")).expect_err("another cluster");
        assert!(matches!(other_cluster, StartError::WrongDirectory { .. }));
        std::fs::write(dir.path().join(IDENTITY_FILE), b"garbage").expect("write");
        assert!(matches!(
            claim_directory(dir.path(), &config("n1", "a")),
            Err(StartError::BadIdentity { .. })
        ));
    }
}
