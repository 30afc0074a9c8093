//! One whole sync: validate → connect → read → read the organization once → plan → guard →
//! send → collection access → onboarding counts, and say what happened. The controller and the
//! CLI both run it; they differ only in where Secrets come from
//! ([`SecretStore`]) and where the [`SyncState`] and the [`Outcome`] go.

pub mod access;
mod outcome;
mod state;

use std::time::Instant;

use async_trait::async_trait;
use jiff::Timestamp;
use tracing::info;

use crate::Error;
use crate::api::checks::{FieldErrors, parse_duration};
use crate::api::{DirectorySyncSpec, FieldError, Mode, Reason};
use crate::bitwarden::{BitwardenApi, ImportRequest, OrgGroup, OrgMember};
use crate::secrets::SecretStore;
use crate::source::{self, DirectorySource, ReadRequest};
use crate::sync::grace::GraceInput;
use crate::sync::hash::collections_hash;
use crate::sync::onboarding::{self, OnboardingInput};
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
    /// The caller prints only the directory (`dirsync test --json`): the plan is still built
    /// and checked by the guard, but its summary (and the hash it shows) is not.
    pub directory_only: bool,
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

    /// Reads the directory and the organization, plans, sends unless held back or dry, then
    /// applies collection access and counts the onboarding.
    pub async fn sync(self, state: &SyncState, options: &RunOptions) -> Result<Outcome, Error> {
        let spec = self.spec;
        let sync = &spec.sync;
        let provider = source::provider(&spec.source).name();
        let dry_run = options.dry_run || spec.mode == Mode::DryRun;
        let bitwarden = self.bitwarden.as_ref();
        let now = Timestamp::now();

        let collections_hash = collections_hash(&spec.collections);
        // A new access spec is matched against every synced group: that needs a complete read.
        let access_changed = collections_hash.is_some() && collections_hash != state.collections_hash;

        // Read.
        let mut source = self.connector.source(spec, self.secrets).await?;
        let cursor = state.read_cursor(options.force || access_changed, sync.overwrite_existing, now);
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

        // The organization, read once for the whole sync (removals, the guard, the change and
        // onboarding counts). `dirsync test` reads it only when its plan needs the members.
        let org = if !options.dry_run {
            Organization::read(bitwarden, sync.remove_out_of_scope, sync.groups).await?
        } else if sync.remove_out_of_scope || sync.overwrite_existing {
            Organization::read(bitwarden, sync.remove_out_of_scope, false).await?
        } else {
            Organization::default()
        };

        // Plan.
        let input = PlanInput {
            options: sync,
            api_url: bitwarden.api_url(),
            organization_id: bitwarden.organization_id(),
            last_hash: state.sync_hash.as_deref().filter(|_| !options.force),
            last_active_users: state.last_active_users,
            members: org.members.as_deref(),
            groups: org.groups.as_deref(),
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
        let plan = plan::plan(&prepared, &input)?;

        // Guard, dry run, send.
        if plan.action == Action::GuardTripped {
            let why = plan.guard.clone().unwrap_or_default();
            return Err(Error::GuardTripped(format!(
                "{why}; nothing was sent. If this is intended, annotate the DirectorySync with \
                 dirsync.dev/guard-override={} (CLI: --guard-override {}), or raise spec.sync.guard",
                plan.hash(),
                plan.hash()
            )));
        }
        let sent = !dry_run && plan.action == Action::Send;
        if sent {
            send(bitwarden, &plan.requests, provider).await?;
        }

        // Collection access, after the import (the groups it creates exist then). Checked against
        // the organization on every sync, so access changed by hand is put back.
        let access = if options.dry_run {
            access::requested(&spec.collections, &state.collections)
        } else if spec.collections.is_empty() && state.collections.iter().all(|c| c.granted.is_empty()) {
            access::Report::default()
        } else {
            let context = access::Context {
                entries: &spec.collections,
                prepared: &prepared,
                previous: &state.collections,
                groups: org.groups.as_deref().filter(|_| !sent),
                dry_run,
            };
            access::apply(bitwarden, &context).await
        };

        // Onboarding, from the same member list and what the import did.
        let members = match (&org.members, options.dry_run || !sync.users) {
            (Some(list), false) => onboarding::count(&OnboardingInput {
                members: list,
                prepared: &prepared,
                plan: &plan,
                sent,
                invite_users: sync.invite_users,
                overwrite_existing: sync.overwrite_existing,
                last: state.members,
            }),
            _ => None,
        };

        let (reason, next) = if dry_run {
            (Reason::DryRun, state.clone())
        } else {
            let mut next = state.clone();
            if sent {
                next.sync_hash = Some(plan.hash().to_string());
            }
            next.cursor = state.next_cursor(read.cursor, full_read, now);
            if prepared.complete {
                next.last_active_users = Some(plan.active_members);
            }
            next.last_successful_sync_time = Some(now.to_string());
            next.pending_removals = plan.pending.clone();
            next.members = members.or(state.members);
            next.collections = access.collections.clone();
            next.collections_hash = collections_hash;
            let reason = if sent || access.written > 0 {
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
            sent,
            overwrite_existing: sync.overwrite_existing,
            state: next,
            warnings: read.warnings,
            api_url: bitwarden.api_url(),
            access,
            members,
            plan_summary: !options.directory_only,
        });
        drop(plan);
        outcome.prepared = prepared;
        Ok(outcome)
    }
}

/// Sends the import requests in order. A batch that fails says how many had been applied.
async fn send(bitwarden: &dyn BitwardenApi, requests: &[ImportRequest<'_>], provider: &str) -> Result<(), Error> {
    let n = requests.len();
    for (i, request) in requests.iter().enumerate() {
        info!(
            provider,
            request = i + 1,
            of = n,
            members = request.members.len(),
            groups = request.groups.len(),
            "sending import"
        );
        bitwarden.import(request).await.map_err(|e| {
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
    Ok(())
}

/// What was read of the organization; `None` where the server cannot list (Vaultwarden).
#[derive(Default)]
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
