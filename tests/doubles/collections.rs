//! Collection access (`spec.collections`) and onboarding counts: first the double of the
//! official server's collection endpoints, held to the shared spec through the real client;
//! then whole syncs (engine::run) against it: access granted, changed, removed, put back; a manual
//! group's access kept; a group renamed in the directory; a deleted collection; the flags'
//! conflict; Vaultwarden's 404; a 429 on PUT; writes paced within the cloud's limits.

use std::time::{Duration, Instant};

use crate::engine::{Fixture, assert_nothing_sent_after, company};
use crate::support::bitwarden::{
    Access, BitwardenDouble, COLLECTIONS_PATH, Collection, Endpoint, Failure, Group, MANAGE_CONFLICT_MESSAGE,
    MANAGE_REQUIRED_MESSAGE, MY_ITEMS_MESSAGE, Member, member, vaultwarden_not_found,
};
use dirsync::api::{CollectionAccess, CollectionState, MemberCounts, Mode, Reason, SyncOptions};
use dirsync::bitwarden::{AccessEntry, BitwardenApi, CollectionUpdate, Put};
use dirsync::engine::{RunOptions, SyncState};
use serde_json::{Value, json};

fn entry(id: &str, groups: &[&str]) -> CollectionAccess {
    CollectionAccess {
        id: Some(id.to_string()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

fn read_only(id: &str, groups: &[&str]) -> CollectionAccess {
    CollectionAccess {
        read_only: true,
        ..entry(id, groups)
    }
}

fn entry_json(id: &str, read_only: bool) -> AccessEntry {
    AccessEntry {
        id: id.to_string(),
        read_only,
        ..Default::default()
    }
}

/// A raw request to the double with a new token.
async fn raw(bw: &BitwardenDouble, method: &str, path: &str, content_type: Option<&str>, body: &str) -> (u16, String) {
    let token = token(bw).await;
    raw_with(bw, &token, method, path, content_type, body).await
}

async fn token(bw: &BitwardenDouble) -> String {
    {
        let client = reqwest::Client::new();
        let (id, secret) = (bw.client_id(), bw.client_secret());
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "api.organization"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
            ("deviceType", "8"),
            ("deviceIdentifier", "d"),
            ("deviceName", "t"),
        ];
        let reply: Value = client
            .post(format!("{}/connect/token", bw.identity_url()))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["access_token"].as_str().unwrap().to_string()
    }
}

async fn raw_with(
    bw: &BitwardenDouble,
    token: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method.parse().unwrap(), format!("{}{}", bw.url(), path))
        .bearer_auth(token)
        .body(body.to_string());
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let reply = request.send().await.unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

// --- the double, through the client and raw requests -------------------------------------------

#[tokio::test]
async fn the_double_lists_and_reads_collections_and_groups_show_their_access() {
    let bw = BitwardenDouble::start().await;
    let group = bw.add_group(Group::new("Auditors", None));
    let id = bw.add_collection(Collection::new(Some("shared")).with_access(Access::new(&group, true, false, false)));
    let mut my_items = Collection::new(None);
    my_items.my_items = true;
    let personal = bw.add_collection(my_items);
    let client = bw.client();
    let listed = client.list_collections().await.unwrap().unwrap();
    assert_eq!(listed.len(), 1, "My Items collections are never listed");
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].external_id.as_deref(), Some("shared"));
    assert_eq!(listed[0].groups, vec![entry_json(&group, true)]);
    assert_eq!(client.get_collection(&id).await.unwrap().unwrap(), listed[0]);
    assert_eq!(client.get_collection(&personal).await.unwrap(), None);
    assert_eq!(
        client
            .get_collection("c0000000-0000-4000-8000-00000000dead")
            .await
            .unwrap(),
        None
    );
    // Lists are one page without a continuation token.
    let (status, body) = raw(&bw, "GET", COLLECTIONS_PATH, None, "").await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["object"], "list");
    assert!(body.get("continuationToken").is_none());
    // A group lists the collections it has access to.
    let (_, groups) = raw(&bw, "GET", "/api/public/groups", None, "").await;
    let groups: Value = serde_json::from_str(&groups).unwrap();
    assert_eq!(
        groups["data"][0]["collections"],
        json!([{"id": id, "readOnly": true, "hidePasswords": false, "manage": false}])
    );
}

#[tokio::test]
async fn a_put_replaces_the_external_id_and_the_whole_group_list() {
    let bw = BitwardenDouble::start().await;
    let a = bw.add_group(Group::new("A", Some("g-a")));
    let b = bw.add_group(Group::new("B", None));
    let id = bw.add_collection(Collection::new(Some("keep-me")).with_access(Access::new(&b, false, false, true)));
    let client = bw.client();
    let unknown = "c0000000-0000-4000-8000-00000000beef";
    let put = client
        .put_collection(
            &id,
            &CollectionUpdate {
                external_id: Some("keep-me".into()),
                groups: vec![entry_json(&a, true), entry_json(unknown, false)],
            },
        )
        .await
        .unwrap();
    assert_eq!(put, Put::Done);
    let c = bw.collection(&id).unwrap();
    assert_eq!(c.external_id.as_deref(), Some("keep-me"));
    // B is gone (the list is complete), the unknown id silently dropped...
    assert_eq!(c.groups, vec![Access::new(&a, true, false, false)]);
    // ...yet echoed in the answer.
    let body = format!(r#"{{"externalId":null,"groups":[{{"id":"{unknown}","readOnly":false}}]}}"#);
    let (status, answer) = raw(
        &bw,
        "PUT",
        &format!("{COLLECTIONS_PATH}/{id}"),
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["groups"][0]["id"], unknown);
    let c = bw.collection(&id).unwrap();
    assert!(c.groups.is_empty());
    assert_eq!(c.external_id, None, "null replaces the external id");
    // Omitting externalId erases it too; omitting groups leaves them.
    bw.set_collection_groups(&id, vec![Access::new(&a, false, false, false)]);
    let (status, _) = raw(
        &bw,
        "PUT",
        &format!("{COLLECTIONS_PATH}/{id}"),
        Some("application/json"),
        "{}",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bw.collection(&id).unwrap().groups.len(), 1);
    // Property names are matched case-insensitively.
    let body = format!(r#"{{"ExternalId":"x","Groups":[{{"Id":"{a}","ReadOnly":true}}]}}"#);
    let (status, _) = raw(
        &bw,
        "PUT",
        &format!("{COLLECTIONS_PATH}/{id}"),
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!(status, 200);
    let c = bw.collection(&id).unwrap();
    assert_eq!((c.external_id.as_deref(), c.groups[0].read_only), (Some("x"), true));
}

#[tokio::test]
async fn the_double_refuses_what_the_official_server_refuses() {
    let bw = BitwardenDouble::start().await;
    let a = bw.add_group(Group::new("A", Some("g-a")));
    let id = bw.add_collection(Collection::new(None));
    let path = format!("{COLLECTIONS_PATH}/{id}");
    let json_ct = Some("application/json");
    // Many PUTs in a row: the cloud's limits are another test's.
    bw.set_put_limits(1000, 1000);
    let error = |body: &str| serde_json::from_str::<Value>(body).unwrap();

    // No JSON content type: 415 with an empty body.
    let (status, body) = raw(&bw, "PUT", &path, Some("text/plain"), "{}").await;
    assert_eq!((status, body.as_str()), (415, ""));
    // Validation comes before the lookup, keyed as ASP.NET keys it.
    for (p, body, key) in [
        (format!("{COLLECTIONS_PATH}/not-a-guid"), "{}".to_string(), "id"),
        (path.clone(), String::new(), ""),
        (path.clone(), "{".to_string(), "$"),
        (
            path.clone(),
            format!(r#"{{"groups":[{{"id":"{a}","readOnly":"true"}}]}}"#),
            "$.groups[0].readOnly",
        ),
        (
            path.clone(),
            format!(r#"{{"groups":[{{"id":"{a}"}}]}}"#),
            "Groups[0].ReadOnly",
        ),
        (
            path.clone(),
            r#"{"groups":[{"id":"nope","readOnly":true}]}"#.to_string(),
            "$.groups[0].id",
        ),
        (
            path.clone(),
            format!(r#"{{"externalId":"{}"}}"#, "x".repeat(301)),
            "ExternalId",
        ),
    ] {
        let (status, answer) = raw(&bw, "PUT", &p, json_ct, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let answer = error(&answer);
        assert_eq!(answer["message"], "The request's model state is invalid.");
        assert!(answer["errors"].get(key).is_some(), "{body}: {answer}");
    }
    // The manage conflict.
    let body = format!(r#"{{"groups":[{{"id":"{a}","readOnly":true,"manage":true}}]}}"#);
    let (status, answer) = raw(&bw, "PUT", &path, json_ct, &body).await;
    assert_eq!(
        (status, error(&answer)["message"].as_str()),
        (400, Some(MANAGE_CONFLICT_MESSAGE))
    );
    // An unknown collection: 404 with an empty body (the same for another organization's).
    let missing = format!("{COLLECTIONS_PATH}/c0000000-0000-4000-8000-00000000dead");
    let (status, body) = raw(&bw, "PUT", &missing, json_ct, "{}").await;
    assert_eq!((status, body.as_str()), (404, ""));
    // The same group twice: the server fails.
    let body = format!(r#"{{"groups":[{{"id":"{a}","readOnly":true}},{{"id":"{a}","readOnly":false}}]}}"#);
    let (status, answer) = raw(&bw, "PUT", &path, json_ct, &body).await;
    assert_eq!(status, 500);
    assert_eq!(error(&answer)["message"], "An unhandled server error has occurred.");
    // A "My Items" collection cannot be edited.
    let mut my_items = Collection::new(None);
    my_items.my_items = true;
    let personal = bw.add_collection(my_items);
    let (status, answer) = raw(&bw, "PUT", &format!("{COLLECTIONS_PATH}/{personal}"), json_ct, "{}").await;
    assert_eq!(
        (status, error(&answer)["message"].as_str()),
        (400, Some(MY_ITEMS_MESSAGE))
    );
    // Without "owners and admins can manage all collections", someone must keep manage.
    bw.set_manage_required(true);
    let body = format!(r#"{{"groups":[{{"id":"{a}","readOnly":true}}]}}"#);
    let (status, answer) = raw(&bw, "PUT", &path, json_ct, &body).await;
    assert_eq!(
        (status, error(&answer)["message"].as_str()),
        (400, Some(MANAGE_REQUIRED_MESSAGE))
    );
    bw.set_manage_required(false);
    // Without UseGroups the groups are ignored, still 200.
    bw.set_use_groups(false);
    let (status, _) = raw(&bw, "PUT", &path, json_ct, &body).await;
    assert_eq!(status, 200);
    assert!(bw.collection(&id).unwrap().groups.is_empty());
    // No token: 401.
    let (status, _) = {
        let reply = reqwest::Client::new()
            .put(format!("{}{path}", bw.url()))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        (reply.status().as_u16(), ())
    };
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_client_reports_refusals_and_unknown_collections() {
    let bw = BitwardenDouble::start().await;
    let a = bw.add_group(Group::new("A", Some("g-a")));
    let id = bw.add_collection(Collection::new(None));
    let client = bw.client();
    let conflict = CollectionUpdate {
        external_id: None,
        groups: vec![AccessEntry {
            id: a.clone(),
            read_only: true,
            manage: true,
            ..Default::default()
        }],
    };
    let err = client.put_collection(&id, &conflict).await.unwrap_err();
    assert_eq!(err.reason(), Reason::BitwardenRejected);
    assert!(err.to_string().contains("mutually exclusive"), "{err}");
    bw.delete_collection(&id);
    let gone = client.put_collection(&id, &CollectionUpdate::default()).await.unwrap();
    assert_eq!(gone, Put::NoSuchCollection);
}

#[tokio::test]
async fn vaultwarden_answers_every_public_path_but_the_import_with_its_404_body() {
    let bw = BitwardenDouble::start().await;
    bw.vaultwarden_mode();
    for (method, path) in [
        ("GET", "/api/public/members"),
        ("GET", "/api/public/groups"),
        ("GET", COLLECTIONS_PATH),
        ("GET", "/api/public/collections/c0000000-0000-4000-8000-000000000001"),
        ("PUT", "/api/public/collections/c0000000-0000-4000-8000-000000000001"),
        ("GET", "/api/public/anything"),
    ] {
        let reply = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", bw.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 404, "{method} {path}");
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body, vaultwarden_not_found(), "{method} {path}");
    }
    assert_eq!(bw.client().list_collections().await.unwrap(), None);
}

#[tokio::test]
async fn the_double_limits_puts_with_slow_down_and_retry_after() {
    let bw = BitwardenDouble::start().await;
    let id = bw.add_collection(Collection::new(None));
    let path = format!("{COLLECTIONS_PATH}/{id}");
    let token = token(&bw).await;
    // A minute's allowance of 5 (the cloud's is 60; timing-proof here): the sixth is refused.
    bw.set_put_limits(5, 5);
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(raw_with(&bw, &token, "PUT", &path, Some("application/json"), "{}").await);
    }
    assert!(answers[..5].iter().all(|(s, _)| *s == 200), "{answers:?}");
    let (status, body) = &answers[5];
    assert_eq!(*status, 429);
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["object"], "error");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Slow down! Too many requests. Try again in ")
    );
    let reply = reqwest::Client::new()
        .put(format!("{}{path}", bw.url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let wait: u64 = reply.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

// --- whole syncs ---------------------------------------------------------------------------

fn puts(f: &Fixture) -> usize {
    f.double.requests_to(Endpoint::PutCollection).len()
}

#[tokio::test]
async fn access_is_granted_changed_put_back_and_removed_while_a_manual_group_keeps_its_own() {
    let f = Fixture::new(company(3)).await;
    let auditors = f.double.add_group(Group::new("Auditors", None));
    let manual = Access::new(&auditors, false, false, true);
    let coll = f
        .double
        .add_collection(Collection::new(Some("shared-ext")).with_access(manual.clone()));
    let mut spec = f.spec(SyncOptions::default());
    spec.collections = vec![read_only(&coll, &["Engineering"])];

    // Granted.
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(first.reason, Reason::Synced);
    let eng = f.double.group_by_external_id("g-eng").unwrap().id;
    let all = f.double.group_by_external_id("g-all").unwrap().id;
    let c = f.double.collection(&coll).unwrap();
    assert_eq!(c.groups, vec![manual.clone(), Access::new(&eng, true, false, false)]);
    assert_eq!(
        c.external_id.as_deref(),
        Some("shared-ext"),
        "the external id is sent back"
    );
    let status = &first.collections[0];
    assert_eq!((status.state, status.groups), (CollectionState::Applied, 1));
    assert_eq!(status.message.as_deref(), Some("Engineering gets access (readOnly)"));
    assert_eq!(first.changes.collections_updated, 1);
    assert!(
        first.message.ends_with("; collection access: 1 updated"),
        "{}",
        first.message
    );
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);

    // Unchanged: nothing written.
    let before = f.double.requests().len();
    let second = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert_eq!(second.reason, Reason::Unchanged);
    assert_nothing_sent_after(&f.double, before);
    assert!(
        second.message.ends_with("; collection access: 1 as asked"),
        "{}",
        second.message
    );

    // Changed by hand: put back (the manual group untouched).
    f.double.set_collection_groups(&coll, vec![manual.clone()]);
    let back = f.run(&spec, &second.state, RunOptions::default()).await.unwrap();
    assert_eq!(back.reason, Reason::Synced, "access written, import unchanged");
    assert!(back.message.contains("the import is unchanged"), "{}", back.message);
    assert_eq!(f.double.collection(&coll).unwrap().groups.len(), 2);

    // Changed in the spec: new flags and one more group; the new spec asks for a complete read.
    spec.collections = vec![CollectionAccess {
        manage: true,
        ..entry(&coll, &["Engineering", "Everyone"])
    }];
    let reads = f.reads.lock().unwrap().len();
    let changed = f.run(&spec, &back.state, RunOptions::default()).await.unwrap();
    assert!(f.reads.lock().unwrap()[reads].cursor.is_none(), "a complete read");
    assert_eq!(
        f.double.collection(&coll).unwrap().groups,
        vec![
            manual.clone(),
            Access::new(&eng, false, false, true),
            Access::new(&all, false, false, true)
        ]
    );
    assert_eq!(changed.collections[0].groups, 2);
    assert_eq!(
        changed.collections[0].message.as_deref(),
        Some("Engineering changes from readOnly to manage; Everyone gets access (manage)")
    );

    // Removed from the spec: only what this DirectorySync gave goes.
    spec.collections.clear();
    let removed = f.run(&spec, &changed.state, RunOptions::default()).await.unwrap();
    assert_eq!(f.double.collection(&coll).unwrap().groups, vec![manual]);
    assert_eq!(removed.collections.len(), 1);
    assert_eq!(removed.collections[0].groups, 0);
    let puts_before = puts(&f);
    let after = f.run(&spec, &removed.state, RunOptions::default()).await.unwrap();
    assert!(after.collections.is_empty(), "nothing left to remember");
    assert_eq!(puts(&f), puts_before);
    // Every write carried the collection's external id and no id twice.
    for put in f.double.requests_to(Endpoint::PutCollection) {
        let body = put.json().unwrap();
        assert_eq!(body["externalId"], "shared-ext");
        let ids: Vec<&str> = body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap())
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(ids.len(), unique.len(), "{body}");
    }
}

#[tokio::test]
async fn a_group_renamed_in_the_directory_keeps_its_access_until_the_spec_says_the_new_name() {
    let f = Fixture::new(company(3)).await;
    let coll = f.double.add_collection(Collection::new(None));
    let mut spec = f.spec(SyncOptions::default());
    spec.collections = vec![read_only(&coll, &["Engineering"])];
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    let eng = f.double.group_by_external_id("g-eng").unwrap().id;

    f.directory.lock().unwrap().groups[1].name = "Platform".into();
    let renamed = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert_eq!(renamed.reason, Reason::Synced, "the import renames the group");
    assert_eq!(f.double.group_by_external_id("g-eng").unwrap().name, "Platform");
    assert_eq!(
        f.double.collection(&coll).unwrap().groups,
        vec![Access::new(&eng, true, false, false)],
        "still there"
    );
    assert!(
        renamed.warnings.iter().any(|w| w.contains("now named \"Platform\"")),
        "{:?}",
        renamed.warnings
    );
    assert_eq!(renamed.collections[0].granted[0].name, "Engineering");

    spec.collections = vec![read_only(&coll, &["Platform"])];
    let puts_before = puts(&f);
    let fixed = f.run(&spec, &renamed.state, RunOptions::default()).await.unwrap();
    assert!(fixed.warnings.is_empty(), "{:?}", fixed.warnings);
    assert_eq!(fixed.collections[0].granted[0].name, "Platform");
    assert_eq!(puts(&f), puts_before, "the same group: nothing to write");
}

#[tokio::test]
async fn a_deleted_collection_or_an_unknown_group_is_reported_not_fatal() {
    let f = Fixture::new(company(3)).await;
    let coll = f.double.add_collection(Collection::new(None));
    let mut spec = f.spec(SyncOptions::default());
    spec.collections = vec![
        read_only(&coll, &["Engineering", "Marketing"]),
        CollectionAccess {
            external_id: Some("no-such".into()),
            groups: vec!["Engineering".into()],
            ..Default::default()
        },
    ];
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(first.reason, Reason::Synced);
    assert_eq!(first.collections[0].state, CollectionState::Applied);
    assert_eq!(first.collections[1].state, CollectionState::NotFound);
    assert!(
        first
            .warnings
            .iter()
            .any(|w| w.contains("\"Marketing\" is not among the synced groups")),
        "{:?}",
        first.warnings
    );
    assert!(first.message.contains("1 updated, 1 not found"), "{}", first.message);

    f.double.delete_collection(&coll);
    let second = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert_eq!(second.reason, Reason::Unchanged);
    assert_eq!(second.collections[0].state, CollectionState::NotFound);
    assert!(second.collections[0].granted.is_empty());
    assert!(
        second.warnings.iter().any(|w| w.contains(&coll)),
        "{:?}",
        second.warnings
    );
}

#[tokio::test]
async fn manage_with_read_only_is_an_invalid_spec_before_anything_is_read() {
    let f = Fixture::new(company(3)).await;
    let mut spec = f.spec(SyncOptions::default());
    spec.collections = vec![CollectionAccess {
        manage: true,
        ..read_only("c0000000-0000-4000-8000-000000000001", &["Engineering"])
    }];
    let err = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidSpec);
    assert!(err.to_string().contains("spec.collections[0].manage"), "{err}");
    assert!(f.double.requests().is_empty());
}

#[tokio::test]
async fn on_vaultwarden_the_import_runs_and_access_is_reported_unsupported_once_per_sync() {
    let f = Fixture::new(company(3)).await;
    f.double.vaultwarden_mode();
    let mut spec = f.spec(SyncOptions::default());
    spec.collections = vec![read_only("c0000000-0000-4000-8000-000000000001", &["Engineering"])];
    let out = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.reason, Reason::Synced);
    assert_eq!(f.double.applied_imports().len(), 1);
    assert_eq!(out.collections[0].state, CollectionState::Unsupported);
    assert!(
        out.message.contains("not supported by this server"),
        "Ready says what is not supported: {}",
        out.message
    );
    assert!(
        out.warnings.iter().any(|w| w.contains("no collections API")),
        "{:?}",
        out.warnings
    );
    assert_eq!(
        f.double.requests_to(Endpoint::Collections).len(),
        1,
        "asked once, not retried"
    );
    assert_eq!(puts(&f), 0);
    assert_eq!(out.members, None, "Vaultwarden cannot list members");
    // The next sync says the same, without failing.
    let again = f.run(&spec, &out.state, RunOptions::default()).await.unwrap();
    assert_eq!(again.reason, Reason::Unchanged);
    assert_eq!(again.collections[0].state, CollectionState::Unsupported);
}

#[tokio::test]
async fn a_429_on_a_put_is_waited_for_as_retry_after_says() {
    let f = Fixture::new(company(3)).await;
    let coll = f.double.add_collection(Collection::new(None));
    let mut spec = f.spec(SyncOptions::default());
    spec.collections = vec![read_only(&coll, &["Engineering"])];
    f.double.fail_next(Endpoint::PutCollection, 1, Failure::slow_down(1));
    let started = Instant::now();
    let out = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(out.collections[0].state, CollectionState::Applied);
    assert_eq!(puts(&f), 2);

    // Throttled for ever: this collection fails, the sync does not (the import was done), and
    // the next sync tries again.
    let other = f.double.add_collection(Collection::new(None));
    spec.collections.push(read_only(&other, &["Everyone"]));
    f.double
        .fail_next(Endpoint::PutCollection, usize::MAX, Failure::slow_down(1));
    let throttled = f.run(&spec, &out.state, RunOptions::default()).await.unwrap();
    let state = &throttled.collections[1];
    assert_eq!(state.state, CollectionState::Failed);
    assert!(
        state.message.as_deref().unwrap().starts_with("RateLimited"),
        "{state:?}"
    );
    assert!(throttled.message.contains("1 failed"), "{}", throttled.message);
    f.double.clear_failures();
    let next = f.run(&spec, &throttled.state, RunOptions::default()).await.unwrap();
    assert_eq!(next.collections[1].state, CollectionState::Applied);
}

#[tokio::test]
async fn many_writes_are_paced_within_five_a_second() {
    let f = Fixture::new(company(3)).await;
    let mut spec = f.spec(SyncOptions::default());
    for _ in 0..7 {
        let id = f.double.add_collection(Collection::new(None));
        spec.collections.push(read_only(&id, &["Engineering"]));
    }
    let started = Instant::now();
    let out = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert!(out.collections.iter().all(|c| c.state == CollectionState::Applied));
    assert_eq!(puts(&f), 7, "no PUT was throttled and repeated");
    assert!(started.elapsed() >= Duration::from_secs(1), "the sixth waited");
}

#[tokio::test]
async fn a_write_the_server_ignores_is_reported_not_claimed() {
    // An organization without groups in its plan answers 200 and ignores the groups.
    let f = Fixture::new(company(3)).await;
    let coll = f.double.add_collection(Collection::new(None));
    let mut spec = f.spec(SyncOptions::default());
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    f.double.set_use_groups(false);
    spec.collections = vec![read_only(&coll, &["Engineering"])];
    let out = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert_eq!(out.collections[0].state, CollectionState::Failed);
    assert!(
        out.collections[0]
            .message
            .as_deref()
            .unwrap()
            .contains("does not hold it"),
        "{:?}",
        out.collections[0]
    );
    // An import with groups is refused there, after the members were processed.
    f.directory.lock().unwrap().users.push(crate::engine::user(9));
    let err = f.run(&spec, &out.state, RunOptions::default()).await.unwrap_err();
    assert_eq!(err.reason(), Reason::BitwardenRejected);
    assert!(err.to_string().contains("cannot use groups"), "{err}");
    assert!(f.double.member("user9@corp.example").is_some());
}

#[tokio::test]
async fn a_dry_run_shows_the_access_changes_and_dirsync_test_reads_nothing() {
    let f = Fixture::new(company(3)).await;
    let coll = f.double.add_collection(Collection::new(None));
    let mut spec = f.spec(SyncOptions::default());
    // The groups exist (an earlier sync created them).
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    spec.collections = vec![read_only(&coll, &["Engineering"])];
    spec.mode = Mode::DryRun;
    let before = f.double.requests().len();
    let dry = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert_eq!(dry.reason, Reason::DryRun);
    assert_nothing_sent_after(&f.double, before);
    assert_eq!(dry.collections[0].state, CollectionState::Pending);
    assert_eq!(
        dry.collections[0].message.as_deref(),
        Some("would change: Engineering gets access (readOnly)")
    );
    assert!(
        dry.message.ends_with("; collection access: 1 would change"),
        "{}",
        dry.message
    );
    assert_eq!(dry.members.unwrap().invited, 3);

    // `dirsync test`: no request at all; it says what the spec asks.
    spec.mode = Mode::Apply;
    let before = f.double.requests().len();
    let test = f
        .run(
            &spec,
            &first.state,
            RunOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        f.double.requests().len(),
        before,
        "dirsync test sends nothing and reads nothing"
    );
    assert_eq!(test.collections[0].state, CollectionState::Pending);
    assert!(
        test.collections[0]
            .message
            .as_deref()
            .unwrap()
            .starts_with("Engineering would get access (readOnly)")
    );
    assert_eq!(test.members, None);
}

#[tokio::test]
async fn onboarding_counts_the_synced_members_by_status() {
    let f = Fixture::new(company(4)).await;
    let spec = f.spec(SyncOptions::default());
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        first.members,
        Some(MemberCounts {
            invited: 4,
            ..Default::default()
        }),
        "the import invited them"
    );
    f.double.set_member_status("user0@corp.example", member::ACCEPTED);
    f.double.set_member_status("user1@corp.example", member::CONFIRMED);
    f.double.set_member_status("user2@corp.example", member::REVOKED);
    let mut manual = Member::user("manual@corp.example", None);
    manual.status = member::ACCEPTED;
    let mut members = f.double.members();
    members.push(manual);
    f.double.set_members(members);
    let second = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert_eq!(
        second.members,
        Some(MemberCounts {
            invited: 1,
            accepted: 1,
            confirmed: 1,
            revoked: 1,
            staged: 0,
        }),
        "the owner and the member added by hand are not counted"
    );
    assert_eq!(second.state.members, second.members);
    // Without invitations, new members are staged.
    let quiet = f.spec(SyncOptions {
        invite_users: false,
        ..Default::default()
    });
    f.directory.lock().unwrap().users.push(crate::engine::user(7));
    let third = f.run(&quiet, &second.state, RunOptions::default()).await.unwrap();
    assert_eq!(third.members.unwrap().staged, 1);
}

#[tokio::test]
async fn after_an_incremental_read_access_stays_and_the_counts_carry_forward() {
    let f = Fixture::new(company(3)).await;
    let coll = f.double.add_collection(Collection::new(None));
    let mut spec = f.spec(SyncOptions::default());
    spec.collections = vec![read_only(&coll, &["Engineering"])];
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    f.double.set_member_status("user0@corp.example", member::CONFIRMED);
    // The directory changed a little: one new user, no group in the read.
    *f.changes.lock().unwrap() = Some(dirsync::sync::model::Directory {
        users: vec![crate::engine::user(3)],
        complete: false,
        ..Default::default()
    });
    let puts_before = puts(&f);
    let second = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert!(!second.complete, "an incremental read");
    assert_eq!(second.collections[0].state, CollectionState::Applied);
    assert_eq!(second.collections[0].granted[0].name, "Engineering");
    assert!(second.warnings.is_empty(), "{:?}", second.warnings);
    assert_eq!(puts(&f), puts_before);
    // The last complete counts, plus the one this import invited (the confirmation made in
    // Bitwarden shows at the next complete read).
    assert_eq!(
        second.members,
        Some(MemberCounts {
            invited: 4,
            ..Default::default()
        })
    );
    let full = f
        .run(
            &spec,
            &second.state,
            RunOptions {
                force: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((full.members.unwrap().invited, full.members.unwrap().confirmed), (2, 1));
}
