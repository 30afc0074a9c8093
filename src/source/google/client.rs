//! The Admin SDK Directory API client: the service account's token (an RS256 JWT assertion with
//! domain-wide delegation, exchanged at the key file's `token_uri`), paged lists, Google's
//! throttling signals, and errors that say what to fix. Retries, time budgets, the token cache,
//! scrubbing and metrics are [`crate::net`]'s.
//!
//! | What happened | [`Error`] |
//! |---|---|
//! | the token endpoint refuses the assertion (`unauthorized_client`, `invalid_grant`, ...) | `SourceAuthFailed`, naming the client id, scopes or admin to fix |
//! | the API answers 403 `forbidden` ("Not Authorized to access this resource/api"), or 401 twice | `SourceAuthFailed` |
//! | 403 `userRateLimitExceeded` / `rateLimitExceeded` / `quotaExceeded`, 429 or 503 past the retries | `RateLimited` |
//! | another 4xx, 5xx past the retries, a page that is not JSON, a page token seen before | `SourceUnavailable` |

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::Error;
use crate::api::checks::check_url;
use crate::net::jwt;
use crate::net::retry::{default_verdict, google_rate_limited};
use crate::net::{
    Call, FailureKind, HttpClient, HttpOptions, Reply, RetryPolicy, Scrubber, ServerRules, Side, Token, TokenCache,
    Verdict,
};
use crate::secrets::SecretValue;

/// The provider's name: the key under `spec.source` and the metrics' `provider` label.
pub const NAME: &str = "googleWorkspace";
pub const SIDE: Side = Side::Source(NAME);
pub const DEFAULT_API_URL: &str = "https://admin.googleapis.com";
/// The token endpoint when the key file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The scopes Directory Connector asks for: existing domain-wide delegation grants name exactly
/// these, and asking for one more would be refused.
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A cached access token is renewed this long before it expires.
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(300);
/// Upper bound on the pages of one list, against a server whose page tokens never end.
const MAX_PAGES: usize = 100_000;

pub const ADMIN_FIELD: &str = "spec.source.googleWorkspace.adminEmail";
pub const KEY_FIELD: &str = "spec.source.googleWorkspace.serviceAccountKeySecretRef";
const URL_FIELD: &str = "spec.source.googleWorkspace.apiUrl";
const SCOPE_FIELDS: &str = "spec.source.googleWorkspace.domain / customer";

/// Google's retry policy: exponential backoff with jitter from 1 s, at most 64 s a wait, 6
/// attempts (Google's "5 to 7 tries"), 2 minutes per call in all.
pub fn default_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        max_delay: Duration::from_secs(64),
        ..RetryPolicy::default()
    }
}

/// What counts as throttled on Google's servers: 403 with a rate-limit reason
/// (`userRateLimitExceeded`, `rateLimitExceeded`, `quotaExceeded`), 429 and 503. Every other 403
/// is an answer (a permission problem), 5xx are server errors.
#[derive(Clone, Copy, Debug, Default)]
pub struct GoogleRules;

impl ServerRules for GoogleRules {
    fn verdict(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let throttled = (status == StatusCode::FORBIDDEN && google_rate_limited(body))
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE;
        if throttled {
            Verdict::Throttled
        } else {
            default_verdict(status, headers)
        }
    }
}

/// The parts of a service account's JSON key file that dirsync uses.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    client_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
}

/// A service account, ready to sign assertions.
pub struct ServiceAccount {
    pub client_email: String,
    /// The numeric OAuth client id, which domain-wide delegation is granted to.
    pub client_id: String,
    pub key_id: Option<String>,
    pub token_uri: String,
    key: jwt::SigningKey,
    /// The PEM text, for the scrubber.
    pem: SecretValue,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("client_id", &self.client_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads a JSON key file; `source` names where it comes from (`Secret "x" key "y"`) for the
    /// messages, which never quote the file.
    pub fn from_key_file(text: &str, source: &str) -> Result<ServiceAccount, Error> {
        let bad = |problem: String| {
            Error::invalid(
                KEY_FIELD,
                format!(
                    "{source} {problem}: put the service account's JSON key file there, whole, as the Google \
                     Cloud console downloads it (IAM → Service accounts → Keys → Add key → JSON)"
                ),
            )
        };
        let file: KeyFile = serde_json::from_str(text.trim()).map_err(|e| {
            bad(format!(
                "is not a JSON key file (JSON error at line {} column {})",
                e.line(),
                e.column()
            ))
        })?;
        if let Some(kind) = file.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(bad(format!("holds a key of type {kind:?}, not \"service_account\"")));
        }
        let field = |value: Option<String>, name: &str| {
            value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(format!("has no {name}")))
        };
        let client_email = field(file.client_email, "client_email")?;
        let client_id = field(file.client_id, "client_id")?;
        let pem = field(file.private_key, "private_key")?;
        let key = jwt::SigningKey::from_rsa_pem(&pem).map_err(|m| bad(format!("has a private_key that {m}")))?;
        let token_uri = file
            .token_uri
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
        check_url(&token_uri, &["https"], &["http"]).map_err(|m| bad(format!("has a token_uri that {m}")))?;
        Ok(ServiceAccount {
            client_email,
            client_id,
            key_id: file.private_key_id.filter(|k| !k.trim().is_empty()),
            token_uri,
            key,
            pem: SecretValue::new(pem),
        })
    }

    /// The signed assertion asking for a token of `subject` (the admin) with [`SCOPES`], valid
    /// from `now` (Unix seconds) for an hour.
    pub fn assertion(&self, subject: &str, now: i64) -> Result<String, Error> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            scope: String,
            aud: &'a str,
            iat: i64,
            exp: i64,
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        let claims = Claims {
            iss: &self.client_email,
            sub: subject,
            scope: SCOPES.join(" "),
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jwt::sign(&header, &claims, &self.key).map_err(|e| {
            Error::SourceAuthFailed(format!(
                "cannot sign the service account's token request with its private key ({e}): check {KEY_FIELD}"
            ))
        })
    }
}

/// How the client behaves: retries, and how many groups' members are read at once.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    /// Member lists read at the same time (Google allows 2,400 queries a minute per user).
    pub member_concurrency: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: default_retry(),
            member_concurrency: 8,
        }
    }
}

/// One Directory API client, acting as one admin.
pub struct Client {
    http: HttpClient,
    tokens: TokenCache,
    account: ServiceAccount,
    admin_email: String,
    /// `<apiUrl>/admin/directory/v1`.
    api: reqwest::Url,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.api)
            .field("account", &self.account)
            .field("admin_email", &self.admin_email)
            .finish_non_exhaustive()
    }
}

/// A page of a list: its items go to the reader, its token to the pager.
pub trait Page: DeserializeOwned {
    fn next_page_token(&mut self) -> Option<String>;
}

impl Client {
    /// A client acting as `admin_email`; `api_url` is `https://admin.googleapis.com` or its
    /// override (`InvalidSpec` unless https, or http on a loopback host).
    pub fn new(account: ServiceAccount, admin_email: &str, api_url: &str, retry: RetryPolicy) -> Result<Client, Error> {
        let mut api = check_url(api_url, &["https"], &["http"]).map_err(|m| Error::invalid(URL_FIELD, m))?;
        api.path_segments_mut()
            .map_err(|_| Error::invalid(URL_FIELD, "must be an https:// URL"))?
            .pop_if_empty()
            .extend(["admin", "directory", "v1"]);
        let scrubber = Scrubber::new([account.pem.clone()]);
        let http = HttpClient::new(
            SIDE,
            HttpOptions {
                request_timeout: retry.budget,
                retry,
                // No CA setting for Google: a TLS problem points at apiUrl.
                ..HttpOptions::new(URL_FIELD, URL_FIELD)
            },
            scrubber.clone(),
        )?
        .with_rules(GoogleRules);
        Ok(Client {
            http,
            tokens: TokenCache::new(TOKEN_RENEW_MARGIN, scrubber),
            account,
            admin_email: admin_email.trim().to_string(),
            api,
        })
    }

    /// `<apiUrl>/admin/directory/v1/<segments>`, each segment escaped.
    pub fn url(&self, segments: &[&str]) -> String {
        let mut url = self.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url.to_string()
    }

    /// A new access token, within the deadline of the call that needs it.
    async fn fetch_token(&self, deadline: Instant) -> Result<Token, Error> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let now = jiff::Timestamp::now().as_second();
        let assertion = self.account.assertion(&self.admin_email, now)?;
        // The assertion is a credential for an hour: never let an echo of it out.
        self.http.scrubber().remember(SecretValue::new(assertion.as_str()));
        let form = [("grant_type", JWT_BEARER), ("assertion", assertion.as_str())];
        let call = Call::idempotent("token").until(deadline);
        let reply = self
            .http
            .send(call, |c| c.post(&self.account.token_uri).form(&form))
            .await?;
        if !reply.status.is_success() {
            return Err(self.http.scrub(self.token_error(&reply)));
        }
        let t: TokenResponse = reply.json_as(SIDE, "a token").map_err(|e| self.http.scrub(e))?;
        Ok(Token {
            value: SecretValue::new(t.access_token),
            lifetime: Duration::from_secs(t.expires_in.unwrap_or(3600)),
        })
    }

    /// What a refused token request means, and what to fix.
    fn token_error(&self, reply: &Reply) -> Error {
        #[derive(Deserialize, Default)]
        struct OAuthError {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }
        let body: OAuthError = serde_json::from_slice(&reply.body).unwrap_or_default();
        let a = &self.account;
        let refused = format!(
            "Google at {} refused a token for the service account {} acting as {} (HTTP {}: {}{})",
            reply.host,
            a.client_email,
            self.admin_email,
            reply.status.as_u16(),
            if body.error.is_empty() {
                "no OAuth error"
            } else {
                &body.error
            },
            if body.error_description.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", body.error_description)
            }
        );
        let description = body.error_description.to_ascii_lowercase();
        let fix = match body.error.as_str() {
            "unauthorized_client" => format!(
                "domain-wide delegation is not granted to the service account's client id {} for the scopes \
                 dirsync asks for: a super admin adds client id {} with the scopes {} in the Admin console \
                 (Security → Access and data control → API controls → Manage domain-wide delegation)",
                a.client_id,
                a.client_id,
                SCOPES.join(",")
            ),
            "invalid_grant" if description.contains("email") || description.contains("user id") => format!(
                "{ADMIN_FIELD} ({}) must be the email of an existing user of the Workspace account, an admin \
                 who can read users and groups",
                self.admin_email
            ),
            "invalid_grant" if description.contains("signature") => format!(
                "the key in {KEY_FIELD} is not (or no longer) a key of {}: create a new JSON key for the \
                 service account and put it in the Secret",
                a.client_email
            ),
            "invalid_grant" if description.contains("iat") || description.contains("exp") => {
                "this machine's clock is off: Google accepts an assertion only within an hour of its own \
                 time; synchronise the clock (NTP)"
                    .to_string()
            }
            "invalid_grant" => format!(
                "check {ADMIN_FIELD} ({}) is an existing admin user, that the key in {KEY_FIELD} is still \
                 active, and this machine's clock",
                self.admin_email
            ),
            "invalid_client" | "disabled_client" => format!(
                "the service account {} or its key was deleted or disabled: create a new JSON key and put \
                 it in the Secret named by {KEY_FIELD}",
                a.client_email
            ),
            _ => format!(
                "check the key in {KEY_FIELD}, the domain-wide delegation of client id {} and {ADMIN_FIELD}",
                a.client_id
            ),
        };
        SIDE.error(FailureKind::AuthFailed, format!("{refused}: {fix}"))
    }

    /// Reads a whole list, page by page: `take` gets each page's items as it arrives (so only one
    /// page is held at a time). A page that cannot be read, or a page token that comes back
    /// again, fails the list: a list is read to its end or not at all.
    pub async fn list<P: Page>(
        &self,
        operation: &'static str,
        what: &str,
        url: &str,
        query: &[(&str, &str)],
        mut take: impl FnMut(P),
    ) -> Result<(), Error> {
        let mut token: Option<String> = None;
        let mut seen: HashSet<String> = HashSet::new();
        for page_number in 1..=MAX_PAGES {
            let mut params: Vec<(&str, &str)> = query.to_vec();
            if let Some(t) = &token {
                params.push(("pageToken", t));
            }
            let mut page: P = self
                .get(operation, what, url, &params, page_number)
                .await
                .map_err(|e| match e {
                    Error::SourceUnavailable(_) | Error::RateLimited(_) => e.with_note(&format!(
                        "page {page_number} of {what} could not be read, so nothing is synced"
                    )),
                    other => other,
                })?;
            let next = page.next_page_token().filter(|t| !t.is_empty());
            take(page);
            match next {
                None => return Ok(()),
                Some(next) if seen.contains(&next) => {
                    return Err(SIDE.error(
                        FailureKind::Unavailable,
                        format!(
                            "Google answered page {page_number} of {what} with a page token it had already \
                             given: the list cannot be read to its end, so nothing is synced; the next sync \
                             reads it again"
                        ),
                    ));
                }
                Some(next) => {
                    seen.insert(next.clone());
                    token = Some(next);
                }
            }
        }
        Err(SIDE.error(
            FailureKind::Unavailable,
            format!("{what} did not end after {MAX_PAGES} pages: nothing is synced"),
        ))
    }

    /// One authorised GET, as JSON.
    async fn get<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        what: &str,
        url: &str,
        query: &[(&str, &str)],
        page_number: usize,
    ) -> Result<T, Error> {
        let reply = self
            .http
            .send_authorised(
                Call::idempotent(operation),
                &self.tokens,
                |deadline| self.fetch_token(deadline),
                |c, token| c.get(url).query(query).bearer_auth(token.expose()),
            )
            .await?;
        if !reply.status.is_success() {
            return Err(self.http.scrub(self.api_error(what, &reply, page_number)));
        }
        reply
            .json_as(SIDE, &format!("a page of {what}"))
            .map_err(|e| self.http.scrub(e))
    }

    /// What a refused API call means, and what to fix.
    fn api_error(&self, what: &str, reply: &Reply, page_number: usize) -> Error {
        let detail = reply.detail();
        let reasons = google_reasons(&reply.body);
        let has = |r: &str| reasons.iter().any(|x| x == r);
        let said = format!(
            "Google at {} refused {what} ({}, HTTP {}{})",
            reply.host,
            reply.request(),
            reply.status.as_u16(),
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        );
        let auth = |fix: String| SIDE.error(FailureKind::AuthFailed, format!("{said}: {fix}"));
        match reply.status {
            StatusCode::UNAUTHORIZED => auth(format!(
                "the access token of the service account {} was refused even after renewal; check the \
                 domain-wide delegation of client id {}",
                self.account.client_email, self.account.client_id
            )),
            StatusCode::FORBIDDEN if has("accessNotConfigured") || has("SERVICE_DISABLED") => auth(format!(
                "enable the Admin SDK API in the Google Cloud project of the service account {}",
                self.account.client_email
            )),
            StatusCode::FORBIDDEN if has("insufficientPermissions") => auth(format!(
                "the token lacks a scope: grant client id {} the scopes {} under domain-wide delegation",
                self.account.client_id,
                SCOPES.join(",")
            )),
            StatusCode::FORBIDDEN => auth(format!(
                "{ADMIN_FIELD} ({}) is not an admin who may read users and groups of this account, or \
                 {SCOPE_FIELDS} names an account it does not administer: use a super admin, or an admin \
                 role with the Users → Read and Groups → Read privileges",
                self.admin_email
            )),
            // Past the first page the parameters were accepted already: the page token was not.
            StatusCode::BAD_REQUEST if page_number > 1 => SIDE.error(
                FailureKind::Unavailable,
                format!("{said}: its page token was refused, so the list cannot be read to its end"),
            ),
            StatusCode::BAD_REQUEST => SIDE.error(
                FailureKind::Unavailable,
                format!("{said}: check {SCOPE_FIELDS} and the query after | in userFilter / groupFilter"),
            ),
            _ => self.http.answer_error(what, reply),
        }
    }
}

/// `error.errors[].reason` and `error.status` of a Google error body.
fn google_reasons(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let error = &value["error"];
    let mut reasons: Vec<String> = error["errors"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|e| e["reason"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // A disabled API says so in `details[].reason` (google.rpc.ErrorInfo).
    if let Some(details) = error["details"].as_array() {
        reasons.extend(details.iter().filter_map(|d| d["reason"].as_str().map(str::to_string)));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> HeaderMap {
        HeaderMap::new()
    }

    #[test]
    fn google_throttling_is_403_with_a_rate_reason_429_or_503() {
        let body = |reason: &str| {
            serde_json::json!({"error": {"code": 403, "message": "m",
                "errors": [{"domain": "usageLimits", "reason": reason, "message": "m"}]}})
            .to_string()
            .into_bytes()
        };
        let v = |status: u16, body: &[u8]| GoogleRules.verdict(StatusCode::from_u16(status).unwrap(), &headers(), body);
        for reason in ["userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded"] {
            assert_eq!(v(403, &body(reason)), Verdict::Throttled, "{reason}");
        }
        assert_eq!(v(403, &body("forbidden")), Verdict::Answer);
        assert_eq!(v(403, b"not json"), Verdict::Answer);
        assert_eq!(v(429, b""), Verdict::Throttled);
        assert_eq!(v(503, b""), Verdict::Throttled);
        assert_eq!(v(500, b""), Verdict::ServerError);
        assert_eq!(v(502, b""), Verdict::ServerError);
        assert_eq!(v(400, b""), Verdict::Answer);
        assert_eq!(v(200, b""), Verdict::Answer);
    }

    #[test]
    fn reasons_come_from_errors_and_details() {
        let body = serde_json::json!({"error": {"code": 403, "errors": [{"reason": "forbidden"}],
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED"}]}});
        assert_eq!(
            google_reasons(body.to_string().as_bytes()),
            ["forbidden", "SERVICE_DISABLED"]
        );
        assert!(google_reasons(b"<html>").is_empty());
    }

    #[test]
    fn google_retries_up_to_six_attempts_with_waits_up_to_64_seconds() {
        let plain = RetryPolicy {
            jitter: false,
            ..default_retry()
        };
        let delays: Vec<u64> = plain.delays().map(|d| d.as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16]);
        assert!(default_retry().jitter);
        assert!(default_retry().delays().all(|d| d <= Duration::from_secs(64)));
    }

    fn fixture(name: &str) -> &'static str {
        let text = match name {
            "private" => include_str!("../../../tests/support/google-keys/service-account.pem"),
            _ => include_str!("../../../tests/support/google-keys/service-account.pub.pem"),
        };
        &text[text.find("-----BEGIN").unwrap()..]
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_for_the_admin_with_the_scopes_for_an_hour() {
        let key = serde_json::json!({"type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com",
            "client_id": "123", "private_key_id": "kid-1", "private_key": fixture("private"),
            "token_uri": "https://oauth2.googleapis.com/token"});
        let account = ServiceAccount::from_key_file(&key.to_string(), "Secret \"s\" key \"k\"").unwrap();
        assert!(!format!("{account:?}").contains("PRIVATE"), "Debug shows no key");
        let jwt = account.assertion("admin@corp.example", 1_700_000_000).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!((header.alg, header.kid.as_deref()), (Algorithm::RS256, Some("kid-1")));
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_audience(&["https://oauth2.googleapis.com/token"]);
        crate::net::jwt::install();
        let private = crate::net::jwt::SigningKey::from_pem(fixture("private")).unwrap();
        let public = jsonwebtoken::DecodingKey::from_rsa_der(private.public_key());
        let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &public, &validation)
            .unwrap()
            .claims;
        assert_eq!(
            claims,
            serde_json::json!({"iss": "sa@p.iam.gserviceaccount.com", "sub": "admin@corp.example",
                "scope": SCOPES.join(" "), "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_700_000_000, "exp": 1_700_003_600})
        );
        // Without token_uri: Google's endpoint. A plain-http token_uri off loopback is refused.
        let mut key = key;
        key.as_object_mut().unwrap().remove("token_uri");
        let account = ServiceAccount::from_key_file(&key.to_string(), "s").unwrap();
        assert_eq!(account.token_uri, DEFAULT_TOKEN_URI);
        key["token_uri"] = serde_json::json!("http://oauth2.example.net/token");
        assert!(ServiceAccount::from_key_file(&key.to_string(), "s").is_err());
    }

    #[test]
    fn key_file_problems_name_the_secret_and_never_quote_it() {
        let source = "Secret \"google-sa\" key \"key.json\"";
        let cases = [
            ("not json at all", "is not a JSON key file"),
            (r#"{"type": "authorized_user"}"#, "not \"service_account\""),
            (
                r#"{"type": "service_account", "client_id": "1"}"#,
                "has no client_email",
            ),
            (
                r#"{"client_email": "a@b", "client_id": "1", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#,
                "not a usable RSA private key",
            ),
        ];
        for (text, want) in cases {
            let e = ServiceAccount::from_key_file(text, source).unwrap_err();
            let m = e.to_string();
            assert_eq!(e.reason(), crate::api::Reason::InvalidSpec);
            assert!(m.contains(want) && m.contains(source) && m.contains(KEY_FIELD), "{m}");
            assert!(!m.contains("AAAA"), "{m}");
        }
        // Google signs RS256 only: an EC key says so.
        let ec = serde_json::json!({"client_email": "a@b", "client_id": "1",
            "private_key": include_str!("../../../tests/support/jwt/ec-p256.key")});
        let m = ServiceAccount::from_key_file(&ec.to_string(), source)
            .unwrap_err()
            .to_string();
        assert!(m.contains("an RSA key is needed") && m.contains(source), "{m}");
    }
}
