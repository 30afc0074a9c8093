//! What `dirsync test` and `dirsync sync` print.

use std::collections::HashMap;
use std::fmt::Write;

use serde::Serialize;

use crate::bitwarden::types::ExternalIds;
use crate::engine::Outcome;
use crate::sync::model::User;
use crate::sync::prepare::Prepared;

/// `bwdc test`'s JSON shape: a user's displayName is its email; a group's userIds are its
/// flattened member external ids. Everything sorted. Borrows from the sync's data.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TestJson<'a> {
    pub groups: Vec<GroupJson<'a>>,
    pub enabled_users: Vec<UserJson<'a>>,
    pub disabled_users: Vec<UserJson<'a>>,
    pub deleted_users: Vec<UserJson<'a>>,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GroupJson<'a> {
    pub external_id: &'a str,
    pub display_name: &'a str,
    pub user_ids: ExternalIds<'a>,
}

#[derive(Serialize, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct UserJson<'a> {
    pub external_id: &'a str,
    pub display_name: &'a str,
}

impl<'a> TestJson<'a> {
    pub fn new(prepared: &'a Prepared) -> TestJson<'a> {
        let user = |u: &'a User| UserJson {
            external_id: &u.external_id,
            display_name: u.email.as_deref().unwrap_or_default(),
        };
        let mut out = TestJson {
            // Prepared groups are already sorted by external id, their members by id.
            groups: prepared
                .groups
                .iter()
                .map(|g| GroupJson {
                    external_id: &g.external_id,
                    display_name: &g.name,
                    user_ids: ExternalIds::Indexed {
                        positions: &g.members,
                        table: &prepared.member_ids,
                    },
                })
                .collect(),
            enabled_users: prepared
                .users
                .iter()
                .filter(|u| !u.disabled && !u.deleted)
                .map(user)
                .collect(),
            disabled_users: prepared
                .users
                .iter()
                .filter(|u| u.disabled && !u.deleted)
                .map(user)
                .collect(),
            deleted_users: prepared.users.iter().filter(|u| u.deleted).map(user).collect(),
        };
        out.enabled_users.sort();
        out.disabled_users.sort();
        out.deleted_users.sort();
        out
    }
}

/// The readable summary of `dirsync test`: counts, then groups with members, then users.
pub fn test_text(outcome: &Outcome) -> String {
    let p = &outcome.prepared;
    let json = TestJson::new(p);
    let emails: HashMap<&str, &str> = p
        .users
        .iter()
        .filter_map(|u| u.email.as_deref().map(|e| (u.external_id.as_str(), e)))
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} enabled, {} disabled, {} deleted users; {} groups",
        outcome.users.enabled, outcome.users.disabled, outcome.users.deleted, outcome.groups
    );
    let l = &outcome.left_out;
    if l.without_email + l.email_too_long + l.in_no_synced_group + l.duplicates > 0 {
        let _ = writeln!(
            s,
            "left out: {} without email, {} with an email over 256 characters, {} in no synced group, {} duplicates",
            l.without_email, l.email_too_long, l.in_no_synced_group, l.duplicates
        );
    }
    for w in &outcome.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "\nGroups ({}):", json.groups.len());
    for g in &json.groups {
        let _ = writeln!(
            s,
            "  {}  [{}]  {} members",
            g.display_name,
            g.external_id,
            g.user_ids.len()
        );
        for id in g.user_ids.iter() {
            match emails.get(id) {
                Some(e) => {
                    let _ = writeln!(s, "    {e}");
                }
                None => {
                    let _ = writeln!(s, "    {id}  (not synced: no email)");
                }
            }
        }
    }
    for (title, users) in [
        ("Enabled users", &json.enabled_users),
        ("Disabled users", &json.disabled_users),
        ("Deleted users", &json.deleted_users),
    ] {
        let _ = writeln!(s, "\n{title} ({}):", users.len());
        for u in users {
            let _ = writeln!(s, "  {}  [{}]", u.display_name, u.external_id);
        }
    }
    if let Some(plan) = &outcome.plan {
        let _ = writeln!(
            s,
            "\nA sync would send {} active members, {} removals and {} groups in {} request(s); plan hash {}",
            plan.members, plan.removals, plan.groups, plan.requests, plan.hash
        );
    }
    pending_lines(&mut s, outcome);
    collection_lines(&mut s, outcome);
    s
}

/// One line per collection of `spec.collections`: its state and what changed (or would).
fn collection_lines(s: &mut String, outcome: &Outcome) {
    for c in &outcome.collections {
        let name = match (&c.id, &c.external_id) {
            (Some(id), _) => id.clone(),
            (None, Some(ext)) => format!("externalId {ext}"),
            (None, None) => "?".to_string(),
        };
        let groups = match c.groups {
            1 => "1 group".to_string(),
            n => format!("{n} groups"),
        };
        let _ = write!(
            s,
            "collection {name}: {:?}, {groups} with access from this sync",
            c.state
        );
        match &c.message {
            Some(m) => {
                let _ = writeln!(s, "; {m}");
            }
            None => {
                let _ = writeln!(s);
            }
        }
    }
}

/// The removals waiting for `removalGracePeriod`, one line each (the guard keeps the list short).
fn pending_lines(s: &mut String, outcome: &Outcome) {
    if outcome.pending_removals.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "pending removals (removalGracePeriod): {}",
        outcome.pending_removals.len()
    );
    for p in &outcome.pending_removals {
        let _ = writeln!(
            s,
            "  {}  [{}]  {:?} since {}, removed at {} if still so",
            p.email, p.external_id, p.cause, p.since, p.remove_at
        );
    }
}

/// What `dirsync sync` prints: what it sent and what changed.
pub fn sync_text(outcome: &Outcome, api_url: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}: {}", outcome.reason, outcome.message);
    for w in &outcome.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    for (i, r) in outcome.sent.iter().enumerate() {
        let _ = writeln!(
            s,
            "sent request {}/{} to {api_url}: {} members ({} removals), {} groups, overwriteExisting={}, largeImport={}",
            i + 1,
            outcome.sent.len(),
            r.members,
            r.removals,
            r.groups,
            r.overwrite_existing,
            r.large_import
        );
    }
    let c = &outcome.changes;
    if !outcome.sent.is_empty() {
        let _ = writeln!(s, "changes: {}", c.describe());
    }
    if let Some(m) = &outcome.members {
        let _ = writeln!(s, "members: {}", m.describe());
    }
    pending_lines(&mut s, outcome);
    collection_lines(&mut s, outcome);
    s
}

/// `dirsync sync --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncJson<'a> {
    pub reason: String,
    pub message: &'a str,
    pub users: crate::api::UserCounts,
    pub groups: u64,
    pub changes: crate::api::Changes,
    pub requests: usize,
    pub sync_hash: Option<&'a str>,
    pub warnings: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub pending_removals: &'a [crate::api::PendingRemoval],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<crate::api::MemberCounts>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub collections: &'a [crate::api::CollectionStatus],
}
