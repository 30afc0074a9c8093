//! Google Workspace in the cloud benchmark: the company loaded into the Google double in the
//! Directory API's shapes (users with `suspended` for the disabled ones; groups of 25–500
//! members; a suspended user's membership has status `SUSPENDED`; every tenth group holds one
//! child group), pages of 500 users and 200 groups or members, as Google serves at most.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::Served;
use crate::company::Company;
use crate::google_double::{
    ADMIN, DOMAIN, GMember, GUser, GoogleDouble, SECRET_KEY, SECRET_NAME, group_object, member_object, user_object,
};

struct Google(GoogleDouble);

fn user_id(index: usize) -> String {
    format!("2{index:020}")
}

fn group_id(index: usize) -> String {
    format!("03ep43zb{index:07x}")
}

pub async fn start(company: &Company, latency: Duration) -> Box<dyn Served> {
    let g = GoogleDouble::start().await;
    let users: Vec<_> = company
        .people
        .iter()
        .map(|p| {
            let mut user = GUser::new(&p.email);
            user.suspended = p.disabled;
            let mut object = user_object(&user_id(p.index), &user);
            object["name"] = serde_json::json!({"givenName": p.given_name, "familyName": p.family_name,
                "fullName": format!("{} {}", p.given_name, p.family_name)});
            object
        })
        .collect();
    let mut groups = Vec::with_capacity(company.teams.len());
    let mut members = HashMap::with_capacity(company.teams.len());
    for team in &company.teams {
        let id = group_id(team.index);
        let email = format!("team-{:04}@{DOMAIN}", team.index);
        let mut list: Vec<_> = team
            .members
            .iter()
            .map(|&i| {
                let person = &company.people[i];
                let status = if person.disabled { "SUSPENDED" } else { "ACTIVE" };
                member_object(
                    &GMember::user_with_status(&user_id(i), Some(status)),
                    Some(&person.email),
                )
            })
            .collect();
        list.extend(
            team.children
                .iter()
                .map(|&c| member_object(&GMember::group(&group_id(c)), Some(&format!("team-{c:04}@{DOMAIN}")))),
        );
        groups.push(group_object(&id, &team.name, &email, list.len()));
        members.insert(id, list);
    }
    g.load(users, groups, members);
    g.set_latency(Some(latency));
    Box::new(Google(g))
}

impl Served for Google {
    fn manifests(&self) -> String {
        let key = self.0.key_json();
        format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: bitwarden-org-key, namespace: bench}}
stringData:
  client_id: organization.00000000-0000-4000-8000-000000000000
  client_secret: not-used-by-dirsync-test
---
apiVersion: v1
kind: Secret
metadata: {{name: {SECRET_NAME}, namespace: bench}}
stringData:
  {SECRET_KEY}: |
    {key}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {{name: bench-google, namespace: bench}}
spec:
  bitwarden:
    serverUrl: http://127.0.0.1:9
    apiKeySecretRef: {{name: bitwarden-org-key}}
  source:
    googleWorkspace:
      domain: {DOMAIN}
      adminEmail: {ADMIN}
      serviceAccountKeySecretRef: {{name: {SECRET_NAME}, key: {SECRET_KEY}}}
      apiUrl: {api}
  sync:
    largeImport: true
"#,
            api = self.0.uri()
        )
    }

    fn requests(&self) -> BTreeMap<String, usize> {
        self.0.request_counts()
    }
}
