//! The controller's failure flows against a real kube-apiserver, a real slapd and the Bitwarden
//! double: Bitwarden throttling and outages, the mass-removal guard and its override, two
//! DirectorySyncs on one organization, and quiet events for unchanged syncs. As in
//! `tests/controller.rs`, the controller runs with the no-rights token bound to `deploy/rbac.yaml`.

use std::time::Duration;

use crate::support::bitwarden::{BitwardenDouble, Endpoint, Failure, Member};
use crate::support::flows::{annotate, company, dsync, events, occurrences, wait_event};
use crate::support::kube::{self as k, ControllerProcess, ready, wait_for, wait_reason};
use crate::support::slapd::{READER_DN, READER_PW, Slapd};
use dirsync::api::DirectorySync;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const FOREVER: usize = usize::MAX;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitwarden_throttling_and_outage_are_reported() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "bwfail").await;
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    let controller = ControllerProcess::start(Some(&ns), &[]);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);

    // 429 for ever, asking for more than the client waits (60 s): RateLimited at once.
    double.fail_next(Endpoint::Token, FOREVER, Failure::rate_limited(Some("120")));
    api.create(&PostParams::default(), &dsync("corp", &double, &slapd, json!({})))
        .await
        .unwrap();
    let ds = wait_reason(&api, "corp", "RateLimited", &controller).await;
    let (status, _, message) = ready(&ds).unwrap();
    assert_eq!(status, "False");
    assert!(message.contains("120s"), "{message}");
    wait_event(&client, &ns, "corp", "Warning", "RateLimited").await;
    assert!(double.imports().is_empty());

    // 500 for ever: BitwardenUnavailable after the client's retries (Retry-After: 0 keeps them
    // short; the default backoff is 1 s + 2 s + 4 s).
    double.clear_failures();
    double.fail_next(
        Endpoint::Token,
        FOREVER,
        Failure::server_error().header("retry-after", "0"),
    );
    annotate(&api, "corp", "dirsync.dev/sync-now", "500").await;
    let ds = wait_reason(&api, "corp", "BitwardenUnavailable", &controller).await;
    let message = ready(&ds).unwrap().2;
    assert!(
        message.contains("HTTP 500") && message.contains("4 attempts"),
        "{message}"
    );
    wait_event(&client, &ns, "corp", "Warning", "BitwardenUnavailable").await;

    // It recovers as soon as Bitwarden does (sync-now skips the backoff).
    double.clear_failures();
    annotate(&api, "corp", "dirsync.dev/sync-now", "ok").await;
    wait_reason(&api, "corp", "Synced", &controller).await;
    let metrics = controller.metrics();
    for reason in ["RateLimited", "BitwardenUnavailable"] {
        let series =
            format!(r#"dirsync_sync_errors_total{{namespace="{ns}",name="corp",provider="ldap",reason="{reason}"}} 1"#);
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    }
    for series in [
        r#"dirsync_bitwarden_requests_total{operation="token",status_class="429"}"#,
        r#"dirsync_bitwarden_requests_total{operation="token",status_class="5xx"}"#,
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_mass_removals_until_overridden_and_unchanged_syncs_stay_quiet() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "guard").await;
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    // 20 synced members who are no longer in the directory, beside the owner.
    let mut members = vec![Member::owner("owner@example.com")];
    for i in 0..20 {
        members.push(Member::user(
            &format!("left{i}@example.com"),
            Some(&format!("uid=left{i}")),
        ));
    }
    double.set_members(members);
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    let controller = ControllerProcess::start(Some(&ns), &[]);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &dsync("corp", &double, &slapd, json!({"sync": {"removeOutOfScope": true}})),
    )
    .await
    .unwrap();

    let ds = wait_reason(&api, "corp", "GuardTripped", &controller).await;
    let (status, _, message) = ready(&ds).unwrap();
    assert_eq!(status, "False");
    assert!(message.contains("20 members"), "{message}");
    assert!(double.imports().is_empty(), "the guard let an import through");
    let warnings = wait_event(&client, &ns, "corp", "Warning", "GuardTripped").await;
    assert!(
        warnings[0]
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("guard-override="),
        "{warnings:?}"
    );
    let metrics = controller.metrics();
    let blocked = format!(r#"dirsync_guard_blocked_total{{namespace="{ns}",name="corp"}} 1"#);
    assert!(metrics.contains(&blocked), "{blocked} missing:\n{metrics}");

    // The override with the hash from the message lets this plan through.
    let hash = message
        .split("dirsync.dev/guard-override=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no hash in {message}"))
        .to_string();
    annotate(&api, "corp", "dirsync.dev/guard-override", &hash).await;
    let ds = wait_reason(&api, "corp", "Synced", &controller).await;
    assert!(ready(&ds).unwrap().2.contains("20 removed"), "{:?}", ready(&ds));
    assert_eq!(double.imports().len(), 1);
    assert!(double.member("left0@example.com").is_none());
    assert!(double.member("carol@example.com").is_some());
    let synced = wait_event(&client, &ns, "corp", "Normal", "Synced").await;
    assert_eq!(occurrences(&synced), 1, "{synced:?}");

    // The next sync sends the request without the removals (a new hash); the one after that is
    // unchanged and must post no event.
    let ds = resync(&client, &api, &controller, &ns, "rotated-1", &ds).await;
    let reason = ready(&ds).unwrap().1;
    assert!(reason == "Synced" || reason == "Unchanged", "{reason}");
    let posted = occurrences(&events(&client, &ns, "corp", "Normal", "Synced").await);
    let imports = double.imports().len();
    let ds = resync(&client, &api, &controller, &ns, "rotated-2", &ds).await;
    assert_eq!(ready(&ds).unwrap().1, "Unchanged");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let synced = events(&client, &ns, "corp", "Normal", "Synced").await;
    assert_eq!(
        occurrences(&synced),
        posted,
        "an unchanged sync posted an event: {synced:?}"
    );
    assert_eq!(double.imports().len(), imports);
}

/// Changes the bind Secret (same credentials) and waits for the re-sync it causes.
async fn resync(
    client: &kube::Client,
    api: &Api<DirectorySync>,
    controller: &ControllerProcess,
    ns: &str,
    note: &str,
    ds: &DirectorySync,
) -> DirectorySync {
    let before = ds.status.as_ref().unwrap().last_sync_time.clone();
    k::put_secret(
        client,
        ns,
        k::secret(
            "ldap-bind",
            &[("username", READER_DN), ("password", READER_PW), ("note", note)],
        ),
    )
    .await;
    wait_for(api, "corp", Duration::from_secs(60), controller, "a re-sync", |d| {
        d.status.as_ref().unwrap().last_sync_time != before
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_resources_on_one_organization_never_sync_at_once() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "conflict").await;
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    let controller = ControllerProcess::start(Some(&ns), &[]);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);

    // The first sync hangs 4 s in the token request, holding the organization.
    double.fail_next(
        Endpoint::Token,
        1,
        Failure::rate_limited(Some("120")).delayed(Duration::from_secs(4)),
    );
    api.create(&PostParams::default(), &dsync("first", &double, &slapd, json!({})))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while double.requests_to(Endpoint::Token).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no token request:\n{}",
            controller.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.create(&PostParams::default(), &dsync("second", &double, &slapd, json!({})))
        .await
        .unwrap();
    let ds = wait_reason(&api, "second", "Conflict", &controller).await;
    let (status, _, message) = ready(&ds).unwrap();
    assert_eq!(status, "False");
    assert!(message.contains(&format!("{ns}/first")), "{message}");
    wait_event(&client, &ns, "second", "Warning", "Conflict").await;
    wait_reason(&api, "first", "RateLimited", &controller).await;

    // Once the first is done, the second gets its turn.
    annotate(&api, "second", "dirsync.dev/sync-now", "1").await;
    wait_reason(&api, "second", "Synced", &controller).await;
    assert_eq!(double.imports().len(), 1);
}
