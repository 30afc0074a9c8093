//! Entra ID: the Entra double (`tests/support/entra.rs`) serving the company with Graph's own
//! page sizes (999 users, groups and members a page; 200 a delta page), a client secret.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Served;
use crate::company::Company;
use crate::entra_double::{EntraDouble, EntraGroup, EntraUser, Kind, SECRET_NAME, TENANT};

struct Entra {
    double: EntraDouble,
}

fn user_id(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-{:012x}", i * 7919)
}

fn group_id(i: usize) -> String {
    format!("{i:08x}-1111-4000-8000-{:012x}", i * 104_729)
}

impl Served for Entra {
    fn manifests(&self) -> String {
        format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: bitwarden-org-key, namespace: bench}}
stringData: {{client_id: organization.00000000-0000-4000-8000-000000000001, client_secret: unused}}
---
apiVersion: v1
kind: Secret
metadata: {{name: {SECRET_NAME}, namespace: bench}}
stringData: {{client_id: "{client_id}", client_secret: "{secret}"}}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {{name: bench-entra, namespace: bench}}
spec:
  bitwarden: {{serverUrl: "http://127.0.0.1:9", apiKeySecretRef: {{name: bitwarden-org-key}}}}
  source:
    entraId:
      tenantId: {TENANT}
      credentialsSecretRef: {{name: {SECRET_NAME}}}
      authorityUrl: "{uri}"
      graphUrl: "{uri}"
  sync: {{largeImport: true}}
"#,
            client_id = self.double.client_id(),
            secret = self.double.client_secret(),
            uri = self.double.uri(),
        )
    }

    fn requests(&self) -> BTreeMap<String, usize> {
        for (route, n) in self.double.batched_counts() {
            eprintln!("bench_cloud: entraId: {n} requests to {route} inside $batch");
        }
        self.double.counts()
    }
}

pub async fn start(company: &Company, latency: Duration) -> Box<dyn Served> {
    let double = EntraDouble::start().await;
    let users = company
        .people
        .iter()
        .map(|p| EntraUser {
            id: user_id(p.index),
            mail: Some(p.email.clone()),
            upn: p.email.clone(),
            enabled: !p.disabled,
        })
        .collect();
    let groups = company
        .teams
        .iter()
        .map(|t| {
            let members = t
                .members
                .iter()
                .map(|&m| (Kind::User, user_id(m)))
                .chain(t.children.iter().map(|&c| (Kind::Group, group_id(c))))
                .collect();
            EntraGroup::new(&group_id(t.index), &t.name, members)
        })
        .collect();
    double.set_directory(users, groups);
    double.set_latency(Some(latency));
    Box::new(Entra { double })
}
