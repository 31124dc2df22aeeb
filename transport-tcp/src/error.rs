//! Why a transport could not start.

use std::net::SocketAddr;

/// Why a [`TcpTransport`](crate::TcpTransport) could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TcpError {
    /// The address other nodes would dial is unspecified (such as
    /// `0.0.0.0`): set `TcpConfig::advertise` to an address they can reach.
    #[error(
        "the advertised address {0} is unspecified; set TcpConfig::advertise to an address peers can dial"
    )]
    UnspecifiedAdvertiseAddress(SocketAddr),
    /// Binding the listener failed.
    #[error("binding {addr} failed: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said (in the message, so not also the source).
        error: std::io::Error,
    },
    /// The TLS configuration is not usable.
    #[error("TLS configuration: {0}")]
    Tls(String),
}
