//! Pure scheduling decisions: is a sync due now, and if not, when? No I/O, so every rule of
//! `sync-semantics.md` §6 is a table-driven test below.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::api::{DirectorySyncStatus, Reason, condition};

/// First retry delay after a failure; doubles per consecutive failure, capped at the interval.
pub const BACKOFF_START: Duration = Duration::from_secs(30);

/// What reconcile knows when it decides.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// `metadata.generation` of the resource.
    pub generation: Option<i64>,
    pub status: Option<&'a DirectorySyncStatus>,
    /// The current `dirsync.dev/sync-now` annotation value.
    pub sync_now: Option<&'a str>,
    /// Hash of the referenced Secrets' resourceVersions (see [`secrets_hash`](super::secrets)).
    pub secrets_hash: &'a str,
    /// `spec.sync.interval` (the default when it does not parse: validation reports that).
    pub interval: Duration,
    /// `spec.suspend`.
    pub suspend: bool,
    /// Consecutive failed syncs counted in memory for this resource.
    pub failures: u32,
    pub now: Timestamp,
}

/// Why a sync runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Never synced (no status yet).
    First,
    /// The spec changed (`observedGeneration` differs).
    NewGeneration,
    /// A new `dirsync.dev/sync-now` value.
    SyncNow,
    /// A referenced Secret was created, changed or deleted.
    SecretsChanged,
    /// The interval (or the failure backoff) has passed.
    Due,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run a sync now; `force` ignores the skip-unchanged hash and the cursor.
    Sync { why: Why, force: bool },
    /// Nothing to do until `until` (`None`: until the resource or a Secret changes).
    Wait { until: Option<Timestamp> },
}

/// Decides whether a sync is due.
pub fn decide(i: &Inputs) -> Decision {
    let Some(status) = i.status.filter(|s| s.last_sync_time.is_some()) else {
        return Decision::Sync {
            why: Why::First,
            force: i.sync_now.is_some(),
        };
    };
    if let Some(value) = i.sync_now
        && status.sync_now_handled.as_deref() != Some(value)
    {
        return Decision::Sync {
            why: Why::SyncNow,
            force: true,
        };
    }
    if status.observed_generation != i.generation {
        return Decision::Sync {
            why: Why::NewGeneration,
            force: false,
        };
    }
    if status.secrets_hash.as_deref() != Some(i.secrets_hash) {
        return Decision::Sync {
            why: Why::SecretsChanged,
            force: false,
        };
    }
    if i.suspend {
        return Decision::Wait { until: None };
    }
    match next_due(status, i.interval, i.failures) {
        Some(due) if i.now < due => Decision::Wait { until: Some(due) },
        _ => Decision::Sync {
            why: Why::Due,
            force: false,
        },
    }
}

/// The newer of the cached object's status and the status this process last wrote (by
/// `lastSyncTime`): the watch cache may not have caught up with our own write yet.
pub fn freshest<'a>(
    cached: Option<&'a DirectorySyncStatus>,
    written: Option<&'a DirectorySyncStatus>,
) -> Option<&'a DirectorySyncStatus> {
    let time = |s: Option<&DirectorySyncStatus>| -> Option<Timestamp> { s?.last_sync_time.as_deref()?.parse().ok() };
    match (time(cached), time(written)) {
        (Some(c), Some(w)) if w > c => written,
        (None, Some(_)) => written,
        _ => cached.or(written),
    }
}

/// When the next sync is due after the last attempt recorded in `status`.
pub fn next_due(status: &DirectorySyncStatus, interval: Duration, failures: u32) -> Option<Timestamp> {
    let last: Timestamp = status.last_sync_time.as_deref()?.parse().ok()?;
    let failed = ready_reason(status).is_some_and(|r| !r.is_ready());
    let wait = if failed {
        backoff(failures.max(1), interval)
    } else {
        interval
    };
    last.checked_add(SignedDuration::try_from(wait).ok()?).ok()
}

/// Delay after `failures` consecutive failures: 30 s, 60 s, 120 s, ... capped at `interval`.
pub fn backoff(failures: u32, interval: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    BACKOFF_START
        .saturating_mul(1u32 << exp)
        .min(interval.max(BACKOFF_START))
}

/// How long to wait from `now` until `until` (at least one second, so no hot loop).
pub fn requeue_after(until: Timestamp, now: Timestamp) -> Duration {
    let d = until.duration_since(now);
    Duration::try_from(d).unwrap_or_default().max(Duration::from_secs(1))
}

/// The reason of the `Ready` condition in a status.
pub fn ready_reason(status: &DirectorySyncStatus) -> Option<Reason> {
    let c = status.conditions.iter().find(|c| c.type_ == condition::READY)?;
    Reason::ALL.into_iter().find(|r| r.as_str() == c.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_this_process_wrote_wins_over_a_stale_cache() {
        let at = |t: &str| DirectorySyncStatus {
            last_sync_time: Some(t.into()),
            ..Default::default()
        };
        let old = at("2025-01-01T10:00:00Z");
        let new = at("2025-01-01T10:05:00Z");
        assert_eq!(freshest(Some(&old), Some(&new)), Some(&new));
        assert_eq!(
            freshest(Some(&new), Some(&old)),
            Some(&new),
            "the cache caught up and moved on"
        );
        assert_eq!(freshest(None, Some(&new)), Some(&new));
        assert_eq!(freshest(Some(&old), None), Some(&old));
        let never = DirectorySyncStatus::default();
        assert_eq!(freshest(Some(&never), Some(&new)), Some(&new));
        assert_eq!(freshest(None, None), None);
    }
    use crate::api::Condition;

    const HOUR: Duration = Duration::from_secs(3600);

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn status(reason: Reason, last: &str) -> DirectorySyncStatus {
        DirectorySyncStatus {
            observed_generation: Some(2),
            last_sync_time: Some(last.into()),
            secrets_hash: Some("h1".into()),
            sync_now_handled: Some("a".into()),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: if reason.is_ready() { "True" } else { "False" }.into(),
                reason: reason.as_str().into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn inputs<'a>(status: Option<&'a DirectorySyncStatus>, now: &str) -> Inputs<'a> {
        Inputs {
            generation: Some(2),
            status,
            sync_now: Some("a"),
            secrets_hash: "h1",
            interval: HOUR,
            suspend: false,
            failures: 0,
            now: ts(now),
        }
    }

    fn sync(why: Why, force: bool) -> Decision {
        Decision::Sync { why, force }
    }

    fn wait(until: &str) -> Decision {
        Decision::Wait { until: Some(ts(until)) }
    }

    #[test]
    fn decisions() {
        let ok = status(Reason::Synced, "2025-01-01T10:00:00Z");
        let unchanged = status(Reason::Unchanged, "2025-01-01T10:00:00Z");
        let failed = status(Reason::SourceUnavailable, "2025-01-01T10:00:00Z");
        let suspended = status(Reason::Suspended, "2025-01-01T10:00:00Z");
        let empty = DirectorySyncStatus::default();
        let t = "2025-01-01T10:10:00Z";
        let cases: Vec<(&str, Inputs, Decision)> = vec![
            ("no status: first sync", inputs(None, t), sync(Why::First, true)),
            (
                "status without a sync time: first sync",
                Inputs {
                    sync_now: None,
                    ..inputs(Some(&empty), t)
                },
                sync(Why::First, false),
            ),
            ("synced, not due", inputs(Some(&ok), t), wait("2025-01-01T11:00:00Z")),
            (
                "unchanged, not due",
                inputs(Some(&unchanged), t),
                wait("2025-01-01T11:00:00Z"),
            ),
            (
                "synced, interval passed",
                inputs(Some(&ok), "2025-01-01T11:00:00Z"),
                sync(Why::Due, false),
            ),
            (
                "new generation",
                Inputs {
                    generation: Some(3),
                    ..inputs(Some(&ok), t)
                },
                sync(Why::NewGeneration, false),
            ),
            (
                "new sync-now value forces",
                Inputs {
                    sync_now: Some("b"),
                    ..inputs(Some(&ok), t)
                },
                sync(Why::SyncNow, true),
            ),
            (
                "handled sync-now value does nothing",
                inputs(Some(&ok), t),
                wait("2025-01-01T11:00:00Z"),
            ),
            (
                "annotation removed does nothing",
                Inputs {
                    sync_now: None,
                    ..inputs(Some(&ok), t)
                },
                wait("2025-01-01T11:00:00Z"),
            ),
            (
                "secret changed",
                Inputs {
                    secrets_hash: "h2",
                    ..inputs(Some(&ok), t)
                },
                sync(Why::SecretsChanged, false),
            ),
            (
                "failed once: retry after 30 s",
                Inputs {
                    failures: 1,
                    ..inputs(Some(&failed), "2025-01-01T10:00:10Z")
                },
                wait("2025-01-01T10:00:30Z"),
            ),
            (
                "failed, count lost on restart: 30 s",
                inputs(Some(&failed), "2025-01-01T10:00:10Z"),
                wait("2025-01-01T10:00:30Z"),
            ),
            (
                "failed three times: 120 s",
                Inputs {
                    failures: 3,
                    ..inputs(Some(&failed), "2025-01-01T10:00:10Z")
                },
                wait("2025-01-01T10:02:00Z"),
            ),
            (
                "failed many times: capped at the interval",
                Inputs {
                    failures: 12,
                    ..inputs(Some(&failed), "2025-01-01T10:00:10Z")
                },
                wait("2025-01-01T11:00:00Z"),
            ),
            (
                "failed, backoff passed",
                Inputs {
                    failures: 1,
                    ..inputs(Some(&failed), "2025-01-01T10:00:30Z")
                },
                sync(Why::Due, false),
            ),
            (
                "suspended: wait for a change",
                Inputs {
                    suspend: true,
                    ..inputs(Some(&suspended), "2025-01-02T10:00:00Z")
                },
                Decision::Wait { until: None },
            ),
            (
                "suspended, then unsuspended (new generation)",
                Inputs {
                    generation: Some(3),
                    ..inputs(Some(&suspended), t)
                },
                sync(Why::NewGeneration, false),
            ),
        ];
        for (name, i, want) in cases {
            assert_eq!(decide(&i), want, "{name}");
        }
    }

    #[test]
    fn backoff_doubles_from_30s_and_is_capped_at_the_interval() {
        let got: Vec<u64> = (1..=9).map(|n| backoff(n, HOUR).as_secs()).collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(u32::MAX, HOUR), HOUR);
        assert_eq!(backoff(1, Duration::from_secs(5)), BACKOFF_START);
    }

    #[test]
    fn requeue_is_never_zero() {
        let now = ts("2025-01-01T10:00:00Z");
        assert_eq!(requeue_after(ts("2025-01-01T09:00:00Z"), now), Duration::from_secs(1));
        assert_eq!(requeue_after(ts("2025-01-01T10:01:00Z"), now), Duration::from_secs(60));
    }
}
