//! The effective settings of an LDAP source: the spec plus the defaults (AD or generic), as a
//! pure function so every default is a unit test.

use std::time::Duration;

use crate::Error;
use crate::api::LdapSource;
use crate::api::checks::{FieldErrors, is_loopback_host};
use crate::api::validate::secret_key_ref;

const P: &str = "spec.source.ldap";

/// The default connect and per-operation timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub url: String,
    /// `host:port`, for messages.
    pub endpoint: String,
    pub ldaps: bool,
    pub start_tls: bool,
    /// Plain `ldap://` to a host that is not loopback, allowed by `allowCleartext`.
    pub cleartext: bool,
    pub active_directory: bool,
    pub page_size: u32,
    pub timeout: Duration,
    pub users: UserSettings,
    pub groups: GroupSettings,
    pub revision_date_attribute: Option<String>,
    /// AD: where tombstones of deleted users live (`CN=Deleted Objects,<rootPath>`).
    pub deleted_objects_base: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSettings {
    pub base: String,
    /// The spec field a wrong base is reported on.
    pub base_field: String,
    pub object_class: String,
    /// `(&(objectClass=<class>)<filter>)`, or `(objectClass=<class>)` without a filter.
    pub filter: String,
    pub email_attribute: String,
    pub email_prefix_attribute: Option<String>,
    pub email_suffix: Option<String>,
    pub external_id_attribute: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    pub base: String,
    pub base_field: String,
    pub object_class: String,
    pub filter: String,
    pub name_attribute: String,
    pub member_attribute: String,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `<path>,<rootPath>`, or `rootPath` when there is no path.
pub fn search_base(path: Option<&str>, root: &str) -> String {
    let root = root.trim();
    match path.map(str::trim).filter(|p| !p.is_empty()) {
        None => root.to_string(),
        Some(p) if root.is_empty() => p.to_string(),
        Some(p) => format!("{p},{root}"),
    }
}

/// `(&(objectClass=<class>)<filter>)` (parity), or just the class filter when none is set.
pub fn class_filter(object_class: &str, filter: Option<&str>) -> String {
    let class = format!("(objectClass={object_class})");
    match filter.map(str::trim).filter(|f| !f.is_empty()) {
        None => class,
        Some(f) => format!("(&{class}{f})"),
    }
}

/// Whether a filter's parentheses balance (backslash escapes skipped).
fn balanced(filter: &str) -> bool {
    let mut depth = 0i32;
    let mut escaped = false;
    for c in filter.chars() {
        match c {
            '\\' => escaped = !escaped,
            '(' if !escaped => depth += 1,
            ')' if !escaped => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    depth == 0
}

/// Adds a "changed since" condition to a filter.
pub fn changed_since(filter: &str, attribute: &str, time: &str) -> String {
    format!("(&{filter}({attribute}>={time}))")
}

/// Resolves the spec into effective settings, or says everything that is wrong with it.
pub fn resolve(spec: &LdapSource) -> Result<Settings, Error> {
    check(spec).map_err(|e| Error::InvalidSpec(e.into_vec()))
}

/// Checks every field and resolves the defaults: the one place the LDAP settings are validated.
pub fn check(spec: &LdapSource) -> Result<Settings, FieldErrors> {
    let mut e = FieldErrors::default();
    let url = e.url(&format!("{P}.url"), &spec.url, &["ldaps", "ldap"], &[]);
    if let Some(url) = &url {
        let plain = url.scheme() == "ldap";
        if !plain && spec.start_tls {
            e.add(
                &format!("{P}.startTls"),
                "StartTLS is for ldap:// URLs; an ldaps:// connection is already encrypted",
            );
        }
        let loopback = url.host_str().is_some_and(is_loopback_host);
        if plain && !spec.start_tls && !loopback && !spec.allow_cleartext {
            e.add(
                &format!("{P}.url"),
                "plain ldap:// to a host that is not loopback is unencrypted and unauthenticated: \
                 anyone on the path can read the bind password and forge the directory's answers \
                 (and so who is invited). Use ldaps://, or set startTls: true, or, only if you \
                 accept that, allowCleartext: true",
            );
        }
    }
    e.non_empty(&format!("{P}.rootPath"), &spec.root_path);
    if spec.page_size == 0 || spec.page_size > 10_000 {
        e.add(&format!("{P}.pageSize"), "must be between 1 and 10000");
    }
    let timeout = e.optional_duration(&format!("{P}.timeout"), &spec.timeout);
    if let Some(b) = &spec.bind_secret_ref {
        e.non_empty(&format!("{P}.bindSecretRef.name"), &b.name);
        e.non_empty(&format!("{P}.bindSecretRef.usernameKey"), &b.username_key);
        e.non_empty(&format!("{P}.bindSecretRef.passwordKey"), &b.password_key);
    }
    if let Some(tls) = &spec.tls {
        if let Some(ca) = &tls.ca_secret_ref {
            secret_key_ref(&mut e, &format!("{P}.tls.caSecretRef"), ca);
        }
        if let Some(c) = &tls.client_cert_secret_ref {
            e.non_empty(&format!("{P}.tls.clientCertSecretRef.name"), &c.name);
        }
    }
    for (path, filter) in [("users", &spec.users.filter), ("groups", &spec.groups.filter)] {
        if let Some(f) = filter.as_deref().map(str::trim)
            && !f.is_empty()
            && !(f.starts_with('(') && f.ends_with(')') && balanced(f))
        {
            e.add(
                &format!("{P}.{path}.filter"),
                "must be an LDAP filter in parentheses, e.g. (department=Sales)",
            );
        }
    }
    let Some(url) = url.filter(|_| e.is_empty()) else {
        return Err(e);
    };
    let ldaps = url.scheme() == "ldaps";
    let host = url.host_str().unwrap_or_default();
    let cleartext = !ldaps && !spec.start_tls && !is_loopback_host(host);
    let port = url.port().unwrap_or(if ldaps { 636 } else { 389 });
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    let ad = spec.active_directory;
    let root = spec.root_path.trim();
    let u = &spec.users;
    let g = &spec.groups;
    let ad_path = |p: &Option<String>| match non_empty(p) {
        Some(p) => Some(p),
        None if ad => Some("CN=Users".to_string()),
        None => None,
    };
    let field = |path: &Option<String>, kind: &str| {
        if non_empty(path).is_some() || ad {
            format!("{P}.{kind}.path")
        } else {
            format!("{P}.rootPath")
        }
    };
    let user_class =
        non_empty(&u.object_class).unwrap_or_else(|| if ad { "person" } else { "inetOrgPerson" }.to_string());
    let group_class =
        non_empty(&g.object_class).unwrap_or_else(|| if ad { "group" } else { "groupOfNames" }.to_string());
    let users = UserSettings {
        base: search_base(ad_path(&u.path).as_deref(), root),
        base_field: field(&u.path, "users"),
        filter: class_filter(&user_class, u.filter.as_deref()),
        object_class: user_class,
        email_attribute: non_empty(&u.email_attribute).unwrap_or_else(|| "mail".into()),
        email_prefix_attribute: non_empty(&u.email_prefix_attribute)
            .or_else(|| ad.then(|| "sAMAccountName".to_string())),
        email_suffix: non_empty(&u.email_suffix),
        external_id_attribute: non_empty(&u.external_id_attribute),
    };
    let groups = GroupSettings {
        base: search_base(ad_path(&g.path).as_deref(), root),
        base_field: field(&g.path, "groups"),
        filter: class_filter(&group_class, g.filter.as_deref()),
        object_class: group_class,
        name_attribute: non_empty(&g.name_attribute).unwrap_or_else(|| if ad { "name" } else { "cn" }.to_string()),
        member_attribute: non_empty(&g.member_attribute).unwrap_or_else(|| "member".into()),
    };
    Ok(Settings {
        url: spec.url.trim().to_string(),
        endpoint: format!("{host}:{port}"),
        ldaps,
        start_tls: spec.start_tls,
        cleartext,
        active_directory: ad,
        page_size: spec.page_size.clamp(1, 10_000),
        timeout,
        users,
        groups,
        revision_date_attribute: non_empty(&spec.revision_date_attribute)
            .or_else(|| ad.then(|| "whenChanged".to_string())),
        deleted_objects_base: ad.then(|| search_base(Some("CN=Deleted Objects"), root)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LdapGroups, LdapUsers};

    fn spec(ad: bool) -> LdapSource {
        LdapSource {
            url: "ldaps://dc1.corp.example".into(),
            active_directory: ad,
            root_path: "dc=corp,dc=example".into(),
            page_size: 1000,
            ..Default::default()
        }
    }

    #[test]
    fn generic_defaults() {
        let s = resolve(&spec(false)).unwrap();
        assert_eq!(s.endpoint, "dc1.corp.example:636");
        assert!(s.ldaps);
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.users.base, "dc=corp,dc=example");
        assert_eq!(s.users.base_field, "spec.source.ldap.rootPath");
        assert_eq!(s.users.filter, "(objectClass=inetOrgPerson)");
        assert_eq!(s.users.email_attribute, "mail");
        assert_eq!(s.users.email_prefix_attribute, None);
        assert_eq!(s.users.external_id_attribute, None);
        assert_eq!(s.groups.base, "dc=corp,dc=example");
        assert_eq!(s.groups.filter, "(objectClass=groupOfNames)");
        assert_eq!(s.groups.name_attribute, "cn");
        assert_eq!(s.groups.member_attribute, "member");
        assert_eq!(s.revision_date_attribute, None);
        assert_eq!(s.deleted_objects_base, None);
    }

    #[test]
    fn active_directory_defaults() {
        let s = resolve(&spec(true)).unwrap();
        assert_eq!(s.users.base, "CN=Users,dc=corp,dc=example");
        assert_eq!(s.users.base_field, "spec.source.ldap.users.path");
        assert_eq!(s.users.filter, "(objectClass=person)");
        assert_eq!(s.users.email_prefix_attribute.as_deref(), Some("sAMAccountName"));
        assert_eq!(s.groups.base, "CN=Users,dc=corp,dc=example");
        assert_eq!(s.groups.filter, "(objectClass=group)");
        assert_eq!(s.groups.name_attribute, "name");
        assert_eq!(s.groups.member_attribute, "member");
        assert_eq!(s.revision_date_attribute.as_deref(), Some("whenChanged"));
        assert_eq!(
            s.deleted_objects_base.as_deref(),
            Some("CN=Deleted Objects,dc=corp,dc=example")
        );
    }

    #[test]
    fn explicit_values_win_over_defaults() {
        let mut sp = spec(true);
        sp.url = "ldap://127.0.0.1:3389".into();
        sp.timeout = Some("5s".into());
        sp.revision_date_attribute = Some("modifyTimestamp".into());
        sp.users = LdapUsers {
            path: Some("ou=People".into()),
            object_class: Some("user".into()),
            filter: Some(" (department=Sales) ".into()),
            email_attribute: Some("userPrincipalName".into()),
            email_prefix_attribute: Some("uid".into()),
            email_suffix: Some("@corp.example".into()),
            external_id_attribute: Some("entryUUID".into()),
        };
        sp.groups = LdapGroups {
            path: Some("ou=Groups".into()),
            object_class: Some("posixGroup".into()),
            filter: Some("(cn=eng*)".into()),
            name_attribute: Some("cn".into()),
            member_attribute: Some("memberUid".into()),
        };
        let s = resolve(&sp).unwrap();
        assert_eq!(s.endpoint, "127.0.0.1:3389");
        assert!(!s.ldaps);
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.users.base, "ou=People,dc=corp,dc=example");
        assert_eq!(s.users.filter, "(&(objectClass=user)(department=Sales))");
        assert_eq!(s.users.email_attribute, "userPrincipalName");
        assert_eq!(s.users.email_prefix_attribute.as_deref(), Some("uid"));
        assert_eq!(s.users.email_suffix.as_deref(), Some("@corp.example"));
        assert_eq!(s.users.external_id_attribute.as_deref(), Some("entryUUID"));
        assert_eq!(s.groups.base, "ou=Groups,dc=corp,dc=example");
        assert_eq!(s.groups.filter, "(&(objectClass=posixGroup)(cn=eng*))");
        assert_eq!(s.groups.member_attribute, "memberUid");
        assert_eq!(s.revision_date_attribute.as_deref(), Some("modifyTimestamp"));
    }

    #[test]
    fn helpers() {
        assert_eq!(search_base(None, "dc=x"), "dc=x");
        assert_eq!(search_base(Some(" "), "dc=x"), "dc=x");
        assert_eq!(search_base(Some("ou=a"), "dc=x"), "ou=a,dc=x");
        assert_eq!(class_filter("person", Some("")), "(objectClass=person)");
        assert_eq!(
            changed_since("(objectClass=person)", "whenChanged", "20240101000000Z"),
            "(&(objectClass=person)(whenChanged>=20240101000000Z))"
        );
    }

    fn paths(spec: &LdapSource) -> Vec<String> {
        match check(spec) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_vec().into_iter().map(|e| e.path).collect(),
        }
    }

    #[test]
    fn plain_ldap_needs_starttls_or_an_explicit_opt_in_except_on_loopback() {
        let mut sp = spec(false);
        let set = |sp: &mut LdapSource, url: &str, start_tls: bool, allow: bool| {
            sp.url = url.into();
            sp.start_tls = start_tls;
            sp.allow_cleartext = allow;
        };
        // Anonymous or not: a forged directory could get anyone invited.
        for bind in [None, Some("bind")] {
            sp.bind_secret_ref = bind.map(|name| crate::api::BindSecretRef {
                name: name.into(),
                username_key: "username".into(),
                password_key: "password".into(),
            });
            set(&mut sp, "ldap://ldap.corp.example:389", false, false);
            assert_eq!(paths(&sp), vec!["spec.source.ldap.url"], "bind {bind:?}");
        }
        set(&mut sp, "ldap://dc1.corp.example", false, false);
        assert_eq!(paths(&sp), vec!["spec.source.ldap.url"]);
        set(&mut sp, "ldap://dc1.corp.example", true, false);
        assert!(paths(&sp).is_empty());
        set(&mut sp, "ldap://dc1.corp.example", false, true);
        assert!(paths(&sp).is_empty());
        set(&mut sp, "ldap://127.0.0.1:3890", false, false);
        assert!(paths(&sp).is_empty());
        set(&mut sp, "ldap://localhost:3890", false, false);
        assert!(paths(&sp).is_empty());
        set(&mut sp, "ldaps://dc1.corp.example", true, false);
        assert_eq!(paths(&sp), vec!["spec.source.ldap.startTls"]);
        set(&mut sp, "http://dc1.corp.example", false, false);
        assert_eq!(paths(&sp), vec!["spec.source.ldap.url"]);
    }

    #[test]
    fn ldap_filters_must_be_parenthesised() {
        let mut sp = spec(false);
        sp.users.filter = Some("department=Sales".into());
        sp.groups.filter = Some("(&(cn=a)".into());
        assert_eq!(
            paths(&sp),
            vec!["spec.source.ldap.users.filter", "spec.source.ldap.groups.filter"]
        );
        sp.users.filter = Some("(cn=a\\29b)".into());
        sp.groups.filter = Some("(&(cn=a)(!(cn=b)))".into());
        assert!(paths(&sp).is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let sp = LdapSource {
            url: "ldaps://dc1".into(),
            root_path: " ".into(),
            page_size: 0,
            timeout: Some("0s".into()),
            ..Default::default()
        };
        assert_eq!(
            paths(&sp),
            [
                "spec.source.ldap.rootPath",
                "spec.source.ldap.pageSize",
                "spec.source.ldap.timeout"
            ]
        );
    }

    #[test]
    fn bad_timeout_is_invalid_spec() {
        let mut sp = spec(false);
        sp.timeout = Some("soon".into());
        let err = resolve(&sp).unwrap_err();
        assert!(err.to_string().contains("spec.source.ldap.timeout"), "{err}");
    }
}
