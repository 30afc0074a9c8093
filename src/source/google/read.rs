//! From Directory API pages to the model, as Directory Connector builds it (parity,
//! `sync-semantics.md`): the user's `id` is its external id and `primaryEmail` its email;
//! `suspended || archived` is disabled; users of the `showDeleted=true` listing are deleted; a
//! listed user without `emails` is left out unless deleted; a `USER` member counts only when its
//! `status` is `ACTIVE`, a `GROUP` member is a child group, a `CUSTOMER` member stands for every
//! user of both listings. No I/O here.

use serde::Deserialize;

use super::client::Page;
use crate::source::filter::CloudFilter;
use crate::sync::email::normalize_email;
use crate::sync::model::{Group, User};

/// `users.list` with `fields=`[`USER_FIELDS`].
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct UsersPage {
    #[serde(default)]
    pub users: Vec<WireUser>,
    pub next_page_token: Option<String>,
}

pub const USER_FIELDS: &str = "nextPageToken,users(id,primaryEmail,emails,suspended,archived)";

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct WireUser {
    pub id: String,
    pub primary_email: Option<String>,
    /// Only whether it is there matters (the reference leaves out users without it).
    #[serde(default)]
    pub emails: Option<Emails>,
    #[serde(default)]
    pub suspended: Option<bool>,
    #[serde(default)]
    pub archived: Option<bool>,
}

/// `emails` (an array of objects): the reference counts it missing when absent, `null` or `""`.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Emails {
    Text(String),
    Other(serde::de::IgnoredAny),
}

impl Emails {
    fn present(emails: &Option<Emails>) -> bool {
        match emails {
            None => false,
            Some(Emails::Text(t)) => !t.is_empty(),
            Some(Emails::Other(_)) => true,
        }
    }
}

/// `groups.list` with `fields=`[`GROUP_FIELDS`].
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupsPage {
    #[serde(default)]
    pub groups: Vec<WireGroup>,
    pub next_page_token: Option<String>,
}

pub const GROUP_FIELDS: &str = "nextPageToken,groups(id,name)";

#[derive(Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct WireGroup {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// `members.list` with `fields=`[`MEMBER_FIELDS`].
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct MembersPage {
    #[serde(default)]
    pub members: Vec<WireMember>,
    pub next_page_token: Option<String>,
}

pub const MEMBER_FIELDS: &str = "nextPageToken,members(id,type,status)";

#[derive(Deserialize, Debug, Default)]
pub struct WireMember {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Option<String>,
}

impl Page for UsersPage {
    fn next_page_token(&mut self) -> Option<String> {
        self.next_page_token.take()
    }
}

impl Page for GroupsPage {
    fn next_page_token(&mut self) -> Option<String> {
        self.next_page_token.take()
    }
}

impl Page for MembersPage {
    fn next_page_token(&mut self) -> Option<String> {
        self.next_page_token.take()
    }
}

/// The users of both listings, as they are read.
#[derive(Debug, Default)]
pub struct Users {
    /// Users the reference keeps: what a `CUSTOMER` member stands for.
    pub kept: Vec<User>,
    /// Listed (not deleted) users without `emails`: left out, counted as "without email".
    pub without_emails: Vec<User>,
}

impl Users {
    /// Takes one page of the normal (`deleted: false`) or the `showDeleted=true` listing,
    /// leaving out users the filter's include/exclude list drops (by primary email).
    pub fn take(&mut self, page: UsersPage, deleted: bool, filter: &CloudFilter) {
        for wire in page.users {
            if let Some(set) = filter.names() {
                // The reference compares "--" for a user without primary email.
                if !set.keeps(wire.primary_email.as_deref().unwrap_or("--")) {
                    continue;
                }
            }
            let has_emails = Emails::present(&wire.emails);
            let user = User {
                email: normalize_email(wire.primary_email.as_deref(), None, None),
                external_id: wire.id,
                disabled: wire.suspended.unwrap_or(false) || wire.archived.unwrap_or(false),
                deleted,
            };
            if has_emails || deleted {
                self.kept.push(user);
            } else {
                self.without_emails.push(User { email: None, ..user });
            }
        }
    }

    /// Every user, the left-out ones last (without an email, so the core counts them).
    pub fn into_vec(self) -> Vec<User> {
        let mut all = self.kept;
        all.extend(self.without_emails);
        all
    }
}

/// One group's direct members, as its pages are read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Members {
    pub users: Vec<String>,
    pub children: Vec<String>,
    /// A `CUSTOMER` member: every user of both listings is a member.
    pub everyone: bool,
}

impl Members {
    pub fn take(&mut self, page: MembersPage) {
        for member in page.members {
            let (Some(kind), Some(id)) = (member.kind, member.id) else {
                continue;
            };
            if kind.eq_ignore_ascii_case("user") {
                if member.status.is_some_and(|s| s.eq_ignore_ascii_case("active")) {
                    self.users.push(id);
                }
            } else if kind.eq_ignore_ascii_case("group") {
                self.children.push(id);
            } else if kind.eq_ignore_ascii_case("customer") {
                self.everyone = true;
            }
            // EXTERNAL members (and any other kind) are not directory users.
        }
    }

    /// The model group; `everyone` is the ids a `CUSTOMER` member stands for.
    pub fn into_group(self, group: WireGroup, everyone: &[&str]) -> Group {
        let mut members = self.users;
        if self.everyone {
            members.extend(everyone.iter().map(|id| id.to_string()));
        }
        members.sort_unstable();
        members.dedup();
        members.shrink_to_fit();
        let mut children = self.children;
        children.sort_unstable();
        children.dedup();
        Group {
            external_id: group.id,
            name: group.name,
            members,
            children,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn users_page(users: serde_json::Value) -> UsersPage {
        serde_json::from_value(json!({ "users": users })).unwrap()
    }

    fn user(id: &str, email: Option<&str>, disabled: bool, deleted: bool) -> User {
        User {
            external_id: id.into(),
            email: email.map(str::to_string),
            disabled,
            deleted,
        }
    }

    #[test]
    fn users_as_the_reference_builds_them() {
        let emails = json!([{"address": "x@corp.example", "primary": true}]);
        let mut users = Users::default();
        users.take(
            users_page(json!([
                {"id": "1", "primaryEmail": " Alice@Corp.Example ", "emails": emails, "suspended": false, "archived": false},
                {"id": "2", "primaryEmail": "bob@corp.example", "emails": emails, "suspended": true},
                {"id": "3", "primaryEmail": "carol@corp.example", "emails": emails, "archived": true},
                {"id": "4", "primaryEmail": "dave@corp.example"},
                {"id": "5", "primaryEmail": "erin@corp.example", "emails": ""},
                {"id": "6", "primaryEmail": "frank@corp.example", "emails": []},
                {"id": "7", "primaryEmail": "gina@corp.example", "emails": null},
            ])),
            false,
            &CloudFilter::default(),
        );
        users.take(
            users_page(json!([
                {"id": "8", "primaryEmail": "old@corp.example", "suspended": true},
            ])),
            true,
            &CloudFilter::default(),
        );
        let kept: Vec<&str> = users.kept.iter().map(|u| u.external_id.as_str()).collect();
        assert_eq!(
            kept,
            ["1", "2", "3", "6", "8"],
            "no emails: left out unless deleted; [] counts as there"
        );
        assert_eq!(
            users.into_vec(),
            [
                user("1", Some("alice@corp.example"), false, false),
                user("2", Some("bob@corp.example"), true, false),
                user("3", Some("carol@corp.example"), true, false),
                user("6", Some("frank@corp.example"), false, false),
                user("8", Some("old@corp.example"), true, true),
                user("4", None, false, false),
                user("5", None, false, false),
                user("7", None, false, false),
            ]
        );
    }

    #[test]
    fn the_user_filter_list_applies_to_both_listings_by_primary_email() {
        let emails = json!([{"address": "x"}]);
        let page = || {
            users_page(json!([
                {"id": "1", "primaryEmail": "Alice@corp.example", "emails": emails},
                {"id": "2", "primaryEmail": "bob@corp.example", "emails": emails},
                {"id": "3", "emails": emails},
            ]))
        };
        let include = CloudFilter::parse("include: alice@corp.example | isSuspended=false", &[]).unwrap();
        let mut users = Users::default();
        users.take(page(), false, &include);
        users.take(page(), true, &include);
        let ids: Vec<(&str, bool)> = users.kept.iter().map(|u| (u.external_id.as_str(), u.deleted)).collect();
        assert_eq!(ids, [("1", false), ("1", true)]);

        let exclude = CloudFilter::parse("exclude:alice@corp.example", &[]).unwrap();
        let mut users = Users::default();
        users.take(page(), false, &exclude);
        let ids: Vec<&str> = users.kept.iter().map(|u| u.external_id.as_str()).collect();
        assert_eq!(ids, ["2", "3"], "no primary email is compared as \"--\"");
    }

    #[test]
    fn member_rules() {
        let page: MembersPage = serde_json::from_value(json!({"members": [
            {"id": "u1", "type": "USER", "status": "ACTIVE"},
            {"id": "u2", "type": "USER", "status": "SUSPENDED"},
            {"id": "u3", "type": "USER"},
            {"id": "u4", "type": "user", "status": "active"},
            {"id": "g1", "type": "GROUP"},
            {"id": "x1", "type": "EXTERNAL", "status": "ACTIVE"},
            {"id": "u5", "status": "ACTIVE"},
            {"type": "USER", "status": "ACTIVE"},
        ]}))
        .unwrap();
        let mut m = Members::default();
        m.take(page);
        assert_eq!(
            m,
            Members {
                users: vec!["u1".into(), "u4".into()],
                children: vec!["g1".into()],
                everyone: false
            }
        );
        let group = m.into_group(
            WireGroup {
                id: "g0".into(),
                name: "Eng".into(),
            },
            &["u9"],
        );
        assert_eq!(
            group.members,
            ["u1", "u4"],
            "no CUSTOMER member: the listing is not added"
        );
        assert_eq!((group.external_id.as_str(), group.name.as_str()), ("g0", "Eng"));
    }

    #[test]
    fn a_customer_member_stands_for_every_listed_user() {
        let page: MembersPage = serde_json::from_value(json!({"members": [
            {"id": "C03az79cb", "type": "CUSTOMER"},
            {"id": "u1", "type": "USER", "status": "ACTIVE"},
        ]}))
        .unwrap();
        let mut m = Members::default();
        m.take(page);
        assert!(m.everyone);
        let group = m.into_group(WireGroup::default(), &["u2", "u1", "u3"]);
        assert_eq!(group.members, ["u1", "u2", "u3"]);
    }

    #[test]
    fn pages_without_their_list_are_empty_and_the_token_is_taken_once() {
        let mut page: UsersPage = serde_json::from_value(json!({"kind": "admin#directory#users"})).unwrap();
        assert!(page.users.is_empty());
        assert_eq!(page.next_page_token(), None);
        let mut page: GroupsPage = serde_json::from_value(json!({"nextPageToken": "t"})).unwrap();
        assert_eq!(page.next_page_token().as_deref(), Some("t"));
        assert_eq!(page.next_page_token(), None);
        assert!(serde_json::from_value::<UsersPage>(json!({"users": [{"primaryEmail": "a@b"}]})).is_err());
    }
}
