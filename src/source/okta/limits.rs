//! Okta's rate limits, kept per endpoint bucket: every answer says how many requests its
//! bucket has left in the current window (`X-Rate-Limit-Remaining` of `-Limit`) and when the
//! window ends (`X-Rate-Limit-Reset`, epoch seconds on the server's `Date` clock). Requests are
//! let through while the bucket has more than a reserve left (a tenth of the limit, for the
//! org's other API clients), then wait for the window to end: a read uses the whole budget
//! without running into 429.
//!
//! Several requests of one bucket may be in flight (member lists are read in parallel), so a
//! request takes its share before it is sent (the first request of a bucket goes alone), and an answer's `Remaining` is trusted only minus
//! the requests still in flight. Answers that arrive out of order cannot raise the count of the
//! window they belong to.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::net::retry::{okta_reset, rate_limit_remaining};

/// The endpoint buckets dirsync uses; Okta counts each list endpoint on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `/api/v1/users`
    Users,
    /// `/api/v1/groups`
    Groups,
    /// `/api/v1/groups/{id}/users`, all groups together
    Members,
}

/// Waited after the announced end of a window: the server's clock and ours differ by part of a
/// second at least (`Date` has whole seconds).
const AFTER_RESET: Duration = Duration::from_secs(1);

/// What is known of one bucket's current window.
#[derive(Debug, Default)]
struct Window {
    limit: u64,
    /// Requests that may still be sent in this window (ours already deducted).
    left: u64,
    /// The server's `X-Rate-Limit-Reset` of this window.
    reset: i64,
    /// When it ends on our clock (with [`AFTER_RESET`]).
    ends: Option<Instant>,
    /// The window has ended on our clock: `left` is a fresh window's budget.
    rolled: bool,
}

#[derive(Debug, Default)]
struct State {
    window: Option<Window>,
    in_flight: u64,
}

/// The rate-limit state of every bucket.
#[derive(Debug)]
pub struct Limits {
    /// Fraction of each window's limit left for other clients.
    reserve: f64,
    buckets: Mutex<HashMap<Bucket, State>>,
}

/// A request of `bucket` that has been let through; [`Limits::observe`] its answer.
#[must_use]
pub struct Permit<'a> {
    limits: &'a Limits,
    bucket: Bucket,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut buckets = self.limits.lock();
        let state = buckets.entry(self.bucket).or_default();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

/// Why a request may not be sent now.
#[derive(Debug, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl Limits {
    /// `reserve`: the fraction of each window's limit not used (0.1 = 10 %).
    pub fn new(reserve: f64) -> Limits {
        Limits {
            reserve,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Bucket, State>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets one request of `bucket` through now, or says how long to wait before asking again.
    pub fn try_acquire(&self, bucket: Bucket, now: Instant) -> Result<Permit<'_>, Wait> {
        let mut buckets = self.lock();
        let state = buckets.entry(bucket).or_default();
        if let Some(w) = &mut state.window {
            if let Some(ends) = w.ends
                && now >= ends
                && !w.rolled
            {
                // A new window: its whole budget, until its first answer says more.
                w.rolled = true;
                w.left = w.limit;
            }
            let reserve = (w.limit as f64 * self.reserve).floor() as u64;
            if w.left <= reserve {
                let ends = w.ends.filter(|_| !w.rolled).unwrap_or(now);
                return Err(Wait(ends.saturating_duration_since(now).max(Duration::from_millis(10))));
            }
            w.left -= 1;
        } else if state.in_flight > 0 {
            // Nothing known of this bucket yet: one request at a time until an answer tells.
            return Err(Wait(Duration::from_millis(10)));
        }
        state.in_flight += 1;
        Ok(Permit { limits: self, bucket })
    }

    /// Learns from the answer to `permit`'s request (any status): its bucket's limit, what is
    /// left and when the window ends.
    pub fn observe(&self, permit: Permit<'_>, headers: &HeaderMap) {
        let bucket = permit.bucket;
        drop(permit);
        let Some((remaining, limit)) = rate_limit_remaining(headers) else {
            return;
        };
        let Some(reset) = headers
            .get("x-rate-limit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
        else {
            return;
        };
        let wait = okta_reset(headers, Timestamp::now()).unwrap_or_default();
        let ends = Instant::now() + wait + AFTER_RESET;
        let mut buckets = self.lock();
        let state = buckets.entry(bucket).or_default();
        let left = remaining.saturating_sub(state.in_flight);
        match &mut state.window {
            Some(w) if reset < w.reset => {} // an answer from an older window
            Some(w) if reset == w.reset => {
                if !w.rolled {
                    w.left = w.left.min(left);
                }
            }
            _ => {
                state.window = Some(Window {
                    limit,
                    left,
                    reset,
                    ends: Some(ends),
                    rolled: false,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(limit: u64, remaining: u64, reset_in: i64) -> HeaderMap {
        let now = Timestamp::now();
        let mut h = HeaderMap::new();
        h.insert("x-rate-limit-limit", limit.to_string().parse().unwrap());
        h.insert("x-rate-limit-remaining", remaining.to_string().parse().unwrap());
        h.insert(
            "x-rate-limit-reset",
            (now.as_second() + reset_in).to_string().parse().unwrap(),
        );
        h
    }

    #[tokio::test]
    async fn a_bucket_is_used_down_to_its_reserve_then_waits_for_the_window_to_end() {
        let limits = Limits::new(0.1);
        let now = Instant::now();
        // Nothing known yet: requests go.
        let first = limits.try_acquire(Bucket::Users, now).unwrap();
        limits.observe(first, &headers(20, 19, 30));
        // 19 left, 2 kept in reserve: 17 more may go.
        let mut sent = 0;
        while let Ok(p) = limits.try_acquire(Bucket::Users, now) {
            sent += 1;
            std::mem::forget(p); // still in flight
        }
        assert_eq!(sent, 17);
        let Err(Wait(wait)) = limits.try_acquire(Bucket::Users, now) else {
            panic!("must wait")
        };
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(32),
            "{wait:?}"
        );
        // Other buckets are counted on their own.
        assert!(limits.try_acquire(Bucket::Members, now).is_ok());
        // Once the window has ended, its budget is there again.
        let later = now + wait;
        assert!(limits.try_acquire(Bucket::Users, later).is_ok());
    }

    #[tokio::test]
    async fn in_flight_requests_and_late_answers_never_raise_the_budget() {
        let limits = Limits::new(0.0);
        let now = Instant::now();
        // Nothing known: the first request goes alone.
        let probe = limits.try_acquire(Bucket::Members, now).unwrap();
        assert!(limits.try_acquire(Bucket::Members, now).is_err());
        limits.observe(probe, &headers(10, 9, 30));
        let a = limits.try_acquire(Bucket::Members, now).unwrap();
        let b = limits.try_acquire(Bucket::Members, now).unwrap();
        let c = limits.try_acquire(Bucket::Members, now).unwrap();
        // b's answer: 5 left, but a and c are still in flight and may not be counted in it.
        limits.observe(b, &headers(10, 5, 30));
        // An older answer of the same window says more is left: ignored.
        limits.observe(a, &headers(10, 8, 30));
        drop(c);
        let mut n = 0;
        while let Ok(p) = limits.try_acquire(Bucket::Members, now) {
            n += 1;
            drop(p);
        }
        assert_eq!(n, 3, "5 left minus the 2 then in flight");
        // An answer of an earlier window (smaller reset) changes nothing.
        let p = limits
            .try_acquire(Bucket::Members, now + Duration::from_secs(40))
            .unwrap();
        limits.observe(p, &headers(10, 9, 20));
        assert!(
            limits
                .try_acquire(Bucket::Members, now + Duration::from_secs(40))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn answers_without_rate_limit_headers_change_nothing() {
        let limits = Limits::new(0.1);
        let now = Instant::now();
        for _ in 0..100 {
            let p = limits.try_acquire(Bucket::Groups, now).unwrap();
            limits.observe(p, &HeaderMap::new());
        }
    }
}
