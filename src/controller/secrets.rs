//! Secrets in the cluster: [`KubeSecretStore`] reads keys of Secrets in the resource's namespace
//! (values stay in memory for one sync, never logged), and the helpers that find which Secrets a
//! DirectorySync references (every `*SecretRef` of the spec, whatever the provider).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::Error;
use crate::api::DirectorySyncSpec;
use crate::secrets::{SecretStore, SecretValue, value_in};

/// The names of every Secret the spec references (any field named `...SecretRef` with a `name`).
pub fn referenced_secrets(spec: &DirectorySyncSpec) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k.ends_with("SecretRef")
                        && let Some(name) = v.get("name").and_then(Value::as_str)
                        && !name.is_empty()
                    {
                        out.insert(name.to_string());
                    }
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(v) = serde_json::to_value(spec) {
        walk(&v, &mut out);
    }
    out
}

/// A stable hash of the referenced Secrets' resourceVersions (`None`: the Secret is absent).
pub fn secrets_hash(versions: &BTreeMap<String, Option<String>>) -> String {
    let mut h = Sha256::new();
    for (name, rv) in versions {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(rv.as_deref().unwrap_or("-").as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Reads the resourceVersion of each named Secret (metadata only, no values).
pub async fn secret_versions(
    api: &Api<Secret>,
    names: &BTreeSet<String>,
) -> Result<BTreeMap<String, Option<String>>, kube::Error> {
    let mut out = BTreeMap::new();
    for name in names {
        let meta = api.get_metadata_opt(name).await?;
        out.insert(name.clone(), meta.and_then(|m| m.metadata.resource_version));
    }
    Ok(out)
}

/// A Secret's data, or `None` when the Secret does not exist.
type SecretData = Option<BTreeMap<String, Vec<u8>>>;

/// Lifetime asked for ServiceAccount tokens: the TokenRequest API's minimum. A token is
/// exchanged at once for a directory's own access token.
pub const SERVICE_ACCOUNT_TOKEN_SECONDS: i64 = 600;

/// [`SecretStore`] over the Kubernetes API, for one namespace. Each Secret is read once per sync
/// (the store lives for one sync) and its values are only held in memory. ServiceAccount tokens
/// (Entra workload identity) come from the TokenRequest API in the same namespace.
pub struct KubeSecretStore {
    api: Api<Secret>,
    service_accounts: Api<ServiceAccount>,
    namespace: String,
    cache: Mutex<HashMap<String, SecretData>>,
}

impl KubeSecretStore {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        KubeSecretStore {
            service_accounts: Api::namespaced(client.clone(), namespace),
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the named Secrets now. A missing Secret is remembered as missing (the engine then
    /// reports `SecretNotFound`); any other API error is returned, for a retry.
    pub async fn prefetch(&self, names: &BTreeSet<String>) -> Result<(), kube::Error> {
        for name in names {
            let data = self.fetch(name).await?;
            self.cache.lock().await.insert(name.clone(), data);
        }
        Ok(())
    }

    async fn fetch(&self, name: &str) -> Result<SecretData, kube::Error> {
        Ok(self.api.get_opt(name).await?.map(|s| {
            let mut data: BTreeMap<String, Vec<u8>> =
                s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
            // stringData is write-only in the API, but a test double or an old server may echo it.
            for (k, v) in s.string_data.unwrap_or_default() {
                data.entry(k).or_insert_with(|| v.into_bytes());
            }
            data
        }))
    }
}

#[async_trait]
impl SecretStore for KubeSecretStore {
    async fn get(&self, name: &str, key: &str) -> Result<SecretValue, Error> {
        let cached = self.cache.lock().await.get(name).cloned();
        let data = match cached {
            Some(d) => d,
            None => {
                let d = self.fetch(name).await.map_err(|e| {
                    tracing::warn!(secret = name, error = %e, "cannot read Secret");
                    Error::SecretNotFound {
                        namespace: self.namespace.clone(),
                        name: name.to_string(),
                    }
                })?;
                self.cache.lock().await.insert(name.to_string(), d.clone());
                d
            }
        };
        value_in(&self.namespace, name, key, data.as_ref())
    }

    async fn service_account_token(&self, service_account: &str, audience: &str) -> Result<SecretValue, Error> {
        let ns = &self.namespace;
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![audience.to_string()],
                expiration_seconds: Some(SERVICE_ACCOUNT_TOKEN_SECONDS),
                bound_object_ref: None,
            },
            ..Default::default()
        };
        match self
            .service_accounts
            .create_token_request(service_account, &PostParams::default(), &request)
            .await
        {
            Ok(answer) => match answer.status {
                Some(status) if !status.token.is_empty() => Ok(SecretValue::new(status.token)),
                _ => Err(Error::SourceUnavailable(format!(
                    "the Kubernetes API answered the token request for ServiceAccount {service_account:?} without a token"
                ))),
            },
            Err(kube::Error::Api(s)) if s.code == 404 => Err(Error::SourceAuthFailed(format!(
                "ServiceAccount {service_account:?} does not exist in namespace {ns:?}: create it (its federated \
                 credential's subject is system:serviceaccount:{ns}:{service_account}), or fix \
                 workloadIdentity.serviceAccountName"
            ))),
            Err(kube::Error::Api(s)) if s.code == 403 => Err(Error::SourceAuthFailed(format!(
                "the controller may not request tokens for ServiceAccount {service_account:?} in namespace {ns:?} \
                 ({}): allow it with the chart's rbac.serviceAccountTokens=true (create on serviceaccounts/token)",
                s.message
            ))),
            Err(e) => Err(Error::SourceUnavailable(format!(
                "cannot request a token for ServiceAccount {service_account:?} from the Kubernetes API: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_secret_ref_of_any_provider() {
        let spec: DirectorySyncSpec = serde_yaml_ng::from_str(
            r#"
bitwarden:
  apiKeySecretRef: {name: bw}
  caSecretRef: {name: bw-ca, key: ca.crt}
source:
  ldap:
    url: ldaps://x
    rootPath: dc=x
    bindSecretRef: {name: bind}
    tls: {caSecretRef: {name: ldap-ca, key: ca.crt}, clientCertSecretRef: {name: client}}
"#,
        )
        .unwrap();
        let names: Vec<String> = referenced_secrets(&spec).into_iter().collect();
        assert_eq!(names, ["bind", "bw", "bw-ca", "client", "ldap-ca"]);
    }

    #[test]
    fn hash_changes_with_versions_and_presence() {
        let mut v = BTreeMap::new();
        v.insert("bw".to_string(), None);
        let absent = secrets_hash(&v);
        v.insert("bw".to_string(), Some("10".into()));
        let present = secrets_hash(&v);
        v.insert("bw".to_string(), Some("11".into()));
        let changed = secrets_hash(&v);
        assert_ne!(absent, present);
        assert_ne!(present, changed);
        assert_eq!(changed, secrets_hash(&v));
    }
}
