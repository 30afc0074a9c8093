//! What every network client here shares: the Bitwarden client and the cloud directory sources
//! (Entra ID, Google Workspace, Okta, OneLogin) send their HTTP requests through [`HttpClient`].
//!
//! - [`retry`]: bounded retries (attempt count and a total time budget per call), jittered
//!   exponential backoff, the servers' own waits (`Retry-After`, Okta's `X-Rate-Limit-Reset`,
//!   OneLogin's `X-RateLimit-Reset`), per-server throttle rules and pacing, and which calls may be
//!   sent again ([`Idempotency`]).
//! - [`pace`]: calls kept within a server's published limits (at most N a second, M a minute),
//!   one pacer per server for the whole process.
//! - [`token`]: one OAuth-style access-token cache, renewed before expiry and once after a 401.
//! - [`tls`]: the one PEM CA bundle loader, and TLS failures described with what to fix.
//! - [`scrub`]: removes secrets (raw, URL-encoded, base64) from every message that leaves a client.
//! - [`http`]: [`HttpClient`] (no redirects, timeouts, user agent, metrics per attempt) and the
//!   helpers every JSON client needs (error-body summaries, unexpected answers, host of a URL).
//!
//! Which [`Side`] a client talks to decides the reasons of its failures: the same neutral
//! [`FailureKind`] is `BitwardenUnavailable` for Bitwarden and `SourceUnavailable` for a source.

pub mod http;
pub mod jwt;
pub mod pace;
pub mod retry;
pub mod scrub;
pub mod tls;
pub mod token;

use std::fmt;

use crate::Error;
pub use http::{Call, HttpClient, HttpOptions, Reply, describe_error_body, host_of};
pub use retry::{DefaultRules, Idempotency, RetryPolicy, ServerRules, Verdict};
pub use scrub::Scrubber;
pub use token::{Token, TokenCache};

/// Words every failure whose effect on the server is unknown carries (a non-idempotent call that
/// timed out, broke off or got a 5xx): callers that report progress test for it with
/// [`outcome_unknown`].
pub const OUTCOME_UNKNOWN: &str = "may or may not have been applied";

/// Whether `error` says that its request may have been applied anyway (see [`OUTCOME_UNKNOWN`]).
pub fn outcome_unknown(error: &Error) -> bool {
    error.to_string().contains(OUTCOME_UNKNOWN)
}

/// The server a client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The Bitwarden Public API and identity service.
    Bitwarden,
    /// A directory provider, by its spec name (`entraId`, `googleWorkspace`, `okta`,
    /// `oneLogin`, `ldap`): the `provider` label of the metrics.
    Source(&'static str),
}

/// What went wrong, whichever the side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Unreachable, timed out, 5xx, an answer that is not the server's.
    Unavailable,
    /// Credentials refused (token endpoint, 401 after renewal, 403).
    AuthFailed,
    /// Rate limited past what the call may wait.
    Throttled,
    /// A 4xx that refuses the request itself.
    Rejected,
}

impl Side {
    /// The error of `kind` on this side. A source has no "rejected" reason: a source that refuses
    /// a read is unavailable for the sync.
    pub fn error(self, kind: FailureKind, message: impl Into<String>) -> Error {
        let message = message.into();
        match (self, kind) {
            (_, FailureKind::Throttled) => Error::RateLimited(message),
            (Side::Bitwarden, FailureKind::Unavailable) => Error::BitwardenUnavailable(message),
            (Side::Bitwarden, FailureKind::AuthFailed) => Error::BitwardenAuthFailed(message),
            (Side::Bitwarden, FailureKind::Rejected) => Error::BitwardenRejected(message),
            (Side::Source(_), FailureKind::AuthFailed) => Error::SourceAuthFailed(message),
            (Side::Source(_), FailureKind::Unavailable | FailureKind::Rejected) => Error::SourceUnavailable(message),
        }
    }

    /// The name people know the server by, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Side::Bitwarden => "Bitwarden",
            Side::Source("entraId") => "Microsoft Graph",
            Side::Source("googleWorkspace") => "Google Workspace",
            Side::Source("okta") => "Okta",
            Side::Source("oneLogin") => "OneLogin",
            Side::Source("ldap") => "LDAP",
            Side::Source(other) => other,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;

    #[test]
    fn the_side_decides_the_reason() {
        let bw = Side::Bitwarden;
        let okta = Side::Source("okta");
        let cases = [
            (bw, FailureKind::Unavailable, Reason::BitwardenUnavailable),
            (bw, FailureKind::AuthFailed, Reason::BitwardenAuthFailed),
            (bw, FailureKind::Rejected, Reason::BitwardenRejected),
            (bw, FailureKind::Throttled, Reason::RateLimited),
            (okta, FailureKind::Unavailable, Reason::SourceUnavailable),
            (okta, FailureKind::AuthFailed, Reason::SourceAuthFailed),
            (okta, FailureKind::Rejected, Reason::SourceUnavailable),
            (okta, FailureKind::Throttled, Reason::RateLimited),
        ];
        for (side, kind, reason) in cases {
            let e = side.error(kind, "m");
            assert_eq!((e.reason(), e.to_string().as_str()), (reason, "m"), "{side:?} {kind:?}");
        }
        assert_eq!(Side::Source("entraId").to_string(), "Microsoft Graph");
        assert!(outcome_unknown(&Error::BitwardenUnavailable(format!(
            "x {OUTCOME_UNKNOWN}"
        ))));
        assert!(!outcome_unknown(&Error::BitwardenUnavailable("x".into())));
    }
}
