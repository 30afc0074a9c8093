//! Runs the cluster-agnostic end-to-end suite (`tests/e2e/run.sh`, kubectl only) in CI: against
//! the local kube-apiserver of the harness (or `$KUBECONFIG`), a real slapd and the Bitwarden
//! double, with `dirsync controller` started by the script in all-namespaces mode (with the
//! no-rights token bound to `deploy/rbac.yaml` on the local control plane).

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use support::bitwarden::BitwardenDouble;
use support::flows::company;
use support::kube as k;
use support::slapd::{BASE, READER_DN, READER_PW, Slapd, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_e2e_script_passes_on_the_local_cluster() {
    let cluster = k::cluster();
    // The script installs the CRD itself; the controller's RBAC is the harness's part.
    let client = k::client_for(&cluster.admin).await;
    if cluster.user.is_some() {
        k::install_rbac(&client).await;
    }
    let slapd = Slapd::start(&company());
    let double = BitwardenDouble::start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/run.sh");
    let mut cmd = Command::new(script);
    cmd.env("KUBECONFIG", &cluster.admin)
        .env("E2E_LDAP_URL", slapd.ldap_url())
        .env("E2E_LDAP_ROOT", BASE)
        .env("E2E_LDAP_BIND_DN", READER_DN)
        .env("E2E_LDAP_BIND_PASSWORD", READER_PW)
        .env("E2E_BITWARDEN_URL", double.url())
        .env("E2E_BITWARDEN_CLIENT_ID", double.client_id())
        .env("E2E_BITWARDEN_CLIENT_SECRET", double.client_secret())
        .env("E2E_EXPECT_USERS", "3")
        .env("E2E_EXPECT_GROUPS", "1")
        .env("E2E_TIMEOUT", "60")
        .env("E2E_START_CONTROLLER", "1")
        .env("DIRSYNC_BIN", env!("CARGO_BIN_EXE_dirsync"))
        .env(
            "E2E_CONTROLLER_KUBECONFIG",
            cluster.user.as_ref().unwrap_or(&cluster.admin),
        )
        .env("E2E_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DIRSYNC_LOG_LEVEL", "info,kube=warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run tests/e2e/run.sh"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests/e2e/run.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("e2e: PASS"), "{stdout}\n{stderr}");
    assert!(double.member("carol@example.com").is_some());
    assert!(!double.imports().is_empty());
}
