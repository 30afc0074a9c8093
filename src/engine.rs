//! One whole sync: read the directory, plan, guard, send, and say what happened. The controller
//! and the CLI both call [`run`]; they differ only in where Secrets come from ([`SecretStore`])
//! and where the [`SyncState`] and the [`Outcome`] go.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::Error;
use crate::api::validate::validate;
use crate::api::{Changes, DirectorySyncSpec, Mode, PlanSummary, Reason, UserCounts};
use crate::bitwarden::{BitwardenApi, ImportRequest, OrgGroup, OrgMember};
use crate::secrets::SecretStore;
use crate::source::{self, DirectorySource, ReadRequest};
use crate::sync::plan::{Action, PlanInput, plan};
use crate::sync::prepare::{LeftOut, PrepareOptions, Prepared, prepare};

/// Cursor key (beside the provider's own) recording when the last full read happened.
pub const FULL_READ_KEY: &str = "fullReadAt";
/// A full read happens at least this often, even with a cursor.
const FULL_READ_EVERY_HOURS: i64 = 24;

/// What one sync remembers for the next (kept in status, or in the CLI's state file).
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
}

/// How to run this one sync.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `dirsync.dev/sync-now`: ignore the hash and the cursor.
    pub force: bool,
    /// `dirsync.dev/guard-override`: the plan hash allowed past the guard.
    pub guard_override: Option<String>,
    /// Compute and report, send nothing (also when the spec says `mode: DryRun`).
    pub dry_run: bool,
}

/// What a sync did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// `Synced`, `Unchanged`, `DryRun` or `Suspended`.
    pub reason: Reason,
    /// One line for the condition message.
    pub message: String,
    pub users: UserCounts,
    pub groups: u64,
    pub left_out: LeftOut,
    pub changes: Changes,
    /// Always computed; the status shows it in DryRun.
    pub plan: Option<PlanSummary>,
    /// The requests that were sent, in order (empty unless `Synced`).
    pub sent: Vec<SentRequest>,
    /// The users and groups of this sync (what `dirsync test` prints).
    pub prepared: Prepared,
    /// The state to keep for the next sync.
    pub state: SyncState,
    pub warnings: Vec<String>,
    /// The guard tripped but the override let this plan through.
    pub guard_overridden: bool,
    /// Where requests go (empty when suspended).
    pub api_url: String,
    /// The read was complete. After an incremental read `users` and `groups` count only what
    /// changed: keep the last complete counts for display.
    pub complete: bool,
}

/// What one import request carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SentRequest {
    pub members: usize,
    pub removals: usize,
    pub groups: usize,
    pub overwrite_existing: bool,
    pub large_import: bool,
}

impl SentRequest {
    fn of(request: &ImportRequest) -> SentRequest {
        SentRequest {
            members: request.members.len(),
            removals: request.members.iter().filter(|m| m.deleted).count(),
            groups: request.groups.len(),
            overwrite_existing: request.overwrite_existing,
            large_import: request.large_import,
        }
    }
}

/// Builds the source and the Bitwarden client a spec names. Tests plug in doubles here.
#[async_trait]
pub trait Connector: Send + Sync {
    async fn source(
        &self,
        spec: &DirectorySyncSpec,
        secrets: &dyn SecretStore,
    ) -> Result<Box<dyn DirectorySource>, Error>;
    async fn bitwarden(
        &self,
        spec: &DirectorySyncSpec,
        secrets: &dyn SecretStore,
    ) -> Result<Box<dyn BitwardenApi>, Error>;
}

/// The real sources and the real Bitwarden client.
pub struct DefaultConnector;

#[async_trait]
impl Connector for DefaultConnector {
    async fn source(
        &self,
        spec: &DirectorySyncSpec,
        secrets: &dyn SecretStore,
    ) -> Result<Box<dyn DirectorySource>, Error> {
        source::connect(spec, secrets).await
    }

    async fn bitwarden(
        &self,
        spec: &DirectorySyncSpec,
        secrets: &dyn SecretStore,
    ) -> Result<Box<dyn BitwardenApi>, Error> {
        let client = crate::bitwarden::client::connect(&spec.bitwarden, secrets).await?;
        Ok(Box::new(client))
    }
}

/// Runs one sync. On error nothing of the state moves: the next sync repeats the same reads.
pub async fn run(
    spec: &DirectorySyncSpec,
    state: &SyncState,
    options: &RunOptions,
    secrets: &dyn SecretStore,
    connector: &dyn Connector,
) -> Result<Outcome, Error> {
    validate(spec).map_err(Error::InvalidSpec)?;
    let provider = spec.source.provider();
    let dry_run = options.dry_run || spec.mode == Mode::DryRun;
    let now = Timestamp::now();
    if spec.suspend {
        return Ok(Outcome::suspended(state));
    }
    let sync = &spec.sync;

    // Secrets and settings are checked before any network traffic.
    let bitwarden = connector.bitwarden(spec, secrets).await?;
    let mut source = connector.source(spec, secrets).await?;

    let cursor = (!options.force && !sync.overwrite_existing && full_read_recent(&state.cursor, now))
        .then(|| state.cursor.clone())
        .filter(|c| !c.is_empty());
    let full_read = cursor.is_none();
    info!(provider, full_read, "reading the directory");
    let started = Instant::now();
    let read = source.read(&ReadRequest::new(sync, cursor)).await?;
    let directory = read.directory;
    info!(
        provider,
        users = directory.users.len(),
        groups = directory.groups.len(),
        seconds = started.elapsed().as_secs_f64(),
        "read the directory"
    );

    let prepared = prepare(
        directory,
        PrepareOptions {
            users: sync.users,
            groups: sync.groups,
            remove_disabled: sync.remove_disabled,
        },
    )?;
    let users = count_users(&prepared);

    // The organization is read only when the plan needs it: always for removeOutOfScope, else
    // once something is about to be sent (for exact removal counts and change counts).
    let mut members: Option<Vec<OrgMember>> = None;
    let org_groups: Option<Vec<OrgGroup>>;
    let mut listed = false;
    if sync.remove_out_of_scope || (dry_run && sync.overwrite_existing) {
        members = list_members(bitwarden.as_ref(), sync.remove_out_of_scope).await?;
        listed = true;
    }
    let last_hash = if options.force {
        None
    } else {
        state.sync_hash.as_deref()
    };
    let base = PlanInput {
        options: sync,
        api_url: bitwarden.api_url(),
        organization_id: bitwarden.organization_id(),
        last_hash,
        last_active_users: state.last_active_users,
        members: None,
        groups: None,
        guard_override: options.guard_override.as_deref(),
    };
    let mut the_plan = plan(
        &prepared,
        &PlanInput {
            members: members.as_deref(),
            ..base
        },
    )?;
    if !listed && !dry_run && matches!(the_plan.action, Action::Send | Action::GuardTripped) {
        drop(the_plan); // it borrows the listing that is about to be replaced
        members = list_members(bitwarden.as_ref(), false).await?;
        org_groups = if sync.groups {
            bitwarden.list_groups().await?
        } else {
            None
        };
        the_plan = plan(
            &prepared,
            &PlanInput {
                members: members.as_deref(),
                groups: org_groups.as_deref(),
                ..base
            },
        )?;
    }
    let summary = the_plan.summary(&prepared);

    let mut next_state = state.clone();
    let mut cursor = read.cursor;
    let keep_full_read_time = state.cursor.get(FULL_READ_KEY).cloned();
    let full_read_at = if full_read {
        Some(now.to_string())
    } else {
        keep_full_read_time
    };
    if let Some(t) = full_read_at {
        cursor.insert(FULL_READ_KEY.to_string(), t);
    }

    let mut outcome = Outcome {
        reason: Reason::Synced,
        message: String::new(),
        users,
        groups: prepared.groups.len() as u64,
        left_out: prepared.left_out,
        changes: Changes::default(),
        plan: Some(summary),
        sent: Vec::new(),
        prepared: Prepared::default(),
        state: state.clone(),
        warnings: read.warnings,
        guard_overridden: the_plan.overridden,
        api_url: bitwarden.api_url().to_string(),
        complete: prepared.complete,
    };
    let counts = if outcome.complete {
        format!("{} users, {} groups", users.enabled, outcome.groups)
    } else {
        format!(
            "incremental read: {} changed users, {} groups",
            users.enabled, outcome.groups
        )
    };

    if the_plan.action == Action::GuardTripped {
        let why = the_plan.guard.clone().unwrap_or_default();
        return Err(Error::GuardTripped(format!(
            "{why}; nothing was sent. If this is intended, annotate the DirectorySync with \
             dirsync.dev/guard-override={} (CLI: --guard-override {}), or raise spec.sync.guard",
            the_plan.hash, the_plan.hash
        )));
    }
    if dry_run {
        let p = outcome.plan.as_ref().expect("plan is set");
        outcome.reason = Reason::DryRun;
        outcome.message = format!(
            "{counts}; a sync would send {} active members, {} removals and {} groups in {} request(s){}",
            p.members,
            p.removals,
            p.groups,
            p.requests,
            match the_plan.action {
                Action::Unchanged => " (unchanged since the last sync: nothing would be sent)",
                Action::Empty => " (the directory is empty: nothing would be sent)",
                _ => "",
            }
        );
        drop(the_plan);
        outcome.prepared = prepared;
        return Ok(outcome);
    }

    match the_plan.action {
        Action::Unchanged => {
            outcome.reason = Reason::Unchanged;
            outcome.message = format!("{counts}; nothing changed since the last sync");
        }
        Action::Empty => {
            outcome.reason = Reason::Unchanged;
            outcome.message = "the directory returned no users and no groups; nothing was sent".to_string();
        }
        Action::Send => {
            for (i, request) in the_plan.requests.iter().enumerate() {
                info!(
                    provider,
                    request = i + 1,
                    of = the_plan.requests.len(),
                    members = request.members.len(),
                    groups = request.groups.len(),
                    "sending import"
                );
                bitwarden.import(request).await?;
            }
            next_state.sync_hash = Some(the_plan.hash.clone());
            outcome.changes = the_plan.changes;
            outcome.sent = the_plan.requests.iter().map(SentRequest::of).collect();
            outcome.message = match &members {
                Some(_) => format!(
                    "{counts}; {} invited, {} removed",
                    the_plan.changes.invited, the_plan.changes.removed
                ),
                None => format!("{counts} sent ({} removals at most)", the_plan.removals),
            };
            if the_plan.overridden {
                outcome.message.push_str(" (guard overridden)");
            }
        }
        Action::GuardTripped => unreachable!("handled above"),
    }
    next_state.cursor = cursor;
    if prepared.complete {
        next_state.last_active_users = Some(the_plan.active_members);
    }
    next_state.last_successful_sync_time = Some(now.to_string());
    outcome.state = next_state;
    drop(the_plan);
    outcome.prepared = prepared;
    Ok(outcome)
}

/// Lists members; without the endpoint (Vaultwarden), `removeOutOfScope` cannot work and says so.
async fn list_members(bitwarden: &dyn BitwardenApi, required: bool) -> Result<Option<Vec<OrgMember>>, Error> {
    match bitwarden.list_members().await? {
        Some(m) => Ok(Some(m)),
        None if required => Err(Error::invalid(
            "spec.sync.removeOutOfScope",
            "this Bitwarden server cannot list organization members (GET /public/members answered 404, as \
             Vaultwarden does), so members that left the directory cannot be found: turn removeOutOfScope off",
        )),
        None => Ok(None),
    }
}

fn full_read_recent(cursor: &BTreeMap<String, String>, now: Timestamp) -> bool {
    cursor
        .get(FULL_READ_KEY)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_some_and(|t| now.duration_since(t) < SignedDuration::from_hours(FULL_READ_EVERY_HOURS))
}

fn count_users(prepared: &Prepared) -> UserCounts {
    let mut c = UserCounts::default();
    for u in &prepared.users {
        if u.deleted {
            c.deleted += 1;
        } else if u.disabled {
            c.disabled += 1;
        } else {
            c.enabled += 1;
        }
    }
    c
}

impl Outcome {
    fn suspended(state: &SyncState) -> Outcome {
        Outcome {
            reason: Reason::Suspended,
            message: "spec.suspend is true: no syncs run".to_string(),
            users: UserCounts::default(),
            groups: 0,
            left_out: LeftOut::default(),
            changes: Changes::default(),
            plan: None,
            sent: Vec::new(),
            prepared: Prepared::default(),
            state: state.clone(),
            warnings: Vec::new(),
            guard_overridden: false,
            api_url: String::new(),
            complete: false,
        }
    }
}
