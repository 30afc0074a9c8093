//! Directory sources: one folder per provider, all behind [`DirectorySource`]. Each provider's
//! settings type (in `crate::api`) implements [`Provider`] in its folder; [`provider`] is the one
//! `match` over [`SourceSpec`] that picks it. Adding a provider: a folder here, a variant of
//! `SourceSpec`, an arm below.

pub mod entra;
pub mod filter;
pub mod google;
pub mod ldap;
pub mod okta;
pub mod onelogin;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::Error;
use crate::api::checks::FieldErrors;
use crate::api::{SourceSpec, SyncOptions};
use crate::secrets::SecretStore;
use crate::sync::model::Directory;

/// What the engine asks a source for.
#[derive(Clone, Debug, Default)]
pub struct ReadRequest {
    pub users: bool,
    pub groups: bool,
    /// The cursor of the last successful sync; `None` asks for a full read.
    pub cursor: Option<BTreeMap<String, String>>,
}

impl ReadRequest {
    pub fn new(options: &SyncOptions, cursor: Option<BTreeMap<String, String>>) -> Self {
        ReadRequest {
            users: options.users,
            groups: options.groups,
            cursor,
        }
    }
}

/// What a source returns.
#[derive(Clone, Debug, Default)]
pub struct ReadResult {
    pub directory: Directory,
    /// The cursor to store once the whole sync has succeeded.
    pub cursor: BTreeMap<String, String>,
    /// Security-relevant settings in effect (e.g. TLS verification off), for the status.
    pub warnings: Vec<String>,
}

/// One connected directory.
#[async_trait]
pub trait DirectorySource: Send {
    /// Reads users and groups. Errors are `SourceAuthFailed`, `SourceUnavailable`,
    /// `RateLimited` or, for settings only the server can reject, `InvalidSpec`. A list that
    /// cannot be read to its end is an error, never a shorter directory.
    async fn read(&mut self, request: &ReadRequest) -> Result<ReadResult, Error>;
}

/// What every provider's settings can do: name themselves, check themselves, connect.
#[async_trait]
pub trait Provider: Sync {
    /// The name in status, metrics and logs: the key under `spec.source` (`ldap`, `entraId`, ...).
    fn name(&self) -> &'static str;
    /// Adds every problem of the settings to `errors`, with paths under `spec.source.<name>`.
    fn validate(&self, errors: &mut FieldErrors);
    /// Reads the Secrets the settings name and opens the source (settings already validated).
    async fn connect(&self, secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error>;
}

/// The provider a spec names.
pub fn provider(source: &SourceSpec) -> &dyn Provider {
    match source {
        SourceSpec::Ldap(s) => s,
        SourceSpec::EntraId(s) => s,
        SourceSpec::GoogleWorkspace(s) => s,
        SourceSpec::Okta(s) => s,
        SourceSpec::OneLogin(s) => s,
    }
}

/// Records one request to a directory in `dirsync_provider_requests_total` and its duration
/// histogram: `throttled` for rate limiting, else `success` or `error`.
pub fn record_request<T>(provider: &str, operation: &str, result: &Result<T, Error>, started: std::time::Instant) {
    let outcome = match result {
        Ok(_) => "success",
        Err(Error::RateLimited(_)) => "throttled",
        Err(_) => "error",
    };
    crate::metrics::provider_request(provider, operation, outcome, started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<SourceSpec> {
        use crate::api::*;
        vec![
            SourceSpec::Ldap(LdapSource::default()),
            SourceSpec::EntraId(EntraIdSource::default()),
            SourceSpec::GoogleWorkspace(GoogleWorkspaceSource::default()),
            SourceSpec::Okta(OktaSource::default()),
            SourceSpec::OneLogin(OneLoginSource::default()),
        ]
    }

    #[test]
    fn each_provider_is_named_by_its_key_under_spec_source() {
        let names: Vec<&str> = examples().iter().map(|s| provider(s).name()).collect();
        assert_eq!(names, crate::api::SOURCE_KEYS);
        for source in examples() {
            let json = serde_json::to_value(&source).unwrap();
            let key = json.as_object().unwrap().keys().next().unwrap().clone();
            assert_eq!(provider(&source).name(), key);
        }
    }
}
