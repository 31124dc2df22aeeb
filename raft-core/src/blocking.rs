//! Calls into stores that may block: on a blocking thread, or on the
//! node's own task for a store that says it never blocks (so that a seeded
//! simulation runs on one thread, and replays).

/// The blocking thread running the work was cancelled or panicked.
#[derive(Debug)]
pub(crate) struct Cancelled;

/// Runs `work`: as is when `inline`, otherwise on tokio's blocking pool.
pub(crate) async fn run<T: Send + 'static>(
    inline: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Cancelled> {
    if inline { Ok(work()) } else { tokio::task::spawn_blocking(work).await.map_err(|_| Cancelled) }
}

/// Runs `work`, which may block: as is on the FSM thread; on a task, through
/// `block_in_place` when the runtime has worker threads to spare, and as is
/// on a current-thread runtime (which has no other thread to move to).
pub(crate) fn in_place<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
