//! The Okta double serving the benchmark company: users (2 % SUSPENDED), groups of type
//! OKTA_GROUP with their direct members (Okta groups do not nest: the company's child groups are
//! left out), Okta's page sizes, and the rate limit of an Enterprise org: 600 requests a minute in
//! each bucket (users, groups, group members), with the real `X-Rate-Limit-*` headers and 429
//! past it. `BENCH_OKTA_LIMIT` and `BENCH_OKTA_WINDOW_SECONDS` change the limit and the window
//! (a faster variant: 600 per 6 s).

use std::collections::BTreeMap;
use std::time::Duration;

use super::Served;
use super::company::Company;
use super::okta_double::{GroupType, NewUser, OktaDouble};

struct Okta {
    double: OktaDouble,
    limit: u64,
    window: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub async fn start(company: &Company, latency: Duration) -> Box<dyn Served> {
    let double = OktaDouble::start().await;
    let ids = double.add_users(company.people.iter().map(|p| {
        let status = if p.disabled { "SUSPENDED" } else { "ACTIVE" };
        NewUser::new(&p.email).status(status)
    }));
    for team in &company.teams {
        let members: Vec<&str> = team.members.iter().map(|&i| ids[i].as_str()).collect();
        double.add_group(&team.name, GroupType::Okta, &members);
    }
    let limit = env_u64("BENCH_OKTA_LIMIT", 600);
    let window = env_u64("BENCH_OKTA_WINDOW_SECONDS", 60);
    double.set_rate_limit(limit, Duration::from_secs(window));
    double.set_latency(Some(latency));
    eprintln!("bench_cloud: okta rate limit {limit} requests per {window} s per bucket");
    Box::new(Okta { double, limit, window })
}

impl Served for Okta {
    fn manifests(&self) -> String {
        format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: bitwarden-org-key, namespace: bench}}
stringData:
  client_id: organization.00000000-0000-0000-0000-000000000000
  client_secret: not-used-by-dirsync-test
---
apiVersion: v1
kind: Secret
metadata: {{name: okta-token, namespace: bench}}
stringData:
  token: {token}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {{name: bench-okta, namespace: bench}}
spec:
  bitwarden:
    serverUrl: http://127.0.0.1:9
    apiKeySecretRef: {{name: bitwarden-org-key}}
  source:
    okta:
      orgUrl: {url}
      tokenSecretRef: {{name: okta-token, key: token}}
  sync:
    largeImport: true
"#,
            token = self.double.api_token(),
            url = self.double.url(),
        )
    }

    fn requests(&self) -> BTreeMap<String, usize> {
        let mut by_route = BTreeMap::new();
        for route in ["token", "users", "groups", "members"] {
            let n = self.double.requests_to(route).len();
            if n > 0 {
                by_route.insert(route.to_string(), n);
            }
        }
        by_route
    }

    fn report(&self, wall: Duration) -> Vec<String> {
        let throttled: usize = self.double.throttled().values().sum();
        // The least time the limits allow: each bucket's requests at `limit` per `window`
        // (buckets are read at the same time), and the floor of fixed windows, where the last
        // window's share goes at once.
        let (mut least, mut floor) = (0.0f64, 0u64);
        let mut worst = String::new();
        for route in ["users", "groups", "members"] {
            let n = self.double.requests_to(route).len() as u64;
            let t = n as f64 / self.limit as f64 * self.window as f64;
            if t > least {
                least = t;
                worst = format!("{route}: {n} requests");
            }
            floor = floor.max(n.div_ceil(self.limit).saturating_sub(1) * self.window);
        }
        vec![
            format!("429 answers: {throttled}"),
            format!(
                "least time at {} per {} s per bucket: {least:.1} s ({worst}); fixed-window floor {floor} s; \
                 wall / least = {:.2}",
                self.limit,
                self.window,
                wall.as_secs_f64() / least.max(f64::EPSILON)
            ),
        ]
    }
}
