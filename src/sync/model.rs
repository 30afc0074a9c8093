//! The normalised directory model every source produces.

/// A directory user, as a source read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct User {
    /// The id Bitwarden keeps for the member (DN, objectGUID or the provider's object id).
    pub external_id: String,
    /// Normalised email (trimmed, lower-case), or `None` when the entry has none.
    pub email: Option<String>,
    pub disabled: bool,
    pub deleted: bool,
}

/// A directory group with its direct members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    pub external_id: String,
    pub name: String,
    /// External ids of direct user members (including users later left out for lack of an
    /// email, as the reference does).
    pub members: Vec<String>,
    /// External ids of direct child groups; children that are not synced groups are ignored.
    pub children: Vec<String>,
}

/// What a source read.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// False for an incremental read that returned only changed entries: such a result cannot
    /// tell who left, so out-of-scope removal and the shrink guard are skipped.
    pub complete: bool,
    /// Users in no synced group are left out (a cloud source with a group include/exclude list).
    pub restrict_users_to_groups: bool,
}
