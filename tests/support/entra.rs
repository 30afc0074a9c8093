//! A Microsoft Entra ID double: the token endpoint and the Microsoft Graph v1.0 lists the Entra
//! source reads, speaking the wire format of `/work/shared/spec/providers.md` section 1 and the
//! vendor descriptions (`msgraph-v1.0-Users.yml`, `msgraph-v1.0-Groups.yml`). One server plays
//! both hosts: `authorityUrl` and `graphUrl` point at it.
//!
//! ```ignore
//! let entra = EntraDouble::start().await;            // a tenant, an app with a client secret
//! entra.set_directory(users, groups);
//! let source = entra.connect(fast_options()).await;   // or dirsync's own connect on entra.spec()
//! entra.fail_next("users", 1, throttled("2"));        // the toolkit's failures, per route
//! entra.fail_batched("members", 0, 1, 429, Some("1")); // an answer inside a $batch
//! ```
//!
//! What it enforces:
//! - `POST /{tenant}/oauth2/v2.0/token` (form): an unknown tenant → 400 AADSTS90002;
//!   `grant_type` not `client_credentials` → 400 AADSTS70003; `scope` other than
//!   `<double>/.default` → 400 AADSTS1002012; unknown `client_id` → 400 AADSTS700016; then the
//!   credential: a client secret (wrong: 401 AADSTS7000215), a certificate assertion (RS256,
//!   `x5t` = SHA-1 thumbprint of the registered certificate, verified with its key; `aud` the
//!   token URL, `iss` = `sub` = client id, `jti`, `exp` in the future and at most 10 minutes
//!   after `nbf`: 401 AADSTS700027 / AADSTS700024 otherwise), or a federated token (no `x5t`:
//!   issuer, subject and audience `api://AzureADTokenExchange` must match the app's federated
//!   credential, else 400 AADSTS70021 naming them; signature verified with the issuer's key,
//!   else AADSTS50013; lifetime, else AADSTS700024).
//! - Graph calls need `Authorization: Bearer` with an issued, unexpired token (else 401
//!   `InvalidAuthenticationToken`) whose app holds the permission the call needs (granted with
//!   admin consent: [`EntraDouble::set_permissions`]; else 403 `Authorization_RequestDenied`).
//! - Lists page with `$top` (at most 999, else 400) capped by the double's page sizes, and
//!   `@odata.nextLink` = the request's URL with `$skiptoken`; `$select` names unknown to the type
//!   → 400. Without `$select` users come with Graph's default properties (no `accountEnabled`).
//! - `/users/delta`: `$deltatoken=latest` → only a delta link; a delta link → the changes since
//!   (updates with the selected fields, removals as `@removed` in the object or string shape),
//!   200 to a page; an expired link → 410 `syncStateNotFound`.
//! - `POST /$batch`: at most 20 GET requests with ids, answered in reverse order, each with its
//!   own status, headers and body; programmed answers with [`EntraDouble::fail_batched`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dirsync::api::{EntraCredentialsRef, EntraIdSource};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

pub use super::double::{Failure, RecordedRequest, new_id};
use super::double::{HttpDouble, StateGuard, json_response, page, parse_form};
use super::secrets::MemorySecrets;

/// The tenant of the double (a verified domain).
pub const TENANT: &str = "contoso.onmicrosoft.com";
/// The Secret of [`EntraDouble::spec`].
pub const SECRET_NAME: &str = "entra-app";
pub const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";
pub const USER_READ_ALL: &str = "User.Read.All";
pub const GROUP_MEMBER_READ_ALL: &str = "GroupMember.Read.All";
pub const ADMINISTRATIVE_UNIT_READ_ALL: &str = "AdministrativeUnit.Read.All";

/// A directory object type in member lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
    Device,
    ServicePrincipal,
}

impl Kind {
    fn odata(self) -> &'static str {
        match self {
            Kind::User => "#microsoft.graph.user",
            Kind::Group => "#microsoft.graph.group",
            Kind::Device => "#microsoft.graph.device",
            Kind::ServicePrincipal => "#microsoft.graph.servicePrincipal",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntraUser {
    pub id: String,
    pub mail: Option<String>,
    pub upn: String,
    pub enabled: bool,
}

impl EntraUser {
    /// An enabled member user whose mail and UPN are `email`.
    pub fn new(id: &str, email: &str) -> EntraUser {
        EntraUser {
            id: id.into(),
            mail: Some(email.into()),
            upn: email.into(),
            enabled: true,
        }
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => json!(self.id),
            "mail" => json!(self.mail),
            "userPrincipalName" => json!(self.upn),
            "accountEnabled" => json!(self.enabled),
            "displayName" => json!(self.upn.split('@').next().unwrap_or_default()),
            "userType" => json!(if self.upn.contains("#EXT#") { "Guest" } else { "Member" }),
            "givenName" | "surname" | "jobTitle" | "mobilePhone" | "officeLocation" | "preferredLanguage" => {
                Value::Null
            }
            "businessPhones" => json!([]),
            _ => return None,
        })
    }
}

/// Graph's default user properties (no `accountEnabled`).
const USER_DEFAULT: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntraGroup {
    pub id: String,
    pub name: String,
    pub members: Vec<(Kind, String)>,
}

impl EntraGroup {
    pub fn new(id: &str, name: &str, members: Vec<(Kind, String)>) -> EntraGroup {
        EntraGroup {
            id: id.into(),
            name: name.into(),
            members,
        }
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => json!(self.id),
            "displayName" => json!(self.name),
            "description" | "mail" => Value::Null,
            "mailEnabled" => json!(false),
            "securityEnabled" => json!(true),
            "groupTypes" => json!([]),
            _ => return None,
        })
    }
}

/// A change the users delta reports.
#[derive(Clone, Debug)]
enum Change {
    Upsert(String),
    Removed(String, &'static str),
}

/// How `@removed` is written in the users delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovedShape {
    /// `{"reason": "changed"}`.
    Object,
    /// `"deleted"` (the shape of `members@delta`).
    Text,
}

/// The public key a federated credential's issuer signs with: SPKI PEM, or a JWK's `n`/`e`.
#[derive(Clone, Debug)]
pub enum IssuerKey {
    Pem(String),
    Components { n: String, e: String },
}

impl IssuerKey {
    fn decoding_key(&self) -> DecodingKey {
        match self {
            IssuerKey::Pem(pem) => {
                let der = pem_body(pem);
                use x509_parser::prelude::FromDer;
                let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der).expect("an SPKI public key");
                DecodingKey::from_rsa_der(&spki.subject_public_key.data)
            }
            IssuerKey::Components { n, e } => DecodingKey::from_rsa_components(n, e).expect("JWK n and e"),
        }
    }
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).expect("PEM base64")
}

/// The app's federated identity credential.
#[derive(Clone, Debug)]
pub struct Federation {
    pub issuer: String,
    pub subject: String,
    pub key: IssuerKey,
}

/// An answer programmed for requests inside a `$batch`.
#[derive(Clone, Debug)]
pub struct BatchedFailure {
    pub status: u16,
    pub retry_after: Option<String>,
}

pub struct State {
    base: String,
    client_id: String,
    secret: Option<String>,
    /// Registered certificate: (x5t, PKCS#1 public key DER).
    certificate: Option<(String, Vec<u8>)>,
    federation: Option<Federation>,
    permissions: HashSet<String>,
    expires_in: u64,
    /// Token → (expiry, permissions when issued).
    tokens: HashMap<String, (Instant, HashSet<String>)>,
    users: Vec<EntraUser>,
    deleted: Vec<EntraUser>,
    groups: Vec<EntraGroup>,
    units: HashMap<String, Vec<(Kind, String)>>,
    pub users_page: usize,
    pub groups_page: usize,
    pub members_page: usize,
    pub delta_page: usize,
    log: Vec<Change>,
    /// Delta tokens issued: token → position in `log`.
    delta_tokens: HashMap<String, usize>,
    removed_shape: RemovedShape,
    batched_failures: HashMap<&'static str, VecDeque<(usize, BatchedFailure, usize)>>,
    /// Every request inside a batch: (route, path and query).
    batched: Vec<(Option<&'static str>, String)>,
}

/// The double.
pub struct EntraDouble {
    double: HttpDouble<State>,
}

/// Graph's error body.
pub fn graph_error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "innerError": {
        "date": "2026-01-01T00:00:00", "request-id": new_id(), "client-request-id": new_id()}}})
}

/// 429 as Graph throttles: `Retry-After` and the `x-ms-throttle-*` headers.
pub fn throttled(retry_after: &str) -> Failure {
    Failure::json(
        429,
        graph_error("TooManyRequests", "Too many requests. Please try again later."),
    )
    .header("retry-after", retry_after)
    .header("x-ms-throttle-scope", "Tenant_Application/ReadOnly/app/tenant")
    .header("x-ms-throttle-information", "ResourceUnitLimitExceeded")
}

/// 503 with `Retry-After`, as Graph answers when busy.
pub fn unavailable(retry_after: &str) -> Failure {
    Failure::json(503, graph_error("serviceNotAvailable", "Service unavailable")).header("retry-after", retry_after)
}

fn aadsts(status: u16, error: &str, code: u64, description: &str) -> ResponseTemplate {
    json_response(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: 2026-01-01 00:00:00Z", new_id(), new_id()),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": new_id(),
            "correlation_id": new_id(),
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `(x5t, PKCS#1 public key DER)` of a PEM certificate.
pub fn certificate_identity(cert_pem: &str) -> (String, Vec<u8>) {
    let der = pem_body(cert_pem.split("-----END CERTIFICATE-----").next().unwrap());
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("a certificate");
    (
        URL_SAFE_NO_PAD.encode(sha1.as_ref()),
        cert.public_key().subject_public_key.data.to_vec(),
    )
}

/// A ServiceAccount token as a cluster issues it: RS256 signed with `issuer_key` (PEM), for
/// `audience`, valid for `lifetime` seconds from now (negative: already expired).
pub fn service_account_token(issuer_key: &str, issuer: &str, subject: &str, audience: &str, lifetime: i64) -> String {
    let key = dirsync::net::jwt::SigningKey::from_rsa_pem(issuer_key).expect("the issuer key");
    let now = now_secs() as i64;
    let claims = json!({"iss": issuer, "sub": subject, "aud": [audience], "iat": now - 60, "nbf": now - 60, "exp": now + lifetime,
        "kubernetes.io": {"namespace": "identity", "serviceaccount": {"name": "x", "uid": new_id()}}});
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.kid = Some("sa-key".into());
    dirsync::net::jwt::sign(&header, &claims, &key).expect("sign")
}

impl EntraDouble {
    /// A tenant ([`TENANT`]) with an app that has a client secret and both read permissions,
    /// and an empty directory.
    pub async fn start() -> EntraDouble {
        dirsync::net::jwt::install();
        let state = State {
            base: String::new(),
            client_id: new_id(),
            secret: Some(format!("s3cr3t~{}", new_id().replace('-', ""))),
            certificate: None,
            federation: None,
            permissions: [USER_READ_ALL, GROUP_MEMBER_READ_ALL, ADMINISTRATIVE_UNIT_READ_ALL]
                .into_iter()
                .map(String::from)
                .collect(),
            expires_in: 3599,
            tokens: HashMap::new(),
            users: Vec::new(),
            deleted: Vec::new(),
            groups: Vec::new(),
            units: HashMap::new(),
            users_page: 999,
            groups_page: 999,
            members_page: 999,
            delta_page: 200,
            log: Vec::new(),
            delta_tokens: HashMap::new(),
            removed_shape: RemovedShape::Object,
            batched_failures: HashMap::new(),
            batched: Vec::new(),
        };
        let double = HttpDouble::start(state, route, State::handle).await;
        let base = double.uri();
        double.state().base = base;
        EntraDouble { double }
    }

    pub fn state(&self) -> StateGuard<'_, State> {
        self.double.state()
    }

    pub fn uri(&self) -> String {
        self.double.uri()
    }

    pub fn client_id(&self) -> String {
        self.state().client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.state().secret.clone().unwrap_or_default()
    }

    /// A `spec.source.entraId` for this double with the client secret in [`SECRET_NAME`].
    pub fn spec(&self) -> EntraIdSource {
        EntraIdSource {
            tenant_id: TENANT.into(),
            credentials_secret_ref: Some(EntraCredentialsRef {
                name: SECRET_NAME.into(),
                client_id_key: "client_id".into(),
                client_secret_key: "client_secret".into(),
                ..Default::default()
            }),
            authority_url: Some(self.uri()),
            graph_url: Some(self.uri()),
            ..Default::default()
        }
    }

    /// The Secret of [`EntraDouble::spec`].
    pub fn secrets(&self) -> MemorySecrets {
        MemorySecrets::new()
            .with(SECRET_NAME, "client_id", self.client_id())
            .with(SECRET_NAME, "client_secret", self.client_secret())
    }

    /// Registers a certificate (PEM) on the app and removes its client secret.
    pub fn use_certificate(&self, cert_pem: &str) {
        let mut s = self.state();
        s.certificate = Some(certificate_identity(cert_pem));
        s.secret = None;
    }

    /// Adds a federated identity credential and removes the client secret.
    pub fn trust_federated(&self, federation: Federation) {
        let mut s = self.state();
        s.federation = Some(federation);
        s.secret = None;
    }

    /// The app's application permissions with admin consent (tokens issued later carry them).
    pub fn set_permissions(&self, permissions: &[&str]) {
        self.state().permissions = permissions.iter().map(|p| p.to_string()).collect();
    }

    /// Lifetime of new tokens (`expires_in`).
    pub fn set_expires_in(&self, seconds: u64) {
        self.state().expires_in = seconds;
    }

    /// Every issued token becomes unknown (the next call gets 401).
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Server page sizes: users, groups, members, delta.
    pub fn set_page_sizes(&self, users: usize, groups: usize, members: usize, delta: usize) {
        let mut s = self.state();
        s.users_page = users.max(1);
        s.groups_page = groups.max(1);
        s.members_page = members.max(1);
        s.delta_page = delta.max(1);
    }

    pub fn set_removed_shape(&self, shape: RemovedShape) {
        self.state().removed_shape = shape;
    }

    /// Replaces the directory (no delta changes are recorded).
    pub fn set_directory(&self, users: Vec<EntraUser>, groups: Vec<EntraGroup>) {
        let mut s = self.state();
        s.users = users;
        s.groups = groups;
    }

    /// An administrative unit with these members.
    pub fn set_unit(&self, id: &str, members: Vec<(Kind, String)>) {
        self.state().units.insert(id.into(), members);
    }

    pub fn add_user(&self, user: EntraUser) {
        let mut s = self.state();
        s.log.push(Change::Upsert(user.id.clone()));
        s.users.push(user);
    }

    pub fn update_user(&self, id: &str, change: impl FnOnce(&mut EntraUser)) {
        let mut s = self.state();
        let user = s.users.iter_mut().find(|u| u.id == id).expect("a user of the double");
        change(user);
        s.log.push(Change::Upsert(id.into()));
    }

    /// Deletes a user: to the recycle bin (`@removed` reason `changed`), or permanently
    /// (`deleted`). It leaves every group.
    pub fn delete_user(&self, id: &str, permanently: bool) {
        let mut s = self.state();
        let at = s.users.iter().position(|u| u.id == id).expect("a user of the double");
        let user = s.users.remove(at);
        for g in &mut s.groups {
            g.members.retain(|(_, m)| m != id);
        }
        if !permanently {
            s.deleted.push(user);
        }
        s.log.push(Change::Removed(
            id.into(),
            if permanently { "deleted" } else { "changed" },
        ));
    }

    pub fn add_member(&self, group: &str, kind: Kind, id: &str) {
        let mut s = self.state();
        let g = s
            .groups
            .iter_mut()
            .find(|g| g.id == group)
            .expect("a group of the double");
        g.members.push((kind, id.into()));
    }

    pub fn delete_group(&self, id: &str) {
        self.state().groups.retain(|g| g.id != id);
    }

    /// Every delta link issued so far is refused from now on (410).
    pub fn expire_delta_links(&self) {
        self.state().delta_tokens.clear();
    }

    pub fn fail_next(&self, route: &'static str, times: usize, failure: Failure) {
        self.double.fail_next(route, times, failure);
    }

    pub fn fail_after(&self, route: &'static str, ok: usize, times: usize, failure: Failure) {
        self.double.fail_after(route, ok, times, failure);
    }

    /// Inside batches: lets `ok` requests to `route` through, then answers `times` of them with
    /// `status` (and `Retry-After` in the answer's own headers).
    pub fn fail_batched(&self, route: &'static str, ok: usize, times: usize, status: u16, retry_after: Option<&str>) {
        let failure = BatchedFailure {
            status,
            retry_after: retry_after.map(str::to_string),
        };
        self.state()
            .batched_failures
            .entry(route)
            .or_default()
            .push_back((ok, failure, times));
    }

    pub fn set_latency(&self, latency: Option<Duration>) {
        self.double.set_latency(latency);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.double.requests()
    }

    pub fn requests_to(&self, route: &str) -> Vec<RecordedRequest> {
        self.double.requests_to(route)
    }

    /// Requests that came inside batches: (route, path and query under `/v1.0`).
    pub fn batched(&self) -> Vec<(Option<&'static str>, String)> {
        self.state().batched.clone()
    }

    /// HTTP requests by route.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for r in self.requests() {
            let name = route_of(&r.method, &r.path).unwrap_or("unknown");
            *out.entry(name.to_string()).or_default() += 1;
        }
        out
    }

    /// Requests inside batches, by route.
    pub fn batched_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for (r, _) in self.batched() {
            *out.entry(r.unwrap_or("unknown").to_string()).or_default() += 1;
        }
        out
    }
}

fn route(request: &Request) -> Option<&'static str> {
    route_of(request.method.as_str(), request.url.path())
}

fn route_of(method: &str, path: &str) -> Option<&'static str> {
    if method == "POST" && path.ends_with("/oauth2/v2.0/token") {
        return Some("token");
    }
    let rest = path.strip_prefix("/v1.0")?;
    if method == "POST" {
        return (rest == "/$batch").then_some("batch");
    }
    graph_route(rest)
}

/// The route of a GET under `/v1.0`.
fn graph_route(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["users"] => Some("users"),
        ["users", "delta"] => Some("users_delta"),
        ["groups"] => Some("groups"),
        ["groups", _, "members"] => Some("members"),
        ["directory", "administrativeUnits", _, "members"] => Some("au_members"),
        ["directory", "deletedItems", "microsoft.graph.user"] => Some("deleted_users"),
        _ => None,
    }
}

/// What the Graph part answers: status, headers, JSON body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json;odata.metadata=minimal".into())],
            body,
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: graph_error(code, message),
        }
    }

    fn template(self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status);
        for (k, v) in &self.headers {
            if !k.eq_ignore_ascii_case("content-type") {
                t = t.insert_header(k.as_str(), v.as_str());
            }
        }
        t.set_body_raw(self.body.to_string().into_bytes(), "application/json; charset=utf-8")
    }
}

fn query(url: &reqwest::Url) -> HashMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The nextLink of a page: the request's URL (on the double's own origin) with `$skiptoken`
/// replaced.
fn next_link(base: &str, url: &reqwest::Url, token: &str) -> String {
    let mut next = reqwest::Url::parse(&format!("{base}{}", url.path())).expect("a URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "$skiptoken")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut q = String::new();
    for (k, v) in pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("$skiptoken", token)])
    {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(&format!("{k}={v}"));
    }
    next.set_query(Some(&q));
    next.to_string()
}

impl State {
    fn handle(&mut self, route: &'static str, request: &Request) -> ResponseTemplate {
        if route == "token" {
            return self.token(request);
        }
        let permissions = match self.authorised(request) {
            Ok(p) => p,
            Err(answer) => return answer.template(),
        };
        if route == "batch" {
            return self.batch(request, &permissions);
        }
        self.graph(route, &request.url, &permissions).template()
    }

    fn token(&mut self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let tenant = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        if !tenant.eq_ignore_ascii_case(TENANT) {
            return aadsts(
                400,
                "invalid_request",
                90002,
                &format!(
                    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                ),
            );
        }
        let form: HashMap<String, String> = parse_form(&String::from_utf8_lossy(&request.body))
            .into_iter()
            .collect();
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if field("grant_type") != "client_credentials" {
            return aadsts(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            );
        }
        if field("scope") != format!("{}/.default", self.base) {
            return aadsts(
                400,
                "invalid_scope",
                1002012,
                &format!(
                    "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                    field("scope")
                ),
            );
        }
        if field("client_id") != self.client_id {
            return aadsts(
                400,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{}' was not found in the directory '{TENANT}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                    field("client_id")
                ),
            );
        }
        let token_url = format!("{}{}", self.base, path);
        if let Some(secret) = form.get("client_secret") {
            if self.secret.as_deref() != Some(secret.as_str()) {
                return aadsts(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
                );
            }
        } else if let Some(assertion) = form.get("client_assertion") {
            if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
                return aadsts(400, "invalid_request", 700025, "Invalid client assertion type.");
            }
            if let Some(refusal) = self.check_assertion(assertion, &token_url) {
                return refusal;
            }
        } else {
            return aadsts(
                400,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
        let token = format!("eyJ0eXAi.{}.{}", self.tokens.len() + 1, new_id().replace('-', ""));
        self.tokens.insert(
            token.clone(),
            (
                Instant::now() + Duration::from_secs(self.expires_in),
                self.permissions.clone(),
            ),
        );
        json_response(
            200,
            json!({"token_type": "Bearer", "expires_in": self.expires_in, "ext_expires_in": self.expires_in, "access_token": token}),
        )
    }

    /// `None` when the assertion is accepted, else the refusal.
    fn check_assertion(&self, assertion: &str, token_url: &str) -> Option<ResponseTemplate> {
        let bad = |code: u64, text: &str| Some(aadsts(401, "invalid_client", code, text));
        let Ok(header) = jsonwebtoken::decode_header(assertion) else {
            return bad(50027, "JWT token is invalid or malformed.");
        };
        if header.alg != Algorithm::RS256 {
            return bad(700027, "Client assertion contains an invalid signature algorithm.");
        }
        if let Some(x5t) = &header.x5t {
            let Some((registered, key)) = &self.certificate else {
                return bad(
                    700027,
                    "The certificate with identifier used to sign the client assertion is not registered on application.",
                );
            };
            if x5t != registered {
                return bad(
                    700027,
                    "The certificate with identifier used to sign the client assertion is not registered on application.",
                );
            }
            let mut v = Validation::new(Algorithm::RS256);
            v.set_audience(&[token_url]);
            v.set_issuer(&[self.client_id.as_str()]);
            v.sub = Some(self.client_id.clone());
            v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
            v.validate_nbf = true;
            let data = match jsonwebtoken::decode::<Value>(assertion, &DecodingKey::from_rsa_der(key), &v) {
                Ok(d) => d,
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    return match e.kind() {
                        K::ExpiredSignature | K::ImmatureSignature => {
                            bad(700024, "Client assertion is not within its valid time range.")
                        }
                        K::InvalidSignature => bad(700027, "Client assertion failed signature validation."),
                        _ => bad(
                            700023,
                            &format!("Client assertion audience, issuer or subject is invalid ({e})."),
                        ),
                    };
                }
            };
            let c = &data.claims;
            let (nbf, exp) = (c["nbf"].as_u64().unwrap_or(0), c["exp"].as_u64().unwrap_or(0));
            if exp.saturating_sub(nbf) > 3600 || c["jti"].as_str().is_none_or(str::is_empty) {
                return bad(700023, "Client assertion lifetime is too long or it has no jti.");
            }
            return None;
        }
        // A federated token: find the credential by issuer, subject and audience first.
        let Some(f) = &self.federation else {
            return bad(700027, "Client assertion failed signature validation.");
        };
        let claims: Value = assertion
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let aud_ok = match &claims["aud"] {
            Value::String(a) => a == FEDERATION_AUDIENCE,
            Value::Array(a) => a.iter().any(|a| a == FEDERATION_AUDIENCE),
            _ => false,
        };
        if claims["iss"] != json!(f.issuer) || claims["sub"] != json!(f.subject) || !aud_ok {
            return Some(aadsts(
                400,
                "invalid_client",
                70021,
                &format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: '{}'.",
                    claims["iss"].as_str().unwrap_or_default(),
                    claims["sub"].as_str().unwrap_or_default(),
                    claims["aud"]
                ),
            ));
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[FEDERATION_AUDIENCE]);
        v.set_issuer(&[f.issuer.as_str()]);
        v.sub = Some(f.subject.clone());
        match jsonwebtoken::decode::<Value>(assertion, &f.key.decoding_key(), &v) {
            Ok(_) => None,
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature
                | jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    bad(700024, "Client assertion is not within its valid time range.")
                }
                _ => bad(50013, &format!("Assertion failed signature validation. [Reason - {e}]")),
            },
        }
    }

    /// The permissions of the request's token, or the 401 answer.
    fn authorised(&self, request: &Request) -> Result<HashSet<String>, Answer> {
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let refuse = |message: &str| {
            let mut a = Answer::error(401, "InvalidAuthenticationToken", message);
            a.headers.push((
                "WWW-Authenticate".into(),
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\""
                    .into(),
            ));
            a
        };
        if token.is_empty() {
            return Err(refuse("Access token is empty."));
        }
        match self.tokens.get(token) {
            Some((expiry, permissions)) if Instant::now() < *expiry => Ok(permissions.clone()),
            _ => Err(refuse("Access token has expired or is not yet valid.")),
        }
    }

    fn batch(&mut self, request: &Request, permissions: &HashSet<String>) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return Answer::error(400, "BadRequest", "Invalid batch payload format.").template();
        };
        let Some(requests) = body["requests"].as_array() else {
            return Answer::error(400, "BadRequest", "Invalid batch payload format.").template();
        };
        if requests.len() > 20 {
            return Answer::error(400, "BadRequest", "Limit of 20 requests per batch exceeded.").template();
        }
        let mut ids = HashSet::new();
        let mut responses = Vec::new();
        for r in requests {
            let (Some(id), Some(method), Some(url)) = (r["id"].as_str(), r["method"].as_str(), r["url"].as_str())
            else {
                return Answer::error(400, "BadRequest", "Each request needs an id, a method and a url.").template();
            };
            if !ids.insert(id.to_string()) {
                return Answer::error(400, "BadRequest", "Batch request ids must be unique.").template();
            }
            let relative = format!("/{}", url.trim_start_matches('/'));
            let full = reqwest::Url::parse(&format!("{}/v1.0{relative}", self.base)).expect("a batched URL");
            let route = if method == "GET" {
                graph_route(full.path().trim_start_matches("/v1.0"))
            } else {
                None
            };
            self.batched.push((route, relative.clone()));
            let answer = match route {
                None => Answer::error(400, "BadRequest", "Invalid request."),
                Some(route) => match self.batched_failure(route) {
                    Some(f) => {
                        let mut a = match f.status {
                            429 => Answer::error(429, "TooManyRequests", "Too many requests."),
                            404 => Answer::error(404, "Request_ResourceNotFound", "Resource does not exist."),
                            403 => Answer::error(
                                403,
                                "Authorization_RequestDenied",
                                "Insufficient privileges to complete the operation.",
                            ),
                            s => Answer::error(s, "generalException", "General exception while processing."),
                        };
                        if let Some(ra) = f.retry_after {
                            a.headers.push(("Retry-After".into(), ra));
                        }
                        a
                    }
                    None => self.graph(route, &full, permissions),
                },
            };
            let headers: serde_json::Map<String, Value> =
                answer.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            responses.push(json!({"id": id, "status": answer.status, "headers": headers, "body": answer.body}));
        }
        // Graph answers in any order.
        responses.reverse();
        Answer::ok(json!({ "responses": responses })).template()
    }

    fn batched_failure(&mut self, route: &'static str) -> Option<BatchedFailure> {
        let queue = self.batched_failures.get_mut(route)?;
        let (ok, failure, left) = queue.front_mut()?;
        if *ok > 0 {
            *ok -= 1;
            return None;
        }
        let f = failure.clone();
        *left -= 1;
        if *left == 0 {
            queue.pop_front();
        }
        Some(f)
    }

    fn graph(&mut self, route: &'static str, url: &reqwest::Url, permissions: &HashSet<String>) -> Answer {
        let needs = match route {
            "users" | "users_delta" | "deleted_users" => [USER_READ_ALL, "Directory.Read.All"],
            "au_members" => [ADMINISTRATIVE_UNIT_READ_ALL, "Directory.Read.All"],
            _ => [GROUP_MEMBER_READ_ALL, "Directory.Read.All"],
        };
        if !needs.iter().any(|p| permissions.contains(*p)) {
            return Answer::error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            );
        }
        let q = query(url);
        let top = match q.get("$top").map(|t| t.parse::<usize>()) {
            None => 100,
            Some(Ok(t)) if (1..=999).contains(&t) => t,
            Some(_) => {
                return Answer::error(
                    400,
                    "Request_BadRequest",
                    "Invalid page size specified: the value of $top must be between 1 and 999.",
                );
            }
        };
        let select: Option<Vec<String>> = q.get("$select").map(|s| s.split(',').map(str::to_string).collect());
        let token = q.get("$skiptoken").map(String::as_str);
        let segments: Vec<String> = url.path().split('/').map(str::to_string).collect();
        match route {
            "users" => {
                let fields = match user_fields(&select) {
                    Ok(f) => f,
                    Err(a) => return a,
                };
                let size = top.min(self.users_page);
                self.page(url, &self.users, size, token, "users", |u| {
                    object(&fields, |f| u.field(f))
                })
            }
            "deleted_users" => {
                let fields = match user_fields(&select) {
                    Ok(f) => f,
                    Err(a) => return a,
                };
                let size = top.min(self.users_page);
                self.page(url, &self.deleted, size, token, "directoryObjects", |u| {
                    let mut v = object(&fields, |f| u.field(f));
                    v["@odata.type"] = json!("#microsoft.graph.user");
                    v
                })
            }
            "groups" => {
                let fields: Vec<String> = select.unwrap_or_else(|| vec!["id".into(), "displayName".into()]);
                if let Some(bad) = fields
                    .iter()
                    .find(|f| EntraGroup::new("", "", vec![]).field(f).is_none())
                {
                    return unknown_property(bad, "group");
                }
                let size = top.min(self.groups_page);
                self.page(url, &self.groups, size, token, "groups", |g| {
                    object(&fields, |f| g.field(f))
                })
            }
            "members" | "au_members" => {
                let id = &segments[segments.len() - 2];
                let members = if route == "members" {
                    self.groups.iter().find(|g| &g.id == id).map(|g| g.members.clone())
                } else {
                    self.units.get(id).cloned()
                };
                let Some(members) = members else {
                    return Answer::error(
                        404,
                        "Request_ResourceNotFound",
                        &format!(
                            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                        ),
                    );
                };
                let fields = select.unwrap_or_else(|| vec!["id".into()]);
                let size = top.min(self.members_page);
                self.page(url, &members, size, token, "directoryObjects", |(kind, id)| {
                    let mut v = json!({"@odata.type": kind.odata(), "id": id});
                    for f in &fields {
                        if f != "id" && v.get(f).is_none() {
                            v[f] = Value::Null;
                        }
                    }
                    v
                })
            }
            "users_delta" => self.delta(url, &q, select),
            _ => Answer::error(400, "BadRequest", "Unsupported request."),
        }
    }

    fn page<T>(
        &self,
        url: &reqwest::Url,
        items: &[T],
        size: usize,
        token: Option<&str>,
        context: &str,
        to_json: impl Fn(&T) -> Value,
    ) -> Answer {
        let Ok((slice, next)) = page(items, size, token) else {
            return Answer::error(
                400,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            );
        };
        let value: Vec<Value> = slice.iter().map(to_json).collect();
        let mut body = json!({"@odata.context": format!("{}/v1.0/$metadata#{context}", self.base), "value": value});
        if let Some(next) = next {
            body["@odata.nextLink"] = json!(next_link(&self.base, url, &next));
        }
        Answer::ok(body)
    }

    fn delta_link(&mut self, position: usize) -> String {
        let token = format!("dt{}{}", position, new_id().replace('-', ""));
        self.delta_tokens.insert(token.clone(), position);
        format!("{}/v1.0/users/delta?$deltatoken={token}", self.base)
    }

    fn delta(&mut self, url: &reqwest::Url, q: &HashMap<String, String>, select: Option<Vec<String>>) -> Answer {
        // The client's fields (the delta link encodes them at Graph; here they are fixed).
        let fields: Vec<String> = select.unwrap_or_else(|| {
            ["id", "mail", "userPrincipalName", "accountEnabled"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        if let Some(bad) = fields.iter().find(|f| EntraUser::new("", "").field(f).is_none()) {
            return unknown_property(bad, "user");
        }
        let context = format!("{}/v1.0/$metadata#users(id)", self.base);
        match q.get("$deltatoken").map(String::as_str) {
            Some("latest") => {
                let link = self.delta_link(self.log.len());
                Answer::ok(json!({"@odata.context": context, "value": [], "@odata.deltaLink": link}))
            }
            None if q.get("$skiptoken").is_none() => {
                // A full round: every user, then a delta link at the end of the log.
                let position = self.log.len();
                let entries: Vec<Value> = self.users.iter().map(|u| object(&fields, |f| u.field(f))).collect();
                self.delta_page_of(url, entries, None, position, &context)
            }
            None => {
                // The next page of a round: `$skiptoken` = `<from>.<to>.<page token>`.
                let sk = q["$skiptoken"].clone();
                let parts: Vec<&str> = sk.splitn(3, '.').collect();
                let (Some(from), Some(to), Some(inner)) = (
                    parts.first().and_then(|p| p.parse::<usize>().ok()),
                    parts.get(1).and_then(|p| p.parse::<usize>().ok()),
                    parts.get(2),
                ) else {
                    return Answer::error(400, "BadRequest", "Invalid skip token.");
                };
                let entries = if from == usize::MAX {
                    self.users.iter().map(|u| object(&fields, |f| u.field(f))).collect()
                } else {
                    self.changes(from, to, &fields)
                };
                self.delta_page_of(url, entries, Some((from, inner)), to, &context)
            }
            Some(token) => match self.delta_tokens.get(token).copied() {
                None => {
                    let mut a = Answer::error(
                        410,
                        "syncStateNotFound",
                        "The sync state generation is not found or has expired. Please restart the sync without a state token.",
                    );
                    a.headers
                        .push(("Location".into(), format!("{}/v1.0/users/delta", self.base)));
                    a
                }
                Some(from) => {
                    let to = self.log.len();
                    let entries = self.changes(from, to, &fields);
                    self.delta_page_of(url, entries, Some((from, "")), to, &context)
                }
            },
        }
    }

    /// The entries of the changes in `log[from..to]`: the last change of each user.
    fn changes(&self, from: usize, to: usize, fields: &[String]) -> Vec<Value> {
        let mut last: Vec<(String, &Change)> = Vec::new();
        for change in &self.log[from.min(self.log.len())..to.min(self.log.len())] {
            let id = match change {
                Change::Upsert(id) | Change::Removed(id, _) => id.clone(),
            };
            last.retain(|(i, _)| *i != id);
            last.push((id, change));
        }
        last.into_iter()
            .map(|(id, change)| match change {
                Change::Upsert(_) => match self.users.iter().find(|u| u.id == id) {
                    Some(u) => object(fields, |f| u.field(f)),
                    None => self.removed(&id, "changed"),
                },
                Change::Removed(_, reason) => self.removed(&id, reason),
            })
            .collect()
    }

    fn removed(&self, id: &str, reason: &str) -> Value {
        let removed = match self.removed_shape {
            RemovedShape::Object => json!({"reason": reason}),
            RemovedShape::Text => json!(reason),
        };
        json!({"@odata.type": "#microsoft.graph.user", "id": id, "@removed": removed})
    }

    /// One page of a delta round; the last page carries the new delta link.
    fn delta_page_of(
        &mut self,
        _url: &reqwest::Url,
        entries: Vec<Value>,
        at: Option<(usize, &str)>,
        to: usize,
        context: &str,
    ) -> Answer {
        let (from, inner) = match at {
            Some((from, inner)) if !inner.is_empty() => (from, Some(inner.to_string())),
            Some((from, _)) => (from, None),
            None => (usize::MAX, None),
        };
        let Ok((slice, next)) = page(&entries, self.delta_page, inner.as_deref()) else {
            return Answer::error(400, "BadRequest", "Invalid skip token.");
        };
        let mut body = json!({"@odata.context": context, "value": slice});
        match next {
            Some(n) => {
                // A next page of the same round: no $deltatoken, a $skiptoken.
                let mut link = reqwest::Url::parse(&format!("{}/v1.0/users/delta", self.base)).unwrap();
                link.set_query(Some(&format!("$skiptoken={from}.{to}.{n}")));
                body["@odata.nextLink"] = json!(link.to_string());
            }
            None => body["@odata.deltaLink"] = json!(self.delta_link(to)),
        }
        Answer::ok(body)
    }
}

fn user_fields(select: &Option<Vec<String>>) -> Result<Vec<String>, Answer> {
    let fields: Vec<String> = select
        .clone()
        .unwrap_or_else(|| USER_DEFAULT.iter().map(|s| s.to_string()).collect());
    match fields.iter().find(|f| EntraUser::new("", "").field(f).is_none()) {
        Some(bad) => Err(unknown_property(bad, "user")),
        None => Ok(fields),
    }
}

fn unknown_property(name: &str, kind: &str) -> Answer {
    Answer::error(
        400,
        "Request_BadRequest",
        &format!("Could not find a property named '{name}' on type 'microsoft.graph.{kind}'."),
    )
}

fn object(fields: &[String], value: impl Fn(&str) -> Option<Value>) -> Value {
    let mut map = serde_json::Map::with_capacity(fields.len());
    for f in fields {
        map.insert(f.clone(), value(f).unwrap_or(Value::Null));
    }
    Value::Object(map)
}
