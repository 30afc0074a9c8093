//! A Bitwarden server double that behaves as `/work/shared/spec/bitwarden-api.md` describes the
//! official server (default) or Vaultwarden ([`BitwardenDouble::vaultwarden_mode`]), error
//! bodies included. It is strict: a client that passes against it sends what a real server
//! accepts.
//!
//! ```ignore
//! let bw = BitwardenDouble::start().await;          // self-hosted layout: {url}/api, {url}/identity
//! let client = bw.client();                          // dirsync::bitwarden::Client, fast retries
//! // or: dirsync::bitwarden::connect(&bw.spec(), &bw.secrets()).await?
//! client.import(&request).await?;
//! assert_eq!(bw.imports(), vec![serde_json::to_value(&request)?]);
//! assert_eq!(bw.token_requests(), 1);
//! bw.fail_next(Endpoint::Import, 1, Failure::rate_limited(Some("1")));
//! ```
//!
//! What it enforces:
//! - `POST /identity/connect/token`: `application/x-www-form-urlencoded`; `grant_type`,
//!   `scope`, `client_id`, `client_secret`, `deviceType` (a number), `deviceIdentifier`,
//!   `deviceName` present, else 400 `{"error":"invalid_request"}`; `grant_type` other than
//!   `client_credentials` → `unsupported_grant_type`; wrong client id or secret →
//!   `invalid_client`; scope other than `api.organization` → `invalid_scope`. Success issues a
//!   token valid for [`BitwardenDouble::set_expires_in`] seconds (3600 by default).
//! - Every `/api/public/...` call needs `Authorization: Bearer <issued, unexpired token>`, else
//!   401 (empty body, `WWW-Authenticate`).
//! - `POST /api/public/organization/import`: a field missing or of the wrong type (`groups`,
//!   `members`, `overwriteExisting`, member `email`/`externalId`/`deleted`, group
//!   `name`/`externalId`/`memberExternalIds`) → 422 (as Vaultwarden) with an error body naming
//!   the fields; validation (name ≤ 100, externalId 1..=300, email valid and ≤ 256 unless deleted)
//!   → 400 "The model state is invalid."; more than [`BitwardenDouble::set_import_limit`] (2000)
//!   non-deleted members or groups without `largeImport` → 400 "You cannot import this much data
//!   at once."; duplicate group external ids or two non-deleted members with one email → 500
//!   "An error has occurred."; otherwise the import is applied to the in-memory organization and
//!   answered with an empty 200.
//! - `GET /api/public/members` and `/api/public/groups` list the organization, in pages of
//!   [`BitwardenDouble::set_page_size`] with `continuationToken` (one page by default, as the
//!   official server); groups carry their `collections` access.
//! - `GET /api/public/collections` lists the shared collections with their `groups` (one page,
//!   never a "My Items" collection); `GET /api/public/collections/{id}` answers one, 404 with an
//!   empty body when unknown (or "My Items"), 400 for an id that is not a GUID.
//! - `PUT /api/public/collections/{id}`: `Content-Type: application/json` (else 415, empty);
//!   validation first (400 "The request's model state is invalid." keyed `id`, `""`, `$`,
//!   `$.groups[0].readOnly`, `Groups[0].ReadOnly`, `ExternalId`), then the `manage` conflict
//!   (400), then the lookup (404, empty body; 400 for "My Items"), then the same group id twice
//!   (500). The `externalId` is replaced (omitted → null); `groups` present replaces the whole
//!   list (unknown group ids silently dropped, yet echoed in the 200 answer), omitted leaves it;
//!   without `UseGroups` ([`BitwardenDouble::set_use_groups`]) the groups are ignored (still
//!   200); with [`BitwardenDouble::set_manage_required`] a list without `manage` is a 400.
//!   At most [`BitwardenDouble::set_put_limits`] PUTs a second and a minute (5 and 60, as the
//!   cloud per client IP): more get 429 with `Retry-After` and "Slow down!".
//! - Without `UseGroups`, an import with groups processes the members, then answers 400
//!   "Organization cannot use groups.".
//! - Vaultwarden mode: every `/api/public/...` request but the import (with or without a token)
//!   gets 404 with Vaultwarden's JSON body.
//! - Programmed failures ([`BitwardenDouble::fail_next`]) answer before anything else
//!   (authentication included), once per request, in order: a status with a body
//!   ([`Failure::error`], [`Failure::body`]), the request echoed back ([`Failure::echo`]), a hang
//!   ([`Failure::hang`]), a connection closed without an answer ([`Failure::drop_connection`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use dirsync::api::{ApiKeySecretRef, BitwardenSpec};
use dirsync::bitwarden::{Client, ClientOptions, RetryPolicy, Urls};
use dirsync::secrets::SecretValue;
use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

pub use super::double::{Failure, RecordedRequest, new_id};
use super::double::{HttpDouble, StateGuard, json_response, parse_form};
use super::secrets::MemorySecrets;

/// Name of the API key Secret in [`BitwardenDouble::spec`] and [`BitwardenDouble::secrets`].
pub const SECRET_NAME: &str = "bitwarden-org-key";
pub const TOKEN_PATH: &str = "/identity/connect/token";
pub const IMPORT_PATH: &str = "/api/public/organization/import";
pub const MEMBERS_PATH: &str = "/api/public/members";
pub const GROUPS_PATH: &str = "/api/public/groups";
pub const LARGE_IMPORT_MESSAGE: &str = "You cannot import this much data at once.";
pub const COLLECTIONS_PATH: &str = "/api/public/collections";
pub const NO_GROUPS_MESSAGE: &str = "Organization cannot use groups.";
pub const MANAGE_CONFLICT_MESSAGE: &str = "The Manage property is mutually exclusive and cannot be true while the \
     ReadOnly or HidePasswords properties are also true.";
pub const MANAGE_REQUIRED_MESSAGE: &str = "At least one member or group must have can manage permission.";
pub const MY_ITEMS_MESSAGE: &str = "You cannot edit a collection with the type as DefaultUserCollection.";
/// Vaultwarden's answer to every `/api/public/...` request but the import.
pub fn vaultwarden_not_found() -> Value {
    json!({"error": {"code": 404, "reason": "Not Found", "description": "The requested resource could not be found."}})
}
pub const OVERWRITE_REFUSED_MESSAGE: &str = "Sync failed. To proceed, disable the 'Remove and \
     re-add users during next sync' setting and try again.";

/// Member types and statuses of the Public API.
pub mod member {
    pub const OWNER: i32 = 0;
    pub const ADMIN: i32 = 1;
    pub const USER: i32 = 2;
    pub const REVOKED: i32 = -1;
    pub const INVITED: i32 = 0;
    pub const ACCEPTED: i32 = 1;
    pub const CONFIRMED: i32 = 2;
    pub const STAGED: i32 = 3;
}

/// One member of the in-memory organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub email: String,
    pub external_id: Option<String>,
    /// Owner 0, Admin 1, User 2, Manager 3, Custom 4.
    pub type_: i32,
    /// Revoked -1, Invited 0, Accepted 1, Confirmed 2, Staged 3.
    pub status: i32,
    /// Invited users have none: `overwriteExisting` refuses to remove them.
    pub has_master_password: bool,
}

impl Member {
    /// A confirmed member of `type_` with an account (and a master password).
    pub fn confirmed(email: &str, external_id: Option<&str>, type_: i32) -> Member {
        Member {
            id: new_id(),
            user_id: Some(new_id()),
            name: Some(email.split('@').next().unwrap_or_default().to_string()),
            email: email.to_string(),
            external_id: external_id.map(str::to_string),
            type_,
            status: member::CONFIRMED,
            has_master_password: true,
        }
    }

    /// A confirmed Owner without external id.
    pub fn owner(email: &str) -> Member {
        Member::confirmed(email, None, member::OWNER)
    }

    /// A confirmed Admin.
    pub fn admin(email: &str, external_id: Option<&str>) -> Member {
        Member::confirmed(email, external_id, member::ADMIN)
    }

    /// A confirmed User.
    pub fn user(email: &str, external_id: Option<&str>) -> Member {
        Member::confirmed(email, external_id, member::USER)
    }

    /// An invited User (no account yet, so no master password).
    pub fn invited(email: &str, external_id: Option<&str>) -> Member {
        Member {
            user_id: None,
            name: None,
            status: member::INVITED,
            has_master_password: false,
            ..Member::confirmed(email, external_id, member::USER)
        }
    }

    /// The `GET /public/members` form.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "member",
            "id": self.id,
            "userId": self.user_id,
            "name": self.name,
            "email": self.email,
            "externalId": self.external_id,
            "type": self.type_,
            "status": self.status,
            "twoFactorEnabled": false,
            "resetPasswordEnrolled": false,
            "ssoExternalId": null,
            "permissions": null,
            "collections": [],
        })
    }
}

/// One group of the in-memory organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    /// Member ids ([`Member::id`]).
    pub member_ids: Vec<String>,
}

impl Group {
    pub fn new(name: &str, external_id: Option<&str>) -> Group {
        Group {
            id: new_id(),
            name: name.to_string(),
            external_id: external_id.map(str::to_string),
            member_ids: Vec::new(),
        }
    }

    /// The `GET /public/groups` form, with its access to `collections`.
    pub fn to_json(&self, collections: &[Collection]) -> Value {
        let access: Vec<Value> = collections
            .iter()
            .filter(|c| !c.my_items)
            .flat_map(|c| {
                c.groups
                    .iter()
                    .filter(|a| a.id.eq_ignore_ascii_case(&self.id))
                    .map(|a| {
                        Access {
                            id: c.id.clone(),
                            ..a.clone()
                        }
                        .to_json()
                    })
            })
            .collect();
        json!({
            "object": "group",
            "id": self.id,
            "name": self.name,
            "externalId": self.external_id,
            "collections": access,
        })
    }
}

/// One access entry: a group's flags on a collection (or, in a group, a collection's id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub id: String,
    pub read_only: bool,
    pub hide_passwords: bool,
    pub manage: bool,
}

impl Access {
    pub fn new(id: &str, read_only: bool, hide_passwords: bool, manage: bool) -> Access {
        Access {
            id: id.to_string(),
            read_only,
            hide_passwords,
            manage,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "readOnly": self.read_only, "hidePasswords": self.hide_passwords, "manage": self.manage})
    }
}

/// One collection of the in-memory organization (names are encrypted client-side: none here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collection {
    pub id: String,
    pub external_id: Option<String>,
    pub groups: Vec<Access>,
    /// A personal "My Items" collection: never listed, 404 on GET, 400 on PUT.
    pub my_items: bool,
}

impl Collection {
    pub fn new(external_id: Option<&str>) -> Collection {
        Collection {
            id: new_id(),
            external_id: external_id.map(str::to_string),
            groups: Vec::new(),
            my_items: false,
        }
    }

    pub fn with_access(mut self, access: Access) -> Collection {
        self.groups.push(access);
        self
    }

    /// The `GET /public/collections` form.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "collection",
            "id": self.id,
            "externalId": self.external_id,
            "groups": self.groups.iter().map(Access::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The endpoints the double serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Token,
    Import,
    Members,
    Groups,
    Collections,
    Collection,
    PutCollection,
    /// Any other `/api/public/...` request (404).
    OtherPublic,
}

impl Endpoint {
    /// The route name of the endpoint in the double toolkit.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Import => "import",
            Endpoint::Members => "members",
            Endpoint::Groups => "groups",
            Endpoint::Collections => "collections",
            Endpoint::Collection => "collection",
            Endpoint::PutCollection => "put_collection",
            Endpoint::OtherPublic => "other_public",
        }
    }
}

/// The Bitwarden answers among the toolkit's failures.
impl Failure {
    /// A Public API error body `{"object":"error","message":...,"errors":null}`.
    pub fn error(status: u16, message: &str) -> Failure {
        Failure::json(status, json!({"object": "error", "message": message, "errors": null}))
    }

    /// 500 as the official server answers an unhandled exception.
    pub fn server_error() -> Failure {
        Failure::error(500, "An error has occurred.")
    }

    /// 429 as the cloud answers a client over its limits, with `Retry-After` in seconds.
    pub fn slow_down(seconds: u64) -> Failure {
        Failure::json(
            429,
            json!({"message": format!("Slow down! Too many requests. Try again in {seconds}s."), "object": "error"}),
        )
        .header("retry-after", &seconds.to_string())
    }

    /// 401 as for an unknown token.
    pub fn unauthorized() -> Failure {
        Failure::status(401).header("www-authenticate", "Bearer error=\"invalid_token\"")
    }
}

struct State {
    client_id: String,
    client_secret: String,
    expires_in: u64,
    tokens: HashMap<String, Instant>,
    issued: Vec<String>,
    imports: Vec<Value>,
    applied: Vec<Value>,
    members: Vec<Member>,
    groups: Vec<Group>,
    page_size: Option<usize>,
    import_limit: Option<usize>,
    vaultwarden: bool,
    collections: Vec<Collection>,
    use_groups: bool,
    manage_required: bool,
    /// PUTs allowed per second and per minute, and when the accepted ones came.
    put_limits: (usize, usize),
    puts: VecDeque<Instant>,
}

/// The double: a wiremock server with a self-hosted layout (`{url}/api`, `{url}/identity`).
pub struct BitwardenDouble {
    double: HttpDouble<State>,
    organization_id: String,
}

impl BitwardenDouble {
    /// A new organization with one confirmed Owner (`owner@example.com`), behaving like the
    /// official cloud server.
    pub async fn start() -> BitwardenDouble {
        let organization_id = new_id();
        let state = State {
            client_id: format!("organization.{organization_id}"),
            client_secret: format!("s3cr3t-{}", new_id().replace('-', "")),
            expires_in: 3600,
            tokens: HashMap::new(),
            issued: Vec::new(),
            imports: Vec::new(),
            applied: Vec::new(),
            members: vec![Member::owner("owner@example.com")],
            groups: Vec::new(),
            page_size: None,
            import_limit: Some(2000),
            vaultwarden: false,
            collections: Vec::new(),
            use_groups: true,
            manage_required: false,
            put_limits: (5, 60),
            puts: VecDeque::new(),
        };
        BitwardenDouble {
            double: HttpDouble::start(state, route, State::handle).await,
            organization_id,
        }
    }

    fn state(&self) -> StateGuard<'_, State> {
        self.double.state()
    }

    // --- where it is and how to log in --------------------------------------------------------

    /// The server base URL (`spec.bitwarden.serverUrl`).
    pub fn url(&self) -> String {
        self.double.uri()
    }

    pub fn api_url(&self) -> String {
        format!("{}/api", self.url())
    }

    pub fn identity_url(&self) -> String {
        format!("{}/identity", self.url())
    }

    pub fn urls(&self) -> Urls {
        Urls {
            api: self.api_url(),
            identity: self.identity_url(),
        }
    }

    pub fn organization_id(&self) -> String {
        self.organization_id.clone()
    }

    /// `organization.<organization id>`.
    pub fn client_id(&self) -> String {
        self.state().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.state().client_secret.clone()
    }

    /// A `spec.bitwarden` for this server (`serverUrl`, API key in Secret [`SECRET_NAME`]).
    pub fn spec(&self) -> BitwardenSpec {
        BitwardenSpec {
            server_url: Some(self.url()),
            api_key_secret_ref: ApiKeySecretRef {
                name: SECRET_NAME.into(),
                client_id_key: "client_id".into(),
                client_secret_key: "client_secret".into(),
            },
            ..Default::default()
        }
    }

    /// The Secret [`BitwardenDouble::spec`] refers to.
    pub fn secrets(&self) -> MemorySecrets {
        MemorySecrets::new()
            .with(SECRET_NAME, "client_id", self.client_id())
            .with(SECRET_NAME, "client_secret", self.client_secret())
    }

    /// A client for this server with millisecond retry delays.
    pub fn client(&self) -> Client {
        self.client_with(ClientOptions {
            retry: RetryPolicy::fast(),
            ..ClientOptions::default()
        })
    }

    pub fn client_with(&self, options: ClientOptions) -> Client {
        Client::with_options(
            self.urls(),
            &self.client_id(),
            SecretValue::new(self.client_secret()),
            None,
            options,
        )
        .expect("client for the Bitwarden double")
    }

    // --- programming it ----------------------------------------------------------------------

    /// Behave like Vaultwarden: no `/public/members` or `/public/groups` (404), members matched
    /// by email, `deleted` revokes, groups ignored, no size limits, `overwriteExisting` removes
    /// admins too.
    pub fn vaultwarden_mode(&self) {
        let mut s = self.state();
        s.vaultwarden = true;
        s.import_limit = None;
    }

    /// Lifetime of newly issued tokens (`expires_in`).
    pub fn set_expires_in(&self, seconds: u64) {
        self.state().expires_in = seconds;
    }

    /// Makes every issued token unknown: the next API call gets a 401.
    pub fn expire_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Rotates the API key: the old secret now gets `invalid_client`.
    pub fn set_client_secret(&self, secret: &str) {
        self.state().client_secret = secret.to_string();
    }

    /// Page size of the lists (`None`: one page, as the official server).
    pub fn set_page_size(&self, page_size: Option<usize>) {
        self.state().page_size = page_size;
    }

    /// The size limit without `largeImport` (2000 on the cloud; `None`: no limit).
    pub fn set_import_limit(&self, limit: Option<usize>) {
        self.state().import_limit = limit;
    }

    /// Replaces the organization's members.
    pub fn set_members(&self, members: Vec<Member>) {
        self.state().members = members;
    }

    /// Replaces the organization's groups.
    pub fn set_groups(&self, groups: Vec<Group>) {
        self.state().groups = groups;
    }

    /// Adds a group (e.g. one made by hand: no external id); returns its id.
    pub fn add_group(&self, group: Group) -> String {
        let id = group.id.clone();
        self.state().groups.push(group);
        id
    }

    /// Adds a collection; returns its id.
    pub fn add_collection(&self, collection: Collection) -> String {
        let id = collection.id.clone();
        self.state().collections.push(collection);
        id
    }

    /// Deletes a collection (as an admin would in the web vault).
    pub fn delete_collection(&self, id: &str) {
        self.state().collections.retain(|c| c.id != id);
    }

    /// Replaces a collection's group list by hand (the web vault).
    pub fn set_collection_groups(&self, id: &str, groups: Vec<Access>) {
        if let Some(c) = self.state().collections.iter_mut().find(|c| c.id == id) {
            c.groups = groups;
        }
    }

    /// Renames a group (as an import after a rename in the directory does).
    pub fn rename_group(&self, external_id: &str, name: &str) {
        if let Some(g) = self
            .state()
            .groups
            .iter_mut()
            .find(|g| g.external_id.as_deref() == Some(external_id))
        {
            g.name = name.to_string();
        }
    }

    /// Whether the organization's plan has groups (`UseGroups`; on by default).
    pub fn set_use_groups(&self, on: bool) {
        self.state().use_groups = on;
    }

    /// "Owners and admins can manage all collections" turned off: a collection must keep a group
    /// with `manage`.
    pub fn set_manage_required(&self, on: bool) {
        self.state().manage_required = on;
    }

    /// PUTs allowed per second and per minute (5 and 60 by default, as the cloud).
    pub fn set_put_limits(&self, per_second: usize, per_minute: usize) {
        self.state().put_limits = (per_second, per_minute);
    }

    /// Sets a member's status (an invitation accepted, an admin's confirmation, a revocation).
    pub fn set_member_status(&self, email: &str, status: i32) {
        if let Some(m) = self
            .state()
            .members
            .iter_mut()
            .find(|m| m.email.eq_ignore_ascii_case(email))
        {
            m.status = status;
        }
    }

    /// Answers the next `times` requests to `endpoint` with `failure` (after those already
    /// programmed). `usize::MAX` times means for ever.
    pub fn fail_next(&self, endpoint: Endpoint, times: usize, failure: Failure) {
        self.double.fail_next(endpoint.route(), times, failure);
    }

    /// Lets `ok` requests to `endpoint` through, then answers `times` with `failure`.
    pub fn fail_after(&self, endpoint: Endpoint, ok: usize, times: usize, failure: Failure) {
        self.double.fail_after(endpoint.route(), ok, times, failure);
    }

    /// Shorthand of [`BitwardenDouble::fail_next`] for imports.
    pub fn fail_next_imports(&self, times: usize, status: u16, body: &str, headers: &[(&str, &str)]) {
        let mut failure = Failure::status(status);
        failure.body = body.to_string();
        for (k, v) in headers {
            failure = failure.header(k, v);
        }
        self.fail_next(Endpoint::Import, times, failure);
    }

    /// Drops the programmed failures not yet used.
    pub fn clear_failures(&self) {
        self.double.clear_failures();
    }

    // --- what happened -----------------------------------------------------------------------

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.double.requests()
    }

    /// The requests to one endpoint.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.double.requests_to(endpoint.route())
    }

    /// Requests to the token endpoint (programmed failures included).
    pub fn token_requests(&self) -> usize {
        self.requests_to(Endpoint::Token).len()
    }

    /// Every access token issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state().issued.clone()
    }

    /// Import bodies that reached the import handler (authenticated, not answered by a
    /// programmed failure), whether accepted or refused.
    pub fn imports(&self) -> Vec<Value> {
        self.state().imports.clone()
    }

    /// Import bodies that were applied (answered 200).
    pub fn applied_imports(&self) -> Vec<Value> {
        self.state().applied.clone()
    }

    pub fn members(&self) -> Vec<Member> {
        self.state().members.clone()
    }

    pub fn member(&self, email: &str) -> Option<Member> {
        self.members().into_iter().find(|m| m.email.eq_ignore_ascii_case(email))
    }

    pub fn groups(&self) -> Vec<Group> {
        self.state().groups.clone()
    }

    pub fn group_by_external_id(&self, external_id: &str) -> Option<Group> {
        self.groups()
            .into_iter()
            .find(|g| g.external_id.as_deref() == Some(external_id))
    }

    pub fn collections(&self) -> Vec<Collection> {
        self.state().collections.clone()
    }

    pub fn collection(&self, id: &str) -> Option<Collection> {
        self.collections().into_iter().find(|c| c.id == id)
    }

    /// Emails of the members of the group with `external_id`, sorted.
    pub fn group_member_emails(&self, external_id: &str) -> Vec<String> {
        let s = self.state();
        let Some(group) = s.groups.iter().find(|g| g.external_id.as_deref() == Some(external_id)) else {
            return Vec::new();
        };
        let mut emails: Vec<String> = s
            .members
            .iter()
            .filter(|m| group.member_ids.contains(&m.id))
            .map(|m| m.email.clone())
            .collect();
        emails.sort();
        emails
    }
}

fn route(request: &Request) -> Option<&'static str> {
    let path = request.url.path();
    let one_collection = path
        .strip_prefix(COLLECTIONS_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    let endpoint = match (request.method.as_str(), path) {
        ("POST", TOKEN_PATH) => Endpoint::Token,
        ("POST", IMPORT_PATH) => Endpoint::Import,
        ("GET", MEMBERS_PATH) => Endpoint::Members,
        ("GET", GROUPS_PATH) => Endpoint::Groups,
        ("GET", COLLECTIONS_PATH) => Endpoint::Collections,
        ("GET", _) if one_collection => Endpoint::Collection,
        ("PUT", _) if one_collection => Endpoint::PutCollection,
        (_, p) if p.starts_with("/api/public/") => Endpoint::OtherPublic,
        _ => return None,
    };
    Some(endpoint.route())
}

fn api_error(status: u16, message: &str, errors: Option<BTreeMap<String, Vec<String>>>) -> ResponseTemplate {
    json_response(status, json!({"object": "error", "message": message, "errors": errors}))
}

fn oauth_error(error: &str) -> ResponseTemplate {
    json_response(400, json!({"error": error}))
}

impl State {
    fn handle(&mut self, route: &'static str, request: &Request) -> ResponseTemplate {
        if route == Endpoint::Token.route() {
            return self.token(request);
        }
        if self.vaultwarden && route != Endpoint::Import.route() {
            return json_response(404, vaultwarden_not_found());
        }
        // The cloud's rate limiting comes before anything else.
        if route == Endpoint::PutCollection.route()
            && let Some(wait) = self.put_wait()
        {
            return Failure::slow_down(wait).template(request);
        }
        if !self.authorized(request) {
            return Failure::unauthorized().template(request);
        }
        match route {
            "import" => self.import(&request.body),
            "members" => {
                let items: Vec<Value> = self.members.iter().map(Member::to_json).collect();
                self.list(request, items)
            }
            "groups" => {
                let items: Vec<Value> = self.groups.iter().map(|g| g.to_json(&self.collections)).collect();
                self.list(request, items)
            }
            "collections" => {
                let items: Vec<Value> = self
                    .collections
                    .iter()
                    .filter(|c| !c.my_items)
                    .map(Collection::to_json)
                    .collect();
                json_response(200, json!({"object": "list", "data": items}))
            }
            "collection" => self.get_collection(request),
            "put_collection" => self.put_collection(request),
            _ => ResponseTemplate::new(404),
        }
    }

    /// Seconds to wait when one more PUT would pass a limit; else the PUT is counted.
    fn put_wait(&mut self) -> Option<u64> {
        let now = Instant::now();
        let (per_second, per_minute) = self.put_limits;
        while self
            .puts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.puts.pop_front();
        }
        let in_last = |d: Duration| self.puts.iter().filter(|t| now.duration_since(**t) < d).count();
        let wait = if in_last(Duration::from_secs(1)) >= per_second {
            Some(1)
        } else if self.puts.len() >= per_minute {
            let oldest = self.puts.front().copied().unwrap_or(now);
            Some((Duration::from_secs(60) - now.duration_since(oldest)).as_secs().max(1))
        } else {
            None
        };
        if wait.is_none() {
            self.puts.push_back(now);
        }
        wait
    }

    fn get_collection(&self, request: &Request) -> ResponseTemplate {
        let id = last_segment(request);
        if !is_guid(id) {
            return model_state_error([("id".to_string(), format!("The value '{id}' is not valid."))]);
        }
        match self
            .collections
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(id) && !c.my_items)
        {
            Some(c) => json_response(200, c.to_json()),
            None => ResponseTemplate::new(404),
        }
    }

    fn put_collection(&mut self, request: &Request) -> ResponseTemplate {
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/json") {
            return ResponseTemplate::new(415);
        }
        let id = last_segment(request).to_string();
        let mut errors: Vec<(String, String)> = Vec::new();
        if !is_guid(&id) {
            errors.push(("id".into(), format!("The value '{id}' is not valid.")));
        }
        let parsed = parse_collection_update(&request.body, &mut errors);
        if !errors.is_empty() {
            return model_state_error(errors);
        }
        let Some(update) = parsed else {
            return model_state_error([("".to_string(), "A non-empty request body is required.".to_string())]);
        };
        if update
            .groups
            .iter()
            .flatten()
            .any(|a| a.manage && (a.read_only || a.hide_passwords))
        {
            return api_error(400, MANAGE_CONFLICT_MESSAGE, None);
        }
        let known: HashSet<String> = self.groups.iter().map(|g| g.id.to_ascii_lowercase()).collect();
        let use_groups = self.use_groups;
        let manage_required = self.manage_required;
        let Some(collection) = self.collections.iter_mut().find(|c| c.id.eq_ignore_ascii_case(&id)) else {
            return ResponseTemplate::new(404);
        };
        if collection.my_items {
            return api_error(400, MY_ITEMS_MESSAGE, None);
        }
        if let Some(groups) = &update.groups {
            let mut ids = HashSet::new();
            if !groups.iter().all(|a| ids.insert(a.id.to_ascii_lowercase())) {
                // A primary-key violation in the stored procedure.
                return json_response(
                    500,
                    json!({"object": "error", "message": "An unhandled server error has occurred."}),
                );
            }
        }
        let stored: Vec<Access> = match (&update.groups, use_groups) {
            (Some(groups), true) => groups
                .iter()
                .filter(|a| known.contains(&a.id.to_ascii_lowercase()))
                .cloned()
                .collect(),
            _ => collection.groups.clone(),
        };
        if manage_required && !stored.iter().any(|a| a.manage) {
            return api_error(400, MANAGE_REQUIRED_MESSAGE, None);
        }
        collection.external_id = update.external_id.clone();
        collection.groups = stored;
        let echo = update
            .groups
            .as_ref()
            .map(|g| Value::Array(g.iter().map(Access::to_json).collect()))
            .unwrap_or(Value::Null);
        json_response(
            200,
            json!({"object": "collection", "id": collection.id, "externalId": collection.external_id, "groups": echo}),
        )
    }

    fn token(&mut self, request: &Request) -> ResponseTemplate {
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return oauth_error("invalid_request");
        }
        let form: HashMap<String, String> = parse_form(&String::from_utf8_lossy(&request.body))
            .into_iter()
            .collect();
        let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let required = [
            "grant_type",
            "scope",
            "client_id",
            "client_secret",
            "deviceType",
            "deviceIdentifier",
            "deviceName",
        ];
        if required.iter().any(|f| field(f).is_none()) || field("deviceType").is_some_and(|t| t.parse::<i32>().is_err())
        {
            return oauth_error("invalid_request");
        }
        if field("grant_type") != Some("client_credentials") {
            return oauth_error("unsupported_grant_type");
        }
        if field("client_id") != Some(self.client_id.as_str())
            || field("client_secret") != Some(self.client_secret.as_str())
        {
            return oauth_error("invalid_client");
        }
        if field("scope") != Some("api.organization") {
            return oauth_error("invalid_scope");
        }
        let token = format!("eyJ.{}.{}", self.issued.len() + 1, new_id().replace('-', ""));
        self.tokens
            .insert(token.clone(), Instant::now() + Duration::from_secs(self.expires_in));
        self.issued.push(token.clone());
        json_response(
            200,
            json!({
                "access_token": token,
                "expires_in": self.expires_in,
                "token_type": "Bearer",
                "scope": "api.organization",
            }),
        )
    }

    fn authorized(&self, request: &Request) -> bool {
        let Some(value) = request.headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some(token) = value.strip_prefix("Bearer ") else {
            return false;
        };
        self.tokens.get(token).is_some_and(|expiry| Instant::now() < *expiry)
    }

    fn list(&self, request: &Request, items: Vec<Value>) -> ResponseTemplate {
        let offset: usize = match request.url.query_pairs().find(|(k, _)| k == "continuationToken") {
            None => 0,
            Some((_, token)) => match token.strip_prefix("page-").and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => return api_error(400, "Invalid continuation token.", None),
            },
        };
        let size = self.page_size.unwrap_or(usize::MAX).max(1);
        let end = offset.saturating_add(size).min(items.len());
        let page: Vec<Value> = items.get(offset.min(end)..end).unwrap_or_default().to_vec();
        let continuation = (end < items.len()).then(|| format!("page-{end}"));
        json_response(
            200,
            json!({"object": "list", "data": page, "continuationToken": continuation}),
        )
    }

    fn import(&mut self, body: &[u8]) -> ResponseTemplate {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return api_error(400, "The request body is not valid JSON.", None);
        };
        self.imports.push(value.clone());
        let missing = missing_fields(&value);
        if !missing.is_empty() {
            let errors = missing.into_iter().map(|f| (f, vec!["The field is required.".into()]));
            return api_error(422, "The request is missing required fields.", Some(errors.collect()));
        }
        let request = ParsedImport::from(&value);
        let invalid = request.validation_errors();
        if !invalid.is_empty() {
            return api_error(400, "The model state is invalid.", Some(invalid));
        }
        let active: Vec<&ParsedMember> = request.members.iter().filter(|m| !m.deleted).collect();
        if let Some(limit) = self.import_limit
            && !request.large_import
            && (active.len() > limit || request.groups.len() > limit)
        {
            return api_error(400, LARGE_IMPORT_MESSAGE, None);
        }
        let mut emails = HashSet::new();
        let mut group_ids = HashSet::new();
        if !active.iter().all(|m| emails.insert(m.email.to_lowercase()))
            || !request.groups.iter().all(|g| group_ids.insert(g.external_id.clone()))
        {
            return api_error(500, "An error has occurred.", None);
        }
        if self.vaultwarden {
            self.apply_vaultwarden(&request);
        } else if let Err(message) = self.apply_official(&request) {
            return api_error(400, message, None);
        }
        if !self.vaultwarden && !self.use_groups && !request.groups.is_empty() {
            // Raised after the members were processed.
            return api_error(400, NO_GROUPS_MESSAGE, None);
        }
        self.applied.push(value);
        ResponseTemplate::new(200)
    }

    /// Applies an import; `Err` is the message of a 400 that refuses it as a whole.
    fn apply_official(&mut self, request: &ParsedImport) -> Result<(), &'static str> {
        let mut members = self.members.clone();
        // 1. Deleted members (by external id) leave, except Owners.
        let deleted: HashSet<&str> = request
            .members
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.external_id.as_str())
            .collect();
        members
            .retain(|m| m.type_ == member::OWNER || !m.external_id.as_deref().is_some_and(|id| deleted.contains(id)));
        // 2. overwriteExisting: members with an external id not in the request leave, except
        //    Owners; refused as a whole if one of them has no master password.
        let active: Vec<&ParsedMember> = request.members.iter().filter(|m| !m.deleted).collect();
        if request.overwrite_existing {
            let keep: HashSet<&str> = active.iter().map(|m| m.external_id.as_str()).collect();
            let leaving =
                |m: &Member| m.type_ != member::OWNER && m.external_id.as_deref().is_some_and(|id| !keep.contains(id));
            if members.iter().any(|m| leaving(m) && !m.has_master_password) {
                return Err(OVERWRITE_REFUSED_MESSAGE);
            }
            members.retain(|m| !leaving(m));
        }
        // 3. Members without external id get the one of the imported member with their email.
        for m in &active {
            if members
                .iter()
                .any(|x| x.external_id.as_deref() == Some(m.external_id.as_str()))
            {
                continue;
            }
            if let Some(x) = members
                .iter_mut()
                .find(|x| x.external_id.is_none() && x.email.eq_ignore_ascii_case(&m.email))
            {
                x.external_id = Some(m.external_id.clone());
            }
        }
        // 4. New external ids are invited, unless their email is already in the organization.
        for m in &active {
            let known = members.iter().any(|x| {
                x.external_id.as_deref() == Some(m.external_id.as_str()) || x.email.eq_ignore_ascii_case(&m.email)
            });
            if !known {
                let mut invited = Member::invited(&m.email, Some(&m.external_id));
                if !request.invite_users_after_provisioning {
                    invited.status = member::STAGED;
                }
                members.push(invited);
            }
        }
        // 5. Groups by external id: created or renamed, membership replaced. Never deleted.
        let mut groups = self.groups.clone();
        let import_groups = if self.use_groups {
            request.groups.as_slice()
        } else {
            &[]
        };
        for g in import_groups {
            let member_ids: Vec<String> = members
                .iter()
                .filter(|m| {
                    m.external_id
                        .as_ref()
                        .is_some_and(|id| g.member_external_ids.contains(id))
                })
                .map(|m| m.id.clone())
                .collect();
            match groups
                .iter_mut()
                .find(|x| x.external_id.as_deref() == Some(&g.external_id))
            {
                Some(existing) => {
                    existing.name = g.name.clone();
                    existing.member_ids = member_ids;
                }
                None => {
                    let mut group = Group::new(&g.name, Some(&g.external_id));
                    group.member_ids = member_ids;
                    groups.push(group);
                }
            }
        }
        self.members = members;
        self.groups = groups;
        Ok(())
    }

    fn apply_vaultwarden(&mut self, request: &ParsedImport) {
        let mut members = self.members.clone();
        for m in &request.members {
            let existing = members.iter_mut().find(|x| x.email.eq_ignore_ascii_case(&m.email));
            match (existing, m.deleted) {
                (Some(x), true) => {
                    if x.type_ != member::OWNER {
                        x.status = member::REVOKED;
                    }
                }
                (Some(x), false) => {
                    if x.external_id.is_none() {
                        x.external_id = Some(m.external_id.clone());
                    }
                }
                (None, true) => {}
                // Vaultwarden has no Staged status: always invited.
                (None, false) => members.push(Member::invited(&m.email, Some(&m.external_id))),
            }
        }
        if request.overwrite_existing {
            let keep: HashSet<&str> = request
                .members
                .iter()
                .filter(|m| !m.deleted)
                .map(|m| m.external_id.as_str())
                .collect();
            members.retain(|m| m.type_ == member::OWNER || m.external_id.as_deref().is_none_or(|id| keep.contains(id)));
        }
        self.members = members;
    }
}

/// Every required field that is missing or of the wrong type, as `members[3].email`.
fn missing_fields(value: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    let Some(root) = value.as_object() else {
        return vec!["$".into()];
    };
    let check = |missing: &mut Vec<String>,
                 obj: &serde_json::Map<String, Value>,
                 prefix: &str,
                 field: &str,
                 ok: fn(&Value) -> bool| {
        if !obj.get(field).is_some_and(ok) {
            missing.push(format!("{prefix}{field}"));
        }
    };
    let is_str = |v: &Value| v.is_string();
    let is_bool = |v: &Value| v.is_boolean();
    let is_array = |v: &Value| v.is_array();
    let is_opt_bool = |v: &Value| v.is_boolean() || v.is_null();
    check(&mut missing, root, "", "groups", is_array);
    check(&mut missing, root, "", "members", is_array);
    check(&mut missing, root, "", "overwriteExisting", is_bool);
    for optional in ["largeImport", "inviteUsersAfterProvisioning"] {
        if root.contains_key(optional) {
            check(&mut missing, root, "", optional, is_opt_bool);
        }
    }
    if let Some(members) = root.get("members").and_then(Value::as_array) {
        for (i, m) in members.iter().enumerate() {
            let prefix = format!("members[{i}].");
            let Some(m) = m.as_object() else {
                missing.push(format!("members[{i}]"));
                continue;
            };
            let deleted = m.get("deleted").and_then(Value::as_bool).unwrap_or(false);
            if deleted {
                // The email may be null on a deleted member, but the field must be there.
                check(&mut missing, m, &prefix, "email", |v| v.is_string() || v.is_null());
            } else {
                check(&mut missing, m, &prefix, "email", is_str);
            }
            check(&mut missing, m, &prefix, "externalId", is_str);
            check(&mut missing, m, &prefix, "deleted", is_bool);
        }
    }
    if let Some(groups) = root.get("groups").and_then(Value::as_array) {
        for (i, g) in groups.iter().enumerate() {
            let prefix = format!("groups[{i}].");
            let Some(g) = g.as_object() else {
                missing.push(format!("groups[{i}]"));
                continue;
            };
            check(&mut missing, g, &prefix, "name", is_str);
            check(&mut missing, g, &prefix, "externalId", is_str);
            check(&mut missing, g, &prefix, "memberExternalIds", |v| {
                v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
            });
        }
    }
    missing
}

struct ParsedMember {
    email: String,
    external_id: String,
    deleted: bool,
}

struct ParsedGroup {
    name: String,
    external_id: String,
    member_external_ids: Vec<String>,
}

/// An import request whose fields are all present (checked by [`missing_fields`]).
struct ParsedImport {
    members: Vec<ParsedMember>,
    groups: Vec<ParsedGroup>,
    overwrite_existing: bool,
    large_import: bool,
    invite_users_after_provisioning: bool,
}

impl From<&Value> for ParsedImport {
    fn from(v: &Value) -> ParsedImport {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let b = |v: &Value, k: &str| v.get(k).and_then(Value::as_bool);
        let list = |k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        ParsedImport {
            members: list("members")
                .iter()
                .map(|m| ParsedMember {
                    email: s(m, "email"),
                    external_id: s(m, "externalId"),
                    deleted: b(m, "deleted").unwrap_or(false),
                })
                .collect(),
            groups: list("groups")
                .iter()
                .map(|g| ParsedGroup {
                    name: s(g, "name"),
                    external_id: s(g, "externalId"),
                    member_external_ids: g
                        .get("memberExternalIds")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default(),
                })
                .collect(),
            overwrite_existing: b(v, "overwriteExisting").unwrap_or(false),
            large_import: b(v, "largeImport").unwrap_or(false),
            invite_users_after_provisioning: b(v, "inviteUsersAfterProvisioning").unwrap_or(true),
        }
    }
}

impl ParsedImport {
    /// The official server's model validation, keyed as ASP.NET does (`Members[0].Email`).
    fn validation_errors(&self) -> BTreeMap<String, Vec<String>> {
        let mut errors = BTreeMap::new();
        let mut add = |key: String, message: &str| {
            errors.entry(key).or_insert_with(Vec::new).push(message.to_string());
        };
        for (i, g) in self.groups.iter().enumerate() {
            if g.name.trim().is_empty() {
                add(format!("Groups[{i}].Name"), "The Name field is required.");
            } else if g.name.chars().count() > 100 {
                add(
                    format!("Groups[{i}].Name"),
                    "The field Name must be a string with a maximum length of 100.",
                );
            }
            external_id_errors(&mut add, &format!("Groups[{i}].ExternalId"), &g.external_id);
        }
        for (i, m) in self.members.iter().enumerate() {
            external_id_errors(&mut add, &format!("Members[{i}].ExternalId"), &m.external_id);
            if !m.deleted {
                let key = format!("Members[{i}].Email");
                if m.email.chars().count() > 256 {
                    add(key, "The field Email must be a string with a maximum length of 256.");
                } else if !valid_email(&m.email) {
                    add(key, "The Email field is not a valid e-mail address.");
                }
            }
        }
        errors
    }
}

fn external_id_errors(add: &mut impl FnMut(String, &str), key: &str, external_id: &str) {
    if external_id.trim().is_empty() {
        add(key.to_string(), "The ExternalId field is required.");
    } else if external_id.chars().count() > 300 {
        add(
            key.to_string(),
            "The field ExternalId must be a string with a maximum length of 300.",
        );
    }
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !email.chars().any(char::is_whitespace)
}

/// The last path segment (a collection id).
fn last_segment(request: &Request) -> &str {
    request.url.path().rsplit('/').next().unwrap_or_default()
}

/// A GUID as ASP.NET parses one (`8-4-4-4-12` hex digits).
fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// 400 "The request's model state is invalid." with the field errors.
fn model_state_error(errors: impl IntoIterator<Item = (String, String)>) -> ResponseTemplate {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in errors {
        map.entry(k).or_default().push(v);
    }
    api_error(400, "The request's model state is invalid.", Some(map))
}

/// A `PUT /public/collections/{id}` body.
struct CollectionUpdate {
    external_id: Option<String>,
    /// `None`: the field was absent or null (the list stays).
    groups: Option<Vec<Access>>,
}

/// A property by name, matched case-insensitively (as ASP.NET's JSON input does).
fn property<'v>(obj: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// Parses the body strictly, adding each problem keyed as ASP.NET does; `None` for an empty body.
fn parse_collection_update(body: &[u8], errors: &mut Vec<(String, String)>) -> Option<CollectionUpdate> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            errors.push(("$".into(), format!("The JSON value could not be converted: {e}")));
            return Some(CollectionUpdate {
                external_id: None,
                groups: None,
            });
        }
    };
    let Some(obj) = value.as_object() else {
        errors.push(("$".into(), "The JSON value could not be converted.".into()));
        return Some(CollectionUpdate {
            external_id: None,
            groups: None,
        });
    };
    let external_id = match property(obj, "externalId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if s.chars().count() > 300 {
                errors.push((
                    "ExternalId".into(),
                    "The field ExternalId must be a string with a maximum length of 300.".into(),
                ));
            }
            Some(s.clone())
        }
        Some(_) => {
            errors.push(("$.externalId".into(), "The JSON value could not be converted.".into()));
            None
        }
    };
    let groups = match property(obj, "groups") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut list = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Some(entry) = item.as_object() else {
                    errors.push((
                        format!("$.groups[{i}]"),
                        "The JSON value could not be converted.".into(),
                    ));
                    continue;
                };
                let id = match property(entry, "id") {
                    Some(Value::String(s)) if is_guid(s) => s.clone(),
                    None | Some(Value::Null) => {
                        errors.push((format!("Groups[{i}].Id"), "The Id field is required.".into()));
                        String::new()
                    }
                    Some(_) => {
                        errors.push((
                            format!("$.groups[{i}].id"),
                            "The JSON value could not be converted.".into(),
                        ));
                        String::new()
                    }
                };
                let mut flag = |name: &str, required: bool| match property(entry, name) {
                    Some(Value::Bool(b)) => *b,
                    None | Some(Value::Null) => {
                        if required {
                            errors.push((
                                format!("Groups[{i}].ReadOnly"),
                                "The ReadOnly field is required.".into(),
                            ));
                        }
                        false
                    }
                    Some(_) => {
                        errors.push((
                            format!("$.groups[{i}].{name}"),
                            "The JSON value could not be converted.".into(),
                        ));
                        false
                    }
                };
                let read_only = flag("readOnly", true);
                let hide_passwords = flag("hidePasswords", false);
                let manage = flag("manage", false);
                list.push(Access {
                    id,
                    read_only,
                    hide_passwords,
                    manage,
                });
            }
            Some(list)
        }
        Some(_) => {
            errors.push(("$.groups".into(), "The JSON value could not be converted.".into()));
            None
        }
    };
    Some(CollectionUpdate { external_id, groups })
}
