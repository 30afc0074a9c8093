//! Cloud-provider filters (parity): `include:a,b` or `exclude:a,b` (users by email, groups by
//! name), optionally followed by `|` and the provider's native query. A provider may know more
//! keywords of the same shape (`include<Kind>:` / `exclude<Kind>:`, e.g. Entra's
//! `includeGroup:`). Keywords are case-insensitive; values are compared trimmed and lower-cased.
//!
//! The reference silently ignores a filter whose keyword it does not know, which syncs everyone;
//! here that is an `InvalidSpec`.

use std::collections::HashSet;

use crate::api::checks::FieldErrors;

/// `include...:` or `exclude...:` and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetFilter {
    /// What the values are, lower-case: `""` for names (emails or group names), else the
    /// provider's kind (`group`, `administrativeunit`).
    pub kind: String,
    pub exclude: bool,
    pub values: HashSet<String>,
}

impl SetFilter {
    /// Whether a value passes the filter.
    pub fn keeps(&self, value: &str) -> bool {
        let hit = self.values.contains(&value.trim().to_lowercase());
        hit != self.exclude
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloudFilter {
    pub set: Option<SetFilter>,
    /// The provider's own query language (Google `query`, Okta `filter`/`search`, ...).
    pub query: Option<String>,
}

impl CloudFilter {
    /// Parses a filter; `kinds` are the provider's extra keyword kinds in their display case
    /// (`["Group", "AdministrativeUnit"]` for Entra), besides plain `include` / `exclude`.
    pub fn parse(text: &str, kinds: &[&str]) -> Result<CloudFilter, String> {
        let (set_part, query) = match text.split_once('|') {
            Some((s, q)) => (s, Some(q.trim()).filter(|q| !q.is_empty()).map(str::to_string)),
            None => (text, None),
        };
        let set_part = set_part.trim();
        if set_part.is_empty() {
            return Ok(CloudFilter { set: None, query });
        }
        let Some((keyword, values)) = set_part.split_once(':') else {
            return Err(format!(
                "{set_part:?} is not a filter: use include:a,b or exclude:a,b, optionally followed by | and a query"
            ));
        };
        let lower = keyword.trim().to_lowercase();
        let (exclude, kind) = match (lower.strip_prefix("include"), lower.strip_prefix("exclude")) {
            (Some(kind), _) => (false, kind),
            (_, Some(kind)) => (true, kind),
            _ => (false, lower.as_str()),
        };
        let known = kind.is_empty() || kinds.iter().any(|k| k.eq_ignore_ascii_case(kind));
        if !known || !(lower.starts_with("include") || lower.starts_with("exclude")) {
            let names: Vec<String> = std::iter::once(String::new())
                .chain(kinds.iter().map(|k| k.to_string()))
                .flat_map(|k| [format!("include{k}"), format!("exclude{k}")])
                .collect();
            return Err(format!(
                "unknown filter keyword {:?} (known: {})",
                keyword.trim(),
                names.join(", ")
            ));
        }
        let values: HashSet<String> = values
            .split(',')
            .map(|v| v.trim().to_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(format!("{}: lists no values", keyword.trim()));
        }
        Ok(CloudFilter {
            set: Some(SetFilter {
                kind: kind.to_string(),
                exclude,
                values,
            }),
            query,
        })
    }

    /// The include/exclude list over names (emails or group names), if that is what it is.
    pub fn names(&self) -> Option<&SetFilter> {
        self.set.as_ref().filter(|s| s.kind.is_empty())
    }
}

/// Checks an optional filter field, adding its problem to `e`.
pub fn check(e: &mut FieldErrors, path: &str, filter: &Option<String>, kinds: &[&str]) {
    if let Some(f) = filter
        && let Err(m) = CloudFilter::parse(f, kinds)
    {
        e.add(path, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_the_reference_does() {
        let f = CloudFilter::parse("include: Alice@x.com , bob@x.com", &[]).unwrap();
        let set = f.names().unwrap();
        assert!(!set.exclude);
        assert!(set.keeps("alice@x.com") && set.keeps(" BOB@x.com "));
        assert!(!set.keeps("carol@x.com"));
        assert_eq!(f.query, None);

        let f = CloudFilter::parse("EXCLUDE:Sales|type eq \"OKTA_GROUP\"", &[]).unwrap();
        assert!(!f.names().unwrap().keeps("sales"));
        assert!(f.names().unwrap().keeps("engineering"));
        assert_eq!(f.query.as_deref(), Some("type eq \"OKTA_GROUP\""));

        let f = CloudFilter::parse("|orgUnitPath='/Eng'", &[]).unwrap();
        assert_eq!(f.set, None);
        assert_eq!(f.query.as_deref(), Some("orgUnitPath='/Eng'"));

        let f = CloudFilter::parse("includeGroup:1234-abcd", &["Group"]).unwrap();
        let set = f.set.as_ref().unwrap();
        assert_eq!((set.kind.as_str(), set.exclude), ("group", false));
        assert!(f.names().is_none());
    }

    #[test]
    fn unknown_keywords_and_empty_lists_are_errors() {
        assert!(CloudFilter::parse("includes:a", &[]).is_err());
        let err = CloudFilter::parse("includeGroup:a", &[]).unwrap_err();
        assert_eq!(err, "unknown filter keyword \"includeGroup\" (known: include, exclude)");
        let err = CloudFilter::parse("group:a", &["Group"]).unwrap_err();
        assert!(err.contains("includeGroup, excludeGroup"), "{err}");
        assert!(CloudFilter::parse("include:", &[]).is_err());
        assert!(CloudFilter::parse("alice@x.com", &[]).is_err());
    }
}
