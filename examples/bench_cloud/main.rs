//! Cloud source benchmark (a command, not a test): run it with `./scripts/bench-cloud.sh
//! PROVIDER`. Starts the provider's test double serving the synthetic company (50,000 users,
//! 2,000 groups of 25–500 members) with a delay on every answer, as a real API has (20 ms), then
//! runs the release `dirsync test --json` against it under `/usr/bin/time -v` and reports wall
//! time, peak RSS and the requests the double answered, by route.
//!
//! Arguments: `PROVIDER [--users N] [--groups N] [--latency-ms N] [--dirsync PATH]`.
//! Each provider adds a module here with `start(&Company, latency) -> Box<dyn Served>`, built on
//! its double in `tests/support/<provider>.rs` (included below with `#[path]`).

// The test doubles themselves, with the sibling support modules they use (`super::double`, ...).
#[path = "../../tests/support/double.rs"]
#[allow(dead_code)]
mod double;
#[path = "../../tests/support/entra.rs"]
#[allow(dead_code)]
mod entra_double;
#[path = "../../tests/support/google.rs"]
#[allow(dead_code)]
mod google_double;
#[path = "../../tests/support/okta.rs"]
#[allow(dead_code)]
mod okta_double;
#[path = "../../tests/support/onelogin.rs"]
#[allow(dead_code)]
mod onelogin_double;
#[path = "../../tests/support/secrets.rs"]
#[allow(dead_code)]
mod secrets;

// Each provider uses the fields its format has (`Team::children` only where groups nest).
#[allow(dead_code)]
mod company;
mod entra;
mod google;
mod okta;
mod onelogin;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use company::Company;

/// A provider's double, started and serving.
pub trait Served {
    /// The DirectorySync and the Secrets it references, as YAML for `dirsync test -f`.
    fn manifests(&self) -> String;
    /// Requests answered so far, by route.
    fn requests(&self) -> BTreeMap<String, usize>;
    /// Lines of the provider's own figures (throttling, the least time its limits allow).
    fn report(&self, _wall: Duration) -> Vec<String> {
        Vec::new()
    }
}

struct Args {
    provider: String,
    users: usize,
    groups: usize,
    latency: Duration,
    dirsync: String,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        provider: it.next().unwrap_or_else(|| usage("no PROVIDER")),
        users: 50_000,
        groups: 2_000,
        latency: Duration::from_millis(20),
        dirsync: "target/release/dirsync".into(),
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--users" => a.users = value.parse().unwrap_or_else(|_| usage("--users N")),
            "--groups" => a.groups = value.parse().unwrap_or_else(|_| usage("--groups N")),
            "--latency-ms" => {
                a.latency = Duration::from_millis(value.parse().unwrap_or_else(|_| usage("--latency-ms N")))
            }
            "--dirsync" => a.dirsync = value,
            other => usage(&format!("unknown flag {other}")),
        }
    }
    a
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "bench_cloud: {problem}\nusage: bench_cloud PROVIDER [--users N] [--groups N] [--latency-ms N] [--dirsync PATH]"
    );
    std::process::exit(2)
}

// One arm per provider.
async fn start(provider: &str, company: &Company, latency: Duration) -> Box<dyn Served> {
    match provider {
        "entraId" => entra::start(company, latency).await,
        "googleWorkspace" => google::start(company, latency).await,
        "okta" => okta::start(company, latency).await,
        "oneLogin" => onelogin::start(company, latency).await,
        other => usage(&format!("unknown provider {other}")),
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let company = Company::new(a.users, a.groups);
    eprintln!(
        "bench_cloud: {} users, {} groups, {} memberships, {} ms per answer",
        company.people.len(),
        company.teams.len(),
        company.memberships(),
        a.latency.as_millis()
    );
    let served = start(&a.provider, &company, a.latency).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let manifest = dir.path().join("bench.yaml");
    std::fs::write(&manifest, served.manifests()).expect("write the manifest");
    let time_file = dir.path().join("time.txt");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let (dirsync, manifest, time_file) = (a.dirsync.clone(), manifest.clone(), time_file.clone());
        move || {
            Command::new("/usr/bin/time")
                .arg("-v")
                .arg("-o")
                .arg(&time_file)
                .arg(&dirsync)
                .args(["--log-level", "warn", "test", "--json", "-f"])
                .arg(&manifest)
                .output()
                .expect("run dirsync under /usr/bin/time (apt-get install time)")
        }
    })
    .await
    .expect("dirsync finished");
    let wall = started.elapsed();
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        panic!("dirsync test failed: {}", output.status);
    }
    let time = std::fs::read_to_string(&time_file).unwrap_or_default();
    let rss_kib: f64 = time
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let requests = served.requests();
    let total: usize = requests.values().sum();
    println!(
        "{:<16} wall {:>7.2} s   peak RSS {:>6.1} MiB   requests {:>6}   output {} bytes",
        a.provider,
        wall.as_secs_f64(),
        rss_kib / 1024.0,
        total,
        output.stdout.len()
    );
    for (route, n) in requests {
        println!("  {route:<28} {n:>6}");
    }
    for line in served.report(wall) {
        println!("  {line}");
    }
}
