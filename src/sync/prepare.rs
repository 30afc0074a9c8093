//! From what a source read to what a sync would send: scope rules, unsupported users, nested
//! groups, duplicates (`sync-semantics.md` §1). The result is also what `dirsync test` prints.

use std::collections::BTreeMap;

use hashbrown::{HashMap, HashSet};

use super::flatten::flatten;
use super::model::{Directory, User};
use crate::Error;

/// Emails longer than this are refused by Bitwarden.
pub const MAX_EMAIL_LEN: usize = 256;

#[derive(Clone, Copy, Debug, Default)]
pub struct PrepareOptions {
    pub users: bool,
    pub groups: bool,
    pub remove_disabled: bool,
}

/// A group with its flattened members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlatGroup {
    pub external_id: String,
    pub name: String,
    /// Every user in the group or a descendant group, as ascending positions in
    /// [`Prepared::member_ids`] (so in external-id order).
    pub members: Vec<u32>,
}

/// Users the sync leaves out, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub without_email: u64,
    pub email_too_long: u64,
    pub in_no_synced_group: u64,
    /// Exact repeats, and removal entries that share an email with an active user.
    pub duplicates: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Prepared {
    /// Users to send, sorted by external id.
    pub users: Vec<User>,
    /// Groups to send, sorted by external id.
    pub groups: Vec<FlatGroup>,
    /// The external ids of every user that is a member of some group, sorted: the table that
    /// [`FlatGroup::members`] points into (one string per user, not one per membership).
    pub member_ids: Vec<String>,
    pub left_out: LeftOut,
    /// The read returned every entry (not an incremental read).
    pub complete: bool,
}

impl Prepared {
    /// A group's flattened member external ids, sorted.
    pub fn members_of<'a>(&'a self, group: &'a FlatGroup) -> impl Iterator<Item = &'a str> + 'a {
        group.members.iter().map(|&p| self.member_ids[p as usize].as_str())
    }

    /// Whether Bitwarden would see this user as an active (not removed) member.
    pub fn sends_as_deleted(user: &User, remove_disabled: bool) -> bool {
        user.deleted || (remove_disabled && user.disabled)
    }
}

pub fn prepare(directory: Directory, options: PrepareOptions) -> Result<Prepared, Error> {
    let Directory {
        users,
        groups,
        complete,
        restrict_users_to_groups,
    } = directory;
    let mut left_out = LeftOut::default();
    let mut users = if options.users { users } else { Vec::new() };
    let mut groups = if options.groups { groups } else { Vec::new() };

    // Users in no synced group are left out when a group list filter narrows the groups
    // (deleted users, and disabled ones that will be removed, are kept so removals still happen).
    if options.groups && restrict_users_to_groups {
        let in_a_group: HashSet<&str> = groups
            .iter()
            .flat_map(|g| g.members.iter().map(String::as_str))
            .collect();
        let before = users.len();
        users.retain(|u| {
            Prepared::sends_as_deleted(u, options.remove_disabled) || in_a_group.contains(u.external_id.as_str())
        });
        left_out.in_no_synced_group = (before - users.len()) as u64;
    }

    users.retain(|u| match &u.email {
        None => {
            left_out.without_email += 1;
            false
        }
        Some(e) if e.is_empty() => {
            left_out.without_email += 1;
            false
        }
        Some(e) if e.len() > MAX_EMAIL_LEN => {
            left_out.email_too_long += 1;
            false
        }
        Some(_) => true,
    });

    let users = deduplicate(users, options.remove_disabled, &mut left_out)?;

    // Flatten, then merge groups that share an external id (the server fails on duplicates).
    // Members become positions in one sorted table of ids: one sort of the distinct users
    // instead of a string sort in every group, and one string per user, not per membership
    // (moved out of the groups, not copied).
    let mut flat = flatten(&mut groups);
    let mut order: Vec<u32> = (0..flat.users.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| flat.users[a as usize].cmp(&flat.users[b as usize]));
    let mut rank = vec![0u32; flat.users.len()];
    for (r, &u) in order.iter().enumerate() {
        rank[u as usize] = r as u32;
    }
    let member_ids: Vec<String> = order
        .iter()
        .map(|&u| std::mem::take(&mut flat.users[u as usize]))
        .collect();
    drop((order, flat.users));
    let mut by_id: BTreeMap<&str, (&str, Vec<u32>)> = BTreeMap::new();
    for (group, members) in groups.iter().zip(flat.members) {
        let entry = by_id
            .entry(group.external_id.as_str())
            .or_insert_with(|| (group.name.as_str(), Vec::new()));
        if entry.1.is_empty() {
            // The common case (no repeated id): reuse the vector.
            entry.1 = members;
            entry.1.iter_mut().for_each(|u| *u = rank[*u as usize]);
        } else {
            entry.1.extend(members.iter().map(|&u| rank[u as usize]));
        }
    }
    drop(rank);
    let groups = by_id
        .into_iter()
        .map(|(external_id, (name, mut members))| {
            members.sort_unstable();
            members.dedup();
            members.shrink_to_fit();
            FlatGroup {
                external_id: external_id.to_string(),
                name: name.to_string(),
                members,
            }
        })
        .collect();

    Ok(Prepared {
        users,
        groups,
        member_ids,
        left_out,
        complete,
    })
}

/// Parity with the reference, made order-independent: entries that repeat exactly collapse into
/// one; two users that Bitwarden would both keep active under one email stop the sync
/// (`DuplicateEmails`). Beyond the reference: a removal entry (deleted, or disabled with
/// `removeDisabled`) that shares its email with an active user is dropped, so a person who is
/// active in the directory is never removed because of a stale twin.
fn deduplicate(users: Vec<User>, remove_disabled: bool, left_out: &mut LeftOut) -> Result<Vec<User>, Error> {
    let mut keep = vec![true; users.len()];
    {
        let mut seen_ids: HashSet<&str> = HashSet::with_capacity(users.len());
        let mut first_by_email: HashMap<&str, usize> = HashMap::with_capacity(users.len());
        // Only emails that occur more than once, with every index that has them.
        let mut shared: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, user) in users.iter().enumerate() {
            if !seen_ids.insert(user.external_id.as_str()) {
                // The same external id twice: the first entry wins.
                keep[i] = false;
                left_out.duplicates += 1;
                continue;
            }
            let email = user.email.as_deref().unwrap_or_default();
            match first_by_email.entry(email) {
                hashbrown::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                }
                hashbrown::hash_map::Entry::Occupied(o) => {
                    shared.entry(email).or_insert_with(|| vec![*o.get()]).push(i);
                }
            }
        }

        let mut duplicate_emails = Vec::new();
        for (email, indices) in &shared {
            let mut active = indices
                .iter()
                .copied()
                .filter(|&i| !Prepared::sends_as_deleted(&users[i], remove_disabled));
            match (active.next(), active.next()) {
                (Some(_), Some(_)) => duplicate_emails.push(email.to_string()),
                (Some(the_active), None) => {
                    for &i in indices.iter().filter(|&&i| i != the_active) {
                        keep[i] = false;
                        left_out.duplicates += 1;
                    }
                }
                _ => {}
            }
        }
        if !duplicate_emails.is_empty() {
            return Err(Error::DuplicateEmails(duplicate_emails_message(duplicate_emails)));
        }
    }

    let mut users: Vec<User> = users
        .into_iter()
        .zip(keep)
        .filter_map(|(u, k)| k.then_some(u))
        .collect();
    users.sort_unstable_by(|a, b| a.external_id.cmp(&b.external_id));
    Ok(users)
}

/// The reference's message shape: a header, up to three emails, then "and N more".
fn duplicate_emails_message(mut emails: Vec<String>) -> String {
    emails.sort();
    let mut message = String::from(
        "Duplicate emails found: several active directory users share these emails. \
         Give each user a unique email in the directory (or narrow the user filter), then sync again:",
    );
    for email in emails.iter().take(3) {
        message.push('\n');
        message.push_str(email);
    }
    if emails.len() > 3 {
        message.push_str(&format!("\nand {} more.", emails.len() - 3));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::model::Group;

    fn user(id: &str, email: Option<&str>) -> User {
        User {
            external_id: id.into(),
            email: email.map(str::to_string),
            disabled: false,
            deleted: false,
        }
    }

    fn opts() -> PrepareOptions {
        PrepareOptions {
            users: true,
            groups: true,
            remove_disabled: false,
        }
    }

    fn ids(p: &Prepared) -> Vec<&str> {
        p.users.iter().map(|u| u.external_id.as_str()).collect()
    }

    #[test]
    fn users_without_email_are_left_out_but_stay_in_group_members() {
        let dir = Directory {
            users: vec![user("a", Some("a@x.com")), user("b", None), user("c", Some(""))],
            groups: vec![Group {
                external_id: "g".into(),
                name: "G".into(),
                members: vec!["a".into(), "b".into()],
                children: vec![],
            }],
            complete: true,
            restrict_users_to_groups: false,
        };
        let p = prepare(dir, opts()).unwrap();
        assert_eq!(ids(&p), vec!["a"]);
        assert_eq!(p.left_out.without_email, 2);
        assert_eq!(p.members_of(&p.groups[0]).collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn emails_over_256_characters_are_left_out() {
        let long = format!("{}@x.com", "a".repeat(251));
        let ok = format!("{}@x.com", "a".repeat(250));
        assert_eq!(long.len(), 257);
        let dir = Directory {
            users: vec![user("long", Some(&long)), user("ok", Some(&ok))],
            ..Default::default()
        };
        let p = prepare(dir, opts()).unwrap();
        assert_eq!(ids(&p), vec!["ok"]);
        assert_eq!(p.left_out.email_too_long, 1);
    }

    #[test]
    fn duplicate_active_emails_stop_the_sync_with_the_reference_message() {
        let dir = Directory {
            users: (0..5)
                .flat_map(|i| {
                    let e = format!("dup{i}@x.com");
                    [user(&format!("a{i}"), Some(&e)), user(&format!("b{i}"), Some(&e))]
                })
                .collect(),
            ..Default::default()
        };
        let err = prepare(dir, opts()).unwrap_err();
        assert!(matches!(err, Error::DuplicateEmails(_)));
        let msg = err.to_string();
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(&lines[1..], &["dup0@x.com", "dup1@x.com", "dup2@x.com", "and 2 more."]);
    }

    #[test]
    fn three_duplicate_emails_are_all_named_with_no_more_line() {
        let msg = duplicate_emails_message(vec!["c@x.com".into(), "a@x.com".into(), "b@x.com".into()]);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(&lines[1..], &["a@x.com", "b@x.com", "c@x.com"]);
    }

    #[test]
    fn exact_repeats_collapse_silently() {
        let dir = Directory {
            users: vec![user("a", Some("a@x.com")), user("a", Some("a@x.com"))],
            ..Default::default()
        };
        let p = prepare(dir, opts()).unwrap();
        assert_eq!(ids(&p), vec!["a"]);
        assert_eq!(p.left_out.duplicates, 1);
    }

    #[test]
    fn a_deleted_twin_of_an_active_user_is_dropped_in_either_order() {
        for flip in [false, true] {
            let mut old = user("old-guid", Some("alice@x.com"));
            old.deleted = true;
            let new = user("new-guid", Some("alice@x.com"));
            let users = if flip {
                vec![new.clone(), old.clone()]
            } else {
                vec![old, new]
            };
            let p = prepare(
                Directory {
                    users,
                    ..Default::default()
                },
                opts(),
            )
            .unwrap();
            assert_eq!(ids(&p), vec!["new-guid"], "flip={flip}");
            assert_eq!(p.left_out.duplicates, 1, "the twin is counted as left out");
        }
    }

    #[test]
    fn disabled_twins_count_as_active_unless_remove_disabled() {
        let mut disabled = user("d", Some("bob@x.com"));
        disabled.disabled = true;
        let dir = || Directory {
            users: vec![disabled.clone(), user("e", Some("bob@x.com"))],
            ..Default::default()
        };
        assert!(matches!(prepare(dir(), opts()), Err(Error::DuplicateEmails(_))));
        let p = prepare(
            dir(),
            PrepareOptions {
                remove_disabled: true,
                ..opts()
            },
        )
        .unwrap();
        assert_eq!(ids(&p), vec!["e"]);
    }

    #[test]
    fn two_deleted_users_with_one_email_are_both_kept() {
        let mut a = user("a", Some("gone@x.com"));
        a.deleted = true;
        let mut b = user("b", Some("gone@x.com"));
        b.deleted = true;
        let p = prepare(
            Directory {
                users: vec![a, b],
                ..Default::default()
            },
            opts(),
        )
        .unwrap();
        assert_eq!(ids(&p), vec!["a", "b"]);
    }

    #[test]
    fn with_a_group_filter_users_must_be_in_a_synced_group() {
        let mut deleted = user("deleted", Some("d@x.com"));
        deleted.deleted = true;
        let mut disabled = user("disabled", Some("s@x.com"));
        disabled.disabled = true;
        let dir = || Directory {
            users: vec![
                user("member", Some("m@x.com")),
                user("loner", Some("l@x.com")),
                deleted.clone(),
                disabled.clone(),
            ],
            groups: vec![Group {
                external_id: "g".into(),
                name: "G".into(),
                members: vec!["member".into()],
                children: vec![],
            }],
            complete: true,
            restrict_users_to_groups: true,
        };
        let p = prepare(dir(), opts()).unwrap();
        assert_eq!(ids(&p), vec!["deleted", "member"]);
        assert_eq!(p.left_out.in_no_synced_group, 2);
        let p = prepare(
            dir(),
            PrepareOptions {
                remove_disabled: true,
                ..opts()
            },
        )
        .unwrap();
        assert_eq!(ids(&p), vec!["deleted", "disabled", "member"]);
        // Without group sync the rule does not apply.
        let p = prepare(
            dir(),
            PrepareOptions {
                groups: false,
                ..opts()
            },
        )
        .unwrap();
        assert_eq!(p.users.len(), 4);
        assert!(p.groups.is_empty());
        // The count is of the users left out: 3 loners more make 5 of 7 left out.
        let mut more = dir();
        more.users
            .extend(["l2", "l3", "l4"].map(|id| user(id, Some(&format!("{id}@x.com")))));
        let p = prepare(more, opts()).unwrap();
        assert_eq!(p.left_out.in_no_synced_group, 5);
    }

    #[test]
    fn groups_with_the_same_external_id_are_merged() {
        let g = |members: &[&str]| Group {
            external_id: "g".into(),
            name: "G".into(),
            members: members.iter().map(|s| s.to_string()).collect(),
            children: vec![],
        };
        let dir = Directory {
            groups: vec![g(&["b", "a"]), g(&["c", "a"])],
            ..Default::default()
        };
        let p = prepare(dir, opts()).unwrap();
        assert_eq!(p.groups.len(), 1);
        assert_eq!(p.members_of(&p.groups[0]).collect::<Vec<_>>(), vec!["a", "b", "c"]);
    }
}
