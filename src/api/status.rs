use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator last observed and did. Written only through the status subresource.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySyncStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (summary), `Synced`, `SourceReachable`, `BitwardenReachable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The configured provider (`ldap`, `entraId`, `googleWorkspace`, `okta`, `oneLogin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Start of the last sync attempt (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_sync_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_successful_sync_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub next_sync_time: Option<String>,
    /// Users read from the directory by the last successful read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<UserCounts>,
    /// Groups read from the directory by the last successful read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<u64>,
    /// What the last sync sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_changes: Option<Changes>,
    /// DryRun: what a sync would do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanSummary>,
    /// Hash of the last request sent successfully (skip-unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_hash: Option<String>,
    /// Active users of the last successful sync: the baseline of the shrink guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced_active_users: Option<u64>,
    /// Provider state for incremental reads (delta links, last-read times).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursor: BTreeMap<String, String>,
    /// Settings that weaken security and are on (e.g. TLS verification off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The last `dirsync.dev/sync-now` annotation value the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_now_handled: Option<String>,
    /// Hash of the resourceVersions of the referenced Secrets at the last sync: a Secret change
    /// triggers a new sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_hash: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCounts {
    pub enabled: u64,
    pub disabled: u64,
    pub deleted: u64,
}

/// Counts of what a sync sent (or, in a plan, would send).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// Members in the request that the organization did not have yet (all new ids when the
    /// organization's members are not known).
    pub invited: u64,
    /// Members the request removes.
    pub removed: u64,
    pub groups_created: u64,
    pub groups_updated: u64,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    /// Active members in the request.
    pub members: u64,
    /// Members sent as deleted, plus out-of-scope members.
    pub removals: u64,
    pub groups: u64,
    /// Number of import requests (more than one with `largeImport` batching).
    pub requests: u64,
    /// Hash of the planned request.
    pub hash: String,
    /// A few emails and group names, for a quick look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_members: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_removals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_groups: Vec<String>,
}
