//! Every example in `examples/` is complete and valid: it loads as `kubectl apply` input, holds
//! exactly one DirectorySync whose spec passes the controller's validation, and carries every
//! Secret and key that spec references (in the DirectorySync's namespace).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dirsync::api::{DirectorySync, Mode, SourceSpec};
use dirsync::cli::manifests::Manifests;
use dirsync::engine::validate;

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// (Secret name, key) pairs the spec references.
fn referenced_keys(ds: &DirectorySync) -> Vec<(String, String)> {
    let spec = &ds.spec;
    let mut refs = Vec::new();
    let bw = &spec.bitwarden.api_key_secret_ref;
    refs.push((bw.name.clone(), bw.client_id_key.clone()));
    refs.push((bw.name.clone(), bw.client_secret_key.clone()));
    if let Some(ca) = &spec.bitwarden.ca_secret_ref {
        refs.push((ca.name.clone(), ca.key.clone()));
    }
    match &spec.source {
        SourceSpec::Ldap(ldap) => {
            if let Some(b) = &ldap.bind_secret_ref {
                refs.push((b.name.clone(), b.username_key.clone()));
                refs.push((b.name.clone(), b.password_key.clone()));
            }
            if let Some(tls) = &ldap.tls {
                if let Some(ca) = &tls.ca_secret_ref {
                    refs.push((ca.name.clone(), ca.key.clone()));
                }
                if let Some(c) = &tls.client_cert_secret_ref {
                    refs.push((c.name.clone(), "tls.crt".into()));
                    refs.push((c.name.clone(), "tls.key".into()));
                }
            }
        }
        SourceSpec::EntraId(e) => {
            // Workload identity references no Secret.
            if let Some(c) = &e.credentials_secret_ref {
                refs.push((c.name.clone(), c.client_id_key.clone()));
                match (&c.certificate_key, &c.private_key_key) {
                    (Some(cert), Some(key)) => {
                        refs.push((c.name.clone(), cert.clone()));
                        refs.push((c.name.clone(), key.clone()));
                    }
                    _ => refs.push((c.name.clone(), c.client_secret_key.clone())),
                }
            }
        }
        SourceSpec::GoogleWorkspace(g) => {
            let r = &g.service_account_key_secret_ref;
            refs.push((r.name.clone(), r.key.clone()));
        }
        SourceSpec::Okta(o) => {
            if let Some(t) = &o.token_secret_ref {
                refs.push((t.name.clone(), t.key.clone()));
            }
            if let Some(app) = &o.oauth {
                let k = &app.private_key_secret_ref;
                refs.push((k.name.clone(), k.key.clone()));
            }
        }
        SourceSpec::OneLogin(o) => {
            let c = &o.credentials_secret_ref;
            refs.push((c.name.clone(), c.client_id_key.clone()));
            refs.push((c.name.clone(), c.client_secret_key.clone()));
        }
    }
    refs
}

#[test]
fn every_example_is_a_valid_complete_directorysync() {
    let files = examples();
    assert!(files.len() >= 8, "examples/ lost files: {files:?}");
    let mut sources = BTreeMap::new();
    for file in &files {
        let m = Manifests::load(std::slice::from_ref(file)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(m.syncs.len(), 1, "{}: one DirectorySync per example", file.display());
        let ds = &m.syncs[0];
        if let Err(errors) = validate(&ds.spec) {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("{} is not a valid spec:\n{}", file.display(), list.join("\n"));
        }
        let ns = ds.metadata.namespace.as_deref().unwrap_or("default");
        let mut present = BTreeSet::new();
        for secret in &m.secrets {
            assert_eq!(
                secret.metadata.namespace.as_deref().unwrap_or(ns),
                ns,
                "{}: Secrets live in the DirectorySync's namespace",
                file.display()
            );
            let name = secret.metadata.name.clone().unwrap_or_default();
            for key in secret.string_data.iter().flat_map(|d| d.keys()) {
                present.insert((name.clone(), key.clone()));
            }
            for key in secret.data.iter().flat_map(|d| d.keys()) {
                present.insert((name.clone(), key.clone()));
            }
        }
        for r in referenced_keys(ds) {
            assert!(
                present.contains(&r),
                "{}: the spec references Secret {:?} key {:?}, which the example does not define",
                file.display(),
                r.0,
                r.1
            );
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        sources.insert(name, ds.spec.clone());
    }

    // One example per source, plus the dry run and the self-hosted server.
    let names: Vec<&str> = sources.keys().map(String::as_str).collect();
    for wanted in [
        "active-directory.yaml",
        "dry-run.yaml",
        "entra-id.yaml",
        "google-workspace.yaml",
        "okta.yaml",
        "onelogin.yaml",
        "openldap.yaml",
        "self-hosted.yaml",
    ] {
        assert!(names.contains(&wanted), "examples/{wanted} is missing");
    }
    let ldap = |f: &str| match &sources[f].source {
        SourceSpec::Ldap(l) => l.clone(),
        other => panic!("{f}: an LDAP source, not {other:?}"),
    };
    assert!(ldap("active-directory.yaml").active_directory);
    assert!(!ldap("openldap.yaml").active_directory);
    let provider = |f: &str| dirsync::source::provider(&sources[f].source).name();
    assert_eq!(provider("entra-id.yaml"), "entraId");
    assert_eq!(provider("google-workspace.yaml"), "googleWorkspace");
    assert_eq!(provider("okta.yaml"), "okta");
    assert_eq!(provider("onelogin.yaml"), "oneLogin");
    assert_eq!(sources["dry-run.yaml"].mode, Mode::DryRun);
    assert!(sources["self-hosted.yaml"].bitwarden.server_url.is_some());
    assert!(sources["self-hosted.yaml"].bitwarden.region.is_none());
}
