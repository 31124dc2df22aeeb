//! Mutual TLS (feature `tls`): nodes with certificates from the cluster's CA
//! talk; a peer with a certificate from another CA, with no certificate, or
//! speaking plain TCP is refused; a certificate of the cluster's CA can claim
//! only the node id it names (issue #13, item 7). Certificates are made at
//! run time.
#![cfg(feature = "tls")]

mod support;

use raft_core::{RequestVoteRequest, Transport};
use rcgen::{CertificateParams, IsCa, Issuer, KeyPair};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::serve;
use tokio::io::AsyncWriteExt;
use transport_tcp::{TcpConfig, TcpTransport, TlsConfig};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
}

/// A certificate from `ca` for the loopback address and node id `named`,
/// for a node that trusts `trusted`.
fn node_tls(ca: &Ca, trusted: &Ca, named: &str) -> TlsConfig {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned(), named.to_owned()];
    let params = CertificateParams::new(names).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed");
    TlsConfig::new(trusted.pem.clone(), cert.pem(), key.serialize_pem())
}

async fn node(id: &str, tls: Option<TlsConfig>) -> TcpTransport {
    let mut config = TcpConfig::new(id, "tls", "127.0.0.1:0".parse().expect("loopback"));
    config.connect_timeout = Duration::from_secs(1);
    config.rpc_timeout = Duration::from_secs(2);
    config.tls = tls;
    TcpTransport::bind(config).await.expect("bind")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_one_ca_talk_and_strangers_are_refused() {
    let cluster_ca = ca("cluster CA");
    let other_ca = ca("other CA");
    let server = node("b", Some(node_tls(&cluster_ca, &cluster_ca, "b"))).await;
    let delivered = serve(&server);
    let member = node("a", Some(node_tls(&cluster_ca, &cluster_ca, "a"))).await;
    let answer =
        member.request_vote(server.local_addr(), RequestVoteRequest { term: 3, ..Default::default() }).await;
    assert!(answer.expect("mutual TLS between members").granted);

    // A certificate from another CA, even one that trusts the cluster's CA.
    let stranger = node("c", Some(node_tls(&other_ca, &cluster_ca, "c"))).await;
    assert!(stranger.request_vote(server.local_addr(), RequestVoteRequest::default()).await.is_err());

    // No TLS at all.
    let plain = node("d", None).await;
    assert!(plain.request_vote(server.local_addr(), RequestVoteRequest::default()).await.is_err());

    // A TLS client that presents no certificate.
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    for cert in CertificateDer::pem_slice_iter(cluster_ca.pem.as_bytes()) {
        roots.add(cert.expect("ca")).expect("add");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(server.bound_addr()).await.expect("connect");
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let refused = match connector.connect(name, tcp).await {
        Err(_) => true,
        // TLS 1.3 reports the missing certificate after the handshake: the first exchange fails.
        Ok(mut stream) => {
            let hello = transport_tcp::wire::Hello {
                version: transport_tcp::wire::WIRE_VERSION,
                cluster_id: "tls".into(),
                node_id: "e".into(),
                kind: transport_tcp::wire::ConnectionKind::Rpc,
                auth: transport_tcp::wire::Auth::None,
                nonce: [0; 16],
            };
            let _ = stream.write_all(&hello.encode()).await;
            let mut buf = [0u8; 64];
            matches!(tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await, Ok(0) | Err(_))
        }
    };
    assert!(refused, "a client without a certificate was served");
    assert_eq!(delivered.load(Ordering::SeqCst), 1, "only the member's RPC reached the node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_the_cluster_ca_can_claim_only_its_own_node_id() {
    let cluster_ca = ca("cluster CA");
    let server = node("b", Some(node_tls(&cluster_ca, &cluster_ca, "b"))).await;
    let delivered = serve(&server);
    // Node a's certificate, claiming to be node b (the server itself) or node z.
    for claimed in ["b", "z"] {
        let impostor = node(claimed, Some(node_tls(&cluster_ca, &cluster_ca, "a"))).await;
        match impostor.request_vote(server.local_addr(), RequestVoteRequest::default()).await {
            Err(raft_core::TransportError::AuthenticationFailed { .. }) => {}
            other => panic!("a certificate naming a claimed {claimed}: {other:?}"),
        }
    }
    assert_eq!(delivered.load(Ordering::SeqCst), 0, "an impostor's RPC reached the node");
    // A server whose certificate does not name the id it answers with is
    // refused by the client.
    let fake = node("c", Some(node_tls(&cluster_ca, &cluster_ca, "d"))).await;
    let client = node("a", Some(node_tls(&cluster_ca, &cluster_ca, "a"))).await;
    match client.request_vote(fake.local_addr(), RequestVoteRequest::default()).await {
        Err(raft_core::TransportError::AuthenticationFailed { .. }) => {}
        other => panic!("a server whose certificate names another node: {other:?}"),
    }
    // With the id check off (NodeNames::Unchecked), any certificate of the CA may claim any id.
    let mut loose = node_tls(&cluster_ca, &cluster_ca, "a");
    loose.node_names = transport_tcp::NodeNames::Unchecked;
    let mut loose_server_tls = node_tls(&cluster_ca, &cluster_ca, "x");
    loose_server_tls.node_names = transport_tcp::NodeNames::Unchecked;
    let loose_server = node("y", Some(loose_server_tls)).await;
    serve(&loose_server);
    let loose_client = node("q", Some(loose)).await;
    let answer = loose_client.request_vote(loose_server.local_addr(), RequestVoteRequest::default()).await;
    assert!(answer.expect("unchecked ids").granted);
    // And with a suffix, the certificate names <id>.<suffix>.
    let mut suffixed = node_tls(&cluster_ca, &cluster_ca, "a.raft.test");
    suffixed.node_names = transport_tcp::NodeNames::IdWithSuffix("raft.test".into());
    let mut suffixed_server = node_tls(&cluster_ca, &cluster_ca, "s.raft.test");
    suffixed_server.node_names = transport_tcp::NodeNames::IdWithSuffix("raft.test".into());
    let s = node("s", Some(suffixed_server)).await;
    serve(&s);
    let a = node("a", Some(suffixed)).await;
    let answer = a.request_vote(s.local_addr(), RequestVoteRequest::default()).await;
    assert!(answer.expect("ids under a suffix").granted);
}
