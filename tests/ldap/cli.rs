//! The `dirsync` binary as a user runs it: `dirsync test` and `dirsync sync` on manifest files,
//! against a real slapd holding the demo company and the Bitwarden double. Checks the `bwdc test`
//! JSON, the state file, exit codes, and that no secret reaches the output or the logs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::bitwarden::{BitwardenDouble, Collection, Endpoint};
use crate::support::cli::{args, dirsync};
use crate::support::slapd::{BASE, ROOT_DN, ROOT_PW, Slapd};
use serde_json::{Value, json};

/// The demo company (`examples/demo/company.ldif`) under the harness's base DN.
fn demo_ldif() -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/company.ldif")).unwrap();
    let text = text.replace("dc=corp,dc=example", BASE);
    // The harness creates the base entry itself: drop the demo's.
    let entries: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.contains(&format!("dn: {BASE}\n")))
        .collect();
    entries.join("\n\n")
}

struct Setup {
    slapd: Slapd,
    double: BitwardenDouble,
    dir: tempfile::TempDir,
    files: AtomicUsize,
}

impl Setup {
    async fn new() -> Setup {
        Setup {
            slapd: Slapd::start(&demo_ldif()),
            double: BitwardenDouble::start().await,
            dir: tempfile::tempdir().unwrap(),
            files: AtomicUsize::new(0),
        }
    }

    /// Writes the manifests a user would `kubectl apply` and returns their path.
    fn manifests(&self, bind_password: &str, sync: &str) -> PathBuf {
        let yaml = format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: bitwarden-org-key, namespace: identity}}
stringData:
  client_id: {client_id}
  client_secret: {client_secret}
---
apiVersion: v1
kind: Secret
metadata: {{name: ldap-bind}}
stringData:
  username: {ROOT_DN}
  password: {bind_password}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {{name: corp-ldap, namespace: identity}}
spec:
  bitwarden:
    serverUrl: {server}
    apiKeySecretRef: {{name: bitwarden-org-key}}
  source:
    ldap:
      url: {ldap}
      bindSecretRef: {{name: ldap-bind}}
      rootPath: {BASE}
      users: {{path: ou=people, filter: "(!(employeeType=former))"}}
      groups: {{path: ou=groups}}
  sync: {sync}
"#,
            client_id = self.double.client_id(),
            client_secret = self.double.client_secret(),
            server = self.double.url(),
            ldap = self.slapd.ldap_url(),
        );
        let path = self
            .dir
            .path()
            .join(format!("corp-{}.yaml", self.files.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, yaml).unwrap();
        path
    }

    fn state(&self) -> String {
        self.dir.path().join("state.json").display().to_string()
    }
}

fn dn(rdn: &str) -> String {
    format!("{rdn},{BASE}")
}

#[tokio::test(flavor = "multi_thread")]
async fn test_json_is_what_bwdc_test_prints_for_the_demo_company() {
    let s = Setup::new().await;
    let file = s.manifests(ROOT_PW, "{}");
    let run = dirsync(args(&["test", "--json", "-f", file.to_str().unwrap()])).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got: Value = serde_json::from_str(&run.stdout).unwrap();
    let people = |uid: &str| dn(&format!("uid={uid},ou=people"));
    let group = |cn: &str| dn(&format!("cn={cn},ou=groups"));
    // As the reference: DNs as external ids; dave (no mail) is left out of the users but stays
    // in his groups; erin (excluded by the user filter) is dropped from Sales; nested groups
    // are flattened; emails are lower-cased.
    let want = json!({
        "groups": [
            {"externalId": group("Backend"), "displayName": "Backend", "userIds": [people("bob"), people("dave")]},
            {"externalId": group("Engineering"), "displayName": "Engineering",
             "userIds": [people("alice"), people("bob"), people("dave")]},
            {"externalId": group("Everyone"), "displayName": "Everyone",
             "userIds": [people("alice"), people("bob"), people("carol"), people("dave"), people("frank")]},
            {"externalId": group("Sales"), "displayName": "Sales", "userIds": [people("carol"), people("frank")]}
        ],
        "enabledUsers": [
            {"externalId": people("alice"), "displayName": "alice@corp.example"},
            {"externalId": people("bob"), "displayName": "bob@corp.example"},
            {"externalId": people("carol"), "displayName": "carol.cooper@corp.example"},
            {"externalId": people("frank"), "displayName": "frank@corp.example"}
        ],
        "disabledUsers": [],
        "deletedUsers": []
    });
    assert_eq!(got, want);
    assert!(s.double.requests().is_empty(), "test sends nothing to Bitwarden");

    let text = dirsync(args(&["test", "-f", file.to_str().unwrap()])).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .starts_with("4 enabled, 0 disabled, 0 deleted users; 4 groups"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("left out: 1 without email"));
    assert!(text.stdout.contains("(not synced: no email)"));
    assert!(
        text.stdout
            .contains("A sync would send 4 active members, 0 removals and 4 groups in 1 request(s)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_sends_once_then_the_state_file_skips_the_unchanged_directory() {
    let s = Setup::new().await;
    let file = s.manifests(ROOT_PW, "{}");
    let state = s.state();
    let first = dirsync(args(&["sync", "-f", file.to_str().unwrap(), "--state", &state])).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stdout
            .starts_with("Synced: 4 users, 4 groups; 4 invited, 0 removed"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("sent request 1/1 to "), "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains("changes: 4 invited, 0 removed, 4 groups created, 0 groups updated")
    );
    assert_eq!(s.double.imports().len(), 1);
    assert_eq!(
        s.double.member("carol.cooper@corp.example").unwrap().external_id,
        Some(dn("uid=carol,ou=people"))
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["lastActiveUsers"], 4);
    assert_eq!(saved["syncHash"].as_str().unwrap().len(), 64);

    let second = dirsync(args(&[
        "sync",
        "--json",
        "-f",
        file.to_str().unwrap(),
        "--state",
        &state,
    ]))
    .await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let out: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(out["reason"], "Unchanged");
    assert_eq!(out["requests"], 0);
    assert_eq!(s.double.imports().len(), 1, "nothing sent the second time");

    let forced = dirsync(args(&[
        "sync",
        "--force",
        "-f",
        file.to_str().unwrap(),
        "--state",
        &state,
    ]))
    .await;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(s.double.imports().len(), 2, "--force resends");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_and_sync_print_collection_access_and_sync_prints_onboarding() {
    let s = Setup::new().await;
    let coll = s.double.add_collection(Collection::new(None));
    let sync = format!("{{}}\n  collections: [{{id: {coll}, groups: [Engineering], readOnly: true}}]");
    let file = s.manifests(ROOT_PW, &sync);
    let file = file.to_str().unwrap();

    // test: what the spec asks for, nothing read from Bitwarden.
    let test = dirsync(args(&["test", "-f", file])).await;
    assert_eq!(test.code, 0, "{}", test.stderr);
    let line = format!(
        "collection {coll}: Pending, 0 groups with access from this sync; Engineering would get access (readOnly)"
    );
    assert!(test.stdout.contains(&line), "{}", test.stdout);
    assert!(s.double.requests().is_empty(), "test sends nothing to Bitwarden");

    // sync: the access given, and how far the synced people got.
    let state = s.state();
    let run = dirsync(args(&["sync", "-f", file, "--state", &state])).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("members: 4 invited, 0 accepted, 0 confirmed, 0 revoked\n"),
        "{}",
        run.stdout
    );
    let line =
        format!("collection {coll}: Applied, 1 group with access from this sync; Engineering gets access (readOnly)");
    assert!(run.stdout.contains(&line), "{}", run.stdout);
    assert_eq!(s.double.collection(&coll).unwrap().groups.len(), 1);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["collections"][0]["granted"][0]["name"], "Engineering");
    assert_eq!(saved["members"]["invited"], 4);

    // The same as JSON; nothing to write the second time.
    let again = dirsync(args(&["sync", "--json", "-f", file, "--state", &state])).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let out: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(out["reason"], "Unchanged");
    assert_eq!(out["members"]["invited"], 4);
    assert_eq!(out["collections"][0]["state"], "Applied");
    assert_eq!(s.double.requests_to(Endpoint::PutCollection).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_exit_with_their_reason_and_never_print_a_secret() {
    let s = Setup::new().await;
    let secret = s.double.client_secret();
    let debug = ["--log-level", "debug"];

    // Success, with debug logs.
    let file = s.manifests(ROOT_PW, "{}");
    let ok = dirsync([args(&["sync", "-f", file.to_str().unwrap()]), args(&debug)].concat()).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    // The leak check below means something only if the debug logs are really there.
    assert!(
        ok.stderr.contains("DEBUG") && ok.stderr.contains("/connect/token"),
        "{}",
        ok.stderr
    );
    let mut outputs = vec![ok];

    // Wrong LDAP password: SourceAuthFailed, exit 1.
    let wrong_bind = s.manifests("not-the-password-9f8e", "{}");
    let run = dirsync([args(&["sync", "-f", wrong_bind.to_str().unwrap()]), args(&debug)].concat()).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("error: SourceAuthFailed"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-password-9f8e"));
    outputs.push(run);

    // The organization API key was rotated: BitwardenAuthFailed, exit 1.
    s.double.set_client_secret("rotated-secret-value");
    let run = dirsync([args(&["sync", "--force", "-f", file.to_str().unwrap()]), args(&debug)].concat()).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("error: BitwardenAuthFailed"), "{}", run.stderr);
    outputs.push(run);

    let tokens = s.double.issued_tokens();
    assert!(!tokens.is_empty());
    for run in &outputs {
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains(&secret), "client secret leaked:\n{text}");
            assert!(!text.contains(ROOT_PW), "bind password leaked:\n{text}");
            for token in &tokens {
                assert!(!text.contains(token.as_str()), "access token leaked:\n{text}");
            }
        }
    }
    assert!(!s.double.requests_to(Endpoint::Token).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn input_errors_exit_2_and_say_what_to_fix() {
    let s = Setup::new().await;
    let dir = s.dir.path();
    let cases: Vec<(String, &str)> = vec![
        (
            s.manifests(ROOT_PW, "{interval: 1m}").display().to_string(),
            "InvalidSpec: invalid spec: spec.sync.interval: must be at least 5m",
        ),
        (dir.join("missing.yaml").display().to_string(), "cannot read"),
    ];
    for (file, expect) in cases {
        let run = dirsync(args(&["sync", "-f", &file])).await;
        assert_eq!(run.code, 2, "{file}: {}", run.stderr);
        assert!(run.stderr.contains(expect), "{file}: {}", run.stderr);
    }
    // A Secret without the key the spec names.
    let file = s.manifests(ROOT_PW, "{}");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("  password: ", "  passwd: ");
    std::fs::write(&file, text).unwrap();
    let run = dirsync(args(&["test", "-f", file.to_str().unwrap()])).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(r#"SecretKeyMissing: Secret "ldap-bind" has no key "password""#),
        "{}",
        run.stderr
    );
    // No DirectorySync at all.
    let empty = dir.join("empty.yaml");
    std::fs::write(&empty, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").unwrap();
    let run = dirsync(args(&["test", "-f", empty.to_str().unwrap()])).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no DirectorySync"), "{}", run.stderr);
    // A state file that cannot be written is found before anything is sent (the guard's new
    // baseline would be lost otherwise), and so is an empty secret value.
    let file = s.manifests(ROOT_PW, "{}");
    let run = dirsync(args(&[
        "sync",
        "-f",
        file.to_str().unwrap(),
        "--state",
        "/no/such/dir/state.json",
    ]))
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: InvalidSpec: cannot write the state file /no/such/dir/state.json"),
        "{}",
        run.stderr
    );
    let empty_password = s.manifests("\"\"", "{}");
    let run = dirsync(args(&["sync", "-f", empty_password.to_str().unwrap()])).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(r#"Secret "ldap-bind" key "password": the value is empty"#),
        "{}",
        run.stderr
    );
    assert!(s.double.requests().is_empty(), "nothing was sent");
    // The same run with a writable state file does send, and saves the state.
    let state = s.state();
    let run = dirsync(args(&["sync", "-f", file.to_str().unwrap(), "--state", &state])).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(s.double.imports().len(), 1);
    assert!(Path::new(&state).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let s = Setup::new().await;
    let file = s.manifests(ROOT_PW, "{}");
    let args = args(&[
        "test",
        "-f",
        file.to_str().unwrap(),
        "--log-level",
        "info",
        "--log-format",
        "text",
    ]);
    let run = dirsync(args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The check means something only if log lines were written.
    assert!(
        run.stderr.contains("INFO") && run.stderr.contains("reading the directory"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\x1b'),
        "ANSI escape codes in logs to a pipe: {:?}",
        run.stderr
    );
}
