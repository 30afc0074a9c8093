//! Strict reading of manifests: a field the API does not have is refused (naming the nearest
//! known one), rather than ignored. `kubectl apply` without `--validate=strict` and the API
//! server drop unknown fields silently; for a sync that can remove people from an organization
//! a misspelt `guard` or a `dryRun: true` that does nothing is not acceptable.
//!
//! The DirectorySync's fields come from the CRD's own schema (the one `dirsync crd` prints), so
//! the check follows the API types without a second list. The API types themselves stay lenient:
//! the controller must keep reading objects that a newer CRD wrote.

use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde_json::Value as Schema;
use serde_yaml_ng::Value;

use crate::api::DirectorySync;

/// Longest string accepted anywhere in a DirectorySync's spec (a DN or a URL is far shorter).
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// The fields of `metadata` (ObjectMeta) that an object may carry.
pub const OBJECT_META_FIELDS: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// Top-level fields of a DirectorySync (`status` is the controller's: accepted, not read).
pub const DIRECTORY_SYNC_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
/// Top-level fields of a core/v1 Secret.
pub const SECRET_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "data",
    "stringData",
    "type",
    "immutable",
];
/// Top-level fields of a `kind: List`.
pub const LIST_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "items"];

/// The OpenAPI schema of `spec`, from the generated CRD.
fn spec_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = serde_json::to_value(DirectorySync::crd()).expect("the CRD serialises");
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
    })
}

/// Every problem found in a DirectorySync document: unknown fields (top level, metadata, spec)
/// and over-long strings in the spec. Empty when the document is clean.
pub fn check_directory_sync(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(top) = doc.as_mapping() else { return problems };
    for (key, value) in top {
        match key.as_str() {
            Some("metadata") => check_metadata(value, "DirectorySync", &mut problems),
            Some("spec") => walk(value, spec_schema(), "spec", "DirectorySync", &mut problems),
            _ => {}
        }
    }
    check_fields(doc, DIRECTORY_SYNC_FIELDS, "", "DirectorySync", &mut problems);
    problems
}

/// Unknown top-level or metadata fields of an object whose fields are a fixed list.
pub fn check_object(doc: &Value, fields: &[&str], kind: &str) -> Vec<String> {
    let mut problems = Vec::new();
    check_fields(doc, fields, "", kind, &mut problems);
    if let Some(meta) = doc.get("metadata") {
        check_metadata(meta, kind, &mut problems);
    }
    problems
}

fn check_metadata(meta: &Value, kind: &str, problems: &mut Vec<String>) {
    check_fields(meta, OBJECT_META_FIELDS, "metadata", kind, problems);
}

/// Keys of the mapping `value` (at `path`) that are not in `known`. A value that is not a
/// mapping is left to the type check.
fn check_fields(value: &Value, known: &[&str], path: &str, kind: &str, problems: &mut Vec<String>) {
    let Some(map) = value.as_mapping() else { return };
    for key in map.keys() {
        match key.as_str() {
            Some(name) if known.contains(&name) => {}
            Some(name) => problems.push(unknown_field(path, name, known, kind)),
            None => problems.push(non_string_key(path, key)),
        }
    }
}

/// Walks `value` against an OpenAPI v3 (structural) schema: every mapping key must be a property
/// (of the schema or of one of its `oneOf`/`anyOf`/`allOf` branches) or be admitted by
/// `additionalProperties`; `x-kubernetes-preserve-unknown-fields` admits anything below it.
/// Types are left to the deserializer, which names the path too.
fn walk(value: &Value, schema: &Schema, path: &str, kind: &str, problems: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Schema::Bool(true)) {
        return;
    }
    match value {
        Value::String(s) if s.len() > MAX_STRING_BYTES => problems.push(format!(
            "{path}: the value is {} bytes long; at most {MAX_STRING_BYTES} bytes (64 KiB) are accepted",
            s.len()
        )),
        Value::Sequence(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), kind, problems);
                }
            }
        }
        Value::Mapping(map) => {
            let properties = properties(schema);
            let additional = schema.get("additionalProperties");
            let is_object = schema.get("type").and_then(Schema::as_str) == Some("object");
            if properties.is_empty() && additional.is_none() && !is_object {
                return; // No structure declared: nothing to compare with.
            }
            let names: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
            for (key, child) in map {
                let Some(name) = key.as_str() else {
                    problems.push(non_string_key(path, key));
                    continue;
                };
                let child_path = join(path, name);
                if let Some((_, child_schema)) = properties.iter().find(|(n, _)| *n == name) {
                    walk(child, child_schema, &child_path, kind, problems);
                } else {
                    match additional {
                        Some(Schema::Bool(true)) => {}
                        Some(s @ Schema::Object(_)) => walk(child, s, &child_path, kind, problems),
                        _ => problems.push(unknown_field(path, name, &names, kind)),
                    }
                }
            }
        }
        Value::Tagged(tagged) => walk(&tagged.value, schema, path, kind, problems),
        _ => {}
    }
}

/// The properties a mapping may have under `schema`, its own first, then its branches'.
fn properties(schema: &Schema) -> Vec<(&str, &Schema)> {
    let mut out: Vec<(&str, &Schema)> = Vec::new();
    if let Some(props) = schema.get("properties").and_then(Schema::as_object) {
        out.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        for branch in schema.get(combinator).and_then(Schema::as_array).into_iter().flatten() {
            for (name, s) in properties(branch) {
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, s));
                }
            }
        }
    }
    out
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn non_string_key(path: &str, key: &Value) -> String {
    let key = serde_yaml_ng::to_string(key).unwrap_or_default();
    let at = if path.is_empty() { "the top level" } else { path };
    format!("{at}: the key {:?} is not a string", key.trim_end())
}

/// "spec.sync.gaurd is not a field of DirectorySync; did you mean spec.sync.guard?"
fn unknown_field(path: &str, name: &str, known: &[&str], kind: &str) -> String {
    let full = join(path, name);
    match nearest(name, known) {
        Some(near) => format!("{full} is not a field of {kind}; did you mean {}?", join(path, near)),
        None if known.is_empty() => format!("{full} is not a field of {kind}: {path} has no fields"),
        None => {
            let mut list = known.to_vec();
            list.sort_unstable();
            let at = if path.is_empty() {
                "the top level".to_string()
            } else {
                path.to_string()
            };
            format!(
                "{full} is not a field of {kind}; the fields at {at} are: {}",
                list.join(", ")
            )
        }
    }
}

/// The known name closest to `name` by edit distance (case-insensitive), when it is close enough
/// to be a plausible misspelling: at most 2 edits, or a third of the name for long names.
pub fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let (best, distance) = known
        .iter()
        .map(|k| (*k, levenshtein(&lower, &k.to_lowercase())))
        .min_by_key(|(_, d)| *d)?;
    let allowed = (name.chars().count() / 3).max(2);
    (distance <= allowed).then_some(best)
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        check_directory_sync(&serde_yaml_ng::from_str(yaml).unwrap())
    }

    #[test]
    fn edit_distance() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("guard", "guard"), 0);
        assert_eq!(levenshtein("gaurd", "guard"), 2);
        assert_eq!(levenshtein("pagesize", "pageSize"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("ünï", "uni"), 2);
    }

    #[test]
    fn nearest_is_a_plausible_misspelling_or_nothing() {
        let known = ["bitwarden", "source", "sync", "mode", "suspend"];
        assert_eq!(nearest("sorce", &known), Some("source"));
        assert_eq!(nearest("Suspended", &known), Some("suspend"));
        assert_eq!(nearest("dryRun", &known), None);
    }

    #[test]
    fn unknown_fields_are_named_with_their_path_and_the_nearest_field() {
        let got = problems(
            r#"
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {name: corp, namespce: x}
spce: {}
spec:
  dryRun: true
  bitwarden: {apiKeySecretRef: {name: bw, clientSecretKy: s}}
  source: {ldap: {url: "ldap://h", rootPath: "dc=x", pagesize: 5, users: {filtre: "(a=b)"}}}
  sync: {gaurd: {maxRemovals: 0}}
"#,
        );
        let want = [
            "metadata.namespce is not a field of DirectorySync; did you mean metadata.namespace?",
            "spec.dryRun is not a field of DirectorySync; the fields at spec are: bitwarden, collections, mode, source, suspend, sync",
            "spec.bitwarden.apiKeySecretRef.clientSecretKy is not a field of DirectorySync; did you mean spec.bitwarden.apiKeySecretRef.clientSecretKey?",
            "spec.source.ldap.pagesize is not a field of DirectorySync; did you mean spec.source.ldap.pageSize?",
            "spec.source.ldap.users.filtre is not a field of DirectorySync; did you mean spec.source.ldap.users.filter?",
            "spec.sync.gaurd is not a field of DirectorySync; did you mean spec.sync.guard?",
            "spce is not a field of DirectorySync; did you mean spec?",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_clean_document_with_every_source_has_no_problem() {
        for source in [
            r#"ldap: {url: "ldaps://h", rootPath: "dc=x", tls: {caSecretRef: {name: c, key: k}}, bindSecretRef: {name: b}, groups: {memberAttribute: m}}"#,
            r#"entraId: {tenantId: t, cloud: Global, credentialsSecretRef: {name: e, certificateKey: c}}"#,
            r#"googleWorkspace: {domain: d, adminEmail: a, serviceAccountKeySecretRef: {name: g, key: k}}"#,
            r#"okta: {orgUrl: "https://o", tokenSecretRef: {name: o, key: k}}"#,
            r#"oneLogin: {region: eu, credentialsSecretRef: {name: o}}"#,
        ] {
            let yaml = format!(
                "apiVersion: dirsync.dev/v1alpha1\nkind: DirectorySync\nmetadata: {{name: c, labels: {{a: b}}}}\n\
                 spec: {{mode: DryRun, suspend: false, bitwarden: {{region: EU, apiKeySecretRef: {{name: bw}}}},\n\
                 source: {{{source}}}, sync: {{interval: 1h, guard: {{maxRemovals: 1}}}}}}\n\
                 status: {{anything: [1, 2], fromANewerController: true}}\n"
            );
            assert_eq!(problems(&yaml), Vec::<String>::new(), "{source}");
        }
    }

    #[test]
    fn long_strings_in_the_spec_are_refused_with_their_path() {
        let long = "d".repeat(MAX_STRING_BYTES + 1);
        let yaml = format!("spec: {{source: {{ldap: {{url: x, rootPath: {long}}}}}}}");
        assert_eq!(
            problems(&yaml),
            [format!(
                "spec.source.ldap.rootPath: the value is {} bytes long; at most 65536 bytes (64 KiB) are accepted",
                MAX_STRING_BYTES + 1
            )]
        );
    }

    #[test]
    fn schema_keywords_are_followed() {
        let schema: Schema = serde_json::json!({
            "type": "object",
            "properties": {
                "list": {"type": "array", "items": {"type": "object", "properties": {"a": {}}}},
                "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"b": {}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "open": {"type": "object", "additionalProperties": true},
                "empty": {"type": "object"}
            },
            "oneOf": [{"properties": {"one": {}}}],
            "anyOf": [{"properties": {"any": {}}}],
            "allOf": [{"properties": {"all": {}}}]
        });
        let value: Value = serde_yaml_ng::from_str(
            "{list: [{a: 1}, {x: 1}], map: {k: {b: 1, y: 1}}, free: {z: {z: 1}}, open: {w: 1},\n\
             empty: {e: 1}, one: 1, any: 1, all: 1, 7: x}",
        )
        .unwrap();
        let mut got = Vec::new();
        walk(&value, &schema, "t", "T", &mut got);
        assert_eq!(
            got,
            [
                "t.list[1].x is not a field of T; did you mean t.list[1].a?",
                "t.map.k.y is not a field of T; did you mean t.map.k.b?",
                "t.empty.e is not a field of T: t.empty has no fields",
                "t: the key \"7\" is not a string",
            ]
        );
    }
}
