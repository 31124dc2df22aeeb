//! Log entries and the [`LogStore`] that keeps them.
//!
//! - `entry`: [`Log`] and [`LogKind`];
//! - `error`: [`StoreError`];
//! - `store`: the [`LogStore`] contract;
//! - `rules`: the helpers every store calls so that all answer alike
//!   ([`check_batch`], [`check_range`], [`not_found`], [`plan_delete`],
//!   [`decode_stored_entry`]).

mod entry;
mod error;
mod rules;
mod store;

pub use entry::{Log, LogKind};
pub use error::StoreError;
pub use rules::{
    DeletePlan, check_batch, check_range, decode_stored_entry, missing_entry, not_found, plan_delete,
};
pub use store::LogStore;
