//! Mutual TLS (feature `tls`): every node presents a certificate signed by
//! the cluster's CA and accepts only peers that do the same.

use crate::TcpError;
use crate::conn::BoxStream;
use raft_core::{ServerAddress, TransportError};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

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
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// The built TLS machinery of a transport.
pub(crate) struct TlsParts {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    server_name: Option<String>,
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
        })
    }

    pub(crate) async fn accept(&self, tcp: TcpStream) -> Result<BoxStream, TransportError> {
        let stream = self.acceptor.accept(tcp).await?;
        Ok(Box::pin(stream))
    }

    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
        target: &ServerAddress,
    ) -> Result<BoxStream, TransportError> {
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
        Ok(Box::pin(stream))
    }
}

/// The host part of `host:port` (IPv6 in brackets).
fn host_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']').to_owned()
}
