//! An Okta org double that speaks the Management API as `/work/shared/spec/providers.md` §3 and
//! the vendor's OpenAPI description say, error bodies and rate-limit headers included. Strict:
//! a client that passes here sends what a real org accepts.
//!
//! ```ignore
//! let okta = OktaDouble::start().await;
//! let alice = okta.add_user(NewUser::new("alice@corp.example"));
//! okta.add_group("Engineering", GroupType::Okta, &[&alice]);
//! let spec = okta.token_spec();                  // orgUrl + tokenSecretRef (SSWS)
//! let secrets = okta.secrets();
//! okta.set_page_limit(Some(2));                  // every list in pages of 2
//! okta.set_rate_limit(5, Duration::from_secs(2));
//! ```
//!
//! What it enforces:
//! - `Authorization: SSWS <api token>` (revocable), or `Bearer <access token>` from
//!   `POST /oauth2/v1/token` (`client_credentials` with a `private_key_jwt` client assertion:
//!   RS256/ES256 signature checked against the registered public keys, `kid` when sent,
//!   `iss` = `sub` = client id, `aud` = `<org>/oauth2/v1/token`, `exp` in the future and at most
//!   an hour away, `jti` never reused; scopes must be granted). Unknown or expired tokens: 401
//!   `E0000011`; a token without the endpoint's scope: 403 `E0000006` with `WWW-Authenticate:
//!   ... error="insufficient_scope"`.
//! - `GET /api/v1/users` (`filter`, `search`, `limit` ≤ 200, `after`): without a query
//!   `DEPROVISIONED` users are left out; `filter` accepts only `status`, `lastUpdated`, `id`,
//!   `profile.login`, `profile.email`, `profile.firstName`, `profile.lastName` with `eq` (and
//!   `gt|ge|lt|le` on `lastUpdated`), else 400 `E0000031`; `search` any attribute.
//! - `GET /api/v1/groups` (`filter` on `id`, `type`, `lastUpdated`, `lastMembershipUpdated`,
//!   `limit`, `after`) and `GET /api/v1/groups/{id}/users` (`limit` default 1000, `after`).
//! - Paging: a `Link: <...>; rel="self"` header and, while more remain, a separate
//!   `Link: <...after=<last id>...>; rel="next"` header; unknown `after` cursors are refused.
//! - Rate limits per bucket (users, groups, group members, token): every answer carries
//!   `X-Rate-Limit-Limit`, `-Remaining`, `-Reset` (epoch seconds of the window's end) and `Date`;
//!   over the limit, 429 `E0000047` until the window ends. [`OktaDouble::throttled`] counts them.
//!
//! IMPORTANT: refer to sibling modules only as `super::double` and `super::secrets` (the
//! benchmark includes this file beside those two).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_2048_8192_SHA256,
    RsaKeyPair, UnparsedPublicKey, VerificationAlgorithm,
};
use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

pub use super::double::{Failure, RecordedRequest};
use super::double::{HttpDouble, StateGuard, header, json_response, parse_form};
use super::secrets::MemorySecrets;

/// The registered service app's private key (PKCS#8) and the same key as PKCS#1.
pub const APP_KEY: &str = include_str!("okta-keys/app.pem");
pub const APP_KEY_PKCS1: &str = include_str!("okta-keys/app-pkcs1.pem");
/// A key that is registered with no app.
pub const OTHER_KEY: &str = include_str!("okta-keys/other.pem");
pub const APP_CLIENT_ID: &str = "0oa1serviceapp0000001";
pub const APP_KEY_ID: &str = "dirsync-key-1";
pub const TOKEN_SECRET: &str = "okta-token";
pub const APP_SECRET: &str = "okta-app";
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Users of every test start with this `lastUpdated` (long ago).
pub const LONG_AGO: &str = "2024-01-02T03:04:05.000Z";

/// Group types (`GroupType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupType {
    Okta,
    App,
    BuiltIn,
}

impl GroupType {
    fn as_str(self) -> &'static str {
        match self {
            GroupType::Okta => "OKTA_GROUP",
            GroupType::App => "APP_GROUP",
            GroupType::BuiltIn => "BUILT_IN",
        }
    }
}

/// A user to add.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub email: Option<String>,
    pub login: String,
    pub status: String,
    pub department: Option<String>,
}

impl NewUser {
    /// An ACTIVE user whose login and email are `email`.
    pub fn new(email: &str) -> NewUser {
        NewUser {
            email: Some(email.to_string()),
            login: email.to_string(),
            status: "ACTIVE".into(),
            department: None,
        }
    }

    pub fn status(mut self, status: &str) -> NewUser {
        self.status = status.to_string();
        self
    }

    pub fn department(mut self, department: &str) -> NewUser {
        self.department = Some(department.to_string());
        self
    }

    /// No `profile.email` (Okta allows it for some profile sources).
    pub fn without_email(mut self) -> NewUser {
        self.email = None;
        self
    }
}

struct DUser {
    id: String,
    user: NewUser,
    last_updated: String,
    /// The user as Okta lists it (rendered once: lists are served from these).
    json: String,
}

struct DGroup {
    id: String,
    name: String,
    kind: GroupType,
    last_updated: String,
    last_membership_updated: String,
    members: Vec<String>,
}

/// How the next link of a list is broken, for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenLink {
    /// To another server.
    OtherHost,
    /// The page just served, again.
    Repeat,
    /// Not a URL.
    Garbage,
}

struct App {
    client_id: String,
    /// (kid, algorithm, public key).
    keys: Vec<(Option<String>, &'static str, Vec<u8>)>,
    scopes: Vec<String>,
    dpop: bool,
}

struct Window {
    end: u64,
    used: u64,
}

pub struct Org {
    base: String,
    users: Vec<DUser>,
    by_id: HashMap<String, usize>,
    groups: Vec<DGroup>,
    next_id: u64,
    api_tokens: HashSet<String>,
    api_token_forbidden: bool,
    app: Option<App>,
    access_tokens: HashMap<String, (Vec<String>, Instant)>,
    token_lifetime: u64,
    used_jtis: HashSet<String>,
    page_limit: Option<usize>,
    rate_limit: u64,
    window: u64,
    windows: HashMap<&'static str, Window>,
    throttled: HashMap<&'static str, usize>,
    broken: HashMap<&'static str, (usize, BrokenLink)>,
    served_pages: HashMap<&'static str, usize>,
    /// Every next link sent, by route.
    next_links: Vec<(&'static str, String)>,
}

/// The double: an Okta org at `http://127.0.0.1:<port>`.
pub struct OktaDouble {
    double: HttpDouble<Org>,
    api_token: String,
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Now as Okta writes times.
pub fn okta_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let t = jiff::Timestamp::from_millisecond(now.as_millis() as i64).unwrap();
    jiff::fmt::temporal::DateTimePrinter::new()
        .precision(Some(3))
        .timestamp_to_string(&t)
}

fn http_date() -> String {
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::from_second(now_epoch() as i64).unwrap())
        .unwrap()
}

/// An Okta error body.
pub fn okta_error(status: u16, code: &str, summary: &str) -> ResponseTemplate {
    json_response(status, error_body(code, summary))
}

fn error_body(code: &str, summary: &str) -> Value {
    json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", now_epoch()),
        "errorCauses": [],
    })
}

/// The Okta answers among the toolkit's failures.
impl Failure {
    /// An Okta error body (`errorCode`, `errorSummary`, ...).
    pub fn okta(status: u16, code: &str, summary: &str) -> Failure {
        Failure::json(status, error_body(code, summary))
    }

    /// 429 `E0000047` whose window ends `reset_in` seconds from now, with Okta's headers.
    pub fn okta_rate_limited(reset_in: u64) -> Failure {
        Failure::okta(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
        .header("x-rate-limit-limit", "600")
        .header("x-rate-limit-remaining", "0")
        .header("x-rate-limit-reset", &(now_epoch() + reset_in).to_string())
        .header("date", &http_date())
    }
}

fn route(request: &Request) -> Option<&'static str> {
    let path = request.url.path();
    match (request.method.as_str(), path) {
        ("POST", "/oauth2/v1/token") => Some("token"),
        ("GET", "/api/v1/users") => Some("users"),
        ("GET", "/api/v1/groups") => Some("groups"),
        ("GET", p) => {
            let rest = p.strip_prefix("/api/v1/groups/")?;
            let (id, tail) = rest.split_once('/')?;
            (!id.is_empty() && tail == "users").then_some("members")
        }
        _ => None,
    }
}

impl OktaDouble {
    /// An empty org with one API token, 600 requests per minute per bucket, Okta's page sizes.
    pub async fn start() -> OktaDouble {
        let api_token = format!("00{}", super::double::new_id().replace('-', ""));
        let org = Org {
            base: String::new(),
            users: Vec::new(),
            by_id: HashMap::new(),
            groups: Vec::new(),
            next_id: 0,
            api_tokens: HashSet::from([api_token.clone()]),
            api_token_forbidden: false,
            app: None,
            access_tokens: HashMap::new(),
            token_lifetime: 3600,
            used_jtis: HashSet::new(),
            page_limit: None,
            rate_limit: 600,
            window: 60,
            windows: HashMap::new(),
            throttled: HashMap::new(),
            broken: HashMap::new(),
            served_pages: HashMap::new(),
            next_links: Vec::new(),
        };
        let double = HttpDouble::start(org, route, Org::handle).await;
        double.state().base = double.uri();
        OktaDouble { double, api_token }
    }

    fn state(&self) -> StateGuard<'_, Org> {
        self.double.state()
    }

    /// `http://127.0.0.1:<port>` (`orgUrl`).
    pub fn url(&self) -> String {
        self.double.uri()
    }

    pub fn api_token(&self) -> String {
        self.api_token.clone()
    }

    /// `source.okta` with the API token in Secret [`TOKEN_SECRET`] key `token`.
    pub fn token_spec(&self) -> dirsync::api::OktaSource {
        dirsync::api::OktaSource {
            org_url: self.url(),
            token_secret_ref: Some(dirsync::api::SecretKeyRef {
                name: TOKEN_SECRET.into(),
                key: "token".into(),
            }),
            ..Default::default()
        }
    }

    /// `source.okta` with the service app (private key in Secret [`APP_SECRET`] key `key.pem`).
    pub fn app_spec(&self) -> dirsync::api::OktaSource {
        dirsync::api::OktaSource {
            org_url: self.url(),
            oauth: Some(dirsync::api::OktaOAuth {
                client_id: APP_CLIENT_ID.into(),
                private_key_secret_ref: dirsync::api::SecretKeyRef {
                    name: APP_SECRET.into(),
                    key: "key.pem".into(),
                },
                key_id: Some(APP_KEY_ID.into()),
            }),
            ..Default::default()
        }
    }

    /// The Secrets of both specs: the API token, and the app's private key [`APP_KEY`].
    pub fn secrets(&self) -> MemorySecrets {
        MemorySecrets::new()
            .with(TOKEN_SECRET, "token", self.api_token())
            .with(APP_SECRET, "key.pem", APP_KEY)
    }

    // --- the directory ------------------------------------------------------------------------

    /// Adds a user (`lastUpdated` [`LONG_AGO`]) and returns its id.
    pub fn add_user(&self, user: NewUser) -> String {
        self.state().add_user(user, LONG_AGO)
    }

    /// Adds `n` users `user00000@<domain>`, ... quickly (benchmarks).
    pub fn add_users(&self, users: impl IntoIterator<Item = NewUser>) -> Vec<String> {
        let mut org = self.state();
        users.into_iter().map(|u| org.add_user(u, LONG_AGO)).collect()
    }

    /// Changes a user's status (a change: `lastUpdated` now).
    pub fn set_status(&self, id: &str, status: &str) {
        self.state().update_user(id, |u| u.status = status.to_string());
    }

    /// Changes a user's email (a change: `lastUpdated` now).
    pub fn set_email(&self, id: &str, email: &str) {
        self.state().update_user(id, |u| u.email = Some(email.to_string()));
    }

    /// Adds a group and returns its id.
    pub fn add_group(&self, name: &str, kind: GroupType, members: &[&str]) -> String {
        let mut org = self.state();
        let id = org.new_id("00g");
        org.groups.push(DGroup {
            id: id.clone(),
            name: name.to_string(),
            kind,
            last_updated: LONG_AGO.into(),
            last_membership_updated: LONG_AGO.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
        });
        id
    }

    /// Adds a member (a membership change: `lastMembershipUpdated` now).
    pub fn add_member(&self, group: &str, user: &str) {
        let mut org = self.state();
        let g = org
            .groups
            .iter_mut()
            .find(|g| g.id == group)
            .expect("a group of the double");
        g.members.push(user.to_string());
        g.last_membership_updated = okta_now();
    }

    /// Renames a group (a profile change: `lastUpdated` now).
    pub fn rename_group(&self, group: &str, name: &str) {
        let mut org = self.state();
        let g = org
            .groups
            .iter_mut()
            .find(|g| g.id == group)
            .expect("a group of the double");
        g.name = name.to_string();
        g.last_updated = okta_now();
    }

    // --- credentials --------------------------------------------------------------------------

    /// Revokes the API token: it gets 401 from now on.
    pub fn revoke_api_token(&self) {
        self.state().api_tokens.clear();
    }

    /// The API token's admin may not read users and groups (403).
    pub fn forbid_api_token(&self) {
        self.state().api_token_forbidden = true;
    }

    /// Registers the service app [`APP_CLIENT_ID`] with the public key of [`APP_KEY`] under
    /// [`APP_KEY_ID`], granted `scopes`.
    pub fn register_app(&self, scopes: &[&str]) {
        self.register_app_key(APP_KEY, Some(APP_KEY_ID), scopes);
    }

    /// Registers the service app with the public key of `private_pem` (RSA or EC P-256, PKCS#8).
    pub fn register_app_key(&self, private_pem: &str, kid: Option<&str>, scopes: &[&str]) {
        let (alg, public) = public_key(private_pem);
        self.state().app = Some(App {
            client_id: APP_CLIENT_ID.into(),
            keys: vec![(kid.map(str::to_string), alg, public)],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            dpop: false,
        });
    }

    /// The app requires DPoP proofs.
    pub fn require_dpop(&self) {
        if let Some(app) = self.state().app.as_mut() {
            app.dpop = true;
        }
    }

    /// Forgets every access token issued (the next API call gets 401).
    pub fn expire_access_tokens(&self) {
        self.state().access_tokens.clear();
    }

    /// Lifetime (`expires_in`) of new access tokens.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.state().token_lifetime = seconds;
    }

    /// Every access token issued.
    pub fn access_tokens_issued(&self) -> usize {
        self.requests_to("token").len()
    }

    // --- paging, limits and failures ---------------------------------------------------------

    /// Lists answer at most `limit` items a page, whatever the client asks (`None`: Okta's).
    pub fn set_page_limit(&self, limit: Option<usize>) {
        self.state().page_limit = limit;
    }

    /// `limit` requests per `window` in each bucket.
    pub fn set_rate_limit(&self, limit: u64, window: Duration) {
        let mut org = self.state();
        org.rate_limit = limit;
        org.window = window.as_secs().max(1);
        org.windows.clear();
    }

    /// 429s answered, by route.
    pub fn throttled(&self) -> HashMap<&'static str, usize> {
        self.state().throttled.clone()
    }

    /// After `pages` pages of `route`, the next link is broken as `how`.
    pub fn break_next_link(&self, route: &'static str, pages: usize, how: BrokenLink) {
        self.state().broken.insert(route, (pages, how));
    }

    /// Every answer waits `latency` first.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.double.set_latency(latency);
    }

    pub fn fail_next(&self, route: &'static str, times: usize, failure: Failure) {
        self.double.fail_next(route, times, failure);
    }

    pub fn fail_after(&self, route: &'static str, ok: usize, times: usize, failure: Failure) {
        self.double.fail_after(route, ok, times, failure);
    }

    /// Drops the programmed failures not yet used.
    pub fn clear_failures(&self) {
        self.double.clear_failures();
    }

    /// Every `rel="next"` link the double sent on `route`, in order.
    pub fn next_links(&self, route: &str) -> Vec<String> {
        self.state()
            .next_links
            .iter()
            .filter(|(r, _)| *r == route)
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.double.requests()
    }

    /// Requests to `"token"`, `"users"`, `"groups"` or `"members"`.
    pub fn requests_to(&self, route: &str) -> Vec<RecordedRequest> {
        self.double.requests_to(route)
    }
}

/// The algorithm and public key of a PKCS#8 private key.
pub fn public_key(private_pem: &str) -> (&'static str, Vec<u8>) {
    let body: String = private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = STANDARD.decode(body).expect("a PEM key");
    if let Ok(rsa) = RsaKeyPair::from_pkcs8(&der) {
        return ("RS256", rsa.public_key().as_ref().to_vec());
    }
    let rng = ring::rand::SystemRandom::new();
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng).expect("an RSA or P-256 key");
    ("ES256", ec.public_key().as_ref().to_vec())
}

/// A new P-256 private key in PEM (PKCS#8).
pub fn new_ec_key() -> String {
    let rng = ring::rand::SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(doc.as_ref())
    )
}

fn oauth_error(status: u16, error: &str, description: &str) -> ResponseTemplate {
    json_response(status, json!({"error": error, "error_description": description}))
}

/// The bucket of a route, and the scope it needs.
fn scope_of(route: &str) -> &'static str {
    if route == "users" {
        "okta.users.read"
    } else {
        "okta.groups.read"
    }
}

impl Org {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:017}", self.next_id)
    }

    fn add_user(&mut self, user: NewUser, last_updated: &str) -> String {
        let id = self.new_id("00u");
        let mut u = DUser {
            id: id.clone(),
            user,
            last_updated: last_updated.to_string(),
            json: String::new(),
        };
        u.json = self.render(&u);
        self.by_id.insert(id.clone(), self.users.len());
        self.users.push(u);
        id
    }

    fn update_user(&mut self, id: &str, change: impl FnOnce(&mut NewUser)) {
        let i = *self.by_id.get(id).expect("a user of the double");
        change(&mut self.users[i].user);
        self.users[i].last_updated = okta_now();
        let json = self.render(&self.users[i]);
        self.users[i].json = json;
    }

    /// A user as `GET /api/v1/users` returns it.
    fn render(&self, u: &DUser) -> String {
        let mut profile = json!({
            "firstName": u.user.login.split('@').next().unwrap_or_default(),
            "lastName": "Example",
            "mobilePhone": null,
            "secondEmail": null,
            "login": u.user.login,
            "email": u.user.email,
        });
        if u.user.email.is_none() {
            profile.as_object_mut().unwrap().remove("email");
        }
        if let Some(d) = &u.user.department {
            profile["department"] = json!(d);
        }
        json!({
            "id": u.id,
            "status": u.user.status,
            "created": LONG_AGO,
            "activated": null,
            "statusChanged": null,
            "lastLogin": null,
            "lastUpdated": u.last_updated,
            "passwordChanged": null,
            "type": {"id": "oty1162QAr8hJjTaq0g4"},
            "profile": profile,
            "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": format!("{}/api/v1/users/{}", self.base, u.id)}},
        })
        .to_string()
    }

    fn group_json(&self, g: &DGroup) -> String {
        json!({
            "id": g.id,
            "created": LONG_AGO,
            "lastUpdated": g.last_updated,
            "lastMembershipUpdated": g.last_membership_updated,
            "objectClass": ["okta:user_group"],
            "type": g.kind.as_str(),
            "profile": {"name": g.name, "description": null},
            "_links": {"users": {"href": format!("{}/api/v1/groups/{}/users", self.base, g.id)}},
        })
        .to_string()
    }

    fn handle(&mut self, route: &'static str, request: &Request) -> ResponseTemplate {
        // Rate limit first: every answer of the bucket carries its headers.
        let now = now_epoch();
        let (limit, window_len) = (self.rate_limit, self.window);
        let window = self.windows.entry(route).or_insert(Window { end: 0, used: 0 });
        if now >= window.end {
            *window = Window {
                end: now + window_len,
                used: 0,
            };
        }
        let headers = |remaining: u64, end: u64| {
            move |t: ResponseTemplate| {
                t.insert_header("x-rate-limit-limit", limit.to_string())
                    .insert_header("x-rate-limit-remaining", remaining.to_string())
                    .insert_header("x-rate-limit-reset", end.to_string())
                    .insert_header("date", http_date())
            }
        };
        if window.used >= limit {
            let end = window.end;
            *self.throttled.entry(route).or_default() += 1;
            return headers(0, end)(okta_error(
                429,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            ));
        }
        window.used += 1;
        let with_headers = headers(limit - window.used, window.end);
        if route == "token" {
            return with_headers(self.token(request));
        }
        if let Some(refusal) = self.refusal(route, request) {
            return with_headers(refusal);
        }
        with_headers(match route {
            "users" => self.users(request),
            "groups" => self.groups(request),
            _ => self.members(request),
        })
    }

    /// The answer to a request whose credentials may not call `route` (`None`: they may).
    fn refusal(&self, route: &str, request: &Request) -> Option<ResponseTemplate> {
        let invalid = || okta_error(401, "E0000011", "Invalid token provided");
        let Some(value) = header(request, "authorization") else {
            return Some(invalid());
        };
        if let Some(token) = value.strip_prefix("SSWS ") {
            if !self.api_tokens.contains(token) {
                return Some(invalid());
            }
            if self.api_token_forbidden {
                return Some(okta_error(
                    403,
                    "E0000006",
                    "You do not have permission to perform the requested action",
                ));
            }
            return None;
        }
        let Some(token) = value.strip_prefix("Bearer ") else {
            return Some(invalid());
        };
        let Some((scopes, expires)) = self.access_tokens.get(token) else {
            return Some(invalid().insert_header(
                "www-authenticate",
                "Bearer authorization_uri=\"/oauth2/v1/authorize\", realm=\"IdP\", scope=\"\", error=\"invalid_token\", \
                 error_description=\"The token is not valid.\"",
            ));
        };
        if Instant::now() >= *expires {
            return Some(invalid().insert_header(
                "www-authenticate",
                "Bearer realm=\"IdP\", error=\"invalid_token\", error_description=\"The token has expired.\"",
            ));
        }
        let needed = scope_of(route);
        if !scopes.iter().any(|s| s == needed) {
            return Some(
                okta_error(
                    403,
                    "E0000006",
                    "You do not have permission to perform the requested action",
                )
                .insert_header(
                    "www-authenticate",
                    format!(
                        "Bearer authorization_uri=\"/oauth2/v1/authorize\", realm=\"IdP\", scope=\"{needed}\", \
                     error=\"insufficient_scope\", error_description=\"The access token provided does not contain \
                     the required scopes.\", resource=\"{}\"",
                        request.url.path()
                    ),
                ),
            );
        }
        None
    }

    fn token(&mut self, request: &Request) -> ResponseTemplate {
        let content_type = header(request, "content-type").unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return oauth_error(400, "invalid_request", "The request must be form-encoded.");
        }
        let form: HashMap<String, String> = parse_form(&String::from_utf8_lossy(&request.body))
            .into_iter()
            .collect();
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
        if field("grant_type") != "client_credentials" {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported.",
            );
        }
        if field("client_assertion_type") != ASSERTION_TYPE {
            return oauth_error(401, "invalid_client", "client_assertion_type is invalid.");
        }
        let audience = format!("{}/oauth2/v1/token", self.base);
        let claims = match self.check_assertion(field("client_assertion"), &audience) {
            Ok(claims) => claims,
            Err(description) => return oauth_error(401, "invalid_client", &description),
        };
        let jti = claims["jti"].as_str().unwrap_or_default().to_string();
        if !self.used_jtis.insert(jti) {
            return oauth_error(
                401,
                "invalid_client",
                "The client_assertion token has already been used.",
            );
        }
        let app = self.app.as_ref().expect("checked");
        let asked: Vec<String> = field("scope").split_whitespace().map(str::to_string).collect();
        let refused: Vec<&String> = asked.iter().filter(|s| !app.scopes.contains(s)).collect();
        if asked.is_empty() || !refused.is_empty() {
            let list = refused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
            return oauth_error(
                400,
                "invalid_scope",
                &format!("The following scopes are not allowed: {list}"),
            );
        }
        if app.dpop && header(request, "dpop").is_none() {
            return oauth_error(400, "invalid_dpop_proof", "The DPoP proof JWT header is missing.");
        }
        let token = format!("eyJraWQiOiJ.{}", super::double::new_id().replace('-', ""));
        self.access_tokens.insert(
            token.clone(),
            (asked.clone(), Instant::now() + Duration::from_secs(self.token_lifetime)),
        );
        json_response(
            200,
            json!({
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "access_token": token,
                "scope": asked.join(" "),
            }),
        )
    }

    /// Checks a client assertion as Okta does; returns its claims or the `error_description`.
    fn check_assertion(&self, jwt: &str, audience: &str) -> Result<Value, String> {
        let app = self
            .app
            .as_ref()
            .ok_or("The client_assertion token is invalid: no such client.")?;
        let parts: Vec<&str> = jwt.split('.').collect();
        let [h, c, s] = parts[..] else {
            return Err("The client_assertion token is malformed.".into());
        };
        let decode = |p: &str| -> Result<Value, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(p)
                .map_err(|_| "The client_assertion token is malformed.")?;
            serde_json::from_slice(&bytes).map_err(|_| "The client_assertion token is malformed.".into())
        };
        let (header, claims) = (decode(h)?, decode(c)?);
        let alg = header["alg"].as_str().unwrap_or_default();
        let kid = header["kid"].as_str();
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "The client_assertion token is malformed.")?;
        let signed = format!("{h}.{c}");
        let candidates: Vec<_> = app
            .keys
            .iter()
            .filter(|(k, a, _)| *a == alg && (kid.is_none() || k.as_deref() == kid))
            .collect();
        if candidates.is_empty() {
            return Err(format!(
                "The client_assertion signature is invalid: no registered key for alg {alg:?} and kid {kid:?}."
            ));
        }
        let verified = candidates.iter().any(|(_, a, public)| {
            let algorithm: &dyn VerificationAlgorithm = if *a == "RS256" {
                &RSA_PKCS1_2048_8192_SHA256
            } else {
                &ECDSA_P256_SHA256_FIXED
            };
            UnparsedPublicKey::new(algorithm, public)
                .verify(signed.as_bytes(), &signature)
                .is_ok()
        });
        if !verified {
            return Err("The client_assertion signature is invalid.".into());
        }
        let text = |k: &str| claims[k].as_str().unwrap_or_default();
        if text("iss") != app.client_id || text("sub") != app.client_id {
            return Err("The client_assertion token's iss and sub must be the client_id.".into());
        }
        if text("aud") != audience {
            return Err(format!("The audience claim for client_assertion must be '{audience}'."));
        }
        let now = now_epoch() as i64;
        let exp = claims["exp"]
            .as_i64()
            .ok_or("The client_assertion token has no expiration.")?;
        if exp <= now {
            return Err("The client_assertion token is expired.".into());
        }
        if exp > now + 3600 {
            return Err("The client_assertion token has an expiration too far into the future.".into());
        }
        if text("jti").is_empty() {
            return Err("The client_assertion token must have a jti claim.".into());
        }
        Ok(claims)
    }

    fn users(&mut self, request: &Request) -> ResponseTemplate {
        let query = |name: &str| super::double::query_param(request, name);
        let (filter, search) = (query("filter"), query("search"));
        if filter.is_some() && search.is_some() {
            return okta_error(400, "E0000031", "Invalid search criteria.");
        }
        let matcher = match (&filter, &search) {
            (Some(f), _) => Expr::parse(f, Dialect::UserFilter),
            (_, Some(s)) => Expr::parse(s, Dialect::UserSearch),
            _ => Ok(Expr::NotDeprovisioned),
        };
        let matcher = match matcher {
            Ok(m) => m,
            Err(why) => {
                return json_response(400, {
                    let mut body = error_body("E0000031", "Invalid search criteria.");
                    body["errorCauses"] = json!([{"errorSummary": why}]);
                    body
                });
            }
        };
        let items: Vec<(&str, &str)> = self
            .users
            .iter()
            .filter(|u| matcher.matches(&user_attributes(u)))
            .map(|u| (u.id.as_str(), u.json.as_str()))
            .collect();
        let pager = pager(
            &self.base,
            self.page_limit,
            &mut self.served_pages,
            &self.broken,
            "users",
        );
        let (t, next) = page(pager, request, &items, 200, 200);
        self.next_links.extend(next.map(|n| ("users", n)));
        t
    }

    fn groups(&mut self, request: &Request) -> ResponseTemplate {
        if super::double::query_param(request, "search").is_some() || super::double::query_param(request, "q").is_some()
        {
            return okta_error(400, "E0000031", "The double serves filter only.");
        }
        let matcher = match super::double::query_param(request, "filter") {
            Some(f) => match Expr::parse(&f, Dialect::GroupFilter) {
                Ok(m) => m,
                Err(why) => {
                    let mut body = error_body("E0000031", "Invalid search criteria.");
                    body["errorCauses"] = json!([{"errorSummary": why}]);
                    return json_response(400, body);
                }
            },
            None => Expr::All,
        };
        let rendered: Vec<(String, String)> = self
            .groups
            .iter()
            .filter(|g| matcher.matches(&group_attributes(g)))
            .map(|g| (g.id.clone(), self.group_json(g)))
            .collect();
        let items: Vec<(&str, &str)> = rendered.iter().map(|(i, j)| (i.as_str(), j.as_str())).collect();
        let pager = pager(
            &self.base,
            self.page_limit,
            &mut self.served_pages,
            &self.broken,
            "groups",
        );
        let (t, next) = page(pager, request, &items, 10_000, 10_000);
        self.next_links.extend(next.map(|n| ("groups", n)));
        t
    }

    fn members(&mut self, request: &Request) -> ResponseTemplate {
        let id = request
            .url
            .path()
            .trim_start_matches("/api/v1/groups/")
            .trim_end_matches("/users");
        let Some(g) = self.groups.iter().position(|g| g.id == id) else {
            return okta_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {id} (UserGroup)"),
            );
        };
        let mut ids: Vec<usize> = self.groups[g]
            .members
            .iter()
            .filter_map(|m| self.by_id.get(m).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let pager = pager(
            &self.base,
            self.page_limit,
            &mut self.served_pages,
            &self.broken,
            "members",
        );
        let items: Vec<(&str, &str)> = ids
            .into_iter()
            .map(|i| (self.users[i].id.as_str(), self.users[i].json.as_str()))
            .collect();
        let (t, next) = page(pager, request, &items, 1000, usize::MAX);
        self.next_links.extend(next.map(|n| ("members", n)));
        t
    }
}

struct Pager<'a> {
    base: &'a str,
    page_limit: Option<usize>,
    /// The next link of this page is broken so.
    broken: Option<BrokenLink>,
}

/// What paging needs of the org, beside the items it pages (fields borrowed one by one).
fn pager<'a>(
    base: &'a str,
    page_limit: Option<usize>,
    served_pages: &mut HashMap<&'static str, usize>,
    broken: &HashMap<&'static str, (usize, BrokenLink)>,
    route: &'static str,
) -> Pager<'a> {
    let served = served_pages.entry(route).or_default();
    *served += 1;
    Pager {
        base,
        page_limit,
        broken: broken
            .get(route)
            .filter(|(pages, _)| *served > *pages)
            .map(|(_, how)| *how),
    }
}

/// One page of `items` (id, JSON; sorted by id) after the `after` cursor, with `Link` headers:
/// `self`, and `next` while more remain.
fn page(
    pager: Pager<'_>,
    request: &Request,
    items: &[(&str, &str)],
    default_limit: usize,
    max_limit: usize,
) -> (ResponseTemplate, Option<String>) {
    let limit = match super::double::query_param(request, "limit") {
        None => default_limit,
        Some(l) => match l.parse::<usize>() {
            Ok(l) if l > 0 => l.min(max_limit),
            _ => return (okta_error(400, "E0000001", "Api validation failed: limit"), None),
        },
    };
    let limit = pager.page_limit.map_or(limit, |p| limit.min(p));
    let start = match super::double::query_param(request, "after") {
        None => 0,
        Some(after) => match items.iter().position(|(id, _)| *id == after) {
            Some(i) => i + 1,
            // An id cursor of an entry deleted meanwhile: the list goes on after it.
            None if after.starts_with("00") && after.len() == 20 => {
                items.partition_point(|(id, _)| *id <= after.as_str())
            }
            None => return (okta_error(400, "E0000001", "Api validation failed: after"), None),
        },
    };
    let end = (start + limit).min(items.len());
    let mut body = String::with_capacity(items[start..end].iter().map(|(_, j)| j.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, (_, json)) in items[start..end].iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(json);
    }
    body.push(']');
    let self_url = format!("{}{}", pager.base, request_target(request));
    let mut t = ResponseTemplate::new(200)
        .set_body_raw(body.into_bytes(), "application/json")
        .append_header("link", format!("<{self_url}>; rel=\"self\""));
    if end < items.len() {
        let last = items[end - 1].0;
        let mut url = url::Url::parse(&self_url).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "after")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .append_pair("after", last)
            .extend_pairs(pairs);
        let next = match pager.broken {
            None => url.to_string(),
            Some(BrokenLink::OtherHost) => url.to_string().replace("127.0.0.1", "localhost"),
            Some(BrokenLink::Repeat) => self_url.clone(),
            Some(BrokenLink::Garbage) => "::not a url::".into(),
        };
        t = t.append_header("link", format!("<{next}>; rel=\"next\""));
        return (t, Some(next));
    }
    (t, None)
}

fn request_target(request: &Request) -> String {
    match request.url.query() {
        Some(q) => format!("{}?{q}", request.url.path()),
        None => request.url.path().to_string(),
    }
}

fn user_attributes(u: &DUser) -> HashMap<&'static str, String> {
    let mut a = HashMap::from([
        ("id", u.id.clone()),
        ("status", u.user.status.clone()),
        ("lastUpdated", u.last_updated.clone()),
        ("profile.login", u.user.login.clone()),
        (
            "profile.firstName",
            u.user.login.split('@').next().unwrap_or_default().to_string(),
        ),
        ("profile.lastName", "Example".to_string()),
    ]);
    if let Some(e) = &u.user.email {
        a.insert("profile.email", e.clone());
    }
    if let Some(d) = &u.user.department {
        a.insert("profile.department", d.clone());
    }
    a
}

fn group_attributes(g: &DGroup) -> HashMap<&'static str, String> {
    HashMap::from([
        ("id", g.id.clone()),
        ("type", g.kind.as_str().to_string()),
        ("lastUpdated", g.last_updated.clone()),
        ("lastMembershipUpdated", g.last_membership_updated.clone()),
        ("profile.name", g.name.clone()),
    ])
}

/// Which query language, and so which attributes and operators are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    UserFilter,
    UserSearch,
    GroupFilter,
}

const TIMES: [&str; 2] = ["lastUpdated", "lastMembershipUpdated"];

/// A parsed `filter` / `search` expression.
#[derive(Debug)]
enum Expr {
    All,
    NotDeprovisioned,
    Compare {
        attr: String,
        op: String,
        value: String,
        ci: bool,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    fn parse(text: &str, dialect: Dialect) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, at: 0, dialect };
        let e = p.or()?;
        if p.at != p.tokens.len() {
            return Err(format!("unexpected {:?}", p.tokens[p.at]));
        }
        Ok(e)
    }

    fn matches(&self, attrs: &HashMap<&'static str, String>) -> bool {
        match self {
            Expr::All => true,
            Expr::NotDeprovisioned => attrs.get("status").is_none_or(|s| s != "DEPROVISIONED"),
            Expr::And(a, b) => a.matches(attrs) && b.matches(attrs),
            Expr::Or(a, b) => a.matches(attrs) || b.matches(attrs),
            Expr::Compare { attr, op, value, ci } => {
                let Some(have) = attrs.get(attr.as_str()) else {
                    return false;
                };
                let (have, value) = if *ci {
                    (have.to_lowercase(), value.to_lowercase())
                } else {
                    (have.clone(), value.clone())
                };
                match op.as_str() {
                    "eq" => have == value,
                    "sw" => have.starts_with(&value),
                    "co" => have.contains(&value),
                    "pr" => true,
                    "gt" => have > value,
                    "ge" => have >= value,
                    "lt" => have < value,
                    "le" => have <= value,
                    _ => false,
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => s.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                out.push(Token::Text(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    dialect: Dialect,
}

impl Parser {
    fn keyword(&mut self, k: &str) -> bool {
        if let Some(Token::Word(w)) = self.tokens.get(self.at)
            && w.eq_ignore_ascii_case(k)
        {
            self.at += 1;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.keyword("or") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        while self.keyword("and") {
            e = Expr::And(Box::new(e), Box::new(self.primary()?));
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Open) => {
                self.at += 1;
                let e = self.or()?;
                if self.tokens.get(self.at) != Some(&Token::Close) {
                    return Err("missing )".into());
                }
                self.at += 1;
                Ok(e)
            }
            Some(Token::Word(attr)) => {
                self.at += 1;
                let Some(Token::Word(op)) = self.tokens.get(self.at).cloned() else {
                    return Err(format!("no operator after {attr}"));
                };
                self.at += 1;
                let op = op.to_lowercase();
                let value = if op == "pr" {
                    String::new()
                } else {
                    match self.tokens.get(self.at).cloned() {
                        Some(Token::Text(v)) => {
                            self.at += 1;
                            v
                        }
                        Some(Token::Word(v)) if v == "true" || v == "false" || v.parse::<f64>().is_ok() => {
                            self.at += 1;
                            v
                        }
                        other => return Err(format!("no value after {attr} {op} (got {other:?})")),
                    }
                };
                self.check(&attr, &op)?;
                Ok(Expr::Compare {
                    ci: self.dialect == Dialect::UserSearch,
                    attr,
                    op,
                    value,
                })
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    /// What each dialect allows (the vendor's descriptions of `filter` and `search`).
    fn check(&self, attr: &str, op: &str) -> Result<(), String> {
        let comparisons = ["gt", "ge", "lt", "le"];
        let ok = match self.dialect {
            Dialect::UserFilter => {
                let attrs = [
                    "status",
                    "lastUpdated",
                    "id",
                    "profile.login",
                    "profile.email",
                    "profile.firstName",
                    "profile.lastName",
                ];
                attrs.contains(&attr) && (op == "eq" || (attr == "lastUpdated" && comparisons.contains(&op)))
            }
            Dialect::GroupFilter => {
                ["id", "type", "lastUpdated", "lastMembershipUpdated"].contains(&attr)
                    && (op == "eq" || (TIMES.contains(&attr) && comparisons.contains(&op)))
            }
            Dialect::UserSearch => {
                let co = [
                    "profile.firstName",
                    "profile.lastName",
                    "profile.email",
                    "profile.login",
                ];
                let known = attr.starts_with("profile.")
                    || [
                        "id",
                        "status",
                        "created",
                        "activated",
                        "statusChanged",
                        "lastUpdated",
                        "type.id",
                    ]
                    .contains(&attr);
                known
                    && match op {
                        "co" => co.contains(&attr),
                        "eq" | "sw" | "pr" => true,
                        o => comparisons.contains(&o),
                    }
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{attr} {op} is not supported in this query"))
        }
    }
}
