//! A real Samba Active Directory domain controller for tests: `samba-tool domain provision
//! --use-rfc2307` into a temp dir with its own smb.conf, data loaded offline into sam.ldb,
//! then `samba -i -M single` with only the LDAP service, on 127.0.0.1:389 / 636 (Samba's LDAP
//! ports cannot be changed, so only one instance runs at a time). Killed on drop. If it cannot
//! start, the test panics with the reason (install with `scripts/ci-install-ldap.sh`).
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::slapd::run;

pub const REALM: &str = "AD.EXAMPLE.COM";
pub const BASE: &str = "DC=ad,DC=example,DC=com";
pub const ADMIN: &str = "Administrator@ad.example.com";
pub const ADMIN_PW: &str = "Passw0rd!Test1";
pub const PORT: u16 = 389;

pub struct Samba {
    pub dir: tempfile::TempDir,
    child: Child,
}

const LOADER: &str = r#"
import sys
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
lp = LoadParm(); lp.load(sys.argv[1])
db = SamDB(url=sys.argv[2], session_info=system_session(), lp=lp)
db.transaction_start()
db.add_ldif(open(sys.argv[3]).read())
for dn in sys.argv[4:]:
    db.delete(dn)
db.transaction_commit()
"#;

impl Samba {
    /// Provisions a domain, adds `ldif` (entries under [`BASE`]), deletes `delete` (they become
    /// tombstones in `CN=Deleted Objects`) and starts the LDAP server.
    pub fn start(ldif: &str, delete: &[String]) -> Samba {
        for bin in ["/usr/sbin/samba", "/usr/bin/samba-tool"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: run scripts/ci-install-ldap.sh"
            );
        }
        assert!(
            TcpStream::connect(("127.0.0.1", PORT)).is_err(),
            "127.0.0.1:{PORT} is already in use: stop the system slapd/samba (scripts/ci-install-ldap.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        run(
            Command::new("/usr/bin/samba-tool")
                .args([
                    "domain",
                    "provision",
                    "--realm",
                    REALM,
                    "--domain",
                    "ADTEST",
                    "--server-role=dc",
                ])
                .args([
                    "--dns-backend=NONE",
                    "--use-rfc2307",
                    "--host-name=dc1",
                    "--adminpass",
                    ADMIN_PW,
                ])
                .arg(format!("--targetdir={}", d.display()))
                .args(["--option=interfaces = lo", "--option=bind interfaces only = yes"])
                .args(["--option=server services = ldap"])
                .arg(format!("--option=log file = {}/log.%m", d.display())),
            "samba-tool domain provision",
        );
        let conf = d.join("etc/smb.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        // Simple binds over plain ldap:// on loopback, for the tests.
        let text = text.replacen("[global]", "[global]\n\tldap server require strong auth = no", 1);
        std::fs::write(&conf, text).unwrap();
        std::fs::write(d.join("load.py"), LOADER).unwrap();
        std::fs::write(d.join("data.ldif"), ldif).unwrap();
        run(
            Command::new("/usr/bin/python3")
                .arg(d.join("load.py"))
                .arg(&conf)
                .arg(d.join("private/sam.ldb"))
                .arg(d.join("data.ldif"))
                .args(delete),
            "loading test entries into sam.ldb",
        );
        let log = std::fs::File::create(d.join("samba.out")).unwrap();
        let child = Command::new("/usr/sbin/samba")
            .args(["-i", "-M", "single", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start samba");
        let mut samba = Samba { dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = samba.child.try_wait().unwrap() {
                panic!("samba exited ({status}) before it was ready:\n{}", samba.log());
            }
            if TcpStream::connect(("127.0.0.1", PORT)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                panic!("samba did not listen on 127.0.0.1:{PORT} within 30 s:\n{}", samba.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        samba
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("samba.out")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{PORT}")
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
