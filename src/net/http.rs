//! [`HttpClient`]: one `reqwest::Client` with the rules every client here follows (timeouts, no
//! redirects, a user agent, retries within a time budget, metrics per attempt, scrubbed
//! messages), and the helpers every JSON client needs.
//!
//! A source client, sketched (see `bitwarden::client` for a complete one):
//!
//! ```ignore
//! struct Okta { http: HttpClient, tokens: TokenCache, /* urls, credentials */ }
//!
//! let scrubber = Scrubber::new([client_secret.clone()]);
//! let http = HttpClient::new(
//!     Side::Source("okta"),
//!     HttpOptions::new("spec.source.okta.domain", "spec.source.okta.caSecretRef"),
//!     scrubber.clone(),
//! )?
//! .with_rules(OktaRules); // optional: what else means "throttled", pacing
//! let tokens = TokenCache::new(Duration::from_secs(300), scrubber);
//!
//! impl Okta {
//!     /// The token request: safe to repeat, within the deadline of the call that needs it.
//!     async fn fetch_token(&self, deadline: Instant) -> Result<Token, Error> {
//!         let call = Call::idempotent("token").until(deadline);
//!         let reply = self.http.send(call, |c| c.post(&self.token_url).form(&form)).await?;
//!         if !reply.status.is_success() {
//!             // A refused token request is an authentication failure: say what to fix.
//!             return Err(self.http.side().error(FailureKind::AuthFailed, format!("...{}", reply.detail())));
//!         }
//!         let t: TokenResponse = reply.json_as(self.http.side(), "a token")?;
//!         Ok(Token { value: SecretValue::new(t.access_token), lifetime: Duration::from_secs(t.expires_in) })
//!     }
//!
//!     async fn page(&self, url: &str) -> Result<Page, Error> {
//!         let reply = self.http.send_authorised(Call::idempotent("list_users"), &self.tokens,
//!             |deadline| self.fetch_token(deadline),
//!             |c, token| c.get(url).bearer_auth(token.expose())).await?;
//!         if !reply.status.is_success() {
//!             return Err(self.http.answer_error("listing the users", &reply));
//!         }
//!         reply.json_as(self.http.side(), "a page of users")
//!     }
//! }
//! // Errors built outside `send` (like the ones above) go through `self.http.scrub(e)` before
//! // they leave the client.
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::debug;

use super::retry::{Idempotency, RetryPolicy, ServerRules, Verdict, human, retry_time};
use super::tls::{self, TlsFields};
use super::{DefaultRules, FailureKind, OUTCOME_UNKNOWN, Scrubber, Side, TokenCache, token::Token};
use crate::Error;
use crate::secrets::SecretValue;

/// How an [`HttpClient`] connects, and which spec fields its messages point to.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpOptions {
    pub retry: RetryPolicy,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one attempt (also bounded by what is left of the call's budget).
    pub request_timeout: Duration,
    /// Private CA certificates trusted on top of the system's ([`tls::parse_ca_bundle`]).
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// The spec field of the server's URL (`spec.bitwarden.serverUrl`).
    pub url_field: String,
    /// The spec field of the CA bundle (`spec.bitwarden.caSecretRef`).
    pub ca_field: String,
    /// The spec field of the time budget, if there is one (`spec.bitwarden.timeout`).
    pub timeout_field: Option<String>,
}

impl HttpOptions {
    /// Defaults: [`RetryPolicy::default`], 10 s to connect, each attempt as long as the budget.
    pub fn new(url_field: &str, ca_field: &str) -> HttpOptions {
        let retry = RetryPolicy::default();
        HttpOptions {
            request_timeout: retry.budget,
            retry,
            connect_timeout: Duration::from_secs(10),
            ca: None,
            url_field: url_field.to_string(),
            ca_field: ca_field.to_string(),
            timeout_field: None,
        }
    }
}

/// One logical call: what it is (the metrics' `operation`), whether it may be repeated, and until
/// when it may run (by default the policy's budget from its start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub operation: &'static str,
    pub idempotency: Idempotency,
    pub deadline: Option<Instant>,
}

impl Call {
    /// A call that is safe to repeat (GET, list, token request).
    pub fn idempotent(operation: &'static str) -> Call {
        Call {
            operation,
            idempotency: Idempotency::Idempotent,
            deadline: None,
        }
    }

    /// A call that must not run twice (an import).
    pub fn not_idempotent(operation: &'static str) -> Call {
        Call {
            idempotency: Idempotency::NotIdempotent,
            ..Call::idempotent(operation)
        }
    }

    /// The same call, ending at `deadline` (shared with the calls it is part of).
    pub fn until(self, deadline: Instant) -> Call {
        Call {
            deadline: Some(deadline),
            ..self
        }
    }
}

/// A final answer: neither retried nor a failure of the exchange itself.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub method: Method,
    /// The URL path, never the query (it may hold tokens).
    pub path: String,
    /// `host[:port]`.
    pub host: String,
}

impl Reply {
    /// The `Content-Type` (empty when none).
    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Whether the body is empty (or only whitespace).
    pub fn body_is_blank(&self) -> bool {
        self.body.iter().all(u8::is_ascii_whitespace)
    }

    /// Whether the body is JSON.
    pub fn is_json(&self) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(&self.body).is_ok()
    }

    /// `METHOD /path`.
    pub fn request(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The summary of an error body ([`describe_error_body`]).
    pub fn detail(&self) -> String {
        describe_error_body(&self.body)
    }

    /// What came back, for "this is not the server's answer" messages: the content type and the
    /// first printable characters of the body.
    pub fn describe_body(&self) -> String {
        let content_type = match self.content_type() {
            "" => "no content type".to_string(),
            t => format!("content type {t:?}"),
        };
        if self.body_is_blank() {
            return format!("{content_type} and an empty body");
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let start: String = text.chars().filter(|c| !c.is_control()).take(80).collect();
        let more = if text.chars().count() > 80 { "…" } else { "" };
        format!(
            "{content_type} and a body of {} bytes starting {start:?}{more}",
            self.body.len()
        )
    }

    /// The body as `T`; a body that is not (`Unavailable`) names what came back.
    pub fn json_as<T: DeserializeOwned>(&self, side: Side, what: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            side.error(
                FailureKind::Unavailable,
                format!(
                    "{side} at {} answered {} with HTTP {} but not with {what} (JSON error at line {} \
                     column {}; got {})",
                    self.host,
                    self.request(),
                    self.status,
                    e.line(),
                    e.column(),
                    self.describe_body()
                ),
            )
        })
    }
}

/// The HTTP client of one server. Cheap to share behind an `Arc`.
pub struct HttpClient {
    client: reqwest::Client,
    side: Side,
    retry: RetryPolicy,
    request_timeout: Duration,
    rules: Arc<dyn ServerRules>,
    scrubber: Scrubber,
    tls_fields: TlsFields,
    timeout_field: Option<String>,
    /// No request before this instant (pacing, [`ServerRules::pace`]).
    paced_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("side", &self.side)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// How one attempt failed below HTTP.
#[derive(Debug)]
enum Transport {
    /// The connection could not be opened: nothing was sent.
    Connect(String),
    /// TLS refused the server (a certificate problem): repeating does not help.
    Tls(String),
    /// No complete answer in time: the request may have been received.
    Timeout(Duration),
    /// The exchange broke after the request may have been sent.
    Broken(String),
}

/// What follows an attempt.
enum Step {
    Done(Reply),
    Fail(Error),
    Retry(Failure),
}

/// Why the previous attempt is being repeated.
enum Failure {
    Transport(Transport),
    Status { reply: Reply, wait: Option<Duration> },
    Throttled { reply: Reply, wait: Option<Duration> },
}

impl HttpClient {
    /// A client of `side` with the default rules ([`DefaultRules`]). Fails with `InvalidSpec`
    /// (the CA field) when the CA certificates cannot be used.
    pub fn new(side: Side, options: HttpOptions, scrubber: Scrubber) -> Result<HttpClient, Error> {
        crate::init_crypto();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect: a 307 would resend credentials to another host.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(certs) = &options.ca {
            builder = tls::trust_in_reqwest(builder, certs)
                .map_err(|e| Error::invalid(&options.ca_field, format!("the CA bundle {e}")))?;
        }
        let client = builder.build().map_err(|e| {
            Error::invalid(
                &options.ca_field,
                format!("cannot set up TLS with the CA bundle: {}", error_chain(&e)),
            )
        })?;
        Ok(HttpClient {
            client,
            side,
            request_timeout: options.request_timeout,
            retry: options.retry,
            rules: Arc::new(DefaultRules),
            scrubber,
            tls_fields: TlsFields {
                client_cert: None,
                ca: options.ca_field,
                url: options.url_field,
            },
            timeout_field: options.timeout_field,
            paced_until: Mutex::new(None),
        })
    }

    /// The same client with its server's own rules (throttling signals, pacing).
    pub fn with_rules(mut self, rules: impl ServerRules + 'static) -> HttpClient {
        self.rules = Arc::new(rules);
        self
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The deadline of a call that starts now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.retry.budget
    }

    /// `error` without secrets.
    pub fn scrub(&self, error: Error) -> Error {
        self.scrubber.scrub_error(error)
    }

    /// Sends one call: `make` builds the request anew for each attempt. Repeats it per the
    /// policy, the server's rules and the call's idempotency; returns every answer that is not
    /// repeated except 5xx and throttling, which end as errors (`Unavailable`, `RateLimited`).
    pub async fn send(
        &self,
        call: Call,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, Error> {
        self.send_inner(call, make).await.map_err(|e| self.scrub(e))
    }

    /// [`HttpClient::send`] with an access token from `tokens` (fetched by `fetch`, which gets
    /// the call's deadline to pass on to its own [`Call::until`]). After a 401 the token is
    /// renewed once and the call repeated (a 401 means the work was not done); a second 401 is
    /// returned for the caller to report as an authentication failure.
    pub async fn send_authorised<F, Fut>(
        &self,
        call: Call,
        tokens: &TokenCache,
        fetch: F,
        make: impl Fn(&reqwest::Client, &SecretValue) -> reqwest::RequestBuilder,
    ) -> Result<Reply, Error>
    where
        F: Fn(Instant) -> Fut,
        Fut: Future<Output = Result<Token, Error>>,
    {
        let deadline = call.deadline.unwrap_or_else(|| self.deadline());
        let call = call.until(deadline);
        let mut renewed = false;
        loop {
            let token = tokens.get(|| fetch(deadline)).await.map_err(|e| self.scrub(e))?;
            let reply = self.send(call, |c| make(c, &token)).await?;
            if reply.status == StatusCode::UNAUTHORIZED && !renewed {
                debug!(side = %self.side, operation = call.operation, path = reply.path,
                    "access token refused (401): renewing it once");
                tokens.invalidate(&token).await;
                renewed = true;
                continue;
            }
            return Ok(reply);
        }
    }

    /// The error of an answer the caller cannot use, by the usual rules: 401/403 → auth failed,
    /// a redirect → unavailable (naming where it points), another 4xx → rejected, anything else
    /// → unavailable. `what` names the request for people ("listing the users").
    pub fn answer_error(&self, what: &str, reply: &Reply) -> Error {
        let side = self.side;
        let status = reply.status;
        let detail = with_colon(&reply.detail());
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return side.error(
                FailureKind::AuthFailed,
                format!(
                    "{side} at {} refused {what} ({}, HTTP {status}){detail}: check the credentials \
                     and their permissions",
                    reply.host,
                    reply.request()
                ),
            );
        }
        if status.is_redirection() {
            return self.redirect_error(reply);
        }
        let kind = if status.is_client_error() {
            FailureKind::Rejected
        } else {
            FailureKind::Unavailable
        };
        side.error(
            kind,
            format!(
                "{side} at {} answered {what} ({}) with HTTP {status}{detail}",
                reply.host,
                reply.request()
            ),
        )
    }

    /// A redirect is never followed: `Unavailable`, naming where it points (without query).
    pub fn redirect_error(&self, reply: &Reply) -> Error {
        let location = reply
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| l.split('?').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        self.side.error(
            FailureKind::Unavailable,
            format!(
                "{} at {} redirects {} (HTTP {}) to {location:?}; redirects are not followed: set {} \
                 to the final URL",
                self.side,
                reply.host,
                reply.request(),
                reply.status,
                self.tls_fields.url
            ),
        )
    }

    async fn send_inner(
        &self,
        call: Call,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, Error> {
        let side = self.side;
        let started = Instant::now();
        let deadline = call.deadline.unwrap_or(started + self.retry.budget);
        let mut delays = self.retry.delays();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = make(&self.client).build().map_err(|e| {
                side.error(
                    FailureKind::Unavailable,
                    format!(
                        "cannot build the {} request: {}",
                        call.operation,
                        error_chain(&e.without_url())
                    ),
                )
            })?;
            let method = request.method().clone();
            let path = request.url().path().to_string();
            let host = host_of(request.url().as_str());
            let target = format!("{method} {path}");
            self.wait_for_pace(deadline, &host, &target).await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(side.error(
                    FailureKind::Unavailable,
                    format!(
                        "no time was left to send {target} to {side} at {host}: the call took its whole \
                         {} budget{}",
                        human(self.retry.budget),
                        self.raise_budget_hint()
                    ),
                ));
            }
            let timeout = self.request_timeout.min(remaining);
            let mut request = request;
            *request.timeout_mut() = Some(timeout);

            let sent_at = Instant::now();
            let outcome = self.exchange(request, timeout, &method, &path, &host).await;
            let elapsed = sent_at.elapsed();
            let verdict = match &outcome {
                Ok(reply) => Some(self.rules.verdict(reply.status, &reply.headers, &reply.body)),
                Err(_) => None,
            };
            self.record(call.operation, &outcome, verdict, elapsed);
            if let Ok(reply) = &outcome {
                self.update_pace(&reply.headers);
            }
            self.log_attempt(call.operation, attempt, &method, &path, &outcome, elapsed);
            let failure = match self.judge(outcome, verdict, call.idempotency, deadline, &host, &target) {
                Step::Done(reply) => return Ok(reply),
                Step::Fail(error) => return Err(error),
                Step::Retry(failure) => failure,
            };

            let out_of_time = |pause: Duration| Instant::now() + pause >= deadline;
            let backoff = delays.next();
            let pause = backoff.map(|b| failure.wait().filter(|w| *w <= self.retry.max_server_wait).unwrap_or(b));
            match pause {
                Some(pause) if !out_of_time(pause) => tokio::time::sleep(pause).await,
                Some(_) => return Err(self.final_error(failure, attempt, &host, &target, Some(started.elapsed()))),
                None => return Err(self.final_error(failure, attempt, &host, &target, None)),
            }
        }
    }

    /// What follows an attempt: its answer, a failure that ends the call, or another attempt.
    fn judge(
        &self,
        outcome: Result<Reply, Transport>,
        verdict: Option<Verdict>,
        idempotency: Idempotency,
        deadline: Instant,
        host: &str,
        target: &str,
    ) -> Step {
        let side = self.side;
        let may_repeat = idempotency == Idempotency::Idempotent;
        // A non-idempotent call that the server may have started ends here.
        let unknown = |what: String| {
            Step::Fail(side.error(
                FailureKind::Unavailable,
                format!(
                    "{side} at {host} {what}; the request {OUTCOME_UNKNOWN}, so it is not sent again now; \
                     the next sync repeats it"
                ),
            ))
        };
        let reply = match outcome {
            Ok(reply) => reply,
            Err(Transport::Tls(problem)) => {
                return Step::Fail(side.error(
                    FailureKind::Unavailable,
                    format!("TLS with {side} at {host} failed ({target}): {problem}"),
                ));
            }
            // Nothing was sent: safe to repeat whatever the call.
            Err(t @ Transport::Connect(_)) => return Step::Retry(Failure::Transport(t)),
            Err(t) if may_repeat => return Step::Retry(Failure::Transport(t)),
            Err(Transport::Timeout(after)) => {
                return unknown(format!(
                    "did not answer {target} within {}{}",
                    human(after),
                    self.raise_budget_hint()
                ));
            }
            Err(Transport::Broken(cause)) => return unknown(format!("broke off {target} ({cause})")),
        };
        let wait = self.rules.server_wait(&reply.headers);
        match verdict {
            None | Some(Verdict::Answer) => Step::Done(reply),
            Some(Verdict::Throttled) => {
                let left = deadline.saturating_duration_since(Instant::now());
                match wait {
                    Some(wait) if wait > self.retry.max_server_wait || wait >= left => Step::Fail(side.error(
                        FailureKind::Throttled,
                        format!(
                            "{side} at {host} is rate limiting {target} (HTTP {}) and asks to wait {}s (until \
                             {}): the next sync will try again",
                            reply.status.as_u16(),
                            wait.as_secs(),
                            retry_time(wait)
                        ),
                    )),
                    _ => Step::Retry(Failure::Throttled { reply, wait }),
                }
            }
            Some(Verdict::Busy) => Step::Retry(Failure::Status { reply, wait }),
            Some(Verdict::ServerError) if may_repeat => Step::Retry(Failure::Status { reply, wait }),
            Some(Verdict::ServerError) => unknown(format!(
                "answered HTTP {} to {target}{}",
                reply.status,
                with_colon(&reply.detail())
            )),
        }
    }

    fn log_attempt(
        &self,
        operation: &str,
        attempt: u32,
        method: &Method,
        path: &str,
        outcome: &Result<Reply, Transport>,
        elapsed: Duration,
    ) {
        let elapsed_ms = elapsed.as_millis() as u64;
        match (outcome, self.side) {
            (Ok(r), Side::Bitwarden) => debug!(operation, %method, path, status = r.status.as_u16(), elapsed_ms,
                attempt, "bitwarden request"),
            (Ok(r), Side::Source(provider)) => debug!(provider, operation, %method, path,
                status = r.status.as_u16(), elapsed_ms, attempt, "provider request"),
            (Err(t), Side::Bitwarden) => debug!(operation, %method, path, error = ?t, elapsed_ms, attempt,
                "bitwarden request failed"),
            (Err(t), Side::Source(provider)) => debug!(provider, operation, %method, path, error = ?t,
                elapsed_ms, attempt, "provider request failed"),
        }
    }

    /// One attempt: the request and the whole body, within `timeout`.
    async fn exchange(
        &self,
        request: reqwest::Request,
        timeout: Duration,
        method: &Method,
        path: &str,
        host: &str,
    ) -> Result<Reply, Transport> {
        let exchange = async {
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|e| self.transport(e, timeout, host))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| self.transport(e, timeout, host))?;
            Ok(Reply {
                status,
                headers,
                body: body.to_vec(),
                method: method.clone(),
                path: path.to_string(),
                host: host.to_string(),
            })
        };
        // reqwest's own timeout covers the body too; this one is the backstop.
        match tokio::time::timeout(timeout + Duration::from_millis(100), exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Transport::Timeout(timeout)),
        }
    }

    fn transport(&self, e: reqwest::Error, timeout: Duration, host: &str) -> Transport {
        // Without the URL: its query may hold tokens (the host and path are named anyway).
        let e = e.without_url();
        if let Some(tls) = tls::rustls_error(&e) {
            return Transport::Tls(tls::describe_tls_error(tls, host, &self.tls_fields));
        }
        if e.is_connect() {
            Transport::Connect(describe_transport_error(&e))
        } else if e.is_timeout() {
            Transport::Timeout(timeout)
        } else {
            Transport::Broken(describe_transport_error(&e))
        }
    }

    fn final_error(
        &self,
        failure: Failure,
        attempts: u32,
        host: &str,
        target: &str,
        out_of_time: Option<Duration>,
    ) -> Error {
        let side = self.side;
        let count = if attempts == 1 {
            "1 attempt".to_string()
        } else {
            format!("{attempts} attempts")
        };
        let tried = match out_of_time {
            None => count,
            Some(after) => {
                let mut tried = format!(
                    "{count} in {}, no time left for another in the {} budget",
                    human(after),
                    human(self.retry.budget)
                );
                if let Some(field) = &self.timeout_field {
                    tried.push_str(&format!("; raise {field} if it needs longer"));
                }
                tried
            }
        };
        match failure {
            Failure::Transport(Transport::Timeout(after)) => side.error(
                FailureKind::Unavailable,
                format!(
                    "{side} at {host} did not answer {target} within {} ({tried}): check {} and the \
                     network path to {host}",
                    human(after),
                    self.tls_fields.url
                ),
            ),
            Failure::Transport(Transport::Connect(cause) | Transport::Broken(cause) | Transport::Tls(cause)) => side
                .error(
                    FailureKind::Unavailable,
                    format!(
                        "cannot reach {side} at {host} ({target}, {tried}): {cause}; check {} and the \
                         network path to {host}",
                        self.tls_fields.url
                    ),
                ),
            Failure::Status { reply, .. } => side.error(
                FailureKind::Unavailable,
                format!(
                    "{side} at {host} answered HTTP {} to {target} ({tried}){}",
                    reply.status,
                    with_colon(&reply.detail())
                ),
            ),
            Failure::Throttled { reply, .. } => side.error(
                FailureKind::Throttled,
                format!(
                    "{side} at {host} kept rate limiting {target} (HTTP {}, {tried}): the next sync will \
                     try again",
                    reply.status.as_u16()
                ),
            ),
        }
    }

    fn raise_budget_hint(&self) -> String {
        match &self.timeout_field {
            Some(field) => format!(" (raise {field} if it needs longer)"),
            None => String::new(),
        }
    }

    fn record(&self, operation: &str, outcome: &Result<Reply, Transport>, verdict: Option<Verdict>, elapsed: Duration) {
        let status = outcome.as_ref().ok().map(|r| r.status);
        match self.side {
            Side::Bitwarden => crate::metrics::bitwarden_request(
                operation,
                crate::metrics::status_class(status.map(|s| s.as_u16())),
                elapsed.as_secs_f64(),
            ),
            Side::Source(provider) => {
                let result = match (status, verdict) {
                    (_, Some(Verdict::Throttled)) => "throttled",
                    (Some(s), _) if s.is_success() => "success",
                    _ => "error",
                };
                crate::metrics::provider_request(provider, operation, result, elapsed.as_secs_f64());
            }
        }
    }

    fn update_pace(&self, headers: &HeaderMap) {
        if let Some(pause) = self.rules.pace(headers) {
            let mut until = self.paced_until.lock().unwrap_or_else(|e| e.into_inner());
            *until = Some(Instant::now() + pause);
        }
    }

    /// Waits out the pacing pause; one that does not fit in the call is `RateLimited` at once.
    async fn wait_for_pace(&self, deadline: Instant, host: &str, target: &str) -> Result<(), Error> {
        let until = *self.paced_until.lock().unwrap_or_else(|e| e.into_inner());
        let Some(until) = until else { return Ok(()) };
        let pause = until.saturating_duration_since(Instant::now());
        if pause.is_zero() {
            return Ok(());
        }
        if until >= deadline {
            let side = self.side;
            return Err(side.error(
                FailureKind::Throttled,
                format!(
                    "{side} at {host} has almost used up its rate limit; the next request ({target}) may \
                     only go in {}s (at {}): the next sync will try again",
                    pause.as_secs(),
                    retry_time(pause)
                ),
            ));
        }
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

impl Failure {
    /// What the server asked to wait, if it did.
    fn wait(&self) -> Option<Duration> {
        match self {
            Failure::Transport(_) => None,
            Failure::Status { wait, .. } | Failure::Throttled { wait, .. } => *wait,
        }
    }
}

fn with_colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// `host[:port]` of a URL (the URL itself when it does not parse).
pub fn host_of(url: &str) -> String {
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

/// What an error body says, from the shapes of the servers here, else the start of its text
/// (nothing for an HTML page):
/// - Bitwarden: `{"message": ..., "errors": {"field": ["..."]}}` (message and the first field
///   errors)
/// - OAuth: `{"error": "invalid_client", "error_description": ...}`
/// - Microsoft Graph: `{"error": {"code": ..., "message": ...}}`
/// - Google: `{"error": {"message": ..., "errors": [{"reason": ...}]}}`
/// - Okta: `{"errorSummary": ..., "errorCauses": [{"errorSummary": ...}]}`
/// - OneLogin: `{"message": ...}` (v2) or `{"status": {"message": ...}}` (v1)
/// - Vaultwarden: `{"error": {"description": ...}}`
pub fn describe_error_body(body: &[u8]) -> String {
    use serde_json::Value;
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.starts_with('<') {
            return String::new(); // an HTML error page says nothing useful
        }
        return truncate(&text, 300);
    };
    fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    let error = value.get("error").filter(|e| e.is_object());
    let mut message = match error {
        // Graph: "code: message"; Google and Vaultwarden: the message or description.
        Some(e) => {
            let text = str_at(e, "message").or_else(|| str_at(e, "description"));
            match (str_at(e, "code"), text) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (None, Some(text)) => text.to_string(),
                (Some(code), None) => code.to_string(),
                (None, None) => String::new(),
            }
        }
        None => str_at(&value, "message")
            .or_else(|| str_at(&value, "error_description"))
            .or_else(|| str_at(&value, "errorSummary"))
            .or_else(|| value.get("status").and_then(|s| str_at(s, "message")))
            .or_else(|| str_at(&value, "error"))
            .unwrap_or_default()
            .to_string(),
    };
    let mut details = Vec::new();
    // Bitwarden (and ASP.NET) field errors: {"field": ["...", ...]}.
    for key in ["errors", "validationErrors"] {
        if let Some(errors) = value.get(key).and_then(Value::as_object) {
            for (field, messages) in errors {
                let first = match messages {
                    Value::Array(list) => list.iter().find_map(Value::as_str),
                    Value::String(s) => Some(s.as_str()),
                    _ => None,
                };
                if let Some(first) = first {
                    details.push(format!("{field}: {first}"));
                }
            }
        }
    }
    // Google's reasons.
    if let Some(errors) = error.and_then(|e| e.get("errors")).and_then(Value::as_array) {
        let reasons: Vec<&str> = errors.iter().filter_map(|e| str_at(e, "reason")).collect();
        if !reasons.is_empty() {
            details.push(format!("reason {}", reasons.join(", ")));
        }
    }
    // Okta's causes.
    if let Some(causes) = value.get("errorCauses").and_then(Value::as_array) {
        details.extend(
            causes
                .iter()
                .filter_map(|c| str_at(c, "errorSummary"))
                .map(str::to_string),
        );
    }
    if !details.is_empty() {
        let more = details.len().saturating_sub(3);
        details.truncate(3);
        let mut list = details.join("; ");
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

/// A transport error in words: what failed, then its causes.
pub fn describe_transport_error(e: &reqwest::Error) -> String {
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

/// An error and its sources, without repeats, joined by `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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
mod tests;
