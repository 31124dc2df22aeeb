//! `raftkv serve`'s settings: a TOML file (`--config`), overridden by flags.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Which log and stable store a node keeps its Raft state in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// LMDB (heed): embedded and durable, the default.
    #[default]
    Lmdb,
    /// redb: pure Rust, every page checksummed.
    Redb,
    /// The segmented write-ahead log: one fdatasync per batch, the fastest.
    Wal,
    /// In memory: lost on exit (tests and demos only).
    Mem,
}

/// Mutual TLS for the Raft transport: PEM files.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The cluster's CA certificate.
    pub ca: PathBuf,
    /// This node's certificate chain (its SAN or CN is its node id).
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// Everything `serve` needs. Field names are the TOML keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// The node id (unique in the cluster, kept in the data directory).
    pub id: String,
    /// The cluster's name: nodes of other clusters are refused.
    pub cluster: String,
    /// Where the Raft transport listens (and what peers dial).
    pub raft_addr: Option<SocketAddr>,
    /// Where the HTTP API listens.
    pub http_addr: Option<SocketAddr>,
    /// The data directory.
    pub data_dir: Option<PathBuf>,
    /// The log and stable store.
    pub store: StoreKind,
    /// Make a one-node cluster of this node if it has no state yet.
    pub bootstrap: bool,
    /// Ask the node at this HTTP address to add this one, if it has no state
    /// yet; retried for up to 30 s, and a refusal stops the node with an error.
    pub join: Option<String>,
    /// Mutual TLS for the Raft transport.
    pub tls: Option<TlsFiles>,
    /// The longest key accepted, in bytes.
    pub max_key_bytes: usize,
    /// The largest value accepted, in bytes.
    pub max_value_bytes: usize,
    /// How long a write or a read waits for the cluster before answering 504.
    #[serde(with = "humantime_ms")]
    pub request_timeout: std::time::Duration,
    /// The most HTTP connections open at once; more wait in the kernel's
    /// backlog until one closes.
    pub max_http_connections: usize,
    /// An HTTP connection that moves no byte either way for this long is
    /// closed (a half-sent request, a client that does not read its answer,
    /// an idle keep-alive). Longer than `request_timeout` and a second.
    #[serde(with = "humantime_ms")]
    pub http_idle_timeout: std::time::Duration,
    /// A file holding the admin token (at least 16 visible ASCII
    /// characters): when set, joins, removals and transfers must carry
    /// `Authorization: Bearer <token>`, and this node sends it with its own
    /// `--join`. Give every node of a cluster the same token.
    pub admin_token_file: Option<PathBuf>,
    /// The Raft settings (`[raft]` table: `heartbeat_timeout = "1s"`, …).
    pub raft: Option<raft_kit::Config>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            cluster: "raftkv".into(),
            raft_addr: None,
            http_addr: None,
            data_dir: None,
            store: StoreKind::Lmdb,
            bootstrap: false,
            join: None,
            tls: None,
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            request_timeout: std::time::Duration::from_secs(5),
            max_http_connections: 1024,
            http_idle_timeout: std::time::Duration::from_secs(60),
            admin_token_file: None,
            raft: None,
        }
    }
}

/// A setting that is missing or wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("{path}: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        error: toml::de::Error,
    },
    /// A required setting has no value.
    #[error("missing --{0} (or `{1}` in the config file)")]
    Missing(&'static str, &'static str),
    /// A setting's value cannot work.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The TOML key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl ServeConfig {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse { path: path.to_owned(), error })
    }

    /// Checks that what `serve` cannot do without is there.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.id.is_empty() {
            return Err(ConfigError::Missing("id", "id"));
        }
        if self.raft_addr.is_none() {
            return Err(ConfigError::Missing("raft-addr", "raft_addr"));
        }
        if self.http_addr.is_none() {
            return Err(ConfigError::Missing("http-addr", "http_addr"));
        }
        if self.data_dir.is_none() {
            return Err(ConfigError::Missing("data-dir", "data_dir"));
        }
        if self.max_http_connections == 0 {
            return Err(ConfigError::Invalid {
                key: "max_http_connections",
                reason: "must be at least 1".into(),
            });
        }
        // A request waits up to `request_timeout` for the cluster with its
        // connection silent: the idle limit must not cut it off.
        if self.http_idle_timeout <= self.request_timeout + std::time::Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                key: "http_idle_timeout",
                reason: format!(
                    "{:?} must be longer than request_timeout ({:?}) and a second",
                    self.http_idle_timeout, self.request_timeout
                ),
            });
        }
        Ok(())
    }
}

/// `request_timeout = "5s"` / `"250ms"` in TOML.
mod humantime_ms {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a duration like \"5s\" or \"250ms\""))
        })
    }

    pub(super) fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        if let Some(ms) = text.strip_suffix("ms") {
            return ms.trim().parse().ok().map(Duration::from_millis);
        }
        text.strip_suffix('s')?.trim().parse().ok().map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_file_gives_every_setting() {
        let config: ServeConfig = toml::from_str(
            r#"
            id = "n1"
            raft_addr = "127.0.0.1:7001"
            http_addr = "127.0.0.1:8001"
            data_dir = "/var/lib/raftkv"
            store = "redb"
            bootstrap = true
            request_timeout = "250ms"
            [raft]
            heartbeat_timeout = "2s"
            "#,
        )
        .expect("parse");
        config.check().expect("complete");
        assert_eq!(config.store, StoreKind::Redb);
        assert_eq!(config.request_timeout, std::time::Duration::from_millis(250));
        assert_eq!(config.raft.expect("raft").heartbeat_timeout, std::time::Duration::from_secs(2));
    }

    #[test]
    fn unknown_keys_and_missing_settings_are_errors() {
        assert!(toml::from_str::<ServeConfig>("idd = \"n1\"").is_err());
        let config: ServeConfig = toml::from_str("id = \"n1\"").expect("parse");
        assert!(matches!(config.check(), Err(ConfigError::Missing("raft-addr", _))));
    }

    #[test]
    fn the_readme_example_is_a_valid_config() {
        let readme = include_str!("../README.md");
        let example =
            readme.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a toml block");
        let config: ServeConfig = toml::from_str(example).expect("the README's example parses");
        config.check().expect("and is complete");
        assert_eq!(config.http_idle_timeout, std::time::Duration::from_secs(60));
    }

    #[test]
    fn http_limits_are_read_and_checked() {
        let complete =
            "id = \"n1\"\nraft_addr = \"127.0.0.1:7001\"\nhttp_addr = \"127.0.0.1:8001\"\ndata_dir = \"d\"\n";
        let config: ServeConfig =
            toml::from_str(&format!("{complete}max_http_connections = 64\nhttp_idle_timeout = \"30s\""))
                .expect("parse");
        config.check().expect("valid");
        assert_eq!(
            (config.max_http_connections, config.http_idle_timeout),
            (64, std::time::Duration::from_secs(30))
        );
        let config: ServeConfig =
            toml::from_str(&format!("{complete}max_http_connections = 0")).expect("parse");
        assert!(matches!(config.check(), Err(ConfigError::Invalid { key: "max_http_connections", .. })));
        let config: ServeConfig =
            toml::from_str(&format!("{complete}request_timeout = \"10s\"\nhttp_idle_timeout = \"10s\""))
                .expect("parse");
        assert!(matches!(config.check(), Err(ConfigError::Invalid { key: "http_idle_timeout", .. })));
    }
}
