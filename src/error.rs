use crate::api::Reason;
use crate::api::validate::FieldError;

/// Every failure a sync can end with. Each variant maps to exactly one condition reason, and
/// every message says what to fix. Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {}", join_fields(.0))]
    InvalidSpec(Vec<FieldError>),
    #[error("Secret {name:?} not found in namespace {namespace:?}: create it, or fix the name in the spec")]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {name:?} has no key {key:?}: add the key, or fix the key name in the spec")]
    SecretKeyMissing { name: String, key: String },
    #[error("{0}")]
    SourceAuthFailed(String),
    #[error("{0}")]
    SourceUnavailable(String),
    #[error("{0}")]
    BitwardenAuthFailed(String),
    #[error("{0}")]
    BitwardenUnavailable(String),
    #[error("{0}")]
    BitwardenRejected(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    DuplicateEmails(String),
    #[error("{0}")]
    GuardTripped(String),
    #[error("{0}")]
    Conflict(String),
}

fn join_fields(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Error {
    pub fn reason(&self) -> Reason {
        match self {
            Error::InvalidSpec(_) => Reason::InvalidSpec,
            Error::SecretNotFound { .. } => Reason::SecretNotFound,
            Error::SecretKeyMissing { .. } => Reason::SecretKeyMissing,
            Error::SourceAuthFailed(_) => Reason::SourceAuthFailed,
            Error::SourceUnavailable(_) => Reason::SourceUnavailable,
            Error::BitwardenAuthFailed(_) => Reason::BitwardenAuthFailed,
            Error::BitwardenUnavailable(_) => Reason::BitwardenUnavailable,
            Error::BitwardenRejected(_) => Reason::BitwardenRejected,
            Error::RateLimited(_) => Reason::RateLimited,
            Error::DuplicateEmails(_) => Reason::DuplicateEmails,
            Error::GuardTripped(_) => Reason::GuardTripped,
            Error::Conflict(_) => Reason::Conflict,
        }
    }

    /// The same failure (same reason) with `prefix` before its message, e.g. "2 of 5 import
    /// batches were applied; ". Errors without a free-text message are returned as they are.
    pub fn with_prefix(self, prefix: &str) -> Error {
        let p = |m: String| format!("{prefix}{m}");
        match self {
            Error::SourceAuthFailed(m) => Error::SourceAuthFailed(p(m)),
            Error::SourceUnavailable(m) => Error::SourceUnavailable(p(m)),
            Error::BitwardenAuthFailed(m) => Error::BitwardenAuthFailed(p(m)),
            Error::BitwardenUnavailable(m) => Error::BitwardenUnavailable(p(m)),
            Error::BitwardenRejected(m) => Error::BitwardenRejected(p(m)),
            Error::RateLimited(m) => Error::RateLimited(p(m)),
            Error::DuplicateEmails(m) => Error::DuplicateEmails(p(m)),
            Error::GuardTripped(m) => Error::GuardTripped(p(m)),
            Error::Conflict(m) => Error::Conflict(p(m)),
            other @ (Error::InvalidSpec(_) | Error::SecretNotFound { .. } | Error::SecretKeyMissing { .. }) => other,
        }
    }

    /// A single invalid field.
    pub fn invalid(path: &str, message: impl Into<String>) -> Error {
        Error::InvalidSpec(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_keeps_the_reason() {
        let e = Error::BitwardenUnavailable("timed out".into()).with_prefix("2 of 5 import batches were applied; ");
        assert_eq!(e.reason(), Reason::BitwardenUnavailable);
        assert_eq!(e.to_string(), "2 of 5 import batches were applied; timed out");
        let e = Error::invalid("spec.x", "bad").with_prefix("ignored: ");
        assert_eq!(e.to_string(), "invalid spec: spec.x: bad");
    }
}
