//! Microsoft Graph requests on [`crate::net`]: the token request, lists paged by
//! `@odata.nextLink` (followed exactly as returned, never to another host), many lists at once
//! through JSON batching (`POST /v1.0/$batch`, at most 20 requests each; each answer carries its
//! own status and, when throttled, its own `Retry-After`), and Graph's refusals in words.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::debug;

use super::auth::Auth;
use super::{Endpoints, NAME, Options, P, TOKEN_MARGIN};
use crate::Error;
use crate::net::retry::{human, retry_time};
use crate::net::{Call, FailureKind, HttpClient, HttpOptions, Reply, RetryPolicy, Scrubber, Side, Token, TokenCache};
use crate::secrets::SecretValue;

/// Requests in one `$batch` (Graph's limit).
pub const BATCH_SIZE: usize = 20;
/// Pages of one list at most, against a server whose links never end.
const MAX_PAGES: usize = 100_000;
const URL_FIELD: &str = "spec.source.entraId.graphUrl (or authorityUrl, cloud)";
const CA_FIELD: &str = "the system's trust store (SSL_CERT_FILE)";

/// What a request is for, in words, and the application permission it needs.
#[derive(Clone, Copy, Debug)]
pub struct Want {
    /// "listing the users".
    pub what: &'static str,
    /// The least Microsoft Graph application permission that allows it.
    pub permission: &'static str,
}

/// One page of a Graph list.
#[derive(Debug, Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta: Option<String>,
}

/// Graph's error body: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct GraphError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: Option<GraphError>,
}

#[derive(Serialize)]
struct BatchRequest<'a> {
    id: String,
    method: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct BatchBody<'a> {
    requests: Vec<BatchRequest<'a>>,
}

/// The body of one answer in a batch: a page, or an error.
#[derive(Debug, Deserialize)]
struct ItemBody<T> {
    value: Option<Vec<T>>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
    error: Option<GraphError>,
}

#[derive(Debug, Deserialize)]
struct BatchItem<T> {
    id: String,
    status: u16,
    #[serde(default)]
    headers: HashMap<String, String>,
    body: Option<ItemBody<T>>,
}

#[derive(Debug, Deserialize)]
struct BatchAnswer<T> {
    responses: Vec<BatchItem<T>>,
}

/// A list read to its end: what was kept of its items, or "not found" (404: a group deleted
/// while the read ran, an id that does not exist).
#[derive(Debug, PartialEq, Eq)]
pub enum Listed<A> {
    Items(A),
    NotFound,
}

/// How a paged read ended.
pub enum ListEnd {
    /// The last page; its `@odata.deltaLink`, if any.
    Done(Option<String>),
    /// The server refused the (delta) link as expired or unknown (410, `syncStateNotFound`).
    Expired(String),
}

/// Whether a delta link answer means "start again with a full read".
fn is_expired_delta(reply: &Reply) -> bool {
    if reply.status == StatusCode::GONE {
        return true;
    }
    let code = serde_json::from_slice::<ErrorBody>(&reply.body)
        .ok()
        .and_then(|b| b.error)
        .map(|e| e.code)
        .unwrap_or_default();
    reply.status.is_client_error()
        && ["syncStateNotFound", "syncStateInvalid", "resyncRequired"]
            .iter()
            .any(|c| code.eq_ignore_ascii_case(c))
}

/// The Graph client of one tenant.
pub(super) struct Graph {
    http: HttpClient,
    tokens: TokenCache,
    auth: Auth,
    /// `<graph root>/v1.0`.
    api: String,
    batch: bool,
    parallel: usize,
}

impl Graph {
    pub fn new(auth: Auth, endpoints: Endpoints, options: &Options) -> Result<Graph, Error> {
        let scrubber = Scrubber::new(auth.secrets());
        let http = HttpClient::new(
            Side::Source(NAME),
            HttpOptions {
                retry: options.retry.clone(),
                ..HttpOptions::new(URL_FIELD, CA_FIELD)
            },
            scrubber.clone(),
        )?;
        Ok(Graph {
            http,
            tokens: TokenCache::new(TOKEN_MARGIN, scrubber),
            auth,
            api: endpoints.api,
            batch: options.batch,
            parallel: options.parallel.max(1),
        })
    }

    /// `<graph root>/v1.0` + `path` (`/users?...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    pub fn retry(&self) -> &RetryPolicy {
        self.http.retry_policy()
    }

    /// Whether `link` is a users delta link of this Graph root (a cursor from another root, or
    /// one edited by hand, is not followed: it would receive the access token).
    pub fn is_users_delta_link(&self, link: &str) -> bool {
        link.starts_with(&format!("{}/users/delta", self.api)) && !link.contains('#')
    }

    async fn fetch_token(&self, deadline: Instant) -> Result<Token, Error> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            access_token: String,
            #[serde(deserialize_with = "number_or_text")]
            expires_in: u64,
        }
        let (form, assertion) = self.auth.form().map_err(|e| self.http.scrub(e))?;
        if let Some(a) = &assertion {
            self.http.scrubber().remember(a.clone());
        }
        let reply = self
            .http
            .send(Call::idempotent("token").until(deadline), |c| {
                c.post(&self.auth.token_url).form(&form)
            })
            .await?;
        if reply.status.is_redirection() {
            return Err(self.http.redirect_error(&reply));
        }
        if !reply.status.is_success() {
            return Err(self.http.scrub(self.auth.refused(&reply, assertion.as_ref())));
        }
        let t: TokenAnswer = reply.json_as(self.http.side(), "a token")?;
        Ok(Token {
            value: SecretValue::new(t.access_token),
            lifetime: Duration::from_secs(t.expires_in),
        })
    }

    /// One authorised GET (absolute URL).
    async fn get(&self, operation: &'static str, url: &str) -> Result<Reply, Error> {
        self.http
            .send_authorised(
                Call::idempotent(operation),
                &self.tokens,
                |deadline| self.fetch_token(deadline),
                |c, token| {
                    c.get(url)
                        .bearer_auth(token.expose())
                        // A background sync yields to interactive use (providers.md 1.5).
                        .header("x-ms-throttle-priority", "Low")
                },
            )
            .await
    }

    /// The error of an answer that cannot be used: 401/403 say which permission is missing.
    pub fn refusal(&self, want: Want, reply: &Reply) -> Error {
        let status = reply.status;
        if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
            return self.http.answer_error(want.what, reply);
        }
        let detail = match reply.detail() {
            d if d.is_empty() => String::new(),
            d => format!(": {d}"),
        };
        let fix = if status == StatusCode::FORBIDDEN {
            format!(
                "the app needs the Microsoft Graph application permission {} with admin consent: Entra admin \
                 center → App registrations → the app → API permissions → Add a permission → Microsoft Graph → \
                 Application permissions, then \"Grant admin consent\"",
                want.permission
            )
        } else {
            format!(
                "Graph does not accept the app's access token: {P}.cloud (or graphUrl) must be the tenant's cloud, \
                 and the app must have Microsoft Graph application permissions with admin consent"
            )
        };
        self.http.scrub(Error::SourceAuthFailed(format!(
            "Microsoft Graph at {} refused {} ({}, HTTP {}{detail}): {fix}",
            reply.host,
            want.what,
            reply.request(),
            status.as_u16()
        )))
    }

    /// A link Graph returned, checked: under this Graph root and not seen before in this list.
    fn check_link(&self, link: &str, seen: &mut HashSet<String>, what: &str) -> Result<(), Error> {
        let side = self.http.side();
        if !link.starts_with(&format!("{}/", self.api)) {
            return Err(side.error(
                FailureKind::Unavailable,
                format!(
                    "Microsoft Graph returned a next link to {} while {what}, outside {}: it is not followed (it \
                     would receive the access token); a proxy at {P}.graphUrl must rewrite Graph's links",
                    crate::net::host_of(link),
                    self.api
                ),
            ));
        }
        if !seen.insert(link.to_string()) {
            return Err(side.error(
                FailureKind::Unavailable,
                format!(
                    "Microsoft Graph returned the same next link twice while {what}: the list cannot be read to its end"
                ),
            ));
        }
        if seen.len() > MAX_PAGES {
            return Err(side.error(
                FailureKind::Unavailable,
                format!("Microsoft Graph kept returning next links while {what} ({MAX_PAGES} pages): stopped"),
            ));
        }
        Ok(())
    }

    /// Reads a list from `first` (absolute) to its last page, handing each page's items to
    /// `each`. With `delta`, an expired delta link ends it as [`ListEnd::Expired`].
    pub async fn list<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        want: Want,
        first: &str,
        delta: bool,
        mut each: impl FnMut(Vec<T>),
    ) -> Result<ListEnd, Error> {
        let mut url = first.to_string();
        let mut seen = HashSet::from([url.clone()]);
        loop {
            let reply = self.get(operation, &url).await?;
            if !reply.status.is_success() {
                if delta && is_expired_delta(&reply) {
                    return Ok(ListEnd::Expired(format!(
                        "HTTP {}{}",
                        reply.status.as_u16(),
                        with_colon(&reply.detail())
                    )));
                }
                return Err(self.refusal(want, &reply));
            }
            let page: Page<T> = reply.json_as(self.http.side(), &format!("a page of a list ({})", want.what))?;
            each(page.value);
            match (page.next, page.delta) {
                (Some(next), _) => {
                    self.check_link(&next, &mut seen, want.what)?;
                    url = next;
                }
                (None, delta_link) => return Ok(ListEnd::Done(delta_link)),
            }
        }
    }

    /// Reads many lists (`(key, path under /v1.0)`) to their ends: 20 to a `$batch` request and
    /// [`Options::parallel`] batches at a time, or without batching one request per page. Each
    /// page is folded into its list's `A` by `add` as it arrives (so that a large read holds only
    /// what the caller keeps of it).
    pub async fn many<T: DeserializeOwned, A: Default>(
        &self,
        operation: &'static str,
        want: Want,
        lists: Vec<(String, String)>,
        add: fn(&mut A, Vec<T>),
    ) -> Result<HashMap<String, Listed<A>>, Error> {
        if self.batch {
            self.many_batched(operation, want, lists, add).await
        } else {
            self.many_single(operation, want, lists, add).await
        }
    }

    async fn many_single<T: DeserializeOwned, A: Default>(
        &self,
        operation: &'static str,
        want: Want,
        lists: Vec<(String, String)>,
        add: fn(&mut A, Vec<T>),
    ) -> Result<HashMap<String, Listed<A>>, Error> {
        let reads = futures::stream::iter(lists.into_iter().map(|(key, path)| async move {
            let mut items = A::default();
            let url = self.url(&path);
            let first = self.get(operation, &url).await?;
            if first.status == StatusCode::NOT_FOUND {
                return Ok((key, Listed::NotFound));
            }
            // The first page again through `list` would cost a request: read it here.
            if !first.status.is_success() {
                return Err(self.refusal(want, &first));
            }
            let page: Page<T> = first.json_as(self.http.side(), &format!("a page of a list ({})", want.what))?;
            add(&mut items, page.value);
            if let Some(next) = page.next {
                let mut seen = HashSet::new();
                self.check_link(&next, &mut seen, want.what)?;
                self.list(operation, want, &next, false, |page| add(&mut items, page))
                    .await?;
            }
            Ok::<_, Error>((key, Listed::Items(items)))
        }))
        .buffer_unordered(self.parallel);
        futures::pin_mut!(reads);
        let mut out = HashMap::new();
        while let Some(result) = reads.next().await {
            let (key, listed) = result?;
            out.insert(key, listed);
        }
        Ok(out)
    }

    async fn many_batched<T: DeserializeOwned, A: Default>(
        &self,
        operation: &'static str,
        want: Want,
        lists: Vec<(String, String)>,
        add: fn(&mut A, Vec<T>),
    ) -> Result<HashMap<String, Listed<A>>, Error> {
        struct Pending {
            key: usize,
            path: String,
            /// Attempts of this page so far.
            tries: u32,
        }
        let policy = self.retry().clone();
        let keys: Vec<String> = lists.iter().map(|(k, _)| k.clone()).collect();
        let mut items: Vec<Option<A>> = (0..keys.len()).map(|_| Some(A::default())).collect();
        let mut pending: VecDeque<Pending> = lists
            .into_iter()
            .enumerate()
            .map(|(key, (_, path))| Pending { key, path, tries: 0 })
            .collect();
        let mut seen = HashSet::new();
        let mut round = 0u32;
        while !pending.is_empty() {
            let wave: Vec<Pending> = pending.drain(..).collect();
            let chunks: Vec<&[Pending]> = wave.chunks(BATCH_SIZE).collect();
            let batches: Vec<Vec<String>> = chunks
                .iter()
                .map(|chunk| chunk.iter().map(|p| p.path.clone()).collect())
                .collect();
            // Each batch's pages are folded in as the batch arrives (in order), not after the
            // whole wave: a wave of a large read holds every membership of the directory.
            let answers = futures::stream::iter(chunks.iter()).zip(
                futures::stream::iter(batches.into_iter().map(|paths| self.batch_once::<T>(paths)))
                    .buffered(self.parallel),
            );
            futures::pin_mut!(answers);
            let mut wait: Option<Duration> = None;
            let mut retried = false;
            let mut next_wave = Vec::new();
            while let Some((chunk, answer)) = answers.next().await {
                let (replies, seconds) = answer?;
                for (i, item) in replies {
                    let p = &chunk[i];
                    let status = StatusCode::from_u16(item.status).unwrap_or(StatusCode::BAD_GATEWAY);
                    let outcome = match status.as_u16() {
                        200..=299 => "success",
                        429 => "throttled",
                        _ => "error",
                    };
                    crate::metrics::provider_request(NAME, operation, outcome, seconds);
                    let body = item.body;
                    if status.is_success() {
                        let page = body.and_then(|b| b.value.map(|v| (v, b.next)));
                        let Some((value, next)) = page else {
                            return Err(self.http.side().error(
                                FailureKind::Unavailable,
                                format!(
                                    "Microsoft Graph answered a batched request ({}) with HTTP {} but without a page \
                                     of a list",
                                    want.what, item.status
                                ),
                            ));
                        };
                        if let Some(list) = items[p.key].as_mut() {
                            add(list, value);
                        }
                        if let Some(next) = next {
                            self.check_link(&next, &mut seen, want.what)?;
                            next_wave.push(Pending {
                                key: p.key,
                                path: next[self.api.len()..].to_string(),
                                tries: 0,
                            });
                        }
                        continue;
                    }
                    if status == StatusCode::NOT_FOUND {
                        items[p.key] = None;
                        continue;
                    }
                    let throttled = status == StatusCode::TOO_MANY_REQUESTS;
                    let retryable = throttled || status.is_server_error();
                    let headers = item_headers(&item.headers);
                    let error = body.and_then(|b| b.error).unwrap_or_default();
                    let reply = Reply {
                        status,
                        headers: headers.clone(),
                        body: serde_json::to_vec(&serde_json::json!({ "error": error })).unwrap_or_default(),
                        method: reqwest::Method::GET,
                        path: format!("/v1.0{}", p.path.split('?').next().unwrap_or_default()),
                        host: crate::net::host_of(&self.api),
                    };
                    if !retryable {
                        return Err(self.refusal(want, &reply));
                    }
                    let server_wait = crate::net::retry::retry_after(&headers, jiff::Timestamp::now());
                    if let Some(w) = server_wait
                        && w > policy.max_server_wait
                    {
                        return Err(self.http.side().error(
                            FailureKind::Throttled,
                            format!(
                                "Microsoft Graph at {} is rate limiting {} (HTTP 429 in a batch) and asks to wait \
                                 {}s (until {}): the next sync will try again",
                                reply.host,
                                want.what,
                                w.as_secs(),
                                retry_time(w)
                            ),
                        ));
                    }
                    let tries = p.tries + 1;
                    if tries >= policy.max_attempts {
                        let kind = if throttled {
                            FailureKind::Throttled
                        } else {
                            FailureKind::Unavailable
                        };
                        return Err(self.http.side().error(
                            kind,
                            format!(
                                "Microsoft Graph at {} kept answering HTTP {} to {} ({} attempts{}): the next sync will \
                                 try again",
                                reply.host,
                                item.status,
                                want.what,
                                tries,
                                with_colon(&reply.detail())
                            ),
                        ));
                    }
                    wait = wait.max(server_wait);
                    retried = true;
                    next_wave.push(Pending {
                        key: p.key,
                        path: p.path.clone(),
                        tries,
                    });
                }
            }
            if retried {
                round += 1;
                let backoff = policy
                    .delays()
                    .nth(round.saturating_sub(1) as usize)
                    .unwrap_or(policy.max_delay);
                let pause = wait.unwrap_or(backoff);
                debug!(provider = NAME, operation, pause = %human(pause), "batched requests throttled or failed: waiting");
                tokio::time::sleep(pause).await;
            }
            pending.extend(next_wave);
        }
        Ok(keys
            .into_iter()
            .zip(items)
            .map(|(k, listed)| (k, listed.map(Listed::Items).unwrap_or(Listed::NotFound)))
            .collect())
    }

    /// One `$batch` of GETs (paths under `/v1.0`): the answers by request position, and how long
    /// the batch took.
    async fn batch_once<T: DeserializeOwned>(
        &self,
        paths: Vec<String>,
    ) -> Result<(Vec<(usize, BatchItem<T>)>, f64), Error> {
        let body = BatchBody {
            requests: paths
                .iter()
                .enumerate()
                .map(|(i, url)| BatchRequest {
                    id: (i + 1).to_string(),
                    method: "GET",
                    url: url.as_str(),
                })
                .collect(),
        };
        let url = self.url("/$batch");
        let started = Instant::now();
        let reply = self
            .http
            .send_authorised(
                Call::idempotent("batch"),
                &self.tokens,
                |deadline| self.fetch_token(deadline),
                |c, token| {
                    c.post(&url)
                        .bearer_auth(token.expose())
                        .header("x-ms-throttle-priority", "Low")
                        .json(&body)
                },
            )
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        if !reply.status.is_success() {
            return Err(self.refusal(
                Want {
                    what: "a batch of requests",
                    permission: "GroupMember.Read.All",
                },
                &reply,
            ));
        }
        let answer: BatchAnswer<T> = reply.json_as(self.http.side(), "a batch answer")?;
        let mut out = Vec::with_capacity(answer.responses.len());
        let mut answered = vec![false; paths.len()];
        for item in answer.responses {
            // Answers come in any order; each names its request.
            let index = item
                .id
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(1))
                .filter(|&i| i < paths.len());
            match index {
                Some(i) if !answered[i] => {
                    answered[i] = true;
                    out.push((i, item));
                }
                _ => {
                    return Err(self.http.side().error(
                        FailureKind::Unavailable,
                        format!(
                            "Microsoft Graph answered a batch with an unknown or repeated id {:?}",
                            item.id
                        ),
                    ));
                }
            }
        }
        if answered.iter().any(|a| !a) {
            return Err(self.http.side().error(
                FailureKind::Unavailable,
                format!(
                    "Microsoft Graph answered {} of the {} requests of a batch",
                    answered.iter().filter(|a| **a).count(),
                    paths.len()
                ),
            ));
        }
        Ok((out, seconds))
    }
}

/// The headers of a batched answer (names are case-insensitive, as in HTTP).
fn item_headers(map: &HashMap<String, String>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (k, v) in map {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.to_ascii_lowercase()), HeaderValue::from_str(v)) {
            headers.insert(name, value);
        }
    }
    // Graph spells it `Retry-After`; make sure a differently cased key is found.
    if !headers.contains_key(RETRY_AFTER)
        && let Some(v) = map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .map(|(_, v)| v)
        && let Ok(value) = HeaderValue::from_str(v)
    {
        headers.insert(RETRY_AFTER, value);
    }
    headers
}

fn with_colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// `expires_in` as a number (v2.0 endpoint) or as text (v1.0).
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(u64),
        Text(String),
    }
    match N::deserialize(d)? {
        N::Number(n) => Ok(n),
        N::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            method: reqwest::Method::GET,
            path: "/v1.0/users/delta".into(),
            host: "graph".into(),
        }
    }

    #[test]
    fn expired_delta_links_are_recognised() {
        assert!(is_expired_delta(&reply(410, "")));
        assert!(is_expired_delta(&reply(
            400,
            r#"{"error":{"code":"syncStateNotFound","message":"The sync state is not found."}}"#
        )));
        assert!(!is_expired_delta(&reply(
            400,
            r#"{"error":{"code":"BadRequest","message":"x"}}"#
        )));
        assert!(!is_expired_delta(&reply(
            500,
            r#"{"error":{"code":"syncStateNotFound"}}"#
        )));
    }

    #[test]
    fn batched_headers_are_read_whatever_their_case() {
        let map = HashMap::from([("Retry-After".to_string(), "7".to_string())]);
        assert_eq!(item_headers(&map).get(RETRY_AFTER).unwrap(), "7");
        let map = HashMap::from([("retry-after".to_string(), "3".to_string())]);
        assert_eq!(item_headers(&map).get(RETRY_AFTER).unwrap(), "3");
    }
}
