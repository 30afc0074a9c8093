//! The HTTP double toolkit: what every test double here (Bitwarden and each directory provider)
//! is built on. A double is a wiremock server with one responder that records each request,
//! answers programmed failures first (per route, in order), then hands the request to the
//! double's own handler, which holds the server's state and speaks its wire format.
//!
//! ```ignore
//! struct Org { users: Vec<Value> }
//! fn route(r: &Request) -> Option<&'static str> { (r.url.path() == "/users").then_some("users") }
//! fn handle(org: &mut Org, route: &'static str, r: &Request) -> ResponseTemplate { ... }
//! let double = HttpDouble::start(Org { users }, route, handle).await;
//! double.state().users.push(json!({...}));
//! double.fail_next("users", 1, Failure::rate_limited(Some("2")));
//! double.fail_after("users", 3, 1, Failure::drop_connection());   // the 4th page breaks
//! assert_eq!(double.requests_to("users").len(), 5);
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Which route a request is for (a name the double chooses: `"token"`, `"users"`, ...), or
/// `None` for an unknown path (answered 404).
pub type RouteFn = fn(&Request) -> Option<&'static str>;
/// The double's own answer to a request on a route.
pub type HandlerFn<S> = fn(&mut S, &'static str, &Request) -> ResponseTemplate;

/// A running double with state `S`.
pub struct HttpDouble<S: Send + 'static> {
    server: MockServer,
    shared: Arc<Mutex<Shared<S>>>,
}

struct Shared<S> {
    state: S,
    requests: Vec<(Option<&'static str>, RecordedRequest)>,
    /// Per route: (requests to let through first, failure, times left).
    failures: HashMap<&'static str, VecDeque<(usize, Failure, usize)>>,
    /// Every answer waits this long (a real API's round trip).
    latency: Option<Duration>,
}

impl<S: Send + 'static> HttpDouble<S> {
    pub async fn start(state: S, route: RouteFn, handle: HandlerFn<S>) -> HttpDouble<S> {
        let shared = Arc::new(Mutex::new(Shared {
            state,
            requests: Vec::new(),
            failures: HashMap::new(),
            latency: None,
        }));
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Responder {
                shared: shared.clone(),
                route,
                handle,
            })
            .mount(&server)
            .await;
        HttpDouble { server, shared }
    }

    fn shared(&self) -> MutexGuard<'_, Shared<S>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The double's state, locked while the guard lives.
    pub fn state(&self) -> StateGuard<'_, S> {
        StateGuard(self.shared())
    }

    /// Every answer waits `latency` first (benchmarks: a real API's round trip).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.shared().latency = latency;
    }

    /// Answers the next `times` requests to `route` with `failure` (after those already
    /// programmed). `usize::MAX` times means for ever.
    pub fn fail_next(&self, route: &'static str, times: usize, failure: Failure) {
        self.fail_after(route, 0, times, failure);
    }

    /// Lets `ok` requests to `route` through, then answers `times` with `failure`: the third
    /// page of a list that breaks, the second batch of an import that fails.
    pub fn fail_after(&self, route: &'static str, ok: usize, times: usize, failure: Failure) {
        if times > 0 {
            self.shared()
                .failures
                .entry(route)
                .or_default()
                .push_back((ok, failure, times));
        }
    }

    /// Drops the programmed failures not yet used.
    pub fn clear_failures(&self) {
        self.shared().failures.clear();
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared().requests.iter().map(|(_, r)| r.clone()).collect()
    }

    /// The requests to one route.
    pub fn requests_to(&self, route: &str) -> Vec<RecordedRequest> {
        self.shared()
            .requests
            .iter()
            .filter(|(r, _)| *r == Some(route))
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// The locked state of a double.
pub struct StateGuard<'a, S>(MutexGuard<'a, Shared<S>>);

impl<S> std::ops::Deref for StateGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0.state
    }
}

impl<S> std::ops::DerefMut for StateGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.0.state
    }
}

struct Responder<S> {
    shared: Arc<Mutex<Shared<S>>>,
    route: RouteFn,
    handle: HandlerFn<S>,
}

impl<S: Send + 'static> Respond for Responder<S> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let route = (self.route)(request);
        shared.requests.push((route, record(request)));
        let latency = shared.latency;
        let with_latency = |t: ResponseTemplate| match latency {
            Some(d) => t.set_delay(d),
            None => t,
        };
        let Some(route) = route else {
            return with_latency(ResponseTemplate::new(404));
        };
        if let Some(queue) = shared.failures.get_mut(route)
            && let Some((ok, failure, left)) = queue.front_mut()
        {
            if *ok > 0 {
                *ok -= 1;
            } else {
                let template = failure.template(request);
                let delayed = failure.delay.is_some();
                *left -= 1;
                if *left == 0 {
                    queue.pop_front();
                }
                return if delayed { template } else { with_latency(template) };
            }
        }
        with_latency((self.handle)(&mut shared.state, route, request))
    }
}

/// A programmed answer that replaces the double's normal handling of one request.
#[derive(Clone, Debug)]
pub struct Failure {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Option<Duration>,
    /// Answer with the request's own body (a server that echoes what it got).
    pub echo: bool,
}

impl Failure {
    /// `status` with an empty body.
    pub fn status(status: u16) -> Failure {
        Failure {
            status,
            body: String::new(),
            headers: Vec::new(),
            delay: None,
            echo: false,
        }
    }

    /// `status` with `content_type` and `body` (an HTML page from a proxy, ...).
    pub fn body(status: u16, content_type: &str, body: &str) -> Failure {
        Failure {
            body: body.to_string(),
            ..Failure::status(status)
        }
        .header("content-type", content_type)
    }

    /// `status` with a JSON body.
    pub fn json(status: u16, body: Value) -> Failure {
        Failure::body(status, "application/json; charset=utf-8", &body.to_string())
    }

    /// `status` with the request's body as the answer's (`text/plain`), as a server that echoes
    /// the form it got into its error page.
    pub fn echo(status: u16) -> Failure {
        Failure {
            echo: true,
            ..Failure::status(status)
        }
        .header("content-type", "text/plain")
    }

    /// 429, with `Retry-After` when given (seconds or an HTTP date).
    pub fn rate_limited(retry_after: Option<&str>) -> Failure {
        let f = Failure::status(429);
        match retry_after {
            Some(v) => f.header("retry-after", v),
            None => f,
        }
    }

    /// The connection is closed after the request, without an answer (the answer promises more
    /// bytes than it has, so it is never completed). For an answer cut off mid-body, see
    /// `support::raw::RawServer::cut_mid_body`.
    pub fn drop_connection() -> Failure {
        Failure {
            body: "{\"partial\":".to_string(),
            ..Failure::status(200)
        }
        .header("content-length", "1000")
    }

    /// Answers only after an hour: a server that hangs.
    pub fn hang() -> Failure {
        Failure::status(200).delayed(Duration::from_secs(3600))
    }

    pub fn header(mut self, name: &str, value: &str) -> Failure {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Answers only after `delay` (to provoke client timeouts).
    pub fn delayed(mut self, delay: Duration) -> Failure {
        self.delay = Some(delay);
        self
    }

    pub fn template(&self, request: &Request) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status);
        for (k, v) in &self.headers {
            t = t.insert_header(k.as_str(), v.as_str());
        }
        if self.echo {
            t = t.set_body_bytes(request.body.clone());
        } else if !self.body.is_empty() {
            t = t.set_body_bytes(self.body.clone().into_bytes());
        }
        if let Some(d) = self.delay {
            t = t.set_delay(d);
        }
        t
    }
}

/// One request as received. The `Authorization` header's credentials are replaced by
/// `<redacted>` (the scheme is kept); the body is kept as sent.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-case header names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as form fields (last value wins).
    pub fn form(&self) -> BTreeMap<String, String> {
        parse_form(&self.body_text()).into_iter().collect()
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        parse_form(self.query.as_deref()?)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

fn record(request: &Request) -> RecordedRequest {
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or("<binary>");
            let value = if name.as_str() == "authorization" {
                match value.split_once(' ') {
                    Some((scheme, _)) => format!("{scheme} <redacted>"),
                    None => "<redacted>".to_string(),
                }
            } else {
                value.to_string()
            };
            (name.as_str().to_string(), value)
        })
        .collect();
    RecordedRequest {
        method: request.method.to_string(),
        path: request.url.path().to_string(),
        query: request.url.query().map(str::to_string),
        headers,
        body: request.body.clone(),
    }
}

/// `status` with a JSON body.
pub fn json_response(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string().into_bytes(), "application/json; charset=utf-8")
}

/// A request header, as text.
pub fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A query parameter of a request.
pub fn query_param(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Decodes `a=b&c=d` (`+` and `%xx` included).
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://form.invalid/?{text}")).expect("form as a query");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A page of a list, for doubles of cursor-paged APIs: the items from the position `token`
/// stands for, at most `size` of them, and the token of the next page (`None` on the last).
/// Tokens are opaque to the client and unknown ones are refused, as real servers do.
pub fn page<'a, T>(items: &'a [T], size: usize, token: Option<&str>) -> Result<(&'a [T], Option<String>), BadToken> {
    let start = match token {
        None => 0,
        Some(t) => decode_token(t).filter(|&s| s <= items.len()).ok_or(BadToken)?,
    };
    let end = (start + size.max(1)).min(items.len());
    let next = (end < items.len()).then(|| encode_token(end));
    Ok((&items[start..end], next))
}

/// A paging token the double did not issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadToken;

fn encode_token(position: usize) -> String {
    // Looks opaque (as real tokens do) but is just the position, checked on the way back.
    format!("pg{:x}z{:x}", position, position.wrapping_mul(2654435761) & 0xffff)
}

fn decode_token(token: &str) -> Option<usize> {
    let (pos, check) = token.strip_prefix("pg")?.split_once('z')?;
    let pos = usize::from_str_radix(pos, 16).ok()?;
    (usize::from_str_radix(check, 16).ok()? == pos.wrapping_mul(2654435761) & 0xffff).then_some(pos)
}

/// A fresh random UUID (v4 layout).
pub fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let a = seed ^ n.rotate_left(32) ^ (std::process::id() as u64).rotate_left(16);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a & 0xfff) as u16,
        (n & 0xfff) as u16,
        n & 0xffff_ffff_ffff
    )
}
