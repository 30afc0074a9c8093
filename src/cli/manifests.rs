//! The YAML a user would `kubectl apply`: DirectorySyncs and the Secrets they reference, in one
//! or more files, several documents per file (`---`), or `kind: List`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

use crate::Error;
use crate::api::DirectorySync;
use crate::secrets::{SecretStore, SecretValue, value_in};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: document {index} is not valid YAML for a {kind}: {message}")]
    Parse {
        path: PathBuf,
        index: usize,
        kind: String,
        message: String,
    },
    #[error("no DirectorySync (apiVersion dirsync.dev/v1alpha1) found in {0}")]
    NoDirectorySync(String),
    #[error("{count} DirectorySyncs found ({names}): choose one with --name")]
    Ambiguous { count: usize, names: String },
    #[error("no DirectorySync named {0:?} in the files")]
    NotFound(String),
}

#[derive(Default)]
pub struct Manifests {
    pub syncs: Vec<DirectorySync>,
    pub secrets: Vec<Secret>,
}

#[derive(Deserialize)]
struct TypeMeta {
    #[serde(default)]
    kind: String,
    #[serde(default, rename = "apiVersion")]
    api_version: String,
}

impl Manifests {
    pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestError> {
        let mut m = Manifests::default();
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
                path: path.clone(),
                source,
            })?;
            m.add_text(path, &text)?;
        }
        Ok(m)
    }

    pub fn add_text(&mut self, path: &Path, text: &str) -> Result<(), ManifestError> {
        for (index, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let parse_err = |kind: &str, e: &dyn std::fmt::Display| ManifestError::Parse {
                path: path.to_path_buf(),
                index: index + 1,
                kind: kind.to_string(),
                message: e.to_string(),
            };
            let value = serde_yaml_ng::Value::deserialize(doc).map_err(|e| parse_err("document", &e))?;
            self.add_value(value, &parse_err)?;
        }
        Ok(())
    }

    fn add_value(
        &mut self,
        value: serde_yaml_ng::Value,
        parse_err: &dyn Fn(&str, &dyn std::fmt::Display) -> ManifestError,
    ) -> Result<(), ManifestError> {
        if value.is_null() {
            return Ok(());
        }
        let meta: TypeMeta = serde_yaml_ng::from_value(value.clone()).map_err(|e| parse_err("document", &e))?;
        match (meta.kind.as_str(), meta.api_version.as_str()) {
            ("DirectorySync", v) if v.starts_with("dirsync.dev/") => {
                let ds: DirectorySync = serde_yaml_ng::from_value(value).map_err(|e| parse_err("DirectorySync", &e))?;
                self.syncs.push(ds);
            }
            ("Secret", "v1") => {
                let s: Secret = serde_yaml_ng::from_value(value).map_err(|e| parse_err("Secret", &e))?;
                self.secrets.push(s);
            }
            ("List", "v1") => {
                if let Some(items) = value.get("items").and_then(|i| i.as_sequence()) {
                    for item in items.clone() {
                        self.add_value(item, parse_err)?;
                    }
                }
            }
            // Anything else (Namespaces, ConfigMaps, ...) is not ours to read.
            _ => {}
        }
        Ok(())
    }

    /// The one DirectorySync to run (by name when there are several).
    pub fn select(&self, name: Option<&str>, files: &[PathBuf]) -> Result<DirectorySync, ManifestError> {
        let names = || {
            self.syncs
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(n) => self
                .syncs
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(n))
                .cloned()
                .ok_or_else(|| ManifestError::NotFound(n.to_string())),
            None => match self.syncs.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(ManifestError::NoDirectorySync(
                    files
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                )),
                many => Err(ManifestError::Ambiguous {
                    count: many.len(),
                    names: names(),
                }),
            },
        }
    }

    /// The Secrets of one namespace (documents without a namespace count as that namespace).
    pub fn secret_store(&self, namespace: &str) -> FileSecrets {
        let mut secrets: HashMap<String, BTreeMap<String, Vec<u8>>> = HashMap::new();
        for s in &self.secrets {
            let ns = s.metadata.namespace.as_deref().unwrap_or(namespace);
            let Some(name) = s.metadata.name.clone() else { continue };
            if ns != namespace {
                continue;
            }
            let entry = secrets.entry(name).or_default();
            for (k, v) in s.data.iter().flatten() {
                entry.insert(k.clone(), v.0.clone());
            }
            // As the apiserver does, stringData wins over data.
            for (k, v) in s.string_data.iter().flatten() {
                entry.insert(k.clone(), v.clone().into_bytes());
            }
        }
        FileSecrets {
            namespace: namespace.to_string(),
            secrets,
        }
    }
}

/// Secrets read from manifest files.
pub struct FileSecrets {
    namespace: String,
    secrets: HashMap<String, BTreeMap<String, Vec<u8>>>,
}

#[async_trait]
impl SecretStore for FileSecrets {
    async fn get(&self, name: &str, key: &str) -> Result<SecretValue, Error> {
        value_in(&self.namespace, name, key, self.secrets.get(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: bw, namespace: identity}
type: Opaque
data:
  client_id: b3JnYW5pemF0aW9uLjEyMw==
stringData:
  client_secret: s3cr3t
---
apiVersion: v1
kind: Secret
metadata: {name: other, namespace: elsewhere}
stringData: {x: y}
---
apiVersion: v1
kind: List
items:
- apiVersion: dirsync.dev/v1alpha1
  kind: DirectorySync
  metadata: {name: corp, namespace: identity}
  spec:
    bitwarden: {apiKeySecretRef: {name: bw}}
    source: {ldap: {url: "ldap://127.0.0.1:389", rootPath: "dc=x"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#;

    fn load() -> Manifests {
        let mut m = Manifests::default();
        m.add_text(Path::new("f.yaml"), FILE).unwrap();
        m
    }

    #[tokio::test]
    async fn secrets_come_from_data_and_string_data_of_the_same_namespace() {
        let m = load();
        let ds = m.select(None, &[]).unwrap();
        assert_eq!(ds.metadata.name.as_deref(), Some("corp"));
        let store = m.secret_store("identity");
        assert_eq!(store.get("bw", "client_id").await.unwrap().expose(), "organization.123");
        assert_eq!(store.get("bw", "client_secret").await.unwrap().expose(), "s3cr3t");
        assert!(matches!(
            store.get("bw", "nope").await,
            Err(Error::SecretKeyMissing { .. })
        ));
        assert!(matches!(
            store.get("other", "x").await,
            Err(Error::SecretNotFound { .. })
        ));
    }

    #[test]
    fn selection_needs_a_name_when_there_are_several() {
        let mut m = load();
        let mut second = m.syncs[0].clone();
        second.metadata.name = Some("second".into());
        m.syncs.push(second);
        assert!(matches!(
            m.select(None, &[]),
            Err(ManifestError::Ambiguous { count: 2, .. })
        ));
        assert_eq!(
            m.select(Some("second"), &[]).unwrap().metadata.name.as_deref(),
            Some("second")
        );
        assert!(matches!(m.select(Some("x"), &[]), Err(ManifestError::NotFound(_))));
    }

    #[test]
    fn bad_yaml_names_the_file_and_document() {
        let mut m = Manifests::default();
        let err = m
            .add_text(
                Path::new("bad.yaml"),
                "apiVersion: dirsync.dev/v1alpha1\nkind: DirectorySync\nspec: {source: 3}\n",
            )
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("bad.yaml: document 1 is not valid YAML for a DirectorySync"),
            "{err}"
        );
    }
}
