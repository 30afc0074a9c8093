//! OneLogin (API v2): users from `GET /api/2/users`, roles as groups from `GET /api/2/roles`,
//! a role's members from its users' `role_ids` (`providers.md` §4, `sync-semantics.md`).
//!
//! - `client`: the token request, authorised GETs, cursor paging, and what each failure means.
//! - `read`: OneLogin's answers → users and groups (pure, table-tested).
//! - `query`: the native filter after `|` (query parameters of the list).
//!
//! Every read is a full read: OneLogin reports no deletions (`removeOutOfScope` removes the
//! members who left). Users and roles are read at the same time, each page after the last.

mod client;
pub mod query;
pub mod read;

use async_trait::async_trait;

use super::filter::{CloudFilter, SetFilter};
use super::{DirectorySource, Provider, ReadRequest, ReadResult};
use crate::Error;
use crate::api::checks::{FieldErrors, check_url, normalize_url};
use crate::api::{OneLoginRegion, OneLoginSource};
use crate::net::{HttpClient, HttpOptions, RetryPolicy, Scrubber, Side, TokenCache};
use crate::secrets::{SecretStore, SecretValue};
use crate::sync::model::Directory;
use client::{Client, Credentials, Listing};
pub use client::{PAGE_LIMIT, ROLES_PATH, TOKEN_PATH, USERS_PATH};
use query::Target;
use read::{ROLE_FIELDS, USER_FIELDS, Users, WireRole, WireUser};

const NAME: &str = "oneLogin";
const P: &str = "spec.source.oneLogin";

#[async_trait]
impl Provider for OneLoginSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, e: &mut FieldErrors) {
        let r = &self.credentials_secret_ref;
        e.non_empty(&format!("{P}.credentialsSecretRef.name"), &r.name);
        e.non_empty(&format!("{P}.credentialsSecretRef.clientIdKey"), &r.client_id_key);
        e.non_empty(
            &format!("{P}.credentialsSecretRef.clientSecretKey"),
            &r.client_secret_key,
        );
        if let Some(sub) = &self.subdomain
            && (sub.is_empty() || !sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            e.add(&format!("{P}.subdomain"), "must be a DNS label (letters, digits, '-')");
        }
        e.optional_https_url(&format!("{P}.apiUrl"), &self.api_url);
        for (field, filter, target) in [
            ("userFilter", &self.user_filter, Target::Users),
            ("groupFilter", &self.group_filter, Target::Roles),
        ] {
            let path = format!("{P}.{field}");
            match filter.as_deref().map(|f| CloudFilter::parse(f, &[])) {
                Some(Err(m)) => e.add(&path, m),
                Some(Ok(CloudFilter { query: Some(q), .. })) => {
                    if let Err(m) = query::parse(&q, target) {
                        e.add(&path, m);
                    }
                }
                _ => {}
            }
        }
        if let Some(suffix) = &self.email_suffix
            && !suffix.contains('@')
        {
            e.add(
                &format!("{P}.emailSuffix"),
                "must contain '@' (e.g. \"@corp.example\"): it is appended to usernames that are not emails",
            );
        }
    }

    async fn connect(&self, secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        Ok(Box::new(connect(self, secrets, RetryPolicy::default()).await?))
    }
}

/// The API host and the spec field it comes from: `apiUrl`, else
/// `https://<subdomain>.onelogin.com`, else `https://api.<region>.onelogin.com`.
pub fn api_base(s: &OneLoginSource) -> (String, String) {
    if let Some(url) = &s.api_url {
        return (normalize_url(url), format!("{P}.apiUrl"));
    }
    if let Some(sub) = &s.subdomain {
        return (
            format!("https://{sub}.onelogin.com"),
            format!("{P}.subdomain (or apiUrl)"),
        );
    }
    let region = match s.region {
        OneLoginRegion::Us => "us",
        OneLoginRegion::Eu => "eu",
    };
    (
        format!("https://api.{region}.onelogin.com"),
        format!("{P}.region (or subdomain / apiUrl)"),
    )
}

/// The reader of one OneLogin account.
pub struct OneLoginReader {
    client: Client,
    user_filter: CloudFilter,
    role_filter: CloudFilter,
    user_query: Vec<(String, String)>,
    role_query: Vec<(String, String)>,
    email_suffix: Option<String>,
}

impl std::fmt::Debug for OneLoginReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneLoginReader")
            .field("base", &self.client.base)
            .finish_non_exhaustive()
    }
}

/// Reads the credential named by the (validated) settings and builds the reader, with `retry`
/// for every call. Sends no request.
pub async fn connect(
    settings: &OneLoginSource,
    secrets: &dyn SecretStore,
    retry: RetryPolicy,
) -> Result<OneLoginReader, Error> {
    let (base, url_field) = api_base(settings);
    check_url(&base, &["https"], &["http"]).map_err(|m| Error::invalid(&url_field, m))?;
    let filter = |text: &Option<String>, field: &str| {
        CloudFilter::parse(text.as_deref().unwrap_or_default(), &[])
            .map_err(|m| Error::invalid(&format!("{P}.{field}"), m))
    };
    let user_filter = filter(&settings.user_filter, "userFilter")?;
    let role_filter = filter(&settings.group_filter, "groupFilter")?;
    let native = |f: &CloudFilter, target, field: &str| {
        query::parse(f.query.as_deref().unwrap_or_default(), target)
            .map_err(|m| Error::invalid(&format!("{P}.{field}"), m))
    };
    let user_query = native(&user_filter, Target::Users, "userFilter")?;
    let role_query = native(&role_filter, Target::Roles, "groupFilter")?;

    let r = &settings.credentials_secret_ref;
    let source = format!(
        "the API credential in Secret {:?} (keys {:?} and {:?})",
        r.name, r.client_id_key, r.client_secret_key
    );
    let client_id = secrets
        .get(&r.name, &r.client_id_key)
        .await?
        .expose()
        .trim()
        .to_string();
    let client_secret = SecretValue::new(secrets.get(&r.name, &r.client_secret_key).await?.expose().trim());
    if client_id.is_empty() || client_secret.expose().is_empty() {
        return Err(Error::SourceAuthFailed(format!(
            "{source} has an empty client id or client secret: put the values of a OneLogin API credential \
             (Developers → API Credentials) there"
        )));
    }
    let scrubber = Scrubber::new([client_secret.clone()]);
    for secret in client::basic_secrets(&client_id, &client_secret) {
        scrubber.add(secret);
    }
    let http = HttpClient::new(
        Side::Source(NAME),
        HttpOptions {
            request_timeout: retry.budget,
            retry,
            // OneLogin has no CA setting: its certificates are publicly trusted.
            ..HttpOptions::new(&url_field, "the system's trusted CAs (SSL_CERT_FILE)")
        },
        scrubber.clone(),
    )?;
    Ok(OneLoginReader {
        client: Client {
            http,
            tokens: TokenCache::new(client::TOKEN_RENEW_MARGIN, scrubber),
            base,
            url_field,
            credentials: Credentials {
                client_id,
                client_secret,
                source,
            },
        },
        email_suffix: settings.email_suffix.clone(),
        user_filter,
        role_filter,
        user_query,
        role_query,
    })
}

impl OneLoginReader {
    async fn read_inner(&self, request: &ReadRequest) -> Result<ReadResult, Error> {
        // Role members come from the users, so a group sync reads the users too.
        let read_users = request.users || request.groups;
        let user_set: Option<SetFilter> = self.user_filter.names().cloned();
        let mut users = Users::new(user_set, self.email_suffix.clone());
        let mut roles: Vec<WireRole> = Vec::new();
        let users_listing = Listing {
            operation: "list_users",
            path: USERS_PATH,
            items: "users",
            query: with_fields(USER_FIELDS, &self.user_query),
            filter_field: &format!("{P}.userFilter"),
        };
        let roles_listing = Listing {
            operation: "list_roles",
            path: ROLES_PATH,
            items: "roles",
            query: with_fields(ROLE_FIELDS, &self.role_query),
            filter_field: &format!("{P}.groupFilter"),
        };
        let read_user_list = async {
            if read_users {
                self.client
                    .list::<WireUser>(&users_listing, |page| users.add(page))
                    .await?;
            }
            Ok::<_, Error>(())
        };
        let read_role_list = async {
            if request.groups {
                self.client
                    .list::<WireRole>(&roles_listing, |page| roles.extend(page))
                    .await?;
            }
            Ok::<_, Error>(())
        };
        tokio::try_join!(read_user_list, read_role_list)?;

        if request.groups && !roles.is_empty() && !users.has_role_ids() {
            return Err(Error::SourceUnavailable(format!(
                "OneLogin at {} listed {} users without role_ids (asked for with fields={USER_FIELDS}), so \
                 role membership is unknown; nothing was sent",
                crate::net::host_of(&self.client.base),
                users.listed
            )));
        }
        let group_set = self.role_filter.names();
        let groups = if request.groups {
            users.groups(roles, group_set)
        } else {
            Vec::new()
        };
        Ok(ReadResult {
            directory: Directory {
                users: users.users,
                groups,
                complete: true,
                restrict_users_to_groups: group_set.is_some(),
            },
            ..ReadResult::default()
        })
    }
}

#[async_trait]
impl DirectorySource for OneLoginReader {
    async fn read(&mut self, request: &ReadRequest) -> Result<ReadResult, Error> {
        self.read_inner(request).await.map_err(|e| self.client.http.scrub(e))
    }
}

fn with_fields(fields: &str, native: &[(String, String)]) -> Vec<(String, String)> {
    let mut query = vec![("fields".to_string(), fields.to_string())];
    query.extend(native.iter().cloned());
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(s: &OneLoginSource) -> Vec<(String, String)> {
        let mut e = FieldErrors::default();
        s.validate(&mut e);
        e.into_vec().into_iter().map(|e| (e.path, e.message)).collect()
    }

    fn valid() -> OneLoginSource {
        let mut s = OneLoginSource::default();
        s.credentials_secret_ref.name = "onelogin".into();
        s.credentials_secret_ref.client_id_key = "client_id".into();
        s.credentials_secret_ref.client_secret_key = "client_secret".into();
        s
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(errors(&valid()), vec![]);
        let mut s = valid();
        s.subdomain = Some("acme corp".into());
        s.api_url = Some("http://onelogin.example".into());
        s.user_filter = Some("include:a@x.com|status=1".into());
        s.group_filter = Some("includes:Eng".into());
        s.email_suffix = Some("corp.example".into());
        let paths: Vec<String> = errors(&s).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "spec.source.oneLogin.subdomain",
                "spec.source.oneLogin.apiUrl",
                "spec.source.oneLogin.userFilter",
                "spec.source.oneLogin.groupFilter",
                "spec.source.oneLogin.emailSuffix",
            ]
        );
        let mut s = valid();
        s.user_filter = Some("exclude:a@x.com | directory_id=5&email=*@corp.example".into());
        s.group_filter = Some("|role_name=Eng*".into());
        s.email_suffix = Some("@corp.example".into());
        assert_eq!(errors(&s), vec![]);
    }

    #[test]
    fn the_api_host_comes_from_api_url_then_subdomain_then_region() {
        let mut s = valid();
        assert_eq!(api_base(&s).0, "https://api.us.onelogin.com");
        s.region = OneLoginRegion::Eu;
        assert_eq!(api_base(&s).0, "https://api.eu.onelogin.com");
        s.subdomain = Some("acme".into());
        assert_eq!(api_base(&s).0, "https://acme.onelogin.com");
        s.api_url = Some("http://127.0.0.1:8080/".into());
        assert_eq!(
            api_base(&s),
            (
                "http://127.0.0.1:8080".to_string(),
                "spec.source.oneLogin.apiUrl".to_string()
            )
        );
    }
}
