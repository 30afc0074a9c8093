//! What `dirsync test` and `dirsync sync` print.

use std::fmt::Write;
use std::io;

use serde::Serialize;

use crate::engine::Outcome;
use crate::sync::model::User;
use crate::sync::prepare::Prepared;

/// Output written into a buffer and handed to the destination in large blocks: `dirsync test`
/// prints a line per user and per membership (tens of MiB for 100,000 users), which is never
/// held whole in memory.
struct Blocks<'w> {
    buf: Vec<u8>,
    out: &'w mut dyn io::Write,
}

impl<'w> Blocks<'w> {
    const SIZE: usize = 1 << 18;

    fn new(out: &'w mut dyn io::Write) -> Self {
        Blocks {
            buf: Vec::with_capacity(Self::SIZE + 4096),
            out,
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A JSON string, escaped exactly as serde_json escapes it (it does the rare string that
    /// needs escaping).
    fn json_str(&mut self, s: &str) {
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.buf.push(b'"');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.push(b'"');
        } else {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.buf, s);
        }
    }

    /// Hands the buffer on once it is full; call after each item.
    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= Self::SIZE {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }
}

impl std::fmt::Write for Blocks<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The lists of users `dirsync test` prints: JSON key, heading, and who is in it. Each list is
/// in external-id order: prepared users are sorted by external id, one entry per id, so no
/// sort is needed.
const USER_LISTS: [(&str, &str, fn(&User) -> bool); 3] = [
    ("enabledUsers", "Enabled users", |u| !u.disabled && !u.deleted),
    ("disabledUsers", "Disabled users", |u| u.disabled && !u.deleted),
    ("deletedUsers", "Deleted users", |u| u.deleted),
];

/// `dirsync test --json`: `bwdc test`'s JSON shape (a user's displayName is its email; a group's
/// userIds are its flattened member external ids; everything sorted), pretty-printed as
/// serde_json prints it, streamed to `out`.
pub fn write_test_json(prepared: &Prepared, out: &mut dyn io::Write) -> io::Result<()> {
    let mut w = Blocks::new(out);
    w.raw(b"{\n  \"groups\": ");
    if prepared.groups.is_empty() {
        w.raw(b"[]");
    } else {
        w.raw(b"[");
        for (i, g) in prepared.groups.iter().enumerate() {
            w.raw(if i == 0 {
                b"\n    {\n      \"externalId\": "
            } else {
                b",\n    {\n      \"externalId\": "
            });
            w.json_str(&g.external_id);
            w.raw(b",\n      \"displayName\": ");
            w.json_str(&g.name);
            w.raw(b",\n      \"userIds\": ");
            if g.members.is_empty() {
                w.raw(b"[]");
            } else {
                w.raw(b"[");
                for (j, id) in prepared.members_of(g).enumerate() {
                    w.raw(if j == 0 { b"\n        " } else { b",\n        " });
                    w.json_str(id);
                    w.flush_if_full()?;
                }
                w.raw(b"\n      ]");
            }
            w.raw(b"\n    }");
        }
        w.raw(b"\n  ]");
    }
    for (key, _, wanted) in USER_LISTS {
        w.raw(b",\n  \"");
        w.raw(key.as_bytes());
        w.raw(b"\": [");
        let mut any = false;
        for u in prepared.users.iter().filter(|u| wanted(u)) {
            w.raw(if any {
                b",\n    {\n      \"externalId\": "
            } else {
                b"\n    {\n      \"externalId\": "
            });
            any = true;
            w.json_str(&u.external_id);
            w.raw(b",\n      \"displayName\": ");
            w.json_str(u.email.as_deref().unwrap_or_default());
            w.raw(b"\n    }");
            w.flush_if_full()?;
        }
        w.raw(if any { b"\n  ]" } else { b"]" });
    }
    w.raw(b"\n}\n");
    w.finish()
}

/// Per position in [`Prepared::member_ids`], the member's email when the member is a synced
/// user: one merge of two lists sorted the same way.
fn member_emails(p: &Prepared) -> Vec<Option<&str>> {
    let mut users = p.users.iter().peekable();
    p.member_ids
        .iter()
        .map(|id| {
            while users.next_if(|u| u.external_id < *id).is_some() {}
            users
                .peek()
                .filter(|u| u.external_id == *id)
                .and_then(|u| u.email.as_deref())
        })
        .collect()
}

/// `dirsync test`'s readable summary: counts, then groups with members, then users, streamed
/// to `out`.
pub fn write_test_text(outcome: &Outcome, out: &mut dyn io::Write) -> io::Result<()> {
    let p = &outcome.prepared;
    let emails = member_emails(p);
    let mut s = Blocks::new(out);
    let _ = writeln!(
        s,
        "{} enabled, {} disabled, {} deleted users; {} groups",
        outcome.users.enabled, outcome.users.disabled, outcome.users.deleted, outcome.groups
    );
    let l = &outcome.left_out;
    if l.without_email + l.email_too_long + l.in_no_synced_group + l.duplicates > 0 {
        let _ = writeln!(
            s,
            "left out: {} without email, {} with an email over 256 characters, {} in no synced group, {} duplicates",
            l.without_email, l.email_too_long, l.in_no_synced_group, l.duplicates
        );
    }
    for w in &outcome.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "\nGroups ({}):", p.groups.len());
    for g in &p.groups {
        let _ = writeln!(s, "  {}  [{}]  {} members", g.name, g.external_id, g.members.len());
        for &m in &g.members {
            let id = &p.member_ids[m as usize];
            match emails[m as usize] {
                Some(e) => {
                    let _ = writeln!(s, "    {e}");
                }
                None => {
                    let _ = writeln!(s, "    {id}  (not synced: no email)");
                }
            }
            s.flush_if_full()?;
        }
    }
    for (_, title, wanted) in USER_LISTS {
        let count = p.users.iter().filter(|u| wanted(u)).count();
        let _ = writeln!(s, "\n{title} ({count}):");
        for u in p.users.iter().filter(|u| wanted(u)) {
            let _ = writeln!(s, "  {}  [{}]", u.email.as_deref().unwrap_or_default(), u.external_id);
            s.flush_if_full()?;
        }
    }
    if let Some(plan) = &outcome.plan {
        let _ = writeln!(
            s,
            "\nA sync would send {} active members, {} removals and {} groups in {} request(s); plan hash {}",
            plan.members, plan.removals, plan.groups, plan.requests, plan.hash
        );
    }
    let mut rest = String::new();
    pending_lines(&mut rest, outcome);
    s.raw(rest.as_bytes());
    s.finish()
}

/// The removals waiting for `removalGracePeriod`, one line each (the guard keeps the list short).
fn pending_lines(s: &mut String, outcome: &Outcome) {
    if outcome.pending_removals.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "pending removals (removalGracePeriod): {}",
        outcome.pending_removals.len()
    );
    for p in &outcome.pending_removals {
        let _ = writeln!(
            s,
            "  {}  [{}]  {:?} since {}, removed at {} if still so",
            p.email, p.external_id, p.cause, p.since, p.remove_at
        );
    }
}

/// What `dirsync sync` prints: what it sent and what changed.
pub fn sync_text(outcome: &Outcome, api_url: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}: {}", outcome.reason, outcome.message);
    for w in &outcome.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    for (i, r) in outcome.sent.iter().enumerate() {
        let _ = writeln!(
            s,
            "sent request {}/{} to {api_url}: {} members ({} removals), {} groups, overwriteExisting={}, largeImport={}",
            i + 1,
            outcome.sent.len(),
            r.members,
            r.removals,
            r.groups,
            r.overwrite_existing,
            r.large_import
        );
    }
    let c = &outcome.changes;
    if !outcome.sent.is_empty() {
        let _ = writeln!(s, "changes: {}", c.describe());
    }
    pending_lines(&mut s, outcome);
    s
}

/// `dirsync sync --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncJson<'a> {
    pub reason: String,
    pub message: &'a str,
    pub users: crate::api::UserCounts,
    pub groups: u64,
    pub changes: crate::api::Changes,
    pub requests: usize,
    pub sync_hash: Option<&'a str>,
    pub warnings: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub pending_removals: &'a [crate::api::PendingRemoval],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::prepare::FlatGroup;

    fn user(id: &str, email: &str, disabled: bool, deleted: bool) -> User {
        User {
            external_id: id.into(),
            email: Some(email.into()),
            disabled,
            deleted,
        }
    }

    /// The streamed JSON is, byte for byte, what serde_json pretty-prints for the same data.
    #[test]
    fn test_json_is_serde_jsons_pretty_print() {
        let prepared = Prepared {
            users: vec![
                user("cn=a,dc=x", "a@x.com", false, false),
                user("cn=b\\, \"quoted\",dc=x", "b@x.com", true, false),
                user("cn=c,dc=x", "c\u{1}@x.com", false, true),
                user("cn=d,dc=x", "dä@x.com", false, false),
            ],
            member_ids: vec!["cn=a,dc=x".into(), "cn=no-email,dc=x".into()],
            groups: vec![
                FlatGroup {
                    external_id: "cn=g,dc=x".into(),
                    name: "G \"one\"\n".into(),
                    members: vec![0, 1],
                },
                FlatGroup {
                    external_id: "cn=empty,dc=x".into(),
                    name: "Empty".into(),
                    members: vec![],
                },
            ],
            ..Default::default()
        };
        let mut got = Vec::new();
        write_test_json(&prepared, &mut got).unwrap();
        // The layout is serde_json's: the same bytes as pretty-printing a struct in this order.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Shape<'a> {
            groups: Vec<GroupShape<'a>>,
            enabled_users: Vec<UserShape<'a>>,
            disabled_users: Vec<UserShape<'a>>,
            deleted_users: Vec<UserShape<'a>>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct GroupShape<'a> {
            external_id: &'a str,
            display_name: &'a str,
            user_ids: Vec<&'a str>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct UserShape<'a> {
            external_id: &'a str,
            display_name: &'a str,
        }
        let users = |f: fn(&User) -> bool| -> Vec<UserShape> {
            prepared
                .users
                .iter()
                .filter(|u| f(u))
                .map(|u| UserShape {
                    external_id: &u.external_id,
                    display_name: u.email.as_deref().unwrap_or_default(),
                })
                .collect()
        };
        let shape = Shape {
            groups: prepared
                .groups
                .iter()
                .map(|g| GroupShape {
                    external_id: &g.external_id,
                    display_name: &g.name,
                    user_ids: prepared.members_of(g).collect(),
                })
                .collect(),
            enabled_users: users(USER_LISTS[0].2),
            disabled_users: users(USER_LISTS[1].2),
            deleted_users: users(USER_LISTS[2].2),
        };
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!("{}\n", serde_json::to_string_pretty(&shape).unwrap())
        );
    }

    #[test]
    fn empty_lists_print_as_serde_json_prints_them() {
        let mut got = Vec::new();
        write_test_json(&Prepared::default(), &mut got).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "{\n  \"groups\": [],\n  \"enabledUsers\": [],\n  \"disabledUsers\": [],\n  \"deletedUsers\": []\n}\n"
        );
    }

    #[test]
    fn members_get_the_email_of_their_user_or_a_note() {
        let prepared = Prepared {
            users: vec![user("a", "a@x.com", false, false), user("c", "c@x.com", false, false)],
            member_ids: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            ..Default::default()
        };
        assert_eq!(
            member_emails(&prepared),
            vec![Some("a@x.com"), None, Some("c@x.com"), None]
        );
    }
}
