//! The `dirsync` binary as a user runs it: `dirsync test` and `dirsync sync` on manifest files,
//! against a real slapd holding the demo company and the Bitwarden double. Checks the `bwdc test`
//! JSON, the state file, exit codes, and that no secret reaches the output or the logs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use support::bitwarden::{BitwardenDouble, Endpoint};
use support::slapd::{BASE, ROOT_DN, ROOT_PW, Slapd};

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

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

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary on a blocking thread so the in-process Bitwarden double keeps serving.
async fn dirsync(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run dirsync");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
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
async fn crd_prints_the_committed_crd() {
    let run = dirsync(args(&["crd"])).await;
    assert_eq!(run.code, 0);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/directorysync.yaml")).unwrap();
    assert_eq!(run.stdout, committed);
}

/// A complete, valid input whose servers are closed ports: as given it fails with exit 1 (the
/// directory cannot be reached); each case below breaks one thing and must be refused with exit 2
/// before any connection, saying where and what.
const VALID: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: bw, namespace: identity}
stringData:
  client_id: organization.00000000-0000-0000-0000-000000000000
  client_secret: s3cr3t-value
---
apiVersion: v1
kind: Secret
metadata: {name: bind, namespace: identity}
data:
  username: Y249YWRtaW4sZGM9eA==
  password: cGFzcw==
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {name: corp, namespace: identity}
spec:
  bitwarden:
    serverUrl: http://127.0.0.1:9
    apiKeySecretRef: {name: bw}
  source:
    ldap:
      url: ldap://127.0.0.1:9
      rootPath: dc=x
      pageSize: 500
      bindSecretRef: {name: bind}
  sync:
    interval: 1h
    guard: {maxRemovals: 5}
"#;

const SOURCE: &str = "  source:
    ldap:
      url: ldap://127.0.0.1:9
      rootPath: dc=x
      pageSize: 500
      bindSecretRef: {name: bind}
";

/// VALID with one text replaced (which must be there).
fn edit(from: &str, to: &str) -> Vec<String> {
    assert!(VALID.contains(from), "{from:?} is not in VALID");
    vec![VALID.replacen(from, to, 1)]
}

/// VALID plus more documents.
fn with(extra: &str) -> Vec<String> {
    vec![format!("{VALID}---\n{extra}")]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_is_refused_fast_with_exit_2_its_reason_and_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let valid = || vec![VALID.to_string()];
    let none: Vec<String> = Vec::new();
    let long = "d".repeat(100 * 1024);
    let ds_only = VALID.split("---\n").nth(2).unwrap().to_string();
    let secrets_only = VALID.split("---\n").take(2).collect::<Vec<_>>().join("---\n");
    let other_ns = ds_only.replace("namespace: identity", "namespace: other");
    std::fs::create_dir(dir.path().join("a-directory")).unwrap();
    std::fs::write(dir.path().join("bad-state.json"), "{not json").unwrap();
    std::fs::write(dir.path().join("binary.yaml"), [0xff, 0xfe, 0x00]).unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(4 * 1024 * 1024 + 1)
        .unwrap();

    // (what, file contents, extra arguments, what the one line on stderr must say)
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<String>, Vec<String>, String)> = vec![
        // 1. Unknown fields.
        ("spec.dryRun (not a field)", edit("  sync:\n", "  dryRun: true\n  sync:\n"), none.clone(),
         "InvalidSpec: case.yaml: document 3: spec.dryRun is not a field of DirectorySync; the fields at spec are: bitwarden, mode, source, suspend, sync".into()),
        ("spec.sync.gaurd", edit("guard:", "gaurd:"), none.clone(),
         "InvalidSpec: case.yaml: document 3: spec.sync.gaurd is not a field of DirectorySync; did you mean spec.sync.guard?".into()),
        ("ldap.pagesize (case)", edit("pageSize", "pagesize"), none.clone(),
         "spec.source.ldap.pagesize is not a field of DirectorySync; did you mean spec.source.ldap.pageSize?".into()),
        ("bitwarden.serverURL", edit("serverUrl", "serverURL"), none.clone(),
         "spec.bitwarden.serverURL is not a field of DirectorySync; did you mean spec.bitwarden.serverUrl?".into()),
        ("guard.maxRemoval", edit("maxRemovals", "maxRemoval"), none.clone(),
         "spec.sync.guard.maxRemoval is not a field of DirectorySync; did you mean spec.sync.guard.maxRemovals?".into()),
        ("ldap.bindSecretRef.passwordkey", edit("{name: bind}", "{name: bind, passwordkey: p}"), none.clone(),
         "spec.source.ldap.bindSecretRef.passwordkey is not a field of DirectorySync; did you mean spec.source.ldap.bindSecretRef.passwordKey?".into()),
        ("two unknown fields, both named", edit("guard:", "gaurd:").into_iter().map(|t| t.replace("pageSize", "pagesize")).collect(), none.clone(),
         "spec.source.ldap.pagesize is not a field of DirectorySync; did you mean spec.source.ldap.pageSize?; spec.sync.gaurd is not".into()),
        ("top-level specs:", edit("\nspec:\n", "\nspecs:\n"), none.clone(),
         "specs is not a field of DirectorySync; did you mean spec?".into()),
        ("metadata.namspace", edit("{name: corp, namespace: identity}", "{name: corp, namspace: identity}"), none.clone(),
         "metadata.namspace is not a field of DirectorySync; did you mean metadata.namespace?".into()),
        ("Secret strinData", edit("stringData:", "strinData:"), none.clone(),
         "InvalidSpec: case.yaml: document 1: strinData is not a field of Secret; did you mean stringData?".into()),
        ("Secret metadata.nmae", edit("{name: bw, namespace: identity}", "{nmae: bw, namespace: identity}"), none.clone(),
         "metadata.nmae is not a field of Secret; did you mean metadata.name?".into()),
        ("List extra field", with("apiVersion: v1\nkind: List\nitem: []\n"), none.clone(),
         "document 4: item is not a field of List; did you mean items?".into()),
        ("non-string key in spec", edit("  sync:\n", "  1: x\n  sync:\n"), none.clone(),
         "spec: the key \"1\" is not a string".into()),
        // 2. Type errors name their field.
        ("pageSize: -1", edit("pageSize: 500", "pageSize: -1"), none.clone(),
         "InvalidSpec: case.yaml: document 3: spec.source.ldap.pageSize: invalid value: integer `-1`, expected u32".into()),
        ("pageSize: 1.5", edit("pageSize: 500", "pageSize: 1.5"), none.clone(),
         "spec.source.ldap.pageSize: invalid type: floating point `1.5`, expected u32".into()),
        ("pageSize: 5000000000", edit("pageSize: 500", "pageSize: 5000000000"), none.clone(),
         "spec.source.ldap.pageSize: invalid value: integer `5000000000`, expected u32".into()),
        ("guard.maxRemovals: -1", edit("maxRemovals: 5", "maxRemovals: -1"), none.clone(),
         "spec.sync.guard.maxRemovals: invalid value: integer `-1`, expected u32".into()),
        ("interval: 300", edit("interval: 1h", "interval: 300"), none.clone(),
         "spec.sync.interval: invalid type: integer `300`, expected a string".into()),
        ("url: 389", edit("url: ldap://127.0.0.1:9", "url: 389"), none.clone(),
         "spec.source.ldap.url: invalid type: integer `389`, expected a string".into()),
        ("suspend: \"yes\"", edit("  sync:\n", "  suspend: \"yes\"\n  sync:\n"), none.clone(),
         "spec.suspend: invalid type: string \"yes\", expected a boolean".into()),
        ("mode: dryrun", edit("  sync:\n", "  mode: dryrun\n  sync:\n"), none.clone(),
         "spec.mode: unknown variant `dryrun`, expected `Apply` or `DryRun`".into()),
        ("source: a list", edit(SOURCE, "  source: []\n"), none.clone(),
         "spec.source: invalid type: sequence, expected struct SourceSpec".into()),
        ("guard: true", edit("guard: {maxRemovals: 5}", "guard: true"), none.clone(),
         "spec.sync.guard: invalid type: boolean `true`, expected struct GuardSpec".into()),
        ("missing apiKeySecretRef", edit("    apiKeySecretRef: {name: bw}\n", ""), none.clone(),
         "spec.bitwarden: missing field `apiKeySecretRef`".into()),
        ("missing rootPath", edit("      rootPath: dc=x\n", ""), none.clone(),
         "spec.source.ldap: missing field `rootPath`".into()),
        ("metadata.name: 3", edit("{name: corp,", "{name: 3,"), none.clone(),
         "metadata.name: invalid type: integer `3`, expected a string".into()),
        ("DirectorySync without a name", edit("{name: corp, namespace: identity}", "{namespace: identity}"), none.clone(),
         "document 3: metadata.name is missing: every DirectorySync needs a name".into()),
        // Validation of values (after the types are right).
        ("interval: 1m", edit("interval: 1h", "interval: 1m"), none.clone(),
         "InvalidSpec: invalid spec: spec.sync.interval: must be at least 5m".into()),
        ("pageSize: 0", edit("pageSize: 500", "pageSize: 0"), none.clone(),
         "InvalidSpec: invalid spec: spec.source.ldap.pageSize: must be between 1 and 10000".into()),
        ("no source", edit(SOURCE, "  source: {}\n"), none.clone(),
         "InvalidSpec: invalid spec: spec.source: set exactly one of ldap, entraId, googleWorkspace, okta, oneLogin".into()),
        ("two sources", edit(SOURCE, &format!("{SOURCE}    okta: {{orgUrl: \"https://o.example\", tokenSecretRef: {{name: bw, key: k}}}}\n")), none.clone(),
         "InvalidSpec: invalid spec: spec.source: set exactly one source, found ldap and okta".into()),
        // 3. Secrets, documents, versions.
        ("data not base64", edit("password: cGFzcw==", "password: \"!pass\""), none.clone(),
         "InvalidSpec: case.yaml: document 2: data.password: the value of Secret \"bind\" key \"password\" is not base64: values under data: must be base64-encoded (put plain text under stringData: instead)".into()),
        ("stringData number", edit("client_secret: s3cr3t-value", "client_secret: 123456789"), none.clone(),
         "stringData.client_secret: the value of Secret \"bw\" key \"client_secret\" must be a string, not a number: quote it".into()),
        ("data: a list", edit("data:\n  username: Y249YWRtaW4sZGM9eA==\n  password: cGFzcw==", "data: [a]"), none.clone(),
         "data of Secret \"bind\" must be a mapping of keys to values, not a list".into()),
        ("Secret key with a space", edit("client_secret: s3cr3t-value", "client secret: s3cr3t-value"), none.clone(),
         "Secret \"bw\" key \"client secret\" is not a valid key".into()),
        ("Secret without a name", edit("{name: bw, namespace: identity}", "{namespace: identity}"), none.clone(),
         "document 1: metadata.name is missing: every Secret needs a name".into()),
        ("scalar document", with("just some text\n"), none.clone(),
         "InvalidSpec: case.yaml: document 4: the document is not a Kubernetes object (a mapping with apiVersion and kind) but a string".into()),
        ("list document", with("- a\n- b\n"), none.clone(),
         "document 4: the document is not a Kubernetes object (a mapping with apiVersion and kind) but a list".into()),
        ("no kind", with("apiVersion: v1\nmetadata: {name: x}\n"), none.clone(),
         "document 4: kind is missing: a Kubernetes object needs apiVersion and kind".into()),
        ("kind: 7", with("apiVersion: v1\nkind: 7\n"), none.clone(),
         "document 4: kind must be a string, not a number".into()),
        ("apiVersion dirsync.dev/v9", edit("dirsync.dev/v1alpha1", "dirsync.dev/v9"), none.clone(),
         "InvalidSpec: case.yaml: document 3: apiVersion dirsync.dev/v9 is not supported for DirectorySync: this dirsync reads dirsync.dev/v1alpha1".into()),
        ("apiVersion v1alpha1 (no group)", edit("dirsync.dev/v1alpha1", "v1alpha1"), none.clone(),
         "apiVersion v1alpha1 is not supported for DirectorySync: this dirsync reads dirsync.dev/v1alpha1".into()),
        ("kind: DirectorySyncs", edit("kind: DirectorySync", "kind: DirectorySyncs"), none.clone(),
         "kind DirectorySyncs is not a kind of dirsync.dev: the only one is DirectorySync".into()),
        ("kind: Secert", edit("kind: Secret", "kind: Secert"), none.clone(),
         "document 1: kind Secert is not a Kubernetes kind; did you mean Secret?".into()),
        ("Secret apiVersion v2", edit("apiVersion: v1\nkind: Secret", "apiVersion: v2\nkind: Secret"), none.clone(),
         "document 1: apiVersion v2 is not supported for Secret: use apiVersion v1".into()),
        ("YAML syntax error", edit("rootPath: dc=x", "rootPath: \"dc=x"), none.clone(),
         "InvalidSpec: case.yaml: document 3: not valid YAML: ".into()),
        ("duplicate key", edit("      pageSize: 500\n", "      pageSize: 500\n      pageSize: 600\n"), none.clone(),
         "document 3: not valid YAML: ".into()),
        ("alias bomb", with(&{
            let mut s = "a: &a [x, x, x, x, x, x, x, x, x]\n".to_string();
            for i in 1..9u8 {
                let (n, p) = ((b'a' + i) as char, (b'a' + i - 1) as char);
                s += &format!("{n}: &{n} [{}]\n", vec![format!("*{p}"); 9].join(", "));
            }
            s
        }), none.clone(), "document 4: not valid YAML: repetition limit exceeded".into()),
        ("binary file", vec![], vec!["-f".into(), format!("{d}/binary.yaml")],
         format!("InvalidSpec: {d}/binary.yaml is not UTF-8 text")),
        ("missing file", vec![], vec!["-f".into(), format!("{d}/missing.yaml")],
         format!("InvalidSpec: cannot read {d}/missing.yaml: No such file or directory")),
        // 4. Size and depth, refused before parsing.
        ("100,000 nested [", with(&format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000))), none.clone(),
         "InvalidSpec: case.yaml: collections nest deeper than 64 levels (line 32, column 68); a DirectorySync needs fewer than 10".into()),
        ("100,000 nested {", with(&format!("a: {}{}\n", "{a: ".repeat(100_000), "}".repeat(100_000))), none.clone(),
         "collections nest deeper than 64 levels".into()),
        ("100,000 nested - ", with(&format!("a:\n{}x\n", "- ".repeat(100_000))), none.clone(),
         "document 4: collections nest deeper than 64 levels".into()),
        ("2,000 nested indentations", with(&format!("a:\n{}", (1..2000).map(|i| format!("{}- \n", " ".repeat(i))).collect::<String>())), none.clone(),
         "document 4: collections nest deeper than 64 levels".into()),
        ("70 nested mappings", with(&format!("a: {}x{}\n", "{b: ".repeat(70), "}".repeat(70))), none.clone(),
         "collections nest deeper than 64 levels".into()),
        ("900,000 empty documents", with(&"---\n".repeat(900_000)), none.clone(),
         "InvalidSpec: case.yaml holds more than 10000 YAML documents, the most a manifest file may hold".into()),
        ("file over 4 MiB", vec![], vec!["-f".into(), big.display().to_string()],
         format!("InvalidSpec: {} is larger than 4194304 bytes (4 MiB), the most a manifest file may be", big.display())),
        ("20 MB rootPath", edit("rootPath: dc=x", &format!("rootPath: {}", "d".repeat(20_000_000))), none.clone(),
         "is larger than 4194304 bytes (4 MiB), the most a manifest file may be".into()),
        ("100 KiB rootPath", edit("rootPath: dc=x", &format!("rootPath: {long}")), none.clone(),
         "document 3: spec.source.ldap.rootPath: the value is 102400 bytes long; at most 65536 bytes (64 KiB) are accepted".into()),
        ("100 KiB user filter", edit("bindSecretRef: {name: bind}", &format!("bindSecretRef: {{name: bind}}\n      users: {{filter: \"{long}\"}}")), none.clone(),
         "spec.source.ldap.users.filter: the value is 102400 bytes long".into()),
        // 5. Choosing the DirectorySync.
        ("bare --name, two namespaces", vec![VALID.to_string(), other_ns.clone()], vec!["--name".into(), "corp".into()],
         "InvalidSpec: 2 DirectorySyncs are named \"corp\" (identity/corp, other/corp): choose one with --name NAMESPACE/NAME".into()),
        ("no --name, two DirectorySyncs", vec![VALID.to_string(), other_ns.clone()], none.clone(),
         "InvalidSpec: 2 DirectorySyncs found (identity/corp, other/corp): choose one with --name NAME or --name NAMESPACE/NAME".into()),
        ("--name in the wrong namespace", valid(), vec!["--name".into(), "default/corp".into()],
         "InvalidSpec: no DirectorySync named \"default/corp\" in the files (found: identity/corp)".into()),
        ("the same DirectorySync twice", vec![VALID.to_string(), ds_only.clone()], none.clone(),
         "InvalidSpec: DirectorySync identity/corp is defined twice, in case.yaml: document 3 and in case-2.yaml: document 1: keep one".into()),
        ("no DirectorySync", vec![secrets_only.clone()], none.clone(),
         "InvalidSpec: no DirectorySync (apiVersion dirsync.dev/v1alpha1) found in case.yaml".into()),
        // 6. The same Secret twice.
        ("the same Secret twice", vec![VALID.to_string(), "apiVersion: v1\nkind: Secret\nmetadata: {name: bw}\nstringData: {client_id: x}\n".into()], none.clone(),
         "InvalidSpec: Secret identity/bw is defined twice, in case.yaml: document 1 and in case-2.yaml: document 1: keep one".into()),
        // 7. Secret values.
        ("empty client_secret", edit("client_secret: s3cr3t-value", "client_secret: \"\""), none.clone(),
         "InvalidSpec: invalid spec: Secret \"bw\" key \"client_secret\": the value is empty: put the value in the Secret".into()),
        ("blank password (data)", edit("password: cGFzcw==", "password: ICAK"), none.clone(),
         "InvalidSpec: invalid spec: Secret \"bind\" key \"password\": the value is empty: put the value in the Secret".into()),
        ("missing key", edit("client_secret: s3cr3t-value", "clientsecret: s3cr3t-value"), none.clone(),
         "SecretKeyMissing: Secret \"bw\" has no key \"client_secret\"".into()),
        ("Secret in another namespace", edit("{name: bw, namespace: identity}", "{name: bw, namespace: other}"), none.clone(),
         "SecretNotFound: Secret \"bw\" not found in namespace \"identity\"".into()),
        // 8. The state file, checked before anything is sent.
        ("--state in a missing directory", valid(), vec!["--state".into(), "/no/such/dir/state.json".into()],
         "InvalidSpec: cannot write the state file /no/such/dir/state.json: the directory /no/such/dir does not exist".into()),
        ("--state is a directory", valid(), vec!["--state".into(), format!("{d}/a-directory")],
         format!("InvalidSpec: cannot read state file {d}/a-directory: Is a directory")),
        ("--state is not JSON", valid(), vec!["--state".into(), format!("{d}/bad-state.json")],
         format!("InvalidSpec: state file {d}/bad-state.json is not valid")),
    ];

    let mut failures = Vec::new();
    let mut table = vec!["| input | exit | stderr |".to_string(), "|---|---|---|".to_string()];
    for (n, (what, files, extra, expect)) in cases.iter().enumerate() {
        let case_dir = dir.path().join(format!("case{n}"));
        std::fs::create_dir(&case_dir).unwrap();
        let mut argv = vec!["sync".to_string()];
        for (i, text) in files.iter().enumerate() {
            let name = if i == 0 {
                "case.yaml".to_string()
            } else {
                format!("case-{}.yaml", i + 1)
            };
            std::fs::write(case_dir.join(&name), text).unwrap();
            argv.extend(["-f".to_string(), name]);
        }
        argv.extend(extra.iter().cloned());
        let start = std::time::Instant::now();
        let out = tokio::task::spawn_blocking({
            let case_dir = case_dir.clone();
            move || {
                Command::new(BIN)
                    .args(&argv)
                    .current_dir(case_dir)
                    .env_remove("RUST_LOG")
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        let elapsed = start.elapsed();
        let (code, stderr) = (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        table.push(format!(
            "| {what} | {code} | `{}` ({} ms) |",
            stderr.trim(),
            elapsed.as_millis()
        ));
        let input_reason = ["InvalidSpec", "SecretKeyMissing", "SecretNotFound"]
            .iter()
            .any(|reason| stderr.starts_with(&format!("error: {reason}: ")));
        if code != 2 || !input_reason || !stderr.contains(expect.as_str()) || stderr.lines().count() != 1 {
            failures.push(format!("{what}: exit {code}, stderr:\n{stderr}\nwanted: {expect}"));
        }
        if elapsed > std::time::Duration::from_secs(3) {
            failures.push(format!("{what}: took {elapsed:?}"));
        }
        for secret in ["s3cr3t-value", "123456789", "!pass"] {
            if stderr.contains(secret) {
                failures.push(format!("{what}: a secret value is printed: {stderr}"));
            }
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );

    // The starting point is valid: it fails only on reaching the (closed) directory server.
    std::fs::write(dir.path().join("valid.yaml"), VALID).unwrap();
    let run = dirsync(args(&["sync", "-f", &format!("{d}/valid.yaml")])).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("error: SourceUnavailable"), "{}", run.stderr);
    let run = dirsync(args(&[
        "sync",
        "-f",
        &format!("{d}/valid.yaml"),
        "--name",
        "identity/corp",
    ]))
    .await;
    assert!(run.stderr.contains("error: SourceUnavailable"), "{}", run.stderr);
}
