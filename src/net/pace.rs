//! Pacing calls within a server's published limits ("at most 5 a second and 60 a minute"), so
//! that a run of writes never meets a 429 in the first place. [`Windows`] keeps the times of the
//! last calls and makes the next one wait until it fits every window; [`shared`] hands out one per
//! server, so that every client of the process talking to it counts against the same limits (the
//! cloud counts per client IP).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// At most `calls` per `window`, for every (calls, window) pair.
#[derive(Debug)]
pub struct Windows {
    limits: Vec<(usize, Duration)>,
    /// Start times of the recent calls, oldest first (never more than the largest limit).
    sent: Mutex<VecDeque<Instant>>,
}

impl Windows {
    pub fn new(limits: &[(usize, Duration)]) -> Windows {
        Windows {
            limits: limits.iter().copied().filter(|(n, _)| *n > 0).collect(),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more call fits every window, and counts it as made now.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let wait = self.wait(&sent, now);
                if wait.is_zero() {
                    sent.push_back(now);
                    let keep = self.limits.iter().map(|(n, _)| *n).max().unwrap_or(0);
                    while sent.len() > keep {
                        sent.pop_front();
                    }
                    return;
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// How long until a call made at `now` fits every window.
    fn wait(&self, sent: &VecDeque<Instant>, now: Instant) -> Duration {
        self.limits
            .iter()
            .filter_map(|&(n, window)| {
                // The n-th most recent call must have left the window.
                let nth = sent.len().checked_sub(n).map(|i| sent[i])?;
                Some((nth + window).saturating_duration_since(now))
            })
            .max()
            .unwrap_or_default()
    }
}

/// The one [`Windows`] of `server` (a base URL) in this process, created with `limits` on first
/// use.
pub fn shared(server: &str, limits: &[(usize, Duration)]) -> Arc<Windows> {
    static ALL: OnceLock<Mutex<HashMap<String, Arc<Windows>>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    all.entry(server.to_string())
        .or_insert_with(|| Arc::new(Windows::new(limits)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUD: [(usize, Duration); 2] = [(5, Duration::from_secs(1)), (60, Duration::from_secs(60))];

    #[tokio::test(start_paused = true)]
    async fn calls_fit_five_a_second_and_sixty_a_minute() {
        let w = Windows::new(&CLOUD);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..61 {
            w.acquire().await;
            times.push(start.elapsed());
        }
        // The first five at once, then one more every time one leaves the one-second window.
        assert_eq!(&times[..5], &[Duration::ZERO; 5]);
        assert_eq!(times[5], Duration::from_secs(1));
        assert_eq!(times[10], Duration::from_secs(2));
        // Never more than 5 in any second, nor 60 in any minute.
        for (i, t) in times.iter().enumerate() {
            let in_second = times[..=i].iter().filter(|s| **s + Duration::from_secs(1) > *t).count();
            let in_minute = times[..=i].iter().filter(|s| **s + Duration::from_secs(60) > *t).count();
            assert!(in_second <= 5 && in_minute <= 60, "call {i} at {t:?}");
        }
        // The 61st waits for the first to leave the minute.
        assert_eq!(times[60], Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_spread_out_do_not_wait() {
        let w = Windows::new(&CLOUD);
        for _ in 0..10 {
            let before = Instant::now();
            w.acquire().await;
            assert_eq!(before.elapsed(), Duration::ZERO);
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }

    #[test]
    fn one_pacer_per_server() {
        let a = shared("https://api.example.test/a", &CLOUD);
        assert!(Arc::ptr_eq(&a, &shared("https://api.example.test/a", &CLOUD)));
        assert!(!Arc::ptr_eq(&a, &shared("https://api.example.test/b", &CLOUD)));
    }
}
