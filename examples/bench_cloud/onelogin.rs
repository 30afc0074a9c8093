//! OneLogin: the company as users whose `role_ids` name their teams (roles), served by the
//! OneLogin double at the documented page cap (100).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Served;
use crate::company::Company;
use crate::onelogin_double::{OneLoginDouble, SECRET_NAME, user};

struct OneLogin(OneLoginDouble);

/// Ids as OneLogin issues them (integers), distinct for users and roles.
fn user_id(index: usize) -> i64 {
    10_000_000 + index as i64
}

fn role_id(index: usize) -> i64 {
    500_000 + index as i64
}

pub async fn start(company: &Company, latency: Duration) -> Box<dyn Served> {
    let double = OneLoginDouble::start().await;
    let mut roles_of: Vec<Vec<i64>> = vec![Vec::new(); company.people.len()];
    for team in &company.teams {
        double.add_role(role_id(team.index), &team.name);
        for &m in &team.members {
            roles_of[m].push(role_id(team.index));
        }
    }
    for (person, roles) in company.people.iter().zip(&roles_of) {
        let status = if person.disabled { 2 } else { 1 };
        let mut u = user(user_id(person.index), Some(&person.email), None, status, roles);
        u["firstname"] = person.given_name.clone().into();
        u["lastname"] = person.family_name.clone().into();
        double.add_user(u);
    }
    double.set_latency(Some(latency));
    Box::new(OneLogin(double))
}

impl Served for OneLogin {
    fn manifests(&self) -> String {
        let d = &self.0;
        format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: {SECRET_NAME}, namespace: bench}}
stringData: {{client_id: "{id}", client_secret: "{secret}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: bitwarden-org-key, namespace: bench}}
stringData: {{client_id: organization.00000000-0000-4000-8000-000000000000, client_secret: unused}}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {{name: bench-onelogin, namespace: bench}}
spec:
  bitwarden: {{serverUrl: "http://127.0.0.1:9", apiKeySecretRef: {{name: bitwarden-org-key}}}}
  source:
    oneLogin:
      apiUrl: "{url}"
      credentialsSecretRef: {{name: {SECRET_NAME}}}
  sync: {{largeImport: true}}
"#,
            id = d.client_id(),
            secret = d.client_secret(),
            url = d.url(),
        )
    }

    fn requests(&self) -> BTreeMap<String, usize> {
        ["token", "users", "roles"]
            .into_iter()
            .map(|route| (route.to_string(), self.0.requests_to(route).len()))
            .collect()
    }
}
