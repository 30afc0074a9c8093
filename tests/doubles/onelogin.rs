//! The OneLogin source against the OneLogin double (several pages of every list): token,
//! paging with After-Cursor, roles as groups, the email and status rules, filters, throttling,
//! 401/403, lists that cannot be read to their end, one whole sync through the Bitwarden double,
//! `dirsync test`'s JSON, and the vendor descriptions the double and the client are checked
//! against.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use dirsync::Error;
use dirsync::api::{DirectorySyncSpec, Mode, OneLoginSource, Reason, SourceSpec, SyncOptions};
use dirsync::bitwarden::BitwardenApi;
use dirsync::cli::{self, RunArgs};
use dirsync::engine::{self, Connector, DefaultConnector, RunOptions, SyncState};
use dirsync::secrets::SecretStore;
use dirsync::source::onelogin::read::USER_FIELDS;
use dirsync::source::onelogin::{PAGE_LIMIT, query};
use dirsync::source::{DirectorySource, ReadRequest};
use dirsync::sync::model::Directory;
use serde_json::{Value, json};

use crate::support::bitwarden::{BitwardenDouble, Member};
use crate::support::onelogin::{
    self as ol, CursorFault, Failure, OneLoginDouble, RecordedRequest, Scope, basic_credentials, user,
};
use crate::support::vendor::vendor_spec;

const BOTH: ReadRequest = ReadRequest {
    users: true,
    groups: true,
    cursor: None,
};

/// Eight users over three pages, five roles over three pages: every rule of the source once.
async fn acme() -> OneLoginDouble {
    let d = OneLoginDouble::start().await;
    for (id, name) in [
        (10, "Engineering"),
        (11, "Sales"),
        (12, "Support"),
        (13, "Finance"),
        (14, "Empty"),
    ] {
        d.add_role(id, name);
    }
    d.add_user(user(1, Some("alice@corp.example"), Some("alice"), 1, &[10, 11]));
    d.add_user(user(2, Some("BOB@Corp.Example"), Some("bob"), 2, &[10]));
    d.add_user(user(3, None, Some("carol@corp.example"), 3, &[11]));
    d.add_user(user(4, None, Some("dave"), 1, &[10]));
    d.add_user(user(5, Some(""), Some(""), 1, &[12]));
    d.add_user(user(6, Some("eve@corp.example"), None, 0, &[]));
    d.add_user(user(7, Some("frank@corp.example"), Some("frank"), 7, &[13]));
    let mut grace = user(8, Some("grace@corp.example"), None, 4, &[]);
    grace["role_ids"] = Value::Null;
    d.add_user(grace);
    d.set_page_cap("users", 3);
    d.set_page_cap("roles", 2);
    d
}

fn with_suffix(d: &OneLoginDouble) -> OneLoginSource {
    OneLoginSource {
        email_suffix: Some("@corp.example".into()),
        ..d.spec()
    }
}

type UserRow = (String, Option<String>, bool);
type GroupRow = (String, String, Vec<String>);

fn users_of(d: &Directory) -> Vec<UserRow> {
    let mut rows: Vec<UserRow> = d
        .users
        .iter()
        .map(|u| (u.external_id.clone(), u.email.clone(), u.disabled))
        .collect();
    rows.sort();
    rows
}

fn groups_of(d: &Directory) -> Vec<GroupRow> {
    let mut rows: Vec<GroupRow> = d
        .groups
        .iter()
        .map(|g| (g.external_id.clone(), g.name.clone(), g.members.clone()))
        .collect();
    rows.sort();
    rows
}

fn u(id: &str, email: Option<&str>, disabled: bool) -> UserRow {
    (id.into(), email.map(str::to_string), disabled)
}

fn g(id: &str, name: &str, members: &[&str]) -> GroupRow {
    (id.into(), name.into(), members.iter().map(|m| m.to_string()).collect())
}

/// The page a cursor stands for (the double issues base64 of `limit=L&page=P`).
fn cursor_page(r: &RecordedRequest) -> Option<String> {
    use base64::Engine;
    let c = r.query_param("cursor")?;
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(c).unwrap()).unwrap();
    Some(text.split("page=").nth(1).unwrap().to_string())
}

/// No secret of the credential, in any form, in a message.
fn assert_clean(d: &OneLoginDouble, message: &str) {
    let secret = d.client_secret();
    let id = d.client_id();
    for form in [
        secret.clone(),
        format!("{id}:{secret}"),
        basic_credentials(&id, &secret),
    ] {
        assert!(!message.contains(&form), "a secret leaked: {message}");
    }
}

async fn read(d: &OneLoginDouble, spec: &OneLoginSource, request: &ReadRequest) -> Result<Directory, Error> {
    let mut reader = d.reader_for(spec).await;
    reader.read(request).await.map(|r| r.directory)
}

async fn read_err(d: &OneLoginDouble, spec: &OneLoginSource) -> Error {
    let e = read(d, spec, &BOTH).await.expect_err("the read must fail");
    assert_clean(d, &e.to_string());
    e
}

#[tokio::test]
async fn a_full_read_pages_through_users_and_roles_with_the_after_cursor() {
    let d = acme().await;
    let dir = read(&d, &with_suffix(&d), &BOTH).await.unwrap();
    assert!(dir.complete);
    assert!(!dir.restrict_users_to_groups);
    assert_eq!(
        users_of(&dir),
        [
            u("1", Some("alice@corp.example"), false),
            u("2", Some("bob@corp.example"), true),
            u("3", Some("carol@corp.example"), false),
            u("4", Some("dave@corp.example"), false),
            u("5", None, false),
            u("6", Some("eve@corp.example"), false),
            u("7", Some("frank@corp.example"), false),
            u("8", Some("grace@corp.example"), false),
        ]
    );
    assert!(dir.users.iter().all(|u| !u.deleted), "OneLogin reports no deletions");
    assert_eq!(
        groups_of(&dir),
        [
            g("10", "Engineering", &["1", "2", "4"]),
            g("11", "Sales", &["1", "3"]),
            g("12", "Support", &["5"]),
            g("13", "Finance", &["7"]),
            g("14", "Empty", &[]),
        ]
    );

    // One token, HTTP Basic with a JSON body; every page with the bearer token.
    let token = d.requests_to("token");
    assert_eq!(token.len(), 1);
    assert_eq!(token[0].method, "POST");
    assert_eq!(token[0].header("authorization"), Some("Basic <redacted>"));
    assert!(token[0].header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(token[0].json(), Some(json!({"grant_type": "client_credentials"})));
    // Three pages each; the first without a cursor, then the server's After-Cursor (pages 2, 3).
    for (route, fields, pages) in [("users", USER_FIELDS, 3), ("roles", "id,name", 3)] {
        let requests = d.requests_to(route);
        assert_eq!(requests.len(), pages, "{route}");
        let cursors: Vec<Option<String>> = requests.iter().map(cursor_page).collect();
        assert_eq!(cursors, [None, Some("2".into()), Some("3".into())], "{route}");
        for r in &requests {
            assert_eq!(r.header("authorization"), Some("Bearer <redacted>"));
            assert_eq!(r.query_param("fields").as_deref(), Some(fields));
            assert_eq!(r.query_param("limit"), Some(PAGE_LIMIT.to_string()));
        }
    }
}

#[tokio::test]
async fn only_status_2_is_disabled_and_every_other_status_is_an_active_member() {
    let d = OneLoginDouble::start().await;
    d.set_page_cap("users", 2);
    for status in [0, 1, 2, 3, 4, 5, 7, 8] {
        d.add_user(user(
            100 + status,
            Some(&format!("s{status}@corp.example")),
            None,
            status,
            &[],
        ));
    }
    let dir = read(&d, &d.spec(), &BOTH).await.unwrap();
    let disabled: Vec<&str> = dir
        .users
        .iter()
        .filter(|u| u.disabled)
        .map(|u| u.external_id.as_str())
        .collect();
    assert_eq!(disabled, ["102"]);
    assert_eq!(dir.users.len(), 8);
    assert_eq!(d.requests_to("users").len(), 4);
}

#[tokio::test]
async fn without_an_email_suffix_a_username_that_is_no_address_leaves_the_user_out_but_in_its_roles() {
    let d = acme().await;
    let dir = read(&d, &d.spec(), &BOTH).await.unwrap();
    let dave = dir.users.iter().find(|u| u.external_id == "4").unwrap();
    assert_eq!(dave.email, None, "no suffix: dave has no usable email");
    let engineering = dir.groups.iter().find(|g| g.name == "Engineering").unwrap();
    assert_eq!(engineering.members, ["1", "2", "4"]);
}

#[tokio::test]
async fn the_token_is_cached_across_reads_and_renewed_once_after_a_401() {
    let d = acme().await;
    let mut reader = d.reader().await;
    reader.read(&BOTH).await.unwrap();
    reader.read(&BOTH).await.unwrap();
    assert_eq!(d.requests_to("token").len(), 1, "a 10-hour token serves both reads");

    // A 401 mid-list: the token is asked again (OneLogin hands out the same one) and the page
    // repeated.
    d.fail_after(
        "users",
        1,
        1,
        Failure::onelogin(401, "UnauthorizedError", "Unauthorized"),
    );
    let dir = reader.read(&BOTH).await.map(|r| r.directory).unwrap();
    assert_eq!(dir.users.len(), 8);
    assert_eq!(d.requests_to("token").len(), 2);
    assert_eq!(d.tokens_issued(), 1);

    // Revoked tokens: the cached one is refused, a new one is issued, the read completes.
    d.revoke_tokens();
    let dir = reader.read(&BOTH).await.map(|r| r.directory).unwrap();
    assert_eq!(dir.groups.len(), 5);
    assert_eq!(d.requests_to("token").len(), 3);
    assert_eq!(d.tokens_issued(), 2);
}

#[tokio::test]
async fn wrong_credentials_name_the_secret_and_never_show_it() {
    let d = acme().await;
    let mut reader = d.reader().await;
    let old = d.client_secret();
    d.set_client_secret("rotated-in-onelogin");
    let e = reader.read(&BOTH).await.unwrap_err();
    assert!(!e.to_string().contains(&old), "{e}");
    assert_eq!(e.reason(), Reason::SourceAuthFailed);
    let m = e.to_string();
    assert!(
        m.contains(r#"the API credential in Secret "onelogin-api" (keys "client_id" and "client_secret")"#),
        "{m}"
    );
    assert!(m.contains("Authentication Failure"), "{m}");
    assert!(m.contains("Developers → API Credentials"), "{m}");
    assert!(d.requests_to("users").is_empty());

    // A server that echoes the Authorization header: scrubbed.
    let d = acme().await;
    let echoed = format!(
        "bad header Basic {} for {}:{}",
        basic_credentials(&d.client_id(), &d.client_secret()),
        d.client_id(),
        d.client_secret()
    );
    d.fail_next(
        "token",
        1,
        Failure::json(
            401,
            json!({"status": {"error": true, "code": 401, "type": "Unauthorized", "message": echoed}}),
        ),
    );
    let e = read_err(&d, &d.spec()).await;
    assert!(e.to_string().contains("<redacted>"), "{e}");
}

#[tokio::test]
async fn a_token_endpoint_failing_with_500_names_the_documented_cause() {
    let d = acme().await;
    d.fail_next(
        "token",
        usize::MAX,
        Failure::onelogin(500, "InternalServerError", "Internal Server Error"),
    );
    let e = read_err(&d, &d.spec()).await;
    assert_eq!(e.reason(), Reason::SourceUnavailable);
    assert!(
        e.to_string()
            .contains("admin who created the API credential was deleted"),
        "{e}"
    );
    assert_eq!(d.requests_to("token").len(), 4, "retried, then given up");
}

#[tokio::test]
async fn a_credential_without_read_users_says_to_give_it_that_scope() {
    let d = acme().await;
    d.set_scope(Scope::AuthenticationOnly);
    let e = read_err(&d, &d.spec()).await;
    assert_eq!(e.reason(), Reason::SourceAuthFailed);
    let m = e.to_string();
    assert!(m.contains(r#"give it the "Read users" scope"#), "{m}");
    assert!(m.contains("HTTP 401 Unauthorized: Unauthorized"), "{m}");
    assert!(m.contains(r#"Secret "onelogin-api""#), "{m}");

    // A 403 (as other v2 endpoints document it): the same advice, no renewal.
    let d = acme().await;
    d.fail_next("roles", 1, Failure::onelogin(403, "ForbiddenError", "Forbidden"));
    let e = read_err(&d, &d.spec()).await;
    assert_eq!(e.reason(), Reason::SourceAuthFailed);
    assert!(e.to_string().contains("listing the roles"), "{e}");
    assert!(e.to_string().contains(r#""Read users""#), "{e}");
}

#[tokio::test]
async fn throttling_waits_what_x_ratelimit_reset_says_then_reads_on() {
    let d = acme().await;
    d.fail_after("users", 1, 1, Failure::onelogin_rate_limited(1));
    let started = Instant::now();
    let dir = read(&d, &d.spec(), &BOTH).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(dir.users.len(), 8);
    assert_eq!(d.requests_to("users").len(), 4, "three pages, one repeated");
}

#[tokio::test]
async fn throttling_past_what_a_call_may_wait_fails_with_rate_limited() {
    // The hourly window resets in 50 minutes: not waited for.
    let d = acme().await;
    d.fail_after("users", 1, 1, Failure::onelogin_rate_limited(3000));
    let started = Instant::now();
    let e = read_err(&d, &d.spec()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.reason(), Reason::RateLimited);
    assert!(e.to_string().contains("asks to wait 3000s"), "{e}");

    // Throttled on every attempt: bounded by the retry policy.
    let d = acme().await;
    d.fail_next("roles", usize::MAX, Failure::onelogin_rate_limited(0));
    let e = read_err(&d, &d.spec()).await;
    assert_eq!(e.reason(), Reason::RateLimited);
    assert!(e.to_string().contains("kept rate limiting"), "{e}");
    assert_eq!(d.requests_to("roles").len(), 4);

    // The account's budget runs out mid-read (token + two pages left).
    let d = acme().await;
    d.set_rate_limit(3, Duration::from_secs(1800));
    let e = read(&d, &d.spec(), &ReadRequest { groups: false, ..BOTH })
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::RateLimited);
}

#[tokio::test]
async fn passing_failures_are_retried_and_the_list_completes() {
    let d = acme().await;
    d.fail_after(
        "users",
        1,
        2,
        Failure::onelogin(503, "ServiceUnavailableError", "Service Unavailable"),
    );
    d.fail_after("roles", 2, 1, Failure::drop_connection());
    let dir = read(&d, &d.spec(), &BOTH).await.unwrap();
    assert_eq!((dir.users.len(), dir.groups.len()), (8, 5));
}

#[tokio::test]
async fn a_page_that_cannot_be_read_fails_the_whole_read() {
    // The reference's failure: one failed page and it went on with what it had.
    let d = OneLoginDouble::start().await;
    d.add_role(1, "Everyone");
    for i in 0..1182 {
        d.add_user(user(1000 + i, Some(&format!("user{i}@corp.example")), None, 1, &[1]));
    }
    d.set_page_cap("users", 49);
    d.fail_after(
        "users",
        1,
        usize::MAX,
        Failure::onelogin(500, "InternalServerError", "Internal Server Error"),
    );
    let e = read_err(&d, &d.spec()).await;
    assert_eq!(e.reason(), Reason::SourceUnavailable);
    let m = e.to_string();
    assert!(m.contains("HTTP 500"), "{m}");
    assert!(
        m.contains("page 2 could not be read, so the users are incomplete; nothing was sent"),
        "{m}"
    );
    assert_eq!(d.requests_to("users").len(), 5, "page 1, then page 2 four times");

    // An answer that is not OneLogin's (a proxy's page) is no list either.
    let d = acme().await;
    d.fail_after("users", 1, 1, Failure::body(200, "text/html", "<html>Sign in</html>"));
    let e = read_err(&d, &d.spec()).await;
    assert_eq!(e.reason(), Reason::SourceUnavailable);
    assert!(e.to_string().contains("not with a JSON array of users"), "{e}");
    assert!(e.to_string().contains("page 2 of the users"), "{e}");
}

#[tokio::test]
async fn a_broken_repeated_or_short_cursor_chain_fails_the_read() {
    let cases: [(&'static str, CursorFault, &str); 4] = [
        ("users", CursorFault::Garbage { page: 2 }, "page 3 could not be read"),
        ("roles", CursorFault::Garbage { page: 1 }, "Invalid cursor"),
        (
            "users",
            CursorFault::Repeat { page: 2 },
            "sent an After-Cursor it had sent before on page 2",
        ),
        (
            "users",
            CursorFault::Stop { page: 2 },
            "the list ended after 6 users but Total-Count says 8",
        ),
    ];
    for (route, fault, want) in cases {
        let d = acme().await;
        d.set_cursor_fault(route, fault);
        let e = read_err(&d, &d.spec()).await;
        assert_eq!(e.reason(), Reason::SourceUnavailable, "{fault:?}");
        assert!(e.to_string().contains(want), "{fault:?}: {e}");
    }
}

#[tokio::test]
async fn a_list_that_changes_while_it_is_read_is_not_used() {
    // Alice is deleted after page 1: everyone after her moves up a place, and the user at the
    // start of page 2 would be skipped unseen.
    let d = acme().await;
    d.delete_user_after_page(1, 1);
    let e = read_err(&d, &d.spec()).await;
    assert_eq!(e.reason(), Reason::SourceUnavailable);
    let m = e.to_string();
    assert!(
        m.contains("Total-Count went from 8 to 7 while the users were read"),
        "{m}"
    );
    assert!(m.contains("the next sync reads it again"), "{m}");

    // A user created at the front after page 1: the last user of page 1 comes again on page 2.
    let d = acme().await;
    d.insert_user_after_page(1, 0, user(9, Some("new@corp.example"), None, 1, &[]));
    let e = read_err(&d, &d.spec()).await;
    assert_eq!(e.reason(), Reason::SourceUnavailable);
    assert!(e.to_string().contains("user 3 was listed twice (page 2)"), "{e}");
}

#[tokio::test]
async fn a_user_list_without_role_ids_fails_a_group_sync() {
    let d = OneLoginDouble::start().await;
    d.add_role(10, "Engineering");
    let mut plain = user(1, Some("a@corp.example"), None, 1, &[10]);
    plain.as_object_mut().unwrap().remove("role_ids");
    d.add_user(plain);
    let e = read_err(&d, &d.spec()).await;
    assert!(e.to_string().contains("without role_ids"), "{e}");
    // Users alone do not need them.
    let dir = read(&d, &d.spec(), &ReadRequest { groups: false, ..BOTH })
        .await
        .unwrap();
    assert_eq!(dir.users.len(), 1);
}

#[tokio::test]
async fn users_and_groups_are_read_only_as_the_sync_needs_them() {
    let d = acme().await;
    let dir = read(&d, &d.spec(), &ReadRequest { groups: false, ..BOTH })
        .await
        .unwrap();
    assert!(dir.groups.is_empty());
    assert!(d.requests_to("roles").is_empty());

    // Groups alone still read the users: role members come from their role_ids.
    let d = acme().await;
    let dir = read(&d, &d.spec(), &ReadRequest { users: false, ..BOTH })
        .await
        .unwrap();
    assert_eq!(dir.groups.len(), 5);
    assert_eq!(d.requests_to("users").len(), 3);
}

#[tokio::test]
async fn user_and_group_filters_as_the_reference_applies_them() {
    let d = acme().await;
    for id in [1, 2, 3] {
        d.update_user(id, json!({"directory_id": 7}));
    }
    let spec = OneLoginSource {
        user_filter: Some("exclude:bob@corp.example | directory_id=7".into()),
        ..d.spec()
    };
    let dir = read(&d, &spec, &BOTH).await.unwrap();
    assert_eq!(
        users_of(&dir),
        [
            u("1", Some("alice@corp.example"), false),
            u("3", Some("carol@corp.example"), false)
        ]
    );
    // Role members come from every listed user, Bob (excluded by email) included.
    assert_eq!(groups_of(&dir)[0], g("10", "Engineering", &["1", "2"]));
    for r in d.requests_to("users") {
        assert_eq!(r.query_param("directory_id").as_deref(), Some("7"));
    }

    // Roles by name, with a native role query too; users then only from synced groups.
    let d = acme().await;
    d.set_role_apps(11, &[(501, "Salesforce")]);
    let spec = OneLoginSource {
        group_filter: Some("include:engineering,sales|role_name=*e*".into()),
        ..d.spec()
    };
    let dir = read(&d, &spec, &BOTH).await.unwrap();
    let names: Vec<String> = groups_of(&dir).into_iter().map(|g| g.1).collect();
    assert_eq!(names, ["Engineering", "Sales"]);
    assert!(dir.restrict_users_to_groups);
    assert!(
        d.requests_to("roles")
            .iter()
            .all(|r| r.query_param("role_name").as_deref() == Some("*e*"))
    );
    let spec = OneLoginSource {
        group_filter: Some("|app_name=sales*".into()),
        ..d.spec()
    };
    let dir = read(&d, &spec, &BOTH).await.unwrap();
    assert_eq!(groups_of(&dir), [g("11", "Sales", &["1", "3"])]);
    assert!(
        !dir.restrict_users_to_groups,
        "only an include/exclude list narrows the users"
    );
}

#[tokio::test]
async fn a_native_query_the_server_refuses_is_an_invalid_spec() {
    let d = acme().await;
    let spec = OneLoginSource {
        user_filter: Some("|directory_id=engineering".into()),
        ..d.spec()
    };
    let e = read_err(&d, &spec).await;
    assert_eq!(e.reason(), Reason::InvalidSpec);
    let m = e.to_string();
    assert!(m.contains("spec.source.oneLogin.userFilter"), "{m}");
    assert!(m.contains(r#"invalid value in "directory_id""#), "{m}");
}

/// The real source (fast retries) and the Bitwarden double, for whole syncs.
struct OneLoginConnector<'a> {
    onelogin: &'a OneLoginDouble,
    bitwarden: &'a BitwardenDouble,
}

#[async_trait]
impl Connector for OneLoginConnector<'_> {
    async fn source(&self, spec: &DirectorySyncSpec, _: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        let SourceSpec::OneLogin(s) = &spec.source else {
            panic!("a OneLogin spec")
        };
        Ok(Box::new(self.onelogin.reader_for(s).await))
    }
    async fn bitwarden(&self, _: &DirectorySyncSpec, _: &dyn SecretStore) -> Result<Box<dyn BitwardenApi>, Error> {
        Ok(Box::new(self.bitwarden.client()))
    }
}

fn sync_spec(d: &OneLoginDouble, bw: &BitwardenDouble, sync: SyncOptions) -> DirectorySyncSpec {
    DirectorySyncSpec {
        bitwarden: bw.spec(),
        source: SourceSpec::OneLogin(with_suffix(d)),
        sync,
        collections: Vec::new(),
        mode: Mode::Apply,
        suspend: false,
    }
}

#[tokio::test]
async fn a_sync_sends_the_directory_and_a_failed_read_sends_nothing() {
    let d = acme().await;
    let bw = BitwardenDouble::start().await;
    bw.set_members(vec![
        Member::owner("owner@example.com"),
        Member::user("left@corp.example", Some("999")),
    ]);
    let connector = OneLoginConnector {
        onelogin: &d,
        bitwarden: &bw,
    };
    let sync = SyncOptions {
        overwrite_existing: true,
        guard: dirsync::api::GuardSpec {
            max_removals: 10,
            max_removal_percent: 100,
        },
        ..SyncOptions::default()
    };
    let spec = sync_spec(&d, &bw, sync);
    let secrets = bw.secrets();

    // A page that fails: nothing reaches Bitwarden, not even with overwriteExisting.
    d.fail_after(
        "users",
        1,
        usize::MAX,
        Failure::onelogin(502, "BadGatewayError", "Bad Gateway"),
    );
    let e = engine::run(
        &spec,
        &SyncState::default(),
        &RunOptions::default(),
        &secrets,
        &connector,
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason(), Reason::SourceUnavailable);
    assert!(bw.requests().is_empty(), "Bitwarden was not even asked for a token");

    // Whole: one import with every member and role.
    d.clear_failures();
    let outcome = engine::run(
        &spec,
        &SyncState::default(),
        &RunOptions::default(),
        &secrets,
        &connector,
    )
    .await
    .unwrap();
    assert_eq!(outcome.reason, Reason::Synced);
    let imports = bw.imports();
    assert_eq!(imports.len(), 1);
    let sent = &imports[0];
    let members: Vec<(String, String, bool)> = sent["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["externalId"].as_str().unwrap().to_string(),
                m["email"].as_str().unwrap().to_string(),
                m["deleted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(members.len(), 7, "user 5 has no email: {members:?}");
    assert!(members.contains(&("2".into(), "bob@corp.example".into(), false)));
    assert_eq!(sent["overwriteExisting"], true);
    assert_eq!(
        sent["groups"][0],
        json!({"name": "Engineering", "externalId": "10", "memberExternalIds": ["1", "2", "4"]})
    );
    assert!(
        bw.member("left@corp.example").is_none(),
        "overwriteExisting removed who left"
    );
}

#[tokio::test]
async fn dirsync_test_prints_what_bwdc_test_prints() {
    let d = acme().await;
    let bw = BitwardenDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("onelogin.yaml");
    let yaml = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: bitwarden-org-key, namespace: identity}}
stringData: {{client_id: "{bw_id}", client_secret: "{bw_secret}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: onelogin-api, namespace: identity}}
stringData: {{client_id: "{id}", client_secret: "{secret}"}}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {{name: corp-onelogin, namespace: identity}}
spec:
  bitwarden: {{serverUrl: "{bw_url}", apiKeySecretRef: {{name: bitwarden-org-key}}}}
  source:
    oneLogin:
      apiUrl: "{url}"
      credentialsSecretRef: {{name: onelogin-api}}
      emailSuffix: "@corp.example"
"#,
        bw_id = bw.client_id(),
        bw_secret = bw.client_secret(),
        bw_url = bw.url(),
        id = d.client_id(),
        secret = d.client_secret(),
        url = d.url(),
    );
    std::fs::write(&file, yaml).unwrap();
    let args = RunArgs {
        files: vec![file],
        json: true,
        dry_run: true,
        ..RunArgs::default()
    };
    let mut out = Vec::new();
    let code = cli::run(&args, &DefaultConnector, &mut out).await;
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
    let got: Value = serde_json::from_slice(&out).unwrap();
    // As the reference: the role ids as group external ids, members from the users' role ids
    // (user 5, without an email, stays in Support); a user's displayName is its email; only
    // status 2 is disabled; the suffix completes dave's username; everything sorted.
    let user = |id: &str, email: &str| json!({"externalId": id, "displayName": email});
    let want = json!({
        "groups": [
            {"externalId": "10", "displayName": "Engineering", "userIds": ["1", "2", "4"]},
            {"externalId": "11", "displayName": "Sales", "userIds": ["1", "3"]},
            {"externalId": "12", "displayName": "Support", "userIds": ["5"]},
            {"externalId": "13", "displayName": "Finance", "userIds": ["7"]},
            {"externalId": "14", "displayName": "Empty", "userIds": []}
        ],
        "enabledUsers": [
            user("1", "alice@corp.example"),
            user("3", "carol@corp.example"),
            user("4", "dave@corp.example"),
            user("6", "eve@corp.example"),
            user("7", "frank@corp.example"),
            user("8", "grace@corp.example")
        ],
        "disabledUsers": [user("2", "bob@corp.example")],
        "deletedUsers": []
    });
    assert_eq!(got, want);
    assert!(bw.imports().is_empty(), "test sends nothing");
}

// --- the vendor descriptions -----------------------------------------------------------------

/// The section of a generated SDK doc about one method (`# **list_users2**` to the next one).
fn section<'a>(doc: &'a str, method: &str) -> &'a str {
    let start = doc
        .find(&format!("# **{method}**"))
        .unwrap_or_else(|| panic!("no section for {method}"));
    let rest = &doc[start + 3..];
    let end = rest.find("\n# **").unwrap_or(rest.len());
    &rest[..end]
}

/// Parameter names of a method section's Parameters table.
fn parameters(section: &str) -> Vec<String> {
    section
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("**")?
                .split_once("**")
                .map(|(name, _)| name.to_string())
        })
        .filter(|n| !n.contains(' '))
        .collect()
}

/// Property names of a model doc (`User.md`).
fn properties(doc: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("**")?.split_once("** |").map(|(n, _)| n.to_string()))
        .collect()
}

fn read_doc(name: &str) -> Option<String> {
    let path = vendor_spec(
        &format!("onelogin/{name}"),
        "OneLogin paths, parameters, fields and paging headers used by the double and the client",
    )?;
    Some(std::fs::read_to_string(path).unwrap())
}

#[tokio::test]
async fn the_double_and_the_client_use_only_what_the_vendor_describes() {
    let (Some(oauth), Some(users_api), Some(roles_api), Some(user_doc), Some(role_doc)) = (
        read_doc("OAuth2Api.md"),
        read_doc("UsersV2Api.md"),
        read_doc("RolesApi.md"),
        read_doc("User.md"),
        read_doc("Role.md"),
    ) else {
        return;
    };
    // Token: the path, HTTP Basic, a JSON body with grant_type.
    assert!(oauth.contains(&format!("**POST** {}", ol::TOKEN_PATH)));
    let token = section(&oauth, "generate_token");
    assert!(token.contains("Basic Authentication (basicAuth)"));
    assert!(token.contains(r#"{"grant_type":"client_credentials"}"#));
    assert!(token.contains("**Content-Type**: application/json"));

    // Lists: paths, and every parameter the double accepts (so every one the client can send).
    assert!(users_api.contains(&format!("**GET** {}", ol::USERS_PATH)));
    assert!(roles_api.contains(&format!("**GET** {}", ol::ROLES_PATH)));
    let list_users = section(&users_api, "list_users2");
    let list_roles = section(&roles_api, "list_roles");
    let user_params = parameters(list_users);
    let role_params = parameters(list_roles);
    for p in ol::PAGING_PARAMETERS.iter().chain(ol::USER_FILTERS) {
        assert!(user_params.iter().any(|x| x == p), "list_users2 has no parameter {p}");
    }
    assert!(user_params.iter().any(|x| x == "custom_attributes_attribute_name"));
    assert!(list_users.contains("prefixed with custom_attributes"));
    for p in ol::PAGING_PARAMETERS.iter().chain(ol::ROLE_FILTERS) {
        assert!(role_params.iter().any(|x| x == p), "list_roles has no parameter {p}");
    }
    // What validation lets through is what the double (and so OneLogin) takes.
    assert_eq!(query::USER_PARAMETERS, ol::USER_FILTERS);
    assert_eq!(query::ROLE_PARAMETERS, ol::ROLE_FILTERS);
    assert_eq!(query::RESERVED, ol::PAGING_PARAMETERS);
    assert!(list_users.contains("(max 100)") && PAGE_LIMIT == 100);
    // Paging headers: the cursor comes from After-Cursor; the list answers carry them all.
    assert!(list_users.contains("extracted from Before-Cursor or After-Cursor headers"));
    let ok = list_roles
        .lines()
        .find(|l| l.starts_with("**200**"))
        .expect("a 200 row");
    for h in ol::PAGING_HEADERS {
        assert!(ok.contains(&format!("* {h} -")), "list_roles' 200 has no header {h}");
    }
    // Fields the client asks for and the double serves.
    let user_fields = properties(&user_doc);
    let d = OneLoginDouble::start().await;
    for field in USER_FIELDS.split(',').chain(
        user(1, Some("a@b.c"), None, 1, &[])
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str),
    ) {
        assert!(user_fields.iter().any(|f| f == field), "User has no field {field}");
    }
    let role_fields = properties(&role_doc);
    for field in ol::role(1, "x").as_object().unwrap().keys() {
        assert!(role_fields.iter().any(|f| f == field), "Role has no field {field}");
    }

    // And the requests the client really sent stay within that.
    d.add_role(1, "Everyone");
    d.add_user(user(1, Some("a@corp.example"), None, 1, &[1]));
    let spec = OneLoginSource {
        user_filter: Some("|custom_attributes.dept=Sales&updated_since=2024-01-01T00:00:00Z".into()),
        group_filter: Some("|app_id=5".into()),
        ..d.spec()
    };
    read(&d, &spec, &BOTH).await.unwrap();
    for (route, params) in [("users", &user_params), ("roles", &role_params)] {
        for r in d.requests_to(route) {
            for (k, _) in dirsync_pairs(&r) {
                let documented = params.contains(&k)
                    || (route == "users"
                        && k.starts_with("custom_attributes.")
                        && params.contains(&"custom_attributes_attribute_name".to_string()));
                assert!(documented, "the client sent {k} to {route}");
            }
        }
    }
}

fn dirsync_pairs(r: &RecordedRequest) -> Vec<(String, String)> {
    crate::support::double::parse_form(r.query.as_deref().unwrap_or_default())
}

#[tokio::test]
async fn an_engine_sync_of_a_company_larger_than_a_page_removes_nobody_who_is_still_there() {
    // 230 users over five pages, with one page throttled on the way: the import holds them all,
    // and removeOutOfScope removes only the member who really left.
    let d = OneLoginDouble::start().await;
    d.add_role(1, "Everyone");
    for i in 0..230 {
        d.add_user(user(5000 + i, Some(&format!("p{i}@corp.example")), None, 1, &[1]));
    }
    d.set_page_cap("users", 50);
    d.fail_after("users", 2, 1, Failure::onelogin_rate_limited(0));
    let bw = BitwardenDouble::start().await;
    let mut members = vec![Member::owner("owner@example.com")];
    members.extend((0..230).map(|i| Member::user(&format!("p{i}@corp.example"), Some(&(5000 + i).to_string()))));
    members.push(Member::user("gone@corp.example", Some("4999")));
    bw.set_members(members);
    let connector = OneLoginConnector {
        onelogin: &d,
        bitwarden: &bw,
    };
    let spec = DirectorySyncSpec {
        source: SourceSpec::OneLogin(d.spec()),
        ..sync_spec(
            &d,
            &bw,
            SyncOptions {
                remove_out_of_scope: true,
                ..SyncOptions::default()
            },
        )
    };
    let outcome = engine::run(
        &spec,
        &SyncState::default(),
        &RunOptions::default(),
        &bw.secrets(),
        &connector,
    )
    .await
    .unwrap();
    assert_eq!(outcome.reason, Reason::Synced);
    assert_eq!(outcome.changes.removed, Some(1));
    assert!(bw.member("gone@corp.example").is_none());
    assert!(bw.member("p229@corp.example").is_some());
    assert_eq!(d.requests_to("users").len(), 6);
}
