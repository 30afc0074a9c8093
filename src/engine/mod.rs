//! One whole sync: validate → connect → read → plan → guard → send, and say what happened. The
//! controller and the CLI both run it; they differ only in where Secrets come from
//! ([`SecretStore`]) and where the [`SyncState`] and the [`Outcome`] go.

mod outcome;
mod state;

use std::time::Instant;

use async_trait::async_trait;
use jiff::Timestamp;
use tracing::info;

use crate::Error;
use crate::api::checks::{FieldErrors, parse_duration};
use crate::api::{DirectorySyncSpec, FieldError, Mode, Reason};
use crate::bitwarden::{BitwardenApi, OrgGroup, OrgMember};
use crate::secrets::SecretStore;
use crate::source::{self, DirectorySource, ReadRequest};
use crate::sync::grace::GraceInput;
use crate::sync::plan::{self, Action, PlanInput};
use crate::sync::prepare::{PrepareOptions, prepare};

pub use outcome::{Outcome, SentRequest};
pub use state::{FULL_READ_KEY, SyncState};

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
        source::provider(&spec.source).connect(secrets).await
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

/// Checks a whole spec: the resource's own fields and the provider's settings. Every problem
/// is returned at once, each with its field path.
pub fn validate(spec: &DirectorySyncSpec) -> Result<(), Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    crate::api::validate::validate(spec, &mut errors);
    source::provider(&spec.source).validate(&mut errors);
    errors.into_result()
}

/// Runs one sync. On error nothing of the state moves: the next sync repeats the same reads.
pub async fn run(
    spec: &DirectorySyncSpec,
    state: &SyncState,
    options: &RunOptions,
    secrets: &dyn SecretStore,
    connector: &dyn Connector,
) -> Result<Outcome, Error> {
    match Session::open(spec, secrets, connector).await? {
        Some(session) => session.sync(state, options).await,
        None => Ok(Outcome::suspended(state)),
    }
}

/// A validated spec with its Bitwarden client: what a sync needs before it touches the network.
pub struct Session<'a> {
    spec: &'a DirectorySyncSpec,
    secrets: &'a dyn SecretStore,
    connector: &'a dyn Connector,
    bitwarden: Box<dyn BitwardenApi>,
}

impl<'a> Session<'a> {
    /// Validates the spec and builds the Bitwarden client (Secrets read, nothing sent).
    /// `None` while the spec is suspended.
    pub async fn open(
        spec: &'a DirectorySyncSpec,
        secrets: &'a dyn SecretStore,
        connector: &'a dyn Connector,
    ) -> Result<Option<Session<'a>>, Error> {
        validate(spec).map_err(Error::InvalidSpec)?;
        if spec.suspend {
            return Ok(None);
        }
        let bitwarden = connector.bitwarden(spec, secrets).await?;
        Ok(Some(Session {
            spec,
            secrets,
            connector,
            bitwarden,
        }))
    }

    /// The organization this session writes to (API URL and organization id): two sessions
    /// with the same key must not sync at the same time.
    pub fn organization(&self) -> String {
        format!("{}\n{}", self.bitwarden.api_url(), self.bitwarden.organization_id())
    }

    /// Reads the directory, plans, and sends unless held back or dry.
    pub async fn sync(self, state: &SyncState, options: &RunOptions) -> Result<Outcome, Error> {
        let spec = self.spec;
        let sync = &spec.sync;
        let provider = source::provider(&spec.source).name();
        let dry_run = options.dry_run || spec.mode == Mode::DryRun;
        let bitwarden = self.bitwarden.as_ref();
        let now = Timestamp::now();

        // Read.
        let mut source = self.connector.source(spec, self.secrets).await?;
        let cursor = state.read_cursor(options.force, sync.overwrite_existing, now);
        let full_read = cursor.is_none();
        info!(provider, full_read, "reading the directory");
        let started = Instant::now();
        let read = source.read(&ReadRequest::new(sync, cursor)).await?;
        drop(source);
        info!(
            provider,
            users = read.directory.users.len(),
            groups = read.directory.groups.len(),
            seconds = started.elapsed().as_secs_f64(),
            "read the directory"
        );
        let prepared = prepare(
            read.directory,
            PrepareOptions {
                users: sync.users,
                groups: sync.groups,
                remove_disabled: sync.remove_disabled,
            },
        )?;

        // Plan. The organization is read only when the plan needs it: first for
        // removeOutOfScope (the removals are part of the request), else once the request is
        // known to be sent (for exact removal and change counts).
        let early = if sync.remove_out_of_scope || (dry_run && sync.overwrite_existing) {
            Some(Organization::read(bitwarden, sync.remove_out_of_scope, false).await?)
        } else {
            None
        };
        let mut input = PlanInput {
            options: sync,
            api_url: bitwarden.api_url(),
            organization_id: bitwarden.organization_id(),
            last_hash: state.sync_hash.as_deref().filter(|_| !options.force),
            last_active_users: state.last_active_users,
            members: early.as_ref().and_then(|o| o.members.as_deref()),
            groups: None,
            guard_override: options.guard_override.as_deref(),
            grace: GraceInput {
                // Validated above: an unparsable value cannot reach here.
                period: sync
                    .removal_grace_period
                    .as_deref()
                    .and_then(|d| parse_duration(d).ok()),
                now,
                pending: &state.pending_removals,
            },
        };
        let draft = plan::draft(&prepared, &input)?;
        let late = if early.is_none() && !dry_run && !draft.settles_without_organization(&prepared, &input) {
            Some(Organization::read(bitwarden, false, sync.groups).await?)
        } else {
            None
        };
        if let Some(org) = &late {
            input.members = org.members.as_deref();
            input.groups = org.groups.as_deref();
        }
        let plan = plan::assess(&prepared, draft, &input);

        // Guard, dry run, send.
        if plan.action == Action::GuardTripped {
            let why = plan.guard.clone().unwrap_or_default();
            return Err(Error::GuardTripped(format!(
                "{why}; nothing was sent. If this is intended, annotate the DirectorySync with \
                 dirsync.dev/guard-override={} (CLI: --guard-override {}), or raise spec.sync.guard",
                plan.hash, plan.hash
            )));
        }
        let (reason, next) = if dry_run {
            (Reason::DryRun, state.clone())
        } else {
            if plan.action == Action::Send {
                for (i, request) in plan.requests.iter().enumerate() {
                    info!(
                        provider,
                        request = i + 1,
                        of = plan.requests.len(),
                        members = request.members.len(),
                        groups = request.groups.len(),
                        "sending import"
                    );
                    bitwarden.import(request).await.map_err(|e| {
                        let n = plan.requests.len();
                        if n == 1 {
                            return e;
                        }
                        // A batch that may have been applied (a timeout mid-import) counts as maybe.
                        let applied = if crate::net::outcome_unknown(&e) {
                            format!("{i} (or {}) of {n}", i + 1)
                        } else {
                            format!("{i} of {n}")
                        };
                        e.with_note(&format!(
                            "{applied} import batches had been applied; the next sync sends them all again \
                             (an import is idempotent)"
                        ))
                    })?;
                }
            }
            let mut next = state.clone();
            if plan.action == Action::Send {
                next.sync_hash = Some(plan.hash.clone());
            }
            next.cursor = state.next_cursor(read.cursor, full_read, now);
            if prepared.complete {
                next.last_active_users = Some(plan.active_members);
            }
            next.last_successful_sync_time = Some(now.to_string());
            next.pending_removals = plan.pending.clone();
            let reason = if plan.action == Action::Send {
                Reason::Synced
            } else {
                Reason::Unchanged
            };
            (reason, next)
        };
        let mut outcome = Outcome::new(outcome::Facts {
            prepared: &prepared,
            plan: &plan,
            reason,
            sent: reason == Reason::Synced,
            overwrite_existing: sync.overwrite_existing,
            state: next,
            warnings: read.warnings,
            api_url: bitwarden.api_url(),
        });
        drop(plan);
        outcome.prepared = prepared;
        Ok(outcome)
    }
}

/// What was read of the organization; `None` where the server cannot list (Vaultwarden).
struct Organization {
    members: Option<Vec<OrgMember>>,
    groups: Option<Vec<OrgGroup>>,
}

impl Organization {
    /// Lists the members (and the groups when asked). Without the member endpoint,
    /// `removeOutOfScope` (`members_required`) cannot work and says so.
    async fn read(bitwarden: &dyn BitwardenApi, members_required: bool, groups: bool) -> Result<Organization, Error> {
        let members = bitwarden.list_members().await?;
        if members.is_none() && members_required {
            return Err(Error::invalid(
                "spec.sync.removeOutOfScope",
                "this Bitwarden server cannot list organization members (GET /public/members answered 404, as \
                 Vaultwarden does), so members that left the directory cannot be found: turn removeOutOfScope off",
            ));
        }
        let groups = if groups { bitwarden.list_groups().await? } else { None };
        Ok(Organization { members, groups })
    }
}
