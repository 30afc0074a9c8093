//! Shared pieces of the controller flows: the sample company in slapd, a DirectorySync pointing at
//! slapd and the Bitwarden double, its Secrets, annotations and events.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use dirsync::api::DirectorySync;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::bitwarden::{BitwardenDouble, SECRET_NAME};
use super::slapd::{BASE, Slapd};

/// Three users (alice, bob, carol) and one group (engineering: alice, bob).
pub fn company() -> String {
    let p = format!("ou=People,{BASE}");
    let g = format!("ou=Groups,{BASE}");
    let mut l = format!(
        "dn: {p}\nobjectClass: organizationalUnit\nou: People\n\n\
         dn: {g}\nobjectClass: organizationalUnit\nou: Groups\n\n"
    );
    for u in ["alice", "bob", "carol"] {
        l += &format!(
            "dn: uid={u},{p}\nobjectClass: inetOrgPerson\ncn: {u}\nsn: {u}\nuid: {u}\nmail: {u}@example.com\n\n"
        );
    }
    l += &format!(
        "dn: cn=engineering,{g}\nobjectClass: groupOfNames\ncn: engineering\nmember: uid=alice,{p}\nmember: uid=bob,{p}\n\n"
    );
    l
}

/// A DirectorySync reading slapd and writing to the double; `extra` is merged into the spec.
pub fn dsync(name: &str, double: &BitwardenDouble, slapd: &Slapd, extra: serde_json::Value) -> DirectorySync {
    let mut v = json!({
        "apiVersion": "dirsync.dev/v1alpha1",
        "kind": "DirectorySync",
        "metadata": {"name": name},
        "spec": {
            "bitwarden": {"serverUrl": double.url(), "apiKeySecretRef": {"name": SECRET_NAME}},
            "source": {"ldap": {
                "url": slapd.ldap_url(),
                "rootPath": BASE,
                "bindSecretRef": {"name": "ldap-bind"},
                "users": {"path": "ou=People"},
                "groups": {"path": "ou=Groups"}
            }},
            "sync": {"interval": "5m"}
        }
    });
    merge(&mut v["spec"], extra);
    serde_json::from_value(v).unwrap()
}

pub fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

pub async fn annotate(api: &Api<DirectorySync>, name: &str, key: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// The events (events.k8s.io/v1) of `type_` and `reason` about the DirectorySync `name`.
pub async fn events(client: &kube::Client, ns: &str, name: &str, type_: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some(type_)
                && e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .collect()
}

/// Waits (up to 10 s) for at least one such event.
pub async fn wait_event(client: &kube::Client, ns: &str, name: &str, type_: &str, reason: &str) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = events(client, ns, name, type_, reason).await;
        if !found.is_empty() {
            return found;
        }
        assert!(Instant::now() < deadline, "no {type_} {reason} event about {name}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many times the events were posted (an event with a series counts its repeats).
pub fn occurrences(events: &[Event]) -> i32 {
    events
        .iter()
        .map(|e| e.series.as_ref().map_or(1, |s| s.count.max(1)))
        .sum()
}
