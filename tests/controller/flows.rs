//! The controller (`dirsync controller` as a child process) against a real kube-apiserver, a
//! real slapd and the Bitwarden double. The controller runs with the no-rights token bound to
//! exactly `deploy/rbac.yaml`, so every flow also proves those rules are enough.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::bitwarden::BitwardenDouble;
use crate::support::flows::{annotate, company, dsync};
use crate::support::kube::{self as k, ControllerProcess, ready, wait_for, wait_reason};
use crate::support::slapd::{BASE, READER_DN, READER_PW, ROOT_DN, ROOT_PW, Slapd};
use dirsync::api::DirectorySync;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);

async fn add_user(slapd: &Slapd, uid: &str) {
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&slapd.ldap_url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ROOT_DN, ROOT_PW).await.unwrap().success().unwrap();
    let mail = format!("{uid}@example.com");
    ldap.add(
        &format!("uid={uid},ou=People,{BASE}"),
        vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("cn", HashSet::from([uid])),
            ("sn", HashSet::from([uid])),
            ("uid", HashSet::from([uid])),
            ("mail", HashSet::from([mail.as_str()])),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    let _ = ldap.unbind().await;
}

fn last_sync(ds: &DirectorySync) -> Option<String> {
    ds.status.as_ref()?.last_sync_time.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_ldap_to_bitwarden_and_reports_every_failure() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "flows").await;
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    let controller = ControllerProcess::start(Some(&ns), &[]);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);

    // No Secrets yet: Ready=False SecretNotFound, with what to fix.
    api.create(&PostParams::default(), &dsync("corp", &double, &slapd, json!({})))
        .await
        .unwrap();
    let ds = wait_reason(&api, "corp", "SecretNotFound", &controller).await;
    let (status, _, message) = ready(&ds).unwrap();
    assert_eq!(status, "False");
    assert!(message.contains("create it"), "{message}");

    // Creating the Secrets re-syncs at once (not after the 30 s backoff).
    let t = Instant::now();
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    // The second Secret may land after a first sync started: that sync is then followed by an
    // Unchanged one (a referenced Secret changed). Wait for the lasting result, not the reason.
    let ds = wait_for(&api, "corp", MINUTE, &controller, "synced", |d| {
        d.status.as_ref().is_some_and(|s| s.sync_hash.is_some())
            && ready(d)
                .is_some_and(|(status, reason, _)| status == "True" && (reason == "Synced" || reason == "Unchanged"))
    })
    .await;
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    assert_eq!(double.imports().len(), 1, "one import, however many syncs ran");
    let st = ds.status.clone().unwrap();
    assert_eq!(st.users.unwrap().enabled, 3);
    assert_eq!(st.groups, Some(1));
    assert_eq!(st.source.as_deref(), Some("ldap"));
    assert_eq!(st.observed_generation, ds.metadata.generation);
    assert!(st.sync_hash.is_some() && st.next_sync_time.is_some() && st.last_successful_sync_time.is_some());
    for t in ["Ready", "Synced", "SourceReachable", "BitwardenReachable"] {
        let c = st.conditions.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(c.status, "True", "{t}");
        assert_eq!(c.observed_generation, ds.metadata.generation);
    }
    assert!(double.member("carol@example.com").is_some());
    assert!(st.last_changes.is_some());

    // A Normal Synced event with counts.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = events.list(&Default::default()).await.unwrap();
        if list
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Synced") && e.type_.as_deref() == Some("Normal"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no Synced event: {list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Metrics for the resource.
    let metrics = controller.metrics();
    let want = format!(r#"dirsync_ready{{namespace="{ns}",name="corp",provider="ldap"}} 1"#);
    assert!(metrics.contains(&want), "{metrics}");
    // Requests to the directory and to Bitwarden are counted by the clients themselves.
    for series in [
        r#"dirsync_provider_requests_total{provider="ldap",operation="bind",outcome="success"}"#,
        r#"dirsync_provider_requests_total{provider="ldap",operation="search",outcome="success"}"#,
        r#"dirsync_bitwarden_requests_total{operation="token",status_class="2xx"}"#,
        r#"dirsync_bitwarden_requests_total{operation="import",status_class="2xx"}"#,
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }

    // The directory changes; sync-now runs the next sync at once.
    add_user(&slapd, "dave").await;
    let before = last_sync(&ds);
    annotate(&api, "corp", "dirsync.dev/sync-now", "1").await;
    let ds = wait_for(&api, "corp", MINUTE, &controller, "4 users", |d| {
        d.status.as_ref().and_then(|s| s.users).is_some_and(|u| u.enabled == 4)
    })
    .await;
    assert_ne!(last_sync(&ds), before);
    assert_eq!(ds.status.as_ref().unwrap().sync_now_handled.as_deref(), Some("1"));
    assert!(double.member("dave@example.com").is_some());

    // A Secret change re-syncs (nothing new to send: Unchanged).
    let before = last_sync(&ds);
    k::put_secret(
        &client,
        &ns,
        k::secret(
            "ldap-bind",
            &[("username", READER_DN), ("password", READER_PW), ("note", "rotated")],
        ),
    )
    .await;
    let ds = wait_for(
        &api,
        "corp",
        MINUTE,
        &controller,
        "a re-sync after the Secret changed",
        |d| last_sync(d) != before,
    )
    .await;
    assert_eq!(ready(&ds).unwrap().1, "Unchanged");

    // Wrong bind password.
    k::put_sync_secrets(&client, &ns, &double, "wrong-password").await;
    let ds = wait_reason(&api, "corp", "SourceAuthFailed", &controller).await;
    let st = ds.status.unwrap();
    assert_eq!(st.users.unwrap().enabled, 4, "the last good counts stay");
    let source = st.conditions.iter().find(|c| c.type_ == "SourceReachable").unwrap();
    assert_eq!(source.status, "False");

    // A rejected API key (401 from the identity server).
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    double.set_client_secret("rotated-elsewhere");
    annotate(&api, "corp", "dirsync.dev/sync-now", "2").await;
    wait_reason(&api, "corp", "BitwardenAuthFailed", &controller).await;
    let metrics = controller.metrics();
    assert!(
        metrics.contains(&format!(
            r#"dirsync_sync_errors_total{{namespace="{ns}",name="corp",provider="ldap",reason="SourceAuthFailed"}} 1"#
        )),
        "{metrics}"
    );
    let logs = controller.logs();
    assert!(
        !logs.contains(READER_PW) && !logs.contains(&double.client_secret()),
        "a secret reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_then_apply() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "dryrun").await;
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    let controller = ControllerProcess::start(Some(&ns), &[]);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &dsync("corp", &double, &slapd, json!({"mode": "DryRun"})),
    )
    .await
    .unwrap();
    let ds = wait_reason(&api, "corp", "DryRun", &controller).await;
    let st = ds.status.unwrap();
    assert_eq!(st.plan.as_ref().unwrap().members, 3);
    assert!(double.imports().is_empty(), "a dry run sent an import");

    let patch = json!({"spec": {"mode": "Apply"}});
    api.patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let ds = wait_reason(&api, "corp", "Synced", &controller).await;
    assert!(ds.status.unwrap().plan.is_none());
    assert_eq!(double.imports().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_suspend_and_deleted_resources_lose_their_series() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "spec").await;
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    let controller = ControllerProcess::start(Some(&ns), &[]);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);

    // v1.20 does not enforce the CEL minimum: the controller's validation reports it.
    api.create(
        &PostParams::default(),
        &dsync("too-often", &double, &slapd, json!({"sync": {"interval": "1m"}})),
    )
    .await
    .unwrap();
    let ds = wait_reason(&api, "too-often", "InvalidSpec", &controller).await;
    assert!(ready(&ds).unwrap().2.contains("spec.sync.interval"));

    api.create(
        &PostParams::default(),
        &dsync("paused", &double, &slapd, json!({"suspend": true})),
    )
    .await
    .unwrap();
    let ds = wait_reason(&api, "paused", "Suspended", &controller).await;
    assert_eq!(ready(&ds).unwrap().0, "True");
    assert!(double.imports().is_empty());

    // No hot loop: the status settles (resourceVersion stays) while nothing changes.
    let rv = api.get("paused").await.unwrap().metadata.resource_version;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.get("paused").await.unwrap().metadata.resource_version, rv);

    // A deleted resource's series go; the others stay.
    assert!(controller.metrics().contains(r#"name="too-often""#));
    k::delete(&api, "too-often").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while controller.metrics().contains(r#"name="too-often""#) {
        assert!(
            Instant::now() < deadline,
            "series of a deleted resource remain:\n{}",
            controller.metrics()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(controller.metrics().contains(r#"name="paused""#));
}

fn is_leader(c: &ControllerProcess) -> bool {
    c.metrics().lines().any(|l| l == "dirsync_leader 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_hands_over_when_the_leader_dies() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "leader").await;
    // The Lease rights are a Role in the Lease's namespace (deploy/rbac.yaml), not in the ClusterRole.
    k::install_lease_rbac(&client, &ns).await;
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    let args = ["--leader-election", "--lease-namespace", ns.as_str()];
    let a = ControllerProcess::start(Some(&ns), &args);
    let b = ControllerProcess::start(Some(&ns), &args);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);

    // Exactly one leads.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut leader, mut standby) = loop {
        match (is_leader(&a), is_leader(&b)) {
            (true, false) => break (a, b),
            (false, true) => break (b, a),
            (true, true) => panic!("two leaders"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "no leader:\n{}\n{}", a.logs(), b.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    api.create(
        &PostParams::default(),
        &dsync("corp", &double, &slapd, json!({"suspend": true})),
    )
    .await
    .unwrap();
    wait_reason(&api, "corp", "Suspended", &leader).await;
    assert!(!is_leader(&standby));

    // The leader dies without releasing: the standby takes over within the lease duration.
    leader.kill();
    let t = Instant::now();
    while !is_leader(&standby) {
        assert!(
            t.elapsed() < Duration::from_secs(25),
            "no takeover:\n{}",
            standby.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        t.elapsed() <= Duration::from_secs(19),
        "takeover took {:?}",
        t.elapsed()
    );
    let patch = json!({"spec": {"suspend": false}});
    api.patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_reason(&api, "corp", "Synced", &standby).await;

    // Graceful shutdown releases the lease.
    let status = standby.terminate();
    assert!(status.success(), "exit {status}:\n{}", standby.logs());
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease = leases.get("dirsync-leader").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity, None);
    drop(leader);
}
