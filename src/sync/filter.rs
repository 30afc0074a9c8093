//! Cloud-provider filters (parity): `include:a,b` or `exclude:a,b` (users by email, groups by
//! name), optionally followed by `|` and a native query. Entra also takes `includeGroup:` /
//! `excludeGroup:` (users: members of these group ids) and `includeAdministrativeUnit:` /
//! `excludeAdministrativeUnit:` (groups). Keywords are case-insensitive, values are compared
//! trimmed and lower-cased.
//!
//! The reference silently ignores a filter whose keyword it does not know, which syncs everyone;
//! here that is an `InvalidSpec`.

use std::collections::HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    /// Users by email, groups by name.
    Names,
    /// Entra users by (transitive) membership of group object ids.
    Groups,
    /// Entra groups by administrative unit ids.
    AdministrativeUnits,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetFilter {
    pub kind: SetKind,
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
    pub fn parse(text: &str, entra: bool) -> Result<CloudFilter, String> {
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
        let (kind, exclude) = match keyword.trim().to_lowercase().as_str() {
            "include" => (SetKind::Names, false),
            "exclude" => (SetKind::Names, true),
            "includegroup" if entra => (SetKind::Groups, false),
            "excludegroup" if entra => (SetKind::Groups, true),
            "includeadministrativeunit" if entra => (SetKind::AdministrativeUnits, false),
            "excludeadministrativeunit" if entra => (SetKind::AdministrativeUnits, true),
            other => {
                let known = if entra {
                    "include, exclude, includeGroup, excludeGroup, includeAdministrativeUnit, excludeAdministrativeUnit"
                } else {
                    "include, exclude"
                };
                return Err(format!("unknown filter keyword {other:?} (known: {known})"));
            }
        };
        let values: HashSet<String> = values
            .split(',')
            .map(|v| v.trim().to_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(format!("{keyword}: lists no values"));
        }
        Ok(CloudFilter {
            set: Some(SetFilter { kind, exclude, values }),
            query,
        })
    }

    /// The include/exclude list over names (emails or group names), if that is what it is.
    pub fn names(&self) -> Option<&SetFilter> {
        self.set.as_ref().filter(|s| s.kind == SetKind::Names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_the_reference_does() {
        let f = CloudFilter::parse("include: Alice@x.com , bob@x.com", false).unwrap();
        let set = f.names().unwrap();
        assert!(!set.exclude);
        assert!(set.keeps("alice@x.com") && set.keeps(" BOB@x.com "));
        assert!(!set.keeps("carol@x.com"));
        assert_eq!(f.query, None);

        let f = CloudFilter::parse("EXCLUDE:Sales|type eq \"OKTA_GROUP\"", false).unwrap();
        assert!(!f.names().unwrap().keeps("sales"));
        assert!(f.names().unwrap().keeps("engineering"));
        assert_eq!(f.query.as_deref(), Some("type eq \"OKTA_GROUP\""));

        let f = CloudFilter::parse("|orgUnitPath='/Eng'", false).unwrap();
        assert_eq!(f.set, None);
        assert_eq!(f.query.as_deref(), Some("orgUnitPath='/Eng'"));

        let f = CloudFilter::parse("includeGroup:1234-abcd", true).unwrap();
        assert_eq!(f.set.as_ref().unwrap().kind, SetKind::Groups);
        assert!(f.names().is_none());
    }

    #[test]
    fn unknown_keywords_and_empty_lists_are_errors() {
        assert!(CloudFilter::parse("includes:a", false).is_err());
        assert!(CloudFilter::parse("includeGroup:a", false).is_err());
        assert!(CloudFilter::parse("include:", false).is_err());
        assert!(CloudFilter::parse("alice@x.com", false).is_err());
    }
}
