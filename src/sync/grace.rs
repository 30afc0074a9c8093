//! `sync.removalGracePeriod` (beyond the reference): a member that `removeOutOfScope` or
//! `removeDisabled` would remove is removed only once it has been gone (or disabled) for the
//! whole period, so that one bad read (a page of the directory missing, a filter typo) does not
//! remove people. Until then it is pending: listed in the status with the time it will go, and
//! counted by the guard. Users the directory reports deleted are removed at once (parity).
//!
//! Absence is judged on complete reads only; a disabled user is seen on any read that returns
//! it. A pending member that comes back (or is enabled again) is forgotten.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::prepare::Prepared;
use crate::api::{PendingCause, PendingRemoval};
use crate::bitwarden::ImportMember;

/// What the grace period needs to know besides the directory.
#[derive(Clone, Copy, Debug)]
pub struct GraceInput<'a> {
    /// `None`: no grace period, every removal goes at once.
    pub period: Option<Duration>,
    pub now: Timestamp,
    /// The pending list of the last successful sync.
    pub pending: &'a [PendingRemoval],
}

/// This sync's decision.
#[derive(Clone, Debug, Default)]
pub struct Grace<'a> {
    /// Disabled users whose time is still running: not sent as removed.
    pub held: HashSet<&'a str>,
    /// The pending list to keep if this sync succeeds, sorted by removal time.
    pub pending: Vec<PendingRemoval>,
}

/// Splits this sync's removals into those that are due and those that wait. `out_of_scope` are
/// the members `removeOutOfScope` found (complete reads only); the due ones are returned.
pub fn decide<'a, 'm>(
    prepared: &'a Prepared,
    out_of_scope: Vec<ImportMember<'m>>,
    remove_disabled: bool,
    input: &GraceInput,
) -> (Grace<'a>, Vec<ImportMember<'m>>) {
    let Some(period) = input.period else {
        return (Grace::default(), out_of_scope);
    };
    let period = SignedDuration::try_from(period).unwrap_or(SignedDuration::MAX);
    let previous: HashMap<&str, &PendingRemoval> = input.pending.iter().map(|p| (p.external_id.as_str(), p)).collect();
    let mut grace = Grace::default();
    // Whether a candidate is due; records it as pending when it is not.
    let mut wait = |external_id: &str, email: &str, cause: PendingCause| -> bool {
        let since = previous
            .get(external_id)
            .and_then(|p| p.since.parse::<Timestamp>().ok())
            .filter(|since| *since <= input.now)
            .unwrap_or(input.now);
        let remove_at = since.checked_add(period).unwrap_or(Timestamp::MAX);
        if input.now >= remove_at {
            return false;
        }
        grace.pending.push(PendingRemoval {
            external_id: external_id.to_string(),
            email: email.to_string(),
            cause,
            since: since.to_string(),
            remove_at: remove_at.to_string(),
        });
        true
    };

    let mut held = HashSet::new();
    if remove_disabled {
        for u in prepared.users.iter().filter(|u| u.disabled && !u.deleted) {
            if wait(
                &u.external_id,
                u.email.as_deref().unwrap_or_default(),
                PendingCause::Disabled,
            ) {
                held.insert(u.external_id.as_str());
            }
        }
    }
    let due: Vec<ImportMember> = out_of_scope
        .into_iter()
        .filter(|m| !wait(&m.external_id, &m.email, PendingCause::OutOfScope))
        .collect();

    // An incremental read tells nothing about who is absent: what it did not return stays
    // pending as it was.
    if !prepared.complete {
        let seen: HashSet<&str> = prepared.users.iter().map(|u| u.external_id.as_str()).collect();
        let kept: Vec<PendingRemoval> = input
            .pending
            .iter()
            .filter(|p| !seen.contains(p.external_id.as_str()))
            .cloned()
            .collect();
        grace.pending.extend(kept);
    }
    grace.pending.sort_by(|a, b| {
        (a.remove_at.as_str(), a.external_id.as_str()).cmp(&(b.remove_at.as_str(), b.external_id.as_str()))
    });
    grace.held = held;
    (grace, due)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::sync::model::User;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    fn prepared(disabled: &[&str], enabled: &[&str], complete: bool) -> Prepared {
        let user = |id: &&str, disabled: bool| User {
            external_id: id.to_string(),
            email: Some(format!("{id}@x.com")),
            disabled,
            deleted: false,
        };
        Prepared {
            users: disabled
                .iter()
                .map(|id| user(id, true))
                .chain(enabled.iter().map(|id| user(id, false)))
                .collect(),
            complete,
            ..Default::default()
        }
    }

    fn gone(id: &str) -> ImportMember<'static> {
        ImportMember {
            email: Cow::Owned(format!("{id}@x.com")),
            external_id: Cow::Owned(id.to_string()),
            deleted: true,
        }
    }

    fn ids(pending: &[PendingRemoval]) -> Vec<(&str, PendingCause, &str)> {
        pending
            .iter()
            .map(|p| (p.external_id.as_str(), p.cause, p.remove_at.as_str()))
            .collect()
    }

    #[test]
    fn without_a_period_every_removal_goes_at_once() {
        let p = prepared(&["d"], &[], true);
        let input = GraceInput {
            period: None,
            now: at("2025-01-01T00:00:00Z"),
            pending: &[],
        };
        let (grace, due) = decide(&p, vec![gone("x")], true, &input);
        assert!(grace.held.is_empty() && grace.pending.is_empty());
        assert_eq!(due.len(), 1);
    }

    #[test]
    fn a_removal_waits_for_the_period_then_goes() {
        let p = prepared(&["d"], &[], true);
        let day1 = GraceInput {
            period: Some(24 * HOUR),
            now: at("2025-01-01T00:00:00Z"),
            pending: &[],
        };
        let (grace, due) = decide(&p, vec![gone("x")], true, &day1);
        assert!(due.is_empty());
        assert_eq!(grace.held, HashSet::from(["d"]));
        assert_eq!(
            ids(&grace.pending),
            [
                ("d", PendingCause::Disabled, "2025-01-02T00:00:00Z"),
                ("x", PendingCause::OutOfScope, "2025-01-02T00:00:00Z")
            ]
        );
        // Half a day later: still waiting, the clock kept.
        let later = GraceInput {
            now: at("2025-01-01T12:00:00Z"),
            pending: &grace.pending,
            ..day1
        };
        let (g2, due) = decide(&p, vec![gone("x")], true, &later);
        assert!(due.is_empty());
        assert_eq!(ids(&g2.pending), ids(&grace.pending));
        // A day later: both go, nothing pending.
        let due_day = GraceInput {
            now: at("2025-01-02T00:00:00Z"),
            pending: &grace.pending,
            ..day1
        };
        let (g3, due) = decide(&p, vec![gone("x")], true, &due_day);
        assert_eq!(due.len(), 1);
        assert!(g3.held.is_empty() && g3.pending.is_empty());
    }

    #[test]
    fn a_member_who_comes_back_is_forgotten_and_starts_again_if_gone_again() {
        let period = Some(24 * HOUR);
        let first = GraceInput {
            period,
            now: at("2025-01-01T00:00:00Z"),
            pending: &[],
        };
        let gone_dir = prepared(&["d"], &[], true);
        let (grace, _) = decide(&gone_dir, vec![gone("x")], true, &first);
        // Back: d enabled, x in scope again (not among the out-of-scope members).
        let back = GraceInput {
            now: at("2025-01-01T20:00:00Z"),
            pending: &grace.pending,
            ..first
        };
        let back_dir = prepared(&[], &["d"], true);
        let (g2, due) = decide(&back_dir, vec![], true, &back);
        assert!(due.is_empty() && g2.pending.is_empty() && g2.held.is_empty());
        // Gone again the next day: a new full period.
        let again = GraceInput {
            now: at("2025-01-02T01:00:00Z"),
            pending: &g2.pending,
            ..first
        };
        let gone_again = prepared(&["d"], &[], true);
        let (g3, _) = decide(&gone_again, vec![], true, &again);
        assert_eq!(
            ids(&g3.pending),
            [("d", PendingCause::Disabled, "2025-01-03T01:00:00Z")]
        );
    }

    #[test]
    fn an_incremental_read_keeps_what_it_did_not_see() {
        let first = GraceInput {
            period: Some(24 * HOUR),
            now: at("2025-01-01T00:00:00Z"),
            pending: &[],
        };
        let gone_dir = prepared(&["d"], &[], true);
        let (grace, _) = decide(&gone_dir, vec![gone("x")], true, &first);
        let incremental = GraceInput {
            now: at("2025-01-01T06:00:00Z"),
            pending: &grace.pending,
            ..first
        };
        // The read returned only an unrelated change.
        let unrelated = prepared(&[], &["other"], false);
        let (g2, due) = decide(&unrelated, vec![], true, &incremental);
        assert!(due.is_empty());
        assert_eq!(ids(&g2.pending), ids(&grace.pending));
        // It returned d enabled again: d is forgotten, x stays.
        let enabled_again = prepared(&[], &["d"], false);
        let (g3, _) = decide(&enabled_again, vec![], true, &incremental);
        assert_eq!(
            ids(&g3.pending),
            [("x", PendingCause::OutOfScope, "2025-01-02T00:00:00Z")]
        );
    }

    #[test]
    fn disabled_users_wait_only_when_remove_disabled_is_on() {
        let input = GraceInput {
            period: Some(HOUR),
            now: at("2025-01-01T00:00:00Z"),
            pending: &[],
        };
        let disabled_dir = prepared(&["d"], &[], true);
        let (grace, _) = decide(&disabled_dir, vec![], false, &input);
        assert!(grace.pending.is_empty() && grace.held.is_empty());
    }
}
