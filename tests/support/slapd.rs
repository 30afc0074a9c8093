//! A real OpenLDAP `slapd` for tests: its own config and mdb database in a temp dir, plain and
//! TLS listeners on free loopback ports, a CA and server certificate made with the `openssl`
//! CLI, data loaded with `slapadd`. The server is killed when the value is dropped. If anything
//! cannot start, the test panics with the reason (install the servers with
//! `scripts/ci-install-ldap.sh`).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const SLAPADD: &str = "/usr/sbin/slapadd";
pub const BASE: &str = "dc=example,dc=com";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
pub const ROOT_PW: &str = "admin-secret";
/// A non-root account: subject to the size limit below, so only paged searches see everything.
pub const READER_DN: &str = "cn=reader,dc=example,dc=com";
pub const READER_PW: &str = "reader-secret";
/// Non-paged searches by the reader return at most this many entries.
pub const SIZE_LIMIT: usize = 10;

pub struct Slapd {
    pub dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    pub tls_port: u16,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    /// PEM of another CA (for "wrong CA" tests).
    pub other_ca_pem: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a setup command; panics with its output when it fails.
pub fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e} (run scripts/ci-install-ldap.sh)"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Makes `<name>.key`/`<name>.crt` for a CA, and optionally a server cert signed by it.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    run(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .args([
                "-subj",
                &format!("/CN={name} test CA"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]),
        "openssl CA",
    );
    crt
}

pub fn make_leaf(dir: &Path, ca: &str, name: &str, server: bool) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let crt = dir.join(format!("{name}.crt"));
    let ext = dir.join(format!("{name}.ext"));
    let usage = if server { "serverAuth" } else { "clientAuth" };
    std::fs::write(
        &ext,
        format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    run(
        Command::new("openssl")
            .args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &format!("/CN={name}")]),
        "openssl CSR",
    );
    run(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(dir.join(format!("{ca}.crt")))
            .arg("-CAkey")
            .arg(dir.join(format!("{ca}.key")))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&crt),
        "openssl sign",
    );
}

impl Slapd {
    /// Starts a server holding `base.ldif` + `ldif` (entries under `dc=example,dc=com`).
    pub fn start(ldif: &str) -> Slapd {
        Self::start_with(ldif, "")
    }

    /// Like [`Slapd::start`], with extra `slapd.conf` global lines (e.g. `TLSVerifyClient`).
    pub fn start_with(ldif: &str, extra_global: &str) -> Slapd {
        for bin in [SLAPD, SLAPADD] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: run scripts/ci-install-ldap.sh"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        make_ca(d, "ca");
        make_leaf(d, "ca", "server", true);
        make_ca(d, "other-ca");
        std::fs::create_dir(d.join("db")).unwrap();
        let conf = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCACertificateFile {d}/ca.crt
TLSCertificateFile {d}/server.crt
TLSCertificateKeyFile {d}/server.key
{extra_global}
sizelimit size.soft={SIZE_LIMIT} size.hard={SIZE_LIMIT} size.prtotal=unlimited
database mdb
maxsize 104857600
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {d}/db
index objectClass eq
access to attrs=userPassword by anonymous auth by * none
access to * by * read
"#,
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let data = format!("{}\n{}", base_ldif(), ldif);
        std::fs::write(d.join("data.ldif"), data).unwrap();
        run(
            Command::new(SLAPADD)
                .arg("-f")
                .arg(d.join("slapd.conf"))
                .arg("-l")
                .arg(d.join("data.ldif")),
            "slapadd",
        );
        let port = free_port();
        let tls_port = free_port();
        let log = std::fs::File::create(d.join("slapd.log")).unwrap();
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"))
            .args(["-d", "256"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        let mut server = Slapd {
            ca_pem: std::fs::read_to_string(d.join("ca.crt")).unwrap(),
            other_ca_pem: std::fs::read_to_string(d.join("other-ca.crt")).unwrap(),
            dir,
            child,
            port,
            tls_port,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("slapd exited ({status}) before it was ready:\n{}", self.log());
            }
            let up = |p| TcpStream::connect(("127.0.0.1", p)).is_ok();
            if up(self.port) && up(self.tls_port) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "slapd did not listen on 127.0.0.1:{} within 15 s:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_ldif() -> String {
    format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: {READER_PW}\n"
    )
}
