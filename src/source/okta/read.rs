//! Reading an Okta org into the directory model: which lists to ask for (full or incremental),
//! and how Okta's users and groups become [`User`]s and [`Group`]s.
//!
//! - Users: an unfiltered list leaves out `DEPROVISIONED` users, so a full read without a query
//!   also lists `status eq "DEPROVISIONED"`; a `filter` or `search` query returns every status.
//!   `SUSPENDED` is disabled, `DEPROVISIONED` deleted, every other status active (parity).
//! - Groups: every type, the built-in `Everyone` included (as Directory Connector); members from
//!   `/groups/{id}/users`. Okta groups do not nest.
//! - Incremental reads (a cursor from the last successful sync): users with `lastUpdated` after
//!   the last read, groups with `lastUpdated` or `lastMembershipUpdated` after it, and the
//!   members of those groups only.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::client::{Client, Listing};
use super::limits::Bucket;
use crate::Error;
use crate::api::OktaUserQuery;
use crate::source::filter::CloudFilter;
use crate::source::{DirectorySource, ReadRequest, ReadResult};
use crate::sync::email::normalize_email;
use crate::sync::model::{Directory, Group, User};

/// Cursor key: the server time from which the next incremental read lists changed users.
pub const CURSOR_USERS: &str = "okta.usersUpdated";
/// Cursor key: the same for groups (profile or membership changes).
pub const CURSOR_GROUPS: &str = "okta.groupsUpdated";
/// Users per page: Okta's maximum for `/api/v1/users`.
pub const USERS_PAGE: &str = "200";
/// Groups per page: what Okta recommends.
pub const GROUPS_PAGE: &str = "200";
/// Members per page: the endpoint's default, its largest page (fewer requests of the rate limit).
pub const MEMBERS_PAGE: &str = "1000";
/// Changes made this long before a read started are listed again by the next incremental read:
/// an edge is read twice rather than missed.
const OVERLAP: SignedDuration = SignedDuration::from_secs(60);

/// The settings a read needs.
pub struct ReadSettings {
    pub user_filter: CloudFilter,
    pub group_filter: CloudFilter,
    pub user_query: OktaUserQuery,
    /// Member lists read at once.
    pub concurrency: usize,
}

/// The Okta source: a client and what to read.
pub struct OktaReader {
    pub client: Arc<Client>,
    pub settings: ReadSettings,
}

#[derive(Deserialize)]
pub struct WireUser {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub profile: WireUserProfile,
}

#[derive(Deserialize, Default)]
pub struct WireUserProfile {
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Deserialize)]
pub struct WireGroup {
    pub id: String,
    #[serde(default)]
    pub profile: WireGroupProfile,
}

#[derive(Deserialize, Default)]
pub struct WireGroupProfile {
    #[serde(default)]
    pub name: Option<String>,
}

/// A member as `/groups/{id}/users` lists it: only the id is needed.
#[derive(Deserialize)]
pub struct WireMember {
    pub id: String,
}

/// A user of the model (parity with Directory Connector).
pub fn user_from(u: WireUser) -> User {
    let status = u.status.as_deref().unwrap_or_default();
    User {
        email: normalize_email(u.profile.email.as_deref(), None, None),
        external_id: u.id,
        disabled: status == "SUSPENDED",
        deleted: status == "DEPROVISIONED",
    }
}

/// Okta's time format in filters: `2024-01-31T23:59:59.000Z`.
pub fn okta_time(t: Timestamp) -> String {
    let ms = t.as_millisecond();
    let whole = Timestamp::from_millisecond(ms).unwrap_or(t);
    let printer = jiff::fmt::temporal::DateTimePrinter::new().precision(Some(3));
    printer.timestamp_to_string(&whole)
}

/// `(query) and extra`, or `extra` alone.
fn and(query: Option<&str>, extra: &str) -> String {
    match query {
        Some(q) => format!("({q}) and {extra}"),
        None => extra.to_string(),
    }
}

/// The users lists of a read: `(parameter, value)` pairs besides `limit`, one entry per list.
pub fn user_lists(
    query: Option<&str>,
    parameter: OktaUserQuery,
    since: Option<&str>,
) -> Vec<Vec<(&'static str, String)>> {
    let name = match parameter {
        OktaUserQuery::Filter => "filter",
        OktaUserQuery::Search => "search",
    };
    match (since, query) {
        // Every status but DEPROVISIONED, then the DEPROVISIONED ones.
        (None, None) => vec![vec![], vec![("filter", "status eq \"DEPROVISIONED\"".to_string())]],
        // `filter` and `search` return every status.
        (None, Some(q)) => vec![vec![(name, q.to_string())]],
        (Some(t), None) => vec![vec![("filter", format!("lastUpdated gt \"{t}\""))]],
        (Some(t), Some(q)) => vec![vec![(name, and(Some(q), &format!("lastUpdated gt \"{t}\"")))]],
    }
}

/// The groups list of a read: its `filter`, if any.
pub fn group_list(query: Option<&str>, since: Option<&str>) -> Option<String> {
    match since {
        None => query.map(str::to_string),
        Some(t) => Some(and(
            query,
            &format!("(lastUpdated gt \"{t}\" or lastMembershipUpdated gt \"{t}\")"),
        )),
    }
}

/// The times an incremental read lists changes from, when the cursor has them all.
fn since(cursor: Option<&BTreeMap<String, String>>, request: &ReadRequest) -> Option<(String, String)> {
    let cursor = cursor?;
    let time = |key: &str| cursor.get(key).and_then(|v| v.parse::<Timestamp>().ok()).map(okta_time);
    let users = if request.users {
        time(CURSOR_USERS)?
    } else {
        String::new()
    };
    let groups = if request.groups {
        time(CURSOR_GROUPS)?
    } else {
        String::new()
    };
    Some((users, groups))
}

/// The cursor value for a list that started at `started` (server time), else now.
fn mark(started: Option<Timestamp>) -> String {
    let t = started.unwrap_or_else(Timestamp::now);
    okta_time(t.checked_sub(OVERLAP).unwrap_or(t))
}

impl OktaReader {
    async fn read_users(&self, since: Option<&str>) -> Result<(Vec<User>, String), Error> {
        let s = &self.settings;
        let query = s.user_filter.query.as_deref();
        let lists = user_lists(query, s.user_query, since);
        // Okta refusing a query the user wrote is a problem of the setting.
        let field = query.is_some().then_some("spec.source.okta.userFilter");
        let client = &self.client;
        let reads = lists.into_iter().enumerate().map(|(i, params)| async move {
            let mut pairs: Vec<(&str, &str)> = vec![("limit", USERS_PAGE)];
            pairs.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
            let url = client.url(&["api", "v1", "users"], &pairs);
            let (operation, what) = match i {
                0 => ("list_users", "the users"),
                _ => ("list_deprovisioned_users", "the deprovisioned users"),
            };
            client.list(Bucket::Users, operation, what, field, url, user_from).await
        });
        let listings: Vec<Listing<User>> = futures::future::try_join_all(reads).await?;
        let started = listings.iter().filter_map(|l| l.started).min();
        let names = s.user_filter.names();
        // A user in both lists (deprovisioned while they were read) counts once.
        let mut seen = HashSet::new();
        let users = listings
            .into_iter()
            .flat_map(|l| l.items)
            .filter(|u| names.is_none_or(|set| set.keeps(u.email.as_deref().unwrap_or_default())))
            .filter(|u| seen.insert(u.external_id.clone()))
            .collect();
        Ok((users, mark(started)))
    }

    async fn read_groups(&self, since: Option<&str>) -> Result<(Vec<Group>, String), Error> {
        let s = &self.settings;
        let filter = group_list(s.group_filter.query.as_deref(), since);
        let mut query: Vec<(&str, &str)> = vec![("limit", GROUPS_PAGE)];
        if let Some(f) = &filter {
            query.push(("filter", f));
        }
        let client = &self.client;
        let url = client.url(&["api", "v1", "groups"], &query);
        let field = s.group_filter.query.is_some().then_some("spec.source.okta.groupFilter");
        let listing = client
            .list(
                Bucket::Groups,
                "list_groups",
                "the groups",
                field,
                url,
                |g: WireGroup| (g.id, g.profile.name.unwrap_or_default()),
            )
            .await?;
        let names = s.group_filter.names();
        let started = listing.started;
        let kept: Vec<(String, String)> = listing
            .items
            .into_iter()
            .filter(|(_, name)| names.is_none_or(|set| set.keeps(name)))
            .collect();
        let groups = futures::stream::iter(kept)
            .map(|(id, name)| async move {
                let url = client.url(&["api", "v1", "groups", &id, "users"], &[("limit", MEMBERS_PAGE)]);
                let what = format!("the members of group {name:?} ({id})");
                let members = client
                    .list(Bucket::Members, "list_members", &what, None, url, |m: WireMember| m.id)
                    .await?;
                Ok::<_, Error>(Group {
                    external_id: id,
                    name,
                    members: members.items,
                    children: Vec::new(),
                })
            })
            .buffered(s.concurrency.max(1))
            .try_collect()
            .await?;
        Ok((groups, mark(started)))
    }
}

#[async_trait]
impl DirectorySource for OktaReader {
    async fn read(&mut self, request: &ReadRequest) -> Result<ReadResult, Error> {
        let since = since(request.cursor.as_ref(), request);
        let names_filter = self.settings.group_filter.names().is_some();
        // With a group include/exclude list, users in no synced group are left out, which needs
        // every synced group's members: those are read in full even on incremental reads.
        let users_since = since.as_ref().map(|(u, _)| u.as_str());
        let groups_since = since.as_ref().map(|(_, g)| g.as_str()).filter(|_| !names_filter);
        let users = async {
            if request.users {
                self.read_users(users_since).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let groups = async {
            if request.groups {
                self.read_groups(groups_since).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let (users, groups) = tokio::try_join!(users, groups)?;
        let mut cursor = BTreeMap::new();
        let mut directory = Directory {
            complete: since.is_none(),
            restrict_users_to_groups: names_filter && request.groups,
            ..Default::default()
        };
        if let Some((users, mark)) = users {
            directory.users = users;
            cursor.insert(CURSOR_USERS.to_string(), mark);
        }
        if let Some((groups, mark)) = groups {
            directory.groups = groups;
            cursor.insert(CURSOR_GROUPS.to_string(), mark);
        }
        Ok(ReadResult {
            directory,
            cursor,
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, status: &str, email: Option<&str>) -> WireUser {
        WireUser {
            id: id.into(),
            status: Some(status.into()),
            profile: WireUserProfile {
                email: email.map(str::to_string),
            },
        }
    }

    #[test]
    fn statuses_map_as_directory_connector_maps_them() {
        let cases = [
            ("ACTIVE", false, false),
            ("STAGED", false, false),
            ("PROVISIONED", false, false),
            ("RECOVERY", false, false),
            ("PASSWORD_EXPIRED", false, false),
            ("LOCKED_OUT", false, false),
            ("SUSPENDED", true, false),
            ("DEPROVISIONED", false, true),
        ];
        for (status, disabled, deleted) in cases {
            let u = user_from(user("00u1", status, Some(" Alice@Corp.Example ")));
            assert_eq!((u.disabled, u.deleted), (disabled, deleted), "{status}");
            assert_eq!(u.email.as_deref(), Some("alice@corp.example"));
            assert_eq!(u.external_id, "00u1");
        }
        assert_eq!(user_from(user("00u2", "ACTIVE", None)).email, None);
        assert_eq!(user_from(user("00u2", "ACTIVE", Some("  "))).email, None);
    }

    #[test]
    fn full_and_incremental_user_lists() {
        let f = OktaUserQuery::Filter;
        let s = OktaUserQuery::Search;
        let dep = ("filter", "status eq \"DEPROVISIONED\"".to_string());
        assert_eq!(user_lists(None, f, None), vec![vec![], vec![dep]]);
        let q = "profile.department eq \"Eng\"";
        assert_eq!(user_lists(Some(q), f, None), vec![vec![("filter", q.to_string())]]);
        assert_eq!(user_lists(Some(q), s, None), vec![vec![("search", q.to_string())]]);
        let t = "2024-01-31T23:00:00.000Z";
        assert_eq!(
            user_lists(None, s, Some(t)),
            vec![vec![("filter", format!("lastUpdated gt \"{t}\""))]]
        );
        assert_eq!(
            user_lists(Some(q), s, Some(t)),
            vec![vec![("search", format!("({q}) and lastUpdated gt \"{t}\""))]]
        );
    }

    #[test]
    fn full_and_incremental_group_lists() {
        let t = "2024-01-31T23:00:00.000Z";
        assert_eq!(group_list(None, None), None);
        assert_eq!(
            group_list(Some("type eq \"OKTA_GROUP\""), None).as_deref(),
            Some("type eq \"OKTA_GROUP\"")
        );
        assert_eq!(
            group_list(None, Some(t)).unwrap(),
            format!("(lastUpdated gt \"{t}\" or lastMembershipUpdated gt \"{t}\")")
        );
        assert_eq!(
            group_list(Some("type eq \"OKTA_GROUP\""), Some(t)).unwrap(),
            format!("(type eq \"OKTA_GROUP\") and (lastUpdated gt \"{t}\" or lastMembershipUpdated gt \"{t}\")")
        );
    }

    #[test]
    fn times_are_written_as_okta_writes_them_and_read_back_from_the_cursor() {
        let t: Timestamp = "2024-01-31T23:59:59.123456Z".parse().unwrap();
        assert_eq!(okta_time(t), "2024-01-31T23:59:59.123Z");
        assert_eq!(
            okta_time("2024-01-31T23:59:59Z".parse().unwrap()),
            "2024-01-31T23:59:59.000Z"
        );
        assert_eq!(mark(Some(t)), "2024-01-31T23:58:59.123Z", "a minute of overlap");
        let request = ReadRequest {
            users: true,
            groups: true,
            cursor: None,
        };
        let cursor = BTreeMap::from([
            (CURSOR_USERS.to_string(), "2024-01-31T23:00:00.000Z".to_string()),
            (CURSOR_GROUPS.to_string(), "2024-01-31T22:00:00.000Z".to_string()),
        ]);
        assert_eq!(
            since(Some(&cursor), &request),
            Some((
                "2024-01-31T23:00:00.000Z".to_string(),
                "2024-01-31T22:00:00.000Z".to_string()
            ))
        );
        assert_eq!(since(None, &request), None);
        // A cursor without the groups' time (groups were off): a full read.
        let users_only = BTreeMap::from([(CURSOR_USERS.to_string(), "2024-01-31T23:00:00.000Z".to_string())]);
        assert_eq!(since(Some(&users_only), &request), None);
        let no_groups = ReadRequest {
            groups: false,
            ..request.clone()
        };
        assert!(since(Some(&users_only), &no_groups).is_some());
        let garbage = BTreeMap::from([
            (CURSOR_USERS.to_string(), "yesterday".to_string()),
            (CURSOR_GROUPS.to_string(), "2024-01-31T22:00:00.000Z".to_string()),
        ]);
        assert_eq!(since(Some(&garbage), &request), None);
    }
}
