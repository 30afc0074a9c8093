//! OneLogin's HTTP side: the token request, authorised GETs and cursor paging, on
//! [`crate::net`] (retries, the `X-RateLimit-Reset` wait, the token cache, scrubbing, metrics).
//!
//! - Token: `POST <apiUrl>/auth/oauth2/v2/token` with HTTP Basic `client_id:client_secret` and the
//!   JSON body `{"grant_type":"client_credentials"}`, as OneLogin's OAuth2 API description shows
//!   (and Directory Connector sends). It lives 10 hours; it is cached and renewed once after a 401.
//! - Lists (`/api/2/users`, `/api/2/roles`) are bare JSON arrays; the next page is asked with
//!   `cursor=<After-Cursor>` until that header is absent or empty.
//!
//! A list is read to its end or the read fails: a page that fails past the retries, a cursor the
//! server refuses, a cursor seen before, an item listed twice, or fewer items than `Total-Count`
//! promises all end the read with an error, never with a shorter directory.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::Error;
use crate::net::{Call, FailureKind, HttpClient, Reply, Token, TokenCache};
use crate::secrets::SecretValue;

pub const TOKEN_PATH: &str = "/auth/oauth2/v2/token";
pub const USERS_PATH: &str = "/api/2/users";
pub const ROLES_PATH: &str = "/api/2/roles";
/// Items asked per page: the documented maximum (the server may send fewer).
pub const PAGE_LIMIT: usize = 100;
/// A cached token is renewed this long before it expires.
pub const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(300);
/// `expires_in` when the token answer has none: OneLogin's documented 10 hours.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(36_000);
/// Upper bound on pages of one list, against a server whose cursors never end.
const MAX_PAGES: usize = 100_000;

/// Something a list holds, with the id that tells items apart.
pub trait Listed: DeserializeOwned {
    fn id(&self) -> i64;
}

impl Listed for super::read::WireUser {
    fn id(&self) -> i64 {
        self.id
    }
}

impl Listed for super::read::WireRole {
    fn id(&self) -> i64 {
        self.id
    }
}

/// One list to read.
pub struct Listing<'a> {
    /// The metrics' operation (`list_users`, `list_roles`).
    pub operation: &'static str,
    pub path: &'static str,
    /// What the items are, for messages (`users`, `roles`).
    pub items: &'static str,
    /// `fields=` and the native filter parameters, sent with every page.
    pub query: Vec<(String, String)>,
    /// The spec field holding the native filter, named when the server refuses it.
    pub filter_field: &'a str,
}

/// The API credential and where it comes from.
pub struct Credentials {
    pub client_id: String,
    pub client_secret: SecretValue,
    /// `the API credential in Secret "x" (keys "client_id" and "client_secret")`.
    pub source: String,
}

pub struct Client {
    pub http: HttpClient,
    pub tokens: TokenCache,
    /// `https://<subdomain>.onelogin.com`, without a trailing slash.
    pub base: String,
    /// The spec field(s) the base URL comes from, for messages.
    pub url_field: String,
    pub credentials: Credentials,
}

impl Client {
    /// A new access token, within the deadline of the call that needs it.
    async fn fetch_token(&self, deadline: Instant) -> Result<Token, Error> {
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let url = format!("{}{TOKEN_PATH}", self.base);
        let c = &self.credentials;
        let call = Call::idempotent("token").until(deadline);
        let reply = self
            .http
            .send(call, |http| {
                http.post(&url)
                    .basic_auth(&c.client_id, Some(c.client_secret.expose()))
                    .header(CONTENT_TYPE, "application/json")
                    .header(ACCEPT, "application/json")
                    .body(r#"{"grant_type":"client_credentials"}"#)
            })
            .await
            .map_err(|e| self.token_failure(e))?;
        let status = reply.status;
        if status.is_success() {
            let token = serde_json::from_slice::<TokenResponse>(&reply.body)
                .ok()
                .filter(|t| !t.access_token.is_empty())
                .ok_or_else(|| {
                    Error::SourceUnavailable(format!(
                        "OneLogin at {} answered the token request ({}) with HTTP {status} but without an \
                         access token ({}): check {}",
                        reply.host,
                        reply.request(),
                        reply.describe_body(),
                        self.url_field
                    ))
                })?;
            return Ok(Token {
                value: SecretValue::new(token.access_token),
                lifetime: token.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs),
            });
        }
        if status.is_redirection() {
            return Err(self.http.redirect_error(&reply));
        }
        if status == StatusCode::NOT_FOUND {
            return Err(Error::SourceUnavailable(format!(
                "OneLogin at {} has no token endpoint ({}, HTTP 404): check {} (the API host is \
                 https://<subdomain>.onelogin.com, or https://api.us.onelogin.com / https://api.eu.onelogin.com)",
                reply.host,
                reply.request(),
                self.url_field
            )));
        }
        Err(self.http.side().error(
            FailureKind::AuthFailed,
            format!(
                "OneLogin at {} refused {} ({}, HTTP {status}{}): check the client id and client secret \
                 (OneLogin admin: Developers → API Credentials)",
                reply.host,
                c.source,
                reply.request(),
                colon(&reply.detail())
            ),
        ))
    }

    /// Notes the cause OneLogin documents for a token request that fails with HTTP 500.
    fn token_failure(&self, e: Error) -> Error {
        if matches!(e, Error::SourceUnavailable(_)) && e.to_string().contains("HTTP 500") {
            e.with_note(&format!(
                "OneLogin answers 500 to token requests when the admin who created the API credential \
                 was deleted: create a new credential and update {}",
                self.credentials.source
            ))
        } else {
            e
        }
    }

    async fn get(&self, operation: &'static str, url: &str, query: &[(String, String)]) -> Result<Reply, Error> {
        self.http
            .send_authorised(
                Call::idempotent(operation),
                &self.tokens,
                |deadline| self.fetch_token(deadline),
                |http, token| {
                    http.get(url)
                        .query(query)
                        .bearer_auth(token.expose())
                        .header(ACCEPT, "application/json")
                },
            )
            .await
    }

    /// Reads a whole list, handing each page to `take`; returns how many items it held.
    pub async fn list<T: Listed>(&self, listing: &Listing<'_>, mut take: impl FnMut(Vec<T>)) -> Result<usize, Error> {
        let url = format!("{}{}", self.base, listing.path);
        let items = listing.items;
        let mut ids: HashSet<i64> = HashSet::new();
        let mut cursors: HashSet<String> = HashSet::new();
        let mut cursor: Option<String> = None;
        let mut totals: Option<(u64, u64)> = None; // (first page's Total-Count, last page's)
        for page in 1..=MAX_PAGES {
            let mut query = listing.query.clone();
            query.push(("limit".into(), PAGE_LIMIT.to_string()));
            if let Some(c) = &cursor {
                query.push(("cursor".into(), c.clone()));
            }
            let reply = self
                .get(listing.operation, &url, &query)
                .await
                .map_err(|e| incomplete(e, listing.items, page))?;
            if !reply.status.is_success() {
                return Err(self.list_error(listing, page, &reply));
            }
            let list: Vec<T> = reply
                .json_as(self.http.side(), &format!("a JSON array of {items}"))
                .map_err(|e| e.with_note(&format!("page {page} of the {items}; nothing was sent")))?;
            for item in &list {
                if !ids.insert(item.id()) {
                    return Err(changed(
                        &reply,
                        &format!("{} {} was listed twice (page {page})", singular(items), item.id()),
                    ));
                }
            }
            take(list);
            if let Some(total) = header(&reply, "total-count").and_then(|t| t.parse::<u64>().ok()) {
                totals = Some((totals.map_or(total, |(first, _)| first), total));
            }
            let next = header(&reply, "after-cursor").filter(|c| !c.is_empty());
            let Some(next) = next else {
                return self.check_count(&reply, items, ids.len(), totals);
            };
            if !cursors.insert(next.to_string()) {
                return Err(Error::SourceUnavailable(format!(
                    "OneLogin at {} sent an After-Cursor it had sent before on page {page} of the {items} \
                     ({}): the list would never end; nothing was sent",
                    reply.host,
                    reply.request()
                )));
            }
            cursor = Some(next.to_string());
        }
        Err(Error::SourceUnavailable(format!(
            "OneLogin at {} kept sending After-Cursor past {MAX_PAGES} pages of GET {}: nothing was sent",
            crate::net::host_of(&self.base),
            listing.path
        )))
    }

    /// The list ended: it must hold what `Total-Count` announced, on its first page and its last.
    fn check_count(&self, reply: &Reply, items: &str, read: usize, totals: Option<(u64, u64)>) -> Result<usize, Error> {
        match totals {
            Some((first, last)) if first != last => Err(changed(
                reply,
                &format!("Total-Count went from {first} to {last} while the {items} were read"),
            )),
            Some((_, total)) if total != read as u64 => Err(changed(
                reply,
                &format!("the list ended after {read} {items} but Total-Count says {total}"),
            )),
            _ => Ok(read),
        }
    }

    /// Why a page was refused, and what to fix.
    fn list_error(&self, listing: &Listing<'_>, page: usize, reply: &Reply) -> Error {
        let status = reply.status;
        let what = format!("listing the {}", listing.items);
        let detail = colon(&reply.detail());
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Error::SourceAuthFailed(format!(
                "OneLogin at {} refused {what} ({}, HTTP {status}{detail}): {} must be allowed to read \
                 users: give it the \"Read users\" scope (or \"Read All\"/\"Manage All\"; OneLogin admin: \
                 Developers → API Credentials), and check the client id and secret",
                reply.host,
                reply.request(),
                self.credentials.source
            ));
        }
        let filtered = listing.query.iter().any(|(k, _)| k != "fields");
        if page == 1 && filtered && (status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY) {
            return Error::invalid(
                listing.filter_field,
                format!(
                    "OneLogin refused the query after | ({}, HTTP {status}{detail}): fix the parameter values",
                    reply.request()
                ),
            );
        }
        let error = self.http.answer_error(&what, reply);
        if page == 1 && status == StatusCode::NOT_FOUND {
            return error.with_note(&format!("check {}", self.url_field));
        }
        incomplete(error, listing.items, page)
    }
}

/// A page after the first failed: the list is incomplete, and says so.
fn incomplete(error: Error, items: &str, page: usize) -> Error {
    if page == 1 {
        return error;
    }
    error.with_note(&format!(
        "page {page} could not be read, so the {items} are incomplete; nothing was sent"
    ))
}

/// The list changed (or pages were lost) while it was read.
fn changed(reply: &Reply, what: &str) -> Error {
    Error::SourceUnavailable(format!(
        "OneLogin at {}, {}: {what}; the list changed while it was read, or pages were lost; a partial \
         list is never used, so nothing was sent and the next sync reads it again",
        reply.host,
        reply.request()
    ))
}

fn singular(items: &str) -> &str {
    items.strip_suffix('s').unwrap_or(items)
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name)?.to_str().ok().map(str::trim)
}

fn colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// `client_id:client_secret` and its base64, as sent in HTTP Basic: secrets to scrub.
pub fn basic_secrets(client_id: &str, client_secret: &SecretValue) -> [SecretValue; 2] {
    let pair = format!("{client_id}:{}", client_secret.expose());
    [SecretValue::new(STANDARD.encode(&pair)), SecretValue::new(pair)]
}
