//! The Okta Management API client: authentication (an API token, or a service app's access
//! token from a signed client assertion), lists read to their end through `Link: rel="next"`,
//! rate limits per endpoint bucket ([`super::limits`]), and errors that say what to fix.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, DATE, HeaderMap, WWW_AUTHENTICATE};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::assertion::client_assertion;
use super::limits::{Bucket, Limits, Wait};
use crate::Error;
use crate::net::jwt::SigningKey;
use crate::net::retry::{human, retry_time};
use crate::net::{Call, FailureKind, HttpClient, Reply, Side, Token, TokenCache};
use crate::secrets::SecretValue;

pub const SIDE: Side = Side::Source("okta");
/// The scopes a service app's token needs.
pub const SCOPES: &str = "okta.users.read okta.groups.read";
const ORG_URL_FIELD: &str = "spec.source.okta.orgUrl";

/// How the client proves who it is.
pub enum Auth {
    /// `Authorization: SSWS <token>`; `source` names the Secret key, for messages.
    ApiToken { token: SecretValue, source: String },
    /// A service app: access tokens from `<orgUrl>/oauth2/v1/token`.
    ServiceApp {
        client_id: String,
        key: Box<SigningKey>,
        key_id: Option<String>,
        /// Names the Secret key of the private key, for messages.
        source: String,
        tokens: TokenCache,
    },
}

/// Okta at one org URL.
pub struct Client {
    pub http: HttpClient,
    /// The org URL without a trailing slash.
    pub org: Url,
    pub auth: Auth,
    pub limits: Limits,
    /// The longest a request waits for its bucket's window to end.
    pub max_window_wait: Duration,
}

/// One page of a list.
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
    /// The server's clock (`Date`), when it sent one.
    date: Option<Timestamp>,
}

/// A whole list, read to its end.
pub struct Listing<T> {
    pub items: Vec<T>,
    /// The server's `Date` of the first page (the clock that `lastUpdated` is on).
    pub started: Option<Timestamp>,
    pub pages: usize,
}

impl Client {
    /// `<orgUrl>/<path>` with `query`, for the first page of a list.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> String {
        let mut url = self.org.clone();
        // An http(s) URL always has path segments.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url.to_string()
    }

    /// Reads a list from `first` to its end, following each `Link: rel="next"` exactly as sent.
    /// A page that fails, a next link to another server or one already followed fails the
    /// whole list: a shorter list is never returned.
    /// `query_field` names the setting whose query the list carries: Okta refusing the query
    /// (400) is then an `InvalidSpec` of that field.
    /// Each page's items become `U`s through `map` as they arrive (only what is kept stays in
    /// memory).
    pub async fn list<T: DeserializeOwned, U>(
        &self,
        bucket: Bucket,
        operation: &'static str,
        what: &str,
        query_field: Option<&str>,
        first: String,
        map: impl FnMut(T) -> U,
    ) -> Result<Listing<U>, Error> {
        let mut map = map;
        let mut listing = Listing {
            items: Vec::new(),
            started: None,
            pages: 0,
        };
        let mut seen = HashSet::new();
        let mut url = first;
        loop {
            let page: Page<T> = self.page(bucket, operation, what, query_field, &url).await?;
            listing.pages += 1;
            if listing.pages == 1 {
                listing.started = page.date;
            }
            listing.items.extend(page.items.into_iter().map(&mut map));
            seen.insert(url);
            let Some(next) = page.next else {
                return Ok(listing);
            };
            url = self.check_next(&next, &seen, what, listing.pages)?;
        }
    }

    /// A next link is followed only to the org itself, and only once.
    fn check_next(&self, next: &str, seen: &HashSet<String>, what: &str, pages: usize) -> Result<String, Error> {
        let broken = |why: String| {
            SIDE.error(
                FailureKind::Unavailable,
                format!(
                    "Okta at {} answered page {pages} of {what} with a next link that {why}; the list cannot \
                     be read to its end, so nothing is synced",
                    self.host()
                ),
            )
        };
        let url = Url::parse(next).map_err(|e| broken(format!("is not a URL ({e})")))?;
        if url.origin() != self.org.origin() {
            return Err(broken(format!(
                "points to another server ({}): not followed, it would receive the credentials",
                crate::net::host_of(next)
            )));
        }
        if seen.contains(next) || seen.contains(url.as_str()) {
            return Err(broken("repeats a page already read".into()));
        }
        Ok(next.to_string())
    }

    fn host(&self) -> String {
        crate::net::host_of(self.org.as_str())
    }

    async fn page<T: DeserializeOwned>(
        &self,
        bucket: Bucket,
        operation: &'static str,
        what: &str,
        query_field: Option<&str>,
        url: &str,
    ) -> Result<Page<T>, Error> {
        let permit = self.acquire(bucket, what).await?;
        let reply = self.get(operation, url).await?;
        self.limits.observe(permit, &reply.headers);
        if reply.status == StatusCode::BAD_REQUEST
            && let Some(field) = query_field
        {
            return Err(self.http.scrub(Error::invalid(
                field,
                format!(
                    "Okta at {} refused the query while {what} (HTTP 400: {}): check the query after | \
                     (Okta's filter syntax; with userQueryParameter: filter only status, lastUpdated, id, \
                     profile.login, profile.email, profile.firstName and profile.lastName)",
                    reply.host,
                    reply.detail()
                ),
            )));
        }
        if !reply.status.is_success() {
            return Err(self.http.scrub(self.answer_error(what, &reply)));
        }
        let items: Vec<T> = reply.json_as(SIDE, &format!("a page of {what}")).map_err(|e| {
            e.with_note(&format!(
                "check {ORG_URL_FIELD}: it must be the Okta org (https://<org>.okta.com)"
            ))
        })?;
        Ok(Page {
            items,
            next: next_link(&reply.headers),
            date: server_date(&reply.headers),
        })
    }

    /// Waits until `bucket` may take another request (bounded).
    async fn acquire(&self, bucket: Bucket, what: &str) -> Result<super::limits::Permit<'_>, Error> {
        loop {
            match self.limits.try_acquire(bucket, Instant::now()) {
                Ok(permit) => return Ok(permit),
                Err(Wait(wait)) if wait > self.max_window_wait => {
                    return Err(SIDE.error(
                        FailureKind::Throttled,
                        format!(
                            "Okta at {} allows no more requests for {what} for {} (until {}): the next sync \
                             will try again",
                            self.host(),
                            human(wait),
                            retry_time(wait)
                        ),
                    ));
                }
                Err(Wait(wait)) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// One GET with the credentials (429 and 5xx are retried by the HTTP client; a 429 waits
    /// for `X-Rate-Limit-Reset`, within the call's bounds).
    async fn get(&self, operation: &'static str, url: &str) -> Result<Reply, Error> {
        let call = Call::idempotent(operation);
        match &self.auth {
            Auth::ApiToken { token, .. } => {
                self.http
                    .send(call, |c| {
                        c.get(url)
                            .header(AUTHORIZATION, format!("SSWS {}", token.expose()))
                            .header("accept", "application/json")
                    })
                    .await
            }
            Auth::ServiceApp { tokens, .. } => {
                self.http
                    .send_authorised(
                        call,
                        tokens,
                        |deadline| self.fetch_token(deadline),
                        |c, token| {
                            c.get(url)
                                .bearer_auth(token.expose())
                                .header("accept", "application/json")
                        },
                    )
                    .await
            }
        }
    }

    /// A service app's access token: `client_credentials` with a fresh signed client assertion
    /// for every attempt (Okta refuses a `jti` it has seen).
    async fn fetch_token(&self, deadline: Instant) -> Result<Token, Error> {
        let Auth::ServiceApp {
            client_id, key, key_id, ..
        } = &self.auth
        else {
            return Err(SIDE.error(FailureKind::AuthFailed, "no service app is configured"));
        };
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let token_url = self.url(&["oauth2", "v1", "token"], &[]);
        // Each attempt signs a fresh assertion (a new jti). Signing cannot fail once the key was
        // read; if it ever does, say so instead of sending an empty assertion.
        client_assertion(key, client_id, &token_url, key_id.as_deref(), Timestamp::now()).map_err(|e| {
            SIDE.error(
                FailureKind::AuthFailed,
                format!("cannot sign the client assertion with the service app's private key: {e}"),
            )
        })?;
        let call = Call::idempotent("token").until(deadline);
        let reply = self
            .http
            .send(call, |c| {
                let assertion = client_assertion(key, client_id, &token_url, key_id.as_deref(), Timestamp::now())
                    .unwrap_or_default();
                self.http.scrubber().remember(SecretValue::new(assertion.clone()));
                c.post(&token_url).header("accept", "application/json").form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", SCOPES),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
            })
            .await?;
        if reply.status.is_success() {
            let token: TokenResponse = reply.json_as(SIDE, "an access token").map_err(|e| {
                e.with_note(&format!(
                    "check {ORG_URL_FIELD}: it must be the Okta org (https://<org>.okta.com)"
                ))
            })?;
            return Ok(Token {
                value: SecretValue::new(token.access_token),
                lifetime: Duration::from_secs(token.expires_in.unwrap_or(3600)),
            });
        }
        if reply.status.is_redirection() {
            return Err(self.http.redirect_error(&reply));
        }
        Err(self.http.scrub(self.token_refusal(&reply)))
    }

    /// What a refused token request means, and what to fix.
    fn token_refusal(&self, reply: &Reply) -> Error {
        let Auth::ServiceApp { client_id, source, .. } = &self.auth else {
            return self.http.answer_error("the token request", reply);
        };
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let code = body["error"].as_str().unwrap_or_default();
        let detail = reply.detail();
        let host = &reply.host;
        let status = reply.status;
        let fix = match code {
            "invalid_client" => format!(
                "check oauth.clientId ({client_id}), that the public key of the private key in {source} is \
                 registered with the app (with the kid in oauth.keyId, if set), and that the app's client \
                 authentication is \"Public key / Private key\""
            ),
            "invalid_scope" => {
                format!("grant the service app the scopes {SCOPES} (its \"Okta API Scopes\" tab; a Super Admin can)")
            }
            "unauthorized_client" => "the app must be an \"API Services\" app that may use the client credentials \
                                      grant"
                .to_string(),
            "invalid_dpop_proof" | "use_dpop_nonce" => "dirsync does not send DPoP proofs: turn off \"Require \
                                                        Demonstrating Proof of Possession (DPoP) header in token \
                                                        requests\" in the app's settings"
                .to_string(),
            _ if status == StatusCode::NOT_FOUND => {
                format!("check {ORG_URL_FIELD}: it must be the Okta org (https://<org>.okta.com)")
            }
            _ => "check the service app's settings".to_string(),
        };
        let kind = if status.is_server_error() {
            FailureKind::Unavailable
        } else {
            FailureKind::AuthFailed
        };
        SIDE.error(
            kind,
            format!("Okta at {host} refused the service app's token request (HTTP {status}: {detail}): {fix}"),
        )
    }

    /// The error of a list answer that is not a page, with what to fix.
    fn answer_error(&self, what: &str, reply: &Reply) -> Error {
        let host = &reply.host;
        let status = reply.status;
        let detail = match reply.detail() {
            d if d.is_empty() => String::new(),
            d => format!(": {d}"),
        };
        let request = reply.request();
        match (status, &self.auth) {
            (StatusCode::UNAUTHORIZED, Auth::ApiToken { source, .. }) => SIDE.error(
                FailureKind::AuthFailed,
                format!(
                    "Okta at {host} refused the API token while {what} ({request}, HTTP 401{detail}): the token in \
                     {source} is revoked, expired (unused for 30 days), or of another org; create one under \
                     Security → API → Tokens, or check {ORG_URL_FIELD}"
                ),
            ),
            (StatusCode::UNAUTHORIZED, Auth::ServiceApp { .. }) => SIDE.error(
                FailureKind::AuthFailed,
                format!(
                    "Okta at {host} refused the service app's access token while {what} ({request}, HTTP \
                     401{detail}), a fresh one too: check that the app is active and that DPoP is not required"
                ),
            ),
            (StatusCode::FORBIDDEN, Auth::ApiToken { .. }) => SIDE.error(
                FailureKind::AuthFailed,
                format!(
                    "Okta at {host} does not let the API token's admin read {what} ({request}, HTTP 403{detail}): \
                     use a token created by an admin with the Read-only Administrator role (or one that can \
                     read all users and groups)"
                ),
            ),
            (StatusCode::FORBIDDEN, Auth::ServiceApp { .. }) => {
                let fix = match missing_scope(&reply.headers) {
                    Some(scope) => format!(
                        "the access token lacks the scope {scope}: grant the service app {SCOPES} (its \"Okta API \
                         Scopes\" tab)"
                    ),
                    None => "assign the service app an admin role that can read all users and groups (Read-only \
                             Administrator)"
                        .to_string(),
                };
                SIDE.error(
                    FailureKind::AuthFailed,
                    format!("Okta at {host} refused {what} ({request}, HTTP 403{detail}): {fix}"),
                )
            }
            (StatusCode::NOT_FOUND, _) => SIDE.error(
                FailureKind::Unavailable,
                format!(
                    "Okta at {host} has no {request} (HTTP 404{detail}): check {ORG_URL_FIELD}: it must be the \
                     Okta org itself (https://<org>.okta.com, without a path, not the -admin address)"
                ),
            ),
            _ => self.http.answer_error(what, reply),
        }
    }
}

/// The scope a 403 says is missing (`WWW-Authenticate: Bearer ..., error="insufficient_scope",
/// scope="okta.users.read"`).
fn missing_scope(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    if !value.contains("insufficient_scope") {
        return None;
    }
    let start = value.find("scope=\"")? + "scope=\"".len();
    let scope = &value[start..];
    Some(scope[..scope.find('"')?].to_string())
}

/// The server's `Date`.
fn server_date(headers: &HeaderMap) -> Option<Timestamp> {
    let value = headers.get(DATE)?.to_str().ok()?;
    jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()
}

/// The target of the `rel="next"` link among every `Link` header (RFC 8288: one header may hold
/// several links, and several headers may come).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(mut text) = value.to_str() else { continue };
        while let Some(open) = text.find('<') {
            let Some(close) = text[open..].find('>').map(|c| open + c) else {
                break;
            };
            let target = &text[open + 1..close];
            let rest = &text[close + 1..];
            let params_end = rest.find('<').unwrap_or(rest.len());
            let is_next = rest[..params_end].split(';').any(|param| {
                let Some((name, value)) = param.split_once('=') else {
                    return false;
                };
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_end_matches(',')
                        .trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(target.to_string());
            }
            text = &rest[params_end..];
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("link", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_next_link_is_found_among_several_link_headers_and_links() {
        let next = "https://corp.okta.com/api/v1/users?after=00ub&limit=200";
        let h = links(&[
            "<https://corp.okta.com/api/v1/users?limit=200>; rel=\"self\"",
            &format!("<{next}>; rel=\"next\""),
        ]);
        assert_eq!(next_link(&h).as_deref(), Some(next));
        let h = links(&[&format!(
            "<https://corp.okta.com/api/v1/users?limit=200>; rel=\"self\", <{next}>; rel=next"
        )]);
        assert_eq!(next_link(&h).as_deref(), Some(next));
        let h = links(&["<https://corp.okta.com/api/v1/users?limit=200>; rel=\"self\""]);
        assert_eq!(next_link(&h), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
        // A filter with a comma inside the URL is kept whole.
        let odd = "https://corp.okta.com/api/v1/users?filter=a,b&after=x";
        let h = links(&[&format!("<{odd}>; title=\"x\"; rel=\"prev next\"")]);
        assert_eq!(next_link(&h).as_deref(), Some(odd));
    }

    #[test]
    fn a_missing_scope_is_read_from_www_authenticate() {
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            "Bearer authorization_uri=\"http://x/oauth2/v1/authorize\", realm=\"IdP\", scope=\"okta.groups.read\", \
             error=\"insufficient_scope\", error_description=\"The access token provided does not contain the \
             required scopes.\", resource=\"/api/v1/groups\""
                .parse()
                .unwrap(),
        );
        assert_eq!(missing_scope(&h).as_deref(), Some("okta.groups.read"));
        assert_eq!(missing_scope(&HeaderMap::new()), None);
    }
}
