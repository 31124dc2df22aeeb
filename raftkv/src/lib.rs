//! raft-kit: the replicated key-value service example.
//!
//! **Not built yet.** This crate is a placeholder in the workspace so that the
//! crate map is complete; it has no API. It lands with the raftkv work.
