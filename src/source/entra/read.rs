//! One read: what is asked of Graph and how the answers become the model.
//!
//! Parity rules (`sync-semantics.md`): the external id is the object id; the email is `mail`
//! unless it is empty or contains `onmicrosoft.com`, then `userPrincipalName`; an enabled user
//! whose email contains `#` (a guest's `#EXT#` address) is left out; `accountEnabled: false` is
//! disabled; `@removed` in the users delta is deleted (both shapes: an object with a reason, or a
//! string). Group members are the group's direct user members (every one, whatever the user
//! filter) and its direct child groups; devices, contacts and service principals are ignored.
//!
//! Filters: `userFilter` `include:`/`exclude:` emails, or `includeGroup:`/`excludeGroup:` group
//! ids, whose transitive user members are computed here from the direct members (no
//! `transitiveMembers` requests: the groups read for the sync are reused); `groupFilter`
//! `include:`/`exclude:` names, or `includeAdministrativeUnit:`/`excludeAdministrativeUnit:`
//! administrative unit ids (their group members).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use tracing::info;

use super::graph::{Graph, ListEnd, Listed, Want};
use super::{CURSOR_USERS_DELTA, GROUP_FILTER_KINDS, Options, P, USER_FILTER_KINDS};
use crate::Error;
use crate::api::EntraIdSource;
use crate::source::filter::{CloudFilter, SetFilter};
use crate::source::{ReadRequest, ReadResult};
use crate::sync::email::normalize_email;
use crate::sync::model::{Directory, Group, User};

const USER_FIELDS: &str = "id,mail,userPrincipalName,accountEnabled";
/// Graph's largest page.
const TOP: u32 = 999;

const USERS: Want = Want {
    what: "listing the users",
    permission: "User.Read.All",
};
const USERS_DELTA: Want = Want {
    what: "reading the users' changes (delta)",
    permission: "User.Read.All",
};
const DELETED_USERS: Want = Want {
    what: "listing the deleted users",
    permission: "User.Read.All",
};
const GROUPS: Want = Want {
    what: "listing the groups",
    permission: "GroupMember.Read.All",
};
const MEMBERS: Want = Want {
    what: "listing group members",
    permission: "GroupMember.Read.All",
};
const AU_MEMBERS: Want = Want {
    what: "listing administrative unit members",
    permission: "AdministrativeUnit.Read.All",
};

/// The filters of a spec, parsed once.
#[derive(Debug, Default)]
pub(super) struct Settings {
    users: Option<SetFilter>,
    groups: Option<SetFilter>,
}

impl Settings {
    pub fn of(spec: &EntraIdSource, _options: &Options) -> Result<Settings, Error> {
        let parse = |field: &str, text: &Option<String>, kinds: &[&str]| match text {
            None => Ok(None),
            Some(t) => CloudFilter::parse(t, kinds)
                .map(|f| f.set)
                .map_err(|m| Error::invalid(&format!("{P}.{field}"), m)),
        };
        Ok(Settings {
            users: parse("userFilter", &spec.user_filter, &USER_FILTER_KINDS)?,
            groups: parse("groupFilter", &spec.group_filter, &GROUP_FILTER_KINDS)?,
        })
    }
}

/// A user as `/users` and the users delta return it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    pub id: String,
    pub mail: Option<String>,
    pub user_principal_name: Option<String>,
    pub account_enabled: Option<bool>,
    /// Delta only: `{"reason": "changed" | "deleted"}`, or (in `members@delta`) a plain string.
    #[serde(rename = "@removed")]
    pub removed: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphGroup {
    id: String,
    display_name: Option<String>,
}

/// A directory object in a member list: its type decides what it is.
#[derive(Debug, Deserialize)]
pub(super) struct Member {
    #[serde(rename = "@odata.type", default)]
    kind: MemberKind,
    id: String,
}

/// `@odata.type` of a member, read without keeping the text (a large read holds many members).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum MemberKind {
    User,
    Group,
    /// Devices, contacts, service principals: not synced.
    #[default]
    Other,
}

impl<'de> Deserialize<'de> for MemberKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MemberKind;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an @odata.type")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MemberKind, E> {
                Ok(match v {
                    "#microsoft.graph.user" => MemberKind::User,
                    "#microsoft.graph.group" => MemberKind::Group,
                    _ => MemberKind::Other,
                })
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// The reference's email rule: `mail`, unless it is empty or contains `onmicrosoft.com` and
/// there is a `userPrincipalName`; then trimmed and lower-cased.
pub fn email_of(mail: Option<&str>, user_principal_name: Option<&str>) -> Option<String> {
    let mail = mail.filter(|m| !m.trim().is_empty());
    let chosen = match (mail, user_principal_name) {
        (Some(m), Some(upn)) if m.contains("onmicrosoft.com") => Some(upn),
        (None, upn) => upn,
        (m, _) => m,
    };
    normalize_email(chosen, None, None)
}

/// Whether a user is kept: the reference drops enabled users whose email contains `#`.
pub fn is_user_kept(user: &User) -> bool {
    user.disabled || user.deleted || !user.email.as_deref().is_some_and(|e| e.contains('#'))
}

/// The model user of a Graph user (`None` when the reference leaves it out).
fn to_user(u: GraphUser) -> Option<User> {
    let user = if u.removed.is_some() {
        User {
            email: None,
            external_id: u.id,
            disabled: false,
            deleted: true,
        }
    } else {
        User {
            email: email_of(u.mail.as_deref(), u.user_principal_name.as_deref()),
            external_id: u.id,
            disabled: u.account_enabled == Some(false),
            deleted: false,
        }
    };
    is_user_kept(&user).then_some(user)
}

/// What a group's member list holds for the sync.
#[derive(Debug, Default)]
struct Members {
    users: Vec<String>,
    groups: Vec<String>,
}

/// Adds a page of members: user ids and child group ids.
fn add_members(m: &mut Members, page: Vec<Member>) {
    // Most groups fit in one page: room for its members, not the next power of two (a large
    // read keeps half a million of these ids).
    m.users.reserve(page.len());
    for member in page {
        match member.kind {
            MemberKind::User => m.users.push(member.id),
            MemberKind::Group => m.groups.push(member.id),
            MemberKind::Other => {}
        }
    }
}

/// Adds a page of an administrative unit's members: its groups only.
fn add_unit_groups(groups: &mut Vec<String>, page: Vec<Member>) {
    groups.extend(page.into_iter().filter(|m| m.kind == MemberKind::Group).map(|m| m.id));
}

fn members_path(group_id: &str) -> String {
    format!("/groups/{group_id}/members?$select=id&$top={TOP}")
}

/// The users part of a read.
struct UsersRead {
    users: Vec<User>,
    delta_link: Option<String>,
    complete: bool,
}

/// One read.
pub(super) async fn read(graph: &Graph, settings: &Settings, request: &ReadRequest) -> Result<ReadResult, Error> {
    let delta = request
        .cursor
        .as_ref()
        .and_then(|c| c.get(CURSOR_USERS_DELTA))
        .filter(|link| {
            let ours = graph.is_users_delta_link(link);
            if !ours {
                info!(
                    provider = super::NAME,
                    "the stored users delta link is not of this Graph root: full read"
                );
            }
            ours
        });
    // Users and groups are independent lists: read them at the same time.
    let users = async {
        if request.users {
            read_users(graph, delta.map(String::as_str)).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let groups = async {
        if request.groups {
            read_groups(graph, settings).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (users, groups) = futures::future::try_join(users, groups).await?;
    let groups = groups.unwrap_or_default();
    let UsersRead {
        mut users,
        delta_link,
        complete,
    } = users.unwrap_or(UsersRead {
        users: Vec::new(),
        delta_link: None,
        complete: true,
    });

    if let Some(filter) = &settings.users {
        if filter.kind.is_empty() {
            // Deleted users may have no email left: they are kept (removals must happen).
            users.retain(|u| u.email.as_deref().is_none_or(|e| filter.keeps(e)) || u.deleted);
        } else {
            let members = transitive_users(graph, &groups, &filter.values).await?;
            users.retain(|u| u.deleted || members.contains(&u.external_id.to_lowercase()) != filter.exclude);
        }
    }

    let mut cursor = BTreeMap::new();
    if let Some(link) = delta_link {
        cursor.insert(CURSOR_USERS_DELTA.to_string(), link);
    }
    Ok(ReadResult {
        directory: Directory {
            users,
            groups,
            complete,
            restrict_users_to_groups: request.groups && settings.groups.is_some(),
        },
        cursor,
        warnings: Vec::new(),
    })
}

async fn read_users(graph: &Graph, delta: Option<&str>) -> Result<UsersRead, Error> {
    if let Some(link) = delta {
        match users_delta(graph, link).await? {
            Some((users, next)) => {
                return Ok(UsersRead {
                    users,
                    delta_link: Some(next),
                    complete: false,
                });
            }
            None => info!(provider = super::NAME, "the users delta link expired: full read"),
        }
    }
    // The delta round starts before the listing, so that a change made while the list is read
    // shows up in the next incremental read (perhaps twice, which is harmless).
    let start = graph.url(&format!("/users/delta?$select={USER_FIELDS}&$deltatoken=latest"));
    let delta_link = match graph
        .list::<GraphUser>("users_delta", USERS_DELTA, &start, false, |_| {})
        .await?
    {
        ListEnd::Done(Some(link)) => link,
        _ => {
            return Err(Error::SourceUnavailable(
                "Microsoft Graph started a users delta round without a delta link".into(),
            ));
        }
    };
    let mut users = Vec::new();
    let first = graph.url(&format!("/users?$select={USER_FIELDS}&$top={TOP}"));
    graph
        .list::<GraphUser>("list_users", USERS, &first, false, |page| {
            users.extend(page.into_iter().filter_map(to_user))
        })
        .await?;
    users.shrink_to_fit();
    Ok(UsersRead {
        users,
        delta_link: Some(delta_link),
        complete: true,
    })
}

/// Follows a users delta link to the end of its round: the changed users (the last version of
/// each) and the next delta link; `None` when the server refused the link.
async fn users_delta(graph: &Graph, link: &str) -> Result<Option<(Vec<User>, String)>, Error> {
    let mut changed: Vec<GraphUser> = Vec::new();
    let end = graph
        .list::<GraphUser>("users_delta", USERS_DELTA, link, true, |page| changed.extend(page))
        .await?;
    let next = match end {
        ListEnd::Expired(why) => {
            info!(provider = super::NAME, why, "users delta link refused");
            return Ok(None);
        }
        ListEnd::Done(Some(next)) => next,
        ListEnd::Done(None) => {
            return Err(Error::SourceUnavailable(
                "Microsoft Graph ended a users delta round without a new delta link".into(),
            ));
        }
    };
    // One entity may appear more than once in a round: the last occurrence wins.
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, u) in changed.iter().enumerate() {
        last.insert(u.id.clone(), i);
    }
    let mut users: Vec<User> = changed
        .into_iter()
        .enumerate()
        .filter(|(i, u)| last.get(&u.id) == Some(i))
        .filter_map(|(_, u)| to_user(u))
        .collect();
    if users.iter().any(|u| u.deleted) {
        deleted_emails(graph, &mut users).await?;
    }
    Ok(Some((users, next)))
}

/// The emails of deleted users, from the recycle bin (a removed user in the delta carries only
/// its id; an email lets the removal through the core, which drops users without one).
async fn deleted_emails(graph: &Graph, users: &mut [User]) -> Result<(), Error> {
    let mut emails: HashMap<String, String> = HashMap::new();
    let first = graph.url(&format!(
        "/directory/deletedItems/microsoft.graph.user?$select=id,mail,userPrincipalName&$top={TOP}"
    ));
    graph
        .list::<GraphUser>("list_deleted_users", DELETED_USERS, &first, false, |page| {
            for u in page {
                if let Some(e) = email_of(u.mail.as_deref(), u.user_principal_name.as_deref()) {
                    emails.insert(u.id, e);
                }
            }
        })
        .await?;
    for u in users.iter_mut().filter(|u| u.deleted && u.email.is_none()) {
        u.email = emails.remove(&u.external_id);
    }
    Ok(())
}

async fn read_groups(graph: &Graph, settings: &Settings) -> Result<Vec<Group>, Error> {
    let mut all: Vec<GraphGroup> = Vec::new();
    let first = graph.url(&format!("/groups?$select=id,displayName&$top={TOP}"));
    graph
        .list::<GraphGroup>("list_groups", GROUPS, &first, false, |page| all.extend(page))
        .await?;
    let kept: Vec<GraphGroup> = match &settings.groups {
        None => all,
        Some(f) if f.kind.is_empty() => all
            .into_iter()
            .filter(|g| f.keeps(g.display_name.as_deref().unwrap_or_default()))
            .collect(),
        Some(f) => {
            let in_units = administrative_unit_groups(graph, f).await?;
            all.into_iter()
                .filter(|g| in_units.contains(&g.id.to_lowercase()) != f.exclude)
                .collect()
        }
    };
    let lists = kept.iter().map(|g| (g.id.clone(), members_path(&g.id))).collect();
    let mut members = graph.many("list_members", MEMBERS, lists, add_members).await?;
    let mut groups = Vec::with_capacity(kept.len());
    for g in kept {
        match members.remove(&g.id) {
            Some(Listed::Items(mut m)) => {
                // Memberships are most of a large directory's memory: no spare capacity.
                m.users.shrink_to_fit();
                m.groups.shrink_to_fit();
                groups.push(Group {
                    external_id: g.id,
                    name: g.display_name.unwrap_or_default(),
                    members: m.users,
                    children: m.groups,
                });
            }
            // Deleted while the read ran: it is gone from the directory.
            _ => info!(
                provider = super::NAME,
                group = g.id,
                "group deleted during the read: left out"
            ),
        }
    }
    Ok(groups)
}

/// The ids (lower-case) of the groups in the filter's administrative units.
async fn administrative_unit_groups(graph: &Graph, filter: &SetFilter) -> Result<HashSet<String>, Error> {
    let mut ids: Vec<&String> = filter.values.iter().collect();
    ids.sort();
    let lists = ids
        .iter()
        .map(|id| {
            (
                id.to_string(),
                format!("/directory/administrativeUnits/{id}/members?$select=id&$top={TOP}"),
            )
        })
        .collect();
    let units = graph
        .many("list_au_members", AU_MEMBERS, lists, add_unit_groups)
        .await?;
    let mut groups = HashSet::new();
    for id in ids {
        match units.get(id.as_str()) {
            Some(Listed::Items(members)) => groups.extend(members.iter().map(|m| m.to_lowercase())),
            _ => {
                return Err(Error::invalid(
                    &format!("{P}.groupFilter"),
                    format!("administrative unit {id} does not exist in the tenant"),
                ));
            }
        }
    }
    Ok(groups)
}

/// The user ids (lower-case) in the listed groups or any group nested in them, from direct
/// members: those of the groups already read, and the others read now (level by level).
async fn transitive_users(graph: &Graph, read: &[Group], roots: &HashSet<String>) -> Result<HashSet<String>, Error> {
    let mut known: HashMap<String, Members> = read
        .iter()
        .map(|g| {
            (
                g.external_id.to_lowercase(),
                Members {
                    users: g.members.clone(),
                    groups: g.children.clone(),
                },
            )
        })
        .collect();
    let mut users = HashSet::new();
    let mut visited: HashSet<String> = HashSet::new();
    let mut level: Vec<String> = roots.iter().cloned().collect();
    level.sort();
    let mut first = true;
    while !level.is_empty() {
        let missing: Vec<(String, String)> = level
            .iter()
            .filter(|id| !known.contains_key(*id))
            .map(|id| (id.clone(), members_path(id)))
            .collect();
        if !missing.is_empty() {
            for (id, listed) in graph.many("list_members", MEMBERS, missing, add_members).await? {
                match listed {
                    Listed::Items(m) => {
                        known.insert(id.to_lowercase(), m);
                    }
                    Listed::NotFound if first => {
                        return Err(Error::invalid(
                            &format!("{P}.userFilter"),
                            format!("group {id} does not exist in the tenant"),
                        ));
                    }
                    // A nested group deleted during the read.
                    Listed::NotFound => {
                        known.insert(id.to_lowercase(), Members::default());
                    }
                }
            }
        }
        let mut next = Vec::new();
        for id in level {
            if !visited.insert(id.clone()) {
                continue;
            }
            if let Some(m) = known.get(&id) {
                users.extend(m.users.iter().map(|u| u.to_lowercase()));
                next.extend(
                    m.groups
                        .iter()
                        .map(|g| g.to_lowercase())
                        .filter(|g| !visited.contains(g)),
                );
            }
        }
        next.sort();
        next.dedup();
        level = next;
        first = false;
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_rule_of_the_reference() {
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (
                Some("Alice@Contoso.com"),
                Some("alice@contoso.onmicrosoft.com"),
                Some("alice@contoso.com"),
            ),
            (None, Some("Bob@Contoso.com"), Some("bob@contoso.com")),
            (Some(""), Some("bob@contoso.com"), Some("bob@contoso.com")),
            (Some("  "), Some("bob@contoso.com"), Some("bob@contoso.com")),
            (
                Some("carol@contoso.onmicrosoft.com"),
                Some("carol@contoso.com"),
                Some("carol@contoso.com"),
            ),
            // No UPN to fall back to: the onmicrosoft.com mail stays.
            (
                Some("dan@contoso.onmicrosoft.com"),
                None,
                Some("dan@contoso.onmicrosoft.com"),
            ),
            (
                None,
                Some("guest_example.com#EXT#@contoso.onmicrosoft.com"),
                Some("guest_example.com#ext#@contoso.onmicrosoft.com"),
            ),
            (None, None, None),
        ];
        for (mail, upn, want) in cases {
            assert_eq!(email_of(*mail, *upn).as_deref(), *want, "mail={mail:?} upn={upn:?}");
        }
    }

    fn graph_user(id: &str, mail: Option<&str>, upn: Option<&str>, enabled: Option<bool>) -> GraphUser {
        GraphUser {
            id: id.into(),
            mail: mail.map(Into::into),
            user_principal_name: upn.map(Into::into),
            account_enabled: enabled,
            removed: None,
        }
    }

    #[test]
    fn users_become_the_model_as_the_reference_makes_them() {
        let guest = Some("g_x.com#EXT#@t.onmicrosoft.com");
        let cases = [
            (
                graph_user("1", Some("a@x.com"), None, Some(true)),
                Some((Some("a@x.com"), false, false)),
            ),
            (
                graph_user("2", Some("b@x.com"), None, Some(false)),
                Some((Some("b@x.com"), true, false)),
            ),
            // accountEnabled missing: enabled (as the reference).
            (
                graph_user("3", Some("c@x.com"), None, None),
                Some((Some("c@x.com"), false, false)),
            ),
            // Enabled guests (`#` in the email) are left out; disabled ones stay.
            (graph_user("4", None, guest, Some(true)), None),
            (
                graph_user("5", None, guest, Some(false)),
                Some((Some("g_x.com#ext#@t.onmicrosoft.com"), true, false)),
            ),
            (graph_user("6", None, None, Some(true)), Some((None, false, false))),
        ];
        for (u, want) in cases {
            let id = u.id.clone();
            let got = to_user(u).map(|u| (u.email, u.disabled, u.deleted));
            let want = want.map(|(e, d, x)| (e.map(str::to_string), d, x));
            assert_eq!(got, want, "user {id}");
        }
    }

    #[test]
    fn both_shapes_of_removed_are_deleted_users() {
        for removed in [
            serde_json::json!({"reason": "changed"}),
            serde_json::json!({"reason": "deleted"}),
            serde_json::json!("deleted"),
        ] {
            let u: GraphUser = serde_json::from_value(serde_json::json!({"id": "9", "@removed": removed})).unwrap();
            let user = to_user(u).unwrap();
            assert!(user.deleted && !user.disabled && user.email.is_none());
        }
    }

    #[test]
    fn members_are_users_and_child_groups_only() {
        let list: Vec<Member> = serde_json::from_value(serde_json::json!([
            {"@odata.type": "#microsoft.graph.user", "id": "u1"},
            {"@odata.type": "#microsoft.graph.group", "id": "g1"},
            {"@odata.type": "#microsoft.graph.device", "id": "d1"},
            {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "s1"},
            {"@odata.type": "#microsoft.graph.orgContact", "id": "c1"},
            {"@odata.type": "#microsoft.graph.user", "id": "u2"}
        ]))
        .unwrap();
        let mut m = Members::default();
        add_members(&mut m, list);
        assert_eq!(m.users, ["u1", "u2"]);
        assert_eq!(m.groups, ["g1"]);
    }
}
