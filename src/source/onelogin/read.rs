//! From OneLogin's answers to the directory model, without I/O (`sync-semantics.md`, "Cloud
//! details that existing organizations depend on"):
//!
//! - a user's external id is its `id`; only `status == 2` (Suspended) is disabled; OneLogin
//!   reports no deletions;
//! - the email is `email` if it looks like an address, else `username` if that does, else
//!   `username + emailSuffix`; a user with none of these is kept without email (the core leaves
//!   it out and counts it);
//! - groups are roles; a role's members are the users whose `role_ids` hold it: every user the
//!   listing returned, also those left out for their email or by the user filter (as the
//!   reference, whose role members come from the whole user listing).

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

use crate::source::filter::SetFilter;
use crate::sync::model::{Group, User};

/// The fields asked of the user list (`fields=`).
pub const USER_FIELDS: &str = "id,email,username,status,role_ids";
/// The fields asked of the role list.
pub const ROLE_FIELDS: &str = "id,name";
/// `status` of a suspended user: the only disabled status.
pub const SUSPENDED: i64 = 2;

/// A user as `GET /api/2/users` returns it (only the fields asked for).
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct WireUser {
    pub id: i64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub status: Option<i64>,
    #[serde(default)]
    pub role_ids: RoleIds,
}

/// `role_ids`, telling a missing field (the server did not send it) from an empty or null one.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RoleIds {
    #[default]
    Missing,
    Listed(Vec<i64>),
}

impl<'de> Deserialize<'de> for RoleIds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RoleIds, D::Error> {
        Ok(RoleIds::Listed(Option::<Vec<i64>>::deserialize(d)?.unwrap_or_default()))
    }
}

/// A role as `GET /api/2/roles` returns it.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct WireRole {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
}

/// Whether a value looks like an email address as the reference checks it: no whitespace,
/// something, `@`, something, `.`, something.
pub fn looks_like_address(s: &str) -> bool {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return false;
    }
    s.match_indices('@').any(|(at, _)| {
        let domain = &s[at + 1..];
        at > 0
            && domain
                .match_indices('.')
                .any(|(dot, _)| dot > 0 && dot + 1 < domain.len())
    })
}

/// The email of a user (trimmed, lower-case), or `None` when it has no usable one.
pub fn email_of(email: Option<&str>, username: Option<&str>, suffix: Option<&str>) -> Option<String> {
    let email = email.map(str::trim).unwrap_or_default();
    let username = username.map(str::trim).unwrap_or_default();
    let chosen = if looks_like_address(email) {
        email.to_string()
    } else if looks_like_address(username) {
        username.to_string()
    } else {
        match suffix.map(str::trim) {
            Some(suffix) if !username.is_empty() && !suffix.is_empty() => format!("{username}{suffix}"),
            _ => return None,
        }
    };
    let chosen = chosen.to_lowercase();
    looks_like_address(&chosen).then_some(chosen)
}

/// Users as the pages arrive, and the members of every role they name.
#[derive(Debug, Default)]
pub struct Users {
    user_filter: Option<SetFilter>,
    email_suffix: Option<String>,
    pub users: Vec<User>,
    /// Role id → external ids of the users that hold it.
    members: HashMap<i64, Vec<String>>,
    /// How many users carried a `role_ids` field at all.
    with_role_ids: usize,
    /// How many users were listed (also those left out by the user filter).
    pub listed: usize,
}

impl Users {
    pub fn new(user_filter: Option<SetFilter>, email_suffix: Option<String>) -> Users {
        Users {
            user_filter,
            email_suffix,
            ..Users::default()
        }
    }

    /// Takes one page of the user list.
    pub fn add(&mut self, page: Vec<WireUser>) {
        for u in page {
            self.listed += 1;
            let external_id = u.id.to_string();
            if let RoleIds::Listed(roles) = &u.role_ids {
                self.with_role_ids += 1;
                for role in roles {
                    self.members.entry(*role).or_default().push(external_id.clone());
                }
            }
            let email = email_of(u.email.as_deref(), u.username.as_deref(), self.email_suffix.as_deref());
            // The user filter compares emails: a user without one passes only an exclude list.
            if let Some(filter) = &self.user_filter
                && !filter.keeps(email.as_deref().unwrap_or_default())
            {
                continue;
            }
            self.users.push(User {
                external_id,
                email,
                disabled: u.status == Some(SUSPENDED),
                deleted: false,
            });
        }
    }

    /// Whether role membership can be trusted: the user list carried `role_ids` (asked for with
    /// `fields`), unless there was nothing to carry them.
    pub fn has_role_ids(&self) -> bool {
        self.listed == 0 || self.with_role_ids > 0
    }

    /// The groups: the listed roles that pass the group filter, each with the users that hold
    /// it (a role nobody holds is still a group).
    pub fn groups(&mut self, roles: Vec<WireRole>, role_filter: Option<&SetFilter>) -> Vec<Group> {
        roles
            .into_iter()
            .filter_map(|role| {
                let name = role
                    .name
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("role {}", role.id));
                if role_filter.is_some_and(|f| !f.keeps(&name)) {
                    return None;
                }
                let mut members = self.members.remove(&role.id).unwrap_or_default();
                // The slack of a list grown one push at a time, back for the core's work.
                members.shrink_to_fit();
                Some(Group {
                    external_id: role.id.to_string(),
                    name,
                    members,
                    children: Vec::new(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::filter::CloudFilter;

    #[test]
    fn addresses_look_like_the_reference_checks_them() {
        for ok in ["a@b.c", "alice@corp.example", "a@b@c.d", "x.y+z@sub.corp.example"] {
            assert!(looks_like_address(ok), "{ok}");
        }
        for bad in [
            "",
            "alice",
            "alice@corp",
            "@corp.example",
            "alice@.example",
            "alice@corp.",
            "a b@c.d",
            "a@b .c",
        ] {
            assert!(!looks_like_address(bad), "{bad}");
        }
    }

    #[test]
    fn the_email_is_email_else_username_else_username_plus_suffix() {
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (
                Some("Alice@Corp.Example"),
                Some("alice"),
                Some("@x.org"),
                Some("alice@corp.example"),
            ),
            (Some(" alice@corp.example "), None, None, Some("alice@corp.example")),
            (None, Some("Bob@Corp.Example"), Some("@x.org"), Some("bob@corp.example")),
            (
                Some("not-an-address"),
                Some("bob@corp.example"),
                None,
                Some("bob@corp.example"),
            ),
            (
                Some(""),
                Some("carol"),
                Some("@corp.example"),
                Some("carol@corp.example"),
            ),
            (None, Some("carol"), None, None),
            (None, Some(""), Some("@corp.example"), None),
            (None, None, Some("@corp.example"), None),
            // The suffix must make an address, or the user has none.
            (None, Some("dave"), Some("corp"), None),
            (
                Some("eve@corp"),
                Some("eve"),
                Some("@corp.example"),
                Some("eve@corp.example"),
            ),
            (None, None, None, None),
        ];
        for (email, username, suffix, want) in cases {
            assert_eq!(
                email_of(*email, *username, *suffix).as_deref(),
                *want,
                "email={email:?} username={username:?} suffix={suffix:?}"
            );
        }
    }

    fn wire(id: i64, email: &str, status: i64, roles: Option<&[i64]>) -> WireUser {
        WireUser {
            id,
            email: Some(email.to_string()),
            username: None,
            status: Some(status),
            role_ids: roles.map_or(RoleIds::Missing, |r| RoleIds::Listed(r.to_vec())),
        }
    }

    #[test]
    fn only_status_2_is_disabled() {
        let mut users = Users::new(None, None);
        users.add(
            [0, 1, 2, 3, 4, 5, 7, 8]
                .iter()
                .map(|&s| wire(s, &format!("u{s}@corp.example"), s, Some(&[])))
                .collect(),
        );
        let disabled: Vec<&str> = users
            .users
            .iter()
            .filter(|u| u.disabled)
            .map(|u| u.external_id.as_str())
            .collect();
        assert_eq!(disabled, ["2"]);
        assert!(users.users.iter().all(|u| !u.deleted));
        let no_status = WireUser {
            status: None,
            ..wire(9, "u9@corp.example", 0, None)
        };
        users.add(vec![no_status]);
        assert!(!users.users.last().unwrap().disabled);
    }

    #[test]
    fn roles_are_groups_whose_members_come_from_the_users_role_ids() {
        let filter = CloudFilter::parse("exclude:bob@corp.example", &[]).unwrap();
        let mut users = Users::new(filter.set, None);
        users.add(vec![
            wire(1, "alice@corp.example", 1, Some(&[10, 11])),
            wire(2, "bob@corp.example", 1, Some(&[10])),
            wire(3, "no address", 1, Some(&[11, 99])),
        ]);
        users.add(vec![wire(4, "dan@corp.example", 2, Some(&[]))]);
        // Bob is filtered out of the users, the user without email is kept (the core counts
        // it), and both stay members of their roles.
        let ids: Vec<&str> = users.users.iter().map(|u| u.external_id.as_str()).collect();
        assert_eq!(ids, ["1", "3", "4"]);
        assert_eq!(users.users[1].email, None);
        assert_eq!(users.listed, 4);
        assert!(users.has_role_ids());
        let roles = vec![
            WireRole {
                id: 10,
                name: Some("Engineering".into()),
            },
            WireRole {
                id: 11,
                name: Some("Sales".into()),
            },
            WireRole {
                id: 12,
                name: Some("Nobody".into()),
            },
            WireRole { id: 13, name: None },
        ];
        let groups = users.groups(roles, None);
        let got: Vec<(&str, &str, Vec<&str>)> = groups
            .iter()
            .map(|g| {
                (
                    g.external_id.as_str(),
                    g.name.as_str(),
                    g.members.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("10", "Engineering", vec!["1", "2"]),
                ("11", "Sales", vec!["1", "3"]),
                ("12", "Nobody", vec![]),
                ("13", "role 13", vec![]),
            ]
        );
    }

    #[test]
    fn the_group_filter_keeps_roles_by_name() {
        let filter = CloudFilter::parse("include:engineering", &[]).unwrap();
        let mut users = Users::new(None, None);
        users.add(vec![wire(1, "a@corp.example", 1, Some(&[10, 11]))]);
        let roles = vec![
            WireRole {
                id: 10,
                name: Some("Engineering".into()),
            },
            WireRole {
                id: 11,
                name: Some("Sales".into()),
            },
        ];
        let groups = users.groups(roles, filter.names());
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, "Engineering");
    }

    #[test]
    fn a_user_list_without_role_ids_cannot_tell_membership() {
        let mut users = Users::new(None, None);
        assert!(users.has_role_ids(), "no users, nothing missing");
        users.add(vec![
            wire(1, "a@corp.example", 1, None),
            wire(2, "b@corp.example", 1, None),
        ]);
        assert!(!users.has_role_ids());
        users.add(vec![wire(3, "c@corp.example", 1, Some(&[]))]);
        assert!(users.has_role_ids(), "one user carried the field");
    }

    #[test]
    fn role_ids_null_is_an_empty_list_and_absent_is_missing() {
        let u: WireUser = serde_json::from_str(r#"{"id":1,"role_ids":null}"#).unwrap();
        assert_eq!(u.role_ids, RoleIds::Listed(vec![]));
        let u: WireUser = serde_json::from_str(r#"{"id":1}"#).unwrap();
        assert_eq!(u.role_ids, RoleIds::Missing);
        let u: WireUser = serde_json::from_str(r#"{"id":1,"role_ids":[5,6],"status":2,"extra":true}"#).unwrap();
        assert_eq!(u.role_ids, RoleIds::Listed(vec![5, 6]));
    }
}
