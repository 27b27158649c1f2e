//! What the workspace's tests share: waiting for a condition by polling it with a deadline.
//!
//! Every wait in the tests goes through [`eventually`] (a value), [`wait_until`] (a yes/no) or
//! `eventually_async` (a check that is a future; feature `tokio`), so a slow machine costs time,
//! not a flaky failure, and a condition that never comes fails at a known deadline. No test
//! sleeps and hopes.
//!
//! ```
//! use std::time::Duration;
//!
//! let mut calls = 0;
//! let third = test_support::eventually(Duration::from_secs(5), Duration::from_millis(1), || {
//!     calls += 1;
//!     (calls == 3).then_some(calls)
//! });
//! assert_eq!(third, Some(3));
//! ```

use std::time::{Duration, Instant};

/// Polls `check` every `every` until it returns `Some` (then that value) or `timeout` has passed (then
/// `None`). `check` runs at least once, and the last time at the deadline.
pub fn eventually<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(every.min(deadline - now));
    }
}

/// Polls `done` every `every` until it is true (then `true`) or `timeout` has passed (then `false`).
pub fn wait_until(timeout: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    eventually(timeout, every, || done().then_some(())).is_some()
}

/// [`eventually`] for a check that is a future: awaits `check` every `every` (tokio's timer in
/// between, so the runtime goes on serving) until it gives `Some` or `timeout` has passed.
#[cfg(feature = "tokio")]
pub async fn eventually_async<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(every.min(deadline - now)).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code
mod tests {
    use super::*;

    #[test]
    fn eventually_returns_the_first_value_the_check_gives() {
        let mut calls = 0;
        let got = eventually(Duration::from_secs(5), Duration::from_millis(1), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, Some(3));
    }

    #[test]
    fn eventually_gives_up_at_the_deadline_after_checking_once_more() {
        let start = Instant::now();
        let mut calls = 0;
        let got: Option<()> =
            eventually(Duration::from_millis(50), Duration::from_secs(10), || {
                calls += 1;
                None
            });
        assert_eq!(got, None);
        assert_eq!(calls, 2, "once at the start, once at the deadline");
        // A bound: the poll interval (10 s) is cut to the deadline.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn wait_until_says_whether_the_condition_came() {
        assert!(wait_until(Duration::ZERO, Duration::ZERO, || true));
        assert!(!wait_until(Duration::ZERO, Duration::ZERO, || false));
    }
}
