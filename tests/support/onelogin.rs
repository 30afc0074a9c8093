//! A OneLogin double (API v2 users and roles, OAuth 2.0 tokens) that speaks the wire format of
//! `/work/shared/spec/providers.md` §4 and the vendor descriptions (`onelogin/OAuth2Api.md`,
//! `UsersV2Api.md`, `RolesApi.md`, `User.md`, `Role.md`). It is strict: a client that passes
//! against it sends what the docs describe.
//!
//! ```ignore
//! let ol = OneLoginDouble::start().await;
//! ol.add_role(10, "Engineering");
//! ol.add_user(user(1, Some("alice@corp.example"), None, 1, &[10]));
//! ol.set_page_cap("users", 3);                       // several pages for a few users
//! let mut reader = ol.reader().await;                // the real source, fast retries
//! ol.fail_after("users", 2, 1, Failure::onelogin_rate_limited(1));
//! ```
//!
//! What it enforces:
//! - `POST /auth/oauth2/v2/token`: `Content-Type: application/json` (else 400), HTTP Basic
//!   `client_id:client_secret` (else 401 `Authentication Failure`), body
//!   `{"grant_type":"client_credentials"}` (else 400). As OneLogin documents, the same credential
//!   gets the same token until it expires (`expires_in` 36000) or is revoked
//!   ([`OneLoginDouble::revoke_tokens`]). Body shapes of token errors are v1-style
//!   `{"status":{...}}` [inferred from the v1 docs].
//! - `GET /api/2/users` and `/api/2/roles`: `Authorization: Bearer <token>` (or the v1 form
//!   `bearer:<token>`) of an issued, unexpired, unrevoked token, and a credential whose scope may
//!   read users, else 401 with the documented v2 body `{"message":"Unauthorized","statusCode":401,
//!   "name":"UnauthorizedError"}` (the list docs name no 403); only the documented parameters
//!   (else 400); `limit` capped per route ([`OneLoginDouble::set_page_cap`], 100 by default, 50
//!   when absent); `cursor` as OneLogin issues them (base64 of `limit=L&page=P`; an unknown one is
//!   400); filters applied (`*` wildcards; an integer parameter that is not one is 422); `fields`
//!   projects the objects. Answers are bare JSON arrays with `Total-Count`, `Total-Pages`,
//!   `Current-Page`, `Page-Items`, `Before-Cursor`, `After-Cursor` and `Link` headers.
//! - Every call (tokens too) spends the account's hourly budget, reported in `X-RateLimit-Limit`,
//!   `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds left in the window); when it is
//!   spent the answer is 429 [inferred status and body].
//! - Faults of a server or of a directory that changes: [`CursorFault`],
//!   [`OneLoginDouble::delete_user_after_page`], [`OneLoginDouble::insert_user_after_page`], and
//!   the toolkit's scripted failures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dirsync::api::{ClientCredentialsRef, OneLoginSource};
use dirsync::net::RetryPolicy;
use dirsync::source::onelogin::{self, OneLoginReader};
use serde_json::{Map, Value, json};
use wiremock::{Request, ResponseTemplate};

pub use super::double::{Failure, RecordedRequest};
use super::double::{HttpDouble, StateGuard, json_response, new_id};
use super::secrets::MemorySecrets;

/// Name of the credential Secret in [`OneLoginDouble::spec`] and [`OneLoginDouble::secrets`].
pub const SECRET_NAME: &str = "onelogin-api";
pub const TOKEN_PATH: &str = "/auth/oauth2/v2/token";
pub const USERS_PATH: &str = "/api/2/users";
pub const ROLES_PATH: &str = "/api/2/roles";
/// Paging and projection parameters of both lists.
pub const PAGING_PARAMETERS: &[&str] = &["limit", "page", "cursor", "fields"];
/// Filter parameters of `GET /api/2/users` the double knows (plus `custom_attributes.<name>`).
pub const USER_FILTERS: &[&str] = &[
    "created_since",
    "created_until",
    "updated_since",
    "updated_until",
    "last_login_since",
    "last_login_until",
    "firstname",
    "lastname",
    "email",
    "username",
    "samaccountname",
    "directory_id",
    "external_id",
    "user_ids",
];
/// Filter parameters of `GET /api/2/roles`.
pub const ROLE_FILTERS: &[&str] = &["role_name", "app_id", "app_name"];
/// Headers of a list answer.
pub const PAGING_HEADERS: &[&str] = &[
    "Total-Count",
    "Total-Pages",
    "Current-Page",
    "Page-Items",
    "Before-Cursor",
    "After-Cursor",
    "Link",
];
/// The account's hourly call budget.
pub const RATE_LIMIT: u64 = 5000;

/// The scope of the API credential (OneLogin admin: Developers → API Credentials).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    AuthenticationOnly,
    ReadUsers,
    ReadAll,
    ManageAll,
}

/// A server fault in the paging of one list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorFault {
    /// Page `page` carries an `After-Cursor` the server will not take back.
    Garbage { page: usize },
    /// Page `page` carries its own cursor again as `After-Cursor`.
    Repeat { page: usize },
    /// Page `page` carries no `After-Cursor` although more pages follow.
    Stop { page: usize },
}

/// A user object as `GET /api/2/users` returns it (without `fields`).
pub fn user(id: i64, email: Option<&str>, username: Option<&str>, status: i64, role_ids: &[i64]) -> Value {
    json!({
        "id": id,
        "username": username,
        "email": email,
        "firstname": format!("First{id}"),
        "lastname": format!("Last{id}"),
        "title": null,
        "department": null,
        "company": null,
        "status": status,
        "state": 1,
        "group_id": null,
        "role_ids": role_ids,
        "directory_id": null,
        "external_id": null,
        "samaccountname": null,
        "member_of": null,
        "custom_attributes": {},
        "activated_at": "2024-03-01T09:00:00.000Z",
        "last_login": null,
        "updated_at": "2024-05-02T10:20:30.000Z",
        "created_at": "2024-03-01T09:00:00.000Z",
        "invalid_login_attempts": 0,
        "locked_until": null,
        "password_changed_at": null,
        "preferred_locale_code": null,
    })
}

/// A role object as `GET /api/2/roles` returns it (without `fields`).
pub fn role(id: i64, name: &str) -> Value {
    json!({"id": id, "name": name, "apps": [], "users": [], "admins": []})
}

/// The OneLogin answers among the toolkit's failures.
impl Failure {
    /// A v2 error body `{"message":...,"statusCode":...,"name":...}`.
    pub fn onelogin(status: u16, name: &str, message: &str) -> Failure {
        Failure::json(status, json!({"message": message, "statusCode": status, "name": name}))
    }

    /// 429 with the account's rate-limit headers: the window resets in `reset` seconds.
    pub fn onelogin_rate_limited(reset: u64) -> Failure {
        Failure::onelogin(429, "TooManyRequestsError", "Too Many Requests")
            .header("x-ratelimit-limit", &RATE_LIMIT.to_string())
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &reset.to_string())
    }
}

/// A change to the directory while it is being read.
enum Change {
    Delete(i64),
    Insert(usize, Value),
}

struct Token {
    value: String,
    expires: Instant,
}

struct State {
    client_id: String,
    client_secret: String,
    scope: Scope,
    expires_in: u64,
    tokens: Vec<Token>,
    /// Distinct tokens issued so far.
    issued: usize,
    users: Vec<Value>,
    roles: Vec<Value>,
    caps: HashMap<&'static str, usize>,
    remaining: u64,
    window_ends: Instant,
    cursor_faults: HashMap<&'static str, CursorFault>,
    /// A change to the users once that page of them has been served.
    change_after: Option<(usize, Change)>,
}

/// The double: a wiremock server at `apiUrl`.
pub struct OneLoginDouble {
    double: HttpDouble<State>,
}

impl OneLoginDouble {
    /// An empty account with a "Read users" credential.
    pub async fn start() -> OneLoginDouble {
        let state = State {
            client_id: new_id().replace('-', ""),
            client_secret: format!("{}{}", new_id().replace('-', ""), new_id().replace('-', "")),
            scope: Scope::ReadUsers,
            expires_in: 36_000,
            tokens: Vec::new(),
            issued: 0,
            users: Vec::new(),
            roles: Vec::new(),
            caps: HashMap::from([("users", 100), ("roles", 100)]),
            remaining: RATE_LIMIT,
            window_ends: Instant::now() + Duration::from_secs(3600),
            cursor_faults: HashMap::new(),
            change_after: None,
        };
        OneLoginDouble {
            double: HttpDouble::start(state, route, State::handle).await,
        }
    }

    fn state(&self) -> StateGuard<'_, State> {
        self.double.state()
    }

    // --- where it is and how to log in --------------------------------------------------------

    /// `spec.source.oneLogin.apiUrl`.
    pub fn url(&self) -> String {
        self.double.uri()
    }

    pub fn client_id(&self) -> String {
        self.state().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.state().client_secret.clone()
    }

    /// A `source.oneLogin` for this server (`apiUrl`, credential in Secret [`SECRET_NAME`]).
    pub fn spec(&self) -> OneLoginSource {
        OneLoginSource {
            api_url: Some(self.url()),
            credentials_secret_ref: ClientCredentialsRef {
                name: SECRET_NAME.into(),
                client_id_key: "client_id".into(),
                client_secret_key: "client_secret".into(),
            },
            ..Default::default()
        }
    }

    /// The Secret [`OneLoginDouble::spec`] refers to.
    pub fn secrets(&self) -> MemorySecrets {
        MemorySecrets::new()
            .with(SECRET_NAME, "client_id", self.client_id())
            .with(SECRET_NAME, "client_secret", self.client_secret())
    }

    /// The real source on `spec`, with millisecond retry delays.
    pub async fn reader_for(&self, spec: &OneLoginSource) -> OneLoginReader {
        onelogin::connect(spec, &self.secrets(), RetryPolicy::fast())
            .await
            .expect("a reader for the OneLogin double")
    }

    /// The real source on [`OneLoginDouble::spec`], with millisecond retry delays.
    pub async fn reader(&self) -> OneLoginReader {
        self.reader_for(&self.spec()).await
    }

    // --- the directory -------------------------------------------------------------------------

    pub fn add_user(&self, user: Value) {
        self.state().users.push(user);
    }

    pub fn add_role(&self, id: i64, name: &str) {
        self.state().roles.push(role(id, name));
    }

    /// Sets fields of user `id` (`{"directory_id": 7}`).
    pub fn update_user(&self, id: i64, fields: Value) {
        let mut s = self.state();
        let user = s.users.iter_mut().find(|u| u["id"] == id).expect("a user with that id");
        for (k, v) in fields.as_object().expect("fields as an object") {
            user[k] = v.clone();
        }
    }

    /// Assigns app ids and names to role `id` (for the `app_id` / `app_name` filters).
    pub fn set_role_apps(&self, id: i64, apps: &[(i64, &str)]) {
        let mut s = self.state();
        let role = s.roles.iter_mut().find(|r| r["id"] == id).expect("a role with that id");
        role["apps"] = json!(apps.iter().map(|a| a.0).collect::<Vec<_>>());
        role["_app_names"] = json!(apps.iter().map(|a| a.1).collect::<Vec<_>>());
    }

    // --- programming it ----------------------------------------------------------------------

    /// The largest page a route (`users`, `roles`) serves.
    pub fn set_page_cap(&self, route: &'static str, cap: usize) {
        self.state().caps.insert(route, cap.max(1));
    }

    pub fn set_scope(&self, scope: Scope) {
        self.state().scope = scope;
    }

    /// Rotates the client secret: the old one gets `Authentication Failure`.
    pub fn set_client_secret(&self, secret: &str) {
        self.state().client_secret = secret.to_string();
    }

    /// Lifetime of newly issued tokens.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state().expires_in = seconds;
    }

    /// Revokes every issued token: the next API call gets a 401.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Calls left in the current hourly window, and when it ends.
    pub fn set_rate_limit(&self, remaining: u64, reset: Duration) {
        let mut s = self.state();
        s.remaining = remaining;
        s.window_ends = Instant::now() + reset;
    }

    pub fn set_cursor_fault(&self, route: &'static str, fault: CursorFault) {
        self.state().cursor_faults.insert(route, fault);
    }

    /// Deletes user `id` once page `page` of the users has been served (a directory that changes
    /// while it is read).
    pub fn delete_user_after_page(&self, page: usize, id: i64) {
        self.state().change_after = Some((page, Change::Delete(id)));
    }

    /// Inserts `user` at `position` of the list once page `page` of the users has been served.
    pub fn insert_user_after_page(&self, page: usize, position: usize, user: Value) {
        self.state().change_after = Some((page, Change::Insert(position, user)));
    }

    /// Every answer waits `latency` first.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.double.set_latency(latency);
    }

    /// Answers the next `times` requests to `route` (`token`, `users`, `roles`) with `failure`.
    pub fn fail_next(&self, route: &'static str, times: usize, failure: Failure) {
        self.double.fail_next(route, times, failure);
    }

    /// Lets `ok` requests to `route` through, then answers `times` with `failure`.
    pub fn fail_after(&self, route: &'static str, ok: usize, times: usize, failure: Failure) {
        self.double.fail_after(route, ok, times, failure);
    }

    /// Drops the programmed failures not yet used.
    pub fn clear_failures(&self) {
        self.double.clear_failures();
    }

    // --- what it saw -------------------------------------------------------------------------

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.double.requests()
    }

    pub fn requests_to(&self, route: &str) -> Vec<RecordedRequest> {
        self.double.requests_to(route)
    }

    /// Tokens issued so far (a reused token counts once).
    pub fn tokens_issued(&self) -> usize {
        self.state().issued
    }
}

fn route(r: &Request) -> Option<&'static str> {
    match r.url.path() {
        TOKEN_PATH => Some("token"),
        USERS_PATH => Some("users"),
        ROLES_PATH => Some("roles"),
        _ => None,
    }
}

/// A token-endpoint error, v1 style.
fn token_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    json_response(
        status,
        json!({"status": {"error": true, "code": status, "type": kind, "message": message}}),
    )
}

/// A resource-API error, v2 style.
fn api_error(status: u16, name: &str, message: &str) -> ResponseTemplate {
    json_response(status, json!({"message": message, "statusCode": status, "name": name}))
}

fn encode_cursor(limit: usize, page: usize) -> String {
    STANDARD.encode(format!("limit={limit}&page={page}"))
}

fn decode_cursor(cursor: &str) -> Option<(usize, usize)> {
    let text = String::from_utf8(STANDARD.decode(cursor).ok()?).ok()?;
    let (limit, page) = text.strip_prefix("limit=")?.split_once("&page=")?;
    Some((limit.parse().ok()?, page.parse().ok().filter(|p| *p >= 1)?))
}

/// `pattern` with `*` wildcards against `value`, case-insensitively.
fn wildcard(pattern: &str, value: &str) -> bool {
    let (pattern, value) = (pattern.to_lowercase(), value.to_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let mut rest = value.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether `item` passes filter `key=value`; `Err` is the 422 for a value of the wrong type.
fn passes(route: &str, item: &Value, key: &str, value: &str) -> Result<bool, String> {
    let int = |v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| format!("invalid value in \"{key}\""))
    };
    Ok(match (route, key) {
        ("users", "directory_id") => item["directory_id"].as_i64() == Some(int(value)?),
        ("users", "user_ids") => {
            let ids = value.split(',').map(int).collect::<Result<Vec<_>, _>>()?;
            item["id"].as_i64().is_some_and(|id| ids.contains(&id))
        }
        ("users", "created_since") => text_of(&item["created_at"]).as_str() >= value,
        ("users", "created_until") => text_of(&item["created_at"]).as_str() <= value,
        ("users", "updated_since") => text_of(&item["updated_at"]).as_str() >= value,
        ("users", "updated_until") => text_of(&item["updated_at"]).as_str() <= value,
        ("users", "last_login_since") => text_of(&item["last_login"]).as_str() >= value,
        ("users", "last_login_until") => {
            !item["last_login"].is_null() && text_of(&item["last_login"]).as_str() <= value
        }
        ("users", k) if k.starts_with("custom_attributes.") => {
            let name = &k["custom_attributes.".len()..];
            wildcard(value, &text_of(&item["custom_attributes"][name]))
        }
        ("users", k) => wildcard(value, &text_of(&item[k])),
        ("roles", "role_name") => wildcard(value, &text_of(&item["name"])),
        ("roles", "app_id") => {
            let id = int(value)?;
            item["apps"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_i64() == Some(id)))
        }
        ("roles", "app_name") => item["_app_names"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| wildcard(value, &text_of(n)))),
        _ => true,
    })
}

/// The object as sent: only `fields` when asked, never the double's own `_` keys.
fn project(item: &Value, fields: Option<&[&str]>) -> Value {
    let object = item.as_object().expect("items are objects");
    let out: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .filter(|(k, _)| fields.is_none_or(|f| f.contains(&k.as_str())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(out)
}

impl State {
    fn handle(&mut self, route: &'static str, request: &Request) -> ResponseTemplate {
        if Instant::now() >= self.window_ends {
            self.remaining = RATE_LIMIT;
            self.window_ends = Instant::now() + Duration::from_secs(3600);
        }
        let answer = if self.remaining == 0 {
            api_error(429, "TooManyRequestsError", "Too Many Requests")
        } else {
            self.remaining -= 1;
            match (route, request.method.as_str()) {
                ("token", "POST") => self.token(request),
                ("users" | "roles", "GET") => self.list(route, request),
                _ => api_error(404, "NotFoundError", "Not Found"),
            }
        };
        let reset = self.window_ends.saturating_duration_since(Instant::now()).as_secs();
        answer
            .insert_header("x-ratelimit-limit", RATE_LIMIT.to_string().as_str())
            .insert_header("x-ratelimit-remaining", self.remaining.to_string().as_str())
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
    }

    fn token(&mut self, request: &Request) -> ResponseTemplate {
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/json") {
            return token_error(
                400,
                "bad request",
                "Content Type is not specified or specified incorrectly. Content-Type header must be set to application/json",
            );
        }
        let credentials = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            })
            .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok());
        let expected = format!("{}:{}", self.client_id, self.client_secret);
        if credentials.as_deref() != Some(expected.as_str()) {
            return token_error(401, "Unauthorized", "Authentication Failure");
        }
        let grant = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|b| b["grant_type"].as_str().map(str::to_string));
        if grant.as_deref() != Some("client_credentials") {
            return token_error(400, "bad request", "grant_type is incorrect/absent");
        }
        let now = Instant::now();
        // The same credential gets the same token until it expires or is revoked.
        let reuse = self.tokens.last().filter(|t| t.expires > now);
        let (value, expires_in) = match reuse {
            Some(t) => (t.value.clone(), t.expires.saturating_duration_since(now).as_secs()),
            None => {
                let value = format!("{}{}", new_id().replace('-', ""), new_id().replace('-', ""));
                self.issued += 1;
                self.tokens.push(Token {
                    value: value.clone(),
                    expires: now + Duration::from_secs(self.expires_in),
                });
                (value, self.expires_in)
            }
        };
        json_response(
            200,
            json!({
                "access_token": value,
                "created_at": "2024-05-02T10:20:30.000Z",
                "expires_in": expires_in,
                "refresh_token": new_id().replace('-', ""),
                "token_type": "bearer",
                "account_id": 555555,
            }),
        )
    }

    fn authorised(&self, request: &Request) -> bool {
        let Some(value) = request.headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => match value.strip_prefix("bearer:") {
                Some(token) => token.trim(),
                None => return false,
            },
        };
        let now = Instant::now();
        self.tokens.iter().any(|t| t.value == token && t.expires > now)
    }

    fn list(&mut self, route: &'static str, request: &Request) -> ResponseTemplate {
        if !self.authorised(request) || self.scope == Scope::AuthenticationOnly {
            return api_error(401, "UnauthorizedError", "Unauthorized");
        }
        let filters_known = if route == "users" { USER_FILTERS } else { ROLE_FILTERS };
        let mut limit: Option<usize> = None;
        let mut page = 1usize;
        let mut cursor = None;
        let mut fields: Option<Vec<String>> = None;
        let mut filters: Vec<(String, String)> = Vec::new();
        for (k, v) in request.url.query_pairs() {
            match k.as_ref() {
                "limit" => match v.parse::<usize>() {
                    Ok(n) if n > 0 => limit = Some(n),
                    _ => return api_error(400, "BadRequestError", "invalid value in \"limit\""),
                },
                "page" => match v.parse::<usize>() {
                    Ok(n) if n > 0 => page = n,
                    _ => return api_error(400, "BadRequestError", "invalid value in \"page\""),
                },
                "cursor" => cursor = Some(v.into_owned()),
                "fields" => fields = Some(v.split(',').map(|f| f.trim().to_string()).collect()),
                k if filters_known.contains(&k) || (route == "users" && k.starts_with("custom_attributes.")) => {
                    filters.push((k.to_string(), v.into_owned()))
                }
                other => return api_error(400, "BadRequestError", &format!("unknown parameter \"{other}\"")),
            }
        }
        let cap = self.caps[route];
        let mut size = limit.unwrap_or(50).min(cap);
        if let Some(c) = &cursor {
            match decode_cursor(c) {
                Some((l, p)) => {
                    size = l.min(cap);
                    page = p;
                }
                None => return api_error(400, "BadRequestError", "Invalid cursor"),
            }
        }
        let all = if route == "users" { &self.users } else { &self.roles };
        let mut matching: Vec<&Value> = Vec::with_capacity(all.len());
        for item in all {
            let mut keep = true;
            for (k, v) in &filters {
                match passes(route, item, k, v) {
                    Ok(true) => {}
                    Ok(false) => keep = false,
                    Err(message) => return api_error(422, "UnprocessableEntityError", &message),
                }
            }
            if keep {
                matching.push(item);
            }
        }
        let total = matching.len();
        let pages = total.div_ceil(size);
        let start = (page - 1).saturating_mul(size).min(total);
        let end = (start + size).min(total);
        let field_list: Option<Vec<&str>> = fields.as_ref().map(|f| f.iter().map(String::as_str).collect());
        let body: Vec<Value> = matching[start..end]
            .iter()
            .map(|item| project(item, field_list.as_deref()))
            .collect();

        let mut after = (page < pages).then(|| encode_cursor(size, page + 1));
        match self.cursor_faults.get(route) {
            Some(CursorFault::Garbage { page: p }) if *p == page => after = Some("bm90LWEtY3Vyc29y".into()),
            Some(CursorFault::Repeat { page: p }) if *p == page => after = Some(encode_cursor(size, page)),
            Some(CursorFault::Stop { page: p }) if *p == page => after = None,
            _ => {}
        }
        let before = (page > 1).then(|| encode_cursor(size, page - 1));
        let mut base = request.url.clone();
        base.set_query(None);
        let link = |c: &str, rel: &str| {
            let mut u = base.clone();
            u.query_pairs_mut().append_pair("cursor", c);
            format!("<{u}>; rel=\"{rel}\"")
        };
        let links: Vec<String> = after
            .iter()
            .map(|c| link(c, "next"))
            .chain(before.iter().map(|c| link(c, "prev")))
            .collect();
        let mut answer = json_response(200, Value::Array(body))
            .insert_header("total-count", total.to_string().as_str())
            .insert_header("total-pages", pages.to_string().as_str())
            .insert_header("current-page", page.to_string().as_str())
            .insert_header("page-items", size.to_string().as_str());
        if let Some(a) = &after {
            answer = answer.insert_header("after-cursor", a.as_str());
        }
        if let Some(b) = &before {
            answer = answer.insert_header("before-cursor", b.as_str());
        }
        if !links.is_empty() {
            answer = answer.insert_header("link", links.join(", ").as_str());
        }
        if route == "users" && self.change_after.as_ref().is_some_and(|(p, _)| *p == page) {
            match self.change_after.take().map(|(_, c)| c) {
                Some(Change::Delete(id)) => self.users.retain(|u| u["id"] != id),
                Some(Change::Insert(at, user)) => self.users.insert(at.min(self.users.len()), user),
                None => {}
            }
        }
        answer
    }
}

/// The HTTP Basic value a client sends for `id:secret` (for tests that look for it in messages).
pub fn basic_credentials(id: &str, secret: &str) -> String {
    STANDARD.encode(format!("{id}:{secret}"))
}
