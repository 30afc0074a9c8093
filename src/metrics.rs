//! Every metric in one place, named and labelled exactly as `operations.md` says, and the
//! `/metrics`, `/healthz`, `/readyz` endpoint. Per-resource labels are `namespace` and `name` only;
//! histograms carry no per-resource labels; a deleted resource's series are removed.
//!
//! The HTTP clients record their requests through [`bitwarden_request`] and [`provider_request`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, text::encode};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::api::{MemberCounts, Reason};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderResource {
    namespace: String,
    name: String,
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    namespace: String,
    name: String,
    provider: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    namespace: String,
    name: String,
    provider: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    namespace: String,
    name: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    namespace: String,
    name: String,
    state: String,
}

/// The `state` values of `dirsync_members`.
const MEMBER_STATES: [&str; 5] = ["invited", "accepted", "confirmed", "revoked", "staged"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    namespace: String,
    name: String,
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderRequestLabels {
    provider: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderOpLabels {
    provider: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BitwardenLabels {
    operation: String,
    status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    ready: Family<ProviderResource, Gauge>,
    sync_runs: Family<RunLabels, Counter>,
    sync_errors: Family<ErrorLabels, Counter>,
    last_sync: Family<ResourceLabels, Gauge<f64, AtomicU64>>,
    last_success: Family<ResourceLabels, Gauge<f64, AtomicU64>>,
    interval: Family<ResourceLabels, Gauge<f64, AtomicU64>>,
    last_duration: Family<ResourceLabels, Gauge<f64, AtomicU64>>,
    sync_duration: HistFamily<ProviderLabel>,
    objects: Family<KindLabels, Gauge>,
    members: Family<StateLabels, Gauge>,
    changes: Family<OpLabels, Counter>,
    guard_blocked: Family<ResourceLabels, Counter>,
    provider_requests: Family<ProviderRequestLabels, Counter>,
    provider_duration: HistFamily<ProviderOpLabels>,
    bitwarden_requests: Family<BitwardenLabels, Counter>,
    bitwarden_duration: HistFamily<OperationLabel>,
    reconcile_duration: Histogram,
    leader: Gauge,
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            ready: Family::default(),
            sync_runs: Family::default(),
            sync_errors: Family::default(),
            last_sync: Family::default(),
            last_success: Family::default(),
            interval: Family::default(),
            last_duration: Family::default(),
            sync_duration: Family::new_with_constructor(duration_histogram),
            objects: Family::default(),
            members: Family::default(),
            changes: Family::default(),
            guard_blocked: Family::default(),
            provider_requests: Family::default(),
            provider_duration: Family::new_with_constructor(duration_histogram),
            bitwarden_requests: Family::default(),
            bitwarden_duration: Family::new_with_constructor(duration_histogram),
            reconcile_duration: duration_histogram(),
            leader: Gauge::default(),
        };
        // Counters get their `_total` suffix from the encoder.
        r.register("dirsync_ready", "1 when the DirectorySync is Ready", m.ready.clone());
        r.register("dirsync_sync_runs", "Sync attempts by result", m.sync_runs.clone());
        r.register("dirsync_sync_errors", "Failed syncs by reason", m.sync_errors.clone());
        r.register(
            "dirsync_last_sync_timestamp_seconds",
            "Start of the last sync attempt (Unix time)",
            m.last_sync.clone(),
        );
        r.register(
            "dirsync_last_success_timestamp_seconds",
            "Start of the last successful sync (Unix time)",
            m.last_success.clone(),
        );
        r.register("dirsync_interval_seconds", "spec.sync.interval", m.interval.clone());
        r.register(
            "dirsync_last_sync_duration_seconds",
            "Duration of the last sync attempt",
            m.last_duration.clone(),
        );
        r.register(
            "dirsync_sync_duration_seconds",
            "Duration of sync attempts",
            m.sync_duration.clone(),
        );
        r.register(
            "dirsync_directory_objects",
            "Users and groups read from the directory by the last successful sync",
            m.objects.clone(),
        );
        r.register(
            "dirsync_members",
            "Members this DirectorySync syncs, by onboarding state (accepted: waiting for an admin to confirm them)",
            m.members.clone(),
        );
        r.register("dirsync_changes", "Changes sent to Bitwarden", m.changes.clone());
        r.register(
            "dirsync_guard_blocked",
            "Syncs held back by the mass-removal guard",
            m.guard_blocked.clone(),
        );
        r.register(
            "dirsync_provider_requests",
            "Requests to the directory provider",
            m.provider_requests.clone(),
        );
        r.register(
            "dirsync_provider_request_duration_seconds",
            "Duration of requests to the directory provider",
            m.provider_duration.clone(),
        );
        r.register(
            "dirsync_bitwarden_requests",
            "Requests to the Bitwarden Public API",
            m.bitwarden_requests.clone(),
        );
        r.register(
            "dirsync_bitwarden_request_duration_seconds",
            "Duration of requests to the Bitwarden Public API",
            m.bitwarden_duration.clone(),
        );
        r.register(
            "dirsync_reconcile_duration_seconds",
            "Duration of reconciles",
            m.reconcile_duration.clone(),
        );
        r.register("dirsync_leader", "1 while this replica is the leader", m.leader.clone());
        let build: Family<VersionLabel, Gauge> = Family::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        r.register("dirsync_build_info", "Build information", build);
        r.register_collector(Box::new(ProcessCollector));
        Metrics { registry: r, ..m }
    }
}

fn res(namespace: &str, name: &str) -> ResourceLabels {
    ResourceLabels {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// What one sync attempt recorded.
#[derive(Clone, Debug)]
pub struct SyncRecord<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub provider: &'a str,
    /// The Ready reason of the attempt.
    pub reason: Reason,
    pub started_unix: f64,
    pub seconds: f64,
    pub interval_seconds: f64,
    /// Users (enabled, disabled, deleted) and groups, on success.
    pub objects: Option<(u64, u64, u64, u64)>,
    /// Invites, removals, group upserts sent.
    pub changes: (u64, u64, u64),
    /// Onboarding counts, when this sync counted them.
    pub members: Option<MemberCounts>,
}

type Tracked = std::collections::HashMap<(String, String), String>;

/// The resources that have series: (namespace, name) → the provider label they were recorded with.
fn tracked() -> &'static std::sync::Mutex<Tracked> {
    static TRACKED: OnceLock<std::sync::Mutex<Tracked>> = OnceLock::new();
    TRACKED.get_or_init(Default::default)
}

/// The resources that currently have series.
pub fn resources() -> Vec<(String, String)> {
    tracked()
        .lock()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Records one sync attempt.
pub fn record_sync(r: &SyncRecord) {
    let m = metrics();
    let before = tracked()
        .lock()
        .ok()
        .and_then(|mut t| t.insert((r.namespace.to_string(), r.name.to_string()), r.provider.to_string()));
    let (ns, name, provider) = (r.namespace.to_string(), r.name.to_string(), r.provider.to_string());
    let labels = res(r.namespace, r.name);
    // A provider change must not leave the old provider's series behind.
    if let Some(old) = before.filter(|old| old != r.provider) {
        remove_provider(m, r.namespace, r.name, &old);
    }
    m.ready
        .get_or_create(&ProviderResource {
            namespace: ns.clone(),
            name: name.clone(),
            provider: provider.clone(),
        })
        .set(i64::from(r.reason.is_ready()));
    let result = match r.reason {
        Reason::Synced => Some("success"),
        Reason::Unchanged => Some("unchanged"),
        Reason::DryRun => Some("dry_run"),
        Reason::Suspended => None,
        _ => Some("error"),
    };
    if let Some(result) = result {
        m.sync_runs
            .get_or_create(&RunLabels {
                namespace: ns.clone(),
                name: name.clone(),
                provider: provider.clone(),
                result: result.to_string(),
            })
            .inc();
        m.last_sync.get_or_create(&labels).set(r.started_unix);
        m.last_duration.get_or_create(&labels).set(r.seconds);
        m.sync_duration
            .get_or_create(&ProviderLabel {
                provider: provider.clone(),
            })
            .observe(r.seconds);
    }
    if result == Some("error") {
        m.sync_errors
            .get_or_create(&ErrorLabels {
                namespace: ns.clone(),
                name: name.clone(),
                provider: provider.clone(),
                reason: r.reason.as_str().to_string(),
            })
            .inc();
    } else if result.is_some() {
        m.last_success.get_or_create(&labels).set(r.started_unix);
    }
    if r.reason == Reason::GuardTripped {
        m.guard_blocked.get_or_create(&labels).inc();
    }
    m.interval.get_or_create(&labels).set(r.interval_seconds);
    if let Some((enabled, disabled, deleted, groups)) = r.objects {
        for (kind, v) in [
            ("user_enabled", enabled),
            ("user_disabled", disabled),
            ("user_deleted", deleted),
            ("group", groups),
        ] {
            m.objects
                .get_or_create(&KindLabels {
                    namespace: ns.clone(),
                    name: name.clone(),
                    kind: kind.to_string(),
                })
                .set(v as i64);
        }
    }
    if let Some(c) = r.members {
        for (state, v) in MEMBER_STATES
            .into_iter()
            .zip([c.invited, c.accepted, c.confirmed, c.revoked, c.staged])
        {
            m.members
                .get_or_create(&StateLabels {
                    namespace: ns.clone(),
                    name: name.clone(),
                    state: state.to_string(),
                })
                .set(v as i64);
        }
    }
    for (op, v) in [
        ("invite", r.changes.0),
        ("remove", r.changes.1),
        ("group_upsert", r.changes.2),
    ] {
        let c = m.changes.get_or_create(&OpLabels {
            namespace: ns.clone(),
            name: name.clone(),
            op: op.to_string(),
        });
        c.inc_by(v);
    }
}

fn remove_provider(m: &Metrics, namespace: &str, name: &str, provider: &str) {
    let (ns, n, p) = (namespace.to_string(), name.to_string(), provider.to_string());
    m.ready.remove(&ProviderResource {
        namespace: ns.clone(),
        name: n.clone(),
        provider: p.clone(),
    });
    for result in ["success", "unchanged", "dry_run", "error"] {
        m.sync_runs.remove(&RunLabels {
            namespace: ns.clone(),
            name: n.clone(),
            provider: p.clone(),
            result: result.to_string(),
        });
    }
    for reason in Reason::ALL {
        m.sync_errors.remove(&ErrorLabels {
            namespace: ns.clone(),
            name: n.clone(),
            provider: p.clone(),
            reason: reason.as_str().to_string(),
        });
    }
}

/// Removes every series of a deleted resource.
pub fn forget(namespace: &str, name: &str) {
    let m = metrics();
    let provider = tracked()
        .lock()
        .ok()
        .and_then(|mut t| t.remove(&(namespace.to_string(), name.to_string())));
    if let Some(provider) = provider {
        remove_provider(m, namespace, name, &provider);
    }
    let labels = res(namespace, name);
    m.last_sync.remove(&labels);
    m.last_success.remove(&labels);
    m.interval.remove(&labels);
    m.last_duration.remove(&labels);
    m.guard_blocked.remove(&labels);
    for kind in ["user_enabled", "user_disabled", "user_deleted", "group"] {
        m.objects.remove(&KindLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind: kind.to_string(),
        });
    }
    for state in MEMBER_STATES {
        m.members.remove(&StateLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
            state: state.to_string(),
        });
    }
    for op in ["invite", "remove", "group_upsert"] {
        m.changes.remove(&OpLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
            op: op.to_string(),
        });
    }
}

/// Records the time one reconcile took.
pub fn reconcile_duration(seconds: f64) {
    metrics().reconcile_duration.observe(seconds);
}

/// Sets `dirsync_leader`.
pub fn set_leader(leader: bool) {
    metrics().leader.set(i64::from(leader));
}

/// Records one request of the Bitwarden client. `operation`: `token`, `import`, `list_members`,
/// `list_groups`, `list_collections`, `get_collection`, `put_collection`;
/// `status_class`: `2xx`, `4xx`, `429`, `5xx` or `transport` (see [`status_class`]).
pub fn bitwarden_request(operation: &str, status_class: &str, seconds: f64) {
    let m = metrics();
    m.bitwarden_requests
        .get_or_create(&BitwardenLabels {
            operation: operation.to_string(),
            status_class: status_class.to_string(),
        })
        .inc();
    m.bitwarden_duration
        .get_or_create(&OperationLabel {
            operation: operation.to_string(),
        })
        .observe(seconds);
}

/// The `status_class` label of an HTTP status (`None`: a transport error).
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "transport",
        Some(429) => "429",
        Some(200..=299) => "2xx",
        Some(500..=599) => "5xx",
        Some(_) => "4xx",
    }
}

/// Records one request of a directory provider (`provider`: `ldap`, `entraId`, ...; `outcome`:
/// `success`, `error` or `throttled`).
pub fn provider_request(provider: &str, operation: &str, outcome: &str, seconds: f64) {
    let m = metrics();
    m.provider_requests
        .get_or_create(&ProviderRequestLabels {
            provider: provider.to_string(),
            operation: operation.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
    m.provider_duration
        .get_or_create(&ProviderOpLabels {
            provider: provider.to_string(),
            operation: operation.to_string(),
        })
        .observe(seconds);
}

/// The exposition text (OpenMetrics).
pub fn render() -> String {
    let mut out = String::new();
    if encode(&mut out, &metrics().registry).is_err() {
        out.clear();
    }
    out
}

/// `process_*` metrics from `/proc/self` (Linux); nothing elsewhere.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = process_stats() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor("process_cpu_seconds", "CPU time used", None, cpu.metric_type())?)?;
        for (name, help, v) in [
            ("process_resident_memory_bytes", "Resident memory", p.rss_bytes),
            ("process_virtual_memory_bytes", "Virtual memory", p.vsize_bytes),
            ("process_start_time_seconds", "Start time (Unix time)", p.start_time),
            ("process_open_fds", "Open file descriptors", p.open_fds),
        ] {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

struct ProcessStats {
    cpu_seconds: f64,
    rss_bytes: f64,
    vsize_bytes: f64,
    start_time: f64,
    open_fds: f64,
}

fn process_stats() -> Option<ProcessStats> {
    const TICKS: f64 = 100.0; // USER_HZ on Linux
    const PAGE: f64 = 4096.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    let utime = num(14)?;
    let stime = num(15)?;
    let start_ticks = num(22)?;
    let vsize = num(23)?;
    let rss_pages = num(24)?;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))?;
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as f64)
        .unwrap_or(0.0);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS,
        rss_bytes: rss_pages * PAGE,
        vsize_bytes: vsize,
        start_time: boot + start_ticks / TICKS,
        open_fds,
    })
}

/// Health flags served on `/healthz` (alive) and `/readyz` (the watches are running).
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, health: Health) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, health).await
}

/// Serves `/metrics`, `/healthz` and `/readyz` on a bound listener.
pub async fn serve_on(listener: tokio::net::TcpListener, health: Health) -> std::io::Result<()> {
    tracing::info!(addr = ?listener.local_addr().ok(), "serving /metrics, /healthz and /readyz");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let health = health.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, health.clone()));
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>, health: Health) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok".to_string()),
        "/readyz" if health.is_ready() => (StatusCode::OK, "text/plain", "ok".to_string()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready".to_string()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found".to_string()),
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, reason: Reason) -> SyncRecord<'_> {
        SyncRecord {
            namespace: "ns",
            name,
            provider: "ldap",
            reason,
            started_unix: 1_700_000_000.0,
            seconds: 0.5,
            interval_seconds: 3600.0,
            objects: Some((3, 1, 0, 2)),
            changes: (3, 0, 2),
            members: Some(MemberCounts {
                invited: 4,
                accepted: 2,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn names_labels_and_removal() {
        record_sync(&record("m-a", Reason::Synced));
        record_sync(&record("m-a", Reason::GuardTripped));
        record_sync(&record("m-b", Reason::Unchanged));
        bitwarden_request("import", status_class(Some(200)), 0.1);
        provider_request("ldap", "search", "success", 0.1);
        set_leader(true);
        let text = render();
        for want in [
            r#"dirsync_ready{namespace="ns",name="m-a",provider="ldap"} 0"#,
            r#"dirsync_sync_runs_total{namespace="ns",name="m-a",provider="ldap",result="success"} 1"#,
            r#"dirsync_sync_errors_total{namespace="ns",name="m-a",provider="ldap",reason="GuardTripped"} 1"#,
            r#"dirsync_guard_blocked_total{namespace="ns",name="m-a"} 1"#,
            r#"dirsync_directory_objects{namespace="ns",name="m-a",kind="user_enabled"} 3"#,
            r#"dirsync_changes_total{namespace="ns",name="m-a",op="invite"} 6"#,
            r#"dirsync_members{namespace="ns",name="m-a",state="accepted"} 2"#,
            r#"dirsync_members{namespace="ns",name="m-a",state="staged"} 0"#,
            r#"dirsync_interval_seconds{namespace="ns",name="m-a"} 3600.0"#,
            r#"dirsync_last_success_timestamp_seconds{namespace="ns",name="m-a"} 1700000000.0"#,
            r#"dirsync_bitwarden_requests_total{operation="import",status_class="2xx"} 1"#,
            r#"dirsync_provider_requests_total{provider="ldap",operation="search",outcome="success"} 1"#,
            r#"dirsync_sync_duration_seconds_bucket{le="0.01",provider="ldap"}"#,
            "dirsync_reconcile_duration_seconds_count",
            "dirsync_leader 1",
            r#"dirsync_build_info{version=""#,
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        forget("ns", "m-a");
        let text = render();
        assert!(!text.contains(r#"name="m-a""#), "m-a still present:\n{text}");
        assert!(text.contains(r#"name="m-b""#));
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(None), "transport");
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(401)), "4xx");
        assert_eq!(status_class(Some(429)), "429");
        assert_eq!(status_class(Some(503)), "5xx");
    }
}
