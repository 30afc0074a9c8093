//! The directory a DirectorySync reads: exactly one provider, each with its own settings. The
//! behaviour of each provider (validation, client, reader) lives in `crate::source::<provider>`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum EntraCloud {
    #[default]
    Global,
    USGov,
    USGovDoD,
    China,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntraIdSource {
    pub tenant_id: String,
    #[serde(default)]
    pub cloud: EntraCloud,
    pub credentials_secret_ref: EntraCredentialsRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// Override of the login endpoint (token at `<authorityUrl>/<tenantId>/oauth2/v2.0/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_url: Option<String>,
    /// Override of the Graph endpoint (API at `<graphUrl>/v1.0/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_url: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntraCredentialsRef {
    pub name: String,
    #[serde(default = "default_client_id_key")]
    pub client_id_key: String,
    #[serde(default = "default_client_secret_key")]
    pub client_secret_key: String,
    /// Key of a PEM certificate, for certificate credentials instead of a client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_key: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoogleWorkspaceSource {
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The admin user the service account impersonates (domain-wide delegation).
    pub admin_email: String,
    pub service_account_key_secret_ref: SecretKeyRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// Override of `https://admin.googleapis.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OktaSource {
    /// `https://<org>.okta.com`; the API is at `<orgUrl>/api/v1`.
    pub org_url: String,
    pub token_secret_ref: SecretKeyRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
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
