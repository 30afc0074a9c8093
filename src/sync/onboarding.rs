//! How far the people this DirectorySync syncs got in joining the organization: invited,
//! accepted (waiting for an admin to confirm them), confirmed, revoked, staged. A pure function of
//! the member list read before the import and of what the import did.
//!
//! The members counted are those whose external id is among this read's users (after a complete
//! read), members without an external id that the import links by email, and the members it
//! invites (Invited, or Staged without invitations). Members it removes are gone. After an
//! incremental read, which does not name everyone, the last complete counts are carried forward
//! with this import's invitations and removals.

use std::collections::HashSet;

use crate::api::MemberCounts;
use crate::bitwarden::OrgMember;
use crate::bitwarden::types::member_status;
use crate::sync::plan::{self, Plan};
use crate::sync::prepare::Prepared;

/// What the counts are made from.
#[derive(Clone, Copy)]
pub struct OnboardingInput<'a> {
    /// The member list, read once before the import.
    pub members: &'a [OrgMember],
    pub prepared: &'a Prepared,
    pub plan: &'a Plan<'a>,
    /// The plan's requests were sent (else nothing changed).
    pub sent: bool,
    /// `spec.sync.inviteUsers`: new members are Invited, else Staged.
    pub invite_users: bool,
    pub overwrite_existing: bool,
    /// The counts of the last sync, carried forward after an incremental read.
    pub last: Option<MemberCounts>,
}

/// The onboarding counts, or `None` when they cannot be known (an incremental read with no
/// earlier counts).
pub fn count(i: &OnboardingInput) -> Option<MemberCounts> {
    let removed: Vec<&OrgMember> = if i.sent {
        plan::removed_members(&i.plan.requests, i.members, i.overwrite_existing)
    } else {
        Vec::new()
    };
    let invited = if i.sent {
        plan::invited(&i.plan.requests, i.members).len() as u64
    } else {
        0
    };
    let mut counts = if i.prepared.complete {
        let removed_ids: HashSet<&str> = removed.iter().map(|m| m.id.as_str()).collect();
        let ours: HashSet<&str> = i.prepared.users.iter().map(|u| u.external_id.as_str()).collect();
        // The import gives members without an external id the one of the active member with
        // their email.
        let linked: HashSet<String> = if i.sent {
            i.plan
                .requests
                .iter()
                .flat_map(|r| r.members.iter())
                .filter(|m| !m.deleted)
                .map(|m| m.email.to_lowercase())
                .collect()
        } else {
            HashSet::new()
        };
        let mut c = MemberCounts::default();
        for m in i.members.iter().filter(|m| !removed_ids.contains(m.id.as_str())) {
            let counted = match m.external_id.as_deref().filter(|e| !e.is_empty()) {
                Some(ext) => ours.contains(ext),
                None => m.email.as_deref().is_some_and(|e| linked.contains(&e.to_lowercase())),
            };
            if counted {
                add(&mut c, m.status, 1);
            }
        }
        c
    } else {
        let mut c = i.last?;
        for m in &removed {
            remove(&mut c, m.status);
        }
        c
    };
    let status = if i.invite_users {
        member_status::INVITED
    } else {
        member_status::STAGED
    };
    add(&mut counts, status, invited);
    Some(counts)
}

fn slot(c: &mut MemberCounts, status: i32) -> Option<&mut u64> {
    match status {
        member_status::INVITED => Some(&mut c.invited),
        member_status::ACCEPTED => Some(&mut c.accepted),
        member_status::CONFIRMED => Some(&mut c.confirmed),
        member_status::REVOKED => Some(&mut c.revoked),
        member_status::STAGED => Some(&mut c.staged),
        _ => None,
    }
}

fn add(c: &mut MemberCounts, status: i32, n: u64) {
    if let Some(v) = slot(c, status) {
        *v += n;
    }
}

fn remove(c: &mut MemberCounts, status: i32) {
    if let Some(v) = slot(c, status) {
        *v = v.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SyncOptions;
    use crate::sync::grace::GraceInput;
    use crate::sync::model::User;
    use crate::sync::plan::PlanInput;

    fn user(id: &str, email: &str, deleted: bool) -> User {
        User {
            external_id: id.into(),
            email: Some(email.into()),
            disabled: false,
            deleted,
        }
    }

    fn member(ext: Option<&str>, email: &str, type_: i32, status: i32) -> OrgMember {
        OrgMember {
            id: format!("id-{email}"),
            email: Some(email.into()),
            external_id: ext.map(str::to_string),
            type_,
            status,
        }
    }

    fn input(options: &SyncOptions) -> PlanInput<'_> {
        PlanInput {
            options,
            api_url: "https://api",
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

    /// The organization before the import, and the directory.
    fn org() -> (Vec<OrgMember>, Prepared) {
        let members = vec![
            member(Some("u1"), "a@x.com", 2, member_status::INVITED),
            member(Some("u2"), "b@x.com", 2, member_status::ACCEPTED),
            member(Some("u3"), "c@x.com", 2, member_status::CONFIRMED),
            member(Some("u4"), "d@x.com", 2, member_status::REVOKED),
            member(Some("u5"), "e@x.com", 0, member_status::CONFIRMED), // an owner we sync: counted
            member(None, "f@x.com", 2, member_status::ACCEPTED),        // added by hand, linked by email
            member(None, "manual@x.com", 2, member_status::ACCEPTED),   // added by hand: not ours
            member(Some("other"), "o@x.com", 2, member_status::ACCEPTED), // not in the directory
            member(Some("gone"), "g@x.com", 2, member_status::CONFIRMED), // deleted in the directory
        ];
        let prepared = Prepared {
            users: vec![
                user("gone", "g@x.com", true),
                user("u1", "a@x.com", false),
                user("u2", "b@x.com", false),
                user("u3", "c@x.com", false),
                user("u4", "d@x.com", false),
                user("u5", "e@x.com", false),
                user("u6", "f@x.com", false),
                user("u7", "new@x.com", false),
            ],
            complete: true,
            ..Default::default()
        };
        (members, prepared)
    }

    #[test]
    fn counts_the_synced_members_by_status_with_what_the_import_did() {
        let (members, prepared) = org();
        for (invite_users, sent, want) in [
            // u7 invited, `gone` removed, f@x.com linked by email (accepted).
            (true, true, (2, 2, 2, 1, 0)),
            (false, true, (1, 2, 2, 1, 1)),
            // Nothing sent: the organization as it is (f@x.com not linked yet, `gone` still there).
            (true, false, (1, 1, 3, 1, 0)),
        ] {
            let options = SyncOptions {
                invite_users,
                ..Default::default()
            };
            let listed = PlanInput {
                members: Some(&members),
                ..input(&options)
            };
            let plan = plan::plan(&prepared, &listed).unwrap();
            let c = count(&OnboardingInput {
                members: &members,
                prepared: &prepared,
                plan: &plan,
                sent,
                invite_users,
                overwrite_existing: false,
                last: None,
            })
            .unwrap();
            assert_eq!(
                (c.invited, c.accepted, c.confirmed, c.revoked, c.staged),
                want,
                "invite_users {invite_users}, sent {sent}"
            );
        }
    }

    #[test]
    fn an_incremental_read_carries_the_last_counts_forward() {
        let (members, mut prepared) = org();
        prepared.complete = false;
        prepared.users = vec![user("gone", "g@x.com", true), user("u8", "h@x.com", false)];
        let options = SyncOptions::default();
        let listed = PlanInput {
            members: Some(&members),
            ..input(&options)
        };
        let plan = plan::plan(&prepared, &listed).unwrap();
        let last = MemberCounts {
            invited: 1,
            accepted: 1,
            confirmed: 3,
            revoked: 1,
            staged: 0,
        };
        let i = OnboardingInput {
            members: &members,
            prepared: &prepared,
            plan: &plan,
            sent: true,
            invite_users: true,
            overwrite_existing: false,
            last: Some(last),
        };
        let c = count(&i).unwrap();
        assert_eq!(
            (c.invited, c.confirmed),
            (2, 2),
            "h@x.com invited, `gone` (confirmed) removed"
        );
        assert_eq!(
            count(&OnboardingInput { last: None, ..i }),
            None,
            "unknown without earlier counts"
        );
    }
}
