use std::fmt;

/// The closed set of condition reasons. The same strings are used by events and by the `reason`
/// metric label, so they are part of the API: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Synced,
    Unchanged,
    DryRun,
    Suspended,
    InvalidSpec,
    SecretNotFound,
    SecretKeyMissing,
    SourceAuthFailed,
    SourceUnavailable,
    BitwardenAuthFailed,
    BitwardenUnavailable,
    BitwardenRejected,
    RateLimited,
    DuplicateEmails,
    GuardTripped,
    Conflict,
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Reason::Synced,
        Reason::Unchanged,
        Reason::DryRun,
        Reason::Suspended,
        Reason::InvalidSpec,
        Reason::SecretNotFound,
        Reason::SecretKeyMissing,
        Reason::SourceAuthFailed,
        Reason::SourceUnavailable,
        Reason::BitwardenAuthFailed,
        Reason::BitwardenUnavailable,
        Reason::BitwardenRejected,
        Reason::RateLimited,
        Reason::DuplicateEmails,
        Reason::GuardTripped,
        Reason::Conflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::Unchanged => "Unchanged",
            Reason::DryRun => "DryRun",
            Reason::Suspended => "Suspended",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::SecretKeyMissing => "SecretKeyMissing",
            Reason::SourceAuthFailed => "SourceAuthFailed",
            Reason::SourceUnavailable => "SourceUnavailable",
            Reason::BitwardenAuthFailed => "BitwardenAuthFailed",
            Reason::BitwardenUnavailable => "BitwardenUnavailable",
            Reason::BitwardenRejected => "BitwardenRejected",
            Reason::RateLimited => "RateLimited",
            Reason::DuplicateEmails => "DuplicateEmails",
            Reason::GuardTripped => "GuardTripped",
            Reason::Conflict => "Conflict",
        }
    }

    /// True for the reasons that mean the resource is healthy.
    pub fn is_ready(self) -> bool {
        matches!(
            self,
            Reason::Synced | Reason::Unchanged | Reason::DryRun | Reason::Suspended
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
