//! The byte stream a connection runs over: TCP, or TLS over TCP.

use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

/// A stream a connection runs over: TCP, or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A boxed stream.
pub(crate) type BoxStream = Pin<Box<dyn Stream>>;
