//! [`Owned`]: a spawned helper task that ends with its owner, so that a node
//! stopped abruptly (a crash, [`Raft::kill`](crate::Raft::kill)) leaves no
//! helper running behind it.

use tokio::task::JoinHandle;

/// A task aborted when this handle is dropped.
#[derive(Debug)]
pub(crate) struct Owned(JoinHandle<()>);

impl Owned {
    pub(crate) fn spawn(future: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(tracing::Instrument::in_current_span(future)))
    }

    pub(crate) fn abort(&self) {
        self.0.abort();
    }

    /// Waits for the task to end (after it finished or was aborted).
    pub(crate) async fn join(&mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}
