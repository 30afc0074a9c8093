//! The Okta source against the Okta double: both ways to sign in, every list read to its end in
//! several pages, statuses, filters, incremental reads, rate limits (paced, 429, past the
//! budget), broken paging, the errors a user can fix, `dirsync test`'s output, and the vendor's
//! API description.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::bitwarden::BitwardenDouble;
use crate::support::okta::*;
use crate::support::secrets::MemorySecrets;
use async_trait::async_trait;
use dirsync::Error;
use dirsync::api::{DirectorySyncSpec, Mode, OktaSource, OktaUserQuery, Reason, SourceSpec, SyncOptions};
use dirsync::bitwarden::BitwardenApi;
use dirsync::engine::{self, Connector, DefaultConnector, RunOptions, SyncState};
use dirsync::net::RetryPolicy;
use dirsync::secrets::SecretStore;
use dirsync::source::okta::{self, Options};
use dirsync::source::{DirectorySource, ReadRequest, ReadResult};
use dirsync::sync::model::{Group, User};
use serde_json::{Value, json};

/// The test company: every status, a user without email, three of each list's pages at two
/// items a page.
struct Company {
    okta: OktaDouble,
    ids: BTreeMap<&'static str, String>,
    groups: BTreeMap<&'static str, String>,
}

impl Company {
    async fn start() -> Company {
        let okta = OktaDouble::start().await;
        let mut ids = BTreeMap::new();
        let people = [
            ("alice", NewUser::new("alice@corp.example")),
            ("bob", NewUser::new("bob@corp.example").department("Engineering")),
            ("carol", NewUser::new("Carol@Corp.Example").status("SUSPENDED")),
            ("dave", NewUser::new("dave@corp.example").status("DEPROVISIONED")),
            ("erin", NewUser::new("erin@corp.example").status("STAGED")),
            ("frank", NewUser::new("frank@corp.example").without_email()),
            (
                "gina",
                NewUser::new("gina@corp.example")
                    .status("LOCKED_OUT")
                    .department("Engineering"),
            ),
            ("hank", NewUser::new("hank@corp.example").status("DEPROVISIONED")),
            ("ivan", NewUser::new("ivan@corp.example").status("DEPROVISIONED")),
        ];
        for (name, user) in people {
            ids.insert(name, okta.add_user(user));
        }
        let id = |n: &str| ids[n].as_str();
        let mut groups = BTreeMap::new();
        let everyone = ["alice", "bob", "carol", "erin", "frank", "gina"].map(id);
        groups.insert("Everyone", okta.add_group("Everyone", GroupType::BuiltIn, &everyone));
        let eng = ["alice", "bob", "frank", "gina"].map(id);
        groups.insert("Engineering", okta.add_group("Engineering", GroupType::Okta, &eng));
        groups.insert(
            "Sales",
            okta.add_group("Sales", GroupType::App, &["carol", "erin"].map(id)),
        );
        okta.set_page_limit(Some(2));
        Company { okta, ids, groups }
    }

    fn id(&self, name: &str) -> String {
        self.ids[name].clone()
    }

    fn ids(&self, names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|n| self.id(n)).collect();
        v.sort();
        v
    }
}

fn fast() -> Options {
    Options {
        retry: RetryPolicy::fast(),
        max_window_wait: Duration::from_secs(10),
        ..Options::default()
    }
}

fn full() -> ReadRequest {
    ReadRequest {
        users: true,
        groups: true,
        cursor: None,
    }
}

async fn read_with(
    spec: &OktaSource,
    secrets: &MemorySecrets,
    options: Options,
    request: &ReadRequest,
) -> Result<ReadResult, Error> {
    let mut source = okta::connect(spec, secrets, options).await?;
    source.read(request).await
}

async fn read(spec: &OktaSource, secrets: &MemorySecrets) -> Result<ReadResult, Error> {
    read_with(spec, secrets, fast(), &full()).await
}

fn user(r: &ReadResult, id: &str) -> User {
    r.directory
        .users
        .iter()
        .find(|u| u.external_id == id)
        .cloned()
        .unwrap_or_else(|| panic!("user {id} not read"))
}

fn group<'a>(r: &'a ReadResult, name: &str) -> &'a Group {
    r.directory
        .groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("group {name} not read"))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Every next link the double sent on `route` was requested exactly as sent.
fn assert_followed_links_verbatim(okta: &OktaDouble, route: &str) {
    let links = okta.next_links(route);
    assert!(!links.is_empty(), "{route}: no list needed a second page");
    let requested: Vec<String> = okta
        .requests_to(route)
        .iter()
        .map(|r| format!("{}{}?{}", okta.url(), r.path, r.query.as_deref().unwrap_or_default()))
        .collect();
    for link in links {
        assert!(requested.contains(&link), "{route}: {link} was not requested as sent");
    }
}

// --- signing in and reading everything ---------------------------------------------------------

#[tokio::test]
async fn an_api_token_reads_every_list_to_its_end_in_pages() {
    let c = Company::start().await;
    let r = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap();

    // Statuses as Directory Connector maps them; DEPROVISIONED from their own list.
    let u = |n: &str| user(&r, &c.id(n));
    assert_eq!(r.directory.users.len(), 9, "every user once");
    assert_eq!(u("alice").email.as_deref(), Some("alice@corp.example"));
    assert_eq!(u("carol").email.as_deref(), Some("carol@corp.example"), "lower-cased");
    assert!(u("carol").disabled && !u("carol").deleted);
    for n in ["dave", "hank", "ivan"] {
        assert!(u(n).deleted && !u(n).disabled, "{n}");
    }
    for n in ["erin", "gina", "alice", "bob"] {
        assert!(!u(n).deleted && !u(n).disabled, "{n} is active");
    }
    assert_eq!(u("frank").email, None);

    // Groups of every type, the built-in Everyone included, with every member.
    assert_eq!(r.directory.groups.len(), 3);
    let everyone = group(&r, "Everyone");
    assert_eq!(everyone.external_id, c.groups["Everyone"]);
    assert_eq!(
        sorted(everyone.members.clone()),
        c.ids(&["alice", "bob", "carol", "erin", "frank", "gina"])
    );
    assert_eq!(
        sorted(group(&r, "Engineering").members.clone()),
        c.ids(&["alice", "bob", "frank", "gina"])
    );
    assert!(r.directory.complete);
    assert!(!r.directory.restrict_users_to_groups);

    // Several pages of every list, each followed through its next link.
    let users = c.okta.requests_to("users");
    let plain: Vec<_> = users.iter().filter(|r| r.query_param("filter").is_none()).collect();
    let deprovisioned: Vec<_> = users
        .iter()
        .filter(|r| r.query_param("filter").as_deref() == Some("status eq \"DEPROVISIONED\""))
        .collect();
    assert_eq!(plain.len(), 3, "6 users at 2 a page");
    assert_eq!(deprovisioned.len(), 2, "3 deprovisioned at 2 a page");
    assert_eq!(c.okta.requests_to("groups").len(), 2);
    assert_eq!(c.okta.requests_to("members").len(), 3 + 2 + 1);
    for route in ["users", "groups", "members"] {
        assert_followed_links_verbatim(&c.okta, route);
    }
    for r in c.okta.requests() {
        assert_eq!(r.header("authorization"), Some("SSWS <redacted>"), "{}", r.path);
        assert!(r.query_param("limit").is_some(), "{} asks for a page size", r.path);
    }
    assert_eq!(users[0].query_param("limit").as_deref(), Some("200"));
    assert_eq!(
        c.okta.requests_to("members")[0].query_param("limit").as_deref(),
        Some("1000")
    );
    // The cursor of the next incremental read.
    assert_eq!(
        r.cursor.keys().collect::<Vec<_>>(),
        ["okta.groupsUpdated", "okta.usersUpdated"]
    );
}

#[tokio::test]
async fn a_service_app_signs_a_client_assertion_and_reads_with_bearer_tokens() {
    let c = Company::start().await;
    c.okta.register_app(&["okta.users.read", "okta.groups.read"]);
    let r = read(&c.okta.app_spec(), &c.okta.secrets()).await.unwrap();
    assert_eq!(r.directory.users.len(), 9);
    assert_eq!(r.directory.groups.len(), 3);

    let tokens = c.okta.requests_to("token");
    assert_eq!(tokens.len(), 1, "one token for the whole read");
    let form = tokens[0].form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "okta.users.read okta.groups.read");
    assert_eq!(form["client_assertion_type"], ASSERTION_TYPE);
    assert!(!form.contains_key("client_secret") && !form.contains_key("client_id"));
    for r in c.okta.requests().iter().filter(|r| r.path.starts_with("/api/")) {
        assert_eq!(r.header("authorization"), Some("Bearer <redacted>"));
    }

    // PKCS#1 keys, keys without a kid and EC P-256 keys (ES256) work too.
    let secrets = MemorySecrets::new().with(APP_SECRET, "key.pem", APP_KEY_PKCS1);
    let mut spec = c.okta.app_spec();
    spec.oauth.as_mut().unwrap().key_id = None;
    c.okta
        .register_app_key(APP_KEY, None, &["okta.users.read", "okta.groups.read"]);
    read(&spec, &secrets).await.unwrap();
    let ec = new_ec_key();
    c.okta
        .register_app_key(&ec, Some("ec-1"), &["okta.users.read", "okta.groups.read"]);
    spec.oauth.as_mut().unwrap().key_id = Some("ec-1".into());
    read(&spec, &MemorySecrets::new().with(APP_SECRET, "key.pem", ec))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_once_mid_read() {
    let c = Company::start().await;
    c.okta.register_app(&["okta.users.read", "okta.groups.read"]);
    // The token expires after two member pages.
    c.okta.fail_after(
        "members",
        2,
        1,
        Failure::okta(401, "E0000011", "Invalid token provided").header(
            "www-authenticate",
            "Bearer realm=\"IdP\", error=\"invalid_token\", error_description=\"The token has expired.\"",
        ),
    );
    let r = read(&c.okta.app_spec(), &c.okta.secrets()).await.unwrap();
    assert_eq!(
        sorted(group(&r, "Everyone").members.clone()),
        c.ids(&["alice", "bob", "carol", "erin", "frank", "gina"])
    );
    assert_eq!(
        c.okta.requests_to("token").len(),
        2,
        "a second assertion, with a new jti"
    );
}

// --- errors a user can fix ---------------------------------------------------------------------

fn assert_no_secret(e: &Error, secrets: &[&str]) {
    let text = e.to_string();
    for s in secrets {
        assert!(!text.contains(s), "a secret in {text}");
    }
}

#[tokio::test]
async fn a_revoked_or_powerless_api_token_says_what_to_fix() {
    let c = Company::start().await;
    c.okta.revoke_api_token();
    let e = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::SourceAuthFailed(_)), "{e}");
    let m = e.to_string();
    assert!(m.contains("Invalid token provided"), "{m}");
    assert!(m.contains("Secret \"okta-token\" key \"token\""), "{m}");
    assert!(m.contains("Security → API → Tokens"), "{m}");
    assert_no_secret(&e, &[&c.okta.api_token()]);

    let c = Company::start().await;
    c.okta.forbid_api_token();
    let e = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::SourceAuthFailed(_)), "{e}");
    assert!(e.to_string().contains("Read-only Administrator"), "{e}");
    assert!(
        e.to_string()
            .contains("You do not have permission to perform the requested action"),
        "{e}"
    );
}

#[tokio::test]
async fn a_service_app_that_okta_refuses_says_what_to_fix() {
    let c = Company::start().await;
    let scopes = ["okta.users.read", "okta.groups.read"];
    c.okta.register_app(&scopes);

    // A private key whose public key is not registered.
    let secrets = MemorySecrets::new().with(APP_SECRET, "key.pem", OTHER_KEY);
    let e = read(&c.okta.app_spec(), &secrets).await.unwrap_err();
    assert!(matches!(e, Error::SourceAuthFailed(_)), "{e}");
    let m = e.to_string();
    assert!(
        m.contains("invalid_client") || m.contains("signature is invalid"),
        "{m}"
    );
    assert!(
        m.contains("oauth.clientId") && m.contains("Secret \"okta-app\" key \"key.pem\""),
        "{m}"
    );
    assert_no_secret(&e, &[OTHER_KEY.lines().nth(1).unwrap()]);
    assert!(c.okta.requests_to("users").is_empty(), "nothing read without a token");

    // Scopes not granted to the app.
    c.okta.register_app(&["okta.users.read"]);
    let e = read(&c.okta.app_spec(), &c.okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::SourceAuthFailed(_)), "{e}");
    assert!(e.to_string().contains("okta.groups.read"), "{e}");
    assert!(e.to_string().contains("Okta API Scopes"), "{e}");

    // A token without a scope an endpoint needs (403 insufficient_scope).
    c.okta.register_app(&scopes);
    c.okta.fail_next(
        "groups",
        1,
        Failure::okta(
            403,
            "E0000006",
            "You do not have permission to perform the requested action",
        )
        .header(
            "www-authenticate",
            "Bearer authorization_uri=\"http://x/oauth2/v1/authorize\", realm=\"IdP\", scope=\"okta.groups.read\", \
             error=\"insufficient_scope\", error_description=\"The access token provided does not contain the required \
             scopes.\", resource=\"/api/v1/groups\"",
        ),
    );
    let e = read(&c.okta.app_spec(), &c.okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::SourceAuthFailed(_)), "{e}");
    assert!(e.to_string().contains("lacks the scope okta.groups.read"), "{e}");

    // DPoP required by the app.
    c.okta.require_dpop();
    let e = read(&c.okta.app_spec(), &c.okta.secrets()).await.unwrap_err();
    assert!(
        e.to_string().contains("Require Demonstrating Proof of Possession"),
        "{e}"
    );

    // A key that cannot sign is an InvalidSpec before anything is sent.
    let before = c.okta.requests().len();
    let e = read(
        &c.okta.app_spec(),
        &MemorySecrets::new().with(APP_SECRET, "key.pem", "{\"kty\":\"RSA\"}"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason(), Reason::InvalidSpec, "{e}");
    assert!(e.to_string().contains("oauth.privateKeySecretRef"), "{e}");
    assert_eq!(c.okta.requests().len(), before);
}

#[tokio::test]
async fn a_wrong_org_url_says_to_check_it() {
    // Another server (404 on /api/v1/users).
    let bw = BitwardenDouble::start().await;
    let okta = OktaDouble::start().await;
    let spec = OktaSource {
        org_url: bw.url(),
        ..okta.token_spec()
    };
    let e = read(&spec, &okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::SourceUnavailable(_)), "{e}");
    assert!(e.to_string().contains("check spec.source.okta.orgUrl"), "{e}");

    // A server that answers with a web page.
    okta.fail_next(
        "users",
        2,
        Failure::body(200, "text/html", "<html><body>Sign in</body></html>"),
    );
    let e = read(&okta.token_spec(), &okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::SourceUnavailable(_)), "{e}");
    assert!(e.to_string().contains("check spec.source.okta.orgUrl"), "{e}");
}

// --- lists that cannot be read to their end ----------------------------------------------------

#[tokio::test]
async fn a_broken_next_link_fails_the_read() {
    for (route, how, why) in [
        ("users", BrokenLink::OtherHost, "points to another server"),
        ("members", BrokenLink::Repeat, "repeats a page already read"),
        ("groups", BrokenLink::Garbage, "is not a URL"),
    ] {
        let c = Company::start().await;
        // Users and members: from the second page served on; groups: its first page.
        c.okta.break_next_link(route, usize::from(route != "groups"), how);
        let e = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap_err();
        assert!(matches!(e, Error::SourceUnavailable(_)), "{route}: {e}");
        assert!(e.to_string().contains(why), "{route}: {e}");
        assert!(e.to_string().contains("nothing is synced"), "{e}");
        assert!(
            c.okta
                .requests()
                .iter()
                .all(|r| !r.headers.get("host").is_some_and(|h| h.starts_with("localhost"))),
            "the other host got nothing"
        );
    }
}

#[tokio::test]
async fn a_page_that_keeps_failing_fails_the_read() {
    let c = Company::start().await;
    // The second page of a member list fails on every attempt.
    c.okta.fail_after(
        "members",
        1,
        usize::MAX,
        Failure::okta(500, "E0000009", "Internal Server Error"),
    );
    let e = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::SourceUnavailable(_)), "{e}");
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    assert!(e.to_string().contains("4 attempts"), "{e}");
}

// --- rate limits -------------------------------------------------------------------------------

#[tokio::test]
async fn requests_are_paced_by_the_rate_limit_headers_and_never_run_into_429() {
    let c = Company::start().await;
    c.okta.set_page_limit(Some(1));
    // 4 requests per 2-second window and bucket; the users bucket needs 9 (6 + 3 pages).
    c.okta.set_rate_limit(4, Duration::from_secs(2));
    let started = Instant::now();
    let r = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap();
    let took = started.elapsed();
    assert_eq!(r.directory.users.len(), 9);
    assert!(c.okta.throttled().is_empty(), "429s: {:?}", c.okta.throttled());
    // 9 user pages at 4 (minus no reserve below 10 %) a window: at least two window ends.
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    assert!(took < Duration::from_secs(12), "took {took:?}");
}

#[tokio::test]
async fn a_429_waits_until_the_window_resets_then_the_read_goes_on() {
    let c = Company::start().await;
    c.okta.fail_after("members", 2, 1, Failure::okta_rate_limited(2));
    let started = Instant::now();
    let r = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap();
    assert_eq!(r.directory.groups.len(), 3);
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn throttling_past_the_retry_budget_fails_the_read_with_rate_limited() {
    // A window that ends in an hour: not waited for.
    let c = Company::start().await;
    c.okta.fail_next("groups", 1, Failure::okta_rate_limited(3600));
    let started = Instant::now();
    let e = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Throttled on every attempt.
    let c = Company::start().await;
    c.okta.fail_after("users", 1, usize::MAX, Failure::okta_rate_limited(0));
    let e = read(&c.okta.token_spec(), &c.okta.secrets()).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited(_)), "{e}");
    assert!(e.to_string().contains("kept rate limiting"), "{e}");
}

// --- filters -----------------------------------------------------------------------------------

#[tokio::test]
async fn include_and_exclude_filters_and_the_native_query() {
    let c = Company::start().await;
    // Users by email; groups by name, which leaves out users in no synced group.
    let spec = OktaSource {
        user_filter: Some("exclude: Alice@corp.example".into()),
        group_filter: Some("include:Engineering,Sales".into()),
        ..c.okta.token_spec()
    };
    let r = read(&spec, &c.okta.secrets()).await.unwrap();
    assert!(r.directory.users.iter().all(|u| u.external_id != c.id("alice")));
    assert_eq!(r.directory.users.len(), 8);
    let names: BTreeSet<&str> = r.directory.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["Engineering", "Sales"]));
    assert!(r.directory.restrict_users_to_groups);
    // Only the synced groups' members are read.
    assert_eq!(c.okta.requests_to("members").len(), 2 + 1);

    // The native user query goes to `filter` (as Directory Connector), which returns every
    // status: no separate DEPROVISIONED list.
    let c = Company::start().await;
    let spec = OktaSource {
        user_filter: Some(
            "include:dave@corp.example,alice@corp.example|status eq \"DEPROVISIONED\" or status eq \"ACTIVE\"".into(),
        ),
        group_filter: Some("|type eq \"OKTA_GROUP\"".into()),
        ..c.okta.token_spec()
    };
    let r = read(&spec, &c.okta.secrets()).await.unwrap();
    let got: BTreeSet<String> = r.directory.users.iter().map(|u| u.external_id.clone()).collect();
    assert_eq!(got, BTreeSet::from([c.id("alice"), c.id("dave")]));
    assert!(user(&r, &c.id("dave")).deleted);
    let users = c.okta.requests_to("users");
    assert!(
        users
            .iter()
            .all(|r| r.query_param("filter").as_deref() == Some("status eq \"DEPROVISIONED\" or status eq \"ACTIVE\""))
    );
    assert_eq!(r.directory.groups.len(), 1, "only OKTA_GROUP");
    assert_eq!(r.directory.groups[0].name, "Engineering");
    assert!(
        !r.directory.restrict_users_to_groups,
        "a native group query alone does not restrict users"
    );

    // A query `filter` cannot take is the setting's problem; `search` takes it.
    let c = Company::start().await;
    let mut spec = OktaSource {
        user_filter: Some("|profile.department eq \"Engineering\"".into()),
        ..c.okta.token_spec()
    };
    let e = read(&spec, &c.okta.secrets()).await.unwrap_err();
    assert_eq!(e.reason(), Reason::InvalidSpec, "{e}");
    assert!(e.to_string().contains("spec.source.okta.userFilter"), "{e}");
    assert!(e.to_string().contains("Invalid search criteria"), "{e}");
    spec.user_query_parameter = Some(OktaUserQuery::Search);
    let r = read(&spec, &c.okta.secrets()).await.unwrap();
    let got: BTreeSet<String> = r.directory.users.iter().map(|u| u.external_id.clone()).collect();
    assert_eq!(got, BTreeSet::from([c.id("bob"), c.id("gina")]));
    let last = c.okta.requests_to("users").pop().unwrap();
    assert_eq!(
        last.query_param("search").as_deref(),
        Some("profile.department eq \"Engineering\"")
    );
}

// --- incremental reads -------------------------------------------------------------------------

#[tokio::test]
async fn incremental_reads_list_changed_users_and_groups_with_membership_changes() {
    let c = Company::start().await;
    let spec = c.okta.token_spec();
    let first = read(&spec, &c.okta.secrets()).await.unwrap();
    // The changes happen after the read's overlap minute (the double's old times are 2024).
    c.okta.set_status(&c.id("bob"), "SUSPENDED");
    c.okta.set_email(&c.id("erin"), "erin.new@corp.example");
    c.okta.set_status(&c.id("alice"), "DEPROVISIONED");
    c.okta.add_member(&c.groups["Sales"], &c.id("gina")); // membership only
    let before = c.okta.requests().len();

    let request = ReadRequest {
        cursor: Some(first.cursor.clone()),
        ..full()
    };
    let r = read_with(&spec, &c.okta.secrets(), fast(), &request).await.unwrap();
    assert!(!r.directory.complete);
    let got: BTreeSet<String> = r.directory.users.iter().map(|u| u.external_id.clone()).collect();
    assert_eq!(got, BTreeSet::from([c.id("alice"), c.id("bob"), c.id("erin")]));
    assert!(user(&r, &c.id("bob")).disabled);
    assert!(
        user(&r, &c.id("alice")).deleted,
        "a newly deprovisioned user is in the changes"
    );
    assert_eq!(user(&r, &c.id("erin")).email.as_deref(), Some("erin.new@corp.example"));
    assert_eq!(r.directory.groups.len(), 1, "only the group whose members changed");
    assert_eq!(
        sorted(r.directory.groups[0].members.clone()),
        c.ids(&["carol", "erin", "gina"])
    );

    let since = first.cursor["okta.usersUpdated"].clone();
    let new: Vec<_> = c.okta.requests()[before..].to_vec();
    let users: Vec<_> = new.iter().filter(|r| r.path == "/api/v1/users").collect();
    assert!(
        users
            .iter()
            .all(|r| r.query_param("filter") == Some(format!("lastUpdated gt \"{since}\""))),
        "{users:?}"
    );
    let groups_since = first.cursor["okta.groupsUpdated"].clone();
    let groups: Vec<_> = new.iter().filter(|r| r.path == "/api/v1/groups").collect();
    assert_eq!(
        groups[0].query_param("filter"),
        Some(format!(
            "(lastUpdated gt \"{groups_since}\" or lastMembershipUpdated gt \"{groups_since}\")"
        ))
    );
    let members: Vec<_> = new
        .iter()
        .filter(|r| r.path.ends_with("/users") && r.path.contains("/groups/"))
        .collect();
    assert_eq!(members.len(), 2, "Sales only, 3 members at 2 a page");

    // A group renamed (profile change) is read again too; with no change, nothing is.
    c.okta.rename_group(&c.groups["Engineering"], "Engineers");
    let r2 = read_with(
        &spec,
        &c.okta.secrets(),
        fast(),
        &ReadRequest {
            cursor: Some(first.cursor.clone()),
            ..full()
        },
    )
    .await
    .unwrap();
    let names: BTreeSet<&str> = r2.directory.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["Engineers", "Sales"]));
}

#[tokio::test]
async fn incremental_reads_with_a_group_list_still_read_every_synced_groups_members() {
    let c = Company::start().await;
    let spec = OktaSource {
        group_filter: Some("include:Engineering".into()),
        ..c.okta.token_spec()
    };
    let first = read(&spec, &c.okta.secrets()).await.unwrap();
    c.okta.set_email(&c.id("gina"), "gina.new@corp.example");
    let r = read_with(
        &spec,
        &c.okta.secrets(),
        fast(),
        &ReadRequest {
            cursor: Some(first.cursor.clone()),
            ..full()
        },
    )
    .await
    .unwrap();
    assert!(!r.directory.complete);
    assert_eq!(r.directory.users.len(), 1);
    assert!(r.directory.restrict_users_to_groups);
    // Gina is in the unchanged Engineering group, which is read whole: she stays in scope.
    assert_eq!(r.directory.groups.len(), 1);
    assert!(r.directory.groups[0].members.contains(&c.id("gina")));
}

// --- whole syncs -------------------------------------------------------------------------------

fn sync_spec(bw: &BitwardenDouble, okta: OktaSource, mode: Mode) -> DirectorySyncSpec {
    DirectorySyncSpec {
        bitwarden: bw.spec(),
        source: SourceSpec::Okta(okta),
        sync: SyncOptions::default(),
        collections: Vec::new(),
        mode,
        suspend: false,
    }
}

fn all_secrets(bw: &BitwardenDouble, okta: &OktaDouble) -> MemorySecrets {
    let mut s = bw.secrets();
    s.insert(TOKEN_SECRET, "token", okta.api_token());
    s.insert(APP_SECRET, "key.pem", APP_KEY);
    s
}

#[tokio::test]
async fn dirsync_test_prints_what_bwdc_test_prints_for_the_same_org() {
    let c = Company::start().await;
    let bw = BitwardenDouble::start().await;
    let spec = sync_spec(&bw, c.okta.token_spec(), Mode::Apply);
    // As `dirsync test` runs it.
    let outcome = engine::run(
        &spec,
        &SyncState::default(),
        &RunOptions {
            dry_run: true,
            ..Default::default()
        },
        &all_secrets(&bw, &c.okta),
        &DefaultConnector,
    )
    .await
    .unwrap();
    assert_eq!(outcome.reason, Reason::DryRun);
    let got = serde_json::to_value(dirsync::cli::output::TestJson::new(&outcome.prepared)).unwrap();
    // As the reference prints it: users by external id, displayName = email; SUSPENDED is
    // disabled, DEPROVISIONED deleted, every other status enabled; frank (no email) is left out
    // of the users but stays in his groups; the built-in Everyone group is synced.
    let user = |n: &str, email: &str| json!({"externalId": c.id(n), "displayName": email});
    let group = |name: &str, members: &[&str]| json!({"externalId": c.groups[name], "displayName": name, "userIds": c.ids(members)});
    let want = json!({
        "groups": [
            group("Everyone", &["alice", "bob", "carol", "erin", "frank", "gina"]),
            group("Engineering", &["alice", "bob", "frank", "gina"]),
            group("Sales", &["carol", "erin"]),
        ],
        "enabledUsers": [
            user("alice", "alice@corp.example"),
            user("bob", "bob@corp.example"),
            user("erin", "erin@corp.example"),
            user("gina", "gina@corp.example"),
        ],
        "disabledUsers": [user("carol", "carol@corp.example")],
        "deletedUsers": [
            user("dave", "dave@corp.example"),
            user("hank", "hank@corp.example"),
            user("ivan", "ivan@corp.example"),
        ],
    });
    assert_eq!(got, want);
    assert!(bw.requests().is_empty(), "a dry run sends nothing to Bitwarden");
}

/// The real Okta source with fast retries, and the Bitwarden double's client.
struct FastOkta(Arc<BitwardenDouble>);

#[async_trait]
impl Connector for FastOkta {
    async fn source(
        &self,
        spec: &DirectorySyncSpec,
        secrets: &dyn SecretStore,
    ) -> Result<Box<dyn DirectorySource>, Error> {
        let SourceSpec::Okta(okta) = &spec.source else {
            panic!("an Okta spec")
        };
        Ok(Box::new(okta::connect(okta, secrets, fast()).await?))
    }
    async fn bitwarden(&self, _: &DirectorySyncSpec, _: &dyn SecretStore) -> Result<Box<dyn BitwardenApi>, Error> {
        Ok(Box::new(self.0.client()))
    }
}

#[tokio::test]
async fn a_list_that_cannot_be_read_to_its_end_sends_nothing() {
    let c = Company::start().await;
    let bw = Arc::new(BitwardenDouble::start().await);
    let spec = sync_spec(&bw, c.okta.token_spec(), Mode::Apply);
    let secrets = all_secrets(&bw, &c.okta);
    // The last page of the deprovisioned users fails for good.
    c.okta.fail_after(
        "users",
        4,
        usize::MAX,
        Failure::okta(500, "E0000009", "Internal Server Error"),
    );
    let state = SyncState::default();
    let e = engine::run(&spec, &state, &RunOptions::default(), &secrets, &FastOkta(bw.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), Reason::SourceUnavailable, "{e}");
    assert!(bw.imports().is_empty(), "nothing sent");

    // Once the list can be read, the sync sends everyone.
    c.okta.clear_failures();
    let outcome = engine::run(&spec, &state, &RunOptions::default(), &secrets, &FastOkta(bw.clone()))
        .await
        .unwrap();
    assert_eq!(outcome.reason, Reason::Synced);
    let import = &bw.imports()[0];
    assert_eq!(
        import["members"].as_array().unwrap().len(),
        8,
        "every user with an email"
    );
    assert!(outcome.state.cursor.contains_key("okta.usersUpdated"));
}

// --- the vendor's description ------------------------------------------------------------------

/// `$ref`s resolved against the document.
fn resolve<'a>(doc: &'a serde_yaml_ng::Value, v: &'a serde_yaml_ng::Value) -> &'a serde_yaml_ng::Value {
    match v.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => {
            let mut at = doc;
            for part in r.trim_start_matches("#/").split('/') {
                at = &at[part];
            }
            resolve(doc, at)
        }
        None => v,
    }
}

fn keys(v: &serde_yaml_ng::Value) -> BTreeSet<String> {
    v.as_mapping()
        .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_double_and_the_client_use_only_what_the_vendor_describes() {
    let Some(path) = crate::support::vendor::vendor_spec(
        "okta-management-minimal.yaml",
        "Okta paths, parameters, fields, errors and scopes",
    ) else {
        return;
    };
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schemas = &doc["components"]["schemas"];

    // A full and an incremental read, with every kind of query the client sends.
    let c = Company::start().await;
    c.okta.register_app(&["okta.users.read", "okta.groups.read"]);
    let first = read(&c.okta.app_spec(), &c.okta.secrets()).await.unwrap();
    let spec = OktaSource {
        user_filter: Some("|profile.department eq \"Engineering\"".into()),
        user_query_parameter: Some(OktaUserQuery::Search),
        group_filter: Some("|type eq \"OKTA_GROUP\"".into()),
        ..c.okta.app_spec()
    };
    read_with(
        &spec,
        &c.okta.secrets(),
        fast(),
        &ReadRequest {
            cursor: Some(first.cursor.clone()),
            ..full()
        },
    )
    .await
    .unwrap();

    // Paths and query parameters.
    for (route, template) in [
        ("users", "/api/v1/users"),
        ("groups", "/api/v1/groups"),
        ("members", "/api/v1/groups/{groupId}/users"),
    ] {
        let get = &doc["paths"][template]["get"];
        assert!(get.is_mapping(), "{template} GET");
        let params: BTreeSet<String> = get["parameters"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| resolve(&doc, p)["name"].as_str().unwrap().to_string())
            .collect();
        let sent: BTreeSet<String> = c
            .okta
            .requests_to(route)
            .iter()
            .flat_map(|r| crate::support::double::parse_form(r.query.as_deref().unwrap_or_default()))
            .map(|(k, _)| k)
            .collect();
        assert!(!sent.is_empty());
        assert!(sent.is_subset(&params), "{template}: {sent:?} not all in {params:?}");
        // Each answers an array of the documented type, and documents 403 and 429.
        let item = resolve(
            &doc,
            &get["responses"]["200"]["content"]["application/json"]["schema"]["items"],
        );
        let want = if route == "groups" { "Group" } else { "User" };
        assert!(std::ptr::eq(item, &schemas[want]), "{template} lists {want}");
        for status in ["403", "429"] {
            assert!(get["responses"][status].is_mapping(), "{template} {status}");
        }
        let scope = if route == "users" {
            "okta.users.read"
        } else {
            "okta.groups.read"
        };
        let security = serde_yaml_ng::from_value::<Value>(get["security"].clone())
            .unwrap()
            .to_string();
        assert!(
            security.contains("apiToken") && security.contains(scope),
            "{template}: {security}"
        );
    }

    // Fields: what the double answers is in the schemas (and so is what the client reads).
    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(format!("{}{path}", c.okta.url()))
            .header("authorization", format!("SSWS {}", c.okta.api_token()))
            .send()
    };
    let users: Vec<Value> = get("/api/v1/users?filter=status%20eq%20%22DEPROVISIONED%22")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups: Vec<Value> = get("/api/v1/groups").await.unwrap().json().await.unwrap();
    let user_fields = keys(&schemas["User"]["properties"]);
    let profile_fields = keys(&schemas["UserProfile"]["properties"]);
    for u in &users {
        for k in u.as_object().unwrap().keys() {
            assert!(user_fields.contains(k), "User.{k}");
        }
        for k in u["profile"].as_object().unwrap().keys() {
            assert!(profile_fields.contains(k), "UserProfile.{k}");
        }
    }
    let statuses: BTreeSet<String> = schemas["UserStatus"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let mapped = [
        "ACTIVE",
        "STAGED",
        "PROVISIONED",
        "RECOVERY",
        "PASSWORD_EXPIRED",
        "LOCKED_OUT",
        "SUSPENDED",
        "DEPROVISIONED",
    ];
    assert_eq!(
        statuses,
        mapped.iter().map(|s| s.to_string()).collect(),
        "every status is mapped"
    );
    let group_fields = keys(&schemas["Group"]["properties"]);
    for g in &groups {
        for k in g.as_object().unwrap().keys() {
            assert!(group_fields.contains(k), "Group.{k}");
        }
        for k in g["profile"].as_object().unwrap().keys() {
            assert!(
                keys(&schemas["OktaUserGroupProfile"]["properties"]).contains(k),
                "group profile {k}"
            );
        }
    }
    let types: Vec<&str> = schemas["GroupType"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for t in ["OKTA_GROUP", "APP_GROUP", "BUILT_IN"] {
        assert!(types.contains(&t), "{t}");
    }

    // Error bodies: the double's are the vendor's examples.
    let error_fields = keys(&schemas["Error"]["properties"]);
    let examples = &doc["components"]["examples"];
    for (example, status, trigger) in [
        ("ErrorTooManyRequests", 429u16, Failure::okta_rate_limited(1)),
        (
            "ErrorInvalidTokenProvided",
            401,
            Failure::okta(401, "E0000011", "Invalid token provided"),
        ),
        (
            "ErrorAccessDenied",
            403,
            Failure::okta(
                403,
                "E0000006",
                "You do not have permission to perform the requested action",
            ),
        ),
    ] {
        let value = &examples[example]["value"];
        let body: Value = serde_json::from_str(&trigger.body).unwrap();
        assert_eq!(trigger.status, status);
        assert_eq!(body["errorCode"].as_str(), value["errorCode"].as_str(), "{example}");
        assert_eq!(
            body["errorSummary"].as_str(),
            value["errorSummary"].as_str(),
            "{example}"
        );
        let fields: BTreeSet<String> = body.as_object().unwrap().keys().cloned().collect();
        assert!(fields.is_subset(&error_fields), "{example}: {fields:?}");
    }
    // The double's own refusals use the same codes.
    c.okta.revoke_api_token();
    let refused: Value = get("/api/v1/users").await.unwrap().json().await.unwrap();
    assert_eq!(refused["errorCode"], "E0000011");
    assert_eq!(refused["errorSummary"], "Invalid token provided");

    // Sign-in: SSWS, and the OAuth scopes at /oauth2/v1/token.
    let schemes = &doc["components"]["securitySchemes"];
    assert!(schemes["apiToken"]["description"].as_str().unwrap().contains("SSWS"));
    let flows = &schemes["oauth2"]["flows"];
    let flow = flows.as_mapping().unwrap().values().next().unwrap();
    assert_eq!(flow["tokenUrl"].as_str(), Some("/oauth2/v1/token"));
    for scope in dirsync::source::okta::client::SCOPES.split(' ') {
        assert!(flow["scopes"][scope].is_string(), "{scope}");
    }
    assert_eq!(
        dirsync::source::okta::read::USERS_PAGE.parse::<u32>().unwrap(),
        doc["paths"]["/api/v1/users"]["get"]["parameters"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| resolve(&doc, p))
            .find(|p| p["name"] == "limit")
            .unwrap()["schema"]["default"]
            .as_u64()
            .unwrap() as u32,
        "users: the default (and classic maximum) page"
    );
}
