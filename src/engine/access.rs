//! `spec.collections` against the organization: reads its collections (and groups), lets the
//! pure core ([`crate::sync::access`]) decide each collection's list, writes what differs (the
//! client paces the writes) and reads each written collection back. Nothing here fails the sync:
//! the import has been done; what could not be done is reported per collection, and the next
//! sync tries again.

use tracing::{info, warn};

use crate::Error;
use crate::api::{CollectionAccess, CollectionState, CollectionStatus, GrantedGroup, Reason};
use crate::bitwarden::{BitwardenApi, OrgGroup, Put};
use crate::sync::access::{self, AccessInput, Action};
use crate::sync::prepare::Prepared;

/// Why `spec.collections` is not applied on a server without the collections API.
pub const UNSUPPORTED: &str = "this Bitwarden server has no collections API (GET /public/collections answered 404, \
     as Vaultwarden does): spec.collections cannot be applied here; the import itself runs as usual";

/// What the access part did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per collection (`status.collections`).
    pub collections: Vec<CollectionStatus>,
    pub warnings: Vec<String>,
    /// Collections written (and read back as written).
    pub written: u64,
}

impl Report {
    /// One clause for the condition message, when there are collections to speak of.
    pub fn summary(&self) -> Option<String> {
        if self.collections.is_empty() {
            return None;
        }
        let count = |state: CollectionState| self.collections.iter().filter(|c| c.state == state).count();
        if count(CollectionState::Unsupported) > 0 {
            return Some(
                "collection access (spec.collections) is not supported by this server (GET /public/collections \
                 answered 404)"
                    .to_string(),
            );
        }
        let updated = self.written as usize;
        let applied = count(CollectionState::Applied);
        let parts: Vec<String> = [
            (updated, "updated"),
            (applied - updated.min(applied), "as asked"),
            (count(CollectionState::Pending), "would change"),
            (count(CollectionState::NotFound), "not found"),
            (count(CollectionState::Failed), "failed"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        Some(format!("collection access: {}", parts.join(", ")))
    }
}

/// What `dirsync test` reports: what the spec asks for, nothing read.
pub fn requested(entries: &[CollectionAccess], previous: &[CollectionStatus]) -> Report {
    Report {
        collections: access::requested(entries, previous),
        ..Default::default()
    }
}

/// What the access part works from.
pub struct Context<'a> {
    pub entries: &'a [CollectionAccess],
    pub prepared: &'a Prepared,
    /// `status.collections` of the last sync.
    pub previous: &'a [CollectionStatus],
    /// The groups read before the import; `None` to read them now (the import created some).
    pub groups: Option<&'a [OrgGroup]>,
    /// Compute and report only (`mode: DryRun`).
    pub dry_run: bool,
}

/// Reads, decides, writes and reports. Never fails: see the module comment.
pub async fn apply(bitwarden: &dyn BitwardenApi, c: &Context<'_>) -> Report {
    let mut report = Report::default();
    let untouched = |state, message: &str| access::untouched(c.entries, c.previous, state, message);
    let collections = match bitwarden.list_collections().await {
        Ok(Some(list)) => list,
        Ok(None) => {
            report.collections = untouched(CollectionState::Unsupported, UNSUPPORTED);
            if !c.entries.is_empty() {
                report.warnings.push(format!("spec.collections: {UNSUPPORTED}"));
            }
            return report;
        }
        Err(e) => return failed(report, untouched, "the collections could not be read", &e),
    };
    let read;
    let groups = match c.groups {
        Some(groups) => groups,
        None => match bitwarden.list_groups().await {
            Ok(Some(list)) => {
                read = list;
                &read
            }
            Ok(None) => {
                report.collections = untouched(CollectionState::Unsupported, UNSUPPORTED);
                return report;
            }
            Err(e) => return failed(report, untouched, "the groups could not be read", &e),
        },
    };
    let plan = access::plan(&AccessInput {
        entries: c.entries,
        synced: &c.prepared.groups,
        complete: c.prepared.complete,
        previous: c.previous,
        collections: &collections,
        groups,
    });
    report.warnings = plan.warnings;
    // After a failure that is not about one collection (unreachable, rate limited), no more
    // writes are tried in this sync.
    let mut stopped: Option<String> = None;
    for item in &plan.items {
        let label = item
            .id
            .clone()
            .or_else(|| item.external_id.as_ref().map(|e| format!("externalId {e}")))
            .unwrap_or_default();
        let kept = || item.granted_before.clone();
        let status = match &item.action {
            Action::NotFound(message) => {
                item.status(CollectionState::NotFound, Some(message.clone()), item.granted.clone())
            }
            Action::Failed(message) => {
                item.status(CollectionState::Failed, Some(message.clone()), item.granted.clone())
            }
            Action::InPlace if c.dry_run => item.status(CollectionState::Applied, None, kept()),
            Action::InPlace => item.status(CollectionState::Applied, None, item.granted.clone()),
            Action::Write(_) if c.dry_run => item.status(
                CollectionState::Pending,
                item.changes.as_ref().map(|ch| format!("would change: {ch}")),
                kept(),
            ),
            Action::Write(_) if stopped.is_some() => item.status(
                CollectionState::Failed,
                Some(format!("not written: {}", stopped.as_deref().unwrap_or_default())),
                kept(),
            ),
            Action::Write(update) => {
                let id = item.id.as_deref().unwrap_or_default();
                info!(
                    collection = id,
                    changes = item.changes.as_deref().unwrap_or_default(),
                    "writing collection access"
                );
                match write(bitwarden, id, update).await {
                    Ok(Written::Held) => {
                        report.written += 1;
                        item.status(CollectionState::Applied, item.changes.clone(), item.granted.clone())
                    }
                    Ok(Written::NotHeld) => item.status(
                        CollectionState::Failed,
                        Some(
                            "Bitwarden accepted the access list but the collection does not hold it (is the \
                             organization's plan without groups?); the next sync tries again"
                                .to_string(),
                        ),
                        union(&item.granted_before, &item.granted),
                    ),
                    Ok(Written::Gone) => item.status(
                        CollectionState::NotFound,
                        Some("the collection was deleted while the sync ran".to_string()),
                        Vec::new(),
                    ),
                    Err(e) if e.reason() == Reason::BitwardenRejected => {
                        item.status(CollectionState::Failed, Some(e.to_string()), kept())
                    }
                    Err(e) => {
                        warn!(collection = id, error = %e, "collection access not written; no more writes in this sync");
                        stopped = Some(format!("{}: {e}", e.reason()));
                        item.status(CollectionState::Failed, Some(format!("{}: {e}", e.reason())), kept())
                    }
                }
            }
        };
        if matches!(status.state, CollectionState::NotFound | CollectionState::Failed) {
            let message = status.message.as_deref().unwrap_or_default();
            report.warnings.push(format!("collection {label}: {message}"));
        }
        report.collections.push(status);
    }
    report
}

enum Written {
    /// Read back as written.
    Held,
    /// Answered 200, but read back otherwise.
    NotHeld,
    /// No such collection.
    Gone,
}

async fn write(
    bitwarden: &dyn BitwardenApi,
    id: &str,
    update: &crate::bitwarden::CollectionUpdate,
) -> Result<Written, Error> {
    if bitwarden.put_collection(id, update).await? == Put::NoSuchCollection {
        return Ok(Written::Gone);
    }
    // The answer echoes the request; only a read shows what was kept (a write without
    // `UseGroups` is answered 200 and ignored).
    Ok(match bitwarden.get_collection(id).await? {
        None => Written::Gone,
        Some(c) if access::same_list(&c.groups, &update.groups) => Written::Held,
        Some(_) => Written::NotHeld,
    })
}

fn union(a: &[GrantedGroup], b: &[GrantedGroup]) -> Vec<GrantedGroup> {
    let mut all: Vec<GrantedGroup> = a.iter().chain(b).cloned().collect();
    all.sort();
    all.dedup();
    all
}

fn failed(
    mut report: Report,
    untouched: impl Fn(CollectionState, &str) -> Vec<CollectionStatus>,
    what: &str,
    e: &Error,
) -> Report {
    let message = format!(
        "{what} ({}: {e}); nothing was changed, the next sync tries again",
        e.reason()
    );
    report.collections = untouched(CollectionState::Failed, &message);
    report.warnings.push(format!("spec.collections: {message}"));
    report
}
