//! Removing secrets from messages. A server may echo what it was sent (a form body with the
//! client secret, an `Authorization` header) into an error body that then becomes a condition
//! message; every message that leaves a client passes through its [`Scrubber`].
//!
//! Each secret is removed in every form a server is likely to echo it: raw, URL-encoded
//! (`%2B`-style and form-style with `+` for a space, upper- or lower-case hex), JSON-escaped, and
//! base64 (standard and URL-safe, padded or not, standing alone or inside a longer base64 text
//! such as an HTTP Basic `id:secret`). Whatever its length: a short secret may mangle some words
//! of a message, which is better than showing it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::Error;
use crate::api::FieldError;
use crate::secrets::SecretValue;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// How many short-lived values (access tokens) [`Scrubber::remember`] keeps.
const RECENT: usize = 8;

/// The secrets of one client: its long-lived credentials and its recent access tokens. Cheap to
/// clone; the clones share the secrets.
#[derive(Clone, Default)]
pub struct Scrubber(Arc<Mutex<Secrets>>);

#[derive(Default)]
struct Secrets {
    fixed: Vec<SecretValue>,
    recent: VecDeque<SecretValue>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        write!(f, "Scrubber({} secrets)", s.fixed.len() + s.recent.len())
    }
}

impl Scrubber {
    /// A scrubber of `secrets` (client secrets, API tokens, private keys; also combinations a
    /// client sends encoded as one, such as `client_id:client_secret` for HTTP Basic).
    pub fn new(secrets: impl IntoIterator<Item = SecretValue>) -> Scrubber {
        let scrubber = Scrubber::default();
        for s in secrets {
            scrubber.add(s);
        }
        scrubber
    }

    /// Adds a long-lived secret.
    pub fn add(&self, secret: SecretValue) {
        let mut s = self.lock();
        if !secret.expose().is_empty() && !s.fixed.contains(&secret) {
            s.fixed.push(secret);
        }
    }

    /// Adds a short-lived value (an access token); only the last few are kept.
    pub fn remember(&self, value: SecretValue) {
        let mut s = self.lock();
        if value.expose().is_empty() || s.recent.contains(&value) {
            return;
        }
        s.recent.push_back(value);
        while s.recent.len() > RECENT {
            s.recent.pop_front();
        }
    }

    /// `text` with every form of every secret replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let mut patterns: Vec<String> = {
            let s = self.lock();
            s.fixed
                .iter()
                .chain(&s.recent)
                .flat_map(|v| forms(v.expose()))
                .collect()
        };
        if patterns.is_empty() {
            return text.to_string();
        }
        // Longest first, so that the longest form of a secret wins where forms overlap.
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        patterns.dedup();
        replace_all(text, &patterns)
    }

    /// `error` with its message scrubbed (the reason is kept).
    pub fn scrub_error(&self, error: Error) -> Error {
        let clean = |m: String| self.scrub(&m);
        match error {
            Error::InvalidSpec(fields) => Error::InvalidSpec(
                fields
                    .into_iter()
                    .map(|f| FieldError {
                        path: f.path,
                        message: clean(f.message),
                    })
                    .collect(),
            ),
            Error::SourceAuthFailed(m) => Error::SourceAuthFailed(clean(m)),
            Error::SourceUnavailable(m) => Error::SourceUnavailable(clean(m)),
            Error::BitwardenAuthFailed(m) => Error::BitwardenAuthFailed(clean(m)),
            Error::BitwardenUnavailable(m) => Error::BitwardenUnavailable(clean(m)),
            Error::BitwardenRejected(m) => Error::BitwardenRejected(clean(m)),
            Error::RateLimited(m) => Error::RateLimited(clean(m)),
            Error::DuplicateEmails(m) => Error::DuplicateEmails(clean(m)),
            Error::GuardTripped(m) => Error::GuardTripped(clean(m)),
            Error::Conflict(m) => Error::Conflict(clean(m)),
            other @ (Error::SecretNotFound { .. } | Error::SecretKeyMissing { .. }) => other,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Secrets> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every form of `secret` to remove.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    for upper in [true, false] {
        forms.push(percent_encode(secret, upper, false));
        forms.push(percent_encode(secret, upper, true));
    }
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    forms.push(json.replace('/', "\\/"));
    forms.push(json);
    let bytes = secret.as_bytes();
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(bytes));
    }
    forms.extend(embedded_base64(bytes));
    forms.retain(|f| !f.is_empty());
    forms
}

/// Percent-encoding of everything but the unreserved characters (RFC 3986), or the
/// `application/x-www-form-urlencoded` form (a space is `+`, `~` is encoded, `*` is not).
fn percent_encode(s: &str, upper: bool, form: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        let keep =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') || (if form { b == b'*' } else { b == b'~' });
        if keep {
            out.push(b as char);
        } else if form && b == b' ' {
            out.push('+');
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// The base64 characters that stand for `secret` wherever it sits inside a longer encoded text
/// (three alignments, both alphabets), without the characters shared with its neighbours. Only
/// cores of 4 characters or more: shorter ones would match everywhere.
fn embedded_base64(secret: &[u8]) -> Vec<String> {
    let mut cores = Vec::new();
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret);
        let bits = bytes.len() * 8;
        // Characters made only of the secret's bits: skip those holding the padding bytes,
        // stop before the one that also holds what follows.
        let first = (offset * 8).div_ceil(6);
        let last = bits / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            if let Some(core) = encoded.get(first..last)
                && core.len() >= 4
            {
                cores.push(core.to_string());
            }
        }
    }
    cores
}

/// One left-to-right pass: at each position the first (longest) matching pattern is replaced.
fn replace_all(text: &str, patterns: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while let Some(c) = rest.chars().next() {
        for p in patterns {
            if rest.starts_with(p.as_str()) {
                out.push_str(REDACTED);
                rest = &rest[p.len()..];
                continue 'scan;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber(secret: &str) -> Scrubber {
        Scrubber::new([SecretValue::new(secret)])
    }

    #[track_caller]
    fn assert_clean(scrubber: &Scrubber, text: &str, secret_forms: &[&str]) {
        let clean = scrubber.scrub(text);
        for form in secret_forms {
            assert!(!clean.contains(form), "{form:?} left in {clean:?}");
        }
        assert!(clean.contains(REDACTED), "{clean:?}");
    }

    #[test]
    fn raw_secrets_of_any_length_are_removed() {
        let s = scrubber("k3y!z");
        assert_eq!(
            s.scrub("bad secret k3y!z, again k3y!z."),
            "bad secret <redacted>, again <redacted>."
        );
        assert_eq!(scrubber("ab").scrub("xaby"), "x<redacted>y");
        assert_eq!(Scrubber::default().scrub("nothing to do"), "nothing to do");
        assert_eq!(
            scrubber("").scrub("empty secrets are ignored"),
            "empty secrets are ignored"
        );
    }

    #[test]
    fn url_encoded_secrets_are_removed() {
        let secret = "Ab+/x=Q9z&k1Zt7w";
        let s = scrubber(secret);
        let form_body = "grant_type=client_credentials&client_secret=Ab%2B%2Fx%3DQ9z%26k1Zt7w&scope=x";
        assert_eq!(
            s.scrub(form_body),
            "grant_type=client_credentials&client_secret=<redacted>&scope=x"
        );
        assert_eq!(
            s.scrub("secret=Ab%2b%2fx%3dQ9z%26k1Zt7w"),
            "secret=<redacted>",
            "lower-case hex"
        );
        let s = scrubber("a b~c");
        assert_eq!(
            s.scrub("form a+b%7Ec, query a%20b~c"),
            "form <redacted>, query <redacted>"
        );
    }

    #[test]
    fn json_escaped_secrets_are_removed() {
        let s = scrubber(r#"q"u\o/te"#);
        assert_eq!(s.scrub(r#"{"echo":"q\"u\\o/te"}"#), r#"{"echo":"<redacted>"}"#);
        assert_eq!(s.scrub(r#"{"echo":"q\"u\\o\/te"}"#), r#"{"echo":"<redacted>"}"#);
    }

    #[test]
    fn base64_secrets_are_removed_in_every_alphabet_and_padding() {
        let secret = "s3cr3t?>>"; // encodes with + and / in standard base64
        let s = scrubber(secret);
        for encoded in [
            STANDARD.encode(secret),
            STANDARD_NO_PAD.encode(secret),
            URL_SAFE.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
        ] {
            assert_eq!(
                s.scrub(&format!("token {encoded} end")),
                "token <redacted> end",
                "{encoded}"
            );
        }
        let short = scrubber("p4ss5");
        assert_clean(&short, &STANDARD.encode("p4ss5"), &[&STANDARD_NO_PAD.encode("p4ss5")]);
    }

    #[test]
    fn base64_inside_a_longer_encoding_is_removed() {
        let secret = "Ab+/x=Q9z&k1Zt7w";
        let s = scrubber(secret);
        for id in ["client", "client-1", "c"] {
            let basic = STANDARD.encode(format!("{id}:{secret}"));
            let clean = s.scrub(&format!("Authorization: Basic {basic}"));
            assert!(clean.contains(REDACTED), "{clean}");
            // What is left of the encoding no longer decodes to the secret.
            let left: String = clean.replace(REDACTED, "");
            assert!(!left.contains(&basic), "{clean}");
        }
    }

    #[test]
    fn recent_tokens_are_kept_and_old_ones_dropped() {
        let s = Scrubber::new([SecretValue::new("client-secret")]);
        for i in 0..20 {
            s.remember(SecretValue::new(format!("token-{i:02}")));
        }
        assert_eq!(s.scrub("token-19 client-secret"), "<redacted> <redacted>");
        assert_eq!(s.scrub("token-00"), "token-00", "only the last few");
        assert!(!format!("{s:?}").contains("client-secret"));
    }

    #[test]
    fn errors_keep_their_reason() {
        let s = scrubber("hunter2");
        let e = s.scrub_error(Error::BitwardenAuthFailed("bad hunter2".into()));
        assert!(matches!(&e, Error::BitwardenAuthFailed(m) if m == "bad <redacted>"));
        let e = s.scrub_error(Error::invalid("spec.x", "hunter2"));
        assert_eq!(e.to_string(), "invalid spec: spec.x: <redacted>");
        let e = s.scrub_error(Error::SourceUnavailable("aHVudGVyMg==".into()));
        assert_eq!(e.to_string(), "<redacted>");
    }
}
