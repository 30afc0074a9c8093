//! Google Workspace (Admin SDK Directory API): settings, validation, and the reader.
//!
//! A read lists the users (`users.list`, 500 a page) and the deleted users (`showDeleted=true`)
//! while it lists the groups (`groups.list`, 200 a page) and their members (`members.list`, 200
//! a page, a few groups at a time). Every read is full: the API has no change tracking. Which
//! accounts are read: `domain=` when `domain` is set, else `customer=` (Directory Connector's
//! rule: the domain wins when both are set).

pub mod client;
pub mod read;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

use self::client::{Client, ClientOptions, NAME, ServiceAccount};
use self::read::{
    GROUP_FIELDS, GroupsPage, MEMBER_FIELDS, Members, MembersPage, USER_FIELDS, Users, UsersPage, WireGroup,
};
use super::filter::{self, CloudFilter};
use super::{DirectorySource, Provider, ReadRequest, ReadResult};
use crate::Error;
use crate::api::GoogleWorkspaceSource;
use crate::api::checks::{FieldErrors, check_url};
use crate::api::validate::secret_key_ref;
use crate::secrets::SecretStore;
use crate::sync::model::{Directory, Group};

const P: &str = "spec.source.googleWorkspace";
/// `maxResults` of each list: the largest the API allows.
pub const USERS_PAGE_SIZE: &str = "500";
pub const GROUPS_PAGE_SIZE: &str = "200";
pub const MEMBERS_PAGE_SIZE: &str = "200";

#[async_trait]
impl Provider for GoogleWorkspaceSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, e: &mut FieldErrors) {
        if account_scope(self).is_none() {
            e.add(
                &format!("{P}.domain"),
                "set domain (one domain) or customer (every domain of the account, e.g. my_customer)",
            );
        }
        e.non_empty(&format!("{P}.adminEmail"), &self.admin_email);
        if !self.admin_email.contains('@') {
            e.add(&format!("{P}.adminEmail"), "must be an email address");
        }
        secret_key_ref(
            e,
            &format!("{P}.serviceAccountKeySecretRef"),
            &self.service_account_key_secret_ref,
        );
        e.optional_https_url(&format!("{P}.apiUrl"), &self.api_url);
        filter::check(e, &format!("{P}.userFilter"), &self.user_filter, &[]);
        filter::check(e, &format!("{P}.groupFilter"), &self.group_filter, &[]);
    }

    async fn connect(&self, secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        Ok(Box::new(
            GoogleSource::connect(self, secrets, ClientOptions::default()).await?,
        ))
    }
}

/// The list parameter that names the accounts to read: `("domain", ..)` when a domain is set,
/// else `("customer", ..)`; `None` when neither is.
pub fn account_scope(settings: &GoogleWorkspaceSource) -> Option<(&'static str, String)> {
    let set = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    set(&settings.domain)
        .map(|d| ("domain", d))
        .or_else(|| set(&settings.customer).map(|c| ("customer", c)))
}

/// A connected Google Workspace directory.
#[derive(Debug)]
pub struct GoogleSource {
    client: Client,
    scope: (&'static str, String),
    user_filter: CloudFilter,
    group_filter: CloudFilter,
    member_concurrency: usize,
}

impl GoogleSource {
    /// Reads the key file from its Secret and builds the client (nothing is sent). Settings are
    /// validated again here, so a caller that skipped validation still gets `InvalidSpec`.
    pub async fn connect(
        settings: &GoogleWorkspaceSource,
        secrets: &dyn SecretStore,
        options: ClientOptions,
    ) -> Result<GoogleSource, Error> {
        let mut errors = FieldErrors::default();
        settings.validate(&mut errors);
        errors.into_result().map_err(Error::InvalidSpec)?;
        let parse = |field: &str, f: &Option<String>| {
            CloudFilter::parse(f.as_deref().unwrap_or_default(), &[])
                .map_err(|m| Error::invalid(&format!("{P}.{field}"), m))
        };
        let user_filter = parse("userFilter", &settings.user_filter)?;
        let group_filter = parse("groupFilter", &settings.group_filter)?;
        let scope =
            account_scope(settings).ok_or_else(|| Error::invalid(&format!("{P}.domain"), "set domain or customer"))?;
        let api_url = settings.api_url.as_deref().unwrap_or(client::DEFAULT_API_URL);
        check_url(api_url, &["https"], &["http"]).map_err(|m| Error::invalid(&format!("{P}.apiUrl"), m))?;

        let r = &settings.service_account_key_secret_ref;
        let key_file = secrets.get(&r.name, &r.key).await?;
        let source = format!("Secret {:?} key {:?}", r.name, r.key);
        let account = ServiceAccount::from_key_file(key_file.expose(), &source)?;
        let client = Client::new(account, &settings.admin_email, api_url, options.retry)?;
        Ok(GoogleSource {
            client,
            scope,
            user_filter,
            group_filter,
            member_concurrency: options.member_concurrency.max(1),
        })
    }

    /// Both user listings: the normal one, then the deleted users.
    async fn read_users(&self) -> Result<Users, Error> {
        let url = self.client.url(&["users"]);
        let (scope, value) = (self.scope.0, self.scope.1.as_str());
        let mut query = vec![(scope, value), ("maxResults", USERS_PAGE_SIZE), ("fields", USER_FIELDS)];
        if let Some(q) = &self.user_filter.query {
            query.push(("query", q));
        }
        let mut users = Users::default();
        let filter = &self.user_filter;
        self.client
            .list("list_users", "the users", &url, &query, |page: UsersPage| {
                users.take(page, false, filter)
            })
            .await?;
        query.push(("showDeleted", "true"));
        self.client
            .list(
                "list_deleted_users",
                "the deleted users",
                &url,
                &query,
                |page: UsersPage| users.take(page, true, filter),
            )
            .await?;
        Ok(users)
    }

    /// The groups the group filter keeps, each with its direct members (a few groups' member
    /// lists at a time).
    async fn read_groups(&self) -> Result<Vec<(WireGroup, Members)>, Error> {
        let url = self.client.url(&["groups"]);
        let (scope, value) = (self.scope.0, self.scope.1.as_str());
        let mut query = vec![
            (scope, value),
            ("maxResults", GROUPS_PAGE_SIZE),
            ("fields", GROUP_FIELDS),
        ];
        if let Some(q) = &self.group_filter.query {
            query.push(("query", q));
        }
        let mut groups = Vec::new();
        let names = self.group_filter.names();
        self.client
            .list("list_groups", "the groups", &url, &query, |page: GroupsPage| {
                groups.extend(
                    page.groups
                        .into_iter()
                        .filter(|g| names.is_none_or(|n| n.keeps(&g.name))),
                )
            })
            .await?;
        futures::stream::iter(groups.into_iter().map(|g| self.read_members(g)))
            .buffer_unordered(self.member_concurrency)
            .try_collect()
            .await
    }

    async fn read_members(&self, group: WireGroup) -> Result<(WireGroup, Members), Error> {
        let url = self.client.url(&["groups", &group.id, "members"]);
        let query = [("maxResults", MEMBERS_PAGE_SIZE), ("fields", MEMBER_FIELDS)];
        let what = format!("the members of group {:?} ({})", group.name, group.id);
        let mut members = Members::default();
        self.client
            .list("list_members", &what, &url, &query, |page: MembersPage| {
                members.take(page)
            })
            .await?;
        Ok((group, members))
    }
}

#[async_trait]
impl DirectorySource for GoogleSource {
    async fn read(&mut self, request: &ReadRequest) -> Result<ReadResult, Error> {
        let this = &*self;
        // Users and groups are read at the same time; the first failure cancels the other.
        let users = async {
            match request.users {
                true => this.read_users().await,
                false => Ok(Users::default()),
            }
        };
        let groups = async {
            match request.groups {
                true => this.read_groups().await,
                false => Ok(Vec::new()),
            }
        };
        let (users, groups) = futures::try_join!(users, groups)?;
        // A CUSTOMER member stands for every user the listings kept.
        let everyone: Vec<&str> = users.kept.iter().map(|u| u.external_id.as_str()).collect();
        let groups: Vec<Group> = groups
            .into_iter()
            .map(|(group, members)| members.into_group(group, &everyone))
            .collect();
        drop(everyone);
        Ok(ReadResult {
            directory: Directory {
                users: users.into_vec(),
                groups,
                complete: true,
                restrict_users_to_groups: self.group_filter.names().is_some(),
            },
            cursor: Default::default(),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let s = GoogleWorkspaceSource {
            admin_email: "admin".into(),
            user_filter: Some("includeGroup:x".into()),
            ..Default::default()
        };
        let mut e = FieldErrors::default();
        s.validate(&mut e);
        let paths: Vec<String> = e.into_vec().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "spec.source.googleWorkspace.domain",
                "spec.source.googleWorkspace.adminEmail",
                "spec.source.googleWorkspace.serviceAccountKeySecretRef.name",
                "spec.source.googleWorkspace.serviceAccountKeySecretRef.key",
                "spec.source.googleWorkspace.userFilter"
            ]
        );
    }

    #[test]
    fn the_domain_wins_over_the_customer_as_in_directory_connector() {
        let with = |domain: Option<&str>, customer: Option<&str>| GoogleWorkspaceSource {
            domain: domain.map(str::to_string),
            customer: customer.map(str::to_string),
            ..Default::default()
        };
        let scope = |s: GoogleWorkspaceSource| account_scope(&s);
        assert_eq!(
            scope(with(Some("corp.example"), Some("C0abc"))),
            Some(("domain", "corp.example".into()))
        );
        assert_eq!(
            scope(with(None, Some(" my_customer "))),
            Some(("customer", "my_customer".into()))
        );
        assert_eq!(
            scope(with(Some("  "), Some("C0abc"))),
            Some(("customer", "C0abc".into()))
        );
        assert_eq!(
            scope(with(Some(" corp.example"), None)),
            Some(("domain", "corp.example".into()))
        );
        assert_eq!(scope(with(None, Some(""))), None);
    }
}
