//! A Kubernetes API server for tests: `$KUBECONFIG` when set (any cluster), else a local control
//! plane (etcd + a real kube-apiserver) started once per test binary with `scripts/kube-env.sh`,
//! stopped when the test process exits. It fails loudly when it cannot start: never skipped.
//!
//! Also: the CRD and the RBAC of `deploy/rbac.yaml`, a namespace per test, the controller as a
//! child process (run with the no-rights token bound to exactly that RBAC), and polling helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dirsync::api::DirectorySync;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

pub struct Cluster {
    /// Admin kubeconfig (the tests' own client).
    pub admin: PathBuf,
    /// The no-rights token kubeconfig of the local control plane (`None` with `$KUBECONFIG`).
    pub user: Option<PathBuf>,
    pub dir: Option<PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The cluster of this test process.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        if let Ok(k) = std::env::var("KUBECONFIG")
            && !k.is_empty()
        {
            return Cluster {
                admin: PathBuf::from(k),
                user: None,
                dir: None,
            };
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::temp_dir().join(format!("dirsync-kube-test-{}", std::process::id()));
        let out = Command::new(root.join("scripts/kube-env.sh"))
            .arg("start")
            .env("KUBE_DIR", &dir)
            .env("KUBE_PORT", free_port().to_string())
            .env("KUBE_ETCD_PORT", free_port().to_string())
            .env("KUBE_ETCD_PEER_PORT", free_port().to_string())
            .env("KUBE_OWNER_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/kube-env.sh");
        assert!(
            out.status.success(),
            "cannot start the local Kubernetes control plane (scripts/kube-env.sh start): {}\n{}\n\
             Install it with scripts/ci-install-kube.sh, or set KUBECONFIG to a cluster.",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            admin: dir.join("admin.kubeconfig"),
            user: Some(dir.join("user.kubeconfig")),
            dir: Some(dir),
        }
    })
}

pub async fn client_for(path: &Path) -> Client {
    dirsync::init_crypto();
    let kubeconfig = Kubeconfig::read_from(path).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// An admin client, with the CRD installed and the controller's RBAC bound to the test user.
pub async fn admin() -> Client {
    let client = client_for(&cluster().admin).await;
    install_crd(&client).await;
    if cluster().user.is_some() {
        install_rbac(&client).await;
    }
    client
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Creates the committed CRD (`crds/directorysync.yaml`, what users apply) through the API:
/// kubectl's client-side validation of v1.20 rejects CEL rules.
pub async fn install_crd(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/directorysync.yaml")).unwrap();
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(text.split_once("---\n").unwrap().1).unwrap();
    match api.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(e) if is_conflict(&e) => {}
        Err(e) => panic!("create the CRD from crds/directorysync.yaml: {e}"),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let crd = api.get("directorysyncs.dirsync.dev").await.expect("get the CRD");
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            // Discovery of the new group can lag a moment behind Established.
            let ds: Api<DirectorySync> = Api::all(client.clone());
            if ds.list(&Default::default()).await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the CRD was not established in 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first object of `kind` in `deploy/rbac.yaml`.
fn deploy_rbac<T: serde::de::DeserializeOwned>(kind: &str) -> T {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac.yaml")).unwrap();
    text.split("\n---")
        .filter_map(|doc| serde_yaml_ng::from_str::<serde_json::Value>(doc).ok())
        .find(|v| v["kind"] == kind)
        .map(|v| serde_json::from_value(v).unwrap())
        .unwrap_or_else(|| panic!("deploy/rbac.yaml has a {kind}"))
}

/// The test user the controller runs as on the local control plane.
fn tester() -> Subject {
    Subject {
        kind: "User".into(),
        name: "tester".into(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        namespace: None,
    }
}

/// Applies the ClusterRole of `deploy/rbac.yaml` and binds it to the test user "tester".
pub async fn install_rbac(client: &Client) {
    let role: ClusterRole = deploy_rbac("ClusterRole");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    match roles.create(&PostParams::default(), &role).await {
        Ok(_) => {}
        Err(e) if is_conflict(&e) => {}
        Err(e) => panic!("create the ClusterRole: {e}"),
    }
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some("dirsync-tester".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role.metadata.name.clone().unwrap(),
        },
        subjects: Some(vec![tester()]),
    };
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    match bindings.create(&PostParams::default(), &binding).await {
        Ok(_) => {}
        Err(e) if is_conflict(&e) => {}
        Err(e) => panic!("create the ClusterRoleBinding: {e}"),
    }
}

/// For `--leader-election --lease-namespace NAMESPACE`: the leader-election Role of
/// `deploy/rbac.yaml` (the one Lease `dirsync-leader`, by name), created in `namespace` and bound
/// to the test user. The ClusterRole grants nothing on Leases. Nothing to do with `$KUBECONFIG`.
pub async fn install_lease_rbac(client: &Client, namespace: &str) {
    if cluster().user.is_none() {
        return;
    }
    let mut role: Role = deploy_rbac("Role");
    role.metadata.namespace = Some(namespace.to_string());
    let name = role.metadata.name.clone().unwrap();
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    roles
        .create(&PostParams::default(), &role)
        .await
        .expect("create the lease Role");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name,
        },
        subjects: Some(vec![tester()]),
    };
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("create the lease RoleBinding");
}

/// A fresh namespace for one test.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!(
        "{prefix}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &ns).await.expect("create namespace");
    name
}

pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        ..Default::default()
    }
}

/// Creates or replaces a Secret.
pub async fn put_secret(client: &Client, ns: &str, secret: Secret) {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let name = secret.metadata.name.clone().unwrap();
    match api.get_opt(&name).await.unwrap() {
        None => {
            api.create(&PostParams::default(), &secret).await.unwrap();
        }
        Some(old) => {
            let mut s = secret;
            s.metadata.resource_version = old.metadata.resource_version;
            api.replace(&name, &PostParams::default(), &s).await.unwrap();
        }
    }
}

pub async fn delete<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.delete(name, &DeleteParams::default()).await.expect("delete");
}

/// The two Secrets a test DirectorySync references: the Bitwarden double's API key
/// (`SECRET_NAME`) and the LDAP bind (`ldap-bind`, the harness's read-only reader).
pub async fn put_sync_secrets(client: &Client, ns: &str, double: &super::bitwarden::BitwardenDouble, password: &str) {
    put_secret(
        client,
        ns,
        secret(
            super::bitwarden::SECRET_NAME,
            &[
                ("client_id", &double.client_id()),
                ("client_secret", &double.client_secret()),
            ],
        ),
    )
    .await;
    put_secret(
        client,
        ns,
        secret(
            "ldap-bind",
            &[("username", super::slapd::READER_DN), ("password", password)],
        ),
    )
    .await;
}

/// The controller as a child process (`dirsync controller`), killed on drop.
pub struct ControllerProcess {
    child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl ControllerProcess {
    /// Watches `namespace` (all when `None`) with the no-rights user bound to `deploy/rbac.yaml`
    /// (the admin kubeconfig with an external cluster).
    pub fn start(namespace: Option<&str>, extra: &[&str]) -> ControllerProcess {
        let c = cluster();
        let kubeconfig = c.user.clone().unwrap_or_else(|| c.admin.clone());
        let metrics_port = free_port();
        let log = std::env::temp_dir().join(format!("dirsync-controller-{}-{metrics_port}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dirsync"));
        cmd.arg("controller")
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("DIRSYNC_LOG_LEVEL", "info,kube=warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        if let Some(ns) = namespace {
            cmd.arg("--namespace").arg(ns);
        }
        let child = cmd.spawn().expect("start dirsync controller");
        let mut p = ControllerProcess {
            child,
            metrics_port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(metrics_port, "/healthz").is_none() {
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!("the controller exited ({status}):\n{}", p.logs());
            }
            assert!(
                Instant::now() < deadline,
                "the controller did not serve /healthz:\n{}",
                p.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics").unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for the exit (graceful shutdown).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no exit 30 s after SIGTERM:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL (a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET on loopback; `None` unless the answer is 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The `Ready` condition: (status, reason, message).
pub fn ready(ds: &DirectorySync) -> Option<(String, String, String)> {
    let c = ds.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Polls the DirectorySync until `pred` holds; panics with its status and the logs otherwise.
pub async fn wait_for(
    api: &Api<DirectorySync>,
    name: &str,
    timeout: Duration,
    controller: &ControllerProcess,
    what: &str,
    pred: impl Fn(&DirectorySync) -> bool,
) -> DirectorySync {
    let deadline = Instant::now() + timeout;
    loop {
        let ds = api.get(name).await.expect("get DirectorySync");
        if pred(&ds) {
            return ds;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; status: {}\ncontroller log:\n{}",
                serde_json::to_string_pretty(&ds.status).unwrap(),
                controller.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `Ready` has this reason.
pub async fn wait_reason(
    api: &Api<DirectorySync>,
    name: &str,
    reason: &str,
    controller: &ControllerProcess,
) -> DirectorySync {
    wait_for(
        api,
        name,
        // A failure under load backs off 30 s, then 60 s, before the next attempt.
        Duration::from_secs(150),
        controller,
        &format!("Ready reason {reason}"),
        |ds| ready(ds).is_some_and(|(_, r, _)| r == reason),
    )
    .await
}
