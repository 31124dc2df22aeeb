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
