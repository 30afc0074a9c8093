//! Wire types of the Bitwarden Public API (`bitwarden-api.md`). Plain data: the sync core builds
//! them, the client sends and receives them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// `POST /public/organization/import`. Every field is always serialised: Vaultwarden answers 422
/// when one is missing. The strings borrow from the sync's data where they can, so a plan over a
/// large directory does not copy it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRequest<'a> {
    pub groups: Vec<ImportGroup<'a>>,
    pub members: Vec<ImportMember<'a>>,
    pub overwrite_existing: bool,
    pub large_import: bool,
    pub invite_users_after_provisioning: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportGroup<'a> {
    pub name: Cow<'a, str>,
    pub external_id: Cow<'a, str>,
    pub member_external_ids: ExternalIds<'a>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportMember<'a> {
    pub email: Cow<'a, str>,
    pub external_id: Cow<'a, str>,
    pub deleted: bool,
}

/// A list of external ids, serialised as a JSON array of strings: either owned, or positions in
/// a shared table (a group's flattened members, without a string per membership).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalIds<'a> {
    List(Vec<String>),
    Indexed { positions: &'a [u32], table: &'a [String] },
}

impl Default for ExternalIds<'_> {
    fn default() -> Self {
        ExternalIds::List(Vec::new())
    }
}

impl ExternalIds<'_> {
    pub fn len(&self) -> usize {
        match self {
            ExternalIds::List(v) => v.len(),
            ExternalIds::Indexed { positions, .. } => positions.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            ExternalIds::List(v) => Box::new(v.iter().map(String::as_str)),
            ExternalIds::Indexed { positions, table } => {
                Box::new(positions.iter().map(|&p| table[p as usize].as_str()))
            }
        }
    }
}

impl From<Vec<String>> for ExternalIds<'_> {
    fn from(v: Vec<String>) -> Self {
        ExternalIds::List(v)
    }
}

impl Serialize for ExternalIds<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
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

/// Member statuses of the Public API.
pub mod member_status {
    pub const REVOKED: i32 = -1;
    pub const INVITED: i32 = 0;
    pub const ACCEPTED: i32 = 1;
    pub const CONFIRMED: i32 = 2;
    pub const STAGED: i32 = 3;
}

/// One group's access to a collection, in requests and answers. Bitwarden requires `id` and
/// `readOnly`; `manage` excludes the two others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    pub id: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub hide_passwords: bool,
    #[serde(default)]
    pub manage: bool,
}

/// One entry of `GET /public/collections` (names are encrypted client-side: never here).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgCollection {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub external_id: Option<String>,
    /// `null` is read as no groups.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub groups: Vec<AccessEntry>,
}

/// `PUT /public/collections/{id}`: replaces the collection's external id (so the current one is
/// always sent: `null` stays `null`) and its complete group list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionUpdate {
    pub external_id: Option<String>,
    pub groups: Vec<AccessEntry>,
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
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
