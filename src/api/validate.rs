//! Validation of the resource's own fields (`spec.bitwarden`, `spec.sync`): the rules the CRD
//! schema states (so they also hold where the apiserver does not enforce them, and for the CLI)
//! plus what a schema cannot say. Each provider checks its `spec.source` settings itself
//! (`src/source/`); the engine runs both and reports every problem at once.

use std::time::Duration;

use super::checks::{self, FieldErrors, normalize_url, parse_duration};
use super::*;

/// The shortest sync interval (as Directory Connector).
pub const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Checks `spec.bitwarden` and `spec.sync`, adding every problem to `e`.
pub fn validate(spec: &DirectorySyncSpec, e: &mut FieldErrors) {
    validate_bitwarden(e, &spec.bitwarden);
    validate_sync(e, &spec.sync);
    validate_collections(e, spec);
}

/// Bitwarden's limit on external ids.
const MAX_EXTERNAL_ID: usize = 300;

fn validate_collections(e: &mut FieldErrors, spec: &DirectorySyncSpec) {
    if !spec.collections.is_empty() && !spec.sync.groups {
        e.add(
            "spec.collections",
            "gives access to synced groups, so it needs spec.sync.groups: true",
        );
    }
    let mut ids = std::collections::HashMap::new();
    let mut external_ids = std::collections::HashMap::new();
    for (i, c) in spec.collections.iter().enumerate() {
        let path = format!("spec.collections[{i}]");
        match (&c.id, &c.external_id) {
            (Some(_), Some(_)) | (None, None) => e.add(
                &path,
                "set exactly one of id (the collection's id, from the web vault's address) or externalId",
            ),
            (Some(id), None) => {
                if !checks::is_uuid(id.trim()) {
                    e.add(
                        &format!("{path}.id"),
                        format!(
                            "{id:?} is not a collection id: use the UUID the web vault shows in the address                              (collectionId=...) while the collection is open"
                        ),
                    );
                } else if let Some(first) = ids.insert(id.trim().to_ascii_lowercase(), i) {
                    e.add(
                        &format!("{path}.id"),
                        format!("the same collection as spec.collections[{first}]: list each collection once"),
                    );
                }
            }
            (None, Some(ext)) => {
                if ext.trim().is_empty() || ext.chars().count() > MAX_EXTERNAL_ID {
                    e.add(
                        &format!("{path}.externalId"),
                        "must be 1 to 300 characters, as Bitwarden's external ids",
                    );
                } else if let Some(first) = external_ids.insert(ext.as_str(), i) {
                    e.add(
                        &format!("{path}.externalId"),
                        format!("the same collection as spec.collections[{first}]: list each collection once"),
                    );
                }
            }
        }
        if c.groups.is_empty() {
            e.add(
                &format!("{path}.groups"),
                "list at least one synced group (to remove the access this DirectorySync gave, remove the entry)",
            );
        }
        for (j, name) in c.groups.iter().enumerate() {
            e.non_empty(&format!("{path}.groups[{j}]"), name);
        }
        if c.manage && (c.read_only || c.hide_passwords) {
            e.add(
                &format!("{path}.manage"),
                "manage excludes readOnly and hidePasswords (Bitwarden refuses the combination): set only one",
            );
        }
    }
}

fn validate_bitwarden(e: &mut FieldErrors, bw: &BitwardenSpec) {
    if bw.server_url.is_some() && bw.region.is_some() {
        e.add(
            "spec.bitwarden.region",
            "set either region (Bitwarden cloud) or serverUrl (self-hosted), not both",
        );
    }
    if let Some(base) = &bw.server_url {
        // Checked as the client will use it: a URL without a scheme gets https://.
        e.url("spec.bitwarden.serverUrl", &normalize_url(base), &["https"], &["http"]);
    }
    e.optional_https_url("spec.bitwarden.apiUrl", &bw.api_url);
    e.optional_https_url("spec.bitwarden.identityUrl", &bw.identity_url);
    e.non_empty("spec.bitwarden.apiKeySecretRef.name", &bw.api_key_secret_ref.name);
    e.non_empty(
        "spec.bitwarden.apiKeySecretRef.clientIdKey",
        &bw.api_key_secret_ref.client_id_key,
    );
    e.non_empty(
        "spec.bitwarden.apiKeySecretRef.clientSecretKey",
        &bw.api_key_secret_ref.client_secret_key,
    );
    if let Some(ca) = &bw.ca_secret_ref {
        secret_key_ref(e, "spec.bitwarden.caSecretRef", ca);
    }
    if let Some(d) = e.optional_duration("spec.bitwarden.timeout", &bw.timeout)
        && d > Duration::from_secs(30 * 60)
    {
        e.add("spec.bitwarden.timeout", "must be at most 30m");
    }
}

/// A `{name, key}` reference names both.
pub fn secret_key_ref(e: &mut FieldErrors, path: &str, r: &SecretKeyRef) {
    e.non_empty(&format!("{path}.name"), &r.name);
    e.non_empty(&format!("{path}.key"), &r.key);
}

fn validate_sync(e: &mut FieldErrors, sync: &SyncOptions) {
    match parse_duration(&sync.interval) {
        Ok(d) if d < MIN_INTERVAL => e.add("spec.sync.interval", "must be at least 5m (as Directory Connector)"),
        Ok(_) => {}
        Err(m) => e.add("spec.sync.interval", m),
    }
    if !sync.users && !sync.groups {
        e.add("spec.sync", "users and groups are both off: nothing would be synced");
    }
    e.optional_duration("spec.sync.removalGracePeriod", &sync.removal_grace_period);
    if sync.guard.max_removal_percent > 100 {
        e.add("spec.sync.guard.maxRemovalPercent", "must be between 0 and 100");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DirectorySyncSpec {
        serde_yaml_ng::from_str(
            r#"
bitwarden:
  apiKeySecretRef: {name: bw}
source:
  ldap:
    url: ldaps://dc1.corp.example:636
    rootPath: dc=corp,dc=example
"#,
        )
        .unwrap()
    }

    fn paths(spec: &DirectorySyncSpec) -> Vec<String> {
        let mut e = FieldErrors::default();
        validate(spec, &mut e);
        e.into_vec().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn a_minimal_spec_is_valid_and_gets_defaults() {
        let spec = spec();
        assert!(paths(&spec).is_empty());
        assert_eq!(spec.sync.interval, "1h");
        assert!(spec.sync.users && spec.sync.groups && spec.sync.invite_users);
        assert_eq!(
            spec.sync.guard,
            GuardSpec {
                max_removals: 10,
                max_removal_percent: 5
            }
        );
        assert_eq!(spec.mode, Mode::Apply);
    }

    #[test]
    fn the_bitwarden_timeout_is_a_duration_up_to_30m() {
        for (value, ok) in [
            ("90s", true),
            ("30m", true),
            ("0s", false),
            ("31m", false),
            ("soon", false),
        ] {
            let mut spec = spec();
            spec.bitwarden.timeout = Some(value.into());
            let expected: Vec<String> = if ok {
                vec![]
            } else {
                vec!["spec.bitwarden.timeout".into()]
            };
            assert_eq!(paths(&spec), expected, "{value}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let mut spec = spec();
        spec.sync.interval = "2m".into();
        spec.sync.guard.max_removal_percent = 101;
        spec.bitwarden.api_url = Some("http://bitwarden.example".into());
        assert_eq!(
            paths(&spec),
            vec![
                "spec.bitwarden.apiUrl",
                "spec.sync.interval",
                "spec.sync.guard.maxRemovalPercent"
            ]
        );
    }

    #[test]
    fn urls_must_be_https_unless_loopback() {
        let mut spec = spec();
        for (url, ok) in [
            ("https://vault.example.com", true),
            ("vault.example.com", true),
            ("http://127.0.0.1:8080", true),
            ("http://[::1]:8080", true),
            ("http://localhost", true),
            ("http://vault.example.com", false),
            ("http://10.0.0.1", false),
            ("ftp://vault.example.com", false),
        ] {
            spec.bitwarden.server_url = Some(url.into());
            assert_eq!(paths(&spec).is_empty(), ok, "{url}");
        }
    }

    #[test]
    fn region_and_server_url_exclude_each_other() {
        let mut spec = spec();
        spec.bitwarden.region = Some(Region::EU);
        spec.bitwarden.server_url = Some("https://vault.example.com".into());
        assert_eq!(paths(&spec), vec!["spec.bitwarden.region"]);
    }

    #[test]
    fn collection_entries_name_one_collection_once_with_groups_and_compatible_flags() {
        let id = "9f2c1e4a-0b1c-4d2e-8f30-1a2b3c4d5e6f";
        let entry = |yaml: &str| -> CollectionAccess { serde_yaml_ng::from_str(yaml).unwrap() };
        let mut spec = spec();
        spec.collections = vec![entry(&format!("{{id: {id}, groups: [Engineering], readOnly: true}}"))];
        assert!(paths(&spec).is_empty());
        assert!(spec.collections[0].read_only && !spec.collections[0].manage);

        spec.collections = vec![
            entry(&format!("{{id: {id}, externalId: x, groups: [A]}}")),
            entry("{groups: [A]}"),
            entry("{id: not-a-uuid, groups: [A]}"),
            entry(&format!("{{id: {}, groups: [A]}}", id.to_uppercase())),
            entry(&format!("{{id: {id}, groups: [A]}}")),
            entry("{externalId: sales, groups: []}"),
            entry("{externalId: sales, groups: [A, ' ']}"),
            entry("{externalId: ops, groups: [A], manage: true, hidePasswords: true}"),
        ];
        assert_eq!(
            paths(&spec),
            vec![
                "spec.collections[0]",
                "spec.collections[1]",
                "spec.collections[2].id",
                "spec.collections[4].id",
                "spec.collections[5].groups",
                "spec.collections[6].externalId",
                "spec.collections[6].groups[1]",
                "spec.collections[7].manage",
            ]
        );

        // Access goes to synced groups: without groups there is nothing to give it to.
        let mut spec = spec_with_groups_off();
        spec.collections = vec![entry("{externalId: sales, groups: [A]}")];
        assert_eq!(paths(&spec), vec!["spec.collections"]);
    }

    fn spec_with_groups_off() -> DirectorySyncSpec {
        let mut s = spec();
        s.sync.groups = false;
        s
    }

    #[test]
    fn nothing_to_sync_is_invalid() {
        let mut spec = spec();
        spec.sync.users = false;
        spec.sync.groups = false;
        assert_eq!(paths(&spec), vec!["spec.sync"]);
    }
}
