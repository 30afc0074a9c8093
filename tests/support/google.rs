//! A Google Workspace double: the OAuth token endpoint of a service account with domain-wide
//! delegation and the Admin SDK Directory API (`users.list`, `groups.list`, `members.list`), as
//! `/work/shared/spec/providers.md` §2 and the discovery document describe them.
//!
//! ```ignore
//! let g = GoogleDouble::start().await;               // domain corp.example, admin@corp.example
//! let alice = g.add_user(GUser::new("alice@corp.example"));
//! let eng = g.add_group("Engineering");
//! g.add_member(&eng, GMember::user(&alice));
//! g.set_page_sizes(2, 2, 2);                          // several pages of every list
//! let mut source = g.source().await;                 // the real reader, fast retries
//! g.fail_next(route::USERS, 1, Failure::google_rate_limited("userRateLimitExceeded"));
//! ```
//!
//! What it enforces:
//! - `POST /token`: `application/x-www-form-urlencoded` with `grant_type` =
//!   `urn:ietf:params:oauth:grant-type:jwt-bearer` (else 400 `unsupported_grant_type`) and an
//!   `assertion`: an RS256 JWT whose signature verifies with the service account's public key
//!   (else 400 `invalid_grant` "Invalid JWT Signature."), `iss` = the service account (else
//!   `invalid_grant` "Invalid grant: account not found"), `aud` = this token URL, `iat`/`exp`
//!   present, `exp - iat` at most 3600 s and now within them (else `invalid_grant` "Invalid JWT:
//!   Token must be a short-lived token..."), `sub` = an existing user (else `invalid_grant`
//!   "Invalid email or User ID"), and every `scope` granted to the client id under domain-wide
//!   delegation (else 401 `unauthorized_client`). Success: `{access_token, expires_in: 3599,
//!   token_type: "Bearer"}`.
//! - Every API call needs `Authorization: Bearer <issued, unexpired token>` (else 401 with
//!   Google's `authError` body), a token with the endpoint's scope (else 403
//!   `insufficientPermissions`), and a `sub` who is an admin (else 403 `forbidden`, "Not
//!   Authorized to access this resource/api"). Unknown query parameters are refused (400).
//! - `users.list` / `groups.list` need `customer` (`my_customer` or the id) or `domain` (one of
//!   the account's; else 403 `forbidden`); `domain` restricts the answer to that domain even when
//!   `customer` is given. `maxResults` within the discovery document's range (else 400);
//!   `showDeleted=true` lists only deleted users; `query` (a small subset of the search syntax:
//!   `orgUnitPath='/X'`, `isSuspended=`, `isArchived=`, `email:prefix*` for users; `name:'X'`,
//!   `email:prefix*` for groups; else 400); `fields` partial responses.
//! - `members.list` on a group id or email (else 404 `notFound`).
//! - Pages: at most `min(maxResults, page size of the double)` items and an opaque
//!   `nextPageToken`, valid only with otherwise identical parameters (else 400); an empty list
//!   omits its key, as Google does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use dirsync::api::{GoogleWorkspaceSource, SecretKeyRef};
use dirsync::source::google::GoogleSource;
use dirsync::source::google::client::{ClientOptions, JWT_BEARER, SCOPES};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use wiremock::{Request, ResponseTemplate};

pub use super::double::{Failure, RecordedRequest};
use super::double::{HttpDouble, StateGuard, header, json_response, page, parse_form};
use super::secrets::MemorySecrets;

pub const TOKEN_PATH: &str = "/token";
pub const API: &str = "/admin/directory/v1";
pub const DOMAIN: &str = "corp.example";
pub const OTHER_DOMAIN: &str = "corp-two.example";
pub const CUSTOMER_ID: &str = "C03az79cb";
pub const ADMIN: &str = "admin@corp.example";
pub const SERVICE_ACCOUNT: &str = "dirsync-reader@corp-project.iam.gserviceaccount.com";
pub const CLIENT_ID: &str = "104857392018374650123";
pub const KEY_ID: &str = "5d1f8e2a9c7b4e6f8a0b1c2d3e4f5a6b7c8d9e0f";
pub const SECRET_NAME: &str = "google-sa";
pub const SECRET_KEY: &str = "key.json";

/// The test fixture keys (`google-keys/`): PEM text after the fixture's comment lines.
pub fn private_key_pem() -> &'static str {
    pem_part(include_str!("google-keys/service-account.pem"))
}

pub fn public_key_pem() -> &'static str {
    pem_part(include_str!("google-keys/service-account.pub.pem"))
}

/// The public key of a key the service account does not sign with.
pub fn other_public_key_pem() -> &'static str {
    pem_part(include_str!("google-keys/other.pub.pem"))
}

fn pem_part(text: &str) -> &str {
    &text[text.find("-----BEGIN").expect("a PEM block")..]
}

/// The double's routes (the metrics' operation names).
pub mod route {
    pub const TOKEN: &str = "token";
    pub const USERS: &str = "list_users";
    pub const DELETED_USERS: &str = "list_deleted_users";
    pub const GROUPS: &str = "list_groups";
    pub const MEMBERS: &str = "list_members";
    pub const ALL: [&str; 5] = [TOKEN, USERS, DELETED_USERS, GROUPS, MEMBERS];
}

/// Google's error bodies among the toolkit's failures.
impl Failure {
    /// `{"error": {"code", "message", "errors": [{"message", "domain", "reason"}], "status"}}`.
    pub fn google(code: u16, message: &str, reason: &str, status: &str) -> Failure {
        Failure::json(code, google_error(code, message, reason, status))
    }

    /// 403 with a rate-limit reason (`userRateLimitExceeded`, `rateLimitExceeded`,
    /// `quotaExceeded`), as the Directory API throttles.
    pub fn google_rate_limited(reason: &str) -> Failure {
        let message = match reason {
            "quotaExceeded" => "Quota exceeded for the concurrent request limit.",
            _ => {
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com' for consumer 'project_number:123456789012'."
            }
        };
        Failure::json(
            403,
            json!({"error": {"code": 403, "message": message,
                "errors": [{"message": message, "domain": "usageLimits", "reason": reason}],
                "status": "PERMISSION_DENIED"}}),
        )
    }

    /// 429 `RESOURCE_EXHAUSTED`, with `Retry-After` when given.
    pub fn google_too_many(retry_after: Option<&str>) -> Failure {
        let f = Failure::google(
            429,
            "Resource has been exhausted (e.g. check quota).",
            "rateLimitExceeded",
            "RESOURCE_EXHAUSTED",
        );
        match retry_after {
            Some(v) => f.header("retry-after", v),
            None => f,
        }
    }

    /// 503 `backendError`.
    pub fn google_unavailable() -> Failure {
        Failure::google(
            503,
            "The service is currently unavailable.",
            "backendError",
            "UNAVAILABLE",
        )
    }
}

pub fn google_error(code: u16, message: &str, reason: &str, status: &str) -> Value {
    json!({"error": {"code": code, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        "status": status}})
}

/// A directory user to add ([`GoogleDouble::add_user`]).
#[derive(Clone, Debug)]
pub struct GUser {
    pub email: String,
    pub suspended: bool,
    pub archived: bool,
    /// Without `emails` (the reference leaves such users out unless deleted).
    pub no_emails: bool,
    pub deleted: bool,
    pub org_unit: String,
    pub admin: bool,
}

impl GUser {
    pub fn new(email: &str) -> GUser {
        GUser {
            email: email.to_string(),
            suspended: false,
            archived: false,
            no_emails: false,
            deleted: false,
            org_unit: "/".into(),
            admin: false,
        }
    }

    pub fn suspended(self) -> GUser {
        GUser {
            suspended: true,
            ..self
        }
    }

    pub fn archived(self) -> GUser {
        GUser { archived: true, ..self }
    }

    pub fn deleted(self) -> GUser {
        GUser { deleted: true, ..self }
    }

    pub fn no_emails(self) -> GUser {
        GUser {
            no_emails: true,
            ..self
        }
    }

    pub fn in_org_unit(self, path: &str) -> GUser {
        GUser {
            org_unit: path.to_string(),
            ..self
        }
    }

    pub fn admin(self) -> GUser {
        GUser { admin: true, ..self }
    }
}

/// A group member to add ([`GoogleDouble::add_member`]).
#[derive(Clone, Debug)]
pub enum GMember {
    /// A user by id, with its member `status` (`ACTIVE`, `SUSPENDED`, or none).
    User {
        id: String,
        status: Option<String>,
    },
    Group {
        id: String,
    },
    /// The whole account.
    Customer,
    /// Someone outside the account.
    External {
        email: String,
    },
}

impl GMember {
    pub fn user(id: &str) -> GMember {
        GMember::User {
            id: id.to_string(),
            status: Some("ACTIVE".into()),
        }
    }

    pub fn user_with_status(id: &str, status: Option<&str>) -> GMember {
        GMember::User {
            id: id.to_string(),
            status: status.map(str::to_string),
        }
    }

    pub fn group(id: &str) -> GMember {
        GMember::Group { id: id.to_string() }
    }
}

/// One token request as the double decoded it (after checking it).
#[derive(Clone, Debug)]
pub struct Assertion {
    pub header: Value,
    pub claims: Value,
}

struct Issued {
    expires: Instant,
    subject: String,
    scopes: Vec<String>,
}

pub struct State {
    base: String,
    public_key: String,
    /// Scopes granted to [`CLIENT_ID`] under domain-wide delegation (`None`: not granted).
    delegation: Option<Vec<String>>,
    users: Vec<Value>,
    deleted: Vec<Value>,
    admins: HashSet<String>,
    groups: Vec<Value>,
    members: HashMap<String, Vec<Value>>,
    page_sizes: (usize, usize, usize),
    tokens: HashMap<String, Issued>,
    expires_in: u64,
    assertions: Vec<Assertion>,
    next_id: u64,
    member_arrivals: Vec<Instant>,
    /// Group positions by id and by email.
    group_index: HashMap<String, usize>,
    /// Positions of the items of each listing (path and parameters but the page token).
    listings: HashMap<String, Vec<usize>>,
}

/// The double.
pub struct GoogleDouble {
    double: HttpDouble<State>,
    admin_id: String,
}

impl GoogleDouble {
    /// An account with the domains [`DOMAIN`] and [`OTHER_DOMAIN`] and one user, the super admin
    /// [`ADMIN`]; domain-wide delegation grants [`CLIENT_ID`] exactly Directory Connector's scopes.
    /// Pages of 500 users / 200 groups / 200 members, as Google at most.
    pub async fn start() -> GoogleDouble {
        let state = State {
            base: String::new(),
            public_key: public_key_pem().to_string(),
            delegation: Some(SCOPES.iter().map(|s| s.to_string()).collect()),
            users: Vec::new(),
            deleted: Vec::new(),
            admins: HashSet::new(),
            groups: Vec::new(),
            members: HashMap::new(),
            page_sizes: (500, 200, 200),
            tokens: HashMap::new(),
            expires_in: 3599,
            assertions: Vec::new(),
            next_id: 0,
            member_arrivals: Vec::new(),
            group_index: HashMap::new(),
            listings: HashMap::new(),
        };
        let double = HttpDouble::start(state, route_of, State::handle).await;
        double.state().base = double.uri();
        let mut g = GoogleDouble {
            double,
            admin_id: String::new(),
        };
        g.admin_id = g.add_user(GUser::new(ADMIN).admin());
        g
    }

    /// The id of [`ADMIN`].
    pub fn admin_id(&self) -> String {
        self.admin_id.clone()
    }

    fn state(&self) -> StateGuard<'_, State> {
        self.double.state()
    }

    // --- where it is and how to log in --------------------------------------------------------

    pub fn uri(&self) -> String {
        self.double.uri()
    }

    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.uri())
    }

    /// The service account's JSON key file, as the Cloud console downloads it (`token_uri` is
    /// this double).
    pub fn key_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "corp-project",
            "private_key_id": KEY_ID,
            "private_key": private_key_pem(),
            "client_email": SERVICE_ACCOUNT,
            "client_id": CLIENT_ID,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/dirsync-reader%40corp-project.iam.gserviceaccount.com",
            "universe_domain": "googleapis.com"
        })
        .to_string()
    }

    /// `spec.source.googleWorkspace` for this double: domain [`DOMAIN`], admin [`ADMIN`].
    pub fn spec(&self) -> GoogleWorkspaceSource {
        GoogleWorkspaceSource {
            domain: Some(DOMAIN.into()),
            customer: None,
            admin_email: ADMIN.into(),
            service_account_key_secret_ref: SecretKeyRef {
                name: SECRET_NAME.into(),
                key: SECRET_KEY.into(),
            },
            user_filter: None,
            group_filter: None,
            api_url: Some(self.uri()),
        }
    }

    /// The Secret [`GoogleDouble::spec`] refers to.
    pub fn secrets(&self) -> MemorySecrets {
        MemorySecrets::new().with(SECRET_NAME, SECRET_KEY, self.key_json())
    }

    /// Client options for tests: millisecond retries.
    pub fn fast_options() -> ClientOptions {
        ClientOptions {
            retry: dirsync::net::RetryPolicy {
                max_attempts: 6,
                ..dirsync::net::RetryPolicy::fast()
            },
            ..ClientOptions::default()
        }
    }

    /// The real reader on [`GoogleDouble::spec`], with fast retries.
    pub async fn source(&self) -> GoogleSource {
        self.source_with(&self.spec(), Self::fast_options()).await
    }

    pub async fn source_with(&self, spec: &GoogleWorkspaceSource, options: ClientOptions) -> GoogleSource {
        GoogleSource::connect(spec, &self.secrets(), options)
            .await
            .expect("connect to the Google double")
    }

    // --- the directory -------------------------------------------------------------------------

    fn new_id(&self, digits: usize) -> String {
        let mut s = self.state();
        s.next_id += 1;
        let n = s.next_id;
        // Google ids: 21-digit numbers for users, 15-character strings for groups.
        if digits == 21 {
            format!("1{:020}", 3_586_451_260_537_158_349u64 + n)
        } else {
            format!("01x0gk{n:09x}")
        }
    }

    /// Adds a user; returns its id.
    pub fn add_user(&self, user: GUser) -> String {
        let id = self.new_id(21);
        let v = user_object(&id, &user);
        let mut s = self.state();
        if user.deleted {
            s.deleted.push(v);
        } else {
            if user.admin {
                s.admins.insert(user.email.to_lowercase());
            }
            s.users.push(v);
        }
        s.changed();
        id
    }

    /// Adds a group named `name` (email `<name>@corp.example`); returns its id.
    pub fn add_group(&self, name: &str) -> String {
        let email = format!("{}@{DOMAIN}", name.to_lowercase().replace(' ', "-"));
        self.add_group_with_email(name, &email)
    }

    pub fn add_group_with_email(&self, name: &str, email: &str) -> String {
        let id = self.new_id(15);
        let mut s = self.state();
        s.groups.push(group_object(&id, name, email, 0));
        s.changed();
        s.members.insert(id.clone(), Vec::new());
        id
    }

    /// Adds a member to the group with id `group`.
    pub fn add_member(&self, group: &str, member: GMember) {
        let mut s = self.state();
        let email_of = |list: &[Value], id: &str| {
            list.iter()
                .find(|v| v["id"] == id)
                .and_then(|v| v["primaryEmail"].as_str().or(v["email"].as_str()))
                .map(str::to_string)
        };
        let email = match &member {
            GMember::User { id, .. } => email_of(&s.users, id).or_else(|| email_of(&s.deleted, id)),
            GMember::Group { id } => email_of(&s.groups, id),
            _ => None,
        };
        let v = member_object(&member, email.as_deref());
        let list = s.members.get_mut(group).expect("add_member: no such group");
        list.push(v);
        let count = list.len().to_string();
        if let Some(g) = s.groups.iter_mut().find(|g| g["id"] == group) {
            g["directMembersCount"] = json!(count);
        }
    }

    /// Adds many users, groups and members at once, as objects built with [`user_object`],
    /// [`group_object`] and [`member_object`] (benchmarks).
    pub fn load(&self, users: Vec<Value>, groups: Vec<Value>, members: HashMap<String, Vec<Value>>) {
        let mut s = self.state();
        s.users.extend(users);
        s.groups.extend(groups);
        s.members.extend(members);
        s.changed();
    }

    // --- programming it ----------------------------------------------------------------------

    /// At most this many users / groups / members a page, whatever `maxResults` asks (Google may
    /// answer fewer than asked).
    pub fn set_page_sizes(&self, users: usize, groups: usize, members: usize) {
        self.state().page_sizes = (users, groups, members);
    }

    /// The scopes domain-wide delegation grants to [`CLIENT_ID`] (`None`: not granted at all).
    pub fn set_delegation(&self, scopes: Option<&[&str]>) {
        self.state().delegation = scopes.map(|s| s.iter().map(|x| x.to_string()).collect());
    }

    /// Makes `email` an admin or takes its admin role away.
    pub fn set_admin(&self, email: &str, admin: bool) {
        let mut s = self.state();
        if admin {
            s.admins.insert(email.to_lowercase());
        } else {
            s.admins.remove(&email.to_lowercase());
        }
    }

    /// The public key that the service account's assertions must verify with.
    pub fn set_public_key(&self, pem: &str) {
        self.state().public_key = pem.to_string();
    }

    /// Makes every issued token unknown: the next API call gets a 401.
    pub fn expire_tokens(&self) {
        self.state().tokens.clear();
    }

    pub fn set_expires_in(&self, seconds: u64) {
        self.state().expires_in = seconds;
    }

    pub fn set_latency(&self, latency: Option<Duration>) {
        self.double.set_latency(latency);
    }

    pub fn fail_next(&self, route: &'static str, times: usize, failure: Failure) {
        self.double.fail_next(route, times, failure);
    }

    pub fn fail_after(&self, route: &'static str, ok: usize, times: usize, failure: Failure) {
        self.double.fail_after(route, ok, times, failure);
    }

    pub fn clear_failures(&self) {
        self.double.clear_failures();
    }

    // --- what happened -------------------------------------------------------------------------

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.double.requests()
    }

    pub fn requests_to(&self, route: &str) -> Vec<RecordedRequest> {
        self.double.requests_to(route)
    }

    /// Requests by route.
    pub fn request_counts(&self) -> BTreeMap<String, usize> {
        route::ALL
            .iter()
            .map(|r| (r.to_string(), self.requests_to(r).len()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// When each member list request arrived.
    pub fn member_arrivals(&self) -> Vec<Instant> {
        self.state().member_arrivals.clone()
    }

    /// Every object the double serves, by its schema name in the discovery document (`User`,
    /// `Group`, `Member`, and the list envelopes `Users`, `Groups`, `Members`).
    pub fn sample_objects(&self) -> Vec<(&'static str, Value)> {
        let s = self.state();
        let mut out: Vec<(&'static str, Value)> = Vec::new();
        out.extend(s.users.iter().chain(&s.deleted).map(|u| ("User", u.clone())));
        out.extend(s.groups.iter().map(|g| ("Group", g.clone())));
        out.extend(s.members.values().flatten().map(|m| ("Member", m.clone())));
        for (name, key) in [("Users", "users"), ("Groups", "groups"), ("Members", "members")] {
            out.push((name, json!({"kind": "k", "etag": "e", key: [], "nextPageToken": "t"})));
        }
        out
    }

    /// The assertions the token endpoint accepted, decoded.
    pub fn assertions(&self) -> Vec<Assertion> {
        self.state().assertions.clone()
    }
}

/// A user as `users.list` returns it (`projection=basic`); deleted users carry `deletionTime`.
pub fn user_object(id: &str, user: &GUser) -> Value {
    let local = user.email.split('@').next().unwrap_or_default();
    let mut chars = local.chars();
    let first = chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>())
        .unwrap_or_default();
    let (given, family) = (format!("{first}{}", chars.as_str()), "Example");
    let mut v = json!({
        "kind": "admin#directory#user",
        "id": id,
        "etag": format!("\"etag-{id}\""),
        "primaryEmail": user.email,
        "name": {"givenName": given, "familyName": family, "fullName": format!("{given} {family}")},
        "isAdmin": user.admin,
        "isDelegatedAdmin": false,
        "lastLoginTime": "2026-06-30T08:12:45.000Z",
        "creationTime": "2021-03-04T10:00:00.000Z",
        "agreedToTerms": true,
        "suspended": user.suspended,
        "archived": user.archived,
        "changePasswordAtNextLogin": false,
        "ipWhitelisted": false,
        "emails": [{"address": user.email, "primary": true}],
        "customerId": CUSTOMER_ID,
        "orgUnitPath": user.org_unit,
        "isMailboxSetup": true,
        "isEnrolledIn2Sv": false,
        "isEnforcedIn2Sv": false,
        "includeInGlobalAddressList": true
    });
    if user.no_emails {
        v.as_object_mut().expect("an object").remove("emails");
    }
    if user.deleted {
        v["deletionTime"] = json!("2026-07-01T09:30:00.000Z");
    }
    v
}

/// A group as `groups.list` returns it.
pub fn group_object(id: &str, name: &str, email: &str, members: usize) -> Value {
    json!({
        "kind": "admin#directory#group",
        "id": id,
        "etag": format!("\"etag-{id}\""),
        "email": email,
        "name": name,
        "directMembersCount": members.to_string(),
        "description": "",
        "adminCreated": true
    })
}

/// A member as `members.list` returns it; `email` is the user's or group's address.
pub fn member_object(member: &GMember, email: Option<&str>) -> Value {
    let base = |id: &str, kind: &str| {
        json!({"kind": "admin#directory#member", "etag": format!("\"m-{id}\""), "id": id,
            "role": "MEMBER", "type": kind})
    };
    let mut v = match member {
        GMember::User { id, status } => {
            let mut v = base(id, "USER");
            if let Some(status) = status {
                v["status"] = json!(status);
            }
            v
        }
        GMember::Group { id } => {
            let mut v = base(id, "GROUP");
            v["status"] = json!("ACTIVE");
            v
        }
        GMember::Customer => {
            let mut v = base(CUSTOMER_ID, "CUSTOMER");
            v["status"] = json!("ACTIVE");
            v
        }
        GMember::External { email } => {
            let mut v = base(&format!("ext-{email}"), "EXTERNAL");
            v["email"] = json!(email);
            v["status"] = json!("ACTIVE");
            v
        }
    };
    if let Some(email) = email {
        v["email"] = json!(email);
    }
    v
}

fn route_of(request: &Request) -> Option<&'static str> {
    let path = request.url.path();
    match (request.method.as_str(), path) {
        ("POST", TOKEN_PATH) => Some(route::TOKEN),
        ("GET", p) if p == format!("{API}/users") => {
            let deleted = request
                .url
                .query_pairs()
                .any(|(k, v)| k == "showDeleted" && v == "true");
            Some(if deleted { route::DELETED_USERS } else { route::USERS })
        }
        ("GET", p) if p == format!("{API}/groups") => Some(route::GROUPS),
        ("GET", p) => {
            let rest = p.strip_prefix(&format!("{API}/groups/"))?;
            let key = rest.strip_suffix("/members")?;
            (!key.is_empty() && !key.contains('/')).then_some(route::MEMBERS)
        }
        _ => None,
    }
}

/// 401 as Google answers a missing or unknown token.
fn unauthenticated() -> ResponseTemplate {
    let body = json!({"error": {"code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
            "location": "Authorization", "locationType": "header"}],
        "status": "UNAUTHENTICATED"}});
    json_response(401, body).insert_header(
        "www-authenticate",
        "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
    )
}

fn api_error(code: u16, message: &str, reason: &str, status: &str) -> ResponseTemplate {
    json_response(code, google_error(code, message, reason, status))
}

fn not_authorized() -> ResponseTemplate {
    api_error(
        403,
        "Not Authorized to access this resource/api",
        "forbidden",
        "PERMISSION_DENIED",
    )
}

fn bad_request() -> ResponseTemplate {
    api_error(400, "Bad Request", "badRequest", "INVALID_ARGUMENT")
}

fn oauth_error(status: u16, error: &str, description: &str) -> ResponseTemplate {
    json_response(status, json!({"error": error, "error_description": description}))
}

/// The query parameters each list accepts (the discovery document's, plus the global ones this
/// double models).
fn allowed_params(route: &str) -> &'static [&'static str] {
    match route {
        route::USERS | route::DELETED_USERS => &[
            "customer",
            "domain",
            "maxResults",
            "pageToken",
            "query",
            "showDeleted",
            "orderBy",
            "sortOrder",
            "projection",
            "viewType",
            "fields",
        ],
        route::GROUPS => &[
            "customer",
            "domain",
            "maxResults",
            "pageToken",
            "query",
            "orderBy",
            "sortOrder",
            "fields",
        ],
        // includeDerivedMembership and roles are not modelled: refused, so a client that starts
        // sending them notices.
        _ => &["maxResults", "pageToken", "fields"],
    }
}

impl State {
    fn handle(&mut self, route: &'static str, request: &Request) -> ResponseTemplate {
        if route == route::TOKEN {
            return self.token(request);
        }
        if route == route::MEMBERS {
            self.member_arrivals.push(Instant::now());
        }
        let Some(token) = header(request, "authorization").and_then(|h| h.strip_prefix("Bearer ")) else {
            return unauthenticated();
        };
        let (subject, scopes) = match self.tokens.get(token) {
            Some(t) if t.expires > Instant::now() => (t.subject.clone(), t.scopes.clone()),
            _ => return unauthenticated(),
        };
        let needs: &[&str] = match route {
            route::USERS | route::DELETED_USERS => &[SCOPES[0]],
            route::GROUPS => &[SCOPES[1]],
            _ => &[SCOPES[1], SCOPES[2]],
        };
        if !needs.iter().any(|n| scopes.iter().any(|s| s == n)) {
            return api_error(
                403,
                "Request had insufficient authentication scopes.",
                "insufficientPermissions",
                "PERMISSION_DENIED",
            );
        }
        if !self.admins.contains(&subject.to_lowercase()) {
            return not_authorized();
        }
        let params: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((name, _)) = params
            .iter()
            .find(|(k, _)| !allowed_params(route).contains(&k.as_str()))
        {
            return api_error(
                400,
                &format!(
                    "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. Field '{name}' could not be found in request message."
                ),
                "invalid",
                "INVALID_ARGUMENT",
            );
        }
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (max, default, cap) = match route {
            route::USERS | route::DELETED_USERS => (500, 100, self.page_sizes.0),
            route::GROUPS => (200, 200, self.page_sizes.1),
            _ => (200, 200, self.page_sizes.2),
        };
        let size = match param("maxResults").map(|m| m.parse::<i64>()) {
            None => default,
            Some(Ok(n)) if (1..=max).contains(&n) => n as usize,
            Some(_) => {
                let m = param("maxResults").unwrap_or_default();
                return api_error(
                    400,
                    &format!("Invalid value '{m}'. Values must be within the range: [1, {max}]"),
                    "invalid",
                    "INVALID_ARGUMENT",
                );
            }
        };
        let size = size.min(cap);

        // Page tokens are valid only with otherwise identical parameters.
        let mut others: Vec<String> = params
            .iter()
            .filter(|(k, _)| k != "pageToken")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        others.sort();
        let listing = format!("{}|{}", request.url.path(), others.join("&"));
        let tag = format!("{:08x}", fnv(&listing));
        let selection = match param("fields").map(|f| parse_fields(&f)) {
            None => None,
            Some(Some(selection)) => Some(selection),
            Some(None) => return api_error(400, "Invalid field selection", "invalidParameter", "INVALID_ARGUMENT"),
        };

        // The items of the list: a group's members, or the users / groups the parameters select
        // (computed once per listing: every page of it asks the same).
        let items: Vec<&Value> = match route {
            route::MEMBERS => {
                let key = request.url.path().rsplit('/').nth(1).unwrap_or_default();
                let Some(&at) = self.group_index.get(&percent_decode(key)) else {
                    return api_error(404, "Resource Not Found: groupKey", "notFound", "NOT_FOUND");
                };
                let id = self.groups[at]["id"].as_str().unwrap_or_default();
                self.members.get(id).map(|m| m.iter().collect()).unwrap_or_default()
            }
            _ => {
                if !self.listings.contains_key(&listing) {
                    match self.select_listing(route, &param("domain"), &param("customer"), &param("query")) {
                        Ok(positions) => self.listings.insert(listing.clone(), positions),
                        Err(answer) => return *answer,
                    };
                }
                let source = match route {
                    route::GROUPS => &self.groups,
                    route::DELETED_USERS => &self.deleted,
                    _ => &self.users,
                };
                self.listings[&listing].iter().map(|&i| &source[i]).collect()
            }
        };
        let Some((slice, next)) =
            strip_tag(param("pageToken"), &tag).and_then(|t| page(&items, size, t.as_deref()).ok())
        else {
            return api_error(400, "Invalid page token", "invalid", "INVALID_ARGUMENT");
        };
        let (kind, list_key) = match route {
            route::MEMBERS => ("admin#directory#members", "members"),
            route::GROUPS => ("admin#directory#groups", "groups"),
            _ => ("admin#directory#users", "users"),
        };
        // The envelope, then the partial response: only what `fields` names (everything without).
        let wanted = |key: &str| -> Option<Option<&Selection>> {
            match &selection {
                None => Some(None),
                Some(sel) => sel.0.iter().find(|(k, _)| k == key).map(|(_, sub)| sub.as_ref()),
            }
        };
        let mut body = Map::new();
        if wanted("kind").is_some() {
            body.insert("kind".into(), json!(kind));
        }
        if wanted("etag").is_some() {
            body.insert("etag".into(), json!("\"page-etag\""));
        }
        if let Some(sub) = wanted(list_key)
            && !slice.is_empty()
        {
            let list = slice
                .iter()
                .map(|v| match sub {
                    Some(sub) => select(v, sub),
                    None => (*v).clone(),
                })
                .collect();
            body.insert(list_key.into(), Value::Array(list));
        }
        if let Some(next) = next
            && wanted("nextPageToken").is_some()
        {
            body.insert("nextPageToken".into(), json!(format!("{tag}{next}")));
        }
        let body = Value::Object(body);
        json_response(200, body)
    }

    /// Positions of the users (or groups) a listing's `domain`, `customer` and `query` select,
    /// or the answer refusing them.
    fn select_listing(
        &self,
        route: &str,
        domain: &Option<String>,
        customer: &Option<String>,
        query: &Option<String>,
    ) -> Result<Vec<usize>, Box<ResponseTemplate>> {
        match (customer, domain) {
            (None, None) => return Err(Box::new(bad_request())),
            (Some(c), _) if c != "my_customer" && c != CUSTOMER_ID => return Err(Box::new(bad_request())),
            _ => {}
        }
        if let Some(d) = domain
            && d != DOMAIN
            && d != OTHER_DOMAIN
        {
            return Err(Box::new(not_authorized()));
        }
        // `domain` restricts the answer to that domain, with or without `customer`.
        let suffix = domain.as_ref().map(|d| format!("@{d}"));
        let in_domain = |email: &Value| {
            suffix
                .as_ref()
                .is_none_or(|s| email.as_str().is_some_and(|e| e.ends_with(s.as_str())))
        };
        let invalid = || Box::new(api_error(400, "Invalid Input", "invalid", "INVALID_ARGUMENT"));
        let (list, email_key, matches) = match route {
            route::GROUPS => (
                &self.groups,
                "email",
                group_query(query.as_deref()).ok_or_else(invalid)?,
            ),
            route::DELETED_USERS => (
                &self.deleted,
                "primaryEmail",
                user_query(query.as_deref()).ok_or_else(invalid)?,
            ),
            _ => (
                &self.users,
                "primaryEmail",
                user_query(query.as_deref()).ok_or_else(invalid)?,
            ),
        };
        Ok(list
            .iter()
            .enumerate()
            .filter(|(_, v)| in_domain(&v[email_key]) && matches(v))
            .map(|(i, _)| i)
            .collect())
    }

    /// Forgets the listings computed so far (the directory changed).
    fn changed(&mut self) {
        self.listings.clear();
        self.group_index = self
            .groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| {
                [g["id"].as_str(), g["email"].as_str()]
                    .into_iter()
                    .flatten()
                    .map(move |k| (k.to_string(), i))
            })
            .collect();
    }

    fn token(&mut self, request: &Request) -> ResponseTemplate {
        let content_type = header(request, "content-type").unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return oauth_error(400, "invalid_request", "Invalid Content-Type");
        }
        let form: BTreeMap<String, String> = parse_form(&String::from_utf8_lossy(&request.body))
            .into_iter()
            .collect();
        match form.get("grant_type").map(String::as_str) {
            Some(JWT_BEARER) => {}
            Some(other) => return oauth_error(400, "unsupported_grant_type", &format!("Invalid grant_type: {other}")),
            None => return oauth_error(400, "invalid_request", "Missing required parameter: grant_type"),
        }
        let Some(assertion) = form.get("assertion") else {
            return oauth_error(400, "invalid_request", "Missing required parameter: assertion");
        };
        let Ok(header) = jsonwebtoken::decode_header(assertion) else {
            return oauth_error(400, "invalid_grant", "Invalid JWT: could not be decoded");
        };
        if header.alg != Algorithm::RS256 {
            return oauth_error(400, "invalid_grant", "Invalid JWT: unsupported signing algorithm");
        }
        // The signature first; the claims are checked one by one below, for Google's messages.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        dirsync::net::jwt::install();
        let key = DecodingKey::from_rsa_der(&rsa_public_key(&self.public_key));
        let claims = match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
            Ok(data) => data.claims,
            Err(_) => return oauth_error(400, "invalid_grant", "Invalid JWT Signature."),
        };
        if claims["iss"] != SERVICE_ACCOUNT {
            return oauth_error(400, "invalid_grant", "Invalid grant: account not found");
        }
        if claims["aud"] != format!("{}{TOKEN_PATH}", self.base).as_str() {
            return oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: Failed audience check. The right audience is https://oauth2.googleapis.com/token",
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let short_lived = match (claims["iat"].as_i64(), claims["exp"].as_i64()) {
            (Some(iat), Some(exp)) => exp > iat && exp - iat <= 3600 && iat <= now + 60 && exp > now,
            _ => false,
        };
        if !short_lived {
            return oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            );
        }
        let subject = claims["sub"].as_str().unwrap_or_default().to_lowercase();
        let known = self.users.iter().any(|u| {
            u["primaryEmail"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(&subject))
        });
        if !known {
            return oauth_error(400, "invalid_grant", "Invalid email or User ID");
        }
        let scopes: Vec<String> = claims["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let granted = self
            .delegation
            .as_ref()
            .is_some_and(|g| !scopes.is_empty() && scopes.iter().all(|s| g.contains(s)));
        if !granted {
            return oauth_error(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
            );
        }
        let header = serde_json::to_value(&header).unwrap_or_default();
        self.assertions.push(Assertion { header, claims });
        let token = format!("ya29.c.{}", super::double::new_id().replace('-', ""));
        self.tokens.insert(
            token.clone(),
            Issued {
                expires: Instant::now() + Duration::from_secs(self.expires_in),
                subject,
                scopes,
            },
        );
        json_response(
            200,
            json!({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}),
        )
    }
}

/// The users a (small subset of the) user search syntax keeps; `None` for a query it cannot read.
/// Whether a user or group matches a search.
type Matcher = Box<dyn Fn(&Value) -> bool>;

fn user_query(query: Option<&str>) -> Option<Matcher> {
    let Some(query) = query.map(str::trim).filter(|q| !q.is_empty()) else {
        return Some(Box::new(|_| true));
    };
    let mut tests: Vec<Matcher> = Vec::new();
    for term in query.split_whitespace() {
        if let Some(v) = term.strip_prefix("orgUnitPath=") {
            let path = v.trim_matches('\'').to_string();
            tests.push(Box::new(move |u| u["orgUnitPath"] == path.as_str()));
        } else if let Some(v) = term.strip_prefix("isSuspended=") {
            let want = v.parse::<bool>().ok()?;
            tests.push(Box::new(move |u| u["suspended"].as_bool() == Some(want)));
        } else if let Some(v) = term.strip_prefix("isArchived=") {
            let want = v.parse::<bool>().ok()?;
            tests.push(Box::new(move |u| u["archived"].as_bool() == Some(want)));
        } else if let Some(v) = term.strip_prefix("email:") {
            let prefix = v.strip_suffix('*')?.to_lowercase();
            tests.push(Box::new(move |u| {
                u["primaryEmail"].as_str().is_some_and(|e| e.starts_with(&prefix))
            }));
        } else {
            return None;
        }
    }
    Some(Box::new(move |u| tests.iter().all(|t| t(u))))
}

/// The groups a (small subset of the) group search syntax keeps.
fn group_query(query: Option<&str>) -> Option<Matcher> {
    let Some(query) = query.map(str::trim).filter(|q| !q.is_empty()) else {
        return Some(Box::new(|_| true));
    };
    if let Some(v) = query.strip_prefix("name:") {
        let name = v.trim_matches('\'').to_string();
        return Some(Box::new(move |g| g["name"] == name.as_str()));
    }
    if let Some(v) = query.strip_prefix("email:") {
        let prefix = v.strip_suffix('*')?.to_lowercase();
        return Some(Box::new(move |g| {
            g["email"].as_str().is_some_and(|e| e.starts_with(&prefix))
        }));
    }
    None
}

/// A partial-response selection: field names, each with its own sub-selection.
struct Selection(Vec<(String, Option<Selection>)>);

/// Parses `nextPageToken,users(id,primaryEmail),name/fullName`.
fn parse_fields(text: &str) -> Option<Selection> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    parts.push(&text[start..]);
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            return None;
        }
        if let Some((name, rest)) = part.split_once('(') {
            let inner = rest.strip_suffix(')')?;
            out.push((name.trim().to_string(), Some(parse_fields(inner)?)));
        } else if let Some((name, rest)) = part.split_once('/') {
            out.push((name.to_string(), Some(parse_fields(rest)?)));
        } else {
            out.push((part.to_string(), None));
        }
    }
    Some(Selection(out))
}

fn select(value: &Value, selection: &Selection) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| select(v, selection)).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (name, sub) in &selection.0 {
                if let Some(v) = map.get(name) {
                    let v = match sub {
                        Some(sub) => select(v, sub),
                        None => v.clone(),
                    };
                    out.insert(name.clone(), v);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// The double's own page token inside a `pageToken` made for `tag` (`Some(None)` on the first
/// page; `None` for a token of another listing).
fn strip_tag(token: Option<String>, tag: &str) -> Option<Option<String>> {
    match token {
        None => Some(None),
        Some(t) => t.strip_prefix(tag).map(|inner| Some(inner.to_string())),
    }
}

fn fnv(text: &str) -> u32 {
    text.bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

fn percent_decode(text: &str) -> String {
    let url = reqwest::Url::parse(&format!("http://x.invalid/?k={text}")).expect("a query");
    url.query_pairs()
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The PKCS#1 `RSAPublicKey` inside a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block.
fn rsa_public_key(pem: &str) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM public key");
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&block.contents).expect("a SubjectPublicKeyInfo");
    spki.subject_public_key.data.to_vec()
}
