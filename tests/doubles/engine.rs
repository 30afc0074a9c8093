//! One whole sync (engine::run) against the Bitwarden double, with a directory given as data:
//! skip-unchanged, sync-now, removal of out-of-scope members, the guard and its override,
//! batching, dry run, and that a failed sync moves no state.

use std::sync::{Arc, Mutex};

use crate::support::bitwarden::{BitwardenDouble, Endpoint, Failure, Member};
use async_trait::async_trait;
use dirsync::Error;
use dirsync::api::{DirectorySyncSpec, LdapSource, MemberCounts, Mode, PendingCause, Reason, SourceSpec, SyncOptions};
use dirsync::bitwarden::BitwardenApi;
use dirsync::engine::{self, Connector, Outcome, RunOptions, SyncState};
use dirsync::secrets::SecretStore;
use dirsync::source::{DirectorySource, ReadRequest, ReadResult};
use dirsync::sync::model::{Directory, Group, User};
use serde_json::json;

/// A directory given as data, and the real client pointed at the double.
pub(crate) struct Fixture {
    pub(crate) double: BitwardenDouble,
    pub(crate) directory: Mutex<Directory>,
    pub(crate) reads: Arc<Mutex<Vec<ReadRequest>>>,
    /// What an incremental read (one with a cursor) returns, if set.
    pub(crate) changes: Arc<Mutex<Option<Directory>>>,
}

struct StaticSource(Directory);

#[async_trait]
impl DirectorySource for StaticSource {
    async fn read(&mut self, _: &ReadRequest) -> Result<ReadResult, Error> {
        Ok(ReadResult {
            directory: self.0.clone(),
            ..Default::default()
        })
    }
}

#[async_trait]
impl Connector for Fixture {
    async fn source(&self, _: &DirectorySyncSpec, _: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        Ok(Box::new(Recording {
            reads: self.reads.clone(),
            dir: self.directory.lock().unwrap().clone(),
            changes: self.changes.lock().unwrap().clone(),
        }))
    }
    async fn bitwarden(&self, _: &DirectorySyncSpec, _: &dyn SecretStore) -> Result<Box<dyn BitwardenApi>, Error> {
        Ok(Box::new(self.double.client()))
    }
}

struct Recording {
    reads: Arc<Mutex<Vec<ReadRequest>>>,
    dir: Directory,
    changes: Option<Directory>,
}

#[async_trait]
impl DirectorySource for Recording {
    async fn read(&mut self, request: &ReadRequest) -> Result<ReadResult, Error> {
        self.reads.lock().unwrap().push(request.clone());
        let mut cursor = std::collections::BTreeMap::new();
        cursor.insert("test.read".to_string(), "1".to_string());
        let dir = match (&request.cursor, &self.changes) {
            (Some(_), Some(changes)) => changes.clone(),
            _ => self.dir.clone(),
        };
        StaticSource(dir).read(request).await.map(|mut r| {
            r.cursor = cursor;
            r
        })
    }
}

pub(crate) fn user(i: usize) -> User {
    User {
        external_id: format!("u{i:04}"),
        email: Some(format!("user{i}@corp.example")),
        disabled: false,
        deleted: false,
    }
}

pub(crate) fn company(n: usize) -> Directory {
    Directory {
        users: (0..n).map(user).collect(),
        groups: vec![
            Group {
                external_id: "g-all".into(),
                name: "Everyone".into(),
                members: vec![],
                children: vec!["g-eng".into()],
            },
            Group {
                external_id: "g-eng".into(),
                name: "Engineering".into(),
                members: vec!["u0000".into(), "u0001".into()],
                children: vec![],
            },
        ],
        complete: true,
        restrict_users_to_groups: false,
    }
}

impl Fixture {
    pub(crate) async fn new(directory: Directory) -> Fixture {
        Fixture {
            double: BitwardenDouble::start().await,
            directory: Mutex::new(directory),
            reads: Arc::default(),
            changes: Arc::default(),
        }
    }

    pub(crate) fn spec(&self, sync: SyncOptions) -> DirectorySyncSpec {
        DirectorySyncSpec {
            bitwarden: self.double.spec(),
            source: SourceSpec::Ldap(LdapSource {
                url: "ldap://127.0.0.1:389".into(),
                root_path: "dc=corp,dc=example".into(),
                page_size: 1000,
                ..Default::default()
            }),
            sync,
            collections: Vec::new(),
            mode: Mode::Apply,
            suspend: false,
        }
    }

    pub(crate) async fn run(
        &self,
        spec: &DirectorySyncSpec,
        state: &SyncState,
        options: RunOptions,
    ) -> Result<Outcome, Error> {
        engine::run(spec, state, &options, &self.double.secrets(), self).await
    }
}

#[tokio::test]
async fn a_sync_sends_the_directory_then_skips_it_while_unchanged() {
    let f = Fixture::new(company(3)).await;
    let spec = f.spec(SyncOptions::default());
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(first.reason, Reason::Synced);
    assert_eq!(first.changes.invited, Some(3));
    assert_eq!(first.changes.groups_created, Some(2));
    assert_eq!(first.message, "3 users, 2 groups; 3 invited, 0 removed");
    let imports = f.double.imports();
    assert_eq!(imports.len(), 1);
    assert_eq!(
        imports[0],
        json!({
            "groups": [
                {"name": "Everyone", "externalId": "g-all", "memberExternalIds": ["u0000", "u0001"]},
                {"name": "Engineering", "externalId": "g-eng", "memberExternalIds": ["u0000", "u0001"]}
            ],
            "members": [
                {"email": "user0@corp.example", "externalId": "u0000", "deleted": false},
                {"email": "user1@corp.example", "externalId": "u0001", "deleted": false},
                {"email": "user2@corp.example", "externalId": "u0002", "deleted": false}
            ],
            "overwriteExisting": false, "largeImport": false, "inviteUsersAfterProvisioning": true
        })
    );
    assert_eq!(
        f.double.group_member_emails("g-all"),
        vec!["user0@corp.example", "user1@corp.example"]
    );
    let state = first.state.clone();
    assert!(state.sync_hash.is_some());
    assert_eq!(state.last_active_users, Some(3));
    assert_eq!(state.cursor.get("test.read").map(String::as_str), Some("1"));
    assert!(state.cursor.contains_key(engine::FULL_READ_KEY));

    // Same directory: nothing is sent; the organization is read once (for the onboarding counts).
    let before = f.double.requests().len();
    let second = f.run(&spec, &state, RunOptions::default()).await.unwrap();
    assert_eq!(second.reason, Reason::Unchanged);
    assert!(second.sent.is_empty());
    assert_nothing_sent_after(&f.double, before);
    assert_eq!(second.members.unwrap().invited, 3);
    // The cursor went to the source: an incremental read.
    assert!(f.reads.lock().unwrap()[1].cursor.is_some());

    // sync-now: a full read and the same request again.
    let forced = f
        .run(
            &spec,
            &state,
            RunOptions {
                force: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(forced.reason, Reason::Synced);
    assert_eq!(f.double.imports().len(), 2);
    assert!(f.reads.lock().unwrap()[2].cursor.is_none());

    // A change in the directory is sent.
    f.directory.lock().unwrap().users.push(user(3));
    let changed = f.run(&spec, &forced.state, RunOptions::default()).await.unwrap();
    assert_eq!(changed.reason, Reason::Synced);
    assert_eq!(changed.changes.invited, Some(1));
    assert_eq!(f.double.imports().len(), 3);
}

#[tokio::test]
async fn members_who_left_the_scope_are_removed_but_never_owners_admins_or_manual_members() {
    let f = Fixture::new(company(20)).await;
    let mut members: Vec<Member> = (0..20)
        .map(|i| Member::user(&format!("user{i}@corp.example"), Some(&format!("u{i:04}"))))
        .collect();
    members.push(Member::owner("owner@example.com"));
    members.push(Member::user("left@corp.example", Some("u9999")));
    members.push(Member::admin("boss@corp.example", Some("u8888")));
    members.push(Member::user("manual@corp.example", None));
    f.double.set_members(members);
    let spec = f.spec(SyncOptions {
        remove_out_of_scope: true,
        ..Default::default()
    });
    let out = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.reason, Reason::Synced);
    assert_eq!(out.changes.removed, Some(1));
    assert_eq!(out.changes.invited, Some(0));
    let import = &f.double.imports()[0];
    let deleted: Vec<&str> = import["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["deleted"] == true)
        .map(|m| m["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, vec!["u9999"]);
    assert!(
        f.double.member("left@corp.example").is_none(),
        "removed from the organization"
    );
    assert!(f.double.member("boss@corp.example").is_some());
    assert!(f.double.member("manual@corp.example").is_some());
    assert!(f.double.member("owner@example.com").is_some());
}

#[tokio::test]
async fn the_guard_holds_back_a_mass_removal_until_overridden_for_that_exact_plan() {
    let f = Fixture::new(company(50)).await;
    let mut members: Vec<Member> = (0..50)
        .map(|i| Member::user(&format!("user{i}@corp.example"), Some(&format!("u{i:04}"))))
        .collect();
    members.extend((0..40).map(|i| Member::user(&format!("old{i}@corp.example"), Some(&format!("old{i}")))));
    members.push(Member::owner("owner@example.com"));
    f.double.set_members(members);
    let spec = f.spec(SyncOptions {
        remove_out_of_scope: true,
        ..Default::default()
    });

    let err = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::GuardTripped);
    let message = err.to_string();
    assert!(message.contains("would remove 40 members (43% of 91)"), "{message}");
    assert!(f.double.imports().is_empty(), "nothing is sent");
    let hash = message
        .split("guard-override=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    let wrong = RunOptions {
        guard_override: Some("0000".into()),
        ..Default::default()
    };
    assert!(f.run(&spec, &SyncState::default(), wrong).await.is_err());
    let right = RunOptions {
        guard_override: Some(hash),
        ..Default::default()
    };
    let out = f.run(&spec, &SyncState::default(), right).await.unwrap();
    assert!(out.guard_overridden);
    assert_eq!(out.changes.removed, Some(40));
    assert_eq!(f.double.members().len(), 51, "50 synced users and the owner");
}

#[tokio::test]
async fn a_directory_that_suddenly_shrinks_trips_the_guard_when_the_sync_can_remove() {
    let f = Fixture::new(company(100)).await;
    let spec = f.spec(SyncOptions {
        overwrite_existing: true,
        ..Default::default()
    });
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(first.state.last_active_users, Some(100));
    f.directory.lock().unwrap().users.truncate(60);
    let err = f.run(&spec, &first.state, RunOptions::default()).await.unwrap_err();
    assert_eq!(err.reason(), Reason::GuardTripped);
    assert_eq!(f.double.imports().len(), 1, "the second sync sent nothing");
}

#[tokio::test]
async fn large_imports_go_in_batches_in_order() {
    let f = Fixture::new(company(4100)).await;
    let spec = f.spec(SyncOptions {
        large_import: true,
        ..Default::default()
    });
    let out = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.sent.len(), 4);
    let shape: Vec<(usize, usize)> = f
        .double
        .imports()
        .iter()
        .map(|i| {
            (
                i["members"].as_array().unwrap().len(),
                i["groups"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(shape, vec![(2000, 0), (2000, 0), (100, 0), (0, 2)]);
    assert_eq!(f.double.members().len(), 4101);
}

#[tokio::test]
async fn without_large_import_the_cloud_refusal_says_to_set_it_and_no_state_moves() {
    let f = Fixture::new(company(2001)).await;
    let spec = f.spec(SyncOptions::default());
    let state = SyncState {
        sync_hash: Some("old".into()),
        ..Default::default()
    };
    let err = f.run(&spec, &state, RunOptions::default()).await.unwrap_err();
    assert_eq!(err.reason(), Reason::BitwardenRejected);
    assert!(err.to_string().contains("largeImport"), "{err}");
}

#[tokio::test]
async fn a_failed_import_is_retried_by_the_next_sync_with_the_same_reads() {
    let f = Fixture::new(company(3)).await;
    f.double
        .fail_next(Endpoint::Import, usize::MAX, Failure::server_error());
    let spec = f.spec(SyncOptions::default());
    let err = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::BitwardenUnavailable);
    f.double.clear_failures();
    let out = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.reason, Reason::Synced);
    assert!(f.reads.lock().unwrap().iter().all(|r| r.cursor.is_none()));
}

#[tokio::test]
async fn dry_run_reports_the_plan_and_sends_nothing() {
    let f = Fixture::new(company(5)).await;
    let mut spec = f.spec(SyncOptions::default());
    spec.mode = Mode::DryRun;
    let out = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.reason, Reason::DryRun);
    let plan = out.plan.unwrap();
    assert_eq!((plan.members, plan.groups, plan.requests), (5, 2, 1));
    assert!(out.message.contains("would send 5 active members"), "{}", out.message);
    assert_eq!(out.state, SyncState::default(), "a dry run moves no state");
    assert_nothing_sent_after(&f.double, 0);
    assert_eq!(out.members, Some(MemberCounts::default()), "nobody synced yet");
}

/// Since request `from`: no import and no write, and the members listed exactly once.
pub(crate) fn assert_nothing_sent_after(double: &BitwardenDouble, from: usize) {
    let requests = &double.requests()[from..];
    let writes: Vec<String> = requests
        .iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/connect/token"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "nothing is sent: {writes:?}");
    let listings = requests.iter().filter(|r| r.path.ends_with("/public/members")).count();
    assert_eq!(listings, 1, "one member listing");
}

#[tokio::test]
async fn duplicate_emails_stop_the_sync_before_anything_is_sent() {
    let mut dir = company(3);
    dir.users[1].email = dir.users[0].email.clone();
    let f = Fixture::new(dir).await;
    let err = f
        .run(
            &f.spec(SyncOptions::default()),
            &SyncState::default(),
            RunOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::DuplicateEmails);
    assert!(err.to_string().contains("user0@corp.example"));
    assert!(f.double.requests().is_empty());
}

#[tokio::test]
async fn remove_out_of_scope_on_a_server_without_member_listing_says_to_turn_it_off() {
    let f = Fixture::new(company(3)).await;
    f.double.vaultwarden_mode();
    let spec = f.spec(SyncOptions {
        remove_out_of_scope: true,
        ..Default::default()
    });
    let err = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidSpec);
    assert!(err.to_string().contains("turn removeOutOfScope off"), "{err}");
    // Without it, Vaultwarden works.
    let out = f
        .run(
            &f.spec(SyncOptions::default()),
            &SyncState::default(),
            RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.reason, Reason::Synced);
    // Vaultwarden cannot say whom the import invited: the outcome says what was sent, and that
    // the changes are unknown, never a count that is not known to be true.
    assert_eq!(
        out.message,
        "3 users, 2 groups; 3 members and 0 removals sent; who was invited or removed is unknown \
         (the server cannot list its members)"
    );
    assert_eq!((out.changes.invited, out.changes.removed), (None, None));
    assert_eq!((out.changes.members_sent, out.changes.groups_sent), (3, 2));
}

#[tokio::test]
async fn an_invalid_spec_or_a_suspended_resource_reads_nothing() {
    let f = Fixture::new(company(3)).await;
    let mut spec = f.spec(SyncOptions {
        interval: "1m".into(),
        ..Default::default()
    });
    let err = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidSpec);
    assert!(err.to_string().contains("spec.sync.interval"));
    spec.sync.interval = "1h".into();
    spec.suspend = true;
    let out = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(out.reason, Reason::Suspended);
    assert!(f.reads.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_incremental_read_sends_the_changes_and_keeps_the_last_complete_counts() {
    let f = Fixture::new(company(30)).await;
    let spec = f.spec(SyncOptions::default());
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert!(first.complete);
    *f.changes.lock().unwrap() = Some(Directory {
        users: vec![user(30)],
        complete: false,
        ..Default::default()
    });
    let second = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert!(!second.complete);
    assert_eq!(second.reason, Reason::Synced);
    assert!(
        second
            .message
            .starts_with("incremental read: 1 changed users, 0 groups"),
        "{}",
        second.message
    );
    assert_eq!(
        second.state.last_active_users,
        Some(30),
        "the guard's baseline comes from complete reads only"
    );
    let last = f.double.imports().pop().unwrap();
    assert_eq!(last["members"].as_array().unwrap().len(), 1);
    assert_eq!(
        f.double.members().len(),
        32,
        "the owner, 30 users and the new one: nobody removed"
    );
}

#[tokio::test]
async fn an_unchanged_incremental_read_is_not_a_guard_trip() {
    let f = Fixture::new(company(30)).await;
    let spec = f.spec(SyncOptions::default());
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    // Nothing changed in the directory: the incremental read returns nothing.
    *f.changes.lock().unwrap() = Some(Directory {
        complete: false,
        ..Default::default()
    });
    let imports = f.double.imports().len();
    for _ in 0..2 {
        let out = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
        assert_eq!(out.reason, Reason::Unchanged, "{}", out.message);
        assert!(out.message.contains("nothing changed"), "{}", out.message);
        assert_eq!(out.state.last_active_users, Some(30));
    }
    assert_eq!(f.double.imports().len(), imports, "nothing was sent");
}

#[tokio::test]
async fn overwrite_existing_is_refused_where_removals_can_be_neither_counted_nor_compared() {
    let f = Fixture::new(company(100)).await;
    f.double.vaultwarden_mode();
    let overwrite = f.spec(SyncOptions {
        overwrite_existing: true,
        ..Default::default()
    });
    // No member listing (Vaultwarden) and no baseline (no state): nothing is sent.
    let err = f
        .run(&overwrite, &SyncState::default(), RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::GuardTripped);
    assert!(err.to_string().contains("--state"), "{err}");
    assert!(!err.to_string().contains("0 removals at most"), "{err}");
    assert!(f.double.imports().is_empty());

    // A first sync without overwriteExisting records the baseline...
    let good = f
        .run(
            &f.spec(SyncOptions::default()),
            &SyncState::default(),
            RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(good.state.last_active_users, Some(100));
    // ...then the filter shrinks to 10: the shrink guard holds it back.
    *f.directory.lock().unwrap() = company(10);
    let err = f.run(&overwrite, &good.state, RunOptions::default()).await.unwrap_err();
    assert_eq!(err.reason(), Reason::GuardTripped);
    assert!(err.to_string().contains("90 fewer active users"), "{err}");
    assert_eq!(f.double.imports().len(), 1, "only the good sync was sent");

    // An unchanged directory with the baseline is sent, and says removals are not counted.
    *f.directory.lock().unwrap() = company(100);
    let out = f.run(&overwrite, &good.state, RunOptions::default()).await.unwrap();
    assert_eq!(out.reason, Reason::Synced);
    assert!(
        out.message
            .contains("overwriteExisting removed every synced member missing"),
        "{}",
        out.message
    );
    assert!(!out.message.contains("0 removals at most"), "{}", out.message);
}

#[tokio::test]
async fn a_batched_import_that_fails_half_way_says_how_many_batches_were_applied() {
    let f = Fixture::new(company(4100)).await;
    let spec = f.spec(SyncOptions {
        large_import: true,
        ..Default::default()
    });
    // The third of four batches is refused (a 400 is not applied).
    f.double
        .fail_after(Endpoint::Import, 2, 1, Failure::error(400, "Seat limit reached."));
    let err = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::BitwardenRejected);
    assert!(
        err.to_string().contains("2 of 4 import batches had been applied"),
        "{err}"
    );
}

#[tokio::test]
async fn a_grace_period_holds_removals_until_the_member_has_been_gone_for_all_of_it() {
    let f = Fixture::new(company(5)).await;
    let spec = f.spec(SyncOptions {
        remove_out_of_scope: true,
        remove_disabled: true,
        removal_grace_period: Some("2s".into()),
        ..Default::default()
    });
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    assert_eq!(f.double.members().len(), 6, "5 users and the owner");

    // user4 leaves the directory, user3 is disabled.
    let mut dir = company(4);
    dir.users[3].disabled = true;
    *f.directory.lock().unwrap() = dir;
    let held = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    let pending: Vec<(&str, PendingCause)> = held
        .state
        .pending_removals
        .iter()
        .map(|p| (p.external_id.as_str(), p.cause))
        .collect();
    assert_eq!(
        pending,
        [("u0003", PendingCause::Disabled), ("u0004", PendingCause::OutOfScope)]
    );
    assert_eq!(held.plan.as_ref().unwrap().pending_removals, 2);
    assert!(f.double.member("user3@corp.example").is_some());
    assert!(f.double.member("user4@corp.example").is_some());
    let remove_at = held.state.pending_removals[0].remove_at.clone();

    // Still within the period: nothing removed, the clock kept.
    let again = f.run(&spec, &held.state, RunOptions::default()).await.unwrap();
    assert_eq!(again.state.pending_removals[0].remove_at, remove_at);
    assert_eq!(f.double.members().len(), 6);

    // The period has passed: both go, nothing is pending.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let due = f.run(&spec, &again.state, RunOptions::default()).await.unwrap();
    assert_eq!(due.reason, Reason::Synced);
    assert!(due.state.pending_removals.is_empty());
    assert_eq!(due.changes.removed, Some(2));
    assert!(f.double.member("user3@corp.example").is_none());
    assert!(f.double.member("user4@corp.example").is_none());
}

#[tokio::test]
async fn a_pending_member_who_comes_back_is_forgotten() {
    let f = Fixture::new(company(5)).await;
    let spec = f.spec(SyncOptions {
        remove_out_of_scope: true,
        removal_grace_period: Some("1h".into()),
        ..Default::default()
    });
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    *f.directory.lock().unwrap() = company(4);
    let held = f.run(&spec, &first.state, RunOptions::default()).await.unwrap();
    assert_eq!(held.state.pending_removals.len(), 1);
    *f.directory.lock().unwrap() = company(5);
    let back = f.run(&spec, &held.state, RunOptions::default()).await.unwrap();
    assert!(back.state.pending_removals.is_empty());
    assert_eq!(f.double.members().len(), 6, "nobody was removed");
}

#[tokio::test]
async fn the_guard_counts_pending_removals() {
    let f = Fixture::new(company(100)).await;
    let spec = f.spec(SyncOptions {
        remove_out_of_scope: true,
        removal_grace_period: Some("24h".into()),
        ..Default::default()
    });
    let first = f
        .run(&spec, &SyncState::default(), RunOptions::default())
        .await
        .unwrap();
    // 20 of 100 leave at once: removing them later would still be a mass removal.
    *f.directory.lock().unwrap() = company(80);
    let err = f.run(&spec, &first.state, RunOptions::default()).await.unwrap_err();
    assert_eq!(err.reason(), Reason::GuardTripped);
    assert!(err.to_string().contains("20 of them pending"), "{err}");
}
