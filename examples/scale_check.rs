//! Scale check (a command, not a test): run it with `./scripts/scale-check.sh`, which starts a
//! local kube-apiserver and a tiny slapd and passes them in the environment.
//!
//! Creates `SCALE_COUNT` (1,000) DirectorySyncs in `mode: DryRun` (Bitwarden is never called),
//! each with its own API key Secret (`organization.<uuid>`, so the one-sync-per-organization lock
//! does not serialise them), all reading the same small slapd; starts `dirsync controller` (all
//! namespaces); waits until every one is Ready; reports the controller's idle RSS; then changes the
//! spec (`spec.sync.interval`) of `SCALE_CHANGES` (100) resources, one every 50 ms, and reports
//! the time from each change to the status with the new `observedGeneration` (p50, p99, max).
//!
//! Environment: `KUBECONFIG`, `SCALE_LDAP_URL`, `SCALE_LDAP_BASE`, `SCALE_LDAP_PASSWORD` (of
//! `cn=admin,<base>`), `DIRSYNC_BIN` (default: `dirsync` beside this example's directory),
//! `SCALE_COUNT`, `SCALE_CHANGES`, `SCALE_CONCURRENCY` (the controller's `--concurrency`).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dirsync::api::DirectorySync;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// Per changed resource: the generation to wait for, and when the change was accepted.
type Pending = HashMap<String, (i64, Option<Instant>)>;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (run ./scripts/scale-check.sh)"))
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn secret(name: &str, data: &[(&str, String)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(data.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()),
        ..Default::default()
    }
}

fn is_ready(ds: &DirectorySync) -> bool {
    ds.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Prints the controller's resident and peak memory.
fn print_rss(pid: u32, when: &str) {
    let kib = |field| dirsync::cli::bench::proc_status_kib(&pid.to_string(), field).unwrap_or(0) as f64 / 1024.0;
    println!(
        "controller RSS {when}: {:.1} MiB (peak {:.1} MiB)",
        kib("VmRSS:"),
        kib("VmHWM:")
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main]
async fn main() {
    dirsync::init_crypto();
    let count = env_or("SCALE_COUNT", 1000);
    let changes = env_or("SCALE_CHANGES", 100).min(count);
    let ldap_url = env("SCALE_LDAP_URL");
    let base = env("SCALE_LDAP_BASE");
    let password = env("SCALE_LDAP_PASSWORD");
    let bin = std::env::var("DIRSYNC_BIN").unwrap_or_else(|_| {
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("dirsync")
            .display()
            .to_string()
    });
    let client = Client::try_default().await.expect("a client from KUBECONFIG");
    let ns = "dirsync-scale";
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let created = namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await;
    if let Err(e) = created {
        panic!("create namespace {ns} (use a fresh cluster): {e}");
    }

    // The resources, 16 requests at a time.
    let t = Instant::now();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let dsyncs: Api<DirectorySync> = Api::namespaced(client.clone(), ns);
    let bind = secret(
        "ldap-bind",
        &[("username", format!("cn=admin,{base}")), ("password", password)],
    );
    secrets.create(&PostParams::default(), &bind).await.unwrap();
    futures::stream::iter(0..count)
        .map(|i| {
            let (secrets, dsyncs, ldap_url, base) = (secrets.clone(), dsyncs.clone(), ldap_url.clone(), base.clone());
            async move {
                let key = format!("bw-{i:04}");
                let org = format!("organization.5ca1e000-0000-4000-8000-{i:012}");
                let s = secret(&key, &[("client_id", org), ("client_secret", "unused".into())]);
                secrets.create(&PostParams::default(), &s).await?;
                let ds: DirectorySync = serde_json::from_value(json!({
                    "apiVersion": "dirsync.dev/v1alpha1",
                    "kind": "DirectorySync",
                    "metadata": {"name": format!("scale-{i:04}")},
                    "spec": {
                        "mode": "DryRun",
                        "bitwarden": {"serverUrl": "http://127.0.0.1:9", "apiKeySecretRef": {"name": key}},
                        "source": {"ldap": {"url": ldap_url, "rootPath": base,
                            "bindSecretRef": {"name": "ldap-bind"},
                            "users": {"path": "ou=people"}, "groups": {"path": "ou=groups"}}},
                        "sync": {"interval": "1h"}
                    }
                }))
                .unwrap();
                dsyncs.create(&PostParams::default(), &ds).await.map(|_| ())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("create the resources");
    println!(
        "created {count} DirectorySyncs and {} Secrets in {:.1?}",
        count + 1,
        t.elapsed()
    );

    // The controller.
    let log = std::env::temp_dir().join("dirsync-scale-controller.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut controller = Command::new(&bin)
        .args(["controller", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(["--concurrency", &env_or("SCALE_CONCURRENCY", 4).to_string()])
        .env("DIRSYNC_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let pid = controller.id();
    let t = Instant::now();
    let deadline = t + Duration::from_secs(600);
    loop {
        let list = dsyncs.list(&Default::default()).await.unwrap();
        let ready = list.items.iter().filter(|d| is_ready(d)).count();
        if ready == count {
            break;
        }
        if let Some(status) = controller.try_wait().unwrap() {
            panic!("the controller exited ({status}); log: {}", log.display());
        }
        assert!(
            Instant::now() < deadline,
            "only {ready} of {count} Ready after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("all {count} Ready {:.1?} after the controller started", t.elapsed());
    print_rss(pid, "right after");
    tokio::time::sleep(Duration::from_secs(15)).await;
    print_rss(pid, "when idle (15 s later)");

    // Latency of spec changes: a watch records when each new generation is reported.
    let pending: Arc<Mutex<Pending>> = Arc::default();
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let names: Vec<String> = (0..changes)
        .map(|i| format!("scale-{:04}", i * (count / changes)))
        .collect();
    let watch = tokio::spawn({
        let (pending, seen, dsyncs) = (pending.clone(), seen.clone(), dsyncs.clone());
        async move {
            let mut events = std::pin::pin!(watcher(dsyncs, watcher::Config::default()).applied_objects());
            while let Some(Ok(ds)) = events.next().await {
                let now = Instant::now();
                let observed = ds.status.as_ref().and_then(|s| s.observed_generation);
                let name = ds.name_any();
                let p = pending.lock().unwrap();
                if let Some((generation, Some(_))) = p.get(&name)
                    && observed >= Some(*generation)
                {
                    seen.lock().unwrap().entry(name).or_insert(now);
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await; // the watch's initial list
    for name in &names {
        let generation = dsyncs.get(name).await.unwrap().metadata.generation.unwrap_or(1) + 1;
        pending.lock().unwrap().insert(name.clone(), (generation, None));
        let patch = json!({"spec": {"sync": {"interval": "2h"}}});
        let t0 = Instant::now();
        let ds = dsyncs
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_eq!(ds.metadata.generation, Some(generation));
        pending.lock().unwrap().insert(name.clone(), (generation, Some(t0)));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < names.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} changes reported after 60 s",
            seen.lock().unwrap().len(),
            names.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watch.abort();
    let mut latencies: Vec<Duration> = {
        let p = pending.lock().unwrap();
        let s = seen.lock().unwrap();
        names
            .iter()
            .map(|n| s[n].saturating_duration_since(p[n].1.unwrap()))
            .collect()
    };
    latencies.sort();
    println!(
        "spec change → new status ({} changes, one per 50 ms): p50 {:.0?}, p99 {:.0?}, max {:.0?}",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    print_rss(pid, "after the changes");
    let _ = controller.kill();
    let _ = controller.wait();
}
