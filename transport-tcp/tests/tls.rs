//! Mutual TLS (feature `tls`): nodes with certificates from the cluster's CA
//! talk; a peer with a certificate from another CA, with no certificate, or
//! speaking plain TCP is refused. Certificates are made at run time.
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

fn node_tls(ca: &Ca, trusted: &Ca) -> TlsConfig {
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed");
    TlsConfig {
        ca_pem: trusted.pem.clone().into_bytes(),
        cert_chain_pem: cert.pem().into_bytes(),
        private_key_pem: key.serialize_pem().into_bytes(),
        server_name: None,
    }
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
    let server = node("b", Some(node_tls(&cluster_ca, &cluster_ca))).await;
    let delivered = serve(&server);
    let member = node("a", Some(node_tls(&cluster_ca, &cluster_ca))).await;
    let answer =
        member.request_vote(server.local_addr(), RequestVoteRequest { term: 3, ..Default::default() }).await;
    assert!(answer.expect("mutual TLS between members").granted);

    // A certificate from another CA, even one that trusts the cluster's CA.
    let stranger = node("c", Some(node_tls(&other_ca, &cluster_ca))).await;
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
            };
            let _ = stream.write_all(&hello.encode()).await;
            let mut buf = [0u8; 64];
            matches!(tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await, Ok(0) | Err(_))
        }
    };
    assert!(refused, "a client without a certificate was served");
    assert_eq!(delivered.load(Ordering::SeqCst), 1, "only the member's RPC reached the node");
}
