//! The HTTP client of the Bitwarden Public API (`bitwarden-api.md`).
//!
//! One [`Client`] per organization: it holds the organization API key, fetches and caches an
//! access token (client credentials), sends imports and reads members and groups. Failures map to
//! the closed set of condition reasons:
//!
//! | What happened | [`Error`] |
//! |---|---|
//! | token endpoint answers 400 (`invalid_client`, `invalid_scope`, ...) or another 4xx | `BitwardenAuthFailed` |
//! | the API answers 401 again after one token renewal, or 403 | `BitwardenAuthFailed` |
//! | the API answers another 4xx | `BitwardenRejected` |
//! | 429 until the retries run out, or a `Retry-After` too long to wait for | `RateLimited` |
//! | 5xx or a transport error until the retries run out, an unexpected redirect | `BitwardenUnavailable` |
//!
//! Neither the client secret nor an access token ever appears in an error or a log line.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tracing::debug;

use super::types::ListResponse;
use super::urls::Urls;
use super::{BitwardenApi, ImportRequest, OrgGroup, OrgMember};
use crate::Error;
use crate::api::BitwardenSpec;
use crate::api::FieldError;
use crate::api::checks::check_url;
use crate::secrets::{SecretStore, SecretValue};

/// `deviceType` sent with the token request: 8 is `LinuxDesktop` in Bitwarden's `DeviceType`
/// enum (what Directory Connector, a desktop app, reports on Linux), known to every server
/// version including Vaultwarden.
pub const DEVICE_TYPE: u8 = 8;
/// `deviceName` sent with the token request.
pub const DEVICE_NAME: &str = "dirsync";
/// A cached token is renewed this long before it expires.
pub const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(60);

const IMPORT_PATH: &str = "/public/organization/import";
const MEMBERS_PATH: &str = "/public/members";
const GROUPS_PATH: &str = "/public/groups";
/// Upper bound on pages of a list, against a server whose continuation tokens never end.
const MAX_PAGES: usize = 10_000;
const LARGE_IMPORT_MESSAGE: &str = "You cannot import this much data at once";

/// How failed requests are retried: 5xx and transport errors with jittered exponential backoff,
/// 429 after `Retry-After` (or the same backoff when the server does not say).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub base_delay: Duration,
    /// Each further delay is the previous one times this.
    pub factor: f32,
    /// Cap of one delay (jitter included).
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the call fails at once with
    /// `RateLimited`, saying when to retry.
    pub max_retry_after: Duration,
    /// Adds up to 100 % random jitter to each backoff delay.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 4 attempts, delays 1 s, 2 s, 4 s (plus jitter, each at most 30 s); `Retry-After` up to
    /// 60 s is honoured.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The default policy with millisecond delays and no jitter, for tests. `Retry-After` is
    /// still honoured as sent.
    pub fn fast() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
            jitter: false,
            ..RetryPolicy::default()
        }
    }

    /// One attempt, no retries.
    pub fn no_retries() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delays before each retry (`max_attempts - 1` of them).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let mut builder = ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_factor(self.factor)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter {
            builder = builder.with_jitter();
        }
        let cap = self.max_delay;
        builder.build().map(move |d| d.min(cap))
    }
}

/// Connection settings of a [`Client`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    /// TCP + TLS connect timeout (10 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout (120 s: large imports take a while).
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// Reads the organization API key (and the optional CA) named by the spec and builds a
/// [`Client`]. Fails with `SecretNotFound`/`SecretKeyMissing`, `BitwardenAuthFailed` (client id
/// not `organization.<uuid>`) or `InvalidSpec` (bad URL, bad CA bundle). Sends no request.
pub async fn connect(spec: &BitwardenSpec, secrets: &dyn SecretStore) -> Result<Client, Error> {
    let urls = Urls::from_spec(spec);
    check_urls(spec, &urls)?;
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
            let certs = parse_ca_bundle(pem.expose().as_bytes()).map_err(|m| {
                Error::invalid(
                    "spec.bitwarden.caSecretRef",
                    format!("Secret {:?} key {:?} {m}", r.name, r.key),
                )
            })?;
            Some(certs)
        }
        None => None,
    };
    Client::build(
        urls,
        client_id.expose().trim(),
        SecretValue::new(client_secret.expose().trim()),
        ca,
        ClientOptions::default(),
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

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
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

/// Parses a PEM bundle of CA certificates; the error says what is wrong (no content echoed).
fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let ders = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not a valid PEM certificate bundle ({e})"))?;
    if ders.is_empty() {
        return Err("holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into());
    }
    let mut store = rustls::RootCertStore::empty();
    for (i, der) in ders.iter().enumerate() {
        store
            .add(der.clone())
            .map_err(|e| format!("holds a certificate (#{}) that is not a usable CA: {e}", i + 1))?;
    }
    ders.iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("holds a certificate that cannot be loaded ({e})"))
}

struct Token {
    value: SecretValue,
    renew_at: Instant,
}

/// What came back from one HTTP exchange that is not retried.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The Bitwarden Public API client. Cheap to share behind an `Arc`; one token at a time.
pub struct Client {
    http: reqwest::Client,
    urls: Urls,
    client_id: String,
    client_secret: SecretValue,
    org_id: String,
    device_identifier: String,
    /// Where the API key comes from, for error messages (never the values).
    key_source: String,
    retry: RetryPolicy,
    token: Mutex<Option<Token>>,
    /// The last few tokens, to scrub them from messages of calls that used them.
    recent_tokens: std::sync::Mutex<Vec<SecretValue>>,
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
            Some(pem) => Some(
                parse_ca_bundle(pem)
                    .map_err(|m| Error::invalid("spec.bitwarden.caSecretRef", format!("the CA bundle {m}")))?,
            ),
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
        ca: Option<Vec<reqwest::Certificate>>,
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
        crate::init_crypto();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect: a 307 would resend the client secret to another host.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(certs) = ca {
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| {
            Error::invalid(
                "spec.bitwarden.caSecretRef",
                format!("cannot set up TLS with the CA bundle: {}", error_chain(&e)),
            )
        })?;
        Ok(Client {
            http,
            device_identifier: device_identifier(client_id),
            org_id: org_id.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            urls,
            key_source,
            retry: options.retry,
            token: Mutex::new(None),
            recent_tokens: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The URLs this client talks to.
    pub fn urls(&self) -> &Urls {
        &self.urls
    }

    /// Drops the cached access token: the next call fetches a new one.
    pub async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// A valid access token: the cached one, or a new one.
    async fn access_token(&self) -> Result<SecretValue, Error> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        *cached = None;
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        let mut recent = self.recent_tokens.lock().unwrap_or_else(|e| e.into_inner());
        recent.push(value.clone());
        let excess = recent.len().saturating_sub(4);
        recent.drain(..excess);
        drop(recent);
        *cached = Some(token);
        Ok(value)
    }

    /// Forgets `used` if it is still the cached token (another call may have renewed it).
    async fn invalidate_token(&self, used: &SecretValue) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == used) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<Token, Error> {
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
        let requested_at = Instant::now();
        let reply = self.send("token", || self.http.post(&url).form(&form)).await?;
        let status = reply.status;
        if status.is_success() {
            let token: TokenResponse = serde_json::from_slice(&reply.body)
                .ok()
                .filter(|t: &TokenResponse| !t.access_token.is_empty())
                .ok_or_else(|| {
                    Error::BitwardenUnavailable(format!(
                        "the identity service at {} answered HTTP {status} without an access \
                         token: check spec.bitwarden.identityUrl (or serverUrl)",
                        host_of(&url)
                    ))
                })?;
            let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600));
            return Ok(Token {
                value: SecretValue::new(token.access_token),
                renew_at: requested_at + lifetime.saturating_sub(TOKEN_RENEW_MARGIN),
            });
        }
        if status.is_redirection() {
            return Err(self.redirect_error(&url, &reply));
        }
        let detail = describe_error_body(&reply.body);
        let code = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_default();
        let message = match code.as_str() {
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
                host_of(&url),
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
                host_of(&url),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                },
                self.key_source
            ),
        };
        Err(Error::BitwardenAuthFailed(message))
    }

    /// Sends one request (built anew for every attempt), retrying 429, 5xx and transport errors
    /// per the policy. Returns every other answer.
    async fn send(&self, operation: &'static str, make: impl Fn() -> reqwest::RequestBuilder) -> Result<Reply, Error> {
        let mut delays = self.retry.delays();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = make().build().map_err(|e| {
                Error::BitwardenUnavailable(format!(
                    "cannot build the {operation} request: {}",
                    error_chain(&e.without_url())
                ))
            })?;
            let method = request.method().clone();
            let path = request.url().path().to_string();
            let host = host_of(request.url().as_str());
            let started = Instant::now();
            let outcome = match self.http.execute(request).await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| Reply {
                        status,
                        headers,
                        body: body.to_vec(),
                    })
                }
                Err(e) => Err(e),
            };
            let elapsed = started.elapsed();
            let elapsed_ms = elapsed.as_millis() as u64;
            let status_code = outcome.as_ref().ok().map(|r| r.status.as_u16());
            crate::metrics::bitwarden_request(
                operation,
                crate::metrics::status_class(status_code),
                elapsed.as_secs_f64(),
            );
            let reply = match outcome {
                Ok(reply) => reply,
                Err(e) => {
                    let cause = describe_transport_error(&e);
                    debug!(operation, %method, path, elapsed_ms, attempt, error = %cause,
                        "bitwarden request failed");
                    match delays.next() {
                        Some(delay) => {
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        None => {
                            return Err(Error::BitwardenUnavailable(format!(
                                "cannot reach Bitwarden at {host} ({method} {path}, {attempt} \
                                 attempts): {cause}"
                            )));
                        }
                    }
                }
            };
            let status = reply.status;
            debug!(operation, %method, path, status = status.as_u16(), elapsed_ms, attempt,
                "bitwarden request");
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = retry_after(&reply.headers);
                if let Some(wait) = retry_after
                    && wait > self.retry.max_retry_after
                {
                    return Err(Error::RateLimited(format!(
                        "Bitwarden at {host} is rate limiting {method} {path} (HTTP 429) and asks \
                         to wait {}s (until {}): the next sync will try again",
                        wait.as_secs(),
                        retry_time(wait)
                    )));
                }
                match delays.next() {
                    Some(delay) => {
                        tokio::time::sleep(retry_after.unwrap_or(delay)).await;
                        continue;
                    }
                    None => {
                        return Err(Error::RateLimited(format!(
                            "Bitwarden at {host} kept rate limiting {method} {path} (HTTP 429, \
                             {attempt} attempts; the cloud allows 10 token requests/min, 60 \
                             POST/min and 200 GET/min per client IP): the next sync will try again"
                        )));
                    }
                }
            }
            if status.is_server_error() {
                let wait = retry_after(&reply.headers).filter(|w| *w <= self.retry.max_retry_after);
                match delays.next() {
                    Some(delay) => {
                        tokio::time::sleep(wait.unwrap_or(delay)).await;
                        continue;
                    }
                    None => {
                        let detail = describe_error_body(&reply.body);
                        return Err(Error::BitwardenUnavailable(format!(
                            "Bitwarden at {host} answered HTTP {status} to {method} {path} \
                             ({attempt} attempts){}",
                            if detail.is_empty() {
                                String::new()
                            } else {
                                format!(": {detail}")
                            }
                        )));
                    }
                }
            }
            return Ok(reply);
        }
    }

    /// An authenticated API call: renews the token once on a 401 and repeats the call.
    async fn api(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        json_body: Option<&[u8]>,
    ) -> Result<Reply, Error> {
        let url = format!("{}{path}", self.urls.api);
        let mut renewed = false;
        loop {
            let token = self.access_token().await?;
            let reply = self
                .send(operation, || {
                    let mut request = self.http.request(method.clone(), &url).bearer_auth(token.expose());
                    if !query.is_empty() {
                        request = request.query(query);
                    }
                    if let Some(body) = json_body {
                        request = request.header(CONTENT_TYPE, "application/json").body(body.to_vec());
                    }
                    request
                })
                .await?;
            if reply.status == StatusCode::UNAUTHORIZED && !renewed {
                debug!(operation, path, "access token refused (401): renewing it once");
                self.invalidate_token(&token).await;
                renewed = true;
                continue;
            }
            return Ok(reply);
        }
    }

    /// The error of an API answer that is neither success nor retried.
    fn api_error(&self, what: &str, method: &Method, path: &str, reply: &Reply) -> Error {
        let status = reply.status;
        let url = format!("{}{path}", self.urls.api);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Error::BitwardenAuthFailed(format!(
                "Bitwarden refused access to {method} {path} (HTTP {status}): check {}; the key may have been rotated, or the \
                 organization may not be allowed to use the Public API / directory sync",
                self.key_source
            ));
        }
        if status.is_redirection() {
            return self.redirect_error(&url, reply);
        }
        let detail = describe_error_body(&reply.body);
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
                    " — check spec.bitwarden.apiUrl (or serverUrl): {url} was not found"
                ));
            }
            return Error::BitwardenRejected(message);
        }
        Error::BitwardenUnavailable(format!(
            "Bitwarden at {} answered {what} with an unexpected HTTP {status}{}",
            host_of(&url),
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ))
    }

    fn redirect_error(&self, url: &str, reply: &Reply) -> Error {
        let location = reply
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| l.split('?').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        Error::BitwardenUnavailable(format!(
            "{url} redirects (HTTP {}) to {location:?}; redirects are not followed: set \
             spec.bitwarden.serverUrl (or apiUrl / identityUrl) to the final URL",
            reply.status
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
            let reply = self.api(operation, Method::GET, path, &query, None).await?;
            if reply.status == StatusCode::NOT_FOUND && page == 0 {
                debug!(
                    operation,
                    path, "no such endpoint (404): server without it (Vaultwarden)"
                );
                return Ok(None);
            }
            if !reply.status.is_success() {
                return Err(self.api_error(what, &Method::GET, path, &reply));
            }
            let list: ListResponse<T> = serde_json::from_slice(&reply.body).map_err(|e| {
                Error::BitwardenUnavailable(format!(
                    "Bitwarden at {} answered GET {path} with an unexpected body (not a list, \
                     line {} column {})",
                    host_of(&self.urls.api),
                    e.line(),
                    e.column()
                ))
            })?;
            items.extend(list.data);
            match list.continuation_token.filter(|t| !t.is_empty()) {
                None => return Ok(Some(items)),
                Some(next) if Some(&next) == continuation.as_ref() => {
                    return Err(Error::BitwardenUnavailable(format!(
                        "Bitwarden at {} repeats the same continuation token for GET {path}",
                        host_of(&self.urls.api)
                    )));
                }
                Some(next) => continuation = Some(next),
            }
        }
        Err(Error::BitwardenUnavailable(format!(
            "Bitwarden at {} returned more than {MAX_PAGES} pages for GET {path}",
            host_of(&self.urls.api)
        )))
    }

    /// Removes the client secret and the recent access tokens from a message (in case a server
    /// echoes them), as a last line of defence.
    fn scrub(&self, error: Error) -> Error {
        let mut secrets = vec![self.client_secret.clone()];
        let recent = self.recent_tokens.lock().unwrap_or_else(|e| e.into_inner());
        secrets.extend(recent.iter().cloned());
        drop(recent);
        let clean = |s: String| {
            let mut s = s;
            for secret in &secrets {
                // Real secrets and tokens are long; a short test value would mangle the text.
                if secret.expose().len() >= 8 {
                    s = s.replace(secret.expose(), "<redacted>");
                }
            }
            s
        };
        match error {
            Error::BitwardenAuthFailed(m) => Error::BitwardenAuthFailed(clean(m)),
            Error::BitwardenUnavailable(m) => Error::BitwardenUnavailable(clean(m)),
            Error::BitwardenRejected(m) => Error::BitwardenRejected(clean(m)),
            Error::RateLimited(m) => Error::RateLimited(clean(m)),
            other => other,
        }
    }

    async fn import_inner(&self, request: &ImportRequest<'_>) -> Result<(), Error> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::BitwardenRejected(format!("cannot encode the import: {e}")))?;
        debug!(
            members = request.members.len(),
            groups = request.groups.len(),
            overwrite_existing = request.overwrite_existing,
            large_import = request.large_import,
            "sending import"
        );
        let reply = self.api("import", Method::POST, IMPORT_PATH, &[], Some(&body)).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.api_error("the import", &Method::POST, IMPORT_PATH, &reply))
        }
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
        match self.import_inner(request).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.scrub(e)),
        }
    }

    async fn list_members(&self) -> Result<Option<Vec<OrgMember>>, Error> {
        match self.list("list_members", MEMBERS_PATH, "listing the members").await {
            Ok(members) => Ok(members),
            Err(e) => Err(self.scrub(e)),
        }
    }

    async fn list_groups(&self) -> Result<Option<Vec<OrgGroup>>, Error> {
        match self.list("list_groups", GROUPS_PATH, "listing the groups").await {
            Ok(groups) => Ok(groups),
            Err(e) => Err(self.scrub(e)),
        }
    }
}

fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| url.to_string())
}

/// When a wait that starts now ends, to the second (UTC).
fn retry_time(wait: Duration) -> String {
    let secs = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX);
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .ok()
        .and_then(|t| t.round(jiff::Unit::Second).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| "later".into())
}

/// `Retry-After` as a delay: delta-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()?;
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// `message` and the first field errors of a Public API error body
/// (`{"object":"error","message":"...","errors":{"field":["..."]}}`), else what other shapes
/// (OAuth `error_description`, Vaultwarden) carry, else the start of the text.
fn describe_error_body(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.starts_with('<') {
            return String::new(); // an HTML error page says nothing useful
        }
        return truncate(&text, 300);
    };
    fn str_at<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
        v.get(key)
            .and_then(|x| x.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    let mut message = str_at(&value, "message")
        .or_else(|| str_at(&value, "error_description"))
        .or_else(|| value.get("error").and_then(|e| str_at(e, "description")))
        .or_else(|| str_at(&value, "error"))
        .unwrap_or_default()
        .to_string();
    let mut fields = Vec::new();
    for key in ["errors", "validationErrors"] {
        if let Some(errors) = value.get(key).and_then(|e| e.as_object()) {
            for (field, messages) in errors {
                let first = match messages {
                    serde_json::Value::Array(list) => list.iter().find_map(|m| m.as_str()),
                    serde_json::Value::String(s) => Some(s.as_str()),
                    _ => None,
                };
                if let Some(first) = first {
                    fields.push(format!("{field}: {first}"));
                }
            }
        }
    }
    if !fields.is_empty() {
        let more = fields.len().saturating_sub(3);
        fields.truncate(3);
        let mut list = fields.join("; ");
        if more > 0 {
            list.push_str(&format!("; and {more} more"));
        }
        message = if message.is_empty() {
            list
        } else {
            format!("{message} ({list})")
        };
    }
    truncate(&message, 1000)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    };
    format!("{kind}: {}", error_chain(e))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
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

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&later);
        h.insert(RETRY_AFTER, date.unwrap().parse().unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(110) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        h.insert(RETRY_AFTER, "Thu, 01 Jan 1970 00:00:01 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn the_default_policy_backs_off_exponentially_with_a_cap() {
        let policy = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        let delays: Vec<_> = policy.delays().collect();
        assert_eq!(delays, [1, 2, 4].map(Duration::from_secs));
        let jittered: Vec<_> = RetryPolicy::default().delays().collect();
        assert_eq!(jittered.len(), 3);
        for (d, base) in jittered.iter().zip([1, 2, 4]) {
            assert!(*d >= Duration::from_secs(base) && *d <= Duration::from_secs(2 * base));
        }
        let long = RetryPolicy {
            max_attempts: 10,
            ..RetryPolicy::default()
        };
        assert!(long.delays().all(|d| d <= Duration::from_secs(30)));
        assert_eq!(RetryPolicy::no_retries().delays().count(), 0);
    }

    #[test]
    fn error_bodies_are_summarised() {
        let body = br#"{"object":"error","message":"The model state is invalid.",
            "errors":{"Members[0].Email":["The Email field is not a valid e-mail address."],
                      "Groups[0].Name":["The field Name must be a string with a maximum length of 100."]}}"#;
        assert_eq!(
            describe_error_body(body),
            "The model state is invalid. (Groups[0].Name: The field Name must be a string with a \
             maximum length of 100.; Members[0].Email: The Email field is not a valid e-mail \
             address.)"
        );
        assert_eq!(
            describe_error_body(br#"{"object":"error","message":"Organization cannot use groups.","errors":null}"#),
            "Organization cannot use groups."
        );
        assert_eq!(
            describe_error_body(br#"{"error":"invalid_client","error_description":"bad"}"#),
            "bad"
        );
        assert_eq!(
            describe_error_body(br#"{"error":{"code":422,"reason":"Unprocessable Entity","description":"missing field `overwriteExisting`"}}"#),
            "missing field `overwriteExisting`"
        );
        assert_eq!(describe_error_body(b""), "");
        assert_eq!(describe_error_body(b"<html><body>502</body></html>"), "");
        assert_eq!(describe_error_body(b"Bad  Gateway\n"), "Bad Gateway");
    }

    #[test]
    fn ca_bundles_are_checked() {
        assert!(parse_ca_bundle(b"").unwrap_err().contains("no PEM certificate"));
        assert!(parse_ca_bundle(b"not a certificate").unwrap_err().contains("no PEM"));
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(parse_ca_bundle(broken).is_err());
        let not_der = b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        assert!(parse_ca_bundle(not_der).unwrap_err().contains("not a usable CA"));
    }
}
