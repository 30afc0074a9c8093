//! The status a sync leaves behind (pure: built from the old status and the engine's result), the
//! mapping between status and the engine's [`SyncState`], and the one write through the status
//! subresource.

use std::time::Duration;

use jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value};

use super::reconcile::next_due;
use crate::Error;
use crate::api::condition::{BITWARDEN_REACHABLE, READY, SOURCE_REACHABLE, SYNCED};
use crate::api::{Changes, Condition, DirectorySync, DirectorySyncStatus, Reason};
use crate::engine::{Outcome, SyncState};

/// The one field manager of every write.
pub const FIELD_MANAGER: &str = "dirsync";

/// The engine's memory, read from status.
pub fn sync_state(status: Option<&DirectorySyncStatus>) -> SyncState {
    let Some(s) = status else {
        return SyncState::default();
    };
    SyncState {
        sync_hash: s.sync_hash.clone(),
        cursor: s.cursor.clone(),
        last_active_users: s.last_synced_active_users,
        last_successful_sync_time: s.last_successful_sync_time.clone(),
        pending_removals: s.pending_removals.clone(),
        members: s.members,
        collections: s.collections.clone(),
        collections_hash: s.collections_hash.clone(),
    }
}

fn put_state(status: &mut DirectorySyncStatus, state: &SyncState) {
    status.sync_hash = state.sync_hash.clone();
    status.cursor = state.cursor.clone();
    status.last_synced_active_users = state.last_active_users;
    status.last_successful_sync_time = state.last_successful_sync_time.clone();
    status.pending_removals = state.pending_removals.clone();
    status.members = state.members;
    status.collections = state.collections.clone();
    status.collections_hash = state.collections_hash.clone();
}

/// What the status records about the attempt besides its result.
#[derive(Clone, Debug)]
pub struct Attempt<'a> {
    pub generation: Option<i64>,
    /// Provider name (`ldap`, ...).
    pub provider: &'a str,
    /// When the attempt started.
    pub started: Timestamp,
    pub interval: Duration,
    /// Consecutive failures including this attempt (0 after a success).
    pub failures: u32,
    /// The `sync-now` annotation value this attempt handled.
    pub sync_now: Option<&'a str>,
    pub secrets_hash: &'a str,
}

/// The status after an attempt. On error the counts, hash, cursor and plan of the last good sync
/// stay; only conditions, times and the bookkeeping fields move.
pub fn after_attempt(
    old: Option<&DirectorySyncStatus>,
    result: &Result<Outcome, Error>,
    a: &Attempt,
) -> DirectorySyncStatus {
    let mut s = old.cloned().unwrap_or_default();
    let now = a.started;
    s.observed_generation = a.generation;
    s.source = Some(a.provider.to_string());
    s.last_sync_time = Some(now.to_string());
    s.sync_now_handled = a.sync_now.map(str::to_string);
    s.secrets_hash = Some(a.secrets_hash.to_string());
    let gen_ = a.generation;
    match result {
        Ok(o) if o.reason == Reason::Suspended => {
            s.next_sync_time = None;
            s.plan = None;
            set(&mut s, gen_, now, READY, "True", Reason::Suspended, &o.message);
            set(&mut s, gen_, now, SYNCED, "Unknown", Reason::Suspended, &o.message);
        }
        Ok(o) => {
            put_state(&mut s, &o.state);
            // An incremental read counts only what changed: keep the last complete counts.
            if o.complete {
                s.users = Some(o.users);
                s.groups = Some(o.groups);
            }
            s.warnings = o.warnings.clone();
            // A dry run counts and plans too: shown, while the state it keeps stays as it was
            // (the `granted` memory of a dry run's collections is the last sync's).
            if o.members.is_some() {
                s.members = o.members;
            }
            s.collections = o.collections.clone();
            if o.reason == Reason::DryRun {
                s.plan = o.plan.clone();
            } else {
                s.plan = None;
                s.last_changes = Some(if o.reason == Reason::Synced {
                    o.changes
                } else {
                    Changes::default()
                });
            }
            set(&mut s, gen_, now, READY, "True", o.reason, &o.message);
            set(&mut s, gen_, now, SYNCED, "True", o.reason, &o.message);
            set(
                &mut s,
                gen_,
                now,
                SOURCE_REACHABLE,
                "True",
                o.reason,
                "the directory was read",
            );
            if o.reason == Reason::Synced {
                set(
                    &mut s,
                    gen_,
                    now,
                    BITWARDEN_REACHABLE,
                    "True",
                    o.reason,
                    "Bitwarden accepted the changes",
                );
            } else {
                keep_or_unknown(
                    &mut s,
                    gen_,
                    now,
                    BITWARDEN_REACHABLE,
                    o.reason,
                    "nothing was sent by the last sync",
                );
            }
        }
        Err(e) => {
            let reason = e.reason();
            let message = e.to_string();
            set(&mut s, gen_, now, READY, "False", reason, &message);
            set(&mut s, gen_, now, SYNCED, "False", reason, &message);
            match reason {
                Reason::SourceAuthFailed | Reason::SourceUnavailable => {
                    set(&mut s, gen_, now, SOURCE_REACHABLE, "False", reason, &message)
                }
                Reason::BitwardenAuthFailed | Reason::BitwardenUnavailable => {
                    set(&mut s, gen_, now, BITWARDEN_REACHABLE, "False", reason, &message)
                }
                Reason::BitwardenRejected => set(
                    &mut s,
                    gen_,
                    now,
                    BITWARDEN_REACHABLE,
                    "True",
                    reason,
                    "the server answered",
                ),
                _ => {}
            }
            keep_or_unknown(&mut s, gen_, now, SOURCE_REACHABLE, reason, "not read by the last sync");
            keep_or_unknown(
                &mut s,
                gen_,
                now,
                BITWARDEN_REACHABLE,
                reason,
                "not contacted by the last sync",
            );
        }
    }
    order_conditions(&mut s);
    // The same due time reconcile requeues for (the interval, or the backoff after a failure).
    if !matches!(result, Ok(o) if o.reason == Reason::Suspended) {
        s.next_sync_time = next_due(&s, a.interval, a.failures).map(|t| t.to_string());
    }
    s
}

/// Sets a condition; `lastTransitionTime` moves only when its status flips.
pub fn set(
    s: &mut DirectorySyncStatus,
    generation: Option<i64>,
    now: Timestamp,
    type_: &str,
    status: &str,
    reason: Reason,
    message: &str,
) {
    let transition = match s.conditions.iter().find(|c| c.type_ == type_) {
        Some(c) if c.status == status && c.last_transition_time.is_some() => c.last_transition_time.clone(),
        _ => Some(now.to_string()),
    };
    s.conditions.retain(|c| c.type_ != type_);
    s.conditions.push(Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.as_str().to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: transition,
    });
}

/// Keeps an existing condition (with the new generation), or records it as `Unknown`.
fn keep_or_unknown(
    s: &mut DirectorySyncStatus,
    generation: Option<i64>,
    now: Timestamp,
    type_: &str,
    reason: Reason,
    message: &str,
) {
    if let Some(c) = s.conditions.iter_mut().find(|c| c.type_ == type_) {
        c.observed_generation = generation;
    } else {
        set(s, generation, now, type_, "Unknown", reason, message);
    }
}

fn order_conditions(s: &mut DirectorySyncStatus) {
    let rank = |t: &str| {
        [READY, SYNCED, SOURCE_REACHABLE, BITWARDEN_REACHABLE]
            .iter()
            .position(|x| *x == t)
            .unwrap_or(9)
    };
    s.conditions.sort_by_key(|c| rank(&c.type_));
}

/// The status merge patch from `old` to `new`: every field of `new`, and `null` for the fields
/// that `new` no longer has (a merge patch leaves absent fields alone).
pub fn merge_patch(old: Option<&DirectorySyncStatus>, new: &DirectorySyncStatus) -> Value {
    let to_map = |s: &DirectorySyncStatus| match serde_json::to_value(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut patch = to_map(new);
    if let Some(old) = old {
        for key in to_map(old).keys() {
            patch.entry(key.clone()).or_insert(Value::Null);
        }
    }
    serde_json::json!({ "status": Value::Object(patch) })
}

/// Writes the status through the status subresource (merge patch, field manager `dirsync`).
pub async fn write(
    api: &Api<DirectorySync>,
    name: &str,
    old: Option<&DirectorySyncStatus>,
    new: &DirectorySyncStatus,
) -> Result<(), kube::Error> {
    if old == Some(new) {
        return Ok(());
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    api.patch_status(name, &params, &Patch::Merge(merge_patch(old, new)))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CollectionStatus, GrantedGroup, MemberCounts, PlanSummary, UserCounts};
    use crate::sync::prepare::{LeftOut, Prepared};

    fn attempt(started: &str, failures: u32) -> Attempt<'static> {
        Attempt {
            generation: Some(4),
            provider: "ldap",
            started: started.parse().unwrap(),
            interval: Duration::from_secs(3600),
            failures,
            sync_now: Some("x"),
            secrets_hash: "h",
        }
    }

    fn outcome(reason: Reason) -> Outcome {
        let mut state = SyncState {
            sync_hash: Some("hash-2".into()),
            last_active_users: Some(3),
            last_successful_sync_time: Some("2025-01-01T10:00:00Z".into()),
            members: Some(MemberCounts {
                invited: 2,
                accepted: 1,
                ..Default::default()
            }),
            collections: vec![CollectionStatus {
                id: Some("c0000000-0000-4000-8000-000000000001".into()),
                groups: 1,
                granted: vec![GrantedGroup {
                    name: "Engineering".into(),
                    external_id: "g-eng".into(),
                }],
                ..Default::default()
            }],
            collections_hash: Some("c-hash".into()),
            ..Default::default()
        };
        state.cursor.insert("k".into(), "v".into());
        Outcome {
            reason,
            message: "3 users, 1 groups".into(),
            users: UserCounts {
                enabled: 3,
                disabled: 1,
                deleted: 0,
            },
            groups: 1,
            complete: true,
            left_out: LeftOut::default(),
            changes: Changes {
                invited: Some(3),
                ..Default::default()
            },
            pending_removals: Vec::new(),
            plan: Some(PlanSummary {
                members: 3,
                ..Default::default()
            }),
            sent: Vec::new(),
            prepared: Prepared::default(),
            warnings: vec![],
            guard_overridden: false,
            api_url: "http://127.0.0.1".into(),
            members: state.members,
            collections: state.collections.clone(),
            state,
        }
    }

    fn cond<'a>(s: &'a DirectorySyncStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn success_then_failure_keeps_the_last_good_state_and_moves_transitions_only_on_flips() {
        let ok = after_attempt(None, &Ok(outcome(Reason::Synced)), &attempt("2025-01-01T10:00:00Z", 0));
        assert_eq!(cond(&ok, READY).status, "True");
        assert_eq!(cond(&ok, READY).reason, "Synced");
        assert_eq!(cond(&ok, READY).observed_generation, Some(4));
        assert_eq!(cond(&ok, BITWARDEN_REACHABLE).status, "True");
        assert_eq!(ok.sync_hash.as_deref(), Some("hash-2"));
        assert_eq!(ok.last_synced_active_users, Some(3));
        assert_eq!(ok.users.unwrap().enabled, 3);
        assert_eq!(ok.last_changes.unwrap().invited, Some(3));
        assert_eq!(ok.next_sync_time.as_deref(), Some("2025-01-01T11:00:00Z"));
        assert_eq!(ok.sync_now_handled.as_deref(), Some("x"));
        assert!(ok.plan.is_none());
        let types: Vec<&str> = ok.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, SYNCED, SOURCE_REACHABLE, BITWARDEN_REACHABLE]);

        let err = Error::SourceUnavailable("cannot reach ldap://x: fix the url".into());
        let failed = after_attempt(Some(&ok), &Err(err), &attempt("2025-01-01T11:00:00Z", 2));
        assert_eq!(cond(&failed, READY).status, "False");
        assert_eq!(cond(&failed, READY).reason, "SourceUnavailable");
        assert_eq!(
            cond(&failed, READY).last_transition_time.as_deref(),
            Some("2025-01-01T11:00:00Z")
        );
        assert_eq!(cond(&failed, SOURCE_REACHABLE).status, "False");
        // Bitwarden was not contacted: unchanged, transition time kept.
        assert_eq!(cond(&failed, BITWARDEN_REACHABLE).status, "True");
        assert_eq!(
            cond(&failed, BITWARDEN_REACHABLE).last_transition_time.as_deref(),
            Some("2025-01-01T10:00:00Z")
        );
        assert_eq!(failed.sync_hash, ok.sync_hash);
        assert_eq!(failed.cursor, ok.cursor);
        assert_eq!(failed.users, ok.users);
        assert_eq!(failed.last_successful_sync_time, ok.last_successful_sync_time);
        assert_eq!(failed.last_sync_time.as_deref(), Some("2025-01-01T11:00:00Z"));
        // Second failure: 60 s backoff.
        assert_eq!(failed.next_sync_time.as_deref(), Some("2025-01-01T11:01:00Z"));

        let again = after_attempt(
            Some(&failed),
            &Err(Error::SourceAuthFailed("bad password".into())),
            &attempt("2025-01-01T11:01:00Z", 3),
        );
        assert_eq!(cond(&again, READY).reason, "SourceAuthFailed");
        assert_eq!(
            cond(&again, READY).last_transition_time.as_deref(),
            Some("2025-01-01T11:00:00Z")
        );

        let back = after_attempt(
            Some(&again),
            &Ok(outcome(Reason::Unchanged)),
            &attempt("2025-01-01T12:00:00Z", 0),
        );
        assert_eq!(cond(&back, READY).status, "True");
        assert_eq!(
            cond(&back, READY).last_transition_time.as_deref(),
            Some("2025-01-01T12:00:00Z")
        );
        assert_eq!(back.last_changes, Some(Changes::default()));
    }

    #[test]
    fn first_failure_sets_unknown_reachability() {
        let s = after_attempt(
            None,
            &Err(Error::SecretNotFound {
                namespace: "ns".into(),
                name: "bw".into(),
            }),
            &attempt("2025-01-01T10:00:00Z", 1),
        );
        assert_eq!(cond(&s, READY).reason, "SecretNotFound");
        assert!(cond(&s, READY).message.contains("create it"));
        assert_eq!(cond(&s, SOURCE_REACHABLE).status, "Unknown");
        assert_eq!(cond(&s, BITWARDEN_REACHABLE).status, "Unknown");
        assert_eq!(s.next_sync_time.as_deref(), Some("2025-01-01T10:00:30Z"));
        assert!(s.users.is_none());
    }

    #[test]
    fn dry_run_fills_the_plan_and_suspend_clears_it() {
        let dry = after_attempt(None, &Ok(outcome(Reason::DryRun)), &attempt("2025-01-01T10:00:00Z", 0));
        assert_eq!(cond(&dry, READY).reason, "DryRun");
        assert_eq!(dry.plan.as_ref().unwrap().members, 3);
        assert!(dry.last_changes.is_none());
        let mut suspended_outcome = outcome(Reason::Suspended);
        suspended_outcome.message = "spec.suspend is true: no syncs run".into();
        let sus = after_attempt(Some(&dry), &Ok(suspended_outcome), &attempt("2025-01-01T10:05:00Z", 0));
        assert_eq!(cond(&sus, READY).status, "True");
        assert_eq!(cond(&sus, READY).reason, "Suspended");
        assert!(sus.plan.is_none());
        assert!(sus.next_sync_time.is_none());
        let patch = merge_patch(Some(&dry), &sus);
        assert_eq!(patch["status"]["plan"], Value::Null);
        assert_eq!(patch["status"]["nextSyncTime"], Value::Null);
        assert_eq!(patch["status"]["source"], "ldap");
    }

    #[test]
    fn state_round_trips_through_status() {
        let o = outcome(Reason::Synced);
        let s = after_attempt(None, &Ok(o.clone()), &attempt("2025-01-01T10:00:00Z", 0));
        assert_eq!(sync_state(Some(&s)), o.state);
        assert_eq!(s.members.unwrap().accepted, 1);
        assert_eq!(s.collections[0].granted[0].external_id, "g-eng");
        assert_eq!(sync_state(None), SyncState::default());
    }
}
