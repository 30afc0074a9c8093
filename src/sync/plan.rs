//! One sync's decision, as data: what to send, what it removes, whether it is unchanged, and
//! whether the guard holds it back.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};

use super::grace::{self, GraceInput};
use super::guard::{self, GuardInput};
use super::hash::sync_hash;
use super::prepare::Prepared;
use super::request;
use crate::Error;
use crate::api::{Changes, PendingRemoval, PlanSummary, SyncOptions};
use crate::bitwarden::types::member_type;
use crate::bitwarden::{ImportMember, ImportRequest, OrgGroup, OrgMember};

const SAMPLE: usize = 5;

#[derive(Clone, Copy)]
pub struct PlanInput<'a> {
    pub options: &'a SyncOptions,
    pub api_url: &'a str,
    pub organization_id: &'a str,
    /// Hash of the last successful sync; `None` after `sync-now` or without state.
    pub last_hash: Option<&'a str>,
    pub last_active_users: Option<u64>,
    /// The organization's members, when listed.
    pub members: Option<&'a [OrgMember]>,
    /// The organization's groups, when listed.
    pub groups: Option<&'a [OrgGroup]>,
    /// The plan hash a user allowed past the guard.
    pub guard_override: Option<&'a str>,
    /// `removalGracePeriod` and the pending removals of the last successful sync.
    pub grace: GraceInput<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the requests.
    Send,
    /// Same request as the last successful sync: send nothing.
    Unchanged,
    /// The directory returned nothing and `overwriteExisting` is off: send nothing.
    Empty,
    /// The guard holds the plan back; `Plan::guard` says why.
    GuardTripped,
}

#[derive(Clone, Debug)]
pub struct Plan<'a> {
    pub action: Action,
    /// Borrows from the prepared directory and the member listing.
    pub requests: Vec<ImportRequest<'a>>,
    hash: LazyHash<'a>,
    /// Members sent as active.
    pub active_members: u64,
    /// Removals the requests cause: exact when the members were listed, else an upper bound.
    pub removals: u64,
    pub removal_sample: Vec<String>,
    /// Removals that wait for `removalGracePeriod` (the guard counts them too).
    pub pending: Vec<PendingRemoval>,
    pub changes: Changes,
    /// Why the guard tripped, and whether an override let it pass.
    pub guard: Option<String>,
    pub overridden: bool,
}

/// The hash of a plan's requests, computed when first asked for: serialising every request is
/// a tenth of a large `dirsync test`, which prints no hash.
#[derive(Clone, Debug)]
struct LazyHash<'a> {
    api_url: &'a str,
    organization_id: &'a str,
    value: OnceCell<String>,
}

impl<'a> LazyHash<'a> {
    fn new(input: &PlanInput<'a>) -> Self {
        LazyHash {
            api_url: input.api_url,
            organization_id: input.organization_id,
            value: OnceCell::new(),
        }
    }

    fn get(&self, requests: &[ImportRequest]) -> &str {
        self.value
            .get_or_init(|| sync_hash(self.api_url, self.organization_id, requests))
    }
}

impl Plan<'_> {
    /// The plan hash (`sync-semantics.md` §3): what skip-unchanged compares and what
    /// `dirsync.dev/guard-override` names.
    pub fn hash(&self) -> &str {
        self.hash.get(&self.requests)
    }

    pub fn summary(&self, prepared: &Prepared) -> PlanSummary {
        let mut sample_members: Vec<String> = self
            .requests
            .iter()
            .flat_map(|r| r.members.iter().filter(|m| !m.deleted).map(|m| m.email.to_string()))
            .take(SAMPLE)
            .collect();
        sample_members.sort();
        PlanSummary {
            members: self.active_members,
            removals: self.removals,
            groups: prepared.groups.len() as u64,
            requests: self.requests.len() as u64,
            hash: self.hash().to_string(),
            sample_members,
            sample_removals: self.removal_sample.clone(),
            pending_removals: self.pending.len() as u64,
            sample_groups: prepared.groups.iter().take(SAMPLE).map(|g| g.name.clone()).collect(),
        }
    }
}

/// Members that left the directory scope (`removeOutOfScope`): they carry an external id, are not
/// an owner or admin, are not in this complete read, and share no email with an active user
/// (a person re-created in the directory keeps their membership). Sorted by external id.
pub fn out_of_scope<'a>(prepared: &Prepared, members: &'a [OrgMember], options: &SyncOptions) -> Vec<ImportMember<'a>> {
    if !options.remove_out_of_scope || !options.users || !prepared.complete {
        return Vec::new();
    }
    let ids: HashSet<&str> = prepared.users.iter().map(|u| u.external_id.as_str()).collect();
    let active_emails: HashSet<&str> = prepared
        .users
        .iter()
        .filter(|u| !Prepared::sends_as_deleted(u, options.remove_disabled))
        .filter_map(|u| u.email.as_deref())
        .collect();
    let mut gone: Vec<ImportMember> = members
        .iter()
        .filter(|m| m.type_ != member_type::OWNER && m.type_ != member_type::ADMIN)
        .filter_map(|m| {
            let ext = m.external_id.as_deref().filter(|e| !e.is_empty())?;
            let email = m.email.as_deref().unwrap_or_default();
            if ids.contains(ext) || active_emails.contains(email.to_lowercase().as_str()) {
                return None;
            }
            Some(ImportMember {
                email: Cow::Borrowed(email),
                external_id: Cow::Borrowed(ext),
                deleted: true,
            })
        })
        .collect();
    gone.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    gone
}

/// The requests a sync would send and their hash: the part of a plan that needs no reading of
/// the organization, except its member list for `removeOutOfScope`.
#[derive(Clone, Debug)]
pub struct Draft<'a> {
    pub requests: Vec<ImportRequest<'a>>,
    hash: LazyHash<'a>,
    /// Removals that wait for `removalGracePeriod`: the pending list to keep.
    pub pending: Vec<PendingRemoval>,
}

/// An empty read after a sync that had users is held back by the guard.
fn empty_read_trips(input: &PlanInput) -> bool {
    matches!(input.last_active_users, Some(n) if n > 0 && input.options.users)
}

/// `overwriteExisting` removes every synced member missing from the request. When the removals
/// can be neither counted (no member listing) nor compared with a baseline (no earlier
/// successful sync), nothing protects the organization: the sync is held back.
fn unguarded_overwrite(input: &PlanInput) -> Option<String> {
    (input.options.overwrite_existing && input.members.is_none() && input.last_active_users.is_none()).then(|| {
        "overwriteExisting removes every synced member missing from the request, and this sync can \
         check that against neither the organization (the server cannot list its members) nor an \
         earlier successful sync (none is recorded). Run once without overwriteExisting to record \
         a baseline and keep it (the status does in a cluster; the CLI needs --state), or use a \
         server that lists members (GET /public/members)"
            .to_string()
    })
}

fn is_empty(prepared: &Prepared, options: &SyncOptions) -> bool {
    prepared.users.is_empty() && prepared.groups.is_empty() && !options.overwrite_existing
}

/// Builds the requests and their hash. `input.members` is used only for `removeOutOfScope`.
pub fn draft<'a>(prepared: &'a Prepared, input: &PlanInput<'a>) -> Result<Draft<'a>, Error> {
    let gone = input
        .members
        .map(|m| out_of_scope(prepared, m, input.options))
        .unwrap_or_default();
    let (grace, due) = grace::decide(prepared, gone, input.options.remove_disabled, &input.grace);
    let requests = request::build(prepared, &due, &grace.held, input.options)?;
    Ok(Draft {
        requests,
        hash: LazyHash::new(input),
        pending: grace.pending,
    })
}

/// Drafts and assesses in one step.
pub fn plan<'a>(prepared: &'a Prepared, input: &PlanInput<'a>) -> Result<Plan<'a>, Error> {
    Ok(assess(prepared, draft(prepared, input)?, input))
}

/// Completes a draft into a plan: what it removes and changes (exact when the organization was
/// read), and whether it is sent, unchanged, empty or held back by the guard.
pub fn assess<'a>(prepared: &Prepared, draft: Draft<'a>, input: &PlanInput<'a>) -> Plan<'a> {
    let options = input.options;
    let Draft {
        requests,
        hash,
        pending,
    } = draft;
    let sent = || requests.iter().flat_map(|r| r.members.iter());
    let active_members = sent().filter(|m| !m.deleted).count() as u64;
    let (removals, removal_sample) = count_removals(&requests, input.members, options.overwrite_existing);
    let changes = changes(&requests, input.members, input.groups, removals);

    let mut plan = Plan {
        action: Action::Send,
        requests,
        hash,
        pending,
        active_members,
        removals,
        removal_sample,
        changes,
        guard: None,
        overridden: false,
    };

    let guard_input = GuardInput {
        removals,
        pending: plan.pending.len() as u64,
        current_members: input.members.map(|m| m.len() as u64),
        external_members: input.members.map(|m| {
            m.iter()
                .filter(|m| m.external_id.as_deref().is_some_and(|e| !e.is_empty()))
                .count() as u64
        }),
        active_users: active_members,
        last_active_users: input.last_active_users,
        can_remove: options.overwrite_existing || options.remove_out_of_scope,
        complete: prepared.complete,
    };

    if is_empty(prepared, options) {
        // Parity: an empty directory sends nothing. Beyond: if the last sync had users, an empty
        // complete read more likely means a broken filter than a company with nobody left, so
        // say so. An incremental read that returns nothing means that nothing changed.
        plan.action = if !prepared.complete {
            Action::Unchanged
        } else if empty_read_trips(input) {
            plan.guard = Some(guard::check(&options.guard, &guard_input).unwrap_or_else(|| {
                "the directory returned no users and no groups, though the last sync had users".to_string()
            }));
            Action::GuardTripped
        } else {
            Action::Empty
        };
        if plan.action == Action::GuardTripped && input.guard_override.is_some_and(|allowed| allowed == plan.hash()) {
            plan.overridden = true;
            plan.action = Action::Empty;
        }
        return plan;
    }
    let unchanged = input.last_hash.is_some_and(|last| last == plan.hash());
    // Unchanged requests are not sent again; the guard still looks at a pending list.
    if unchanged && plan.pending.is_empty() {
        plan.action = Action::Unchanged;
        return plan;
    }
    let why = guard::check(&options.guard, &guard_input).or_else(|| unguarded_overwrite(input).filter(|_| !unchanged));
    if unchanged {
        plan.action = Action::Unchanged;
    }
    if let Some(why) = why {
        plan.guard = Some(why);
        if input.guard_override.is_some_and(|allowed| allowed == plan.hash()) {
            plan.overridden = true;
        } else {
            plan.action = Action::GuardTripped;
        }
    }
    plan
}

/// Members the server removes: deleted entries that match a member who is not an owner, plus,
/// with `overwriteExisting`, every non-owner member with an external id missing from the request
/// (those sorted by email).
pub fn removed_members<'m>(
    requests: &[ImportRequest],
    members: &'m [OrgMember],
    overwrite: bool,
) -> Vec<&'m OrgMember> {
    let sent = || requests.iter().flat_map(|r| r.members.iter());
    let by_ext: HashMap<&str, &OrgMember> = members
        .iter()
        .filter_map(|m| m.external_id.as_deref().filter(|e| !e.is_empty()).map(|e| (e, m)))
        .collect();
    let mut removed: Vec<&OrgMember> = sent()
        .filter(|m| m.deleted)
        .filter_map(|m| by_ext.get(m.external_id.as_ref()).copied())
        .filter(|m| m.type_ != member_type::OWNER)
        .collect();
    if overwrite {
        let in_request: HashSet<&str> = sent().map(|m| m.external_id.as_ref()).collect();
        let mut missing: Vec<&OrgMember> = by_ext
            .iter()
            .filter(|(ext, m)| !in_request.contains(*ext) && m.type_ != member_type::OWNER)
            .map(|(_, m)| *m)
            .collect();
        missing.sort_by_key(|m| m.email.clone());
        removed.extend(missing);
    }
    removed
}

/// Active members of the requests that the organization does not have yet (by external id or
/// email): the server invites them.
pub fn invited<'r, 'a>(requests: &'r [ImportRequest<'a>], members: &[OrgMember]) -> Vec<&'r ImportMember<'a>> {
    let exts: HashSet<&str> = members.iter().filter_map(|m| m.external_id.as_deref()).collect();
    let emails: HashSet<String> = members
        .iter()
        .filter_map(|m| m.email.as_deref())
        .map(str::to_lowercase)
        .collect();
    requests
        .iter()
        .flat_map(|r| r.members.iter())
        .filter(|m| !m.deleted && !exts.contains(m.external_id.as_ref()) && !emails.contains(m.email.as_ref()))
        .collect()
}

/// How many members the requests remove, and a few of their emails. Without a listing, every
/// deleted entry counts (an upper bound).
fn count_removals(requests: &[ImportRequest], members: Option<&[OrgMember]>, overwrite: bool) -> (u64, Vec<String>) {
    let emails: Vec<&str> = match members {
        None => requests
            .iter()
            .flat_map(|r| r.members.iter())
            .filter(|m| m.deleted)
            .map(|m| m.email.as_ref())
            .collect(),
        Some(members) => removed_members(requests, members, overwrite)
            .into_iter()
            .map(|m| m.email.as_deref().unwrap_or_default())
            .collect(),
    };
    let sample = emails.iter().take(SAMPLE).map(|e| e.to_string()).collect();
    (emails.len() as u64, sample)
}

/// What the requests carry, and what they change where the organization was read. Removals are
/// known only with the member listing (`removed` is its exact count then).
fn changes(
    requests: &[ImportRequest],
    members: Option<&[OrgMember]>,
    groups: Option<&[OrgGroup]>,
    removed: u64,
) -> Changes {
    let sent_members = || requests.iter().flat_map(|r| r.members.iter());
    let invited = members.map(|members| invited(requests, members).len() as u64);
    let sent_groups = || requests.iter().flat_map(|r| r.groups.iter());
    let created = groups.map(|existing| {
        let exts: HashSet<&str> = existing.iter().filter_map(|g| g.external_id.as_deref()).collect();
        sent_groups().filter(|g| !exts.contains(g.external_id.as_ref())).count() as u64
    });
    let groups_sent = sent_groups().count() as u64;
    Changes {
        members_sent: sent_members().filter(|m| !m.deleted).count() as u64,
        removals_sent: sent_members().filter(|m| m.deleted).count() as u64,
        groups_sent,
        invited,
        removed: members.map(|_| removed),
        groups_created: created,
        groups_updated: created.map(|c| groups_sent - c),
        collections_updated: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::model::User;
    use crate::sync::prepare::FlatGroup;

    fn user(id: &str, email: &str) -> User {
        User {
            external_id: id.into(),
            email: Some(email.into()),
            disabled: false,
            deleted: false,
        }
    }

    fn member(ext: Option<&str>, email: &str, type_: i32) -> OrgMember {
        OrgMember {
            id: email.into(),
            email: Some(email.into()),
            external_id: ext.map(str::to_string),
            type_,
            status: 2,
        }
    }

    fn prepared(n: usize) -> Prepared {
        Prepared {
            users: (0..n)
                .map(|i| user(&format!("u{i:03}"), &format!("u{i}@x.com")))
                .collect(),
            member_ids: vec!["u000".into()],
            groups: vec![FlatGroup {
                external_id: "g".into(),
                name: "G".into(),
                members: vec![0],
            }],
            complete: true,
            ..Default::default()
        }
    }

    fn input<'a>(options: &'a SyncOptions) -> PlanInput<'a> {
        PlanInput {
            options,
            api_url: "https://api.bitwarden.com",
            organization_id: "org",
            last_hash: None,
            last_active_users: None,
            members: None,
            groups: None,
            guard_override: None,
            grace: GraceInput {
                period: None,
                now: jiff::Timestamp::UNIX_EPOCH,
                pending: &[],
            },
        }
    }

    #[test]
    fn a_new_plan_is_sent_and_the_same_plan_again_is_unchanged() {
        let options = SyncOptions::default();
        let p = prepared(3);
        let first = plan(&p, &input(&options)).unwrap();
        assert_eq!(first.action, Action::Send);
        assert_eq!(first.active_members, 3);
        let again = plan(
            &p,
            &PlanInput {
                last_hash: Some(first.hash()),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(again.action, Action::Unchanged);
        assert_eq!(again.hash(), first.hash());
    }

    #[test]
    fn an_empty_directory_sends_nothing_without_overwrite_existing() {
        let options = SyncOptions::default();
        let empty = Prepared {
            complete: true,
            ..Default::default()
        };
        assert_eq!(plan(&empty, &input(&options)).unwrap().action, Action::Empty);
        // After a sync that had users, an empty read is held back and explained.
        let after = plan(
            &empty,
            &PlanInput {
                last_active_users: Some(40),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(after.action, Action::GuardTripped);
        assert!(after.guard.unwrap().contains("no active users"));
    }

    #[test]
    fn an_empty_directory_with_overwrite_existing_is_a_removal_of_everyone_and_trips() {
        let options = SyncOptions {
            overwrite_existing: true,
            ..Default::default()
        };
        let empty = Prepared {
            complete: true,
            ..Default::default()
        };
        let members: Vec<OrgMember> = (0..3)
            .map(|i| member(Some(&format!("u{i}")), &format!("u{i}@x.com"), 2))
            .collect();
        let p = plan(
            &empty,
            &PlanInput {
                members: Some(&members),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(p.action, Action::GuardTripped);
        assert_eq!(p.removals, 3);
        let req = &p.requests[0];
        assert!(req.members.is_empty() && req.groups.is_empty() && req.overwrite_existing);
        // The override for exactly this plan lets it through.
        let p2 = plan(
            &empty,
            &PlanInput {
                members: Some(&members),
                guard_override: Some(p.hash()),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(p2.action, Action::Send);
        assert!(p2.overridden);
        // An override for another plan does not.
        let p3 = plan(
            &empty,
            &PlanInput {
                members: Some(&members),
                guard_override: Some("abc"),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(p3.action, Action::GuardTripped);
    }

    #[test]
    fn out_of_scope_members_are_removed_except_owners_admins_manual_and_relinked() {
        let options = SyncOptions {
            remove_out_of_scope: true,
            ..Default::default()
        };
        let p = prepared(100);
        let members = vec![
            member(Some("u000"), "u0@x.com", 2),      // still in the directory
            member(Some("left-1"), "left1@x.com", 2), // left: removed
            member(Some("left-2"), "left2@x.com", 3), // manager, left: removed
            member(Some("owner"), "owner@x.com", 0),  // owner: never
            member(Some("admin"), "admin@x.com", 1),  // admin: never
            member(None, "manual@x.com", 2),          // added by hand: never
            member(Some(""), "blank@x.com", 2),       // empty external id: never
            member(Some("old-id"), "U5@x.com", 2),    // re-created under a new id: kept
        ];
        let plan = plan(
            &p,
            &PlanInput {
                members: Some(&members),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(plan.action, Action::Send);
        let removed: Vec<(&str, bool)> = plan.requests[0]
            .members
            .iter()
            .filter(|m| m.deleted)
            .map(|m| (m.external_id.as_ref(), m.deleted))
            .collect();
        assert_eq!(removed, vec![("left-1", true), ("left-2", true)]);
        assert_eq!(plan.removals, 2);
        assert_eq!(plan.changes.invited, Some(99 - 1), "u0 exists; u5 matches by email");
    }

    #[test]
    fn out_of_scope_needs_a_complete_read_with_users() {
        let options = SyncOptions {
            remove_out_of_scope: true,
            ..Default::default()
        };
        let members = vec![member(Some("left"), "left@x.com", 2)];
        let mut p = prepared(3);
        p.complete = false;
        assert!(out_of_scope(&p, &members, &options).is_empty());
        p.complete = true;
        assert_eq!(out_of_scope(&p, &members, &options).len(), 1);
        let no_users = SyncOptions {
            users: false,
            ..options.clone()
        };
        assert!(out_of_scope(&p, &members, &no_users).is_empty());
        let off = SyncOptions::default();
        assert!(out_of_scope(&p, &members, &off).is_empty());
    }

    #[test]
    fn many_out_of_scope_removals_trip_the_guard_with_the_plan_hash() {
        let options = SyncOptions {
            remove_out_of_scope: true,
            ..Default::default()
        };
        let p = prepared(100);
        let mut members: Vec<OrgMember> = (0..100)
            .map(|i| member(Some(&format!("u{i:03}")), &format!("u{i}@x.com"), 2))
            .collect();
        members.extend((0..20).map(|i| member(Some(&format!("gone{i}")), &format!("gone{i}@x.com"), 2)));
        let plan = plan(
            &p,
            &PlanInput {
                members: Some(&members),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(plan.action, Action::GuardTripped);
        assert_eq!(plan.removals, 20);
        assert!(plan.guard.as_ref().unwrap().contains("remove 20 members (16% of 120)"));
        assert_eq!(plan.removal_sample.len(), 5);
    }

    #[test]
    fn deleted_users_count_as_removals_only_if_they_are_members_who_are_not_owners() {
        let options = SyncOptions::default();
        let mut p = prepared(3);
        for u in &mut p.users {
            u.deleted = true;
        }
        // No listing: an upper bound.
        assert_eq!(plan(&p, &input(&options)).unwrap().removals, 3);
        let members = vec![member(Some("u000"), "u0@x.com", 2), member(Some("u001"), "u1@x.com", 0)];
        let plan = plan(
            &p,
            &PlanInput {
                members: Some(&members),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(plan.removals, 1);
        assert_eq!(plan.removal_sample, vec!["u0@x.com"]);
    }

    #[test]
    fn overwrite_existing_counts_every_external_member_missing_from_the_request() {
        let options = SyncOptions {
            overwrite_existing: true,
            ..Default::default()
        };
        let p = prepared(2);
        let members = vec![
            member(Some("u000"), "u0@x.com", 2),
            member(Some("x1"), "x1@x.com", 2),
            member(Some("x2"), "x2@x.com", 1), // admins are not protected by the server
            member(Some("x3"), "x3@x.com", 0), // owners are
            member(None, "manual@x.com", 2),
        ];
        let plan = plan(
            &p,
            &PlanInput {
                members: Some(&members),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(plan.removals, 2);
        assert_eq!(plan.removal_sample, vec!["x1@x.com", "x2@x.com"]);
    }

    #[test]
    fn group_changes_are_split_into_created_and_updated_when_groups_are_listed() {
        let options = SyncOptions::default();
        let mut p = prepared(1);
        for ext in ["h", "i"] {
            p.groups.push(FlatGroup {
                external_id: ext.into(),
                name: ext.to_uppercase(),
                members: vec![],
            });
        }
        let existing = vec![OrgGroup {
            id: "1".into(),
            name: "G".into(),
            external_id: Some("g".into()),
        }];
        let plan = plan(
            &p,
            &PlanInput {
                groups: Some(&existing),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(
            (plan.changes.groups_created, plan.changes.groups_updated),
            (Some(2), Some(1))
        );
        let unknown = super::plan(&p, &input(&options)).unwrap();
        // Without the group listing, what is created is unknown: never a guess.
        assert_eq!(
            (unknown.changes.groups_created, unknown.changes.groups_updated),
            (None, None)
        );
        assert_eq!(unknown.changes.groups_sent, 3);
        assert_eq!(unknown.changes.invited, None);
        assert_eq!(unknown.changes.removed, None);
    }

    #[test]
    fn members_sent_and_removals_sent_are_counted_apart() {
        let options = SyncOptions::default();
        let mut p = prepared(3);
        p.users[2].deleted = true;
        let plan = plan(&p, &input(&options)).unwrap();
        assert_eq!((plan.changes.members_sent, plan.changes.removals_sent), (2, 1));
    }

    #[test]
    fn the_summary_shows_counts_and_a_short_sample() {
        let options = SyncOptions::default();
        let p = prepared(50);
        let plan = plan(&p, &input(&options)).unwrap();
        let s = plan.summary(&p);
        assert_eq!((s.members, s.removals, s.groups, s.requests), (50, 0, 1, 1));
        assert_eq!(s.sample_members.len(), 5);
        assert_eq!(s.sample_groups, vec!["G"]);
        assert_eq!(s.hash, plan.hash());
    }

    fn empty(complete: bool) -> Prepared {
        Prepared {
            complete,
            ..Default::default()
        }
    }

    #[test]
    fn an_incremental_read_that_returns_nothing_means_nothing_changed() {
        let options = SyncOptions::default();
        let after = PlanInput {
            last_active_users: Some(40),
            last_hash: Some("h"),
            ..input(&options)
        };
        let incremental = empty(false);
        let p = plan(&incremental, &after).unwrap();
        assert_eq!(p.action, Action::Unchanged);
        assert_eq!(p.guard, None);
        // A complete read that returns nothing after a sync with users trips, with a reason.
        let complete = empty(true);
        let p = plan(&complete, &after).unwrap();
        assert_eq!(p.action, Action::GuardTripped);
        assert!(!p.guard.unwrap().is_empty());
    }

    #[test]
    fn an_empty_read_trips_only_after_a_sync_that_had_users_and_only_when_users_are_synced() {
        let options = SyncOptions::default();
        let after_none = PlanInput {
            last_active_users: Some(0),
            ..input(&options)
        };
        let nothing = empty(true);
        assert_eq!(plan(&nothing, &after_none).unwrap().action, Action::Empty);
        let groups_only = SyncOptions {
            users: false,
            ..Default::default()
        };
        let p = plan(
            &nothing,
            &PlanInput {
                last_active_users: Some(40),
                ..input(&groups_only)
            },
        )
        .unwrap();
        assert_eq!(p.action, Action::Empty);
    }

    #[test]
    fn the_override_lets_an_empty_read_pass_as_empty() {
        let options = SyncOptions::default();
        let after = PlanInput {
            last_active_users: Some(40),
            ..input(&options)
        };
        let nothing = empty(true);
        let tripped = plan(&nothing, &after).unwrap();
        assert_eq!(tripped.action, Action::GuardTripped);
        let p = plan(
            &nothing,
            &PlanInput {
                guard_override: Some(tripped.hash()),
                ..after
            },
        )
        .unwrap();
        assert_eq!((p.action, p.overridden), (Action::Empty, true));
    }

    #[test]
    fn overwrite_existing_without_a_member_listing_or_a_baseline_is_held_back() {
        let options = SyncOptions {
            overwrite_existing: true,
            ..Default::default()
        };
        let p = prepared(10);
        let unguarded = plan(&p, &input(&options)).unwrap();
        assert_eq!(unguarded.action, Action::GuardTripped);
        assert!(
            unguarded.guard.as_ref().unwrap().contains("--state"),
            "{:?}",
            unguarded.guard
        );
        // A baseline protects it: a small shrink passes, a large one trips.
        let with = |last: u64| {
            plan(
                &p,
                &PlanInput {
                    last_active_users: Some(last),
                    ..input(&options)
                },
            )
            .unwrap()
            .action
        };
        assert_eq!(with(10), Action::Send);
        assert_eq!(with(100), Action::GuardTripped);
        // So does a member listing.
        let members: Vec<OrgMember> = (0..10)
            .map(|i| member(Some(&format!("u{i:03}")), &format!("u{i}@x.com"), 2))
            .collect();
        let listed = plan(
            &p,
            &PlanInput {
                members: Some(&members),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(listed.action, Action::Send);
    }

    #[test]
    fn either_removal_option_alone_arms_the_shrink_guard() {
        let p = prepared(10);
        for options in [
            SyncOptions {
                overwrite_existing: true,
                ..Default::default()
            },
            SyncOptions {
                remove_out_of_scope: true,
                ..Default::default()
            },
        ] {
            let members: Vec<OrgMember> = (0..10)
                .map(|i| member(Some(&format!("u{i:03}")), &format!("u{i}@x.com"), 2))
                .collect();
            let shrunk = plan(
                &p,
                &PlanInput {
                    last_active_users: Some(100),
                    members: Some(&members),
                    ..input(&options)
                },
            )
            .unwrap();
            assert_eq!(shrunk.action, Action::GuardTripped, "{options:?}");
            assert!(shrunk.guard.unwrap().contains("90 fewer active users"));
        }
        // Neither: a shrinking directory removes nobody, so it is sent.
        let options = SyncOptions::default();
        let p2 = plan(
            &p,
            &PlanInput {
                last_active_users: Some(100),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(p2.action, Action::Send);
    }

    #[test]
    fn members_added_by_hand_do_not_count_as_synced_members() {
        // Every directory user is deleted: no active users, a complete read. The organization
        // has only members added by hand, so there was nothing synced to lose: no trip.
        let options = SyncOptions::default();
        let mut p = prepared(3);
        for u in &mut p.users {
            u.deleted = true;
        }
        let members = vec![member(None, "a@x.com", 2), member(Some(""), "b@x.com", 2)];
        let out = plan(
            &p,
            &PlanInput {
                members: Some(&members),
                ..input(&options)
            },
        )
        .unwrap();
        assert_eq!(out.action, Action::Send, "{:?}", out.guard);
    }
}
