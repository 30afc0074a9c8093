//! Wire types of the Bitwarden Public API (`bitwarden-api.md`). Plain data: the sync core builds
//! them, the client sends and receives them.

use serde::{Deserialize, Serialize};

/// `POST /public/organization/import`. Every field is always serialised: Vaultwarden answers 422
/// when one is missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRequest {
    pub groups: Vec<ImportGroup>,
    pub members: Vec<ImportMember>,
    pub overwrite_existing: bool,
    pub large_import: bool,
    pub invite_users_after_provisioning: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportGroup {
    pub name: String,
    pub external_id: String,
    pub member_external_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportMember {
    pub email: String,
    pub external_id: String,
    pub deleted: bool,
}

/// Member types of the Public API.
pub mod member_type {
    pub const OWNER: i32 = 0;
    pub const ADMIN: i32 = 1;
}

/// One entry of `GET /public/members`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgMember {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    /// Owner 0, Admin 1, User 2, Manager 3, Custom 4.
    #[serde(rename = "type", default)]
    pub type_: i32,
    /// Revoked -1, Invited 0, Accepted 1, Confirmed 2, Staged 3.
    #[serde(default)]
    pub status: i32,
}

/// One entry of `GET /public/groups`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgGroup {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// `{"object":"list","data":[...],"continuationToken":...}`
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub continuation_token: Option<String>,
}

/// `{"object":"error","message":"...","errors":{"field":["..."]}}`
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorResponse {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Option<std::collections::BTreeMap<String, Vec<String>>>,
}
