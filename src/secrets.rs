//! Secret values and where they come from (Kubernetes Secrets in the controller, manifest files
//! in the CLI). A [`SecretValue`] never prints its content: not in `Debug`, not in `Display`.

use std::fmt;

use async_trait::async_trait;

use crate::Error;

/// A secret string. Read it with [`SecretValue::expose`] only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        SecretValue(s.to_string())
    }
}

/// Reads keys of Secrets in the resource's namespace.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The value of `key` in Secret `name`: `SecretNotFound` or `SecretKeyMissing` otherwise.
    async fn get(&self, name: &str, key: &str) -> Result<SecretValue, Error>;

    /// Like [`SecretStore::get`], but `None` when the Secret exists and the key does not.
    async fn get_optional(&self, name: &str, key: &str) -> Result<Option<SecretValue>, Error> {
        match self.get(name, key).await {
            Ok(v) => Ok(Some(v)),
            Err(Error::SecretKeyMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
