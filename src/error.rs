use crate::api::FieldError;
use crate::api::Reason;

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

    /// The same error with `note` appended to its message (field errors are left as they are).
    pub fn with_note(self, note: &str) -> Error {
        let add = |m: String| format!("{m}; {note}");
        match self {
            Error::SourceAuthFailed(m) => Error::SourceAuthFailed(add(m)),
            Error::SourceUnavailable(m) => Error::SourceUnavailable(add(m)),
            Error::BitwardenAuthFailed(m) => Error::BitwardenAuthFailed(add(m)),
            Error::BitwardenUnavailable(m) => Error::BitwardenUnavailable(add(m)),
            Error::BitwardenRejected(m) => Error::BitwardenRejected(add(m)),
            Error::RateLimited(m) => Error::RateLimited(add(m)),
            Error::DuplicateEmails(m) => Error::DuplicateEmails(add(m)),
            Error::GuardTripped(m) => Error::GuardTripped(add(m)),
            Error::Conflict(m) => Error::Conflict(add(m)),
            other => other,
        }
    }

    /// A single invalid field.
    pub fn invalid(path: &str, message: impl Into<String>) -> Error {
        Error::InvalidSpec(vec![FieldError::new(path, message)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_keeps_the_reason() {
        let e = Error::BitwardenUnavailable("timed out".into()).with_note("2 of 5 import batches had been applied");
        assert_eq!(e.reason(), Reason::BitwardenUnavailable);
        assert_eq!(e.to_string(), "timed out; 2 of 5 import batches had been applied");
        let e = Error::invalid("spec.x", "bad").with_note("ignored");
        assert_eq!(e.to_string(), "invalid spec: spec.x: bad");
    }
}
