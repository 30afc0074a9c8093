//! Directory sources: one module per provider, all behind [`DirectorySource`].

pub mod ldap;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::Error;
use crate::api::{DirectorySyncSpec, SyncOptions};
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

/// One directory provider.
#[async_trait]
pub trait DirectorySource: Send {
    /// Reads users and groups. Errors are `SourceAuthFailed`, `SourceUnavailable`,
    /// `RateLimited` or, for settings only the server can reject, `InvalidSpec`.
    async fn read(&mut self, request: &ReadRequest) -> Result<ReadResult, Error>;
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

/// Builds the source a spec names. Sources that are not built yet are a clear error.
pub async fn connect(spec: &DirectorySyncSpec, secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
    if let Some(l) = &spec.source.ldap {
        return Ok(Box::new(ldap::LdapDirectory::connect(l, secrets).await?));
    }
    let provider = spec.source.provider();
    Err(Error::invalid(
        &format!("spec.source.{provider}"),
        format!("the {provider} source is not available in this version of dirsync"),
    ))
}
