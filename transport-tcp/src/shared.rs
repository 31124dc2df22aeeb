//! What the listener, the connections and the handle of one transport
//! share: its settings, the shutdown signal, frame limits, TLS, and the pool
//! of dialed connections, with dialing and pooling themselves.

use crate::TcpConfig;
use crate::conn::{self, Conn, PeerIdentity};
use crate::ratelimit::Throttle;
use crate::stream::BoxStream;
use crate::wire::ConnectionKind;
use raft_core::*;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// What the listener, the connections and the handle share.
pub(crate) struct Shared {
    pub(crate) config: TcpConfig,
    pub(crate) local: ServerAddress,
    pub(crate) shutdown: watch::Sender<bool>,
    /// The frame size limit and memory budget every connection reads under.
    pub(crate) limits: conn::FrameLimits,
    pools: Mutex<HashMap<ServerAddress, Vec<Conn>>>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsParts>,
    /// Gates the warning for inbound connections refused in their handshake.
    pub(crate) refused: Throttle,
    /// Gates the warning for failed dials.
    dial_failed: Throttle,
}

impl Shared {
    /// The state of a transport about to listen as `local`.
    pub(crate) fn new(
        config: TcpConfig,
        local: ServerAddress,
        #[cfg(feature = "tls")] tls: Option<crate::tls::TlsParts>,
    ) -> Self {
        Self {
            limits: conn::FrameLimits::new(&config),
            local,
            shutdown: watch::channel(false).0,
            pools: Mutex::default(),
            #[cfg(feature = "tls")]
            tls,
            refused: Throttle::default(),
            dial_failed: Throttle::default(),
            config,
        }
    }

    /// Wraps an accepted socket in TLS when configured; says what the TLS
    /// layer proved about the peer.
    pub(crate) async fn accept_stream(
        &self,
        tcp: TcpStream,
    ) -> Result<(BoxStream, PeerIdentity), TransportError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let (stream, cert) = tls.accept(tcp).await?;
            return Ok((stream, PeerIdentity { cert }));
        }
        Ok((Box::pin(tcp), PeerIdentity::default()))
    }

    async fn connect_stream(
        &self,
        tcp: TcpStream,
        target: &ServerAddress,
    ) -> Result<(BoxStream, PeerIdentity), TransportError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let (stream, cert) = tls.connect(tcp, target).await?;
            return Ok((stream, PeerIdentity { cert }));
        }
        let _ = target;
        Ok((Box::pin(tcp), PeerIdentity::default()))
    }

    /// Resolves once the transport shuts down, at once if it already has.
    ///
    /// It waits for the value, not for a change: a task that starts after
    /// the signal was sent (an accept loop that had not run yet, a
    /// connection still in its handshake) must see it too. A `changed()`
    /// on a receiver subscribed after the send never fires.
    pub(crate) fn closing(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut shutdown = self.shutdown.subscribe();
        async move {
            // An error means the sender is gone, which only happens once
            // everything is dropped: closed either way.
            let _ = shutdown.wait_for(|closed| *closed).await;
        }
    }

    fn allowed(&self, target: &ServerAddress) -> bool {
        self.config.peer_filter.as_ref().is_none_or(|filter| filter(target, None))
    }

    pub(crate) async fn dial(
        &self,
        target: &ServerAddress,
        kind: ConnectionKind,
    ) -> Result<Conn, TransportError> {
        if !self.allowed(target) {
            return Err(TransportError::Unreachable(target.clone()));
        }
        let connect = async {
            let tcp = TcpStream::connect(target.as_str()).await.map_err(|error| match error.kind() {
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => {
                    TransportError::Unreachable(target.clone())
                }
                _ => TransportError::Io(error),
            })?;
            conn::tune(&tcp, &self.config);
            let (stream, identity) = self.connect_stream(tcp, target).await?;
            conn::client_handshake(stream, identity, &self.config, &self.limits, target, kind).await
        };
        let dialed = tokio::time::timeout(self.config.connect_timeout, connect)
            .await
            .map_err(|_| TransportError::Timeout(target.clone()))
            .and_then(|dialed| dialed);
        match &dialed {
            Ok(conn) => tracing::debug!(%target, peer = %conn.peer, ?kind, "connected"),
            Err(error) => {
                if let Some(suppressed) = self.dial_failed.admit(std::time::Instant::now()) {
                    tracing::warn!(%target, %error, suppressed, "connecting to a peer failed");
                }
            }
        }
        dialed
    }

    /// A connection to `target`, from the pool (`true`) or freshly dialed.
    pub(crate) async fn checkout(&self, target: &ServerAddress) -> Result<(Conn, bool), TransportError> {
        if !self.allowed(target) {
            self.lock_pools().remove(target);
            return Err(TransportError::Unreachable(target.clone()));
        }
        let pooled = self.lock_pools().get_mut(target).and_then(Vec::pop);
        match pooled {
            Some(conn) => Ok((conn, true)),
            None => Ok((self.dial(target, ConnectionKind::Rpc).await?, false)),
        }
    }

    pub(crate) fn checkin(&self, target: ServerAddress, conn: Conn) {
        if *self.shutdown.borrow() {
            return;
        }
        let mut pools = self.lock_pools();
        let pool = pools.entry(target).or_default();
        if pool.len() < self.config.pool_size {
            pool.push(conn);
        }
    }

    pub(crate) fn lock_pools(&self) -> std::sync::MutexGuard<'_, HashMap<ServerAddress, Vec<Conn>>> {
        self.pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
