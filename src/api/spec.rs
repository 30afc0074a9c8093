use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DirectorySyncStatus;

/// Keeps a Bitwarden organization's members and groups in step with one directory.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "dirsync.dev",
    version = "v1alpha1",
    kind = "DirectorySync",
    plural = "directorysyncs",
    singular = "directorysync",
    shortname = "dsync",
    category = "dirsync",
    namespaced,
    status = "DirectorySyncStatus",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".status.source"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Users","type":"integer","jsonPath":".status.users.enabled"}"#,
    printcolumn = r#"{"name":"Groups","type":"integer","jsonPath":".status.groups"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.lastSyncTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySyncSpec {
    /// Where the Bitwarden organization lives and how to authenticate to it.
    pub bitwarden: BitwardenSpec,
    /// The directory to read: exactly one of the fields must be set.
    pub source: SourceSpec,
    /// What to sync and how.
    #[serde(default)]
    pub sync: SyncOptions,
    /// `Apply` sends changes to Bitwarden; `DryRun` only computes and reports them.
    #[serde(default)]
    pub mode: Mode,
    /// No syncs run while true.
    #[serde(default)]
    pub suspend: bool,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Mode {
    #[default]
    Apply,
    DryRun,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Region {
    #[default]
    US,
    EU,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.region) && has(self.serverUrl))", "message": "set either region or serverUrl, not both"}
]))]
pub struct BitwardenSpec {
    /// Bitwarden cloud region, used when `serverUrl` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = super::schema::no_null_in_enum)]
    pub region: Option<Region>,
    /// Base URL of a self-hosted server; the API is at `<serverUrl>/api` and the identity
    /// service at `<serverUrl>/identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// Explicit API URL (overrides the derived one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Explicit identity URL (overrides the derived one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_url: Option<String>,
    /// The organization API key (Admin Console → Settings → Organization info → API key).
    pub api_key_secret_ref: ApiKeySecretRef,
    /// A private CA bundle (PEM) that signs a self-hosted server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// The longest one call to Bitwarden may take, retries included (a duration, default 2m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySecretRef {
    /// Name of a Secret in the resource's namespace.
    pub name: String,
    /// Key holding the client id (`organization.<uuid>`).
    #[serde(default = "default_client_id_key")]
    pub client_id_key: String,
    /// Key holding the client secret.
    #[serde(default = "default_client_secret_key")]
    pub client_secret_key: String,
}

/// One key of a Secret in the resource's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// A Secret in the resource's namespace (keys fixed by convention).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub name: String,
}

/// Provider names, in the order of [`SourceSpec`]'s fields (status, metrics, logs).
pub const PROVIDERS: [&str; 5] = ["ldap", "entraId", "googleWorkspace", "okta", "oneLogin"];

/// Exactly one source must be set.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["ldap"]},
    {"required": ["entraId"]},
    {"required": ["googleWorkspace"]},
    {"required": ["okta"]},
    {"required": ["oneLogin"]}
]))]
pub struct SourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra_id: Option<EntraIdSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_workspace: Option<GoogleWorkspaceSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub okta: Option<OktaSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_login: Option<OneLoginSource>,
}

impl SourceSpec {
    /// The provider names of the sources that are set, in field order.
    pub fn configured(&self) -> Vec<&'static str> {
        let set = [
            self.ldap.is_some(),
            self.entra_id.is_some(),
            self.google_workspace.is_some(),
            self.okta.is_some(),
            self.one_login.is_some(),
        ];
        PROVIDERS
            .into_iter()
            .zip(set)
            .filter_map(|(name, on)| on.then_some(name))
            .collect()
    }

    /// The provider name used in status, metrics and logs (`ldap`, `entraId`, ...).
    pub fn provider(&self) -> &'static str {
        self.configured().first().copied().unwrap_or("none")
    }
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
    /// Allow a simple bind over plain `ldap://` without StartTLS to a non-loopback host. The
    /// password then crosses the network in clear text.
    #[serde(default)]
    pub allow_insecure_bind: bool,
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

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OneLoginRegion {
    #[default]
    Us,
    Eu,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OneLoginSource {
    #[serde(default)]
    pub region: OneLoginRegion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    pub credentials_secret_ref: ClientCredentialsRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_suffix: Option<String>,
    /// Override of `https://<subdomain or api.region>.onelogin.com`.
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

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "duration(self.interval) >= duration('5m')", "message": "interval must be at least 5m"}
]))]
pub struct SyncOptions {
    /// Time between syncs, as a duration (`1h`, `30m`); at least `5m`.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,
    #[serde(default = "default_true")]
    pub users: bool,
    #[serde(default = "default_true")]
    pub groups: bool,
    /// Disabled directory users are removed from the organization.
    #[serde(default)]
    pub remove_disabled: bool,
    /// Directory Connector's "remove and re-add": members with an external id that are not in
    /// this sync are removed. Dangerous; kept for parity.
    #[serde(default)]
    pub overwrite_existing: bool,
    /// Allow more than 2000 users or groups; sends them in batches.
    #[serde(default)]
    pub large_import: bool,
    /// Bitwarden sends invitation emails to new members.
    #[serde(default = "default_true")]
    pub invite_users: bool,
    /// Remove synced members that left the directory scope (reads the organization's members).
    #[serde(default)]
    pub remove_out_of_scope: bool,
    #[serde(default)]
    pub guard: GuardSpec,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            interval: default_interval(),
            users: true,
            groups: true,
            remove_disabled: false,
            overwrite_existing: false,
            large_import: false,
            invite_users: true,
            remove_out_of_scope: false,
            guard: GuardSpec::default(),
        }
    }
}

/// Mass-removal protection: a sync that would remove more than `maxRemovals` members and more
/// than `maxRemovalPercent` percent of the organization is held back.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardSpec {
    #[serde(default = "default_max_removals")]
    pub max_removals: u32,
    #[serde(default = "default_max_removal_percent")]
    #[schemars(range(max = 100))]
    pub max_removal_percent: u32,
}

impl Default for GuardSpec {
    fn default() -> Self {
        GuardSpec {
            max_removals: default_max_removals(),
            max_removal_percent: default_max_removal_percent(),
        }
    }
}

fn default_client_id_key() -> String {
    "client_id".into()
}
fn default_client_secret_key() -> String {
    "client_secret".into()
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
fn default_interval() -> String {
    "1h".into()
}
fn default_true() -> bool {
    true
}
fn default_max_removals() -> u32 {
    10
}
fn default_max_removal_percent() -> u32 {
    5
}
