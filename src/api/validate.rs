//! Spec validation: the rules the CRD schema states (so they also hold where the apiserver does
//! not enforce them, and for the CLI) plus what a schema cannot say. Every problem is returned at
//! once, each with its field path, so a user fixes them in one edit.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

use super::*;

/// The shortest sync interval (as Directory Connector).
pub const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn non_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(path, "must not be empty");
        }
    }

    fn url(&mut self, path: &str, value: &str, schemes: &[&str], loopback_schemes: &[&str]) {
        match check_url(value, schemes, loopback_schemes) {
            Ok(_) => {}
            Err(message) => self.add(path, message),
        }
    }

    fn optional_url(&mut self, path: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.url(path, v, &["https"], &["http"]);
        }
    }
}

/// Checks a spec; returns every problem found.
pub fn validate(spec: &DirectorySyncSpec) -> Result<(), Vec<FieldError>> {
    let mut e = Errors::default();
    validate_bitwarden(&mut e, &spec.bitwarden);
    validate_source(&mut e, &spec.source);
    validate_sync(&mut e, &spec.sync);
    if e.0.is_empty() { Ok(()) } else { Err(e.0) }
}

fn validate_bitwarden(e: &mut Errors, bw: &BitwardenSpec) {
    if bw.server_url.is_some() && bw.region.is_some() {
        e.add(
            "spec.bitwarden.region",
            "set either region (Bitwarden cloud) or serverUrl (self-hosted), not both",
        );
    }
    if let Some(base) = &bw.server_url {
        // Checked as the client will use it: a URL without a scheme gets https://.
        let url = crate::bitwarden::urls::normalize(base);
        e.url("spec.bitwarden.serverUrl", &url, &["https"], &["http"]);
    }
    e.optional_url("spec.bitwarden.apiUrl", &bw.api_url);
    e.optional_url("spec.bitwarden.identityUrl", &bw.identity_url);
    e.non_empty("spec.bitwarden.apiKeySecretRef.name", &bw.api_key_secret_ref.name);
    e.non_empty(
        "spec.bitwarden.apiKeySecretRef.clientIdKey",
        &bw.api_key_secret_ref.client_id_key,
    );
    e.non_empty(
        "spec.bitwarden.apiKeySecretRef.clientSecretKey",
        &bw.api_key_secret_ref.client_secret_key,
    );
    if let Some(ca) = &bw.ca_secret_ref {
        secret_key_ref(e, "spec.bitwarden.caSecretRef", ca);
    }
    if let Some(t) = &bw.timeout {
        match parse_duration(t) {
            Ok(d) if d.is_zero() => e.add("spec.bitwarden.timeout", "must be more than 0s"),
            Ok(d) if d > Duration::from_secs(30 * 60) => e.add("spec.bitwarden.timeout", "must be at most 30m"),
            Ok(_) => {}
            Err(m) => e.add("spec.bitwarden.timeout", m),
        }
    }
}

fn secret_key_ref(e: &mut Errors, path: &str, r: &SecretKeyRef) {
    e.non_empty(&format!("{path}.name"), &r.name);
    e.non_empty(&format!("{path}.key"), &r.key);
}

fn validate_source(e: &mut Errors, source: &SourceSpec) {
    let configured = source.configured();
    match configured.len() {
        0 => e.add(
            "spec.source",
            "set exactly one of ldap, entraId, googleWorkspace, okta, oneLogin",
        ),
        1 => {}
        _ => e.add(
            "spec.source",
            format!("set exactly one source, found {}", configured.join(" and ")),
        ),
    }
    if let Some(ldap) = &source.ldap {
        validate_ldap(e, ldap);
    }
    if let Some(entra) = &source.entra_id {
        let p = "spec.source.entraId";
        e.non_empty(&format!("{p}.tenantId"), &entra.tenant_id);
        let c = &entra.credentials_secret_ref;
        e.non_empty(&format!("{p}.credentialsSecretRef.name"), &c.name);
        if c.certificate_key.is_some() != c.private_key_key.is_some() {
            e.add(
                &format!("{p}.credentialsSecretRef"),
                "certificateKey and privateKeyKey go together",
            );
        }
        e.optional_url(&format!("{p}.authorityUrl"), &entra.authority_url);
        e.optional_url(&format!("{p}.graphUrl"), &entra.graph_url);
        cloud_filter(e, &format!("{p}.userFilter"), &entra.user_filter, true);
        cloud_filter(e, &format!("{p}.groupFilter"), &entra.group_filter, true);
    }
    if let Some(g) = &source.google_workspace {
        let p = "spec.source.googleWorkspace";
        e.non_empty(&format!("{p}.domain"), &g.domain);
        e.non_empty(&format!("{p}.adminEmail"), &g.admin_email);
        if !g.admin_email.contains('@') {
            e.add(&format!("{p}.adminEmail"), "must be an email address");
        }
        secret_key_ref(
            e,
            &format!("{p}.serviceAccountKeySecretRef"),
            &g.service_account_key_secret_ref,
        );
        e.optional_url(&format!("{p}.apiUrl"), &g.api_url);
        cloud_filter(e, &format!("{p}.userFilter"), &g.user_filter, false);
        cloud_filter(e, &format!("{p}.groupFilter"), &g.group_filter, false);
    }
    if let Some(o) = &source.okta {
        let p = "spec.source.okta";
        e.url(&format!("{p}.orgUrl"), &o.org_url, &["https"], &["http"]);
        secret_key_ref(e, &format!("{p}.tokenSecretRef"), &o.token_secret_ref);
        cloud_filter(e, &format!("{p}.userFilter"), &o.user_filter, false);
        cloud_filter(e, &format!("{p}.groupFilter"), &o.group_filter, false);
    }
    if let Some(o) = &source.one_login {
        let p = "spec.source.oneLogin";
        e.non_empty(
            &format!("{p}.credentialsSecretRef.name"),
            &o.credentials_secret_ref.name,
        );
        if let Some(sub) = &o.subdomain
            && (sub.is_empty() || !sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            e.add(&format!("{p}.subdomain"), "must be a DNS label (letters, digits, '-')");
        }
        e.optional_url(&format!("{p}.apiUrl"), &o.api_url);
        cloud_filter(e, &format!("{p}.userFilter"), &o.user_filter, false);
        cloud_filter(e, &format!("{p}.groupFilter"), &o.group_filter, false);
    }
}

fn validate_ldap(e: &mut Errors, ldap: &LdapSource) {
    let p = "spec.source.ldap";
    match check_url(&ldap.url, &["ldaps", "ldap"], &[]) {
        Err(message) => e.add(&format!("{p}.url"), message),
        Ok(url) => {
            let plain = url.scheme() == "ldap";
            if !plain && ldap.start_tls {
                e.add(
                    &format!("{p}.startTls"),
                    "StartTLS is for ldap:// URLs; an ldaps:// connection is already encrypted",
                );
            }
            let loopback = url.host_str().is_some_and(is_loopback_host);
            if plain && !ldap.start_tls && !loopback && ldap.bind_secret_ref.is_some() && !ldap.allow_insecure_bind {
                e.add(
                    &format!("{p}.url"),
                    "a simple bind over plain ldap:// sends the password in clear text: use \
                     ldaps://, set startTls: true, or set allowInsecureBind: true",
                );
            }
        }
    }
    e.non_empty(&format!("{p}.rootPath"), &ldap.root_path);
    if ldap.page_size == 0 || ldap.page_size > 10_000 {
        e.add(&format!("{p}.pageSize"), "must be between 1 and 10000");
    }
    if let Some(t) = &ldap.timeout {
        match parse_duration(t) {
            Ok(d) if d.is_zero() => e.add(&format!("{p}.timeout"), "must be more than 0s"),
            Ok(_) => {}
            Err(m) => e.add(&format!("{p}.timeout"), m),
        }
    }
    if let Some(b) = &ldap.bind_secret_ref {
        e.non_empty(&format!("{p}.bindSecretRef.name"), &b.name);
        e.non_empty(&format!("{p}.bindSecretRef.usernameKey"), &b.username_key);
        e.non_empty(&format!("{p}.bindSecretRef.passwordKey"), &b.password_key);
    }
    if let Some(tls) = &ldap.tls {
        if let Some(ca) = &tls.ca_secret_ref {
            secret_key_ref(e, &format!("{p}.tls.caSecretRef"), ca);
        }
        if let Some(c) = &tls.client_cert_secret_ref {
            e.non_empty(&format!("{p}.tls.clientCertSecretRef.name"), &c.name);
        }
    }
    for (path, filter) in [
        (format!("{p}.users.filter"), &ldap.users.filter),
        (format!("{p}.groups.filter"), &ldap.groups.filter),
    ] {
        if let Some(f) = filter {
            let f = f.trim();
            let well_formed = f.starts_with('(') && f.ends_with(')') && balanced(f);
            if !f.is_empty() && !well_formed {
                e.add(&path, "must be an LDAP filter in parentheses, e.g. (department=Sales)");
            }
        }
    }
}

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

fn cloud_filter(e: &mut Errors, path: &str, filter: &Option<String>, entra: bool) {
    if let Some(f) = filter
        && let Err(m) = crate::sync::filter::CloudFilter::parse(f, entra)
    {
        e.add(path, m);
    }
}

fn validate_sync(e: &mut Errors, sync: &SyncOptions) {
    match parse_duration(&sync.interval) {
        Ok(d) if d < MIN_INTERVAL => e.add("spec.sync.interval", "must be at least 5m (as Directory Connector)"),
        Ok(_) => {}
        Err(m) => e.add("spec.sync.interval", m),
    }
    if !sync.users && !sync.groups {
        e.add("spec.sync", "users and groups are both off: nothing would be synced");
    }
    if sync.guard.max_removal_percent > 100 {
        e.add("spec.sync.guard.maxRemovalPercent", "must be between 0 and 100");
    }
}

/// True for `localhost` and loopback IP addresses (`127.0.0.0/8`, `::1`).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses a URL whose scheme is one of `schemes`, or one of `loopback_schemes` when the host is a
/// loopback address.
pub fn check_url(value: &str, schemes: &[&str], loopback_schemes: &[&str]) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|err| format!("not a valid URL ({err})"))?;
    let host = url.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    let scheme = url.scheme();
    if schemes.contains(&scheme) || (loopback_schemes.contains(&scheme) && is_loopback_host(host)) {
        return Ok(url);
    }
    let mut allowed = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(" or ");
    if !loopback_schemes.is_empty() {
        let l = loopback_schemes
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(" or ");
        allowed = format!("{allowed} ({l} only for loopback hosts)");
    }
    Err(format!("must use {allowed}"))
}

/// Parses a Go/Kubernetes duration such as `1h`, `90s`, `1h30m` or `1.5h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (use e.g. 30s, 5m, 1h, 1h30m)");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 10.0 * 365.0 * 86400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ldap_spec() -> DirectorySyncSpec {
        serde_yaml_ng::from_str(
            r#"
bitwarden:
  apiKeySecretRef: {name: bw}
source:
  ldap:
    url: ldaps://dc1.corp.example:636
    rootPath: dc=corp,dc=example
    bindSecretRef: {name: bind}
"#,
        )
        .unwrap()
    }

    fn paths(spec: &DirectorySyncSpec) -> Vec<String> {
        validate(spec)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn a_minimal_ldap_spec_is_valid_and_gets_defaults() {
        let spec = ldap_spec();
        assert_eq!(validate(&spec), Ok(()));
        assert_eq!(spec.sync.interval, "1h");
        assert!(spec.sync.users && spec.sync.groups && spec.sync.invite_users);
        assert_eq!(
            spec.sync.guard,
            GuardSpec {
                max_removals: 10,
                max_removal_percent: 5
            }
        );
        assert_eq!(spec.mode, Mode::Apply);
        let ldap = spec.source.ldap.unwrap();
        assert_eq!(ldap.page_size, 1000);
        assert_eq!(ldap.bind_secret_ref.unwrap().password_key, "password");
    }

    #[test]
    fn the_bitwarden_timeout_is_a_duration_up_to_30m() {
        for (value, ok) in [
            ("90s", true),
            ("30m", true),
            ("0s", false),
            ("31m", false),
            ("soon", false),
        ] {
            let mut spec = ldap_spec();
            spec.bitwarden.timeout = Some(value.into());
            let expected: Vec<String> = if ok {
                vec![]
            } else {
                vec!["spec.bitwarden.timeout".into()]
            };
            assert_eq!(paths(&spec), expected, "{value}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let mut spec = ldap_spec();
        spec.sync.interval = "2m".into();
        spec.sync.guard.max_removal_percent = 101;
        spec.bitwarden.api_url = Some("http://bitwarden.example".into());
        spec.source.okta = Some(OktaSource {
            org_url: "https://x.okta.com".into(),
            token_secret_ref: SecretKeyRef {
                name: "t".into(),
                key: "token".into(),
            },
            ..Default::default()
        });
        let p = paths(&spec);
        assert_eq!(
            p,
            vec![
                "spec.bitwarden.apiUrl",
                "spec.source",
                "spec.sync.interval",
                "spec.sync.guard.maxRemovalPercent"
            ]
        );
    }

    #[test]
    fn no_source_is_invalid() {
        let mut spec = ldap_spec();
        spec.source = SourceSpec::default();
        assert_eq!(paths(&spec), vec!["spec.source"]);
    }

    #[test]
    fn plain_ldap_bind_needs_starttls_or_an_explicit_opt_in_except_on_loopback() {
        let mut spec = ldap_spec();
        let set = |spec: &mut DirectorySyncSpec, url: &str, start_tls: bool, allow: bool| {
            let l = spec.source.ldap.as_mut().unwrap();
            l.url = url.into();
            l.start_tls = start_tls;
            l.allow_insecure_bind = allow;
        };
        set(&mut spec, "ldap://dc1.corp.example", false, false);
        assert_eq!(paths(&spec), vec!["spec.source.ldap.url"]);
        set(&mut spec, "ldap://dc1.corp.example", true, false);
        assert!(paths(&spec).is_empty());
        set(&mut spec, "ldap://dc1.corp.example", false, true);
        assert!(paths(&spec).is_empty());
        set(&mut spec, "ldap://127.0.0.1:3890", false, false);
        assert!(paths(&spec).is_empty());
        set(&mut spec, "ldap://localhost:3890", false, false);
        assert!(paths(&spec).is_empty());
        set(&mut spec, "ldaps://dc1.corp.example", true, false);
        assert_eq!(paths(&spec), vec!["spec.source.ldap.startTls"]);
        set(&mut spec, "http://dc1.corp.example", false, false);
        assert_eq!(paths(&spec), vec!["spec.source.ldap.url"]);
    }

    #[test]
    fn urls_must_be_https_unless_loopback() {
        let mut spec = ldap_spec();
        for (url, ok) in [
            ("https://vault.example.com", true),
            ("vault.example.com", true),
            ("http://127.0.0.1:8080", true),
            ("http://[::1]:8080", true),
            ("http://localhost", true),
            ("http://vault.example.com", false),
            ("http://10.0.0.1", false),
            ("ftp://vault.example.com", false),
        ] {
            spec.bitwarden.server_url = Some(url.into());
            assert_eq!(paths(&spec).is_empty(), ok, "{url}");
        }
    }

    #[test]
    fn region_and_server_url_exclude_each_other() {
        let mut spec = ldap_spec();
        spec.bitwarden.region = Some(Region::EU);
        spec.bitwarden.server_url = Some("https://vault.example.com".into());
        assert_eq!(paths(&spec), vec!["spec.bitwarden.region"]);
    }

    #[test]
    fn ldap_filters_must_be_parenthesised() {
        let mut spec = ldap_spec();
        spec.source.ldap.as_mut().unwrap().users.filter = Some("department=Sales".into());
        spec.source.ldap.as_mut().unwrap().groups.filter = Some("(&(cn=a)".into());
        assert_eq!(
            paths(&spec),
            vec!["spec.source.ldap.users.filter", "spec.source.ldap.groups.filter"]
        );
        spec.source.ldap.as_mut().unwrap().users.filter = Some("(cn=a\\29b)".into());
        spec.source.ldap.as_mut().unwrap().groups.filter = Some("(&(cn=a)(!(cn=b)))".into());
        assert!(paths(&spec).is_empty());
    }

    #[test]
    fn cloud_filters_are_checked() {
        let mut spec = ldap_spec();
        spec.source.ldap = None;
        spec.source.okta = Some(OktaSource {
            org_url: "https://x.okta.com".into(),
            token_secret_ref: SecretKeyRef {
                name: "t".into(),
                key: "token".into(),
            },
            user_filter: Some("includes:a@x".into()),
            group_filter: Some("exclude:Sales|type eq \"OKTA_GROUP\"".into()),
        });
        assert_eq!(paths(&spec), vec!["spec.source.okta.userFilter"]);
    }

    #[test]
    fn durations_parse_like_kubernetes() {
        let ok = [
            ("1h", 3600.0),
            ("30m", 1800.0),
            ("90s", 90.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("500ms", 0.5),
        ];
        for (text, secs) in ok {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        for bad in ["", "h", "10", "5 minutes", "-5m", "1d", "m5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
