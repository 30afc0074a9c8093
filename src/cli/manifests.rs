//! The YAML a user would `kubectl apply`: DirectorySyncs and the Secrets they reference, in one
//! or more files, several documents per file (`---`), or `kind: List`.
//!
//! Read strictly: what the API server would refuse, and what it would silently drop (unknown
//! fields), is refused here with the file, the document and the field path, before anything is
//! read from a directory or sent to Bitwarden.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::limits::{self, MAX_DEPTH, MAX_DOCUMENTS};
use super::strict;
use crate::Error;
use crate::api::{DirectorySync, Reason};
use crate::secrets::{SecretStore, SecretValue, value_in};

/// The one API version of DirectorySync this build reads.
pub const API_VERSION: &str = "dirsync.dev/v1alpha1";
/// The most data a Secret may hold (as in Kubernetes).
const MAX_SECRET_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Read(#[from] limits::ReadError),
    #[error(
        "{file}: collections nest deeper than {MAX_DEPTH} levels (line {line}, column {column}); \
         a DirectorySync needs fewer than 10"
    )]
    TooDeep { file: String, line: usize, column: usize },
    #[error("{file} holds more than {MAX_DOCUMENTS} YAML documents, the most a manifest file may hold")]
    TooManyDocuments { file: String },
    /// One document (or `kind: List` item) is wrong; every problem found in it is listed.
    #[error("{at}: {}", .problems.join("; "))]
    Invalid { at: String, problems: Vec<String> },
    #[error("no DirectorySync (apiVersion {API_VERSION}) found in {0}")]
    NoDirectorySync(String),
    #[error("{count} DirectorySyncs found ({names}): choose one with --name NAME or --name NAMESPACE/NAME")]
    Ambiguous { count: usize, names: String },
    #[error("{count} DirectorySyncs are named {name:?} ({names}): choose one with --name NAMESPACE/NAME")]
    AmbiguousName { name: String, count: usize, names: String },
    #[error("no DirectorySync named {name:?} in the files (found: {names})")]
    NotFound { name: String, names: String },
    #[error("{what} is defined twice, in {first} and in {second}: keep one")]
    Duplicate {
        what: String,
        first: String,
        second: String,
    },
}

impl ManifestError {
    /// Every manifest problem is the user's input to fix.
    pub fn reason(&self) -> Reason {
        Reason::InvalidSpec
    }
}

/// Where an object was read: file, document (from 1), and item of a `kind: List` (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub document: usize,
    pub item: Vec<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)?;
        for item in &self.item {
            write!(f, " item {item}")?;
        }
        Ok(())
    }
}

impl Origin {
    fn item(&self, index: usize) -> Origin {
        let mut o = self.clone();
        o.item.push(index + 1);
        o
    }

    fn invalid(&self, problem: impl Into<String>) -> ManifestError {
        ManifestError::Invalid {
            at: self.to_string(),
            problems: vec![problem.into()],
        }
    }
}

#[derive(Default)]
pub struct Manifests {
    pub syncs: Vec<DirectorySync>,
    pub secrets: Vec<Secret>,
    sync_origins: Vec<Origin>,
    secret_origins: Vec<Origin>,
}

/// `namespace/name` of an object (`default` when it names no namespace).
fn qualified(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, default_ns: &str) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(default_ns),
        meta.name.as_deref().unwrap_or_default()
    )
}

impl Manifests {
    pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestError> {
        let mut m = Manifests::default();
        for path in paths {
            let text = limits::read_file(path)?;
            m.add_text(path, &text)?;
        }
        Ok(m)
    }

    pub fn add_text(&mut self, path: &Path, text: &str) -> Result<(), ManifestError> {
        let file = path.display().to_string();
        if limits::too_many_documents(text) {
            return Err(ManifestError::TooManyDocuments { file });
        }
        if let Some((line, column)) = limits::flow_too_deep(text) {
            return Err(ManifestError::TooDeep { file, line, column });
        }
        for (index, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let origin = Origin {
                file: file.clone(),
                document: index + 1,
                item: Vec::new(),
            };
            let mut value = Value::deserialize(doc).map_err(|e| {
                let message = e.to_string();
                if message.starts_with("recursion limit exceeded") {
                    origin.invalid(format!("collections nest deeper than {MAX_DEPTH} levels ({message})"))
                } else {
                    origin.invalid(format!("not valid YAML: {message}"))
                }
            })?;
            if limits::depth(&value) > MAX_DEPTH {
                return Err(origin.invalid(format!("collections nest deeper than {MAX_DEPTH} levels")));
            }
            // `<<: *anchor` merge keys, as kubectl reads them.
            value
                .apply_merge()
                .map_err(|e| origin.invalid(format!("not valid YAML: {e}")))?;
            self.add_value(value, &origin)?;
        }
        Ok(())
    }

    fn add_value(&mut self, value: Value, origin: &Origin) -> Result<(), ManifestError> {
        if value.is_null() {
            return Ok(()); // An empty document (`---` at the end of a file).
        }
        if !value.is_mapping() {
            return Err(origin.invalid(format!(
                "the document is not a Kubernetes object (a mapping with apiVersion and kind) but {}",
                describe(&value)
            )));
        }
        let text = |field: &str| -> Result<String, ManifestError> {
            match value.get(field) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                None | Some(Value::Null) => Err(origin.invalid(format!(
                    "{field} is missing: a Kubernetes object needs apiVersion and kind"
                ))),
                Some(other) => Err(origin.invalid(format!("{field} must be a string, not {}", describe(other)))),
            }
        };
        let (api_version, kind) = (text("apiVersion")?, text("kind")?);
        let in_our_group = api_version.split('/').next() == Some(crate::api::GROUP);
        match kind.as_str() {
            "DirectorySync" if api_version == API_VERSION => self.add_directory_sync(&value, origin),
            "DirectorySync" => Err(origin.invalid(format!(
                "apiVersion {api_version} is not supported for DirectorySync: this dirsync reads {API_VERSION}"
            ))),
            _ if in_our_group => Err(origin.invalid(format!(
                "kind {kind} is not a kind of {}: the only one is DirectorySync",
                crate::api::GROUP
            ))),
            "Secret" if api_version == "v1" => self.add_secret(&value, origin),
            "List" if api_version == "v1" => {
                let problems = strict::check_object(&value, strict::LIST_FIELDS, "List");
                if !problems.is_empty() {
                    return Err(ManifestError::Invalid {
                        at: origin.to_string(),
                        problems,
                    });
                }
                match value.get("items") {
                    None | Some(Value::Null) => Ok(()),
                    Some(Value::Sequence(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            self.add_value(item.clone(), &origin.item(i))?;
                        }
                        Ok(())
                    }
                    Some(other) => Err(origin.invalid(format!("items must be a list, not {}", describe(other)))),
                }
            }
            "Secret" | "List" => Err(origin.invalid(format!(
                "apiVersion {api_version} is not supported for {kind}: use apiVersion v1"
            ))),
            _ if api_version == "v1"
                && let Some(near) = strict::nearest(&kind, &["Secret", "List"]) =>
            {
                Err(origin.invalid(format!("kind {kind} is not a Kubernetes kind; did you mean {near}?")))
            }
            // Anything else (Namespaces, ConfigMaps, ...) is not ours to read.
            _ => Ok(()),
        }
    }

    fn add_directory_sync(&mut self, value: &Value, origin: &Origin) -> Result<(), ManifestError> {
        let problems = strict::check_directory_sync(value);
        if !problems.is_empty() {
            return Err(ManifestError::Invalid {
                at: origin.to_string(),
                problems,
            });
        }
        // The status is the controller's record: not read here, whatever it holds.
        let mut value = value.clone();
        if let Some(map) = value.as_mapping_mut() {
            map.remove("status");
        }
        let ds: DirectorySync = typed(value, origin)?;
        if ds.metadata.name.as_deref().unwrap_or_default().is_empty() {
            return Err(origin.invalid("metadata.name is missing: every DirectorySync needs a name"));
        }
        self.syncs.push(ds);
        self.sync_origins.push(origin.clone());
        Ok(())
    }

    fn add_secret(&mut self, value: &Value, origin: &Origin) -> Result<(), ManifestError> {
        let problems = strict::check_object(value, strict::SECRET_FIELDS, "Secret");
        if !problems.is_empty() {
            return Err(ManifestError::Invalid {
                at: origin.to_string(),
                problems,
            });
        }
        // `data` and `stringData` are read below, to say which key is wrong without ever printing
        // a value (serde's messages quote the value they refuse).
        let mut rest = value.clone();
        let map = rest.as_mapping_mut().expect("checked: a mapping");
        let (data, string_data) = (map.remove("data"), map.remove("stringData"));
        let mut secret: Secret = typed(rest, origin)?;
        let name = secret.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(origin.invalid("metadata.name is missing: every Secret needs a name"));
        }
        let data = string_map(data, "data", &name, origin)?;
        secret.data = match data {
            None => None,
            Some(map) => {
                let mut decoded = BTreeMap::new();
                for (key, text) in map {
                    // As Go's decoder under the API server: line breaks inside the text are ignored.
                    let compact: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
                    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| {
                        origin.invalid(format!(
                            "data.{key}: the value of Secret {name:?} key {key:?} is not base64: values under \
                                 data: must be base64-encoded (put plain text under stringData: instead)"
                        ))
                    })?;
                    decoded.insert(key, ByteString(bytes));
                }
                Some(decoded)
            }
        };
        secret.string_data = string_map(string_data, "stringData", &name, origin)?;
        let keys = secret.data.iter().flat_map(|d| d.keys());
        let keys = keys.chain(secret.string_data.iter().flat_map(|d| d.keys()));
        let mut problems = Vec::new();
        for key in keys {
            let valid = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                problems.push(format!(
                    "Secret {name:?} key {key:?} is not a valid key: use letters, digits, '-', '_' and '.' \
                     (at most 253)"
                ));
            }
        }
        let size: usize = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.0.len())
            .sum::<usize>()
            + secret
                .string_data
                .iter()
                .flatten()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        if size > MAX_SECRET_BYTES {
            problems.push(format!(
                "Secret {name:?} holds {size} bytes; a Secret holds at most {MAX_SECRET_BYTES} (1 MiB)"
            ));
        }
        if !problems.is_empty() {
            return Err(ManifestError::Invalid {
                at: origin.to_string(),
                problems,
            });
        }
        self.secrets.push(secret);
        self.secret_origins.push(origin.clone());
        Ok(())
    }

    /// The one DirectorySync to run: by `--name NAME` or `--name NAMESPACE/NAME` when the files
    /// hold several (a DirectorySync without a namespace is in `default`).
    pub fn select(&self, name: Option<&str>, files: &[PathBuf]) -> Result<DirectorySync, ManifestError> {
        let ids: Vec<String> = self.syncs.iter().map(|s| qualified(&s.metadata, "default")).collect();
        for (i, id) in ids.iter().enumerate() {
            if let Some(j) = ids[..i].iter().position(|other| other == id) {
                return Err(ManifestError::Duplicate {
                    what: format!("DirectorySync {id}"),
                    first: self.sync_origins[j].to_string(),
                    second: self.sync_origins[i].to_string(),
                });
            }
        }
        let matching: Vec<usize> = match name {
            Some(n) if n.contains('/') => (0..ids.len()).filter(|i| ids[*i] == n).collect(),
            Some(n) => (0..ids.len())
                .filter(|i| self.syncs[*i].metadata.name.as_deref() == Some(n))
                .collect(),
            None => (0..ids.len()).collect(),
        };
        let names = |list: &[usize]| list.iter().map(|i| ids[*i].as_str()).collect::<Vec<_>>().join(", ");
        match (name, matching.as_slice()) {
            (_, [one]) => Ok(self.syncs[*one].clone()),
            (None, []) => Err(ManifestError::NoDirectorySync(
                files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
            (None, many) => Err(ManifestError::Ambiguous {
                count: many.len(),
                names: names(many),
            }),
            (Some(n), []) => Err(ManifestError::NotFound {
                name: n.to_string(),
                names: names(&(0..ids.len()).collect::<Vec<_>>()),
            }),
            (Some(n), many) => Err(ManifestError::AmbiguousName {
                name: n.to_string(),
                count: many.len(),
                names: names(many),
            }),
        }
    }

    /// The Secrets of one namespace (documents without a namespace count as that namespace).
    /// The same Secret twice is refused: the API server would keep only the last one applied.
    pub fn secret_store(&self, namespace: &str) -> Result<FileSecrets, ManifestError> {
        let mut secrets: HashMap<String, BTreeMap<String, Vec<u8>>> = HashMap::new();
        let mut seen: HashMap<&str, &Origin> = HashMap::new();
        for (s, origin) in self.secrets.iter().zip(&self.secret_origins) {
            if s.metadata.namespace.as_deref().unwrap_or(namespace) != namespace {
                continue;
            }
            let name = s.metadata.name.as_deref().unwrap_or_default();
            if let Some(first) = seen.insert(name, origin) {
                return Err(ManifestError::Duplicate {
                    what: format!("Secret {namespace}/{name}"),
                    first: first.to_string(),
                    second: origin.to_string(),
                });
            }
            let entry = secrets.entry(name.to_string()).or_default();
            for (k, v) in s.data.iter().flatten() {
                entry.insert(k.clone(), v.0.clone());
            }
            // As the API server does, stringData wins over data.
            for (k, v) in s.string_data.iter().flatten() {
                entry.insert(k.clone(), v.clone().into_bytes());
            }
        }
        Ok(FileSecrets {
            namespace: namespace.to_string(),
            secrets,
        })
    }
}

/// A Secret's `data` or `stringData`: a mapping of string keys to string values.
fn string_map(
    value: Option<Value>,
    field: &str,
    name: &str,
    origin: &Origin,
) -> Result<Option<BTreeMap<String, String>>, ManifestError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Mapping(map)) => map,
        Some(other) => {
            return Err(origin.invalid(format!(
                "{field} of Secret {name:?} must be a mapping of keys to values, not {}",
                describe(&other)
            )));
        }
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            return Err(origin.invalid(format!("{field} of Secret {name:?}: every key must be a string")));
        };
        match value {
            Value::String(text) => {
                out.insert(key.to_string(), text);
            }
            other => {
                return Err(origin.invalid(format!(
                    "{field}.{key}: the value of Secret {name:?} key {key:?} must be a string, not {}: quote it",
                    describe(&other)
                )));
            }
        }
    }
    Ok(Some(out))
}

/// Deserializes an object, naming the field path of a type error
/// (`spec.source.ldap.pageSize: invalid value: integer -1, expected u32`).
fn typed<T: DeserializeOwned>(value: Value, origin: &Origin) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let problem = if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        };
        origin.invalid(problem)
    })
}

/// What a YAML value is, for messages (never its content: it may be a secret).
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
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

    fn error(text: &str) -> String {
        let mut m = Manifests::default();
        match m.add_text(Path::new("f.yaml"), text) {
            Ok(()) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    const DS: &str = "apiVersion: dirsync.dev/v1alpha1\nkind: DirectorySync\nmetadata: {name: corp}\n";

    #[tokio::test]
    async fn secrets_come_from_data_and_string_data_of_the_same_namespace() {
        let m = load();
        let ds = m.select(None, &[]).unwrap();
        assert_eq!(ds.metadata.name.as_deref(), Some("corp"));
        let store = m.secret_store("identity").unwrap();
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
        let origin = m.sync_origins[0].clone();
        let mut add = |name: &str, ns: &str| {
            let mut ds = m.syncs[0].clone();
            ds.metadata.name = Some(name.into());
            ds.metadata.namespace = Some(ns.into());
            m.syncs.push(ds);
            m.sync_origins.push(origin.clone());
        };
        add("second", "identity");
        add("corp", "other");
        assert_eq!(
            m.select(None, &[]).unwrap_err().to_string(),
            "3 DirectorySyncs found (identity/corp, identity/second, other/corp): choose one with --name NAME \
             or --name NAMESPACE/NAME"
        );
        let pick = |name: &str| m.select(Some(name), &[]).map(|ds| qualified(&ds.metadata, "default"));
        assert_eq!(pick("second").unwrap(), "identity/second");
        assert_eq!(pick("other/corp").unwrap(), "other/corp");
        assert_eq!(pick("identity/corp").unwrap(), "identity/corp");
        assert_eq!(
            pick("corp").unwrap_err().to_string(),
            "2 DirectorySyncs are named \"corp\" (identity/corp, other/corp): choose one with --name NAMESPACE/NAME"
        );
        assert!(matches!(pick("x"), Err(ManifestError::NotFound { .. })));
        assert!(matches!(pick("default/corp"), Err(ManifestError::NotFound { .. })));
    }

    #[test]
    fn the_same_object_twice_is_refused_naming_both_places() {
        let mut m = load();
        m.add_text(
            Path::new("g.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: bw}\nstringData: {client_id: other}\n",
        )
        .unwrap();
        // g.yaml's Secret has no namespace: it lands in the DirectorySync's, like f.yaml's.
        assert_eq!(
            m.secret_store("identity").err().unwrap().to_string(),
            "Secret identity/bw is defined twice, in f.yaml: document 1 and in g.yaml: document 1: keep one"
        );
        assert!(m.secret_store("elsewhere").is_ok());
        m.add_text(Path::new("h.yaml"), FILE.split("---").nth(2).unwrap())
            .unwrap();
        assert_eq!(
            m.select(None, &[]).unwrap_err().to_string(),
            "DirectorySync identity/corp is defined twice, in f.yaml: document 3 item 1 and in h.yaml: document 1 \
             item 1: keep one"
        );
    }

    #[test]
    fn merge_keys_are_applied_before_the_fields_are_checked() {
        let mut m = Manifests::default();
        m.add_text(
            Path::new("f.yaml"),
            "apiVersion: dirsync.dev/v1alpha1\nkind: DirectorySync\nmetadata: {name: corp}\nspec:\n  \
             bitwarden: {apiKeySecretRef: {name: bw}}\n  source:\n    ldap:\n      \
             <<: &ldap {url: \"ldap://h\", rootPath: \"dc=x\"}\n      pageSize: 5\n",
        )
        .unwrap();
        let crate::api::SourceSpec::Ldap(ldap) = m.syncs[0].spec.source.clone() else {
            panic!("an LDAP source");
        };
        assert_eq!(
            (ldap.url.as_str(), ldap.root_path.as_str(), ldap.page_size),
            ("ldap://h", "dc=x", 5)
        );
    }

    #[test]
    fn the_status_is_not_read() {
        // As `kubectl get -o yaml` prints it, possibly from a newer controller.
        let mut m = Manifests::default();
        let text = FILE.replace(
            "    source: {ldap: {url: \"ldap://127.0.0.1:389\", rootPath: \"dc=x\"}}\n",
            "    source: {ldap: {url: \"ldap://127.0.0.1:389\", rootPath: \"dc=x\"}}\n  \
             status: {conditions: not-a-list, fieldOfANewerController: 1}\n",
        );
        assert_ne!(text, FILE);
        m.add_text(Path::new("f.yaml"), &text).unwrap();
        assert_eq!(m.syncs[0].status, None);
    }

    #[test]
    fn type_errors_name_the_field_path() {
        for (spec, want) in [
            (
                "{bitwarden: {apiKeySecretRef: {name: bw}}, source: {ldap: {url: u, rootPath: r, pageSize: -1}}}",
                "f.yaml: document 1: spec.source.ldap.pageSize: invalid value: integer `-1`, expected u32",
            ),
            (
                "{bitwarden: {apiKeySecretRef: {name: bw}}, source: {ldap: {url: 389, rootPath: r}}}",
                "f.yaml: document 1: spec.source.ldap.url: invalid type: integer `389`, expected a string",
            ),
            (
                "{bitwarden: {apiKeySecretRef: {name: bw}}, source: {ldap: {url: u, rootPath: r}}, suspend: \"yes\"}",
                "f.yaml: document 1: spec.suspend: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "{bitwarden: {apiKeySecretRef: {name: bw}}, source: {ldap: {url: u}}}",
                "f.yaml: document 1: spec.source.ldap: missing field `rootPath`",
            ),
        ] {
            assert_eq!(error(&format!("{DS}spec: {spec}\n")), want);
        }
    }

    #[test]
    fn documents_that_are_not_objects_or_not_ours_are_refused() {
        for (text, want) in [
            (
                "just text\n",
                "f.yaml: document 1: the document is not a Kubernetes object (a mapping with apiVersion and kind) but a string",
            ),
            (
                "kind: DirectorySync\n",
                "f.yaml: document 1: apiVersion is missing: a Kubernetes object needs apiVersion and kind",
            ),
            (
                "apiVersion: dirsync.dev/v9\nkind: DirectorySync\n",
                "f.yaml: document 1: apiVersion dirsync.dev/v9 is not supported for DirectorySync: this dirsync reads dirsync.dev/v1alpha1",
            ),
            (
                "apiVersion: dirsync.dev/v1alpha1\nkind: DirectorySyncs\n",
                "f.yaml: document 1: kind DirectorySyncs is not a kind of dirsync.dev: the only one is DirectorySync",
            ),
            (
                "apiVersion: v1\nkind: Secert\n",
                "f.yaml: document 1: kind Secert is not a Kubernetes kind; did you mean Secret?",
            ),
            (
                "---\n---\n[1]\n",
                "f.yaml: document 2: the document is not a Kubernetes object (a mapping with apiVersion and kind) but a list",
            ),
        ] {
            assert_eq!(error(text), want);
        }
    }

    #[test]
    fn secret_data_must_be_base64_and_is_never_printed() {
        let err = error("apiVersion: v1\nkind: Secret\nmetadata: {name: bw}\ndata: {client_secret: '!s3cr3t'}\n");
        assert_eq!(
            err,
            "f.yaml: document 1: data.client_secret: the value of Secret \"bw\" key \"client_secret\" is not base64: \
             values under data: must be base64-encoded (put plain text under stringData: instead)"
        );
        let err = error("apiVersion: v1\nkind: Secret\nmetadata: {name: bw}\nstringData: {password: 12345}\n");
        assert!(!err.contains("12345"), "{err}");
        assert_eq!(
            err,
            "f.yaml: document 1: stringData.password: the value of Secret \"bw\" key \"password\" must be a string, \
             not a number: quote it"
        );
    }
}
