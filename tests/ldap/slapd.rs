//! The LDAP source against a real OpenLDAP slapd that each test starts for itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::secrets::MemorySecrets;
use crate::support::slapd::{self, BASE, READER_DN, READER_PW, ROOT_DN, ROOT_PW, Slapd};
use dirsync::Error;
use dirsync::api::{BindSecretRef, LdapGroups, LdapSource, LdapTls, LdapUsers, SecretKeyRef, SecretRef};
use dirsync::source::ldap::{CURSOR_LAST_READ, LdapDirectory, dn};
use dirsync::source::{DirectorySource, ReadRequest, ReadResult};
use dirsync::sync::model::{Group, User};

const OLD: &str = "modifyTimestamp: 20200101000000Z\ncreateTimestamp: 20200101000000Z\n";

fn people() -> String {
    let p = format!("ou=People,{BASE}");
    let g = format!("ou=Groups,{BASE}");
    let user = |rdn: &str, cn: &str, uid: &str, mail: Option<&str>| {
        let mail = mail.map(|m| format!("mail: {m}\n")).unwrap_or_default();
        format!("dn: {rdn},{p}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\nuid: {uid}\n{mail}{OLD}\n")
    };
    let mut l = format!(
        "dn: {p}\nobjectClass: organizationalUnit\nou: People\n{OLD}\n\
         dn: {g}\nobjectClass: organizationalUnit\nou: Groups\n{OLD}\n\
         dn: ou=Bulk,{BASE}\nobjectClass: organizationalUnit\nou: Bulk\n{OLD}\n"
    );
    l += &user("uid=alice", "Alice", "alice", Some("  Alice@Example.COM "));
    l += &user("uid=bob", "Bob", "bob", Some("bob@example.com"));
    l += &user("uid=carol", "Carol", "carol", None);
    l += &user("uid=dave", "Dave", "dave", Some("dave@example.com"));
    l += &user(
        "cn=Smith\\2C John",
        "Smith, John",
        "jsmith",
        Some("john.smith@example.com"),
    );
    // groupOfNames: DNs in another case and spacing; a child group; a cycle; a ghost member.
    l += &format!(
        "dn: cn=engineering,{g}\nobjectClass: groupOfNames\ncn: engineering\n\
         member: UID=Alice, OU=people, DC=Example, DC=COM\n\
         member: cn=smith\\, john,ou=People,dc=example,dc=com\n\
         member: cn=platform,{g}\n{OLD}\n\
         dn: cn=platform,{g}\nobjectClass: groupOfNames\ncn: platform\n\
         member: uid=bob,{p}\nmember: uid=carol,{p}\nmember: cn=engineering,{g}\n\
         member: uid=ghost,{p}\n{OLD}\n\
         dn: cn=empty,{g}\nobjectClass: groupOfNames\ncn: empty\nmember: cn=nobody,{BASE}\n{OLD}\n\
         dn: cn=ops,{g}\nobjectClass: groupOfUniqueNames\ncn: ops\n\
         uniqueMember: uid=dave,{p}\nuniqueMember: cn=engineering,{g}\n{OLD}\n\
         dn: cn=posix,{g}\nobjectClass: posixGroup\ncn: posix\ngidNumber: 5000\n\
         memberUid: ALICE\nmemberUid: dave\nmemberUid: nobody\n{OLD}\n"
    );
    for i in 0..25 {
        l += &format!(
            "dn: uid=bulk{i:02},ou=Bulk,{BASE}\nobjectClass: inetOrgPerson\ncn: bulk{i}\nsn: bulk\n\
             uid: bulk{i:02}\nmail: bulk{i:02}@example.com\n{OLD}\n"
        );
    }
    l
}

fn secrets(s: &Slapd) -> MemorySecrets {
    MemorySecrets::new()
        .with("bind", "username", READER_DN)
        .with("bind", "password", READER_PW)
        .with("ca", "ca.crt", &s.ca_pem)
        .with("other-ca", "ca.crt", &s.other_ca_pem)
}

fn spec(url: String) -> LdapSource {
    LdapSource {
        url,
        root_path: BASE.into(),
        page_size: 1000,
        bind_secret_ref: Some(BindSecretRef {
            name: "bind".into(),
            username_key: "username".into(),
            password_key: "password".into(),
        }),
        users: LdapUsers {
            path: Some("ou=People".into()),
            ..Default::default()
        },
        groups: LdapGroups {
            path: Some("ou=Groups".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn ca(name: &str) -> Option<LdapTls> {
    Some(LdapTls {
        ca_secret_ref: Some(SecretKeyRef {
            name: name.into(),
            key: "ca.crt".into(),
        }),
        ..Default::default()
    })
}

fn full() -> ReadRequest {
    ReadRequest {
        users: true,
        groups: true,
        cursor: None,
    }
}

async fn read(spec: &LdapSource, secrets: &MemorySecrets, request: &ReadRequest) -> Result<ReadResult, Error> {
    let mut source = LdapDirectory::connect(spec, secrets).await?;
    source.read(request).await
}

fn p(uid: &str) -> String {
    format!("uid={uid},ou=People,{BASE}")
}

fn g(cn: &str) -> String {
    format!("cn={cn},ou=Groups,{BASE}")
}

fn by_id(users: &[User]) -> BTreeMap<String, User> {
    users.iter().map(|u| (u.external_id.clone(), u.clone())).collect()
}

fn group<'a>(groups: &'a [Group], name: &str) -> &'a Group {
    groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name}: {groups:?}"))
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

fn strs(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The DN the server returns for John (slapd may re-escape it); compared per RFC 4514.
fn john(users: &[User]) -> String {
    users
        .iter()
        .find(|u| dn::same(&u.external_id, &format!("cn=Smith\\, John,ou=People,{BASE}")))
        .expect("John is read")
        .external_id
        .clone()
}

#[tokio::test]
async fn plain_ldap_reads_users_groups_nesting_and_cycles() {
    let s = Slapd::start(&people());
    let r = read(&spec(s.ldap_url()), &secrets(&s), &full()).await.unwrap();
    let d = &r.directory;
    assert!(d.complete);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.cursor.is_empty(), "no revision attribute, no cursor: {:?}", r.cursor);
    let users = by_id(&d.users);
    assert_eq!(users.len(), 5, "{users:?}");
    // External id = DN exactly as returned; email trimmed and lower-cased.
    assert_eq!(users[&p("alice")].email.as_deref(), Some("alice@example.com"));
    assert_eq!(users[&p("bob")].email.as_deref(), Some("bob@example.com"));
    // No mail: kept, with no email.
    assert_eq!(users[&p("carol")].email, None);
    assert!(users.values().all(|u| !u.disabled && !u.deleted));
    let john = john(&d.users);

    assert_eq!(d.groups.len(), 3, "only groupOfNames by default: {:?}", d.groups);
    let eng = group(&d.groups, "engineering");
    assert_eq!(eng.external_id, g("engineering"));
    // Member DNs in another case and spacing match the user entries (RFC 4514).
    assert_eq!(set(&eng.members), strs(&[&p("alice"), &john]));
    assert_eq!(set(&eng.children), strs(&[&g("platform")]));
    let platform = group(&d.groups, "platform");
    // carol has no mail but stays a member; the ghost DN is ignored; the cycle is reported as is.
    assert_eq!(set(&platform.members), strs(&[&p("bob"), &p("carol")]));
    assert_eq!(set(&platform.children), strs(&[&g("engineering")]));
    let empty = group(&d.groups, "empty");
    assert!(empty.members.is_empty() && empty.children.is_empty());
}

#[tokio::test]
async fn group_of_unique_names_and_posix_groups() {
    let s = Slapd::start(&people());
    let mut sp = spec(s.ldap_url());
    sp.groups.object_class = Some("groupOfUniqueNames".into());
    sp.groups.member_attribute = Some("uniqueMember".into());
    let r = read(&sp, &secrets(&s), &full()).await.unwrap();
    assert_eq!(r.directory.groups.len(), 1);
    let ops = group(&r.directory.groups, "ops");
    assert_eq!(set(&ops.members), strs(&[&p("dave")]));
    // engineering is not a synced group here: ignored.
    assert!(ops.children.is_empty());

    sp.groups.object_class = Some("posixGroup".into());
    sp.groups.member_attribute = Some("memberUid".into());
    let r = read(&sp, &secrets(&s), &full()).await.unwrap();
    let posix = group(&r.directory.groups, "posix");
    // memberUid matched case-insensitively to uid; unknown uids ignored.
    assert_eq!(set(&posix.members), strs(&[&p("alice"), &p("dave")]));
}

#[tokio::test]
async fn prefix_and_suffix_give_users_without_mail_an_email() {
    let s = Slapd::start(&people());
    let mut sp = spec(s.ldap_url());
    sp.users.email_prefix_attribute = Some("uid".into());
    sp.users.email_suffix = Some("@Corp.Example".into());
    let r = read(&sp, &secrets(&s), &full()).await.unwrap();
    let users = by_id(&r.directory.users);
    assert_eq!(users[&p("carol")].email.as_deref(), Some("carol@corp.example"));
    assert_eq!(users[&p("alice")].email.as_deref(), Some("alice@example.com"));
}

#[tokio::test]
async fn external_id_attribute_entry_uuid() {
    let s = Slapd::start(&people());
    let mut sp = spec(s.ldap_url());
    sp.users.external_id_attribute = Some("entryUUID".into());
    let r = read(&sp, &secrets(&s), &full()).await.unwrap();
    let d = &r.directory;
    assert_eq!(d.users.len(), 5);
    let uuid = |s: &str| s.len() == 36 && s.matches('-').count() == 4 && !s.contains('=');
    assert!(d.users.iter().all(|u| uuid(&u.external_id)), "{:?}", d.users);
    let alice = d
        .users
        .iter()
        .find(|u| u.email.as_deref() == Some("alice@example.com"))
        .unwrap();
    let eng = group(&d.groups, "engineering");
    assert!(eng.members.contains(&alice.external_id), "{eng:?}");
    assert_eq!(eng.members.len(), 2);
    assert!(eng.members.iter().all(|m| uuid(m)));
}

#[tokio::test]
async fn a_filter_that_matches_nothing_is_an_empty_result() {
    let s = Slapd::start(&people());
    let mut sp = spec(s.ldap_url());
    sp.users.filter = Some("(uid=nobody-at-all)".into());
    sp.groups.filter = Some("(cn=nothing)".into());
    let r = read(&sp, &secrets(&s), &full()).await.unwrap();
    assert!(r.directory.users.is_empty());
    assert!(r.directory.groups.is_empty());
    assert!(r.directory.complete);

    sp.users.filter = Some("(mail=*)".into());
    sp.groups.filter = None;
    let r = read(&sp, &secrets(&s), &full()).await.unwrap();
    assert_eq!(r.directory.users.len(), 4);
    // carol is not a synced user now: platform no longer lists her.
    assert_eq!(set(&group(&r.directory.groups, "platform").members), strs(&[&p("bob")]));
}

#[tokio::test]
async fn paging_reads_past_the_server_size_limit() {
    let s = Slapd::start(&people());
    let mut sp = spec(s.ldap_url());
    sp.users.path = Some("ou=Bulk".into());
    sp.page_size = 4;
    let r = read(
        &sp,
        &secrets(&s),
        &ReadRequest {
            users: true,
            groups: false,
            cursor: None,
        },
    )
    .await
    .unwrap();
    // Without paging the server stops at its size limit for this account.
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&s.ldap_url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(READER_DN, READER_PW).await.unwrap().success().unwrap();
    let base = format!("ou=Bulk,{BASE}");
    let res = ldap
        .search(&base, ldap3::Scope::Subtree, "(uid=*)", vec!["1.1"])
        .await
        .unwrap();
    assert_eq!(res.1.rc, 4, "sizeLimitExceeded without paging");
    assert_eq!(res.0.len(), slapd::SIZE_LIMIT);
    assert_eq!(r.directory.users.len(), 25);
    let emails: BTreeSet<_> = r.directory.users.iter().filter_map(|u| u.email.clone()).collect();
    assert_eq!(emails.len(), 25);
}

#[tokio::test]
async fn starttls_and_ldaps_with_the_ca_from_a_secret() {
    let s = Slapd::start(&people());
    let secrets = secrets(&s);
    let mut sp = spec(s.ldap_url());
    sp.start_tls = true;
    sp.tls = ca("ca");
    let r = read(&sp, &secrets, &full()).await.unwrap();
    assert_eq!(r.directory.users.len(), 5);
    assert!(r.warnings.is_empty());

    let mut sp = spec(s.ldaps_url());
    sp.tls = ca("ca");
    let r = read(&sp, &secrets, &full()).await.unwrap();
    assert_eq!(r.directory.users.len(), 5);
    assert_eq!(r.directory.groups.len(), 3);
}

#[tokio::test]
async fn a_wrong_ca_is_a_tls_error_and_insecure_skip_verify_is_reported() {
    let s = Slapd::start(&people());
    let secrets = secrets(&s);
    let mut sp = spec(s.ldaps_url());
    sp.tls = ca("other-ca");
    let err = read(&sp, &secrets, &full()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::SourceUnavailable(_)), "{err:?}");
    assert!(
        msg.contains("TLS handshake") && msg.contains("not trusted") && msg.contains("tls.caSecretRef"),
        "{msg}"
    );

    let mut sp = spec(s.ldap_url());
    sp.start_tls = true;
    sp.tls = ca("other-ca");
    let err = read(&sp, &secrets, &full()).await.unwrap_err();
    assert!(
        matches!(err, Error::SourceUnavailable(_)) && err.to_string().contains("StartTLS"),
        "{err:?}"
    );

    let mut sp = spec(s.ldaps_url());
    sp.tls = Some(LdapTls {
        insecure_skip_verify: true,
        ..Default::default()
    });
    let r = read(&sp, &secrets, &full()).await.unwrap();
    assert_eq!(r.directory.users.len(), 5);
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].contains("verification is off"), "{:?}", r.warnings);

    // TLS against the plain port.
    let mut sp = spec(format!("ldaps://127.0.0.1:{}", s.port));
    sp.tls = ca("ca");
    let err = read(&sp, &secrets, &full()).await.unwrap_err();
    assert!(
        matches!(err, Error::SourceUnavailable(_)) && err.to_string().contains("TLS"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_names_the_bind_dn_but_not_the_password() {
    let s = Slapd::start(&people());
    let secrets = secrets(&s).with("bind", "password", "not-the-password");
    let err = read(&spec(s.ldap_url()), &secrets, &full()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::SourceAuthFailed(_)), "{err:?}");
    assert!(msg.contains(READER_DN) && msg.contains("invalid credentials"), "{msg}");
    assert!(!msg.contains("not-the-password"), "{msg}");
}

#[tokio::test]
async fn anonymous_bind_when_no_secret_is_given() {
    let s = Slapd::start(&people());
    let mut sp = spec(s.ldap_url());
    sp.bind_secret_ref = None;
    sp.page_size = 3;
    let r = read(&sp, &MemorySecrets::new(), &full()).await.unwrap();
    assert_eq!(r.directory.users.len(), 5);
}

#[tokio::test]
async fn unreachable_server_and_timeouts() {
    let port = slapd::free_port();
    let mut sp = spec(format!("ldap://127.0.0.1:{port}"));
    sp.timeout = Some("2s".into());
    let err = read(
        &sp,
        &MemorySecrets::new()
            .with("bind", "username", "x")
            .with("bind", "password", "y"),
        &full(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::SourceUnavailable(_)), "{err:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");

    // A server that accepts the connection but never answers: the operation timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut sp = spec(format!("ldap://127.0.0.1:{port}"));
    sp.timeout = Some("1s".into());
    let started = std::time::Instant::now();
    let err = read(
        &sp,
        &MemorySecrets::new()
            .with("bind", "username", "x")
            .with("bind", "password", "y"),
        &full(),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(matches!(err, Error::SourceUnavailable(_)), "{err:?}");
    assert!(err.to_string().contains("within 1s"), "{err}");
    drop(silent);
}

#[tokio::test]
async fn a_missing_base_dn_is_invalid_spec_on_the_path() {
    let s = Slapd::start(&people());
    let mut sp = spec(s.ldap_url());
    sp.users.path = Some("ou=Nowhere".into());
    let err = read(&sp, &secrets(&s), &full()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidSpec(_)), "{err:?}");
    assert!(err.to_string().contains("spec.source.ldap.users.path"), "{err}");
}

async fn modify(s: &Slapd, dn: &str, attr: &str, values: &[&str]) {
    use std::collections::HashSet;
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&s.ldap_url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ROOT_DN, ROOT_PW).await.unwrap().success().unwrap();
    let vals: HashSet<&str> = values.iter().copied().collect();
    ldap.modify(dn, vec![ldap3::Mod::Replace(attr, vals)])
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap.unbind().await.unwrap();
}

#[tokio::test]
async fn incremental_reads_with_modify_timestamp() {
    let s = Slapd::start(&people());
    let secrets = secrets(&s);
    let mut sp = spec(s.ldap_url());
    sp.revision_date_attribute = Some("modifyTimestamp".into());
    let first = read(&sp, &secrets, &full()).await.unwrap();
    assert!(first.directory.complete);
    assert_eq!(first.directory.users.len(), 5);
    assert!(first.cursor.contains_key(CURSOR_LAST_READ), "{:?}", first.cursor);

    // Only bob changes: an incremental read returns him and no groups.
    modify(&s, &p("bob"), "mail", &["Bob2@Example.com"]).await;
    let incr = ReadRequest {
        users: true,
        groups: true,
        cursor: Some(first.cursor.clone()),
    };
    let r = read(&sp, &secrets, &incr).await.unwrap();
    assert!(!r.directory.complete);
    assert_eq!(r.directory.users.len(), 1, "{:?}", r.directory.users);
    assert_eq!(r.directory.users[0].email.as_deref(), Some("bob2@example.com"));
    assert!(r.directory.groups.is_empty());
    assert!(r.cursor[CURSOR_LAST_READ] >= first.cursor[CURSOR_LAST_READ]);

    // A group changes: all groups are read again, members resolved against every user.
    modify(&s, &g("platform"), "member", &[&p("bob")]).await;
    let r = read(&sp, &secrets, &incr).await.unwrap();
    assert!(!r.directory.complete);
    assert_eq!(r.directory.users.len(), 1);
    assert_eq!(r.directory.groups.len(), 3);
    let eng = group(&r.directory.groups, "engineering");
    assert!(eng.members.contains(&p("alice")), "{eng:?}");
    assert_eq!(set(&group(&r.directory.groups, "platform").members), strs(&[&p("bob")]));

    // Without a cursor: full again.
    let r = read(&sp, &secrets, &full()).await.unwrap();
    assert!(r.directory.complete);
    assert_eq!(r.directory.users.len(), 5);
}

#[tokio::test]
async fn a_server_that_demands_a_client_certificate_gets_the_one_from_the_secret() {
    let s = Slapd::start_with(&people(), "TLSVerifyClient demand");
    slapd::make_leaf(s.dir.path(), "ca", "client", false);
    let read_pem = |f: &str| std::fs::read_to_string(s.path(f)).unwrap();
    let secrets =
        secrets(&s)
            .with("client", "tls.crt", read_pem("client.crt"))
            .with("client", "tls.key", read_pem("client.key"));

    // Without a client certificate the server ends the handshake.
    let mut sp = spec(s.ldaps_url());
    sp.tls = ca("ca");
    let err = read(&sp, &secrets, &full()).await.unwrap_err();
    assert!(matches!(err, Error::SourceUnavailable(_)), "{err:?}");

    // With it (a kubernetes.io/tls Secret), the read works over LDAPS and StartTLS.
    let with_cert = |mut tls: LdapTls| {
        tls.client_cert_secret_ref = Some(SecretRef { name: "client".into() });
        Some(tls)
    };
    sp.tls = with_cert(ca("ca").unwrap());
    let r = read(&sp, &secrets, &full()).await.unwrap();
    assert_eq!(r.directory.users.len(), 5);
    let mut sp = spec(s.ldap_url());
    sp.start_tls = true;
    sp.tls = with_cert(ca("ca").unwrap());
    assert_eq!(read(&sp, &secrets, &full()).await.unwrap().directory.users.len(), 5);
}
