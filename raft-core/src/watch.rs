//! A single-value channel that wakes its receivers in a fixed order.
//!
//! `tokio::sync::watch` registers each waiting receiver on one of eight
//! internal notifiers picked at random (to spread contention), so when a
//! value changes, which waiting task wakes first differs from run to run.
//! For a node that only changes what order its peer tasks send in, but a
//! seeded simulation must take the same path every time it runs; this
//! channel wakes waiters in the order they started waiting. It offers the
//! part of `watch`'s interface raft-core uses, with the same meaning.

use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

struct Shared<T> {
    state: Mutex<State<T>>,
    changed: Notify,
}

struct State<T> {
    value: T,
    /// Counts sends; a receiver has seen the value when it saw this version.
    version: u64,
    /// The sender was dropped: no value will change again.
    closed: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sender was dropped; the value will not change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// Sends values; dropping it wakes every receiver with [`Closed`].
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// Sees the latest value and waits for changes.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

/// A read of the current value (holds the channel's lock: keep it short and
/// never across an await).
pub(crate) struct Ref<'a, T>(MutexGuard<'a, State<T>>);

impl<T> std::ops::Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.value
    }
}

/// A channel holding `value`; its receiver has seen it.
pub(crate) fn channel<T>(value: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State { value, version: 0, closed: false }),
        changed: Notify::new(),
    });
    (Sender { shared: shared.clone() }, Receiver { shared, seen: 0 })
}

impl<T> Sender<T> {
    /// Replaces the value (whether or not anyone receives) and returns the old one.
    pub(crate) fn send_replace(&self, value: T) -> T {
        let old = {
            let mut state = self.shared.lock();
            state.version += 1;
            std::mem::replace(&mut state.value, value)
        };
        self.shared.changed.notify_waiters();
        old
    }

    /// Changes the value in place and tells the receivers.
    pub(crate) fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        {
            let mut state = self.shared.lock();
            modify(&mut state.value);
            state.version += 1;
        }
        self.shared.changed.notify_waiters();
    }

    /// A receiver that has seen the current value.
    pub(crate) fn subscribe(&self) -> Receiver<T> {
        let seen = self.shared.lock().version;
        Receiver { shared: self.shared.clone(), seen }
    }

    /// The current value.
    #[allow(dead_code)]
    pub(crate) fn borrow(&self) -> Ref<'_, T> {
        Ref(self.shared.lock())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_waiters();
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), seen: self.seen }
    }
}

impl<T> Receiver<T> {
    /// The current value, without marking it seen.
    pub(crate) fn borrow(&self) -> Ref<'_, T> {
        Ref(self.shared.lock())
    }

    /// The current value, marked seen.
    pub(crate) fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let state = self.shared.lock();
        self.seen = state.version;
        Ref(state)
    }

    /// Waits until the value changes from the one last seen, and marks the
    /// new one seen; [`Closed`] once the sender is gone and nothing new was
    /// sent.
    pub(crate) async fn changed(&mut self) -> Result<(), Closed> {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so no send between the check and
            // the await is missed.
            notified.as_mut().enable();
            {
                let state = self.shared.lock();
                if state.version != self.seen {
                    self.seen = state.version;
                    return Ok(());
                }
                if state.closed {
                    return Err(Closed);
                }
            }
            notified.await;
        }
    }

    /// Waits until `ready` holds for the value (checking the current one
    /// first) and returns it, marked seen; [`Closed`] if the sender goes
    /// while it does not hold.
    pub(crate) async fn wait_for(&mut self, mut ready: impl FnMut(&T) -> bool) -> Result<Ref<'_, T>, Closed> {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.shared.lock();
                self.seen = state.version;
                if ready(&state.value) {
                    break;
                }
                if state.closed {
                    return Err(Closed);
                }
            }
            notified.await;
        }
        Ok(Ref(self.shared.lock()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_in_the_order_they_started_waiting() {
        let (tx, rx) = channel(0u64);
        let order = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let (mut rx, order) = (rx.clone(), order.clone());
                tokio::spawn(async move {
                    rx.changed().await.expect("ok");
                    order.lock().expect("lock").push(n);
                })
            })
            .collect();
        tokio::task::yield_now().await;
        tx.send_replace(1);
        for task in tasks {
            task.await.expect("ok");
        }
        assert_eq!(*order.lock().expect("lock"), (0..16).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_send_between_check_and_wait_is_not_missed_and_drop_closes() {
        let (tx, mut rx) = channel(0u64);
        tx.send_modify(|v| *v += 1);
        rx.changed().await.expect("ok");
        assert_eq!(*rx.borrow(), 1);
        let waiter = tokio::spawn(async move {
            let seen = *rx.wait_for(|v| *v >= 3).await.expect("ok");
            (seen, rx)
        });
        tx.send_replace(2);
        tx.send_replace(3);
        let (seen, mut rx) = waiter.await.expect("ok");
        assert_eq!(seen, 3);
        drop(tx);
        assert_eq!(rx.changed().await, Err(Closed));
        assert_eq!(*rx.borrow_and_update(), 3);
    }
}
