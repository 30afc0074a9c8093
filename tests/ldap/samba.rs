//! The LDAP source with `activeDirectory: true` against a real Samba AD domain controller.

use std::collections::{BTreeSet, HashMap};

use crate::support::samba::{ADMIN, ADMIN_PW, BASE, Samba};
use async_trait::async_trait;
use dirsync::Error;
use dirsync::api::{BindSecretRef, LdapSource};
use dirsync::secrets::{SecretStore, SecretValue};
use dirsync::source::ldap::{CURSOR_LAST_READ, LdapDirectory};
use dirsync::source::{DirectorySource, ReadRequest};

struct Secrets(HashMap<String, String>);

#[async_trait]
impl SecretStore for Secrets {
    async fn get(&self, name: &str, key: &str) -> Result<SecretValue, Error> {
        self.0
            .get(key)
            .map(|v| SecretValue::new(v.clone()))
            .ok_or_else(|| Error::SecretKeyMissing {
                name: name.into(),
                key: key.into(),
            })
    }
}

const BULK: usize = 1520;

fn data() -> String {
    let u = format!("CN=Users,{BASE}");
    let user = |cn: &str, mail: Option<&str>, uac: u32| {
        let mail = mail.map(|m| format!("mail: {m}\n")).unwrap_or_default();
        format!("dn: CN={cn},{u}\nobjectClass: user\nsAMAccountName: {cn}\n{mail}userAccountControl: {uac}\n\n")
    };
    let mut l = String::new();
    l += &user("alice", Some("Alice@AD.Example.com"), 544);
    l += &user("dis", Some("dis@ad.example.com"), 546);
    l += &user("bob", None, 544);
    l += &user("gone", Some("gone@ad.example.com"), 544);
    for i in 0..BULK {
        l += &user(&format!("bulk{i:04}"), None, 544);
    }
    l += &format!("dn: CN=big,{u}\nobjectClass: group\nsAMAccountName: big\nmember: CN=alice,{u}\n");
    for i in 0..BULK {
        l += &format!("member: CN=bulk{i:04},{u}\n");
    }
    l += &format!(
        "\ndn: CN=team,{u}\nobjectClass: group\nsAMAccountName: team\nmember: CN=alice,{u}\n\
         member: CN=dis,{u}\nmember: CN=big,{u}\n\n"
    );
    l
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<_> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[tokio::test]
async fn active_directory_on_samba() {
    let started = std::time::Instant::now();
    let samba = Samba::start(&data(), &[format!("CN=gone,CN=Users,{BASE}")]);
    eprintln!("samba ready after {:?}", started.elapsed());
    let secrets = Secrets(HashMap::from([
        ("username".to_string(), ADMIN.to_string()),
        ("password".to_string(), ADMIN_PW.to_string()),
    ]));
    let spec = LdapSource {
        url: samba.url(),
        active_directory: true,
        root_path: BASE.into(),
        page_size: 200,
        bind_secret_ref: Some(BindSecretRef {
            name: "ad".into(),
            username_key: "username".into(),
            password_key: "password".into(),
        }),
        ..Default::default()
    };
    let mut source = LdapDirectory::connect(&spec, &secrets).await.unwrap();
    let r = source
        .read(&ReadRequest {
            users: true,
            groups: true,
            cursor: None,
        })
        .await
        .unwrap();
    let d = &r.directory;
    assert!(d.complete);

    // objectGUID external ids in Microsoft's text form, for users and groups.
    assert!(d.users.iter().all(|u| is_guid(&u.external_id)), "{:?}", &d.users[..3]);
    assert!(d.groups.iter().all(|g| is_guid(&g.external_id)));
    let email = |e: &str| {
        d.users
            .iter()
            .find(|u| u.email.as_deref() == Some(e))
            .unwrap_or_else(|| panic!("no {e}"))
    };
    let alice = email("alice@ad.example.com");
    assert!(!alice.disabled && !alice.deleted);
    let dis = email("dis@ad.example.com");
    assert!(dis.disabled && !dis.deleted);
    // Deleted users come from CN=Deleted Objects with the Show Deleted control.
    let deleted: Vec<_> = d.users.iter().filter(|u| u.deleted).collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(is_guid(&deleted[0].external_id));
    let active = d.users.iter().filter(|u| !u.deleted).count();
    assert!(active >= BULK + 3, "{active}");
    // bulk users and bob have no mail: kept with no email.
    assert!(d.users.iter().filter(|u| u.email.is_none() && !u.deleted).count() > BULK);

    // Range retrieval: a group of more than 1500 members is complete.
    let big = d.groups.iter().find(|g| g.name == "big").expect("big");
    assert_eq!(big.members.len(), BULK + 1);
    assert!(big.members.contains(&alice.external_id));
    let ids: BTreeSet<_> = d.users.iter().map(|u| &u.external_id).collect();
    assert!(big.members.iter().all(|m| ids.contains(m)));
    let team = d.groups.iter().find(|g| g.name == "team").expect("team");
    assert_eq!(
        team.members.iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([&alice.external_id, &dis.external_id])
    );
    assert_eq!(team.children, vec![big.external_id.clone()]);

    // Incremental (whenChanged by default): nothing changed since the last read.
    assert!(r.cursor.contains_key(CURSOR_LAST_READ));
    let mut source = LdapDirectory::connect(&spec, &secrets).await.unwrap();
    let incr = source
        .read(&ReadRequest {
            users: true,
            groups: true,
            cursor: Some(r.cursor.clone()),
        })
        .await
        .unwrap();
    assert!(!incr.directory.complete);
    assert!(
        incr.directory.users.iter().all(|u| !u.deleted),
        "deleted users only on full reads"
    );
    assert!(
        incr.directory.users.len() < 10,
        "only changed users: {}",
        incr.directory.users.len()
    );
    // Samba may touch a built-in group when it starts; if any group changed, all are read.
    if !incr.directory.groups.is_empty() {
        let big = incr.directory.groups.iter().find(|g| g.name == "big").expect("big");
        assert_eq!(big.members.len(), BULK + 1);
    }
    eprintln!("done after {:?}", started.elapsed());
}
