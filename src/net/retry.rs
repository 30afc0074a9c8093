//! When a request is sent again, and after how long.
//!
//! A call is bounded twice: in attempts ([`RetryPolicy::max_attempts`]) and in time
//! ([`RetryPolicy::budget`], every attempt and wait included). Between attempts it waits what the
//! server asks for ([`server_wait`]: `Retry-After`, Okta's `X-Rate-Limit-Reset`, OneLogin's
//! `X-RateLimit-Reset`) or a jittered exponential backoff. A wait that does not fit is not slept:
//! the call fails at once and says when to try again.
//!
//! What counts as throttled is per server ([`ServerRules`]): 429 by default, Google adds 403
//! with rate-limit reasons. Whether a failed call may be sent again is per call
//! ([`Idempotency`]).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};

/// How failed calls are repeated.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub base_delay: Duration,
    /// Each further delay is the previous one times this.
    pub factor: f32,
    /// Cap of one backoff delay (jitter included).
    pub max_delay: Duration,
    /// A wait the server asks for that is longer than this is not waited for: the call fails at
    /// once with `RateLimited`, saying when to retry.
    pub max_server_wait: Duration,
    /// The longest one call may take, every attempt and wait included.
    pub budget: Duration,
    /// Adds up to 100 % random jitter to each backoff delay.
    pub jitter: bool,
}

/// The default [`RetryPolicy::budget`]: 2 minutes.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(120);

impl Default for RetryPolicy {
    /// 4 attempts, delays 1 s, 2 s, 4 s (each plus up to 100 % jitter, at most 30 s); a server
    /// wait up to 60 s is honoured; 2 minutes per call in all.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
            max_server_wait: Duration::from_secs(60),
            budget: DEFAULT_BUDGET,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The default policy with millisecond delays and no jitter, for tests. A server wait is
    /// still honoured as sent.
    pub fn fast() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
            jitter: false,
            ..RetryPolicy::default()
        }
    }

    /// One attempt, no retries.
    pub fn no_retries() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The backoff delays before each retry (`max_attempts - 1` of them).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let mut builder = ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_factor(self.factor)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter {
            builder = builder.with_jitter();
        }
        let cap = self.max_delay;
        builder.build().map(move |d| d.min(cap))
    }
}

/// Whether a call may be sent again after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Safe to repeat (GET, a list, a token request): retried after transport errors, timeouts,
    /// 5xx and throttling.
    Idempotent,
    /// Must not run twice (an import): retried only when the server cannot have started it
    /// (the connection could not be opened, throttled, 503 with `Retry-After`). After a timeout,
    /// a broken answer or another 5xx the call fails at once: the work may be running.
    NotIdempotent,
}

/// What an HTTP answer means for the retry loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The server's answer (success or a refusal): returned to the caller.
    Answer,
    /// Rate limited: the server did not do the work; wait and repeat, else `RateLimited`.
    Throttled,
    /// Not available for now and says so without starting the work (503 with `Retry-After`).
    Busy,
    /// A server error: the work may have been started; only idempotent calls are repeated.
    ServerError,
}

/// Per-server rules of the retry loop. Every method has the default rule; a client overrides
/// what its server does differently (Google's 403 throttling, Okta's pacing).
pub trait ServerRules: Send + Sync {
    /// How to treat an answer. Default: [`default_verdict`].
    fn verdict(&self, status: StatusCode, headers: &HeaderMap, _body: &[u8]) -> Verdict {
        default_verdict(status, headers)
    }

    /// How long the server asks to wait before the next attempt. Default: [`server_wait`].
    fn server_wait(&self, headers: &HeaderMap) -> Option<Duration> {
        server_wait(headers, Timestamp::now())
    }

    /// A pause before the next request, from the last answer's headers (to slow down before the
    /// server throttles). Default: none. Okta: [`pace_when_low`].
    fn pace(&self, _headers: &HeaderMap) -> Option<Duration> {
        None
    }
}

/// The default rules (Bitwarden, Microsoft Graph, OneLogin).
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultRules;

impl ServerRules for DefaultRules {}

/// 429 is throttled; 503 with `Retry-After` is busy; every other 5xx is a server error.
pub fn default_verdict(status: StatusCode, headers: &HeaderMap) -> Verdict {
    if status == StatusCode::TOO_MANY_REQUESTS {
        Verdict::Throttled
    } else if status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key(RETRY_AFTER) {
        Verdict::Busy
    } else if status.is_server_error() {
        Verdict::ServerError
    } else {
        Verdict::Answer
    }
}

/// Google signals throttling as 403 with one of these `errors[].reason`.
pub const GOOGLE_RATE_LIMIT_REASONS: [&str; 3] = ["userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded"];

/// Whether a Google error body (`{"error":{"errors":[{"reason":...}]}}`) says "rate limited".
pub fn google_rate_limited(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    value["error"]["errors"].as_array().is_some_and(|errors| {
        errors
            .iter()
            .filter_map(|e| e["reason"].as_str())
            .any(|r| GOOGLE_RATE_LIMIT_REASONS.contains(&r))
    })
}

/// The wait a server asks for: `Retry-After` (Graph, Bitwarden, Google), else Okta's
/// `X-Rate-Limit-Reset`, else OneLogin's `X-RateLimit-Reset`.
pub fn server_wait(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    retry_after(headers, now)
        .or_else(|| okta_reset(headers, now))
        .or_else(|| onelogin_reset(headers, now))
}

/// `Retry-After`: delta-seconds or an HTTP date (a date in the past is no wait).
pub fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = header(headers, RETRY_AFTER.as_str())?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    until(http_date(value)?, now)
}

/// Okta's `X-Rate-Limit-Reset`: when the window resets, in UTC epoch seconds, measured against
/// the server's `Date` header when there is one (the local clock may be off).
pub fn okta_reset(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let reset = Timestamp::from_second(header(headers, "x-rate-limit-reset")?.parse().ok()?).ok()?;
    let server_now = header(headers, DATE.as_str()).and_then(http_date).unwrap_or(now);
    until(reset, server_now)
}

/// OneLogin's `X-RateLimit-Reset`: seconds until the window resets. A value that can only be an
/// epoch (after 2001) is read as one, as some servers send.
pub fn onelogin_reset(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value: i64 = header(headers, "x-ratelimit-reset")?.parse().ok()?;
    if value >= 1_000_000_000 {
        return until(Timestamp::from_second(value).ok()?, now);
    }
    Some(Duration::from_secs(u64::try_from(value).ok()?))
}

/// `(remaining, limit)` of the current rate-limit window, from Okta's `X-Rate-Limit-*` or
/// OneLogin's `X-RateLimit-*` headers.
pub fn rate_limit_remaining(headers: &HeaderMap) -> Option<(u64, u64)> {
    let pair = |remaining: &str, limit: &str| {
        Some((
            header(headers, remaining)?.parse().ok()?,
            header(headers, limit)?.parse().ok()?,
        ))
    };
    pair("x-rate-limit-remaining", "x-rate-limit-limit").or_else(|| pair("x-ratelimit-remaining", "x-ratelimit-limit"))
}

/// Pacing for servers that announce their budget (Okta: "slow down when `Remaining` drops below
/// about 10 % of `Limit`"): once fewer than `fraction` of the window's requests are left, the
/// rest of the window is spread over them (all of it when none is left).
pub fn pace_when_low(headers: &HeaderMap, now: Timestamp, fraction: f64) -> Option<Duration> {
    let (remaining, limit) = rate_limit_remaining(headers)?;
    if limit == 0 || remaining as f64 >= limit as f64 * fraction {
        return None;
    }
    let window = okta_reset(headers, now).or_else(|| onelogin_reset(headers, now))?;
    Some(window / u32::try_from(remaining + 1).unwrap_or(u32::MAX))
}

/// When a wait that starts now ends, to the second (UTC), for messages.
pub fn retry_time(wait: Duration) -> String {
    SignedDuration::try_from(wait)
        .ok()
        .and_then(|w| Timestamp::now().checked_add(w).ok())
        .and_then(|t| t.round(jiff::Unit::Second).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| "later".into())
}

/// A wait as people write it: `1.5s`, `45s`, `2m`, `2m30s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64().round() as u64;
    if d < Duration::from_secs(10) && d.subsec_millis() != 0 {
        format!("{}s", (d.as_millis() as f64 / 100.0).round() / 10.0)
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn http_date(value: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()
}

fn until(at: Timestamp, now: Timestamp) -> Option<Duration> {
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn http_date_of(t: Timestamp) -> String {
        jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&t)
            .unwrap()
    }

    #[test]
    fn the_default_policy_backs_off_exponentially_with_bounded_jitter() {
        let plain = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        assert_eq!(plain.delays().collect::<Vec<_>>(), [1, 2, 4].map(Duration::from_secs));
        for _ in 0..20 {
            let jittered: Vec<_> = RetryPolicy::default().delays().collect();
            assert_eq!(jittered.len(), 3);
            for (d, base) in jittered.iter().zip([1, 2, 4]) {
                let base = Duration::from_secs(base);
                assert!(*d >= base && *d <= 2 * base, "{d:?} not in [{base:?}, 2×]");
            }
        }
        let long = RetryPolicy {
            max_attempts: 10,
            jitter: false,
            ..RetryPolicy::default()
        };
        let delays: Vec<_> = long.delays().collect();
        assert_eq!(delays.len(), 9);
        assert_eq!(delays[5..], [Duration::from_secs(30); 4], "capped");
        let jittered_long = RetryPolicy {
            max_attempts: 10,
            ..RetryPolicy::default()
        };
        assert!(jittered_long.delays().all(|d| d <= Duration::from_secs(30)));
        assert_eq!(RetryPolicy::no_retries().delays().count(), 0);
        assert_eq!(RetryPolicy::default().budget, Duration::from_secs(120));
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = Timestamp::now();
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let later = http_date_of(now + SignedDuration::from_secs(120));
        let wait = retry_after(&headers(&[("retry-after", &later)]), now).unwrap();
        assert!(
            wait > Duration::from_secs(118) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        let past = headers(&[("retry-after", "Thu, 01 Jan 1970 00:00:01 GMT")]);
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn okta_resets_are_epoch_seconds_on_the_servers_clock() {
        let local = Timestamp::from_second(1_700_000_000).unwrap();
        // The server's clock is 100 s behind ours: its Date header decides.
        let server = local - SignedDuration::from_secs(100);
        let reset = (server.as_second() + 30).to_string();
        let h = headers(&[("x-rate-limit-reset", &reset), ("date", &http_date_of(server))]);
        assert_eq!(okta_reset(&h, local), Some(Duration::from_secs(30)));
        assert_eq!(server_wait(&h, local), Some(Duration::from_secs(30)));
        // Without Date: our clock (the reset is then already past: no wait).
        let h = headers(&[("x-rate-limit-reset", &reset)]);
        assert_eq!(okta_reset(&h, local), Some(Duration::ZERO));
        assert_eq!(okta_reset(&headers(&[("x-rate-limit-reset", "soon")]), local), None);
        // Retry-After wins when both are sent.
        let h = headers(&[("x-rate-limit-reset", &reset), ("retry-after", "3")]);
        assert_eq!(server_wait(&h, local), Some(Duration::from_secs(3)));
    }

    #[test]
    fn onelogin_resets_are_seconds_from_now() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let h = headers(&[("x-ratelimit-reset", "832")]);
        assert_eq!(onelogin_reset(&h, now), Some(Duration::from_secs(832)));
        assert_eq!(server_wait(&h, now), Some(Duration::from_secs(832)));
        let h = headers(&[("x-ratelimit-reset", "1700000045")]);
        assert_eq!(onelogin_reset(&h, now), Some(Duration::from_secs(45)), "an epoch");
        assert_eq!(onelogin_reset(&headers(&[("x-ratelimit-reset", "-1")]), now), None);
    }

    #[test]
    fn pacing_spreads_the_last_requests_of_a_window() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let reset = (now.as_second() + 60).to_string();
        let okta = |remaining: &str| {
            headers(&[
                ("x-rate-limit-limit", "600"),
                ("x-rate-limit-remaining", remaining),
                ("x-rate-limit-reset", &reset),
            ])
        };
        assert_eq!(pace_when_low(&okta("300"), now, 0.1), None);
        assert_eq!(pace_when_low(&okta("59"), now, 0.1), Some(Duration::from_secs(1)));
        assert_eq!(pace_when_low(&okta("0"), now, 0.1), Some(Duration::from_secs(60)));
        let onelogin = headers(&[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "9"),
            ("x-ratelimit-reset", "100"),
        ]);
        assert_eq!(rate_limit_remaining(&onelogin), Some((9, 5000)));
        assert_eq!(pace_when_low(&onelogin, now, 0.1), Some(Duration::from_secs(10)));
        assert_eq!(pace_when_low(&HeaderMap::new(), now, 0.1), None);
    }

    #[test]
    fn the_default_verdicts() {
        let none = HeaderMap::new();
        let with_wait = headers(&[("retry-after", "1")]);
        let v = |status: u16, h: &HeaderMap| default_verdict(StatusCode::from_u16(status).unwrap(), h);
        assert_eq!(v(429, &none), Verdict::Throttled);
        assert_eq!(v(503, &with_wait), Verdict::Busy);
        assert_eq!(v(503, &none), Verdict::ServerError);
        assert_eq!(v(500, &with_wait), Verdict::ServerError);
        assert_eq!(v(502, &none), Verdict::ServerError);
        for status in [200, 204, 307, 400, 401, 403, 404] {
            assert_eq!(v(status, &none), Verdict::Answer, "{status}");
        }
        assert_eq!(
            DefaultRules.verdict(StatusCode::FORBIDDEN, &none, b"{}"),
            Verdict::Answer
        );
    }

    /// Google's rules, as the Google source will write them.
    struct Google;
    impl ServerRules for Google {
        fn verdict(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
            if status == StatusCode::FORBIDDEN && google_rate_limited(body) {
                return Verdict::Throttled;
            }
            default_verdict(status, headers)
        }
    }

    #[test]
    fn google_403_rate_reasons_are_throttled_and_other_403s_are_not() {
        let none = HeaderMap::new();
        let body = |reason: &str| {
            format!(
                r#"{{"error":{{"code":403,"message":"Quota exceeded","errors":[{{"domain":"usageLimits","reason":"{reason}","message":"m"}}],"status":"PERMISSION_DENIED"}}}}"#
            )
        };
        for reason in GOOGLE_RATE_LIMIT_REASONS {
            assert_eq!(
                Google.verdict(StatusCode::FORBIDDEN, &none, body(reason).as_bytes()),
                Verdict::Throttled,
                "{reason}"
            );
        }
        for reason in ["forbidden", "insufficientPermissions"] {
            assert_eq!(
                Google.verdict(StatusCode::FORBIDDEN, &none, body(reason).as_bytes()),
                Verdict::Answer
            );
        }
        assert_eq!(Google.verdict(StatusCode::FORBIDDEN, &none, b"<html>"), Verdict::Answer);
        assert_eq!(
            Google.verdict(StatusCode::TOO_MANY_REQUESTS, &none, b""),
            Verdict::Throttled
        );
    }

    #[test]
    fn waits_read_like_people_write_them() {
        assert_eq!(human(Duration::from_millis(300)), "0.3s");
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
        assert_eq!(human(Duration::from_secs(150)), "2m30s");
        assert_eq!(human(Duration::from_millis(119_990)), "2m");
    }
}
