//! Mutual TLS (feature `tls`): every node presents a certificate signed by
//! the cluster's CA and accepts only peers that do the same, and a
//! certificate names the node ids it may claim ([`NodeNames`]).

use crate::error::TcpError;
use crate::stream::BoxStream;
use raft_core::{ServerAddress, ServerId, TransportError};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How a node's certificate names its node id, so that a certificate of the
/// cluster's CA cannot claim another node's id (not even the server's own).
///
/// The check runs in the handshake on both ends: the server checks the node
/// id the client claims against the client's certificate, the client checks
/// the node id the server answers with against the server's certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeNames {
    /// Each node's certificate carries its node id as a DNS subject
    /// alternative name: node `node-1` has `DNS:node-1` (the default; node
    /// ids must then be DNS names).
    #[default]
    Id,
    /// Each node's certificate carries `DNS:<node id>.<suffix>`, e.g.
    /// `node-1.raft.example.com` for the suffix `raft.example.com`.
    IdWithSuffix(String),
    /// No check: any certificate of the cluster's CA may claim any node id.
    Unchecked,
}

impl NodeNames {
    /// The DNS name a certificate must carry for node `id`, or `None` when unchecked.
    fn name_for(&self, id: &ServerId) -> Option<String> {
        match self {
            NodeNames::Id => Some(id.as_str().to_owned()),
            NodeNames::IdWithSuffix(suffix) => Some(format!("{}.{suffix}", id.as_str())),
            NodeNames::Unchecked => None,
        }
    }
}

/// The certificate a peer presented, and the rule it is held to.
pub(crate) struct PeerCert {
    cert: CertificateDer<'static>,
    names: NodeNames,
}

impl PeerCert {
    /// Whether the certificate names node `id` as `names` requires.
    pub(crate) fn check(&self, id: &ServerId) -> Result<(), String> {
        let Some(name) = self.names.name_for(id) else { return Ok(()) };
        let dns = DnsName::try_from(name.clone()).map_err(|_| {
            format!("node id {id} makes {name:?}, which is not a DNS name a certificate can carry")
        })?;
        let cert = webpki::EndEntityCert::try_from(&self.cert)
            .map_err(|error| format!("the peer's certificate does not parse: {error}"))?;
        cert.verify_is_valid_for_subject_name(&ServerName::DnsName(dns))
            .map_err(|_| format!("the peer claims node id {id}, but its certificate does not name {name}"))
    }
}

/// The certificates and key for mutual TLS, in PEM.
#[derive(Clone)]
pub struct TlsConfig {
    /// The CA certificate(s) that sign every node's certificate.
    pub ca_pem: Vec<u8>,
    /// This node's certificate chain, leaf first.
    pub cert_chain_pem: Vec<u8>,
    /// This node's private key.
    pub private_key_pem: Vec<u8>,
    /// The name checked in a peer's certificate when dialing it; by default
    /// the host part of the address dialed (an IP or a DNS name).
    pub server_name: Option<String>,
    /// How certificates name node ids (see [`NodeNames`]).
    pub node_names: NodeNames,
}

impl TlsConfig {
    /// A config from the cluster's CA, this node's certificate chain and its
    /// key (PEM), checking peers' certificates for the address dialed and
    /// for the node id they claim ([`NodeNames::Id`]).
    pub fn new(
        ca_pem: impl Into<Vec<u8>>,
        cert_chain_pem: impl Into<Vec<u8>>,
        private_key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            cert_chain_pem: cert_chain_pem.into(),
            private_key_pem: private_key_pem.into(),
            server_name: None,
            node_names: NodeNames::Id,
        }
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .field("node_names", &self.node_names)
            .finish_non_exhaustive()
    }
}

/// The built TLS machinery of a transport.
pub(crate) struct TlsParts {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    server_name: Option<String>,
    node_names: NodeNames,
}

fn tls_error(what: &str, error: impl std::fmt::Display) -> TcpError {
    TcpError::Tls(format!("{what}: {error}"))
}

impl TlsParts {
    pub(crate) fn new(config: &TlsConfig) -> Result<Self, TcpError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&config.ca_pem) {
            roots
                .add(cert.map_err(|e| tls_error("reading the CA certificate", e))?)
                .map_err(|e| tls_error("adding the CA", e))?;
        }
        if roots.is_empty() {
            return Err(TcpError::Tls("no CA certificate in ca_pem".into()));
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&config.cert_chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| tls_error("reading the certificate chain", e))?;
        if chain.is_empty() {
            return Err(TcpError::Tls("no certificate in cert_chain_pem".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(&config.private_key_pem)
            .map_err(|e| tls_error("reading the private key", e))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let roots = Arc::new(roots);
        let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| tls_error("building the client verifier", e))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("server protocol versions", e))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| tls_error("the server certificate", e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("client protocol versions", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls_error("the client certificate", e))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name: config.server_name.clone(),
            node_names: config.node_names.clone(),
        })
    }

    pub(crate) async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Result<(BoxStream, Option<PeerCert>), TransportError> {
        let stream = self.acceptor.accept(tcp).await?;
        let cert = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).cloned();
        let peer = cert.map(|cert| PeerCert { cert, names: self.node_names.clone() });
        Ok((Box::pin(stream), peer))
    }

    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
        target: &ServerAddress,
    ) -> Result<(BoxStream, Option<PeerCert>), TransportError> {
        let host = match &self.server_name {
            Some(name) => name.clone(),
            None => host_of(target.as_str()),
        };
        let name = ServerName::try_from(host.clone()).map_err(|_| {
            TransportError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{host} is not a TLS server name"),
            ))
        })?;
        let stream = self.connector.connect(name, tcp).await?;
        let cert = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).cloned();
        let peer = cert.map(|cert| PeerCert { cert, names: self.node_names.clone() });
        Ok((Box::pin(stream), peer))
    }
}

/// The host part of `host:port` (IPv6 in brackets).
fn host_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']').to_owned()
}
