//! The `dirsync` binary on input that needs no server: every bad input is refused before any
//! connection, fast, with exit 2, its reason and its place; `dirsync crd` prints the CRD.
use std::path::Path;
use std::process::Command;

use crate::support::cli::{BIN, args, dirsync};

#[tokio::test(flavor = "multi_thread")]
async fn crd_prints_the_committed_crd() {
    let run = dirsync(args(&["crd"])).await;
    assert_eq!(run.code, 0);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/directorysync.yaml")).unwrap();
    assert_eq!(run.stdout, committed);
}

/// Logs written to a file or a pipe (here: the pipe `Command::output` reads) are plain text, with
/// no ANSI colour codes to garble log files and collectors.
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
         "InvalidSpec: case.yaml: document 3: spec.dryRun is not a field of DirectorySync; the fields at spec are: bitwarden, collections, mode, source, suspend, sync".into()),
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
         "spec.source: invalid type: sequence, expected a mapping with one of ldap, entraId, googleWorkspace, okta, oneLogin".into()),
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
         "InvalidSpec: case.yaml: document 3: spec.source: set exactly one of ldap, entraId, googleWorkspace, okta, oneLogin".into()),
        ("two sources", edit(SOURCE, &format!("{SOURCE}    okta: {{orgUrl: \"https://o.example\", tokenSecretRef: {{name: bw, key: k}}}}\n")), none.clone(),
         "InvalidSpec: case.yaml: document 3: spec.source: set exactly one source, found ldap and okta".into()),
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
