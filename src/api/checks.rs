//! Checks that spec validation and the clients share: field errors, URLs, durations. Pure
//! functions over strings, so validation and the code that later uses a value agree on it.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use url::Url;

/// One problem with one field of a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, e.g. `spec.source.ldap.url`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects every problem of a spec, so that a user fixes them all in one edit.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(path, message));
    }

    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.0.extend(errors);
    }

    /// `path` must not be empty (after trimming).
    pub fn non_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(path, "must not be empty");
        }
    }

    /// `path` must be a URL with one of `schemes` (or of `loopback_schemes` on a loopback host).
    pub fn url(&mut self, path: &str, value: &str, schemes: &[&str], loopback_schemes: &[&str]) -> Option<Url> {
        match check_url(value, schemes, loopback_schemes) {
            Ok(url) => Some(url),
            Err(message) => {
                self.add(path, message);
                None
            }
        }
    }

    /// An optional `https://` URL (`http://` only for loopback hosts).
    pub fn optional_https_url(&mut self, path: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.url(path, v, &["https"], &["http"]);
        }
    }

    /// A positive duration (`30s`, `5m`), when set.
    pub fn optional_duration(&mut self, path: &str, value: &Option<String>) -> Option<Duration> {
        match parse_duration(value.as_deref()?) {
            Ok(d) if d.is_zero() => {
                self.add(path, "must be more than 0s");
                None
            }
            Ok(d) => Some(d),
            Err(m) => {
                self.add(path, m);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
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
    let list = |s: &[&str]| s.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ");
    let mut allowed = list(schemes);
    if !loopback_schemes.is_empty() {
        allowed = format!("{allowed} ({} only for loopback hosts)", list(loopback_schemes));
    }
    Err(format!("must use {allowed}"))
}

/// A UUID in its text form (`8-4-4-4-12` hex digits, either case), as Bitwarden ids are.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Trims whitespace and trailing slashes; adds `https://` when there is no scheme.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    }
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

    #[test]
    fn urls_need_an_allowed_scheme_and_a_host() {
        assert!(check_url("https://vault.example.com", &["https"], &["http"]).is_ok());
        assert!(check_url("http://127.0.0.1:8080", &["https"], &["http"]).is_ok());
        assert!(check_url("http://[::1]:8080", &["https"], &["http"]).is_ok());
        assert!(check_url("http://localhost", &["https"], &["http"]).is_ok());
        let err = check_url("http://10.0.0.1", &["https"], &["http"]).unwrap_err();
        assert_eq!(err, "must use https:// (http:// only for loopback hosts)");
        assert!(check_url("ldap://dc1", &["ldaps", "ldap"], &[]).is_ok());
        assert_eq!(
            check_url("https://", &["https"], &[]).unwrap_err(),
            "not a valid URL (empty host)"
        );
    }

    #[test]
    fn urls_are_normalised_as_the_clients_use_them() {
        assert_eq!(normalize_url(" vault.example.com// "), "https://vault.example.com");
        assert_eq!(normalize_url("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
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

    #[test]
    fn errors_are_collected_with_their_paths() {
        let mut e = FieldErrors::default();
        e.non_empty("a", " ");
        assert_eq!(e.optional_duration("b", &Some("0s".into())), None);
        assert_eq!(
            e.optional_duration("c", &Some("2m".into())),
            Some(Duration::from_secs(120))
        );
        let paths: Vec<String> = e.into_vec().into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["a", "b"]);
    }
}
