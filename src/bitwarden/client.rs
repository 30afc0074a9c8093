//! The HTTP client of the Bitwarden Public API (`bitwarden-api.md`): Bitwarden's URLs, token
//! request, import and lists, and what Bitwarden's answers mean. Retries, time budget, token
//! cache, TLS, scrubbing and metrics are [`crate::net`]'s.
//!
//! One [`Client`] per organization: it holds the organization API key, fetches and caches an
//! access token (client credentials), sends imports, reads members, groups and collections, and
//! writes collections' group access (a complete replacement, so idempotent; paced within the
//! cloud's write limits by [`crate::net::pace`]). Failures map to the closed set of condition
//! reasons:
//!
//! | What happened | [`Error`] |
//! |---|---|
//! | token endpoint answers 400 (`invalid_client`, `invalid_scope`, ...) or another 4xx | `BitwardenAuthFailed` |
//! | the API answers 401 again after one token renewal, or 403 | `BitwardenAuthFailed` |
//! | the API answers another 4xx | `BitwardenRejected` |
//! | 429 until the retries or the time budget run out, or a `Retry-After` too long to wait for | `RateLimited` |
//! | 5xx or a transport error until the retries or the time budget run out, a TLS failure, an unexpected redirect, a 200 that is not Bitwarden's | `BitwardenUnavailable` |
//!
//! The import is not idempotent while it runs: it is sent again only when the server cannot have
//! started it (connection refused, 429, 503 with `Retry-After`). After a timeout, a broken answer
//! or another 5xx it fails at once with `BitwardenUnavailable` saying that it
//! [may or may not have been applied](crate::net::OUTCOME_UNKNOWN).
//!
//! Neither the client secret nor an access token ever appears in an error or a log line.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::debug;

use super::types::ListResponse;
use super::urls::Urls;
use super::{BitwardenApi, CollectionUpdate, ImportRequest, OrgCollection, OrgGroup, OrgMember, Put};
use crate::Error;
use crate::api::BitwardenSpec;
use crate::api::FieldError;
use crate::api::checks::{check_url, is_uuid, parse_duration};
pub use crate::net::RetryPolicy;
use crate::net::tls::parse_ca_bundle;
use crate::net::{Call, HttpClient, HttpOptions, OUTCOME_UNKNOWN, Reply, Scrubber, Side, Token, TokenCache};
use crate::secrets::{SecretStore, SecretValue};

/// `deviceType` sent with the token request: 8 is `LinuxDesktop` in Bitwarden's `DeviceType`
/// enum (what Directory Connector, a desktop app, reports on Linux), known to every server
/// version including Vaultwarden.
pub const DEVICE_TYPE: u8 = 8;
/// `deviceName` sent with the token request.
pub const DEVICE_NAME: &str = "dirsync";
/// A cached token is renewed this long before it expires.
pub const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(60);
/// The longest `spec.bitwarden.timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 60);

const IMPORT_PATH: &str = "/public/organization/import";
const MEMBERS_PATH: &str = "/public/members";
const GROUPS_PATH: &str = "/public/groups";
const COLLECTIONS_PATH: &str = "/public/collections";
/// The cloud's limits on writes (per client IP, for PUT as for POST and DELETE).
pub const WRITE_LIMITS: [(usize, Duration); 2] = [(5, Duration::from_secs(1)), (60, Duration::from_secs(60))];
/// Upper bound on pages of a list, against a server whose continuation tokens never end.
const MAX_PAGES: usize = 10_000;
const LARGE_IMPORT_MESSAGE: &str = "You cannot import this much data at once";
const CA_FIELD: &str = "spec.bitwarden.caSecretRef";
const URL_FIELD: &str = "spec.bitwarden.serverUrl (or apiUrl / identityUrl)";
const TIMEOUT_FIELD: &str = "spec.bitwarden.timeout";

/// Connection settings of a [`Client`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOptions {
    /// Retries, and the time budget of one call (`spec.bitwarden.timeout`, 2 minutes).
    pub retry: RetryPolicy,
    /// TCP + TLS connect timeout (10 s).
    pub connect_timeout: Duration,
    /// Timeout of one attempt (the budget: large imports take a while); an attempt never runs
    /// past the call's budget either.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions::with_budget(crate::net::retry::DEFAULT_BUDGET)
    }
}

impl ClientOptions {
    /// The defaults with one call (retries included) bounded by `budget`.
    pub fn with_budget(budget: Duration) -> ClientOptions {
        ClientOptions {
            retry: RetryPolicy {
                budget,
                ..RetryPolicy::default()
            },
            connect_timeout: Duration::from_secs(10),
            request_timeout: budget,
        }
    }
}

/// `spec.bitwarden.timeout`, 2 minutes when not set.
pub fn timeout_of(spec: &BitwardenSpec) -> Result<Duration, Error> {
    let Some(text) = &spec.timeout else {
        return Ok(crate::net::retry::DEFAULT_BUDGET);
    };
    match parse_duration(text) {
        Ok(d) if d.is_zero() => Err(Error::invalid(TIMEOUT_FIELD, "must be more than 0s")),
        Ok(d) if d > MAX_TIMEOUT => Err(Error::invalid(TIMEOUT_FIELD, "must be at most 30m")),
        Ok(d) => Ok(d),
        Err(m) => Err(Error::invalid(TIMEOUT_FIELD, m)),
    }
}

/// Reads the organization API key (and the optional CA) named by the spec and builds a
/// [`Client`]. Fails with `SecretNotFound`/`SecretKeyMissing`, `BitwardenAuthFailed` (client id
/// not `organization.<uuid>`) or `InvalidSpec` (bad URL, bad CA bundle, bad timeout). Sends no
/// request.
pub async fn connect(spec: &BitwardenSpec, secrets: &dyn SecretStore) -> Result<Client, Error> {
    let urls = Urls::from_spec(spec);
    check_urls(spec, &urls)?;
    let options = ClientOptions::with_budget(timeout_of(spec)?);
    let key = &spec.api_key_secret_ref;
    let client_id = secrets.get(&key.name, &key.client_id_key).await?;
    let client_secret = secrets.get(&key.name, &key.client_secret_key).await?;
    let key_source = format!(
        "the API key in Secret {:?} (keys {:?} and {:?})",
        key.name, key.client_id_key, key.client_secret_key
    );
    let ca = match &spec.ca_secret_ref {
        Some(r) => {
            let pem = secrets.get(&r.name, &r.key).await?;
            let certs = parse_ca_bundle(pem.expose().as_bytes())
                .map_err(|e| Error::invalid(CA_FIELD, format!("Secret {:?} key {:?} {e}", r.name, r.key)))?;
            Some(certs)
        }
        None => None,
    };
    Client::build(
        urls,
        client_id.expose().trim(),
        SecretValue::new(client_secret.expose().trim()),
        ca,
        options,
        key_source,
    )
}

/// Derived URLs must be https (http only for loopback hosts), like the spec fields they come from.
fn check_urls(spec: &BitwardenSpec, urls: &Urls) -> Result<(), Error> {
    let source = |explicit: &Option<String>, field: &str| {
        if explicit.is_some() {
            field.to_string()
        } else if spec.server_url.is_some() {
            "spec.bitwarden.serverUrl".to_string()
        } else {
            "spec.bitwarden.region".to_string()
        }
    };
    let mut errors = Vec::new();
    for (url, path) in [
        (&urls.api, source(&spec.api_url, "spec.bitwarden.apiUrl")),
        (&urls.identity, source(&spec.identity_url, "spec.bitwarden.identityUrl")),
    ] {
        if let Err(message) = check_url(url, &["https"], &["http"])
            && !errors.iter().any(|e: &FieldError| e.path == path)
        {
            errors.push(FieldError { path, message });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidSpec(errors))
    }
}

/// The organization id of an organization API key's client id (`organization.<uuid>`).
pub fn organization_id(client_id: &str) -> Option<&str> {
    client_id.strip_prefix("organization.").filter(|id| is_uuid(id))
}

/// A stable device identifier for the token request: the first 16 bytes of
/// `sha256("dirsync-device:" + client_id)` as a UUID (version 8, RFC 4122 variant).
pub fn device_identifier(client_id: &str) -> String {
    let digest = Sha256::digest(format!("dirsync-device:{client_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The Bitwarden Public API client. Cheap to share behind an `Arc`; one token at a time.
pub struct Client {
    http: HttpClient,
    tokens: TokenCache,
    urls: Urls,
    client_id: String,
    client_secret: SecretValue,
    org_id: String,
    device_identifier: String,
    /// Where the API key comes from, for error messages (never the values).
    key_source: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.urls.api)
            .field("identity", &self.urls.identity)
            .field("organization_id", &self.org_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `urls` with the organization API key and an optional CA bundle (PEM), with
    /// the default timeouts and retries. Fails with `BitwardenAuthFailed` when `client_id` is not
    /// `organization.<uuid>`, `InvalidSpec` (`spec.bitwarden.caSecretRef`) on a bad CA bundle.
    pub fn new(
        urls: Urls,
        client_id: &str,
        client_secret: SecretValue,
        ca_pem: Option<&[u8]>,
    ) -> Result<Client, Error> {
        Client::with_options(urls, client_id, client_secret, ca_pem, ClientOptions::default())
    }

    /// [`Client::new`] with explicit timeouts and retry policy.
    pub fn with_options(
        urls: Urls,
        client_id: &str,
        client_secret: SecretValue,
        ca_pem: Option<&[u8]>,
        options: ClientOptions,
    ) -> Result<Client, Error> {
        let ca = match ca_pem {
            Some(pem) => {
                Some(parse_ca_bundle(pem).map_err(|e| Error::invalid(CA_FIELD, format!("the CA bundle {e}")))?)
            }
            None => None,
        };
        Client::build(
            urls,
            client_id,
            client_secret,
            ca,
            options,
            "the API key given to the client".to_string(),
        )
    }

    fn build(
        urls: Urls,
        client_id: &str,
        client_secret: SecretValue,
        ca: Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
        options: ClientOptions,
        key_source: String,
    ) -> Result<Client, Error> {
        let Some(org_id) = organization_id(client_id) else {
            return Err(Error::BitwardenAuthFailed(format!(
                "the client id of {key_source} must look like organization.<uuid>: use the \
                 organization API key (Admin Console → Settings → Organization info → View API \
                 key), not a personal API key"
            )));
        };
        let scrubber = Scrubber::new([client_secret.clone()]);
        let http = HttpClient::new(
            Side::Bitwarden,
            HttpOptions {
                retry: options.retry,
                connect_timeout: options.connect_timeout,
                request_timeout: options.request_timeout,
                ca,
                timeout_field: Some(TIMEOUT_FIELD.into()),
                ..HttpOptions::new(URL_FIELD, CA_FIELD)
            },
            scrubber.clone(),
        )?;
        Ok(Client {
            http,
            tokens: TokenCache::new(TOKEN_RENEW_MARGIN, scrubber),
            device_identifier: device_identifier(client_id),
            org_id: org_id.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            urls,
            key_source,
        })
    }

    /// The URLs this client talks to.
    pub fn urls(&self) -> &Urls {
        &self.urls
    }

    /// Drops the cached access token: the next call fetches a new one.
    pub async fn forget_token(&self) {
        self.tokens.clear().await;
    }

    /// A new access token, within the deadline of the call that needs it.
    async fn fetch_token(&self, deadline: Instant) -> Result<Token, Error> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let url = format!("{}/connect/token", self.urls.identity);
        let device_type = DEVICE_TYPE.to_string();
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "api.organization"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
            ("deviceType", device_type.as_str()),
            ("deviceIdentifier", self.device_identifier.as_str()),
            ("deviceName", DEVICE_NAME),
        ];
        // Asking for a token twice is harmless: idempotent.
        let call = Call::idempotent("token").until(deadline);
        let reply = self.http.send(call, |c| c.post(&url).form(&form)).await?;
        let status = reply.status;
        if status.is_success() {
            let token: TokenResponse = serde_json::from_slice(&reply.body)
                .ok()
                .filter(|t: &TokenResponse| !t.access_token.is_empty())
                .ok_or_else(|| {
                    Error::BitwardenUnavailable(format!(
                        "the identity service at {} answered HTTP {status} without an access \
                         token ({}): check spec.bitwarden.identityUrl (or serverUrl)",
                        reply.host,
                        reply.describe_body()
                    ))
                })?;
            return Ok(Token {
                value: SecretValue::new(token.access_token),
                lifetime: Duration::from_secs(token.expires_in.unwrap_or(3600)),
            });
        }
        if status.is_redirection() {
            return Err(self.http.redirect_error(&reply));
        }
        Err(Error::BitwardenAuthFailed(self.token_refusal(&reply)))
    }

    /// What a refused token request means, and what to fix.
    fn token_refusal(&self, reply: &Reply) -> String {
        let status = reply.status;
        let detail = reply.detail();
        let code = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_default();
        match code.as_str() {
            "invalid_client" | "invalid_grant" | "unauthorized_client" => format!(
                "Bitwarden rejected the organization API key ({code}): check the client id and \
                 client secret of {}; the API key may have been rotated (Admin Console → \
                 Settings → Organization info → View API key)",
                self.key_source
            ),
            "invalid_scope" => format!(
                "Bitwarden refused the api.organization scope (invalid_scope): {} must be an \
                 organization API key, not a personal one",
                self.key_source
            ),
            _ if status == StatusCode::BAD_REQUEST => format!(
                "the identity service at {} refused the token request (HTTP 400{}): check {}",
                reply.host,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                },
                self.key_source
            ),
            _ => format!(
                "the identity service at {} answered HTTP {status} to the token request{}: \
                 check spec.bitwarden.identityUrl (or serverUrl) and {}",
                reply.host,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                },
                self.key_source
            ),
        }
    }

    /// An authenticated API call (the token renewed once on a 401, within the call's budget).
    async fn api(
        &self,
        call: Call,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        json_body: Option<&Bytes>,
    ) -> Result<Reply, Error> {
        let url = format!("{}{path}", self.urls.api);
        self.http
            .send_authorised(
                call,
                &self.tokens,
                |deadline| self.fetch_token(deadline),
                |c, token| {
                    let mut request = c.request(method.clone(), &url).bearer_auth(token.expose());
                    if !query.is_empty() {
                        request = request.query(query);
                    }
                    if let Some(body) = json_body {
                        // A shared buffer: an attempt does not copy an import of a large directory.
                        request = request.header(CONTENT_TYPE, "application/json").body(body.clone());
                    }
                    request
                },
            )
            .await
    }

    /// The error of an API answer that is neither success nor retried.
    fn api_error(&self, what: &str, path: &str, reply: &Reply) -> Error {
        let status = reply.status;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Error::BitwardenAuthFailed(format!(
                "Bitwarden refused access to {} (HTTP {status}): check {}; the key may have been \
                 rotated, or the organization may not be allowed to use the Public API / directory sync",
                reply.request(),
                self.key_source
            ));
        }
        if status.is_redirection() {
            return self.http.redirect_error(reply);
        }
        let detail = reply.detail();
        if status.is_client_error() {
            let mut message = format!("Bitwarden rejected {what} (HTTP {status})");
            if !detail.is_empty() {
                message = format!("{message}: {detail}");
            }
            if status == StatusCode::BAD_REQUEST && detail.contains(LARGE_IMPORT_MESSAGE) {
                message.push_str(" — set spec.sync.largeImport: true to send more than 2000 members or groups");
            }
            if status == StatusCode::NOT_FOUND {
                message.push_str(&format!(
                    " — check spec.bitwarden.apiUrl (or serverUrl): {}{path} was not found",
                    self.urls.api
                ));
            }
            return Error::BitwardenRejected(message);
        }
        Error::BitwardenUnavailable(format!(
            "Bitwarden at {} answered {what} with an unexpected HTTP {status}{}",
            reply.host,
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ))
    }

    async fn list<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        what: &str,
    ) -> Result<Option<Vec<T>>, Error> {
        let mut items = Vec::new();
        let mut continuation: Option<String> = None;
        for page in 0..MAX_PAGES {
            let query: Vec<(&str, &str)> = continuation
                .as_deref()
                .map(|t| vec![("continuationToken", t)])
                .unwrap_or_default();
            let reply = self
                .api(Call::idempotent(operation), Method::GET, path, &query, None)
                .await?;
            if reply.status == StatusCode::NOT_FOUND && page == 0 {
                debug!(
                    operation,
                    path, "no such endpoint (404): server without it (Vaultwarden)"
                );
                return Ok(None);
            }
            if !reply.status.is_success() {
                return Err(self.api_error(what, path, &reply));
            }
            let list: ListResponse<T> = reply.json_as(Side::Bitwarden, "a list")?;
            items.extend(list.data);
            match list.continuation_token.filter(|t| !t.is_empty()) {
                None => return Ok(Some(items)),
                Some(next) if Some(&next) == continuation.as_ref() => {
                    return Err(Error::BitwardenUnavailable(format!(
                        "Bitwarden at {} repeats the same continuation token for {}",
                        reply.host,
                        reply.request()
                    )));
                }
                Some(next) => continuation = Some(next),
            }
        }
        Err(Error::BitwardenUnavailable(format!(
            "Bitwarden at {} returned more than {MAX_PAGES} pages for GET {path}",
            crate::net::host_of(&self.urls.api)
        )))
    }

    async fn get_collection_inner(&self, id: &str) -> Result<Option<OrgCollection>, Error> {
        let path = collection_path(id)?;
        let reply = self
            .api(Call::idempotent("get_collection"), Method::GET, &path, &[], None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(self.api_error("reading a collection", &path, &reply));
        }
        reply.json_as(Side::Bitwarden, "a collection").map(Some)
    }

    async fn put_collection_inner(&self, id: &str, update: &CollectionUpdate) -> Result<Put, Error> {
        let path = collection_path(id)?;
        let body = Bytes::from(
            serde_json::to_vec(update)
                .map_err(|e| Error::BitwardenRejected(format!("cannot encode the access list: {e}")))?,
        );
        // Within the cloud's write limits, counted for every client of this server in the process.
        let pace = crate::net::pace::shared(&self.urls.api, &WRITE_LIMITS);
        let _write = pace.acquire().await;
        debug!(
            collection = id,
            groups = update.groups.len(),
            "writing a collection's access list"
        );
        // A complete replacement: sending it twice leaves the same result.
        let call = Call::idempotent("put_collection");
        let reply = self.api(call, Method::PUT, &path, &[], Some(&body)).await?;
        if reply.status == StatusCode::NOT_FOUND && reply.body_is_blank() {
            return Ok(Put::NoSuchCollection);
        }
        if !reply.status.is_success() {
            let mut e = self.api_error(&format!("the access list of collection {id}"), &path, &reply);
            if reply.status == StatusCode::NOT_FOUND {
                // A 404 with a body names something inside the request, not the URL.
                e = Error::BitwardenRejected(format!(
                    "Bitwarden rejected the access list of collection {id} (HTTP 404): {}",
                    reply.detail()
                ));
            }
            return Err(e);
        }
        Ok(Put::Done)
    }

    async fn import_inner(&self, request: &ImportRequest<'_>) -> Result<(), Error> {
        let body = Bytes::from(
            serde_json::to_vec(request)
                .map_err(|e| Error::BitwardenRejected(format!("cannot encode the import: {e}")))?,
        );
        debug!(
            members = request.members.len(),
            groups = request.groups.len(),
            overwrite_existing = request.overwrite_existing,
            large_import = request.large_import,
            "sending import"
        );
        // Not idempotent while it runs: never sent again once the server may have started it.
        let call = Call::not_idempotent("import");
        let reply = self.api(call, Method::POST, IMPORT_PATH, &[], Some(&body)).await?;
        if !reply.status.is_success() {
            return Err(self.api_error("the import", IMPORT_PATH, &reply));
        }
        // Success is an empty 200 (JSON tolerated); anything else came from something in between.
        if reply.body_is_blank() || reply.is_json() {
            return Ok(());
        }
        Err(Error::BitwardenUnavailable(format!(
            "Bitwarden at {} answered the import ({}) with HTTP {} but {}, which is not \
             Bitwarden's answer (a proxy or login page in between?): the import {OUTCOME_UNKNOWN}; \
             check spec.bitwarden.serverUrl (or apiUrl) and any proxy on the way; the next sync \
             repeats it",
            reply.host,
            reply.request(),
            reply.status,
            reply.describe_body()
        )))
    }
}

#[async_trait]
impl BitwardenApi for Client {
    fn api_url(&self) -> &str {
        &self.urls.api
    }

    fn organization_id(&self) -> &str {
        &self.org_id
    }

    async fn import(&self, request: &ImportRequest) -> Result<(), Error> {
        self.import_inner(request).await.map_err(|e| self.http.scrub(e))
    }

    async fn list_members(&self) -> Result<Option<Vec<OrgMember>>, Error> {
        self.list("list_members", MEMBERS_PATH, "listing the members")
            .await
            .map_err(|e| self.http.scrub(e))
    }

    async fn list_groups(&self) -> Result<Option<Vec<OrgGroup>>, Error> {
        self.list("list_groups", GROUPS_PATH, "listing the groups")
            .await
            .map_err(|e| self.http.scrub(e))
    }

    async fn list_collections(&self) -> Result<Option<Vec<OrgCollection>>, Error> {
        self.list("list_collections", COLLECTIONS_PATH, "listing the collections")
            .await
            .map_err(|e| self.http.scrub(e))
    }

    async fn get_collection(&self, id: &str) -> Result<Option<OrgCollection>, Error> {
        self.get_collection_inner(id).await.map_err(|e| self.http.scrub(e))
    }

    async fn put_collection(&self, id: &str, update: &CollectionUpdate) -> Result<Put, Error> {
        self.put_collection_inner(id, update)
            .await
            .map_err(|e| self.http.scrub(e))
    }
}

/// `/public/collections/{id}`, for an id that is a UUID (never anything else in a path).
fn collection_path(id: &str) -> Result<String, Error> {
    if is_uuid(id) {
        Ok(format!("{COLLECTIONS_PATH}/{id}"))
    } else {
        Err(Error::BitwardenUnavailable(format!(
            "Bitwarden listed a collection whose id {id:?} is not a UUID"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_ids_come_from_organization_client_ids_only() {
        let id = "organization.4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0f";
        assert_eq!(organization_id(id), Some("4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0f"));
        for bad in [
            "user.4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0f",
            "organization.",
            "organization.not-a-uuid",
            "4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0f",
            "organization.4a9d8c0e1b2c4d3e8f405a6b7c8d9e0f",
            "organization.4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0g",
        ] {
            assert_eq!(organization_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_device_identifier_is_a_stable_uuid() {
        let a = device_identifier("organization.4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0f");
        assert_eq!(
            a,
            device_identifier("organization.4a9d8c0e-1b2c-4d3e-8f40-5a6b7c8d9e0f")
        );
        assert_ne!(
            a,
            device_identifier("organization.00000000-1b2c-4d3e-8f40-5a6b7c8d9e0f")
        );
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "8");
    }
}
