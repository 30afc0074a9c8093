//! What a sync did, built in one place from the plan and what was sent.

use crate::api::{Changes, CollectionStatus, MemberCounts, PendingRemoval, PlanSummary, Reason, UserCounts};
use crate::bitwarden::ImportRequest;
use crate::sync::plan::{Action, Plan};
use crate::sync::prepare::{LeftOut, Prepared};

use super::SyncState;
use super::access::Report;

#[derive(Clone, Debug)]
pub struct Outcome {
    /// `Synced`, `Unchanged`, `DryRun` or `Suspended`.
    pub reason: Reason,
    /// One line for the condition message.
    pub message: String,
    pub users: UserCounts,
    pub groups: u64,
    pub left_out: LeftOut,
    pub changes: Changes,
    /// Always computed; the status shows it in DryRun.
    pub plan: Option<PlanSummary>,
    /// Removals waiting for `removalGracePeriod` (this sync's view; the state keeps it after an
    /// applied sync).
    pub pending_removals: Vec<PendingRemoval>,
    /// The requests that were sent, in order (empty unless `Synced`).
    pub sent: Vec<SentRequest>,
    /// The users and groups of this sync (what `dirsync test` prints).
    pub prepared: Prepared,
    /// The state to keep for the next sync.
    pub state: SyncState,
    pub warnings: Vec<String>,
    /// The guard tripped but the override let this plan through.
    pub guard_overridden: bool,
    /// Where requests go (empty when suspended).
    pub api_url: String,
    /// The read was complete. After an incremental read `users` and `groups` count only what
    /// changed: keep the last complete counts for display.
    pub complete: bool,
    /// Onboarding of the synced members (official server; not in `dirsync test`).
    pub members: Option<MemberCounts>,
    /// What `spec.collections` did (or would do), one entry per collection.
    pub collections: Vec<CollectionStatus>,
}

/// What one import request carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SentRequest {
    pub members: usize,
    pub removals: usize,
    pub groups: usize,
    pub overwrite_existing: bool,
    pub large_import: bool,
}

impl SentRequest {
    pub fn of(request: &ImportRequest) -> SentRequest {
        SentRequest {
            members: request.members.len(),
            removals: request.members.iter().filter(|m| m.deleted).count(),
            groups: request.groups.len(),
            overwrite_existing: request.overwrite_existing,
            large_import: request.large_import,
        }
    }
}

/// The facts an outcome is built from.
pub struct Facts<'a> {
    pub prepared: &'a Prepared,
    pub plan: &'a Plan<'a>,
    /// The reason: `Synced`, `Unchanged` or `DryRun`.
    pub reason: Reason,
    /// The requests were sent (else nothing was).
    pub sent: bool,
    /// `spec.sync.overwriteExisting`.
    pub overwrite_existing: bool,
    pub state: SyncState,
    pub warnings: Vec<String>,
    pub api_url: &'a str,
    pub access: Report,
    pub members: Option<MemberCounts>,
    /// Build the plan summary (off when the caller prints only the directory).
    pub plan_summary: bool,
}

impl Outcome {
    /// The outcome of a planned sync. `prepared` is left empty: the caller moves the prepared
    /// directory in once the plan (which borrows it) is gone.
    pub fn new(f: Facts) -> Outcome {
        let plan = f.plan;
        // The summary shows the hash, which serialises every request: skipped when the caller
        // prints only the directory.
        let summary = f.plan_summary.then(|| plan.summary(f.prepared));
        let users = count_users(f.prepared);
        let groups = f.prepared.groups.len() as u64;
        let complete = f.prepared.complete;
        let counts = if complete {
            format!("{} users, {groups} groups", users.enabled)
        } else {
            format!("incremental read: {} changed users, {groups} groups", users.enabled)
        };
        let message = match f.reason {
            Reason::DryRun => format!(
                "{counts}; a sync would send {} active members, {} removals and {} groups in {} request(s){}",
                plan.active_members,
                plan.removals,
                groups,
                plan.requests.len(),
                match plan.action {
                    Action::Unchanged => " (unchanged since the last sync: nothing would be sent)",
                    Action::Empty => " (the directory is empty: nothing would be sent)",
                    _ => "",
                }
            ),
            _ => match plan.action {
                Action::Unchanged if f.access.written > 0 => {
                    format!("{counts}; the import is unchanged since the last sync")
                }
                Action::Unchanged => format!("{counts}; nothing changed since the last sync"),
                Action::Empty => "the directory returned no users and no groups; nothing was sent".to_string(),
                Action::Send | Action::GuardTripped => {
                    let c = &plan.changes;
                    let mut m = match (c.invited, c.removed) {
                        (Some(i), Some(r)) => format!("{counts}; {i} invited, {r} removed"),
                        _ => format!(
                            "{counts}; {} members and {} removals sent; who was invited or removed is unknown \
                             (the server cannot list its members){}",
                            c.members_sent,
                            c.removals_sent,
                            if f.overwrite_existing {
                                ", and overwriteExisting removed every synced member missing from the request"
                            } else {
                                ""
                            }
                        ),
                    };
                    if plan.overridden {
                        m.push_str(" (guard overridden)");
                    }
                    m
                }
            },
        };
        let message = match f.access.summary() {
            Some(access) => format!("{message}; {access}"),
            None => message,
        };
        let mut changes = if f.sent { plan.changes } else { Changes::default() };
        changes.collections_updated = f.access.written;
        let mut warnings = f.warnings;
        warnings.extend(f.access.warnings);
        Outcome {
            reason: f.reason,
            message,
            users,
            groups,
            left_out: f.prepared.left_out,
            changes,
            plan: summary,
            pending_removals: plan.pending.clone(),
            sent: if f.sent {
                plan.requests.iter().map(SentRequest::of).collect()
            } else {
                Vec::new()
            },
            state: f.state,
            warnings,
            guard_overridden: plan.overridden,
            api_url: f.api_url.to_string(),
            complete,
            prepared: Prepared::default(),
            members: f.members,
            collections: f.access.collections,
        }
    }

    pub fn suspended(state: &SyncState) -> Outcome {
        Outcome {
            reason: Reason::Suspended,
            message: "spec.suspend is true: no syncs run".to_string(),
            users: UserCounts::default(),
            groups: 0,
            left_out: LeftOut::default(),
            changes: Changes::default(),
            plan: None,
            pending_removals: Vec::new(),
            sent: Vec::new(),
            prepared: Prepared::default(),
            state: state.clone(),
            warnings: Vec::new(),
            guard_overridden: false,
            api_url: String::new(),
            complete: false,
            members: state.members,
            collections: state.collections.clone(),
        }
    }

    /// The note of a `Synced` event: what changed.
    pub fn change_note(&self) -> String {
        if self.sent.is_empty() {
            format!("access updated in {} collections", self.changes.collections_updated)
        } else {
            self.changes.describe()
        }
    }
}

fn count_users(prepared: &Prepared) -> UserCounts {
    let mut c = UserCounts::default();
    for u in &prepared.users {
        if u.deleted {
            c.deleted += 1;
        } else if u.disabled {
            c.disabled += 1;
        } else {
            c.enabled += 1;
        }
    }
    c
}
