use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DirectorySyncStatus, SourceSpec};

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
    /// The directory to read: exactly one of `ldap`, `entraId`, `googleWorkspace`, `okta`, `oneLogin`.
    // One key per provider in YAML and JSON alike (YAML would otherwise want a `!tag`).
    #[serde(
        serialize_with = "serde_yaml_ng::with::singleton_map::serialize",
        deserialize_with = "super::source::deserialize_source"
    )]
    #[schemars(with = "SourceSpec")]
    pub source: SourceSpec,
    /// What to sync and how.
    #[serde(default)]
    pub sync: SyncOptions,
    /// Beyond Directory Connector: access for synced directory groups to existing Bitwarden
    /// collections (official server only). Access given by hand, and groups this DirectorySync
    /// does not sync, are never touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub collections: Vec<CollectionAccess>,
    /// `Apply` sends changes to Bitwarden; `DryRun` only computes and reports them.
    #[serde(default)]
    pub mode: Mode,
    /// No syncs run while true.
    #[serde(default)]
    pub suspend: bool,
}

/// One existing collection and the synced directory groups that get access to it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.id) != has(self.externalId)", "message": "set exactly one of id or externalId"},
    {"rule": "!(has(self.manage) && self.manage && ((has(self.readOnly) && self.readOnly) || (has(self.hidePasswords) && self.hidePasswords)))",
     "message": "manage excludes readOnly and hidePasswords"}
]))]
pub struct CollectionAccess {
    /// The collection's id (a UUID: the web vault shows it in the address when the collection
    /// is open, `...&collectionId=<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Or the collection's external id, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Synced directory groups, by name as synced (the name Bitwarden shows for them).
    #[schemars(length(min = 1, max = 200))]
    pub groups: Vec<String>,
    /// The groups can see the items but not change them.
    #[serde(default)]
    pub read_only: bool,
    /// The groups can use the passwords but not see them.
    #[serde(default)]
    pub hide_passwords: bool,
    /// The groups can manage the collection (excludes `readOnly` and `hidePasswords`).
    #[serde(default)]
    pub manage: bool,
}

impl CollectionAccess {
    /// How people know the collection: `id 9f2c...` or `externalId sales`.
    pub fn label(&self) -> String {
        match (&self.id, &self.external_id) {
            (Some(id), _) => id.clone(),
            (None, Some(ext)) => format!("externalId {ext}"),
            (None, None) => "(no id)".to_string(),
        }
    }

    /// The flags as people read them: `readOnly, hidePasswords`, `manage`, or `edit`.
    pub fn flags(&self) -> String {
        describe_flags(self.read_only, self.hide_passwords, self.manage)
    }
}

/// Bitwarden's access flags in words (`edit` when none is set).
pub fn describe_flags(read_only: bool, hide_passwords: bool, manage: bool) -> String {
    let names: Vec<&str> = [
        (read_only, "readOnly"),
        (hide_passwords, "hidePasswords"),
        (manage, "manage"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if names.is_empty() {
        "edit".to_string()
    } else {
        names.join(", ")
    }
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
    /// Beyond Directory Connector: a member that `removeOutOfScope` or `removeDisabled` would
    /// remove is removed only once it has been gone (or disabled) for this long, a duration
    /// (`72h`); until then it is listed in `status.pendingRemovals`. Users the directory
    /// reports deleted are removed at once. Off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal_grace_period: Option<String>,
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
            removal_grace_period: None,
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

pub(super) fn default_client_id_key() -> String {
    "client_id".into()
}
pub(super) fn default_client_secret_key() -> String {
    "client_secret".into()
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
