//! With the `serde` feature, the types an operator writes or reads
//! round-trip through TOML and JSON, and a config file reads as people
//! write one. Run with `cargo test -p raft-kit-core --features serde`.
#![cfg(feature = "serde")]

use raft_core::*;
use std::time::Duration;

#[test]
fn a_config_file_reads_with_defaults_for_what_it_leaves_out() {
    let config: Config = toml::from_str(
        r#"
        local_id = "node-1"
        heartbeat_timeout = "200ms"
        election_timeout = "200ms"
        leader_lease_timeout = "100ms"
        trailing_logs = 0
        random_seed = 7
        "#,
    )
    .expect("a config file");
    let expected = Config::new("node-1")
        .with_heartbeat_timeout(Duration::from_millis(200))
        .with_election_timeout(Duration::from_millis(200))
        .with_leader_lease_timeout(Duration::from_millis(100))
        .with_trailing_logs(0)
        .with_random_seed(Some(7));
    assert_eq!(format!("{config:?}"), format!("{expected:?}"));
    assert_eq!(config.validate(), Ok(()));
    let written = toml::to_string(&config).expect("write");
    assert!(written.contains("heartbeat_timeout = \"200ms\""), "{written}");
    let again: Config = toml::from_str(&written).expect("read back");
    assert_eq!(format!("{again:?}"), format!("{config:?}"));
}

#[test]
fn a_config_file_with_a_typo_or_a_bad_duration_is_refused() {
    let typo = toml::from_str::<Config>("local_id = \"a\"\nheartbeat_timout = \"1s\"");
    assert!(typo.expect_err("unknown field").to_string().contains("heartbeat_timout"));
    let unitless = toml::from_str::<Config>("local_id = \"a\"\nheartbeat_timeout = \"100\"");
    assert!(unitless.expect_err("no unit").to_string().contains("unit"));
    let missing: Config = toml::from_str("heartbeat_timeout = \"1s\"").expect("parses");
    assert_eq!(missing.validate(), Err(ConfigError::EmptyLocalId));
}

#[test]
fn configurations_metas_and_stats_round_trip_through_json() {
    let configuration =
        Configuration::new(vec![Server::voter("a", "10.0.0.1:7000"), Server::nonvoter("b", "10.0.0.2:7000")]);
    let json = serde_json::to_string(&configuration).expect("json");
    assert_eq!(
        json,
        r#"{"servers":[{"suffrage":"Voter","id":"a","address":"10.0.0.1:7000"},{"suffrage":"Nonvoter","id":"b","address":"10.0.0.2:7000"}]}"#
    );
    assert_eq!(serde_json::from_str::<Configuration>(&json).expect("back"), configuration);
    let meta = SnapshotMeta {
        id: "3-120-1".into(),
        index: 120,
        term: 3,
        configuration: configuration.clone(),
        configuration_index: 7,
        size: 4096,
        version: SNAPSHOT_VERSION,
    };
    let json = serde_json::to_string(&meta).expect("json");
    assert_eq!(serde_json::from_str::<SnapshotMeta>(&json).expect("back"), meta);
}

#[tokio::test]
async fn stats_serialize_as_a_plain_record() {
    let nodes = raft_conformance::cluster::example_cluster(1).await;
    let stats = nodes[0].stats();
    let json: serde_json::Value = serde_json::to_value(&stats).expect("json");
    assert_eq!(json["state"], "Leader", "{json}");
    assert_eq!(json["term"], stats.term);
    assert_eq!(json["commit_index"], stats.commit_index);
    assert_eq!(serde_json::from_value::<Stats>(json).expect("back"), stats);
    for node in &nodes {
        node.shutdown().await.expect("shutdown");
    }
}
