//! The email rule every source shares (parity with the reference).

/// The normalised email of a directory user: the first value of the email attribute; when that
/// is missing or blank and both a prefix value and a suffix are configured,
/// `<prefix value><suffix>`; then trimmed and lower-cased. `None` when neither yields anything.
///
/// Length limits (256 characters) are applied by the core, not here.
pub fn normalize_email(email: Option<&str>, prefix: Option<&str>, suffix: Option<&str>) -> Option<String> {
    let clean = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_lowercase())
    };
    if let Some(email) = email.and_then(clean) {
        return Some(email);
    }
    match (prefix.map(str::trim), suffix.map(str::trim)) {
        (Some(p), Some(s)) if !p.is_empty() && !s.is_empty() => clean(&format!("{p}{s}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_email;

    type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>);

    #[test]
    fn table() {
        let long = format!("{}@example.com", "a".repeat(300));
        let cases: &[Case] = &[
            (Some("alice@example.com"), None, None, Some("alice@example.com")),
            (Some("  Alice@Example.COM "), None, None, Some("alice@example.com")),
            (
                Some("alice@example.com"),
                Some("bob"),
                Some("@x.org"),
                Some("alice@example.com"),
            ),
            (None, Some("Bob"), Some("@Corp.Example"), Some("bob@corp.example")),
            (
                Some("   "),
                Some("bob"),
                Some("@corp.example"),
                Some("bob@corp.example"),
            ),
            (
                Some(""),
                Some(" bob "),
                Some(" @corp.example"),
                Some("bob@corp.example"),
            ),
            (None, Some("bob"), None, None),
            (None, None, Some("@corp.example"), None),
            (None, Some(""), Some("@corp.example"), None),
            (None, Some("bob"), Some(""), None),
            (None, None, None, None),
            (Some("ÄRGER@Example.com"), None, None, Some("ärger@example.com")),
            (Some(long.as_str()), None, None, Some(long.as_str())),
        ];
        for (email, prefix, suffix, want) in cases {
            assert_eq!(
                normalize_email(*email, *prefix, *suffix).as_deref(),
                *want,
                "email={email:?} prefix={prefix:?} suffix={suffix:?}"
            );
        }
    }
}
