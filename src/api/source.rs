//! The directory a DirectorySync reads: exactly one provider, each with its own settings. The
//! behaviour of each provider (validation, client, reader) lives in its folder under
//! `src/source/`.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::spec::{SecretKeyRef, SecretRef, default_client_id_key, default_client_secret_key};

/// The directory to read: exactly one key (`ldap`, `entraId`, `googleWorkspace`, `okta`,
/// `oneLogin`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// One spec per resource: its size does not matter, and plain variants read naturally.
#[allow(clippy::large_enum_variant)]
pub enum SourceSpec {
    /// LDAP or Active Directory.
    Ldap(LdapSource),
    /// Microsoft Entra ID (Microsoft Graph).
    EntraId(EntraIdSource),
    /// Google Workspace (Admin SDK Directory API).
    GoogleWorkspace(GoogleWorkspaceSource),
    Okta(OktaSource),
    OneLogin(OneLoginSource),
}

/// The keys under `spec.source`, one per [`SourceSpec`] variant.
pub const SOURCE_KEYS: [&str; 5] = ["ldap", "entraId", "googleWorkspace", "okta", "oneLogin"];

/// Reads `spec.source` as a map with exactly one provider key, in any format, saying clearly
/// what is wrong when there are none or several (paths below the key are kept for errors).
pub(super) fn deserialize_source<'de, D: Deserializer<'de>>(d: D) -> Result<SourceSpec, D::Error> {
    struct OneKey;
    impl<'de> Visitor<'de> for OneKey {
        type Value = SourceSpec;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a mapping with one of {}", SOURCE_KEYS.join(", "))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SourceSpec, A::Error> {
            let mut keys: Vec<String> = Vec::new();
            let mut source = None;
            while let Some(key) = map.next_key::<String>()? {
                if !keys.is_empty() {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                    continue;
                }
                source = Some(match key.as_str() {
                    "ldap" => SourceSpec::Ldap(map.next_value()?),
                    "entraId" => SourceSpec::EntraId(map.next_value()?),
                    "googleWorkspace" => SourceSpec::GoogleWorkspace(map.next_value()?),
                    "okta" => SourceSpec::Okta(map.next_value()?),
                    "oneLogin" => SourceSpec::OneLogin(map.next_value()?),
                    other => return Err(A::Error::unknown_variant(other, &SOURCE_KEYS)),
                });
                keys.push(key);
            }
            match (source, keys.len()) {
                (Some(source), 1) => Ok(source),
                (_, 0) => Err(A::Error::custom(format!(
                    "set exactly one of {}",
                    SOURCE_KEYS.join(", ")
                ))),
                _ => Err(A::Error::custom(format!(
                    "set exactly one source, found {}",
                    keys.join(" and ")
                ))),
            }
        }
    }
    d.deserialize_map(OneKey)
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.url.startsWith('ldaps://') || self.url.startsWith('ldap://')", "message": "url must start with ldaps:// or ldap://"},
    {"rule": "!(self.url.startsWith('ldaps://') && self.startTls)", "message": "startTls is for ldap:// URLs"}
]))]
pub struct LdapSource {
    /// `ldaps://host:636` or `ldap://host:389`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub start_tls: bool,
    /// Allow plain `ldap://` without StartTLS to a host that is not loopback. Everything then
    /// crosses the network in clear text and unauthenticated: the bind password, and the
    /// directory's answers, which decide who is invited to the organization.
    #[serde(default)]
    pub allow_cleartext: bool,
    /// Active Directory semantics and defaults.
    #[serde(default)]
    pub active_directory: bool,
    /// The bind DN (or user principal) and password; anonymous bind when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_secret_ref: Option<BindSecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<LdapTls>,
    /// Base DN of the directory, e.g. `dc=corp,dc=example`.
    pub root_path: String,
    /// Simple Paged Results page size.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 10000))]
    pub page_size: u32,
    /// Connect and per-operation timeout, as a duration (`30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default)]
    pub users: LdapUsers,
    #[serde(default)]
    pub groups: LdapGroups,
    /// Attribute holding the entry's last change time; enables incremental reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_date_attribute: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindSecretRef {
    pub name: String,
    #[serde(default = "default_username_key")]
    pub username_key: String,
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapTls {
    /// CA bundle (PEM) that signs the server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) presented as client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret_ref: Option<SecretRef>,
    /// Do not verify the server certificate (reported in status while on).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapUsers {
    /// Search base relative to `rootPath` (e.g. `ou=people`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_class: Option<String>,
    /// Extra LDAP filter, e.g. `(department=Sales)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_attribute: Option<String>,
    /// With `emailSuffix`: users without an email get `<prefix value><suffix>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_prefix_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_suffix: Option<String>,
    /// Attribute used as external id instead of the DN (e.g. `entryUUID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_attribute: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapGroups {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_attribute: Option<String>,
}

/// The Microsoft cloud of the tenant: each has its own login host and Graph root.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum EntraCloud {
    /// `login.microsoftonline.com`, `graph.microsoft.com` (also Microsoft 365 GCC).
    #[default]
    Global,
    /// US Government L4 (GCC High): `login.microsoftonline.us`, `graph.microsoft.us`.
    USGov,
    /// US Government L5 (DoD): `login.microsoftonline.us`, `dod-graph.microsoft.us`.
    USGovDoD,
    /// China (21Vianet): `login.chinacloudapi.cn`, `microsoftgraph.chinacloudapi.cn`.
    China,
}

/// Microsoft Entra ID through Microsoft Graph, as an app registration with the application
/// permissions `User.Read.All` and `GroupMember.Read.All` (admin consent granted). Exactly one
/// credential: a client secret or a certificate in `credentialsSecretRef`, or a Kubernetes
/// ServiceAccount token through `workloadIdentity` (no secret at all).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.credentialsSecretRef) != has(self.workloadIdentity)", "message": "set exactly one of credentialsSecretRef (client secret or certificate) and workloadIdentity"}
]))]
pub struct EntraIdSource {
    /// The tenant: its id (a GUID) or a verified domain such as `contoso.onmicrosoft.com`.
    pub tenant_id: String,
    #[serde(default)]
    pub cloud: EntraCloud,
    /// The app's client id and its client secret or certificate, in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<EntraCredentialsRef>,
    /// Keyless: the app trusts a Kubernetes ServiceAccount token (a federated identity
    /// credential with audience `api://AzureADTokenExchange`) instead of a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<EntraWorkloadIdentity>,
    /// Users: `include:` / `exclude:` emails, or `includeGroup:` / `excludeGroup:` group object
    /// ids (their transitive members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// Groups: `include:` / `exclude:` names, or `includeAdministrativeUnit:` /
    /// `excludeAdministrativeUnit:` administrative unit ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// Override of the login endpoint (token at `<authorityUrl>/<tenantId>/oauth2/v2.0/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_url: Option<String>,
    /// Override of the Graph endpoint (API at `<graphUrl>/v1.0/...`, scope `<graphUrl>/.default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_url: Option<String>,
}

/// A client secret (the default) or a certificate (`certificateKey` and `privateKeyKey`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntraCredentialsRef {
    pub name: String,
    /// Key of the application (client) id.
    #[serde(default = "default_client_id_key")]
    pub client_id_key: String,
    /// Key of the client secret's value (not its id); unused with a certificate.
    #[serde(default = "default_client_secret_key")]
    pub client_secret_key: String,
    /// Key of the PEM certificate uploaded to the app registration, for certificate
    /// credentials instead of a client secret (with `privateKeyKey`; both may name one key
    /// holding the certificate and the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_key: Option<String>,
    /// Key of the certificate's RSA private key (PEM, PKCS#8 or PKCS#1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_key: Option<String>,
}

/// Workload identity federation: the app registration has a federated identity credential for
/// the ServiceAccount token (issuer: the cluster's service-account issuer, subject
/// `system:serviceaccount:<namespace>:<name>`, audience `api://AzureADTokenExchange`). The token
/// comes from a file (`federatedTokenFile`, by default `$AZURE_FEDERATED_TOKEN_FILE` as Azure
/// Workload Identity injects it), or the controller requests it for `serviceAccountName`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.serviceAccountName) && has(self.federatedTokenFile))", "message": "set serviceAccountName or federatedTokenFile, not both"}
]))]
pub struct EntraWorkloadIdentity {
    /// The application (client) id of the app registration (not a secret).
    pub client_id: String,
    /// The controller requests a token for this ServiceAccount, in the DirectorySync's
    /// namespace (TokenRequest API; the chart's `rbac.serviceAccountTokens` grants it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Path of a projected ServiceAccount token file, read before each token request. Default
    /// (when `serviceAccountName` is not set either): `$AZURE_FEDERATED_TOKEN_FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_token_file: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoogleWorkspaceSource {
    /// The domain whose users and groups are read (`domain=` on each list). When `customer` is
    /// set too, the domain still decides, as in Directory Connector: set only `customer` to read
    /// every domain of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The customer id (Admin console → Account → Account settings) or `my_customer`: reads
    /// every domain of the account. Used when `domain` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The admin user the service account impersonates (domain-wide delegation); it needs
    /// read access to users and groups.
    pub admin_email: String,
    /// The service account's JSON key file, whole, in one Secret key.
    pub service_account_key_secret_ref: SecretKeyRef,
    /// `include:a,b` or `exclude:a,b` (users by primary email), optionally followed by `|` and
    /// a Directory API user query (`orgUnitPath='/Staff'`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// `include:a,b` or `exclude:a,b` (groups by name), optionally followed by `|` and a
    /// Directory API group query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// Override of `https://admin.googleapis.com` (the API is at
    /// `<apiUrl>/admin/directory/v1`). The token endpoint is the key file's `token_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// Okta: the API at `<orgUrl>/api/v1`, with an API token or an OAuth 2.0 service app (exactly
/// one of `tokenSecretRef` and `oauth`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.tokenSecretRef) != has(self.oauth)", "message": "set exactly one of tokenSecretRef (an API token) and oauth (a service app)"}
]))]
pub struct OktaSource {
    /// `https://<org>.okta.com` (not the `-admin` URL); the API is at `<orgUrl>/api/v1`.
    pub org_url: String,
    /// An API token (`Authorization: SSWS`), as Directory Connector uses. It acts with the
    /// permissions of the admin who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyRef>,
    /// An OAuth 2.0 service app (Okta's recommended way): a private-key JWT client assertion
    /// for a token with the `okta.users.read` and `okta.groups.read` scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OktaOAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// The Okta list parameter that takes the query after `|` in `userFilter`: `filter` (the
    /// default, as Directory Connector: `status`, `lastUpdated`, `id`, `profile.login`,
    /// `profile.email`, `profile.firstName`, `profile.lastName`) or `search` (any profile
    /// attribute, e.g. `profile.department`; answered from an eventually consistent index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::no_null_in_enum)]
    pub user_query_parameter: Option<OktaUserQuery>,
}

/// The Okta list parameter of a native user query.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OktaUserQuery {
    #[default]
    Filter,
    Search,
}

/// An Okta API Services app that signs in with a private key (`private_key_jwt`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OktaOAuth {
    /// The app's client id (`0oa...`).
    pub client_id: String,
    /// The app's private key in PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE
    /// KEY`; RSA signs RS256, a P-256 key ES256). Its public key is registered with the app.
    pub private_key_secret_ref: SecretKeyRef,
    /// The key's `kid` as registered with the app (Okta picks the key by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// The OneLogin region of the legacy API hosts `https://api.<region>.onelogin.com`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OneLoginRegion {
    #[default]
    Us,
    Eu,
}

/// OneLogin (API v2): users, and roles as groups. Every read is a full read (OneLogin reports no
/// deletions: use `sync.removeOutOfScope` to remove members who left).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OneLoginSource {
    /// API host `https://api.<region>.onelogin.com` when neither `subdomain` nor `apiUrl` is set.
    #[serde(default)]
    pub region: OneLoginRegion,
    /// Your OneLogin subdomain: API host `https://<subdomain>.onelogin.com` (wins over `region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// A OneLogin API credential with the "Read users" scope (Developers → API Credentials).
    pub credentials_secret_ref: ClientCredentialsRef,
    /// `include:a@x,b@x` or `exclude:...` (users by email), optionally followed by `|` and query
    /// parameters of the user list, e.g. `|directory_id=123&email=*@corp.example`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// `include:Role A,Role B` or `exclude:...` (roles by name), optionally followed by `|` and
    /// query parameters of the role list (`role_name`, `app_id`, `app_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// Appended to the username of users whose email and username are not addresses
    /// (`@corp.example`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_suffix: Option<String>,
    /// Override of the API host (token at `<apiUrl>/auth/oauth2/v2/token`, API at
    /// `<apiUrl>/api/2/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentialsRef {
    pub name: String,
    #[serde(default = "default_client_id_key")]
    pub client_id_key: String,
    #[serde(default = "default_client_secret_key")]
    pub client_secret_key: String,
}

fn default_username_key() -> String {
    "username".into()
}
fn default_password_key() -> String {
    "password".into()
}
fn default_page_size() -> u32 {
    1000
}
