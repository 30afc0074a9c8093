//! Microsoft Entra ID through Microsoft Graph v1.0 (`providers.md` section 1).
//!
//! - [`auth`]: the app's credential (client secret, certificate assertion, or a Kubernetes
//!   ServiceAccount token for workload identity federation) and the token request, whose
//!   refusals (AADSTS codes) become messages that say what to fix.
//! - [`graph`]: Graph requests on [`crate::net`]: paging by `@odata.nextLink` exactly as
//!   returned (never to another host), JSON batching (`$batch`, 20 requests each, each answer with
//!   its own status and `Retry-After`), and Graph's error bodies (403 names the permission).
//! - [`read`]: what one read asks for and how answers become the model (email rule, filters,
//!   membership, the users delta round).
//!
//! A full read lists `/users` (`$select` of the four needed fields, `$top=999`) while it reads
//! `/groups` and then the direct members of the kept groups, 20 groups per `$batch` request and a
//! few batches at a time. Before listing the users it starts a users delta round at "now"
//! (`$deltatoken=latest`); the delta link goes into the cursor, and the next incremental read
//! follows it for changed and deleted users (groups and members are read in full every time:
//! Graph's users delta does not report membership). A delta link the server refuses (410,
//! `syncStateNotFound`) means a full read.

mod auth;
mod graph;
mod read;

use std::time::Duration;

use async_trait::async_trait;

use super::{DirectorySource, Provider, filter};
use crate::Error;
use crate::api::checks::FieldErrors;
use crate::api::{EntraCloud, EntraIdSource};
use crate::net::RetryPolicy;
use crate::secrets::SecretStore;

pub use read::{email_of, is_user_kept};

const NAME: &str = "entraId";
const P: &str = "spec.source.entraId";
/// Cursor key: the users delta link of the last successful read.
pub const CURSOR_USERS_DELTA: &str = "entraId.usersDelta";
/// The audience of a ServiceAccount token that Entra exchanges (workload identity federation).
pub const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Where Azure Workload Identity's webhook tells a pod its projected token is.
pub const FEDERATED_TOKEN_FILE_ENV: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// `userFilter` keywords besides `include:` / `exclude:`: users by (transitive) membership of
/// group object ids.
pub const USER_FILTER_KINDS: [&str; 1] = ["Group"];
/// `groupFilter` keywords besides `include:` / `exclude:`: groups by administrative unit ids.
pub const GROUP_FILTER_KINDS: [&str; 1] = ["AdministrativeUnit"];
/// Every Entra filter keyword kind.
pub const FILTER_KINDS: [&str; 2] = ["Group", "AdministrativeUnit"];

/// How a connected source talks to Graph (tests and benchmarks change it).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub retry: RetryPolicy,
    /// Read members through `$batch` (20 groups a request); off: one request per group page.
    pub batch: bool,
    /// Member requests (batches, or single requests without batching) in flight at once.
    pub parallel: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry: RetryPolicy::default(),
            batch: true,
            parallel: 4,
        }
    }
}

/// The login host and Graph root of a cloud (`providers.md` 1.1, national clouds).
pub fn cloud_endpoints(cloud: EntraCloud) -> (&'static str, &'static str) {
    match cloud {
        EntraCloud::Global => ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
        EntraCloud::USGov => ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
        EntraCloud::USGovDoD => ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
        EntraCloud::China => (
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
    }
}

/// Where tokens come from and where Graph is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// `<authority>/<tenant>/oauth2/v2.0/token`.
    pub token_url: String,
    /// `<graph root>/.default`.
    pub scope: String,
    /// `<graph root>/v1.0`, without a trailing slash.
    pub api: String,
}

impl Endpoints {
    pub fn of(spec: &EntraIdSource) -> Endpoints {
        let (login, graph) = cloud_endpoints(spec.cloud);
        let authority = spec.authority_url.as_deref().unwrap_or(login).trim_end_matches('/');
        let graph = spec.graph_url.as_deref().unwrap_or(graph).trim_end_matches('/');
        Endpoints {
            token_url: format!("{authority}/{}/oauth2/v2.0/token", spec.tenant_id.trim()),
            scope: format!("{graph}/.default"),
            api: format!("{graph}/v1.0"),
        }
    }
}

/// A tenant is a GUID or a verified domain: letters, digits, dots and dashes.
fn tenant_problem(tenant: &str) -> Option<&'static str> {
    let t = tenant.trim();
    if t.is_empty() {
        return Some("must not be empty");
    }
    if ["common", "organizations", "consumers"].contains(&t.to_ascii_lowercase().as_str()) {
        return Some(
            "must name one tenant (its id or a verified domain): common, organizations and consumers cannot issue app-only tokens",
        );
    }
    if !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
        return Some("must be the tenant id (a GUID) or a verified domain such as contoso.onmicrosoft.com");
    }
    None
}

/// A Kubernetes object name (DNS-1123 subdomain).
fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks an Entra filter: its keyword kinds, and no `|` query (Graph filters are not offered).
fn check_filter(e: &mut FieldErrors, path: &str, value: &Option<String>, kinds: &[&str]) {
    let Some(text) = value else { return };
    match filter::CloudFilter::parse(text, kinds) {
        Err(m) => e.add(path, m),
        Ok(f) if f.query.is_some() || text.contains('|') => e.add(
            path,
            "Entra filters take no \"| query\" part: use include:/exclude: lists (as Directory Connector)",
        ),
        Ok(_) => {}
    }
}

#[async_trait]
impl Provider for EntraIdSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, e: &mut FieldErrors) {
        if let Some(problem) = tenant_problem(&self.tenant_id) {
            e.add(&format!("{P}.tenantId"), problem);
        }
        match (&self.credentials_secret_ref, &self.workload_identity) {
            (Some(_), Some(_)) | (None, None) => e.add(
                P,
                "set exactly one of credentialsSecretRef (a client secret or a certificate) and \
                 workloadIdentity (a ServiceAccount token, no secret)",
            ),
            _ => {}
        }
        if let Some(c) = &self.credentials_secret_ref {
            let p = format!("{P}.credentialsSecretRef");
            e.non_empty(&format!("{p}.name"), &c.name);
            if c.certificate_key.is_some() != c.private_key_key.is_some() {
                e.add(
                    &p,
                    "certificateKey and privateKeyKey go together (a certificate credential); leave both out \
                     for a client secret",
                );
            }
        }
        if let Some(w) = &self.workload_identity {
            let p = format!("{P}.workloadIdentity");
            e.non_empty(&format!("{p}.clientId"), &w.client_id);
            match (&w.service_account_name, &w.federated_token_file) {
                (Some(_), Some(_)) => e.add(&p, "set serviceAccountName or federatedTokenFile, not both"),
                (Some(name), None) if !is_object_name(name) => e.add(
                    &format!("{p}.serviceAccountName"),
                    "must be a ServiceAccount name (lower-case letters, digits, '-' and '.')",
                ),
                (None, Some(file)) if file.trim().is_empty() => {
                    e.add(&format!("{p}.federatedTokenFile"), "must not be empty")
                }
                _ => {}
            }
        }
        e.optional_https_url(&format!("{P}.authorityUrl"), &self.authority_url);
        e.optional_https_url(&format!("{P}.graphUrl"), &self.graph_url);
        check_filter(e, &format!("{P}.userFilter"), &self.user_filter, &USER_FILTER_KINDS);
        check_filter(e, &format!("{P}.groupFilter"), &self.group_filter, &GROUP_FILTER_KINDS);
    }

    async fn connect(&self, secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        Ok(Box::new(
            EntraDirectory::connect(self, secrets, Options::default()).await?,
        ))
    }
}

/// A connected Entra ID tenant.
pub struct EntraDirectory {
    graph: graph::Graph,
    settings: read::Settings,
}

impl std::fmt::Debug for EntraDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraDirectory").finish_non_exhaustive()
    }
}

impl EntraDirectory {
    /// Reads the credentials (Secrets, the token file, or a ServiceAccount token from the
    /// store) and prepares the client; sends nothing to Microsoft yet.
    pub async fn connect(
        spec: &EntraIdSource,
        secrets: &dyn SecretStore,
        options: Options,
    ) -> Result<EntraDirectory, Error> {
        let endpoints = Endpoints::of(spec);
        let auth = auth::Auth::resolve(spec, &endpoints, secrets).await?;
        let settings = read::Settings::of(spec, &options)?;
        let graph = graph::Graph::new(auth, endpoints, &options)?;
        Ok(EntraDirectory { graph, settings })
    }
}

#[async_trait]
impl DirectorySource for EntraDirectory {
    async fn read(&mut self, request: &super::ReadRequest) -> Result<super::ReadResult, Error> {
        read::read(&self.graph, &self.settings, request).await
    }
}

/// Token renewal margin (Entra tokens live 60–90 minutes).
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EntraCredentialsRef, EntraWorkloadIdentity};

    fn paths(s: &EntraIdSource) -> Vec<String> {
        let mut e = FieldErrors::default();
        s.validate(&mut e);
        e.into_vec().into_iter().map(|e| e.path).collect()
    }

    fn secret_spec() -> EntraIdSource {
        EntraIdSource {
            tenant_id: "contoso.onmicrosoft.com".into(),
            credentials_secret_ref: Some(EntraCredentialsRef {
                name: "entra".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn settings_are_checked() {
        let mut s = secret_spec();
        assert!(paths(&s).is_empty());
        s.credentials_secret_ref.as_mut().unwrap().certificate_key = Some("tls.crt".into());
        s.graph_url = Some("http://graph.example".into());
        s.user_filter = Some("includeGroup:1234".into());
        s.group_filter = Some("includeRole:x".into());
        assert_eq!(
            paths(&s),
            [
                "spec.source.entraId.credentialsSecretRef",
                "spec.source.entraId.graphUrl",
                "spec.source.entraId.groupFilter"
            ]
        );
    }

    #[test]
    fn exactly_one_credential_kind() {
        let mut s = secret_spec();
        s.workload_identity = Some(EntraWorkloadIdentity {
            client_id: "app".into(),
            ..Default::default()
        });
        assert_eq!(paths(&s), ["spec.source.entraId"]);
        s.credentials_secret_ref = None;
        assert!(paths(&s).is_empty(), "the token file from the environment");
        let w = s.workload_identity.as_mut().unwrap();
        w.service_account_name = Some("dirsync-entra".into());
        assert!(paths(&s).is_empty());
        let w = s.workload_identity.as_mut().unwrap();
        w.federated_token_file = Some("/var/run/token".into());
        assert_eq!(paths(&s), ["spec.source.entraId.workloadIdentity"]);
        let w = s.workload_identity.as_mut().unwrap();
        w.federated_token_file = None;
        w.service_account_name = Some("Not_A_Name".into());
        w.client_id = " ".into();
        assert_eq!(
            paths(&s),
            [
                "spec.source.entraId.workloadIdentity.clientId",
                "spec.source.entraId.workloadIdentity.serviceAccountName"
            ]
        );
        s.workload_identity = None;
        assert_eq!(paths(&s), ["spec.source.entraId"]);
    }

    #[test]
    fn tenants_and_filters() {
        let mut s = secret_spec();
        for bad in ["", "common", "Organizations", "a/b", "x?y"] {
            s.tenant_id = bad.into();
            assert_eq!(paths(&s), ["spec.source.entraId.tenantId"], "{bad:?}");
        }
        s.tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47".into();
        // Group ids filter users; administrative units filter groups; no native query.
        s.user_filter = Some("includeAdministrativeUnit:x".into());
        s.group_filter = Some("excludeGroup:x".into());
        assert_eq!(
            paths(&s),
            ["spec.source.entraId.userFilter", "spec.source.entraId.groupFilter"]
        );
        s.user_filter = Some("include:a@x.com|accountEnabled eq true".into());
        s.group_filter = Some("excludeadministrativeunit:x".into());
        assert_eq!(paths(&s), ["spec.source.entraId.userFilter"]);
    }

    #[test]
    fn each_cloud_has_its_own_hosts_and_overrides_win() {
        let mut s = secret_spec();
        let cases = [
            (
                EntraCloud::Global,
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            (
                EntraCloud::USGov,
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            (
                EntraCloud::USGovDoD,
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            (
                EntraCloud::China,
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        ];
        for (cloud, login, graph) in cases {
            s.cloud = cloud;
            let e = Endpoints::of(&s);
            assert_eq!(
                e.token_url,
                format!("{login}/contoso.onmicrosoft.com/oauth2/v2.0/token")
            );
            assert_eq!(e.scope, format!("{graph}/.default"));
            assert_eq!(e.api, format!("{graph}/v1.0"));
        }
        s.authority_url = Some("http://127.0.0.1:8080/login/".into());
        s.graph_url = Some("http://127.0.0.1:8081/".into());
        let e = Endpoints::of(&s);
        assert_eq!(
            e.token_url,
            "http://127.0.0.1:8080/login/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(e.scope, "http://127.0.0.1:8081/.default");
        assert_eq!(e.api, "http://127.0.0.1:8081/v1.0");
    }
}
