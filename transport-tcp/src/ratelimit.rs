//! [`Throttle`]: lets a kind of log line through at most once per interval
//! and counts the ones it held back, so that a port scanner or a peer
//! retrying in a tight loop cannot fill the log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one kind of line may be logged.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A gate for one kind of log line.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(n)` when a line may be logged now, `n` being how many were held
    /// back since the last one; `None` when this one is to be held back.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.last {
            Some(last) if now.saturating_duration_since(last) < LOG_INTERVAL => {
                state.suppressed = state.suppressed.saturating_add(1);
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_then_the_count_of_the_rest() {
        let throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.admit(start), Some(0));
        for i in 1..=5 {
            assert_eq!(throttle.admit(start + Duration::from_millis(i)), None);
        }
        assert_eq!(throttle.admit(start + LOG_INTERVAL), Some(5));
        assert_eq!(throttle.admit(start + LOG_INTERVAL + Duration::from_millis(1)), None);
    }
}
