//! The Bitwarden client against the Bitwarden double (`tests/support/bitwarden.rs`).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::bitwarden::{BitwardenDouble, Endpoint, Failure, Group, LARGE_IMPORT_MESSAGE, Member, member};
use crate::support::raw::RawServer;
use crate::support::tls::{self, TlsFront};
use dirsync::Error;
use dirsync::api::{Reason, SecretKeyRef};
use dirsync::bitwarden::client::{DEVICE_NAME, DEVICE_TYPE, device_identifier};
use dirsync::bitwarden::{
    BitwardenApi, Client, ClientOptions, ImportGroup, ImportMember, ImportRequest, RetryPolicy, Urls, connect,
};
use dirsync::net::OUTCOME_UNKNOWN;
use dirsync::secrets::SecretValue;
use serde_json::json;

const TEST_CA: &[u8] = include_bytes!("../support/test-ca.pem");

fn m(email: &str, external_id: &str) -> ImportMember<'static> {
    ImportMember {
        email: email.to_string().into(),
        external_id: external_id.to_string().into(),
        deleted: false,
    }
}

fn deleted(email: &str, external_id: &str) -> ImportMember<'static> {
    ImportMember {
        deleted: true,
        ..m(email, external_id)
    }
}

fn g(name: &str, external_id: &str, members: &[&str]) -> ImportGroup<'static> {
    ImportGroup {
        name: name.to_string().into(),
        external_id: external_id.to_string().into(),
        member_external_ids: members.iter().map(|s| s.to_string()).collect::<Vec<_>>().into(),
    }
}

fn sample_request() -> ImportRequest<'static> {
    ImportRequest {
        groups: vec![g("Engineering", "g-1", &["u-1", "u-2"]), g("Empty", "g-2", &[])],
        members: vec![
            m("alice@example.com", "u-1"),
            m("bob@example.com", "u-2"),
            deleted("carol@example.com", "u-9"),
        ],
        overwrite_existing: false,
        large_import: false,
        invite_users_after_provisioning: true,
    }
}

fn members(n: usize) -> Vec<ImportMember<'static>> {
    (0..n)
        .map(|i| m(&format!("user{i}@example.com"), &format!("u-{i}")))
        .collect()
}

#[track_caller]
fn assert_reason(result: Result<impl std::fmt::Debug, Error>, reason: Reason) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.reason(), reason, "{e}");
            e.to_string()
        }
        Ok(v) => panic!("expected {reason:?}, got Ok({v:?})"),
    }
}

// --- token ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_token_request_carries_every_form_field_and_the_token_is_cached() {
    let bw = BitwardenDouble::start().await;
    let client = bw.client();
    client.import(&sample_request()).await.unwrap();
    client.import(&sample_request()).await.unwrap();
    assert_eq!(bw.token_requests(), 1, "two imports, one token");

    let token = &bw.requests_to(Endpoint::Token)[0];
    assert!(
        token
            .header("content-type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let form = token.form();
    let expected: Vec<(&str, String)> = vec![
        ("client_id", bw.client_id()),
        ("client_secret", bw.client_secret()),
        ("deviceIdentifier", device_identifier(&bw.client_id())),
        ("deviceName", DEVICE_NAME.to_string()),
        ("deviceType", DEVICE_TYPE.to_string()),
        ("grant_type", "client_credentials".to_string()),
        ("scope", "api.organization".to_string()),
    ];
    let got: Vec<(&str, String)> = form.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    assert_eq!(got, expected);
    assert_eq!(DEVICE_TYPE, 8);

    for import in bw.requests_to(Endpoint::Import) {
        assert_eq!(import.header("authorization"), Some("Bearer <redacted>"));
        assert_eq!(import.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn a_token_close_to_expiry_is_renewed_before_use() {
    let bw = BitwardenDouble::start().await;
    bw.set_expires_in(30); // less than the 60 s renewal margin: never reused
    let client = bw.client();
    client.import(&sample_request()).await.unwrap();
    client.import(&sample_request()).await.unwrap();
    assert_eq!(bw.token_requests(), 2);
    assert_eq!(
        bw.requests_to(Endpoint::Import).len(),
        2,
        "no request with a stale token"
    );
}

#[tokio::test]
async fn a_401_renews_the_token_once_and_repeats_the_call() {
    let bw = BitwardenDouble::start().await;
    let client = bw.client();
    client.import(&sample_request()).await.unwrap();
    bw.expire_tokens();
    client.import(&sample_request()).await.unwrap();
    assert_eq!(bw.token_requests(), 2);
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 3);
    assert_eq!(bw.applied_imports().len(), 2);
}

#[tokio::test]
async fn a_second_401_after_renewal_is_bitwarden_auth_failed() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(Endpoint::Import, 2, Failure::unauthorized());
    let message = assert_reason(bw.client().import(&sample_request()).await, Reason::BitwardenAuthFailed);
    assert!(message.contains("HTTP 401") && message.contains("rotated"), "{message}");
    assert_eq!(bw.token_requests(), 2, "one renewal only");
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 2);
}

#[tokio::test]
async fn a_403_is_bitwarden_auth_failed() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(Endpoint::Members, 1, Failure::error(403, "Forbidden"));
    let message = assert_reason(bw.client().list_members().await, Reason::BitwardenAuthFailed);
    assert!(message.contains("HTTP 403"), "{message}");
}

#[tokio::test]
async fn a_wrong_secret_is_bitwarden_auth_failed_without_the_secret_in_the_message() {
    let bw = BitwardenDouble::start().await;
    let wrong = "wr0ng-s3cret-value";
    let client = Client::with_options(bw.urls(), &bw.client_id(), SecretValue::new(wrong), None, fast()).unwrap();
    let message = assert_reason(client.import(&sample_request()).await, Reason::BitwardenAuthFailed);
    assert!(
        message.contains("invalid_client") && message.contains("rotated"),
        "{message}"
    );
    assert!(!message.contains(wrong));
    assert_eq!(bw.token_requests(), 1, "an auth failure is not retried");
    assert!(bw.requests_to(Endpoint::Import).is_empty());
}

#[tokio::test]
async fn a_rotated_key_is_bitwarden_auth_failed_and_names_the_secret() {
    let bw = BitwardenDouble::start().await;
    let client = connect(&bw.spec(), &bw.secrets()).await.unwrap();
    bw.set_client_secret("the-new-secret");
    let message = assert_reason(client.import(&sample_request()).await, Reason::BitwardenAuthFailed);
    assert!(message.contains("Secret \"bitwarden-org-key\""), "{message}");
    assert!(!message.contains(&bw.client_secret()) && !message.contains("the-new-secret"));
}

#[tokio::test]
async fn other_token_refusals_are_bitwarden_auth_failed() {
    let bw = BitwardenDouble::start().await;
    let client = bw.client();
    bw.fail_next(
        Endpoint::Token,
        1,
        Failure::json(400, json!({"error": "invalid_scope"})),
    );
    let message = assert_reason(client.list_members().await, Reason::BitwardenAuthFailed);
    assert!(message.contains("invalid_scope") && message.contains("organization API key"));
    bw.fail_next(
        Endpoint::Token,
        1,
        Failure::json(400, json!({"error": "invalid_grant"})),
    );
    assert_reason(client.list_members().await, Reason::BitwardenAuthFailed);
    bw.fail_next(Endpoint::Token, 1, Failure::status(404));
    let message = assert_reason(client.list_members().await, Reason::BitwardenAuthFailed);
    assert!(
        message.contains("HTTP 404") && message.contains("identityUrl"),
        "{message}"
    );
    // 5xx on the token endpoint is retried like any other call.
    bw.fail_next(Endpoint::Token, 1, Failure::server_error());
    assert!(client.list_members().await.unwrap().is_some());
}

#[tokio::test]
async fn a_client_id_that_is_not_an_organization_key_is_refused_without_echoing_it() {
    let bw = BitwardenDouble::start().await;
    for id in [
        "user.4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0f",
        "organization.abc",
        "not-an-org-key",
    ] {
        let message = assert_reason(
            Client::new(bw.urls(), id, SecretValue::new("x"), None),
            Reason::BitwardenAuthFailed,
        );
        assert!(message.contains("organization.<uuid>"), "{message}");
        assert!(!message.contains(id), "{message}");
    }
    let secrets = bw.secrets().with("bitwarden-org-key", "client_id", "user.1234");
    let message = assert_reason(connect(&bw.spec(), &secrets).await, Reason::BitwardenAuthFailed);
    assert!(message.contains("Secret \"bitwarden-org-key\""), "{message}");
    assert_eq!(bw.requests().len(), 0, "nothing sent");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(
        Endpoint::Token,
        1,
        Failure::status(307).header("location", "https://elsewhere.example/identity/connect/token"),
    );
    let message = assert_reason(bw.client().list_members().await, Reason::BitwardenUnavailable);
    assert!(
        message.contains("elsewhere.example") && message.contains("serverUrl"),
        "{message}"
    );
    assert_eq!(bw.requests().len(), 1);
}

// --- the double is strict ------------------------------------------------------------------

#[tokio::test]
async fn the_double_refuses_what_a_real_server_refuses() {
    dirsync::init_crypto();
    let bw = BitwardenDouble::start().await;
    let http = reqwest::Client::new();
    let token_url = format!("{}/connect/token", bw.identity_url());
    let id = bw.client_id();
    let secret = bw.client_secret();
    let base = vec![
        ("grant_type", "client_credentials"),
        ("scope", "api.organization"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let device = [("deviceType", "8"), ("deviceIdentifier", "x"), ("deviceName", "t")];
    let post = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = token_url.clone();
        async move {
            let r = http.post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let owned = |pairs: &[(&'static str, &str)]| pairs.iter().map(|(k, v)| (*k, v.to_string())).collect::<Vec<_>>();
    // Without the device fields (Vaultwarden requires them).
    assert_eq!(post(owned(&base)).await, (400, json!({"error": "invalid_request"})));
    let mut full = base.clone();
    full.extend(device);
    let with = |k: &'static str, v: &'static str| -> Vec<(&'static str, String)> {
        owned(&full)
            .into_iter()
            .map(|(k2, v2)| if k2 == k { (k2, v.to_string()) } else { (k2, v2) })
            .collect()
    };
    assert_eq!(
        post(with("client_secret", "nope")).await,
        (400, json!({"error": "invalid_client"}))
    );
    assert_eq!(
        post(with("scope", "api")).await,
        (400, json!({"error": "invalid_scope"}))
    );
    assert_eq!(
        post(with("grant_type", "password")).await,
        (400, json!({"error": "unsupported_grant_type"}))
    );
    // JSON instead of a form.
    let r = http
        .post(&token_url)
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await;
    assert_eq!(r.unwrap().status(), 400);

    let (status, body) = post(owned(&full)).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap().to_string();

    let import_url = format!("{}/public/organization/import", bw.api_url());
    let import = |body: serde_json::Value, token: Option<String>| {
        let mut r = http.post(&import_url).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let valid = json!({"groups": [], "members": [], "overwriteExisting": false});
    assert_eq!(import(valid.clone(), None).await.0, 401);
    assert_eq!(import(valid.clone(), Some("made-up".into())).await.0, 401);
    assert_eq!(import(valid.clone(), Some(token.clone())).await, (200, String::new()));

    let (status, body) = import(json!({"groups": [], "members": []}), Some(token.clone())).await;
    assert_eq!(status, 422, "missing overwriteExisting");
    assert!(body.contains("overwriteExisting"), "{body}");
    let missing_member_field = json!({"groups": [], "overwriteExisting": false,
        "members": [{"email": "a@example.com", "externalId": "u-1"}]});
    let (status, body) = import(missing_member_field, Some(token.clone())).await;
    assert_eq!(status, 422);
    assert!(body.contains("members[0].deleted"), "{body}");
    let missing_group_field = json!({"members": [], "overwriteExisting": false,
        "groups": [{"name": "G", "externalId": "g-1"}]});
    let (status, body) = import(missing_group_field, Some(token.clone())).await;
    assert_eq!(status, 422);
    assert!(body.contains("groups[0].memberExternalIds"), "{body}");
    assert_eq!(
        import(json!({"members": [], "overwriteExisting": true}), Some(token))
            .await
            .0,
        422
    );
    assert_eq!(bw.applied_imports(), vec![valid]);
}

// --- import ----------------------------------------------------------------------------------

#[tokio::test]
async fn the_import_body_is_the_request_exactly_and_is_applied() {
    let bw = BitwardenDouble::start().await;
    let client = bw.client();
    let request = sample_request();
    client.import(&request).await.unwrap();
    assert_eq!(bw.imports(), vec![serde_json::to_value(&request).unwrap()]);
    assert_eq!(
        bw.imports()[0],
        json!({
            "groups": [
                {"name": "Engineering", "externalId": "g-1", "memberExternalIds": ["u-1", "u-2"]},
                {"name": "Empty", "externalId": "g-2", "memberExternalIds": []}
            ],
            "members": [
                {"email": "alice@example.com", "externalId": "u-1", "deleted": false},
                {"email": "bob@example.com", "externalId": "u-2", "deleted": false},
                {"email": "carol@example.com", "externalId": "u-9", "deleted": true}
            ],
            "overwriteExisting": false,
            "largeImport": false,
            "inviteUsersAfterProvisioning": true
        })
    );

    let listed = client.list_members().await.unwrap().unwrap();
    let mut emails: Vec<_> = listed.iter().map(|m| m.email.clone().unwrap()).collect();
    emails.sort();
    assert_eq!(emails, ["alice@example.com", "bob@example.com", "owner@example.com"]);
    let alice = listed.iter().find(|m| m.external_id.as_deref() == Some("u-1")).unwrap();
    assert_eq!((alice.type_, alice.status), (member::USER, member::INVITED));
    let groups = client.list_groups().await.unwrap().unwrap();
    let mut ids: Vec<_> = groups.iter().map(|g| g.external_id.clone().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["g-1", "g-2"]);
    assert_eq!(bw.group_member_emails("g-1"), ["alice@example.com", "bob@example.com"]);
    assert_eq!(client.api_url(), bw.api_url());
    assert_eq!(client.organization_id(), bw.organization_id());
}

#[tokio::test]
async fn the_double_applies_imports_like_the_official_server() {
    let bw = BitwardenDouble::start().await;
    bw.set_members(vec![
        Member::owner("owner@example.com"),
        Member::confirmed("boss@example.com", Some("u-boss"), member::OWNER),
        Member::admin("admin@example.com", Some("u-admin")),
        Member::user("linked@example.com", None),
        Member::user("stays@example.com", Some("u-stay")),
        Member::user("manual@example.com", None),
    ]);
    bw.set_groups(vec![Group::new("Old name", Some("g-1")), Group::new("Manual", None)]);
    let client = bw.client();
    client
        .import(&ImportRequest {
            groups: vec![g("New name", "g-1", &["u-linked", "u-new", "u-unknown"])],
            members: vec![
                deleted("", "u-boss"),
                deleted("", "u-admin"),
                m("linked@example.com", "u-linked"),
                m("new@example.com", "u-new"),
                m("manual@example.com", "u-manual"),
            ],
            overwrite_existing: false,
            large_import: false,
            invite_users_after_provisioning: false,
        })
        .await
        .unwrap();
    let ext = |email: &str| bw.member(email).and_then(|m| m.external_id);
    assert!(bw.member("boss@example.com").is_some(), "owners are never removed");
    assert!(bw.member("admin@example.com").is_none(), "admins are not protected");
    assert_eq!(
        ext("linked@example.com").as_deref(),
        Some("u-linked"),
        "linked by email"
    );
    assert_eq!(bw.member("new@example.com").unwrap().status, member::STAGED);
    assert_eq!(ext("manual@example.com").as_deref(), Some("u-manual"));
    assert_eq!(bw.group_member_emails("g-1"), ["linked@example.com", "new@example.com"]);
    assert_eq!(bw.groups().len(), 2, "groups are never deleted");
    assert_eq!(bw.groups()[0].name, "New name");

    // overwriteExisting removes every non-owner whose external id is not sent, but refuses to
    // remove new@example.com, only invited (no master password).
    let message = assert_reason(
        client
            .import(&ImportRequest {
                members: vec![m("linked@example.com", "u-linked")],
                overwrite_existing: true,
                ..Default::default()
            })
            .await,
        Reason::BitwardenRejected,
    );
    assert!(message.contains("Remove and re-add users"), "{message}");
    client
        .import(&ImportRequest {
            members: vec![m("linked@example.com", "u-linked"), m("new@example.com", "u-new")],
            overwrite_existing: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut left: Vec<_> = bw.members().into_iter().map(|m| m.email).collect();
    left.sort();
    assert_eq!(
        left,
        [
            "boss@example.com",
            "linked@example.com",
            "new@example.com",
            "owner@example.com"
        ]
    );
}

#[tokio::test]
async fn more_than_2000_without_large_import_is_rejected_with_a_hint() {
    let bw = BitwardenDouble::start().await;
    let client = bw.client();
    let mut request = ImportRequest {
        members: members(2001),
        ..Default::default()
    };
    let message = assert_reason(client.import(&request).await, Reason::BitwardenRejected);
    assert!(message.contains(LARGE_IMPORT_MESSAGE), "{message}");
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(message.contains("spec.sync.largeImport: true"), "{message}");
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 1, "a 400 is not retried");

    request.members.truncate(2000);
    request.members.push(deleted("gone@example.com", "u-gone")); // deleted ones do not count
    client.import(&request).await.unwrap();
    request.members = members(2001);
    request.large_import = true;
    client.import(&request).await.unwrap();
    assert_eq!(bw.members().len(), 2002);
}

#[tokio::test]
async fn validation_errors_surface_the_message_and_the_fields() {
    let bw = BitwardenDouble::start().await;
    let request = ImportRequest {
        members: vec![m("not-an-email", "u-1")],
        groups: vec![g(&"x".repeat(101), "g-1", &[])],
        ..Default::default()
    };
    let message = assert_reason(bw.client().import(&request).await, Reason::BitwardenRejected);
    assert!(message.contains("HTTP 400") && message.contains("The model state is invalid."));
    assert!(message.contains("Members[0].Email: The Email field is not a valid e-mail address."));
    assert!(
        message.contains("Groups[0].Name: The field Name must be a string"),
        "{message}"
    );

    bw.fail_next(
        Endpoint::Import,
        1,
        Failure::error(400, "Organization cannot use directory syncing."),
    );
    let message = assert_reason(bw.client().import(&sample_request()).await, Reason::BitwardenRejected);
    assert!(message.ends_with("(HTTP 400 Bad Request): Organization cannot use directory syncing."));
    bw.fail_next_imports(1, 404, "", &[]);
    let message = assert_reason(bw.client().import(&sample_request()).await, Reason::BitwardenRejected);
    assert!(message.contains("HTTP 404") && message.contains("apiUrl"), "{message}");
}

#[tokio::test]
async fn duplicate_emails_make_the_server_fail_with_500() {
    let bw = BitwardenDouble::start().await;
    let request = ImportRequest {
        members: vec![m("same@example.com", "u-1"), m("SAME@example.com", "u-2")],
        ..Default::default()
    };
    let message = assert_reason(bw.client().import(&request).await, Reason::BitwardenUnavailable);
    assert!(
        message.contains("HTTP 500") && message.contains("An error has occurred."),
        "{message}"
    );
    assert!(message.contains(OUTCOME_UNKNOWN), "{message}");
    assert_eq!(
        bw.imports().len(),
        1,
        "a 5xx to the import is not repeated: it may have been applied"
    );
    let request = ImportRequest {
        groups: vec![g("A", "g-1", &[]), g("B", "g-1", &[])],
        ..Default::default()
    };
    assert_reason(bw.client().import(&request).await, Reason::BitwardenUnavailable);
    assert!(bw.applied_imports().is_empty());
}

// --- retries ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_429_with_retry_after_is_waited_for_then_retried() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(Endpoint::Import, 1, Failure::rate_limited(Some("1")));
    let started = Instant::now();
    bw.client().import(&sample_request()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 2);
    assert_eq!(bw.applied_imports().len(), 1);

    // Without Retry-After: the backoff policy (milliseconds here).
    bw.fail_next(Endpoint::Members, 2, Failure::rate_limited(None));
    assert!(bw.client().list_members().await.unwrap().is_some());
}

#[tokio::test]
async fn a_429_for_ever_is_rate_limited() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(Endpoint::Import, usize::MAX, Failure::rate_limited(None));
    let message = assert_reason(bw.client().import(&sample_request()).await, Reason::RateLimited);
    assert!(
        message.contains("HTTP 429") && message.contains("4 attempts"),
        "{message}"
    );
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 4);
    bw.clear_failures();
    bw.fail_next(Endpoint::Token, usize::MAX, Failure::rate_limited(Some("0")));
    assert_reason(bw.client().import(&sample_request()).await, Reason::RateLimited);
}

#[tokio::test]
async fn a_long_retry_after_is_not_waited_for() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(Endpoint::Import, 1, Failure::rate_limited(Some("3600")));
    let started = Instant::now();
    let message = assert_reason(bw.client().import(&sample_request()).await, Reason::RateLimited);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(message.contains("3600s"), "{message}");
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 1);
}

#[tokio::test]
async fn a_500_then_success_is_retried_for_a_list_but_not_for_the_import() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(Endpoint::Members, 3, Failure::server_error());
    assert!(bw.client().list_members().await.unwrap().is_some());
    assert_eq!(bw.requests_to(Endpoint::Members).len(), 4);

    bw.fail_next(Endpoint::Import, 1, Failure::server_error());
    let message = assert_reason(
        bw.client().import(&sample_request()).await,
        Reason::BitwardenUnavailable,
    );
    assert!(
        message.contains("HTTP 500") && message.contains(OUTCOME_UNKNOWN) && message.contains("next sync"),
        "{message}"
    );
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 1);
}

#[tokio::test]
async fn a_503_with_retry_after_and_a_429_to_the_import_are_retried() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(
        Endpoint::Import,
        1,
        Failure::error(503, "Down for maintenance").header("retry-after", "0"),
    );
    bw.fail_next(Endpoint::Import, 1, Failure::rate_limited(None));
    bw.client().import(&sample_request()).await.unwrap();
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 3);
    assert_eq!(bw.applied_imports().len(), 1);
}

#[tokio::test]
async fn a_500_for_ever_is_bitwarden_unavailable_with_status_message_and_host() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(
        Endpoint::Members,
        usize::MAX,
        Failure::error(503, "Down for maintenance").header("retry-after", "0"),
    );
    let message = assert_reason(bw.client().list_members().await, Reason::BitwardenUnavailable);
    let host = bw.url().trim_start_matches("http://").to_string();
    assert!(message.contains("HTTP 503"), "{message}");
    assert!(message.contains("Down for maintenance"), "{message}");
    assert!(
        message.contains(&host) && message.contains("/api/public/members"),
        "{message}"
    );
    assert_eq!(bw.requests_to(Endpoint::Members).len(), 4);
}

#[tokio::test]
async fn a_refused_connection_is_bitwarden_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let urls = Urls::self_hosted(&format!("http://127.0.0.1:{port}"));
    let client = Client::with_options(
        urls,
        "organization.4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0f",
        SecretValue::new("secret"),
        None,
        fast(),
    )
    .unwrap();
    let message = assert_reason(client.import(&sample_request()).await, Reason::BitwardenUnavailable);
    assert!(
        message.contains("127.0.0.1") && message.contains("connection"),
        "{message}"
    );
    assert!(message.contains("4 attempts"), "{message}");
}

/// Short timeouts for the hang tests: 300 ms per attempt, 2 s per call.
fn short_timeouts() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            budget: Duration::from_secs(2),
            ..RetryPolicy::fast()
        },
        request_timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn a_hanging_import_is_sent_once_and_fails_within_the_budget() {
    let bw = BitwardenDouble::start().await;
    // Only the budget: each attempt may take all of it (the defaults, scaled down).
    let client = bw.client_with(ClientOptions {
        retry: RetryPolicy {
            budget: Duration::from_secs(1),
            ..RetryPolicy::fast()
        },
        ..ClientOptions::with_budget(Duration::from_secs(1))
    });
    bw.fail_next(Endpoint::Import, usize::MAX, Failure::hang());
    let started = Instant::now();
    let message = assert_reason(client.import(&sample_request()).await, Reason::BitwardenUnavailable);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 1, "never sent twice");
    assert!(message.contains(OUTCOME_UNKNOWN), "{message}");
    assert!(
        message.contains("did not answer POST /api/public/organization/import within"),
        "{message}"
    );
    assert!(message.contains("spec.bitwarden.timeout"), "{message}");

    // With a shorter attempt timeout, the same.
    let client = bw.client_with(short_timeouts());
    let message = assert_reason(client.import(&sample_request()).await, Reason::BitwardenUnavailable);
    assert!(message.contains("within 0.3s"), "{message}");
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 2);
}

#[tokio::test]
async fn a_timed_out_list_is_retried() {
    let bw = BitwardenDouble::start().await;
    let client = bw.client_with(short_timeouts());
    bw.fail_next(Endpoint::Members, 1, Failure::hang());
    assert!(client.list_members().await.unwrap().is_some());
    assert_eq!(bw.requests_to(Endpoint::Members).len(), 2);
    bw.fail_next(Endpoint::Members, usize::MAX, Failure::hang());
    let message = assert_reason(client.list_members().await, Reason::BitwardenUnavailable);
    assert!(
        message.contains("did not answer") && message.contains("4 attempts"),
        "{message}"
    );
}

#[tokio::test]
async fn a_hanging_token_endpoint_is_bounded_by_the_budget() {
    let bw = BitwardenDouble::start().await;
    let client = bw.client_with(ClientOptions {
        retry: RetryPolicy {
            max_attempts: 100,
            ..short_timeouts().retry
        },
        ..short_timeouts()
    });
    bw.fail_next(Endpoint::Token, usize::MAX, Failure::hang());
    let started = Instant::now();
    let message = assert_reason(client.import(&sample_request()).await, Reason::BitwardenUnavailable);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_millis(4500),
        "{took:?}"
    );
    assert!(
        message.contains("budget") && message.contains("/identity/connect/token"),
        "{message}"
    );
    assert!(bw.token_requests() >= 2, "the token request is safe to repeat");
    assert!(bw.requests_to(Endpoint::Import).is_empty());
}

#[tokio::test]
async fn an_import_answer_cut_off_mid_body_is_not_repeated() {
    let bw = BitwardenDouble::start().await;
    let raw = RawServer::cut_mid_body().await;
    let urls = Urls {
        api: format!("{}/api", raw.url()),
        identity: bw.identity_url(),
    };
    let client = Client::with_options(
        urls,
        &bw.client_id(),
        SecretValue::new(bw.client_secret()),
        None,
        fast(),
    )
    .unwrap();
    let message = assert_reason(client.import(&sample_request()).await, Reason::BitwardenUnavailable);
    assert_eq!(raw.requests(), 1, "never sent twice");
    assert!(
        message.contains(OUTCOME_UNKNOWN) && message.contains("broke off"),
        "{message}"
    );
    // A list is safe to repeat.
    let message = assert_reason(client.list_members().await, Reason::BitwardenUnavailable);
    assert!(message.contains("4 attempts"), "{message}");
    assert_eq!(raw.requests(), 5);
}

#[tokio::test]
async fn an_import_whose_connection_closes_without_an_answer_is_not_repeated() {
    let bw = BitwardenDouble::start().await;
    bw.fail_next(Endpoint::Import, usize::MAX, Failure::drop_connection());
    let message = assert_reason(
        bw.client().import(&sample_request()).await,
        Reason::BitwardenUnavailable,
    );
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 1);
    assert!(message.contains(OUTCOME_UNKNOWN), "{message}");
    bw.fail_next(Endpoint::Members, 1, Failure::drop_connection());
    assert!(bw.client().list_members().await.unwrap().is_some());
}

#[tokio::test]
async fn a_200_that_is_not_bitwardens_answer_is_not_success() {
    let bw = BitwardenDouble::start().await;
    let page = "<html><head><title>Sign in to the proxy</title></head><body>...</body></html>";
    bw.fail_next(
        Endpoint::Import,
        1,
        Failure::body(200, "text/html; charset=utf-8", page),
    );
    let message = assert_reason(
        bw.client().import(&sample_request()).await,
        Reason::BitwardenUnavailable,
    );
    assert!(
        message.contains("text/html") && message.contains("<html><head><title>Sign in to the proxy"),
        "{message}"
    );
    assert!(message.contains(OUTCOME_UNKNOWN), "{message}");
    assert_eq!(bw.requests_to(Endpoint::Import).len(), 1);
    // An empty 200 and a JSON 200 are success.
    bw.fail_next(Endpoint::Import, 1, Failure::json(200, json!({"object": "import"})));
    bw.client().import(&sample_request()).await.unwrap();
    bw.client().import(&sample_request()).await.unwrap();
    // A list answered with a page that is not a list.
    bw.fail_next(Endpoint::Members, 1, Failure::body(200, "text/html", page));
    let message = assert_reason(bw.client().list_members().await, Reason::BitwardenUnavailable);
    assert!(
        message.contains("not with a list") && message.contains("text/html"),
        "{message}"
    );
}

#[tokio::test]
async fn an_import_that_cannot_connect_is_retried() {
    let bw = BitwardenDouble::start().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let urls = Urls {
        api: format!("http://127.0.0.1:{port}/api"),
        identity: bw.identity_url(),
    };
    let client = Client::with_options(
        urls,
        &bw.client_id(),
        SecretValue::new(bw.client_secret()),
        None,
        fast(),
    )
    .unwrap();
    let message = assert_reason(client.import(&sample_request()).await, Reason::BitwardenUnavailable);
    assert!(
        message.contains("4 attempts") && message.contains("connection") && !message.contains(OUTCOME_UNKNOWN),
        "{message}"
    );
    assert_eq!(bw.token_requests(), 1);
}

// --- lists -----------------------------------------------------------------------------------

#[tokio::test]
async fn list_members_follows_continuation_tokens() {
    let bw = BitwardenDouble::start().await;
    let mut all = vec![Member::owner("owner@example.com")];
    all.extend((0..6).map(|i| Member::user(&format!("u{i}@example.com"), Some(&format!("u-{i}")))));
    bw.set_members(all.clone());
    bw.set_page_size(Some(2));
    let listed = bw.client().list_members().await.unwrap().unwrap();
    let emails: Vec<_> = listed.iter().map(|m| m.email.clone().unwrap()).collect();
    let expected: Vec<_> = all.iter().map(|m| m.email.clone()).collect();
    assert_eq!(emails, expected);
    assert_eq!(listed[0].type_, member::OWNER);
    assert_eq!(listed[1].id, all[1].id);
    let pages = bw.requests_to(Endpoint::Members);
    let tokens: Vec<_> = pages.iter().map(|r| r.query_param("continuationToken")).collect();
    assert_eq!(
        tokens,
        [
            None,
            Some("page-2".into()),
            Some("page-4".into()),
            Some("page-6".into())
        ]
    );

    bw.set_groups(
        (0..3)
            .map(|i| Group::new(&format!("G{i}"), Some(&format!("g-{i}"))))
            .collect(),
    );
    assert_eq!(bw.client().list_groups().await.unwrap().unwrap().len(), 3);
}

#[tokio::test]
async fn vaultwarden_has_no_lists_but_imports_by_email() {
    let bw = BitwardenDouble::start().await;
    bw.vaultwarden_mode();
    bw.set_members(vec![
        Member::owner("owner@example.com"),
        Member::user("old@example.com", None),
    ]);
    let client = bw.client();
    assert_eq!(client.list_members().await.unwrap(), None);
    assert_eq!(client.list_groups().await.unwrap(), None);
    let request = ImportRequest {
        members: vec![m("new@example.com", "u-1"), deleted("old@example.com", "u-old")],
        groups: vec![g("Ignored", "g-1", &["u-1"])],
        ..Default::default()
    };
    client.import(&request).await.unwrap();
    assert_eq!(bw.member("old@example.com").unwrap().status, member::REVOKED);
    assert_eq!(bw.member("new@example.com").unwrap().status, member::INVITED);
    assert!(bw.groups().is_empty());
    // No size limit.
    client
        .import(&ImportRequest {
            members: members(2500),
            ..Default::default()
        })
        .await
        .unwrap();
}

// --- connect: spec, Secrets, URLs, CA --------------------------------------------------------

#[tokio::test]
async fn connect_derives_self_hosted_urls_and_reads_the_api_key_secret() {
    let bw = BitwardenDouble::start().await;
    let mut spec = bw.spec();
    spec.server_url = Some(format!("{}/", bw.url()));
    let secrets = bw
        .secrets()
        .with("bitwarden-org-key", "client_id", format!("{}\n", bw.client_id()))
        .with(
            "bitwarden-org-key",
            "client_secret",
            format!("{}\n", bw.client_secret()),
        );
    let client = connect(&spec, &secrets).await.unwrap();
    assert_eq!(client.api_url(), bw.api_url());
    assert_eq!(client.urls().identity, bw.identity_url());
    assert_eq!(client.organization_id(), bw.organization_id());
    assert!(
        client.list_members().await.unwrap().is_some(),
        "trailing newlines are trimmed"
    );

    // apiUrl / identityUrl override the derived URLs.
    let mut spec = bw.spec();
    spec.server_url = Some("https://unused.example".into());
    spec.api_url = Some(format!("{}/", bw.api_url()));
    spec.identity_url = Some(bw.identity_url());
    let client = connect(&spec, &bw.secrets()).await.unwrap();
    assert!(client.list_members().await.unwrap().is_some());

    // Plain http is for loopback hosts only.
    let mut spec = bw.spec();
    spec.server_url = Some("http://vault.example.com".into());
    let message = assert_reason(connect(&spec, &bw.secrets()).await, Reason::InvalidSpec);
    assert!(message.contains("spec.bitwarden.serverUrl"), "{message}");
}

#[tokio::test]
async fn connect_reports_missing_secrets() {
    let bw = BitwardenDouble::start().await;
    let mut spec = bw.spec();
    spec.api_key_secret_ref.name = "missing".into();
    assert_reason(connect(&spec, &bw.secrets()).await, Reason::SecretNotFound);
    let mut spec = bw.spec();
    spec.api_key_secret_ref.client_secret_key = "nope".into();
    assert_reason(connect(&spec, &bw.secrets()).await, Reason::SecretKeyMissing);
}

#[tokio::test]
async fn a_custom_ca_is_loaded_and_an_invalid_one_is_invalid_spec() {
    let bw = BitwardenDouble::start().await;
    let mut spec = bw.spec();
    spec.ca_secret_ref = Some(SecretKeyRef {
        name: "ca".into(),
        key: "ca.crt".into(),
    });
    let pem = String::from_utf8(TEST_CA.to_vec()).unwrap();
    let secrets = bw.secrets().with("ca", "ca.crt", pem.clone());
    let client = connect(&spec, &secrets).await.unwrap();
    assert!(client.list_members().await.unwrap().is_some());
    let bundle = format!("{pem}{pem}");
    Client::new(
        bw.urls(),
        &bw.client_id(),
        SecretValue::new("s"),
        Some(bundle.as_bytes()),
    )
    .unwrap();

    for bad in [
        "",
        "not a pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let secrets = bw.secrets().with("ca", "ca.crt", bad);
        let message = assert_reason(connect(&spec, &secrets).await, Reason::InvalidSpec);
        assert!(message.contains("spec.bitwarden.caSecretRef"), "{message}");
        assert!(message.contains("Secret \"ca\" key \"ca.crt\""), "{message}");
        assert_reason(
            Client::new(bw.urls(), &bw.client_id(), SecretValue::new("s"), Some(bad.as_bytes())),
            Reason::InvalidSpec,
        );
    }
    spec.ca_secret_ref = Some(SecretKeyRef {
        name: "ca".into(),
        key: "missing".into(),
    });
    assert_reason(
        connect(&spec, &bw.secrets().with("ca", "ca.crt", pem)).await,
        Reason::SecretKeyMissing,
    );
}

// --- secrets never leak ----------------------------------------------------------------------

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

/// Every test's logs, at every level, from the first call on. (A global subscriber: scoped ones
/// miss events when tests run in parallel.)
fn capture_logs() -> LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        logs
    })
    .clone()
}

#[tokio::test]
async fn no_error_log_or_debug_output_contains_the_secret_or_a_token() {
    let logs = capture_logs();
    let bw = BitwardenDouble::start().await;
    let secret = bw.client_secret();
    let client = bw.client();
    let mut errors: Vec<Error> = Vec::new();

    client.import(&sample_request()).await.unwrap();
    client.list_members().await.unwrap();
    let token = bw.issued_tokens()[0].clone();
    // A server that echoes the credentials into its error bodies.
    let echo = format!("echo: client_secret={secret} token={token}");
    bw.fail_next(Endpoint::Import, 1, Failure::error(400, &echo));
    errors.push(client.import(&sample_request()).await.unwrap_err());
    bw.fail_next(Endpoint::Members, usize::MAX, Failure::error(500, &echo));
    errors.push(client.list_members().await.unwrap_err());
    bw.clear_failures();
    bw.fail_next(Endpoint::Import, 2, Failure::unauthorized());
    errors.push(client.import(&sample_request()).await.unwrap_err());
    client.forget_token().await;
    bw.fail_next(
        Endpoint::Token,
        1,
        Failure::json(
            400,
            json!({"error": "invalid_request",
        "error_description": echo.clone()}),
        ),
    );
    errors.push(client.import(&sample_request()).await.unwrap_err());
    bw.fail_next(Endpoint::Import, usize::MAX, Failure::rate_limited(None));
    errors.push(client.import(&sample_request()).await.unwrap_err());
    bw.clear_failures();
    bw.set_client_secret("rotated");
    client.forget_token().await;
    errors.push(client.import(&sample_request()).await.unwrap_err());

    let tokens = bw.issued_tokens();
    assert!(tokens.len() >= 3);
    let mut outputs: Vec<String> = errors.iter().flat_map(|e| [e.to_string(), format!("{e:?}")]).collect();
    assert!(
        outputs.iter().any(|o| o.contains("<redacted>")),
        "the echo was scrubbed"
    );
    outputs.push(format!("{client:?}"));
    outputs.push(String::from_utf8(logs.0.lock().unwrap().clone()).unwrap());
    assert!(
        outputs.last().unwrap().contains("bitwarden request"),
        "debug logs were captured"
    );
    for output in &outputs {
        assert!(!output.contains(&secret), "secret leaked: {output}");
        for token in &tokens {
            assert!(!output.contains(token.as_str()), "token leaked: {output}");
        }
    }
}

#[tokio::test]
async fn an_echoed_token_request_never_shows_the_client_secret() {
    for secret in ["k3y!z", "Ab+/x=Q9z&k1Zt7w", "a b+c"] {
        let bw = BitwardenDouble::start().await;
        bw.set_client_secret(secret);
        let client = bw.client();
        // The form body comes back as the error page, URL-encoded as it was sent.
        for status in [400, 500] {
            bw.fail_next(Endpoint::Token, usize::MAX, Failure::echo(status));
            let error = client.list_members().await.unwrap_err();
            bw.clear_failures();
            let message = error.to_string();
            let echoed = bw.requests_to(Endpoint::Token).last().unwrap().body_text();
            assert!(
                echoed.contains("client_secret=") && !echoed.contains(secret),
                "{echoed}"
            );
            assert!(message.contains("client_secret=<redacted>"), "{message}");
            assert!(
                message.contains("grant_type=client_credentials"),
                "the echo is shown: {message}"
            );
            assert!(!message.contains(secret), "{message}");
            let encoded = echoed
                .split("client_secret=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap();
            assert!(!message.contains(encoded), "{message}");
            assert!(!format!("{error:?}").contains(encoded));
        }
    }
}

// --- TLS ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tls_failures_name_the_certificate_problem_and_the_field_to_fix() {
    let bw = BitwardenDouble::start().await;
    let connect_to = |url: String, ca: Option<&str>| {
        Client::with_options(
            Urls::self_hosted(&url),
            &bw.client_id(),
            SecretValue::new(bw.client_secret()),
            ca.map(str::as_bytes),
            fast(),
        )
        .unwrap()
    };

    // A private CA the client does not know.
    let front = TlsFront::start(tls::LOCALHOST, &bw.url()).await;
    let message = assert_reason(
        connect_to(front.url(), None).list_members().await,
        Reason::BitwardenUnavailable,
    );
    assert!(
        message.contains("not trusted") && message.contains("spec.bitwarden.caSecretRef"),
        "{message}"
    );
    assert_eq!(bw.token_requests(), 0, "nothing got through");

    // With its CA (through the spec and the Secret), it works on both names of the certificate.
    let mut spec = bw.spec();
    spec.server_url = Some(front.url());
    spec.ca_secret_ref = Some(SecretKeyRef {
        name: "ca".into(),
        key: "ca.crt".into(),
    });
    let secrets = bw.secrets().with("ca", "ca.crt", tls::CA);
    let client = connect(&spec, &secrets).await.unwrap();
    assert!(client.list_members().await.unwrap().is_some());
    client.import(&sample_request()).await.unwrap();
    assert!(
        connect_to(front.localhost_url(), Some(tls::CA))
            .list_members()
            .await
            .is_ok()
    );

    // Expired.
    let expired = TlsFront::start(tls::EXPIRED, &bw.url()).await;
    let message = assert_reason(
        connect_to(expired.url(), Some(tls::CA)).list_members().await,
        Reason::BitwardenUnavailable,
    );
    assert!(message.contains("expired"), "{message}");

    // For another name.
    let other = TlsFront::start(tls::OTHER_NAME, &bw.url()).await;
    let message = assert_reason(
        connect_to(other.url(), Some(tls::CA)).list_members().await,
        Reason::BitwardenUnavailable,
    );
    assert!(
        message.contains("not valid for \"127.0.0.1\"") && message.contains("spec.bitwarden.serverUrl"),
        "{message}"
    );

    // Plain HTTP where TLS is expected.
    let message = assert_reason(
        connect_to(bw.url().replace("http://", "https://"), None)
            .list_members()
            .await,
        Reason::BitwardenUnavailable,
    );
    assert!(message.contains("TLS"), "{message}");
}

fn fast() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy::fast(),
        ..ClientOptions::default()
    }
}
