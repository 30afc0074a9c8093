//! The Helm chart, installed through the Helm v4 SDK (`scripts/chart.py install`) into a real
//! kube-apiserver, gives its ServiceAccount enough rights: the controller runs as a local process
//! with that ServiceAccount's token (TokenRequest, as `kubectl create token`), and a DirectorySync
//! against a real slapd and the Bitwarden double reaches Ready. Needs scripts/ci-install-chart.sh.

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dirsync::api::DirectorySync;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::bitwarden::{BitwardenDouble, SECRET_NAME};
use support::kube::{self as k, ready};
use support::slapd::{BASE, READER_PW, Slapd};

const RELEASE_NS: &str = "dirsync-chart";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_service_account_can_sync() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cluster = k::cluster();
    let admin = cluster.admin.clone();
    let client = k::client_for(&admin).await;
    // The CRD in the form the test server takes (v1.20 has no CEL), then the chart without it,
    // with leader election on (as with replicas > 1: the Lease Role is rendered only then).
    k::install_crd(&client).await;
    run(Command::new("python3").arg(root.join("scripts/chart.py")).args([
        "install",
        admin.to_str().unwrap(),
        RELEASE_NS,
        "--skip-crds",
        "--leader-election",
    ]));

    // A kubeconfig with only the chart ServiceAccount's token.
    // A TokenRequest through the API (what `kubectl create token` does, which kubectl < 1.24 lacks).
    let service_accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), RELEASE_NS);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = service_accounts
        .create_token_request("dirsync", &PostParams::default(), &request)
        .await
        .expect("a TokenRequest for the chart's ServiceAccount")
        .status
        .expect("the TokenRequest's status")
        .token;
    let sa_config = std::env::temp_dir().join(format!("dirsync-chart-sa-{}.kubeconfig", std::process::id()));
    std::fs::copy(&admin, &sa_config).unwrap();
    let kc = |args: &[&str]| {
        run(Command::new("kubectl").arg("--kubeconfig").arg(&sa_config).args(args));
    };
    kc(&[
        "config",
        "set-credentials",
        "chart-sa",
        &format!("--token={}", token.trim()),
    ]);
    kc(&["config", "set-context", "--current", "--user=chart-sa"]);

    let ns = k::namespace(&client, "chart").await;
    let slapd = Slapd::start(&format!(
        "dn: ou=People,{BASE}\nobjectClass: organizationalUnit\nou: People\n\n\
         dn: uid=alice,ou=People,{BASE}\nobjectClass: inetOrgPerson\ncn: alice\nsn: alice\nuid: alice\nmail: alice@example.com\n\n"
    ));
    let double = BitwardenDouble::start().await;
    k::put_sync_secrets(&client, &ns, &double, READER_PW).await;

    // The controller as the chart runs it (leader election on, as with replicas > 1), but local.
    let log = std::env::temp_dir().join(format!("dirsync-chart-controller-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    let mut controller = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["controller", "--metrics-addr", "127.0.0.1:0", "--leader-election"])
        .env("KUBECONFIG", &sa_config)
        .env("POD_NAMESPACE", RELEASE_NS)
        .env("DIRSYNC_LOG_LEVEL", "info,kube=warn")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();

    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);
    let ds: DirectorySync = serde_json::from_value(json!({
        "apiVersion": "dirsync.dev/v1alpha1",
        "kind": "DirectorySync",
        "metadata": {"name": "corp"},
        "spec": {
            "bitwarden": {"serverUrl": double.url(), "apiKeySecretRef": {"name": SECRET_NAME}},
            "source": {"ldap": {"url": slapd.ldap_url(), "rootPath": BASE,
                                "bindSecretRef": {"name": "ldap-bind"}, "users": {"path": "ou=People"}}},
            "sync": {"interval": "5m", "groups": false}
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &ds).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(status) = controller.try_wait().unwrap() {
            panic!(
                "the controller exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if let Ok(ds) = api.get("corp").await {
            last = ready(&ds);
            if last.as_ref().is_some_and(|(s, _, _)| s == "True") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = controller.kill();
    let _ = controller.wait();
    let (status, reason, message) = last.unwrap_or_default();
    assert_eq!(
        status, "True",
        "not Ready with the chart's RBAC: {reason}: {message}\n{logs}"
    );
    assert_eq!(reason, "Synced", "{message}");
    assert!(!logs.contains("forbidden"), "a request was forbidden:\n{logs}");
    // The leader Lease, held by the chart's ServiceAccount in the release namespace.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), RELEASE_NS);
    assert!(leases.get("dirsync-leader").await.is_ok(), "no Lease in {RELEASE_NS}");
    let _ = std::fs::remove_file(&sa_config);
}
