//! The Google Workspace source against the Google double: the signed token request, paging of
//! every list, Directory Connector's user and member rules, filters, domain vs customer,
//! throttling, failures that must fail the whole read, errors that say what to fix, one sync
//! through the engine, `dirsync test` as `bwdc test` prints it, and the vendor's description.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::bitwarden::BitwardenDouble;
use crate::support::double::Failure;
use crate::support::google::{
    ADMIN, CLIENT_ID, CUSTOMER_ID, DOMAIN, GMember, GUser, GoogleDouble, KEY_ID, OTHER_DOMAIN, SECRET_KEY, SECRET_NAME,
    SERVICE_ACCOUNT, other_public_key_pem, route,
};
use crate::support::secrets::MemorySecrets;
use crate::support::vendor::vendor_spec;
use async_trait::async_trait;
use dirsync::Error;
use dirsync::api::{DirectorySyncSpec, GoogleWorkspaceSource, Mode, Reason, SourceSpec, SyncOptions};
use dirsync::bitwarden::BitwardenApi;
use dirsync::engine::{self, Connector, RunOptions, SyncState};
use dirsync::secrets::SecretStore;
use dirsync::source::google::GoogleSource;
use dirsync::source::google::client::{ClientOptions, SCOPES};
use dirsync::source::{DirectorySource, ReadRequest};
use dirsync::sync::model::{Directory, Group, User};
use serde_json::{Value, json};

fn full() -> ReadRequest {
    ReadRequest {
        users: true,
        groups: true,
        cursor: None,
    }
}

async fn read(source: &mut GoogleSource) -> Result<Directory, Error> {
    source.read(&full()).await.map(|r| r.directory)
}

fn user(id: &str, email: Option<&str>, disabled: bool, deleted: bool) -> User {
    User {
        external_id: id.into(),
        email: email.map(str::to_string),
        disabled,
        deleted,
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn group<'a>(dir: &'a Directory, name: &str) -> &'a Group {
    dir.groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

/// A company large enough for several pages of every list at the double's small page sizes
/// (users 4, groups 2, members 3).
struct Company {
    g: GoogleDouble,
    admin: String,
    /// Active users staff00..staff19.
    staff: Vec<String>,
    suspended: String,
    archived: String,
    no_emails: String,
    deleted: Vec<String>,
    everyone: String,
    engineering: String,
    backend: String,
    sales: String,
    empty: String,
}

impl Company {
    async fn start() -> Company {
        let g = GoogleDouble::start().await;
        let staff: Vec<String> = (0..20)
            .map(|i| g.add_user(GUser::new(&format!("Staff{i:02}@corp.example"))))
            .collect();
        let suspended = g.add_user(GUser::new("sus@corp.example").suspended());
        let archived = g.add_user(GUser::new("arch@corp.example").archived());
        let no_emails = g.add_user(GUser::new("noemails@corp.example").no_emails());
        let deleted: Vec<String> = (0..5)
            .map(|i| g.add_user(GUser::new(&format!("gone{i}@corp.example")).deleted()))
            .collect();
        let everyone = g.add_group("Everyone");
        g.add_member(&everyone, GMember::Customer);
        let engineering = g.add_group("Engineering");
        let backend = g.add_group("Backend");
        let sales = g.add_group("Sales");
        let empty = g.add_group("Empty");
        for id in &staff[0..8] {
            g.add_member(&engineering, GMember::user(id));
        }
        g.add_member(&engineering, GMember::user_with_status(&suspended, Some("SUSPENDED")));
        g.add_member(&engineering, GMember::user_with_status(&staff[19], None));
        g.add_member(&engineering, GMember::group(&backend));
        g.add_member(
            &engineering,
            GMember::External {
                email: "contractor@partner.example".into(),
            },
        );
        for id in staff[6..12].iter().chain([&no_emails, &archived]) {
            g.add_member(&backend, GMember::user(id));
        }
        g.add_member(&backend, GMember::user(&deleted[0]));
        for id in &staff[12..16] {
            g.add_member(&sales, GMember::user(id));
        }
        g.set_page_sizes(4, 2, 3);
        let admin = g.admin_id();
        Company {
            g,
            admin,
            staff,
            suspended,
            archived,
            no_emails,
            deleted,
            everyone,
            engineering,
            backend,
            sales,
            empty,
        }
    }

    /// Every user the listings keep (the `CUSTOMER` member's expansion).
    fn kept(&self) -> Vec<String> {
        let mut ids = vec![self.admin.clone(), self.suspended.clone(), self.archived.clone()];
        ids.extend(self.staff.iter().cloned());
        ids.extend(self.deleted.iter().cloned());
        sorted(ids)
    }
}

#[tokio::test]
async fn a_full_read_pages_through_every_list_and_builds_what_directory_connector_builds() {
    let c = Company::start().await;
    let mut source = c.g.source().await;
    let dir = read(&mut source).await.unwrap();

    // Users: suspended and archived are disabled, the showDeleted listing is deleted, the user
    // without emails is there without an email (the core counts it as left out).
    let mut want: Vec<User> = vec![user(&c.admin, Some(ADMIN), false, false)];
    want.extend(
        c.staff
            .iter()
            .enumerate()
            .map(|(i, id)| user(id, Some(&format!("staff{i:02}@corp.example")), false, false)),
    );
    want.push(user(&c.suspended, Some("sus@corp.example"), true, false));
    want.push(user(&c.archived, Some("arch@corp.example"), true, false));
    want.extend(
        c.deleted
            .iter()
            .enumerate()
            .map(|(i, id)| user(id, Some(&format!("gone{i}@corp.example")), false, true)),
    );
    want.push(user(&c.no_emails, None, false, false));
    assert_eq!(dir.users, want);
    assert!(dir.complete);
    assert!(!dir.restrict_users_to_groups);

    // Members: USER only when ACTIVE, GROUP as a child, CUSTOMER = every kept user of both
    // listings, EXTERNAL ignored; a member id that is not a synced user stays.
    assert_eq!(group(&dir, "Everyone").members, c.kept());
    assert_eq!(group(&dir, "Everyone").external_id, c.everyone);
    let eng = group(&dir, "Engineering");
    assert_eq!(eng.members, sorted(c.staff[0..8].to_vec()));
    assert_eq!(eng.children, vec![c.backend.clone()]);
    let mut backend: Vec<String> = c.staff[6..12].to_vec();
    backend.extend([c.no_emails.clone(), c.archived.clone(), c.deleted[0].clone()]);
    assert_eq!(group(&dir, "Backend").members, sorted(backend));
    assert_eq!(group(&dir, "Sales").members, sorted(c.staff[12..16].to_vec()));
    assert!(group(&dir, "Empty").members.is_empty());
    assert_eq!(dir.groups.len(), 5);
    let _ = (&c.engineering, &c.sales, &c.empty);

    // Every list took several pages: 24 users / 4, 5 deleted / 4, 5 groups / 2, members / 3.
    let counts = c.g.request_counts();
    assert_eq!(counts["token"], 1, "one token for the whole read");
    assert_eq!(counts[route::USERS], 6);
    assert_eq!(counts[route::DELETED_USERS], 2);
    assert_eq!(counts[route::GROUPS], 3);
    // Everyone 1, Engineering 12 members → 4, Backend 9 → 3, Sales 4 → 2, Empty 1.
    assert_eq!(counts[route::MEMBERS], 11);

    // What the lists asked for: the largest pages Google allows, the domain, partial responses,
    // and the page token on every page but the first.
    for r in c.g.requests_to(route::USERS) {
        assert_eq!(r.query_param("domain").as_deref(), Some(DOMAIN));
        assert_eq!(r.query_param("customer"), None);
        assert_eq!(r.query_param("maxResults").as_deref(), Some("500"));
        assert!(r.query_param("fields").unwrap().contains("users(id,primaryEmail"));
        assert_eq!(r.header("authorization"), Some("Bearer <redacted>"));
    }
    let users = c.g.requests_to(route::USERS);
    assert_eq!(users[0].query_param("pageToken"), None);
    assert!(users[1..].iter().all(|r| r.query_param("pageToken").is_some()));
    for r in
        c.g.requests_to(route::GROUPS)
            .iter()
            .chain(&c.g.requests_to(route::MEMBERS))
    {
        assert_eq!(r.query_param("maxResults").as_deref(), Some("200"));
    }
    assert!(
        c.g.requests_to(route::DELETED_USERS)
            .iter()
            .all(|r| r.query_param("showDeleted").as_deref() == Some("true"))
    );
}

#[tokio::test]
async fn the_token_request_is_an_rs256_assertion_the_double_verifies() {
    let c = Company::start().await;
    let mut source = c.g.source().await;
    read(&mut source).await.unwrap();
    let token = &c.g.requests_to(route::TOKEN)[0];
    assert_eq!(token.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        token.form()["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    let assertions = c.g.assertions();
    assert_eq!(assertions.len(), 1);
    let a = &assertions[0];
    assert_eq!(a.header["alg"], "RS256");
    assert_eq!(a.header["typ"], "JWT");
    assert_eq!(a.header["kid"], KEY_ID);
    assert_eq!(a.claims["iss"], SERVICE_ACCOUNT);
    assert_eq!(a.claims["sub"], ADMIN);
    assert_eq!(a.claims["aud"], c.g.token_url());
    assert_eq!(a.claims["scope"], SCOPES.join(" "));
    let (iat, exp) = (a.claims["iat"].as_i64().unwrap(), a.claims["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 3600);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - iat).abs() < 60, "iat is now");

    // A second read reuses the token; after the double forgets it, one renewal.
    read(&mut source).await.unwrap();
    assert_eq!(c.g.requests_to(route::TOKEN).len(), 1);
    c.g.expire_tokens();
    read(&mut source).await.unwrap();
    assert_eq!(c.g.requests_to(route::TOKEN).len(), 2);
}

/// A read that fails, and its error.
async fn failed_read(g: &GoogleDouble, spec: &GoogleWorkspaceSource) -> Error {
    let mut source = g.source_with(spec, GoogleDouble::fast_options()).await;
    read(&mut source).await.expect_err("the read should fail")
}

fn assert_says(e: &Error, reason: Reason, words: &[&str]) {
    let m = e.to_string();
    assert_eq!(e.reason(), reason, "{m}");
    for w in words {
        assert!(m.contains(w), "{w:?} missing from: {m}");
    }
    // The key, an access token, or an assertion (a JWT starts `eyJ`).
    let leaked = ["BEGIN PRIVATE KEY", "ya29.", "eyJ"].iter().any(|s| m.contains(s));
    assert!(!leaked, "a secret leaked: {m}");
}

#[tokio::test]
async fn refused_credentials_say_what_to_fix() {
    let g = GoogleDouble::start().await;
    let spec = g.spec();

    // Domain-wide delegation not granted, or without one of the scopes.
    g.set_delegation(None);
    let e = failed_read(&g, &spec).await;
    let mut words = vec!["unauthorized_client", "domain-wide delegation", CLIENT_ID];
    words.extend(SCOPES);
    assert_says(&e, Reason::SourceAuthFailed, &words);
    g.set_delegation(Some(&SCOPES[..2]));
    assert_says(&failed_read(&g, &spec).await, Reason::SourceAuthFailed, &words);
    g.set_delegation(Some(&SCOPES));

    // The admin email is no user of the account.
    let nobody = GoogleWorkspaceSource {
        admin_email: "nobody@corp.example".into(),
        ..spec.clone()
    };
    assert_says(
        &failed_read(&g, &nobody).await,
        Reason::SourceAuthFailed,
        &[
            "invalid_grant",
            "Invalid email or User ID",
            "spec.source.googleWorkspace.adminEmail",
            "nobody@corp.example",
        ],
    );

    // The admin email is a user, but not an admin.
    g.set_admin(ADMIN, false);
    assert_says(
        &failed_read(&g, &spec).await,
        Reason::SourceAuthFailed,
        &[
            "HTTP 403",
            "Not Authorized to access this resource/api",
            "adminEmail",
            "is not an admin",
        ],
    );
    g.set_admin(ADMIN, true);

    // The key is not the service account's (deleted and replaced).
    g.set_public_key(other_public_key_pem());
    assert_says(
        &failed_read(&g, &spec).await,
        Reason::SourceAuthFailed,
        &["Invalid JWT Signature", "create a new JSON key", SERVICE_ACCOUNT],
    );
    assert_eq!(
        g.assertions().len(),
        1,
        "the double accepted only the not-an-admin case's assertion"
    );
}

#[tokio::test]
async fn every_refusal_google_describes_maps_to_a_fix() {
    let oauth = |status: u16, error: &str, description: &str| {
        Failure::json(status, json!({"error": error, "error_description": description}))
    };
    let cases: Vec<(&'static str, Failure, Reason, Vec<&str>)> = vec![
        (
            route::TOKEN,
            oauth(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            ),
            Reason::SourceAuthFailed,
            vec!["clock"],
        ),
        (
            // A server that echoes the form (with the assertion) into its error page.
            route::TOKEN,
            Failure::echo(400),
            Reason::SourceAuthFailed,
            vec!["HTTP 400", "no OAuth error"],
        ),
        (
            route::TOKEN,
            oauth(401, "invalid_client", "The OAuth client was not found."),
            Reason::SourceAuthFailed,
            vec!["deleted or disabled", SERVICE_ACCOUNT],
        ),
        (
            route::USERS,
            Failure::json(
                403,
                json!({"error": {"code": 403,
                "message": "Admin SDK API has not been used in project 123456789012 before or it is disabled.",
                "errors": [{"message": "m", "domain": "usageLimits", "reason": "accessNotConfigured"}],
                "status": "PERMISSION_DENIED",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED"}]}}),
            ),
            Reason::SourceAuthFailed,
            vec!["enable the Admin SDK API"],
        ),
        (
            route::GROUPS,
            Failure::google(
                403,
                "Request had insufficient authentication scopes.",
                "insufficientPermissions",
                "PERMISSION_DENIED",
            ),
            Reason::SourceAuthFailed,
            vec!["lacks a scope", CLIENT_ID],
        ),
        (
            route::USERS,
            Failure::google(400, "Invalid Input", "invalid", "INVALID_ARGUMENT"),
            Reason::SourceUnavailable,
            vec!["domain / customer", "query after |"],
        ),
        (
            route::MEMBERS,
            Failure::google(404, "Resource Not Found: groupKey", "notFound", "NOT_FOUND"),
            Reason::SourceUnavailable,
            vec!["HTTP 404", "Resource Not Found: groupKey", "members of group"],
        ),
        (
            route::USERS,
            Failure::json(
                401,
                json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError"}],
                "status": "UNAUTHENTICATED"}}),
            )
            .header(
                "www-authenticate",
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            ),
            Reason::SourceAuthFailed,
            vec!["refused even after renewal"],
        ),
    ];
    for (i, (route, failure, reason, words)) in cases.into_iter().enumerate() {
        // A double per case: a sibling request the failed read had already sent can reach the
        // double after the read returned, and must not use up the next case's failure.
        let g = GoogleDouble::start().await;
        let spec = g.spec();
        g.add_group("Engineering");
        // 401: the first is renewed once, the second is the answer.
        let times = if failure.status == 401 && route != route::TOKEN {
            2
        } else {
            1
        };
        g.fail_next(route, times, failure);
        let mut source = g.source_with(&spec, GoogleDouble::fast_options()).await;
        let e = read(&mut source)
            .await
            .expect_err(&format!("case {i} ({route}) should fail the read"));
        assert_says(&e, reason, &words);
    }
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_and_the_read_completes() {
    let c = Company::start().await;
    let mut source = c.g.source().await;
    let want = read(&mut source).await.unwrap();
    let before = c.g.request_counts();
    // Each of Google's throttling answers, on a later page of each list.
    c.g.fail_after(
        route::USERS,
        2,
        2,
        Failure::google_rate_limited("userRateLimitExceeded"),
    );
    c.g.fail_after(
        route::DELETED_USERS,
        1,
        1,
        Failure::google_rate_limited("rateLimitExceeded"),
    );
    c.g.fail_after(route::GROUPS, 1, 1, Failure::google_rate_limited("quotaExceeded"));
    c.g.fail_after(route::MEMBERS, 3, 2, Failure::google_too_many(Some("0")));
    c.g.fail_after(route::MEMBERS, 5, 1, Failure::google_unavailable());
    let got = read(&mut source).await.unwrap();
    assert_eq!(got.users, want.users);
    assert_eq!(got.groups.len(), want.groups.len());
    for g in &want.groups {
        assert_eq!(group(&got, &g.name), g, "{}", g.name);
    }
    let after = c.g.request_counts();
    let extra = |route: &str| after[route] - 2 * before[route];
    assert_eq!(
        (
            extra(route::USERS),
            extra(route::DELETED_USERS),
            extra(route::GROUPS),
            extra(route::MEMBERS)
        ),
        (2, 1, 1, 3),
        "each throttled answer was retried once"
    );
}

#[tokio::test]
async fn a_retry_after_is_waited_for() {
    let g = GoogleDouble::start().await;
    let mut source = g.source().await;
    g.fail_next(route::USERS, 1, Failure::google_too_many(Some("1")));
    let started = Instant::now();
    read(&mut source).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn throttled_past_the_retry_budget_fails_the_read() {
    for route in [route::USERS, route::DELETED_USERS, route::GROUPS, route::MEMBERS] {
        // A fresh double each time (see every_refusal_google_describes_maps_to_a_fix).
        let c = Company::start().await;
        let spec = c.g.spec();
        c.g.fail_after(
            route,
            1,
            usize::MAX,
            Failure::google_rate_limited("userRateLimitExceeded"),
        );
        let e = failed_read(&c.g, &spec).await;
        assert_says(
            &e,
            Reason::RateLimited,
            &["kept rate limiting", "6 attempts", "nothing is synced"],
        );
    }
    // A wait longer than the client may wait fails at once.
    let c = Company::start().await;
    let spec = c.g.spec();
    c.g.fail_next(route::GROUPS, 1, Failure::google_too_many(Some("3600")));
    let started = Instant::now();
    let e = failed_read(&c.g, &spec).await;
    assert_says(&e, Reason::RateLimited, &["asks to wait 3600s"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_list_that_cannot_be_read_to_its_end_fails_the_read() {
    let looping = Failure::json(
        200,
        json!({"kind": "admin#directory#users", "nextPageToken": "same-token-again"}),
    );
    let cases: Vec<(&'static str, usize, usize, Failure, Vec<&str>)> = vec![
        // A page that keeps failing.
        (
            route::USERS,
            2,
            usize::MAX,
            Failure::google(500, "Backend Error", "backendError", "INTERNAL"),
            vec!["HTTP 500", "page 3 of the users"],
        ),
        // A connection that breaks on a member page.
        (
            route::MEMBERS,
            2,
            usize::MAX,
            Failure::drop_connection(),
            vec!["cannot reach Google Workspace", "members of group"],
        ),
        // A page that is not the API's answer.
        (
            route::GROUPS,
            1,
            1,
            Failure::body(200, "text/html", "<html>proxy login</html>"),
            vec!["not with a page of the groups"],
        ),
        // A broken next link: the token is refused.
        (
            route::DELETED_USERS,
            0,
            1,
            Failure::json(200, json!({"nextPageToken": "not-a-token-of-yours"})),
            vec!["page token was refused", "page 2 of the deleted users"],
        ),
        // A page token that comes back again.
        (
            route::USERS,
            1,
            2,
            looping,
            vec!["already given", "page 3 of the users"],
        ),
    ];
    for (route, ok, times, failure, words) in cases {
        // A fresh double each time (see every_refusal_google_describes_maps_to_a_fix).
        let c = Company::start().await;
        let spec = c.g.spec();
        c.g.fail_after(route, ok, times, failure);
        let e = failed_read(&c.g, &spec).await;
        assert_says(&e, Reason::SourceUnavailable, &words);
    }
}

#[tokio::test]
async fn filters_select_users_by_email_and_groups_by_name_and_pass_the_query_on() {
    let c = Company::start().await;
    let ops = c.g.add_user(GUser::new("ops@corp.example").in_org_unit("/Ops"));
    let ops_gone =
        c.g.add_user(GUser::new("ops-old@corp.example").in_org_unit("/Ops").deleted());
    let spec = GoogleWorkspaceSource {
        user_filter: Some("exclude:staff00@corp.example | orgUnitPath='/'".into()),
        group_filter: Some("include: engineering, backend".into()),
        ..c.g.spec()
    };
    let mut source = c.g.source_with(&spec, GoogleDouble::fast_options()).await;
    let dir = read(&mut source).await.unwrap();
    let ids: HashSet<&str> = dir.users.iter().map(|u| u.external_id.as_str()).collect();
    assert!(!ids.contains(c.staff[0].as_str()), "excluded by email");
    assert!(
        !ids.contains(ops.as_str()) && !ids.contains(ops_gone.as_str()),
        "left out by the query"
    );
    assert!(ids.contains(c.staff[1].as_str()) && ids.contains(c.deleted[1].as_str()));
    let names: Vec<&str> = dir.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        sorted(names.iter().map(|s| s.to_string()).collect()),
        ["Backend", "Engineering"]
    );
    assert!(
        dir.restrict_users_to_groups,
        "a group list filter leaves out users in no synced group"
    );
    // The query went to both user listings; the groups left out were never read.
    for r in
        c.g.requests_to(route::USERS)
            .iter()
            .chain(&c.g.requests_to(route::DELETED_USERS))
    {
        assert_eq!(r.query_param("query").as_deref(), Some("orgUnitPath='/'"));
    }
    let member_paths: HashSet<String> = c.g.requests_to(route::MEMBERS).into_iter().map(|r| r.path).collect();
    assert_eq!(member_paths.len(), 2);
    assert!(
        member_paths
            .iter()
            .all(|p| p.contains(&c.engineering) || p.contains(&c.backend))
    );

    // A native group query alone: no list, so users are not restricted.
    let spec = GoogleWorkspaceSource {
        group_filter: Some("|name:'Sales'".into()),
        user_filter: None,
        ..c.g.spec()
    };
    let mut source = c.g.source_with(&spec, GoogleDouble::fast_options()).await;
    let dir = read(&mut source).await.unwrap();
    assert_eq!(dir.groups.len(), 1);
    assert_eq!(dir.groups[0].external_id, c.sales);
    assert!(!dir.restrict_users_to_groups);
    assert!(
        c.g.requests_to(route::GROUPS)
            .last()
            .unwrap()
            .query_param("query")
            .as_deref()
            == Some("name:'Sales'")
    );
}

#[tokio::test]
async fn the_domain_decides_when_set_else_the_customer_reads_every_domain() {
    let g = GoogleDouble::start().await;
    let here = g.add_user(GUser::new("here@corp.example"));
    let there = g.add_user(GUser::new("there@corp-two.example"));
    let there_group = g.add_group_with_email("Two", "two@corp-two.example");
    let ids = |dir: &Directory| -> Vec<String> { sorted(dir.users.iter().map(|u| u.external_id.clone()).collect()) };
    let with = |domain: Option<&str>, customer: Option<&str>| GoogleWorkspaceSource {
        domain: domain.map(str::to_string),
        customer: customer.map(str::to_string),
        ..g.spec()
    };

    // Domain and customer: as Directory Connector, only `domain` is sent, and it decides.
    let mut s = g
        .source_with(&with(Some(DOMAIN), Some(CUSTOMER_ID)), GoogleDouble::fast_options())
        .await;
    let dir = read(&mut s).await.unwrap();
    assert!(!ids(&dir).contains(&there) && ids(&dir).contains(&here));
    assert!(dir.groups.is_empty());
    let last = g.requests_to(route::USERS).pop().unwrap();
    assert_eq!(
        (last.query_param("domain").as_deref(), last.query_param("customer")),
        (Some(DOMAIN), None)
    );

    // Customer alone: every domain of the account.
    let mut s = g
        .source_with(&with(None, Some("my_customer")), GoogleDouble::fast_options())
        .await;
    let dir = read(&mut s).await.unwrap();
    assert!(ids(&dir).contains(&there) && ids(&dir).contains(&here));
    assert_eq!(dir.groups.len(), 1);
    assert_eq!(dir.groups[0].external_id, there_group);
    let last = g.requests_to(route::GROUPS).pop().unwrap();
    assert_eq!(
        (last.query_param("customer").as_deref(), last.query_param("domain")),
        (Some("my_customer"), None)
    );

    // The other domain alone.
    let mut s = g
        .source_with(&with(Some(OTHER_DOMAIN), None), GoogleDouble::fast_options())
        .await;
    assert_eq!(ids(&read(&mut s).await.unwrap()), vec![there.clone()]);

    // Neither is an invalid spec.
    let e = GoogleSource::connect(&with(None, Some(" ")), &g.secrets(), GoogleDouble::fast_options())
        .await
        .unwrap_err();
    assert_says(
        &e,
        Reason::InvalidSpec,
        &["spec.source.googleWorkspace.domain", "customer"],
    );
}

#[tokio::test]
async fn only_what_is_synced_is_read() {
    let c = Company::start().await;
    let mut source = c.g.source().await;
    let users_only = ReadRequest {
        users: true,
        groups: false,
        cursor: None,
    };
    let dir = source.read(&users_only).await.unwrap().directory;
    assert!(dir.groups.is_empty() && !dir.users.is_empty());
    assert!(c.g.requests_to(route::GROUPS).is_empty() && c.g.requests_to(route::MEMBERS).is_empty());
    let groups_only = ReadRequest {
        users: false,
        groups: true,
        cursor: None,
    };
    let dir = source.read(&groups_only).await.unwrap().directory;
    assert!(dir.users.is_empty() && dir.groups.len() == 5);
    // Without the user listings a CUSTOMER member stands for nobody, as in the reference.
    assert!(group(&dir, "Everyone").members.is_empty());
    assert_eq!(
        c.g.requests_to(route::USERS).len(),
        6,
        "only the first read listed users"
    );
}

#[tokio::test]
async fn member_lists_are_read_a_few_at_a_time() {
    let g = GoogleDouble::start().await;
    let alice = g.add_user(GUser::new("alice@corp.example"));
    for i in 0..16 {
        let id = g.add_group(&format!("Team {i:02}"));
        g.add_member(&id, GMember::user(&alice));
    }
    let latency = Duration::from_millis(150);
    g.set_latency(Some(latency));
    let options = ClientOptions {
        member_concurrency: 4,
        ..GoogleDouble::fast_options()
    };
    let mut source = g.source_with(&g.spec(), options).await;
    let dir = read(&mut source).await.unwrap();
    assert_eq!(dir.groups.len(), 16);
    assert!(dir.groups.iter().all(|g| g.members == [alice.clone()]));
    // The double answers each request `latency` after it arrived: requests that arrived within
    // less than that of each other were in flight together.
    let arrivals = g.member_arrivals();
    assert_eq!(arrivals.len(), 16);
    let window = latency - Duration::from_millis(30);
    let most = arrivals
        .iter()
        .map(|&t| arrivals.iter().filter(|&&u| u >= t && u < t + window).count())
        .max()
        .unwrap();
    assert!(most <= 4, "{most} member lists were in flight at once (bound 4)");
    assert!(most >= 2, "member lists were read one at a time");
}

/// Plugs a Google source with fast retries and the Bitwarden double into the engine.
struct GoogleConnector<'a> {
    google: &'a GoogleDouble,
    bitwarden: &'a BitwardenDouble,
}

#[async_trait]
impl Connector for GoogleConnector<'_> {
    async fn source(
        &self,
        spec: &DirectorySyncSpec,
        secrets: &dyn SecretStore,
    ) -> Result<Box<dyn DirectorySource>, Error> {
        let SourceSpec::GoogleWorkspace(settings) = &spec.source else {
            panic!("a Google spec")
        };
        Ok(Box::new(
            GoogleSource::connect(settings, secrets, GoogleDouble::fast_options()).await?,
        ))
    }
    async fn bitwarden(&self, _: &DirectorySyncSpec, _: &dyn SecretStore) -> Result<Box<dyn BitwardenApi>, Error> {
        Ok(Box::new(self.bitwarden.client()))
    }
}

fn sync_spec(g: &GoogleDouble, bw: &BitwardenDouble) -> DirectorySyncSpec {
    DirectorySyncSpec {
        bitwarden: bw.spec(),
        source: SourceSpec::GoogleWorkspace(g.spec()),
        sync: SyncOptions::default(),
        collections: Vec::new(),
        mode: Mode::Apply,
        suspend: false,
    }
}

fn all_secrets(g: &GoogleDouble, bw: &BitwardenDouble) -> MemorySecrets {
    let mut s = bw.secrets();
    s.insert(SECRET_NAME, SECRET_KEY, g.key_json());
    s
}

#[tokio::test]
async fn a_sync_sends_the_google_directory_and_a_failed_member_list_sends_nothing() {
    let c = Company::start().await;
    let bw = BitwardenDouble::start().await;
    let connector = GoogleConnector {
        google: &c.g,
        bitwarden: &bw,
    };
    let spec = sync_spec(&c.g, &bw);
    let secrets = all_secrets(&c.g, &bw);

    // A member list that fails past the retries: nothing is sent, no state moves.
    c.g.fail_after(
        route::MEMBERS,
        4,
        usize::MAX,
        Failure::google(500, "Backend Error", "backendError", "INTERNAL"),
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
    assert_says(&e, Reason::SourceUnavailable, &["HTTP 500", "members of group"]);
    assert!(bw.imports().is_empty(), "nothing was sent");
    assert!(bw.requests().is_empty(), "not even the organization was read");
    c.g.clear_failures();

    // Then the whole directory goes in one import.
    let outcome = engine::run(
        &spec,
        &SyncState::default(),
        &RunOptions::default(),
        &secrets,
        &connector,
    )
    .await
    .unwrap();
    assert_eq!(outcome.reason, Reason::Synced, "{}", outcome.message);
    let imports = bw.imports();
    assert_eq!(imports.len(), 1);
    let members = imports[0]["members"].as_array().unwrap();
    // 20 staff + admin + 2 disabled (sent as active without removeDisabled) + 5 deleted; the
    // user without emails is left out.
    assert_eq!(members.len(), 28);
    let deleted: Vec<&Value> = members.iter().filter(|m| m["deleted"] == true).collect();
    assert_eq!(deleted.len(), 5);
    assert!(!members.iter().any(|m| m["externalId"] == c.no_emails.as_str()));
    let everyone = imports[0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Everyone")
        .unwrap();
    assert_eq!(everyone["externalId"], c.everyone.as_str());
    assert_eq!(everyone["memberExternalIds"].as_array().unwrap().len(), c.kept().len());
    let _ = connector.google;
}

// --- dirsync test, as bwdc test prints it ------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

async fn dirsync(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(BIN)
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run dirsync");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn manifests(g: &GoogleDouble, bw: &BitwardenDouble, dir: &std::path::Path) -> PathBuf {
    let key = g.key_json();
    let yaml = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: bitwarden-org-key, namespace: identity}}
stringData:
  client_id: {client_id}
  client_secret: {client_secret}
---
apiVersion: v1
kind: Secret
metadata: {{name: {SECRET_NAME}, namespace: identity}}
stringData:
  {SECRET_KEY}: |
    {key}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {{name: corp-google, namespace: identity}}
spec:
  bitwarden:
    serverUrl: {server}
    apiKeySecretRef: {{name: bitwarden-org-key}}
  source:
    googleWorkspace:
      domain: {DOMAIN}
      adminEmail: {ADMIN}
      serviceAccountKeySecretRef: {{name: {SECRET_NAME}, key: {SECRET_KEY}}}
      apiUrl: {api}
"#,
        client_id = bw.client_id(),
        client_secret = bw.client_secret(),
        server = bw.url(),
        api = g.uri(),
    );
    let path = dir.join("google.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn test_json_is_what_bwdc_test_prints_for_a_small_company() {
    let g = GoogleDouble::start().await;
    let bw = BitwardenDouble::start().await;
    let admin = g.admin_id();
    let alice = g.add_user(GUser::new("Alice@corp.example"));
    let bob = g.add_user(GUser::new("bob@corp.example").suspended());
    let carol = g.add_user(GUser::new("carol@corp.example").archived());
    let dave = g.add_user(GUser::new("dave@corp.example").no_emails());
    let erin = g.add_user(GUser::new("erin@corp.example").deleted());
    let everyone = g.add_group("Everyone");
    let engineering = g.add_group("Engineering");
    let backend = g.add_group("Backend");
    let sales = g.add_group("Sales");
    g.add_member(&everyone, GMember::Customer);
    g.add_member(&engineering, GMember::user(&alice));
    g.add_member(&engineering, GMember::user_with_status(&bob, Some("SUSPENDED")));
    g.add_member(&engineering, GMember::group(&backend));
    g.add_member(&backend, GMember::user(&dave));
    g.add_member(
        &backend,
        GMember::External {
            email: "x@partner.example".into(),
        },
    );
    g.add_member(&sales, GMember::user(&carol));
    g.set_page_sizes(2, 2, 2);

    let dir = tempfile::tempdir().unwrap();
    let file = manifests(&g, &bw, dir.path());
    let (code, stdout, stderr) = dirsync(vec![
        "test".into(),
        "--json".into(),
        "-f".into(),
        file.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let got: Value = serde_json::from_str(&stdout).unwrap();

    // By hand, from the rules: dave has no emails (left out, but stays in Backend); bob is
    // SUSPENDED as a member (not in Engineering); Everyone (CUSTOMER) is every kept user of
    // both listings; Engineering holds Backend's users; the external member is ignored.
    let ids = |list: &[&String]| -> Value {
        let mut v: Vec<&String> = list.to_vec();
        v.sort();
        json!(v)
    };
    let u = |id: &String, email: &str| json!({"externalId": id, "displayName": email});
    let mut groups = vec![
        json!({"externalId": backend, "displayName": "Backend", "userIds": ids(&[&dave])}),
        json!({"externalId": engineering, "displayName": "Engineering", "userIds": ids(&[&alice, &dave])}),
        json!({"externalId": everyone, "displayName": "Everyone", "userIds": ids(&[&admin, &alice, &bob, &carol, &erin])}),
        json!({"externalId": sales, "displayName": "Sales", "userIds": ids(&[&carol])}),
    ];
    groups.sort_by(|a, b| a["externalId"].as_str().cmp(&b["externalId"].as_str()));
    let mut enabled = vec![u(&admin, ADMIN), u(&alice, "alice@corp.example")];
    enabled.sort_by(|a, b| a["externalId"].as_str().cmp(&b["externalId"].as_str()));
    let mut disabled = vec![u(&bob, "bob@corp.example"), u(&carol, "carol@corp.example")];
    disabled.sort_by(|a, b| a["externalId"].as_str().cmp(&b["externalId"].as_str()));
    let want = json!({
        "groups": groups,
        "enabledUsers": enabled,
        "disabledUsers": disabled,
        "deletedUsers": [u(&erin, "erin@corp.example")]
    });
    assert_eq!(got, want);
    assert!(bw.requests().is_empty(), "test sends nothing to Bitwarden");
    assert!(!stdout.contains("PRIVATE KEY") && !stderr.contains("PRIVATE KEY"));

    let (code, text, stderr) = dirsync(vec!["test".into(), "-f".into(), file.display().to_string()]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.starts_with("2 enabled, 2 disabled, 1 deleted users; 4 groups"),
        "{text}"
    );
    assert!(text.contains("left out: 1 without email"), "{text}");
}

// --- the vendor's description ------------------------------------------------------------------

#[tokio::test]
async fn requests_and_answers_use_only_what_the_discovery_document_describes() {
    let c = Company::start().await;
    let mut source = c.g.source().await;
    read(&mut source).await.unwrap();
    let Some(path) = vendor_spec(
        "google-admin-directory-v1.json",
        "Google requests and answers against the Directory API discovery document",
    ) else {
        return;
    };
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let global: HashSet<String> = doc["parameters"].as_object().unwrap().keys().cloned().collect();
    let methods = [
        (route::USERS, "users", "Users", "User", "users"),
        (route::DELETED_USERS, "users", "Users", "User", "users"),
        (route::GROUPS, "groups", "Groups", "Group", "groups"),
        (route::MEMBERS, "members", "Members", "Member", "members"),
    ];
    let schemas = &doc["schemas"];
    for (route, resource, list_schema, item_schema, list_key) in methods {
        let method = &doc["resources"][resource]["methods"]["list"];
        let template = method["path"].as_str().unwrap();
        let params = method["parameters"].as_object().unwrap();
        let requests = c.g.requests_to(route);
        assert!(!requests.is_empty());
        for r in requests {
            // The path, with {groupKey} standing for one segment.
            let path = r.path.strip_prefix('/').unwrap();
            let matches = template.split('/').count() == path.split('/').count()
                && template
                    .split('/')
                    .zip(path.split('/'))
                    .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()));
            assert!(matches, "{path} is not {template}");
            for (name, value) in crate::support::double::parse_form(r.query.as_deref().unwrap_or_default()) {
                let known = params.get(&name);
                assert!(
                    known.is_some() || global.contains(&name),
                    "{route}: parameter {name} is not described"
                );
                if name == "maxResults" {
                    let p = known.unwrap();
                    let n: i64 = value.parse().unwrap();
                    let min: i64 = p["minimum"].as_str().unwrap().parse().unwrap();
                    // groups and members say "Max allowed value is 200." in words only.
                    let max: i64 = match p["maximum"].as_str() {
                        Some(m) => m.parse().unwrap(),
                        None => {
                            assert!(p["description"].as_str().unwrap().contains("Max allowed value is 200"));
                            200
                        }
                    };
                    assert!(
                        (min..=max).contains(&n),
                        "{route}: maxResults {n} outside {min}..={max}"
                    );
                }
                if name == "fields" {
                    // nextPageToken,<list>(a,b,c): every field is in the schemas.
                    let (top, inner) = value.split_once('(').unwrap();
                    for f in top.split(',').filter(|f| !f.is_empty()) {
                        assert!(schemas[list_schema]["properties"].get(f).is_some(), "{list_schema}.{f}");
                    }
                    for f in inner.trim_end_matches(')').split(',') {
                        assert!(schemas[item_schema]["properties"].get(f).is_some(), "{item_schema}.{f}");
                    }
                }
            }
        }
        // The list key and paging element the client reads are in the list schema.
        for f in [list_key, "nextPageToken"] {
            assert!(schemas[list_schema]["properties"].get(f).is_some(), "{list_schema}.{f}");
        }
    }
    assert_eq!(
        doc["resources"]["users"]["methods"]["list"]["parameters"]["showDeleted"]["location"],
        "query"
    );

    // Every field the double serves is described (full objects, without `fields`).
    for (name, object) in c.g.sample_objects() {
        for key in object.as_object().unwrap().keys() {
            assert!(
                schemas[name]["properties"].get(key).is_some(),
                "the double serves {name}.{key}"
            );
        }
    }
    // The scopes asked for exist, and list the methods.
    let scopes = doc["auth"]["oauth2"]["scopes"].as_object().unwrap();
    for s in SCOPES {
        assert!(scopes.contains_key(s), "{s}");
    }
    let users_scopes = doc["resources"]["users"]["methods"]["list"]["scopes"]
        .as_array()
        .unwrap();
    assert!(users_scopes.contains(&json!(SCOPES[0])));
    let members_scopes = doc["resources"]["members"]["methods"]["list"]["scopes"]
        .as_array()
        .unwrap();
    assert!(members_scopes.contains(&json!(SCOPES[2])));
}

#[tokio::test]
async fn key_files_and_secrets_are_checked_before_anything_is_sent() {
    let g = GoogleDouble::start().await;
    let spec = g.spec();
    let connect = |secrets: MemorySecrets| {
        let spec = spec.clone();
        async move { GoogleSource::connect(&spec, &secrets, GoogleDouble::fast_options()).await }
    };
    let e = connect(MemorySecrets::new()).await.unwrap_err();
    assert_eq!(e.reason(), Reason::SecretNotFound);
    let mut key: Value = serde_json::from_str(&g.key_json()).unwrap();
    key["token_uri"] = json!("http://oauth2.example.net/token");
    let e = connect(MemorySecrets::new().with(SECRET_NAME, SECRET_KEY, key.to_string()))
        .await
        .unwrap_err();
    assert_says(
        &e,
        Reason::InvalidSpec,
        &[
            "serviceAccountKeySecretRef",
            "token_uri",
            "https://",
            "Secret \"google-sa\" key \"key.json\"",
        ],
    );
    let e = connect(MemorySecrets::new().with(SECRET_NAME, SECRET_KEY, "{\"type\": \"service_account\""))
        .await
        .unwrap_err();
    assert_says(&e, Reason::InvalidSpec, &["not a JSON key file"]);
    assert!(g.requests().is_empty());

    // The key file's own token_uri is where the token is asked for (here, the double's).
    let mut source = g.source().await;
    read(&mut source).await.unwrap();
    assert_eq!(g.requests_to(route::TOKEN)[0].path, "/token");
    let _: BTreeMap<String, usize> = g.request_counts();
}
