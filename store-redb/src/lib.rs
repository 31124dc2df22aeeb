//! raft-kit: the durable redb store.
//!
//! **Not built yet.** This crate is a placeholder in the workspace so that the
//! crate map is complete; it has no API. It lands with the store-lmdb and store-redb issue.
