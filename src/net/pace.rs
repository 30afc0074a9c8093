//! Pacing calls within a server's published limits ("at most 5 a second and 60 a minute"), so
//! that a run of writes never meets a 429 in the first place. [`Windows`] keeps the times of the
//! last calls (each from its end, once it has ended) and makes the next one wait until it fits
//! every window; [`shared`] hands out one per
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
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    next: u64,
    /// The recent calls: when each started, or ended once it has (never more than the largest
    /// limit).
    times: VecDeque<(u64, Instant)>,
}

/// One call's place in the windows. Dropped when the call has ended: from then on the call
/// counts from its end, the latest the server can have seen it, so that network delays never
/// make two calls look closer together to the server than they were paced.
#[derive(Debug)]
pub struct Permit<'a> {
    windows: &'a Windows,
    id: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut slots = self.windows.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.times.iter_mut().find(|(id, _)| *id == self.id) {
            slot.1 = Instant::now();
        }
    }
}

impl Windows {
    pub fn new(limits: &[(usize, Duration)]) -> Windows {
        Windows {
            limits: limits.iter().copied().filter(|(n, _)| *n > 0).collect(),
            slots: Mutex::new(Slots::default()),
        }
    }

    /// Waits until one more call fits every window; the call counts until the permit is dropped.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let wait = {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let wait = self.wait(&slots.times, now);
                if wait.is_zero() {
                    let id = slots.next;
                    slots.next += 1;
                    slots.times.push_back((id, now));
                    let keep = self.limits.iter().map(|(n, _)| *n).max().unwrap_or(0);
                    while slots.times.len() > keep {
                        slots.times.pop_front();
                    }
                    return Permit { windows: self, id };
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// How long until a call made at `now` fits every window.
    fn wait(&self, times: &VecDeque<(u64, Instant)>, now: Instant) -> Duration {
        let mut latest: Vec<Instant> = times.iter().map(|(_, t)| *t).collect();
        latest.sort_unstable_by(|a, b| b.cmp(a));
        self.limits
            .iter()
            .filter_map(|&(n, window)| {
                // The n-th most recent call must have left the window.
                let nth = latest.get(n - 1)?;
                Some((*nth + window).saturating_duration_since(now))
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
            let _call = w.acquire().await;
            times.push(start.elapsed());
        }
        // The first five at once, then one more every time one leaves the one-second window.
        assert_eq!(&times[..5], &[Duration::ZERO; 5]);
        assert_eq!(times[5], Duration::from_secs(1));
        assert_eq!(times[10], Duration::from_secs(2));
        // Never more than 5 in any second, nor 60 in any minute.
        for (i, t) in times.iter().enumerate() {
            let in_second = times[..=i].iter().filter(|s| **s + Duration::from_secs(1) > *t).count();
            let in_minute = times[..=i]
                .iter()
                .filter(|s| **s + Duration::from_secs(60) > *t)
                .count();
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
            drop(w.acquire().await);
            assert_eq!(before.elapsed(), Duration::ZERO);
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_counts_from_its_end_once_it_ends() {
        let w = Windows::new(&[(1, Duration::from_secs(1))]);
        let start = Instant::now();
        {
            let _slow = w.acquire().await;
            // The server may have seen it only now.
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        let _next = w.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_millis(1700));
    }

    #[test]
    fn one_pacer_per_server() {
        let a = shared("https://api.example.test/a", &CLOUD);
        assert!(Arc::ptr_eq(&a, &shared("https://api.example.test/a", &CLOUD)));
        assert!(!Arc::ptr_eq(&a, &shared("https://api.example.test/b", &CLOUD)));
    }
}
