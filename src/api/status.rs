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
    /// `sync.removalGracePeriod`: members that would be removed, and when they will be if they
    /// stay gone (or disabled). Kept between syncs; the guard's limits count them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_removals: Vec<PendingRemoval>,
    /// Onboarding of the members this DirectorySync syncs, by Bitwarden status (official server:
    /// counted from the member list after each sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MemberCounts>,
    /// What `spec.collections` did, one entry per collection (and per collection whose access
    /// this DirectorySync still has to remove). Kept between syncs: `granted` is how a later
    /// sync knows which access it gave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<CollectionStatus>,
    /// Hash of `spec.collections` at the last successful sync: a change forces a complete read,
    /// so that every group name is looked up among all synced groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections_hash: Option<String>,
    /// Things to look at: settings that weaken security and are on (e.g. TLS verification off),
    /// and `spec.collections` entries that could not be applied as written.
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

/// A member held back from removal by `sync.removalGracePeriod`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingRemoval {
    pub external_id: String,
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub email: String,
    /// `Disabled` (the directory disables the user, with `removeDisabled`) or `OutOfScope`
    /// (the user left the directory's scope, with `removeOutOfScope`).
    pub cause: PendingCause,
    /// When a read first found the member gone (or disabled), RFC 3339.
    #[schemars(extend("format" = "date-time"))]
    pub since: String,
    /// When the member will be removed if still gone (or disabled), RFC 3339.
    #[schemars(extend("format" = "date-time"))]
    pub remove_at: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PendingCause {
    #[default]
    Disabled,
    OutOfScope,
}

/// Members this DirectorySync syncs, by their status in the organization.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberCounts {
    /// Invitation sent, not accepted yet.
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub invited: u64,
    /// Joined, waiting for an admin to confirm them (a sync cannot: only someone holding the
    /// organization key can).
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub accepted: u64,
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub confirmed: u64,
    /// Access suspended.
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub revoked: u64,
    /// Provisioned without an invitation (`inviteUsers: false`).
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub staged: u64,
}

impl MemberCounts {
    /// `45 invited, 23 accepted, 18 confirmed, 14 revoked` (and staged when there are any).
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} invited, {} accepted, {} confirmed, {} revoked",
            self.invited, self.accepted, self.confirmed, self.revoked
        );
        if self.staged > 0 {
            s.push_str(&format!(", {} staged", self.staged));
        }
        s
    }
}

/// What `spec.collections` did to one collection.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionStatus {
    /// The collection's id (absent when an `externalId` named no collection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Synced groups that have access through this DirectorySync.
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub groups: u64,
    pub state: CollectionState,
    /// What changed, would change, or went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The synced groups this DirectorySync gave access, as it named them: the access it removes
    /// when `spec.collections` stops asking for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted: Vec<GrantedGroup>,
}

/// A synced group with access given by this DirectorySync.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantedGroup {
    /// The name `spec.collections` used for it.
    pub name: String,
    /// The directory group's external id.
    pub external_id: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CollectionState {
    /// The collection holds the access `spec.collections` asks for.
    #[default]
    Applied,
    /// Not applied yet: a dry run, or `dirsync test` (the message says what would change).
    Pending,
    /// No such collection in the organization (deleted?).
    NotFound,
    /// The server has no collections API (Vaultwarden).
    Unsupported,
    /// The write was refused or could not be made; the message says why. The next sync tries
    /// again.
    Failed,
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
    #[schemars(transform = super::schema::no_default)]
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

/// What a sync sent, and what that changed in the organization. A change count is absent when it
/// is not known: a server that cannot list its members (Vaultwarden) does not say whom an import
/// invited or removed, and dirsync never reports a number it does not know to be true.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// Active members in the requests.
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub members_sent: u64,
    /// Members sent as deleted (removals asked for).
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub removals_sent: u64,
    #[serde(default)]
    #[schemars(transform = super::schema::no_default)]
    pub groups_sent: u64,
    /// Members in the requests that the organization did not have yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited: Option<u64>,
    /// Members the requests remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_created: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_updated: Option<u64>,
    /// Collections whose group access was written (`spec.collections`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub collections_updated: u64,
}

impl Changes {
    /// One line for messages, events and the CLI: the exact changes where they are known, else
    /// what was sent and that the changes are unknown.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (self.invited, self.removed) {
            (Some(i), Some(r)) => parts.push(format!("{i} invited, {r} removed")),
            _ => parts.push(format!(
                "{} members and {} removals sent (who was invited or removed is unknown: the server \
                 cannot list its members)",
                self.members_sent, self.removals_sent
            )),
        }
        match (self.groups_created, self.groups_updated) {
            (Some(c), Some(u)) => parts.push(format!("{c} groups created, {u} groups updated")),
            _ => parts.push(format!("{} groups sent", self.groups_sent)),
        }
        if self.collections_updated > 0 {
            parts.push(format!("access updated in {} collections", self.collections_updated));
        }
        parts.join(", ")
    }
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
    /// Members held back by `sync.removalGracePeriod` (listed in `status.pendingRemovals`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending_removals: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_groups: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
