//! The native part of a OneLogin filter (after `|`): query-string parameters of the list call,
//! as Directory Connector appended them to its URL, e.g. `directory_id=123&email=*@corp.example`.
//!
//! Only the filter parameters OneLogin documents for the list are accepted (an unknown one would
//! be ignored or refused by the server; ignored, it would sync everyone). Paging and projection
//! (`limit`, `page`, `cursor`, `fields`) belong to dirsync. Values are percent-decoded here and
//! encoded again when sent, so `a%2Bb` and `a+b` mean what they mean in a URL.

/// Filter parameters of `GET /api/2/users` (besides `custom_attributes.<name>`).
pub const USER_PARAMETERS: &[&str] = &[
    "created_since",
    "created_until",
    "updated_since",
    "updated_until",
    "last_login_since",
    "last_login_until",
    "firstname",
    "lastname",
    "email",
    "username",
    "samaccountname",
    "directory_id",
    "external_id",
    "user_ids",
];

/// Filter parameters of `GET /api/2/roles`.
pub const ROLE_PARAMETERS: &[&str] = &["role_name", "app_id", "app_name"];

/// Parameters dirsync sets itself.
pub const RESERVED: &[&str] = &["limit", "page", "cursor", "fields"];

/// The prefix of custom-attribute filters of the user list.
pub const CUSTOM_ATTRIBUTE_PREFIX: &str = "custom_attributes.";

/// Which list a query is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Users,
    Roles,
}

impl Target {
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Target::Users => USER_PARAMETERS,
            Target::Roles => ROLE_PARAMETERS,
        }
    }

    fn known(self, key: &str) -> bool {
        self.parameters().contains(&key)
            || (self == Target::Users
                && key
                    .strip_prefix(CUSTOM_ATTRIBUTE_PREFIX)
                    .is_some_and(|name| !name.is_empty()))
    }
}

/// The `key=value` pairs of a native query, decoded; an error says what to fix.
pub fn parse(query: &str, target: Target) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in query.trim().trim_start_matches('?').split('&') {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let Some((raw_key, _)) = piece.split_once('=') else {
            return Err(format!(
                "{piece:?} in the query after | is not a key=value pair (write e.g. directory_id=123&email=*@corp.example)"
            ));
        };
        let (key, value) = url::form_urlencoded::parse(piece.as_bytes())
            .next()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .unwrap_or_default();
        if key.is_empty() {
            return Err(format!("{piece:?} in the query after | has no parameter name"));
        }
        if RESERVED.contains(&key.as_str()) {
            return Err(format!(
                "{raw_key:?} in the query after | is set by dirsync itself (paging and fields): remove it"
            ));
        }
        if !target.known(&key) {
            let mut known = target.parameters().join(", ");
            if target == Target::Users {
                known.push_str(", custom_attributes.<name>");
            }
            return Err(format!(
                "{key:?} is not a filter parameter of OneLogin's {} list (API v2); known: {known}",
                match target {
                    Target::Users => "user",
                    Target::Roles => "role",
                }
            ));
        }
        if value.trim().is_empty() {
            return Err(format!("{key:?} in the query after | has no value"));
        }
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(format!("{key:?} appears twice in the query after |"));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn queries_are_key_value_pairs_of_documented_filters() {
        assert_eq!(
            parse("directory_id=123&email=*@corp.example", Target::Users).unwrap(),
            pairs(&[("directory_id", "123"), ("email", "*@corp.example")])
        );
        assert_eq!(
            parse(" ?custom_attributes.dept=Sales%20EMEA & ", Target::Users).unwrap(),
            pairs(&[("custom_attributes.dept", "Sales EMEA")])
        );
        assert_eq!(
            parse("role_name=Eng*", Target::Roles).unwrap(),
            pairs(&[("role_name", "Eng*")])
        );
        assert_eq!(parse("", Target::Users).unwrap(), vec![]);
    }

    #[test]
    fn bad_queries_say_what_to_fix() {
        let cases: &[(&str, Target, &str)] = &[
            ("directory_id", Target::Users, "is not a key=value pair"),
            ("=5", Target::Users, "has no parameter name"),
            ("limit=500", Target::Users, "set by dirsync itself"),
            ("cursor=abc", Target::Roles, "set by dirsync itself"),
            (
                "status=1",
                Target::Users,
                "not a filter parameter of OneLogin's user list",
            ),
            ("name=Eng", Target::Roles, "known: role_name, app_id, app_name"),
            ("role_name=Eng", Target::Users, "custom_attributes.<name>"),
            ("custom_attributes.=x", Target::Users, "not a filter parameter"),
            ("custom_attributes.dept=x", Target::Roles, "not a filter parameter"),
            ("email=", Target::Users, "has no value"),
            ("email=a&email=b", Target::Users, "appears twice"),
        ];
        for (query, target, want) in cases {
            let err = parse(query, *target).unwrap_err();
            assert!(err.contains(want), "{query}: {err}");
        }
    }
}
