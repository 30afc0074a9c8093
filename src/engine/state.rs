//! What one sync remembers for the next (kept in status, or in the CLI's state file), and the
//! rule that decides between a full and an incremental read.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::api::{CollectionStatus, MemberCounts, PendingRemoval};

/// Cursor key (beside the provider's own) recording when the last full read happened.
pub const FULL_READ_KEY: &str = "fullReadAt";
/// A full read happens at least this often, even with a cursor.
const FULL_READ_EVERY_HOURS: i64 = 24;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_hash: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cursor: BTreeMap<String, String>,
    /// Active users of the last successful sync (the shrink guard's baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_sync_time: Option<String>,
    /// Removals waiting for `removalGracePeriod`, with when each was first seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_removals: Vec<PendingRemoval>,
    /// Onboarding counts of the last sync (carried forward after an incremental read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MemberCounts>,
    /// What `spec.collections` did, with the access this DirectorySync gave (`granted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<CollectionStatus>,
    /// Hash of `spec.collections` at the last successful sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections_hash: Option<String>,
}

impl SyncState {
    /// The cursor to hand the source: `None` asks for a full read. A full read happens on
    /// `sync-now` or a new `spec.collections` (`force`), with `overwriteExisting` (it must see
    /// everyone), without a cursor, and when the last full read is 24 hours old.
    pub fn read_cursor(
        &self,
        force: bool,
        overwrite_existing: bool,
        now: Timestamp,
    ) -> Option<BTreeMap<String, String>> {
        let recent = self
            .cursor
            .get(FULL_READ_KEY)
            .and_then(|t| t.parse::<Timestamp>().ok())
            .is_some_and(|t| now.duration_since(t) < SignedDuration::from_hours(FULL_READ_EVERY_HOURS));
        (!force && !overwrite_existing && recent && !self.cursor.is_empty()).then(|| self.cursor.clone())
    }

    /// The cursor to keep after a successful sync: the source's new cursor, stamped with the time
    /// of the last full read (this one's, if it was full).
    pub fn next_cursor(
        &self,
        mut from_source: BTreeMap<String, String>,
        full_read: bool,
        now: Timestamp,
    ) -> BTreeMap<String, String> {
        let full_read_at = if full_read {
            Some(now.to_string())
        } else {
            self.cursor.get(FULL_READ_KEY).cloned()
        };
        if let Some(t) = full_read_at {
            from_source.insert(FULL_READ_KEY.to_string(), t);
        }
        from_source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn a_full_read_happens_without_a_recent_full_read_on_force_and_with_overwrite() {
        let now = at("2025-01-02T10:00:00Z");
        let mut state = SyncState::default();
        assert_eq!(state.read_cursor(false, false, now), None, "no cursor yet");
        state.cursor = state.next_cursor(
            BTreeMap::from([("ldap.lastRead".into(), "x".into())]),
            true,
            at("2025-01-02T09:00:00Z"),
        );
        assert!(state.read_cursor(false, false, now).is_some());
        assert_eq!(state.read_cursor(true, false, now), None, "sync-now");
        assert_eq!(state.read_cursor(false, true, now), None, "overwriteExisting");
        assert_eq!(
            state.read_cursor(false, false, at("2025-01-03T09:00:01Z")),
            None,
            "24 hours later"
        );
        // An incremental read keeps the time of the last full read.
        let next = state.next_cursor(BTreeMap::new(), false, now);
        assert_eq!(
            next.get(FULL_READ_KEY).map(String::as_str),
            Some("2025-01-02T09:00:00Z")
        );
    }
}
