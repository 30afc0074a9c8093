//! The operator: a kube-runtime `Controller` over DirectorySyncs that runs the [`engine`] when a
//! sync is due ([`reconcile::decide`]), writes the status ([`status`]), publishes events
//! ([`events`]) and records metrics ([`crate::metrics`]). Referenced Secrets are watched
//! (metadata only), so a Secret change re-syncs the DirectorySyncs that use it.

pub mod events;
pub mod leader;
pub mod reconcile;
pub mod secrets;
pub mod status;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Config, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::Error;
use crate::api::checks::parse_duration;
use crate::api::{DirectorySync, DirectorySyncStatus, GUARD_OVERRIDE_ANNOTATION, SYNC_NOW_ANNOTATION};
use crate::engine::{Connector, Outcome, RunOptions, Session};
use crate::metrics::{self, Health};
use reconcile::{Decision, Inputs};
use secrets::KubeSecretStore;

const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `dirsync controller` settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch one namespace; all when `None`.
    pub namespace: Option<String>,
    pub concurrency: u16,
    pub metrics_addr: SocketAddr,
    pub leader_election: bool,
    pub lease_name: String,
    pub lease_namespace: String,
    /// This replica's name in the lease and in events (the pod name in a cluster).
    pub identity: String,
}

/// Shared by every reconcile.
pub struct Context {
    client: Client,
    recorder: Recorder,
    connector: Arc<dyn Connector>,
    /// Consecutive failures per resource (namespace/name), in memory.
    failures: Mutex<HashMap<String, u32>>,
    /// Organizations being synced now (API URL + client id) → the resource syncing it.
    orgs: Arc<Mutex<HashMap<String, String>>>,
    /// The last status this process wrote per resource. The watch cache can lag behind a status
    /// write; deciding from the stale copy would run the same sync twice.
    written: Mutex<HashMap<String, DirectorySyncStatus>>,
}

impl Context {
    pub fn new(client: Client, identity: &str, connector: Arc<dyn Connector>) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "dirsync".into(),
                instance: Some(identity.to_string()),
            },
        );
        Context {
            client,
            recorder,
            connector,
            failures: Mutex::new(HashMap::new()),
            orgs: Arc::new(Mutex::new(HashMap::new())),
            written: Mutex::new(HashMap::new()),
        }
    }
}

impl Context {
    fn forget_written_if_cached(&self, ds: &DirectorySync) {
        let mut written = self.written.lock().expect("lock");
        let k = key(ds);
        let time = |s: Option<&DirectorySyncStatus>| s?.last_sync_time.as_deref()?.parse::<Timestamp>().ok();
        if written
            .get(&k)
            .is_some_and(|w| time(ds.status.as_ref()) >= time(Some(w)))
        {
            written.remove(&k);
        }
    }
}

/// Errors that are not the user's: the Kubernetes API failed. Retried with a delay.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

fn key(ds: &DirectorySync) -> String {
    format!("{}/{}", ds.namespace().unwrap_or_default(), ds.name_any())
}

/// Holds an organization for one sync; released on drop.
struct OrgLock {
    orgs: Arc<Mutex<HashMap<String, String>>>,
    key: String,
}

impl Drop for OrgLock {
    fn drop(&mut self) {
        if let Ok(mut m) = self.orgs.lock() {
            m.remove(&self.key);
        }
    }
}

/// Takes `org` for `holder`, or names the resource that holds it.
fn lock_org(orgs: &Arc<Mutex<HashMap<String, String>>>, org: String, holder: &str) -> Result<OrgLock, String> {
    let mut m = orgs.lock().expect("lock");
    if let Some(other) = m.get(&org)
        && other != holder
    {
        return Err(other.clone());
    }
    m.insert(org.clone(), holder.to_string());
    Ok(OrgLock {
        orgs: orgs.clone(),
        key: org,
    })
}

/// One reconcile: decide, and when due, sync and record.
pub async fn reconcile(ds: Arc<DirectorySync>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(&ds, &ctx).await;
    metrics::reconcile_duration(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(ds: &DirectorySync, ctx: &Context) -> Result<Action, ReconcileError> {
    let ns = ds.namespace().unwrap_or_else(|| "default".into());
    let name = ds.name_any();
    let spec = &ds.spec;
    let interval = parse_duration(&spec.sync.interval).unwrap_or(Duration::from_secs(3600));
    let secret_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let names = secrets::referenced_secrets(spec);
    let versions = secrets::secret_versions(&secret_api, &names).await?;
    let secrets_hash = secrets::secrets_hash(&versions);
    let annotations = ds.annotations();
    let sync_now = annotations.get(SYNC_NOW_ANNOTATION).map(String::as_str);
    let failures = ctx.failures.lock().expect("lock").get(&key(ds)).copied().unwrap_or(0);
    let now = Timestamp::now();
    let written = ctx.written.lock().expect("lock").get(&key(ds)).cloned();
    let current = reconcile::freshest(ds.status.as_ref(), written.as_ref());
    let decision = reconcile::decide(&Inputs {
        generation: ds.metadata.generation,
        status: current,
        sync_now,
        secrets_hash: &secrets_hash,
        interval,
        suspend: spec.suspend,
        failures,
        now,
    });
    let force = match decision {
        Decision::Wait { until: None } => return Ok(Action::await_change()),
        Decision::Wait { until: Some(t) } => return Ok(Action::requeue(reconcile::requeue_after(t, now))),
        Decision::Sync { why, force } => {
            info!(namespace = %ns, name = %name, ?why, force, "sync due");
            force
        }
    };

    // Run the engine.
    let store = KubeSecretStore::new(ctx.client.clone(), &ns);
    store.prefetch(&names).await?;
    let options = RunOptions {
        force,
        guard_override: annotations.get(GUARD_OVERRIDE_ANNOTATION).cloned(),
        ..RunOptions::default()
    };
    let state = status::sync_state(current);
    let timer = Instant::now();
    let result = match Session::open(spec, &store, ctx.connector.as_ref()).await {
        Ok(None) => Ok(Outcome::suspended(&state)),
        Ok(Some(session)) => match lock_org(&ctx.orgs, session.organization(), &key(ds)) {
            Ok(_lock) => session.sync(&state, &options).await,
            Err(other) => Err(Error::Conflict(format!(
                "DirectorySync {other} targets the same Bitwarden organization and is syncing now; this one \
                 retries later. Point only one DirectorySync at an organization"
            ))),
        },
        Err(e) => Err(e),
    };
    drop(store);
    let seconds = timer.elapsed().as_secs_f64();
    let failures = {
        let mut m = ctx.failures.lock().expect("lock");
        match &result {
            Ok(_) => {
                m.remove(&key(ds));
                0
            }
            Err(_) => {
                let n = m.entry(key(ds)).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
        }
    };
    match &result {
        Ok(o) => info!(namespace = %ns, name = %name, reason = %o.reason, "{}", o.message),
        Err(e) => warn!(namespace = %ns, name = %name, reason = %e.reason(), "{e}"),
    }

    let provider = crate::source::provider(&spec.source).name();
    let new_status = status::after_attempt(
        current,
        &result,
        &status::Attempt {
            generation: ds.metadata.generation,
            provider,
            started: now,
            interval,
            failures,
            sync_now,
            secrets_hash: &secrets_hash,
        },
    );
    let api: Api<DirectorySync> = Api::namespaced(ctx.client.clone(), &ns);
    status::write(&api, &name, current, &new_status).await?;
    ctx.written.lock().expect("lock").insert(key(ds), new_status.clone());
    events::publish(&ctx.recorder, ds, &result).await;

    let reason = match &result {
        Ok(o) => o.reason,
        Err(e) => e.reason(),
    };
    let (objects, changes) = match &result {
        Ok(o) if o.reason != crate::api::Reason::Suspended => (
            // After an incremental read the counts are of changes only: keep the last gauges.
            o.complete
                .then_some((o.users.enabled, o.users.disabled, o.users.deleted, o.groups)),
            (
                o.changes.invited.unwrap_or(0),
                o.changes.removed.unwrap_or(0),
                o.changes.groups_sent,
            ),
        ),
        _ => (None, (0, 0, 0)),
    };
    metrics::record_sync(&metrics::SyncRecord {
        namespace: &ns,
        name: &name,
        provider,
        reason,
        started_unix: now.as_millisecond() as f64 / 1000.0,
        seconds,
        interval_seconds: interval.as_secs_f64(),
        objects,
        changes,
        members: result.as_ref().ok().and_then(|o| o.members),
    });
    drop(result);
    return_freed_memory();

    Ok(match reconcile::next_due(&new_status, interval, failures) {
        Some(due) if !spec.suspend => Action::requeue(reconcile::requeue_after(due, Timestamp::now())),
        _ => Action::await_change(),
    })
}

/// API failures (not the user's): retry after 30 s.
pub fn error_policy(ds: Arc<DirectorySync>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    warn!(namespace = ?ds.namespace(), name = %ds.name_any(), error = %error, "reconcile failed; retrying in 30s");
    Action::requeue(reconcile::BACKOFF_START)
}

/// The DirectorySyncs in the Secret's namespace that reference it.
fn owners(store: &Store<DirectorySync>, secret: &PartialObjectMeta<Secret>) -> Vec<ObjectRef<DirectorySync>> {
    let ns = secret.metadata.namespace.as_deref();
    let Some(name) = secret.metadata.name.as_deref() else {
        return Vec::new();
    };
    store
        .state()
        .into_iter()
        .filter(|ds| ds.metadata.namespace.as_deref() == ns && secrets::referenced_secrets(&ds.spec).contains(name))
        .map(|ds| ObjectRef::from_obj(&*ds))
        .collect()
}

/// Runs the controller until `stop` resolves (in-flight syncs finish first).
pub async fn run_controller(
    client: Client,
    opts: &Options,
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    type Apis = (
        Api<DirectorySync>,
        Api<PartialObjectMeta<DirectorySync>>,
        Api<PartialObjectMeta<Secret>>,
    );
    let (dsyncs, dsync_meta, secrets_api): Apis = match &opts.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    // The cache holds every DirectorySync; their managedFields and kubectl's last-applied copy
    // (JSON the controller never reads) would be most of its memory: dropped before caching.
    let (reader, writer) = reflector::store();
    let caught_up = ctx.clone();
    let objects = watcher::watcher(dsyncs, watcher::Config::default())
        .default_backoff()
        .modify(|ds: &mut DirectorySync| {
            ds.managed_fields_mut().clear();
            ds.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
        })
        .reflect(writer)
        .applied_objects()
        // Once the cache holds our last status write, the remembered copy is no longer needed.
        .inspect_ok(move |ds| caught_up.forget_written_if_cached(ds));
    let ctrl = Controller::for_stream(objects, reader);
    let store = ctrl.store();
    // Deletions do not reach reconcile: a metadata-only watch of the same resources removes a
    // deleted resource's series and memory.
    let deletions = tokio::spawn(forget_deleted(dsync_meta, ctx.clone()));
    ctrl.watches(secrets_api, watcher::Config::default(), move |secret| {
        owners(&store, &secret)
    })
    .with_config(Config::default().concurrency(opts.concurrency.max(1)))
    .graceful_shutdown_on(stop)
    .run(reconcile, error_policy, ctx.clone())
    .for_each(|result| {
        match result {
            Ok(_) => {}
            Err(controller::Error::ObjectNotFound(obj)) => {
                forget_resource(&ctx, obj.namespace.as_deref().unwrap_or_default(), &obj.name)
            }
            Err(e) => warn!(error = %e, "controller"),
        }
        std::future::ready(())
    })
    .await;
    deletions.abort();
}

/// Removes what this process keeps about deleted resources: on each `Delete` event, and after
/// each (re)list for the resources that are gone (a delete missed while the watch was down).
async fn forget_deleted(api: Api<PartialObjectMeta<DirectorySync>>, ctx: Arc<Context>) {
    let mut listed: HashSet<(String, String)> = HashSet::new();
    let mut events = std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let id = |m: &PartialObjectMeta<DirectorySync>| (m.namespace().unwrap_or_default(), m.name_any());
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Delete(m)) => {
                let (ns, name) = id(&m);
                forget_resource(&ctx, &ns, &name);
            }
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(m)) => {
                listed.insert(id(&m));
            }
            Ok(watcher::Event::InitDone) => {
                for (ns, name) in metrics::resources() {
                    if !listed.contains(&(ns.clone(), name.clone())) {
                        forget_resource(&ctx, &ns, &name);
                    }
                }
            }
            Ok(watcher::Event::Apply(_)) => {}
            Err(e) => warn!(error = %e, "watching DirectorySyncs for deletions"),
        }
    }
}

fn forget_resource(ctx: &Context, namespace: &str, name: &str) {
    info!(namespace, name, "deleted: removing its metric series");
    metrics::forget(namespace, name);
    let key = format!("{namespace}/{name}");
    ctx.failures.lock().expect("lock").remove(&key);
    ctx.written.lock().expect("lock").remove(&key);
}

/// `dirsync controller`: serves metrics and health, (optionally) campaigns for the lease, and
/// reconciles until SIGTERM or SIGINT.
pub async fn run(opts: Options, connector: Arc<dyn Connector>) -> Result<(), String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("cannot build a Kubernetes client (in-cluster config or KUBECONFIG): {e}"))?;
    let health = Health::default();
    let listener = tokio::net::TcpListener::bind(opts.metrics_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.metrics_addr))?;
    tokio::spawn({
        let health = health.clone();
        async move {
            if let Err(e) = metrics::serve_on(listener, health).await {
                warn!(error = %e, "metrics endpoint stopped");
            }
        }
    });
    metrics::set_leader(false);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down: no new syncs start; waiting for running ones");
        let _ = shutdown_tx.send(true);
    });
    let ctx = Arc::new(Context::new(client.clone(), &opts.identity, connector));
    health.set_ready(true);

    if !opts.leader_election {
        metrics::set_leader(true);
        run_controller(client, &opts, ctx, until_true(shutdown_rx.clone())).await;
        return Ok(());
    }

    let (leader_tx, mut leader_rx) = watch::channel(false);
    let (stop_elector_tx, stop_elector_rx) = watch::channel(false);
    let elector = leader::Elector::new(client.clone(), &opts.lease_namespace, &opts.lease_name, &opts.identity);
    let elector_task = tokio::spawn(elector.run(leader_tx, stop_elector_rx));
    info!(lease = %opts.lease_name, namespace = %opts.lease_namespace, identity = %opts.identity, "waiting for leadership");
    let mut shutdown = shutdown_rx.clone();
    loop {
        tokio::select! {
            _ = leader_rx.wait_for(|l| *l) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        info!("leading: reconciling");
        // Stop on shutdown or on lost leadership.
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let mut lost = leader_rx.clone();
        let mut sd = shutdown_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = lost.wait_for(|l| !*l) => {}
                _ = sd.wait_for(|s| *s) => {}
            }
            let _ = stop_tx.send(());
        });
        run_controller(client.clone(), &opts, ctx.clone(), stop_rx.map(|_| ())).await;
        if *shutdown_rx.borrow() {
            break;
        }
        warn!("lost leadership: stopped reconciling");
    }
    let _ = stop_elector_tx.send(true);
    let _ = elector_task.await;
    Ok(())
}

fn until_true(rx: watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    let (tx, done) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut rx = rx;
        let _ = rx.wait_for(|v| *v).await;
        let _ = tx.send(());
    });
    done.map(|_| ())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A sync's directory is freed when the sync ends, but glibc keeps freed pages in its heap: a
/// controller that synced 100k users stayed at 60–80 MiB instead of its idle 12 MiB. Handing them
/// back keeps the pod near its idle size between syncs (`scripts/bench-controller.sh`).
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the heap to the system; no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sync_per_organization_at_a_time() {
        let orgs = Arc::new(Mutex::new(HashMap::new()));
        let org = || "https://api.bitwarden.com\n1".to_string();
        let a = lock_org(&orgs, org(), "ns/a").unwrap();
        assert_eq!(lock_org(&orgs, org(), "ns/b").err().as_deref(), Some("ns/a"));
        let other = lock_org(&orgs, "https://api.bitwarden.com\n2".into(), "ns/b");
        assert!(other.is_ok(), "another organization is free");
        drop(a);
        assert!(lock_org(&orgs, org(), "ns/b").is_ok(), "released when the sync ends");
    }
}
