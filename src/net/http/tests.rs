//! The retry loop, idempotency, budget, token renewal, rules and messages against a wiremock
//! server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::json;
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::api::Reason;
use crate::net::retry::{default_verdict, google_rate_limited};

fn options() -> HttpOptions {
    HttpOptions {
        retry: RetryPolicy::fast(),
        ..HttpOptions::new("spec.x.url", "spec.x.caSecretRef")
    }
}

fn client(side: Side, options: HttpOptions) -> HttpClient {
    HttpClient::new(side, options, Scrubber::default()).unwrap()
}

async fn mount(server: &MockServer, times: Option<u64>, response: ResponseTemplate) {
    let mock = Mock::given(path("/r")).respond_with(response);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(server).await,
        None => mock.mount(server).await,
    }
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn post(server: &MockServer) -> impl Fn(&reqwest::Client) -> reqwest::RequestBuilder {
    let url = format!("{}/r?token=query-secret", server.uri());
    move |c| c.post(&url).body("{}")
}

#[track_caller]
fn reason_of(result: Result<Reply, Error>, reason: Reason) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.reason(), reason, "{e}");
            e.to_string()
        }
        Ok(r) => panic!("expected {reason:?}, got HTTP {}", r.status),
    }
}

#[tokio::test]
async fn a_non_idempotent_call_is_not_repeated_after_a_server_error() {
    let server = MockServer::start().await;
    mount(&server, None, ResponseTemplate::new(500).set_body_string("boom")).await;
    let http = client(Side::Bitwarden, options());
    let m = reason_of(
        http.send(Call::not_idempotent("import"), post(&server)).await,
        Reason::BitwardenUnavailable,
    );
    assert_eq!(requests(&server).await, 1);
    assert!(
        m.contains(OUTCOME_UNKNOWN) && m.contains("HTTP 500") && m.contains("boom"),
        "{m}"
    );
    assert!(m.contains("POST /r") && !m.contains("query-secret"), "{m}");

    // The same answer to an idempotent call is repeated.
    let m = reason_of(
        http.send(Call::idempotent("list"), post(&server)).await,
        Reason::BitwardenUnavailable,
    );
    assert_eq!(requests(&server).await, 5);
    assert!(m.contains("4 attempts") && !m.contains(OUTCOME_UNKNOWN), "{m}");
}

#[tokio::test]
async fn a_non_idempotent_call_is_repeated_when_the_server_did_not_start_it() {
    let server = MockServer::start().await;
    mount(&server, Some(1), ResponseTemplate::new(429)).await;
    mount(
        &server,
        Some(1),
        ResponseTemplate::new(503).insert_header("retry-after", "0"),
    )
    .await;
    mount(&server, None, ResponseTemplate::new(200)).await;
    let http = client(Side::Bitwarden, options());
    let reply = http.send(Call::not_idempotent("import"), post(&server)).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn a_refused_connection_is_repeated_even_for_a_non_idempotent_call() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/r");
    let http = client(Side::Source("okta"), options());
    let m = reason_of(
        http.send(Call::not_idempotent("import"), |c| c.post(&url)).await,
        Reason::SourceUnavailable,
    );
    assert!(
        m.contains("4 attempts") && m.contains("connection") && m.contains("spec.x.url"),
        "{m}"
    );
    assert!(m.starts_with("cannot reach Okta at 127.0.0.1:"), "{m}");
}

#[tokio::test]
async fn a_timeout_ends_a_non_idempotent_call_at_once_and_is_repeated_for_an_idempotent_one() {
    let server = MockServer::start().await;
    mount(
        &server,
        Some(1),
        ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
    )
    .await;
    mount(&server, None, ResponseTemplate::new(200)).await;
    let http = client(
        Side::Bitwarden,
        HttpOptions {
            request_timeout: Duration::from_millis(300),
            timeout_field: Some("spec.x.timeout".into()),
            ..options()
        },
    );
    let started = Instant::now();
    let m = reason_of(
        http.send(Call::not_idempotent("import"), post(&server)).await,
        Reason::BitwardenUnavailable,
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(requests(&server).await, 1, "sent once");
    assert!(
        m.contains(OUTCOME_UNKNOWN) && m.contains("0.3s") && m.contains("spec.x.timeout"),
        "{m}"
    );

    mount(
        &server,
        Some(1),
        ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
    )
    .await;
    let reply = http.send(Call::idempotent("list"), post(&server)).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_hang_ends_within_the_time_budget() {
    let server = MockServer::start().await;
    mount(
        &server,
        None,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(30)),
    )
    .await;
    let http = client(
        Side::Bitwarden,
        HttpOptions {
            retry: RetryPolicy {
                max_attempts: 100,
                budget: Duration::from_secs(1),
                ..RetryPolicy::fast()
            },
            request_timeout: Duration::from_millis(400),
            timeout_field: Some("spec.x.timeout".into()),
            ..options()
        },
    );
    let started = Instant::now();
    let m = reason_of(
        http.send(Call::idempotent("list"), post(&server)).await,
        Reason::BitwardenUnavailable,
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        m.contains("budget") && m.contains("spec.x.timeout") && m.contains("did not answer"),
        "{m}"
    );
    let n = requests(&server).await;
    assert!((2..=3).contains(&n), "{n} attempts");

    // A deadline shared with an earlier part of the call.
    let m = reason_of(
        http.send(Call::idempotent("list").until(Instant::now()), post(&server))
            .await,
        Reason::BitwardenUnavailable,
    );
    assert!(m.contains("no time was left"), "{m}");
}

#[tokio::test]
async fn a_server_wait_longer_than_the_budget_is_not_slept() {
    let server = MockServer::start().await;
    mount(
        &server,
        None,
        ResponseTemplate::new(429).insert_header("retry-after", "5"),
    )
    .await;
    let http = client(
        Side::Source("entraId"),
        HttpOptions {
            retry: RetryPolicy {
                budget: Duration::from_secs(2),
                ..RetryPolicy::fast()
            },
            ..options()
        },
    );
    let started = Instant::now();
    let m = reason_of(
        http.send(Call::idempotent("list"), post(&server)).await,
        Reason::RateLimited,
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(m.contains("asks to wait 5s") && m.contains("Microsoft Graph"), "{m}");
    assert_eq!(requests(&server).await, 1);

    // Within the budget it is waited for.
    server.reset().await;
    mount(
        &server,
        Some(1),
        ResponseTemplate::new(429).insert_header("retry-after", "1"),
    )
    .await;
    mount(&server, None, ResponseTemplate::new(200)).await;
    let started = Instant::now();
    http.send(Call::idempotent("list"), post(&server)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn throttling_that_never_ends_is_rate_limited() {
    let server = MockServer::start().await;
    mount(&server, None, ResponseTemplate::new(429)).await;
    let http = client(Side::Bitwarden, options());
    let m = reason_of(
        http.send(Call::not_idempotent("import"), post(&server)).await,
        Reason::RateLimited,
    );
    assert!(m.contains("HTTP 429, 4 attempts"), "{m}");
    assert_eq!(requests(&server).await, 4);
}

#[tokio::test]
async fn okta_reset_headers_decide_the_wait() {
    let server = MockServer::start().await;
    let reset = (jiff::Timestamp::now().as_second() + 1).to_string();
    mount(
        &server,
        Some(1),
        ResponseTemplate::new(429).insert_header("x-rate-limit-reset", reset.as_str()),
    )
    .await;
    mount(&server, None, ResponseTemplate::new(200)).await;
    let http = client(Side::Source("okta"), options());
    let started = Instant::now();
    http.send(Call::idempotent("list_users"), post(&server)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200), "waited for the reset");
}

/// Google's 403 rate limits, as the Google source will declare them.
struct Google;
impl ServerRules for Google {
    fn verdict(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        if status == StatusCode::FORBIDDEN && google_rate_limited(body) {
            return Verdict::Throttled;
        }
        default_verdict(status, headers)
    }
}

#[tokio::test]
async fn server_rules_decide_what_is_throttled() {
    let server = MockServer::start().await;
    let limited = json!({"error": {"code": 403, "message": "Rate Limit Exceeded",
        "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "m"}]}});
    mount(&server, Some(2), ResponseTemplate::new(403).set_body_json(&limited)).await;
    mount(&server, None, ResponseTemplate::new(200)).await;
    let http = client(Side::Source("googleWorkspace"), options()).with_rules(Google);
    let reply = http.send(Call::idempotent("list_users"), post(&server)).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(requests(&server).await, 3);
    let metrics = crate::metrics::render();
    assert!(
        metrics.contains(
            r#"dirsync_provider_requests_total{provider="googleWorkspace",operation="list_users",outcome="throttled"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"dirsync_provider_requests_total{provider="googleWorkspace",operation="list_users",outcome="success"} 1"#
        ),
        "{metrics}"
    );

    // Another 403 is the answer.
    let forbidden = json!({"error": {"code": 403, "message": "Not Authorized to access this resource/api",
        "errors": [{"reason": "forbidden"}]}});
    server.reset().await;
    mount(&server, None, ResponseTemplate::new(403).set_body_json(&forbidden)).await;
    let reply = http.send(Call::idempotent("list_users"), post(&server)).await.unwrap();
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let e = http.answer_error("listing the users", &reply);
    assert_eq!(e.reason(), Reason::SourceAuthFailed);
    assert!(
        e.to_string().contains("Not Authorized") && e.to_string().contains("forbidden"),
        "{e}"
    );
}

/// Pauses one second after every answer.
struct Slow;
impl ServerRules for Slow {
    fn pace(&self, _headers: &HeaderMap) -> Option<Duration> {
        Some(Duration::from_millis(300))
    }
}

#[tokio::test]
async fn pacing_delays_the_next_request() {
    let server = MockServer::start().await;
    mount(&server, None, ResponseTemplate::new(200)).await;
    let http = client(Side::Source("okta"), options()).with_rules(Slow);
    let started = Instant::now();
    http.send(Call::idempotent("list"), post(&server)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
    http.send(Call::idempotent("list"), post(&server)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    // A pause past the deadline is not waited for.
    let m = reason_of(
        http.send(
            Call::idempotent("list").until(Instant::now() + Duration::from_millis(100)),
            post(&server),
        )
        .await,
        Reason::RateLimited,
    );
    assert!(m.contains("rate limit"), "{m}");
}

#[tokio::test]
async fn a_401_renews_the_token_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::header("authorization", "Bearer token-2"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let http = client(Side::Source("oneLogin"), options());
    let tokens = TokenCache::new(Duration::from_secs(60), http.scrubber().clone());
    let fetched = AtomicUsize::new(0);
    let fetch = |_deadline: Instant| {
        let n = fetched.fetch_add(1, Ordering::SeqCst) + 1;
        std::future::ready(Ok(Token {
            value: SecretValue::new(format!("token-{n}")),
            lifetime: Duration::from_secs(3600),
        }))
    };
    let url = format!("{}/users", server.uri());
    let get = |c: &reqwest::Client, t: &SecretValue| c.get(&url).bearer_auth(t.expose());
    let reply = http
        .send_authorised(Call::idempotent("list_users"), &tokens, fetch, get)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(fetched.load(Ordering::SeqCst), 2);

    // Refused again after the renewal: the 401 is the answer.
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string("bad token token-3"))
        .mount(&server)
        .await;
    let reply = http
        .send_authorised(Call::idempotent("list_users"), &tokens, fetch, get)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(requests(&server).await, 2, "one renewal");
    let e = http.answer_error("listing the users", &reply);
    assert_eq!(e.reason(), Reason::SourceAuthFailed);
    let m = http.scrub(e).to_string();
    assert!(m.contains("bad token <redacted>") && !m.contains("token-3"), "{m}");
    assert_eq!(fetched.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn redirects_are_returned_not_followed_and_secrets_are_scrubbed() {
    let server = MockServer::start().await;
    mount(
        &server,
        None,
        ResponseTemplate::new(307).insert_header("location", "https://elsewhere.example/r?code=1"),
    )
    .await;
    let http = client(Side::Bitwarden, options());
    let reply = http.send(Call::idempotent("token"), post(&server)).await.unwrap();
    assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(requests(&server).await, 1);
    let m = http.redirect_error(&reply).to_string();
    assert!(
        m.contains("\"https://elsewhere.example/r\"") && m.contains("spec.x.url"),
        "{m}"
    );

    let scrubber = Scrubber::new([SecretValue::new("Ab+/x=Q9z&k1Zt7w")]);
    let http = HttpClient::new(Side::Bitwarden, options(), scrubber).unwrap();
    server.reset().await;
    mount(
        &server,
        None,
        ResponseTemplate::new(500).set_body_string("echo client_secret=Ab%2B%2Fx%3DQ9z%26k1Zt7w"),
    )
    .await;
    let m = reason_of(
        http.send(Call::idempotent("token"), post(&server)).await,
        Reason::BitwardenUnavailable,
    );
    assert!(m.contains("client_secret=<redacted>"), "{m}");
}

#[tokio::test]
async fn answers_that_are_not_json_are_described() {
    let server = MockServer::start().await;
    mount(
        &server,
        None,
        ResponseTemplate::new(200).set_body_raw("<html><title>Proxy login</title></html>", "text/html"),
    )
    .await;
    let http = client(Side::Source("okta"), options());
    let reply = http.send(Call::idempotent("list"), post(&server)).await.unwrap();
    assert!(!reply.is_json() && !reply.body_is_blank());
    let e = reply
        .json_as::<serde_json::Value>(Side::Source("okta"), "a page of users")
        .unwrap_err();
    assert_eq!(e.reason(), Reason::SourceUnavailable);
    let m = e.to_string();
    assert!(
        m.contains("content type \"text/html\"") && m.contains("<html><title>Proxy login"),
        "{m}"
    );
}

#[test]
fn error_bodies_are_summarised_for_every_server() {
    let cases: [(&[u8], &str); 13] = [
        (
            br#"{"object":"error","message":"The model state is invalid.",
            "errors":{"Members[0].Email":["The Email field is not a valid e-mail address."],
                      "Groups[0].Name":["The field Name must be a string with a maximum length of 100."]}}"#,
            "The model state is invalid. (Groups[0].Name: The field Name must be a string with a maximum \
             length of 100.; Members[0].Email: The Email field is not a valid e-mail address.)",
        ),
        (
            br#"{"object":"error","message":"Organization cannot use groups.","errors":null}"#,
            "Organization cannot use groups.",
        ),
        (br#"{"error":"invalid_client","error_description":"bad"}"#, "bad"),
        (br#"{"error":"invalid_client"}"#, "invalid_client"),
        (
            br#"{"error":{"code":422,"reason":"Unprocessable Entity","description":"missing field `overwriteExisting`"}}"#,
            "missing field `overwriteExisting`",
        ),
        (
            br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{}}}"#,
            "Authorization_RequestDenied: Insufficient privileges to complete the operation.",
        ),
        (
            br#"{"error":{"code":403,"message":"Quota exceeded.","errors":[{"domain":"usageLimits","reason":"quotaExceeded","message":"Quota exceeded."}],"status":"PERMISSION_DENIED"}}"#,
            "Quota exceeded. (reason quotaExceeded)",
        ),
        (
            br#"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.","errorCauses":[]}"#,
            "API call exceeded rate limit due to too many requests.",
        ),
        (
            br#"{"errorCode":"E0000001","errorSummary":"Api validation failed: filter","errorCauses":[{"errorSummary":"Invalid filter"}]}"#,
            "Api validation failed: filter (Invalid filter)",
        ),
        (
            br#"{"status":{"error":true,"code":401,"type":"Unauthorized","message":"Authentication Failure"}}"#,
            "Authentication Failure",
        ),
        (b"", ""),
        (b"<html><body>502</body></html>", ""),
        (b"Bad  Gateway\n", "Bad Gateway"),
    ];
    for (body, expected) in cases {
        assert_eq!(describe_error_body(body), expected, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn hosts_of_urls() {
    assert_eq!(
        host_of("https://api.bitwarden.com/public/members?x=1"),
        "api.bitwarden.com"
    );
    assert_eq!(host_of("http://127.0.0.1:8080/api"), "127.0.0.1:8080");
    assert_eq!(host_of("not a url"), "not a url");
}
