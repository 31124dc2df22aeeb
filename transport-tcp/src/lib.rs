//! raft-kit: the tokio TCP transport.
//!
//! **Not built yet.** This crate is a placeholder in the workspace so that the
//! crate map is complete; it has no API. It lands with the transport-tcp issue.
