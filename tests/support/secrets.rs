//! An in-memory [`SecretStore`] for tests.

use std::collections::BTreeMap;

use async_trait::async_trait;
use dirsync::Error;
use dirsync::secrets::{SecretStore, SecretValue};

/// The namespace reported in `SecretNotFound` errors.
pub const NAMESPACE: &str = "test";

/// Secrets of one namespace: `name → key → value`.
#[derive(Clone, Debug, Default)]
pub struct MemorySecrets {
    secrets: BTreeMap<String, BTreeMap<String, String>>,
}

impl MemorySecrets {
    pub fn new() -> Self {
        MemorySecrets::default()
    }

    /// Adds (or replaces) `key` of Secret `name`.
    pub fn with(mut self, name: &str, key: &str, value: impl Into<String>) -> Self {
        self.insert(name, key, value);
        self
    }

    pub fn insert(&mut self, name: &str, key: &str, value: impl Into<String>) {
        self.secrets
            .entry(name.to_string())
            .or_default()
            .insert(key.to_string(), value.into());
    }

    /// Removes one key (the Secret stays, possibly empty).
    pub fn remove_key(&mut self, name: &str, key: &str) {
        if let Some(keys) = self.secrets.get_mut(name) {
            keys.remove(key);
        }
    }
}

#[async_trait]
impl SecretStore for MemorySecrets {
    async fn get(&self, name: &str, key: &str) -> Result<SecretValue, Error> {
        let keys = self.secrets.get(name).ok_or_else(|| Error::SecretNotFound {
            namespace: NAMESPACE.into(),
            name: name.into(),
        })?;
        keys.get(key)
            .map(|v| SecretValue::new(v.as_str()))
            .ok_or_else(|| Error::SecretKeyMissing {
                name: name.into(),
                key: key.into(),
            })
    }
}
