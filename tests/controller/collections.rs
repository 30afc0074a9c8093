//! Collection access and onboarding end to end: the controller (a child process) on the real
//! kube-apiserver, a real slapd and the Bitwarden double. A DirectorySync with `collections`
//! reaches `Ready`, the double holds the access (a manual group's kept), `status.members` follows
//! the double's member statuses and `dirsync_members` shows the same numbers; dropping the
//! collection from the spec removes only the access the DirectorySync gave.

use std::time::{Duration, Instant};

use crate::support::bitwarden::{Access, BitwardenDouble, Collection, Group, member};
use crate::support::flows::{annotate, company, dsync};
use crate::support::kube::{self as k, ControllerProcess, ready, wait_for};
use crate::support::slapd::{READER_PW, Slapd};
use dirsync::api::{CollectionState, DirectorySync, MemberCounts};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);

fn members(ds: &DirectorySync) -> Option<MemberCounts> {
    ds.status.as_ref()?.members
}

fn gauge(controller: &ControllerProcess, ns: &str, state: &str) -> Option<i64> {
    let series = format!(r#"dirsync_members{{namespace="{ns}",name="corp",state="{state}"}} "#);
    controller
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&series).and_then(|v| v.trim().parse().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_access_and_onboarding_reach_status_the_double_and_the_gauge() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "collections").await;
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    let auditors = double.add_group(Group::new("Auditors", None));
    let manual = Access::new(&auditors, false, false, true);
    let collection = double.add_collection(Collection::new(Some("shared")).with_access(manual.clone()));
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;
    let controller = ControllerProcess::start(Some(&ns), &[]);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);

    let access = json!({"collections": [{"id": collection, "groups": ["engineering"], "readOnly": true}]});
    api.create(&PostParams::default(), &dsync("corp", &double, &slapd, access))
        .await
        .unwrap();
    let ds = wait_for(&api, "corp", MINUTE, &controller, "Ready with access applied", |d| {
        ready(d).is_some_and(|(status, _, _)| status == "True")
            && d.status.as_ref().is_some_and(|s| {
                s.collections
                    .first()
                    .is_some_and(|c| c.state == CollectionState::Applied)
            })
    })
    .await;
    let (_, reason, message) = ready(&ds).unwrap();
    assert_eq!(reason, "Synced");
    assert!(message.contains("collection access: 1 updated"), "{message}");
    let st = ds.status.clone().unwrap();
    assert_eq!(st.collections[0].id.as_deref(), Some(collection.as_str()));
    assert_eq!(st.collections[0].groups, 1);
    assert_eq!(st.collections[0].granted[0].name, "engineering");
    assert!(st.warnings.is_empty(), "{:?}", st.warnings);

    // The double holds the access; the group added by hand kept its own.
    let engineering = double
        .groups()
        .into_iter()
        .find(|g| g.name == "engineering")
        .expect("the import created the group")
        .id;
    let held = double.collection(&collection).unwrap();
    assert_eq!(
        held.groups,
        vec![manual.clone(), Access::new(&engineering, true, false, false)]
    );
    assert_eq!(held.external_id.as_deref(), Some("shared"));

    // Onboarding: the three synced people were invited by the import.
    assert_eq!(
        st.members,
        Some(MemberCounts {
            invited: 3,
            ..Default::default()
        })
    );
    // Alice accepts (and waits for an admin), Bob is confirmed: the next sync counts them.
    double.set_member_status("alice@example.com", member::ACCEPTED);
    double.set_member_status("bob@example.com", member::CONFIRMED);
    annotate(&api, "corp", "dirsync.dev/sync-now", "1").await;
    let want = MemberCounts {
        invited: 1,
        accepted: 1,
        confirmed: 1,
        revoked: 0,
        staged: 0,
    };
    wait_for(&api, "corp", MINUTE, &controller, "the new onboarding counts", |d| {
        members(d) == Some(want)
    })
    .await;
    // The gauge shows the same numbers (recorded just after the status is written).
    let want_gauges = [
        ("invited", 1),
        ("accepted", 1),
        ("confirmed", 1),
        ("revoked", 0),
        ("staged", 0),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !want_gauges
        .iter()
        .all(|(state, value)| gauge(&controller, &ns, state) == Some(*value))
    {
        assert!(
            Instant::now() < deadline,
            "dirsync_members differs from {want_gauges:?}:\n{}",
            controller.metrics()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The collection leaves the spec: the access this DirectorySync gave goes, the manual stays.
    let patch = json!({"spec": {"collections": null}});
    api.patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for(&api, "corp", MINUTE, &controller, "the access removed", |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.observed_generation == d.metadata.generation)
            && double
                .collection(&collection)
                .is_some_and(|c| c.groups == vec![manual.clone()])
    })
    .await;
}
