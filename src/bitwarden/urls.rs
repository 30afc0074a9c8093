//! Where the Bitwarden API and identity services live (`bitwarden-api.md`, "URLs").

use crate::api::checks::normalize_url as normalize;
use crate::api::{BitwardenSpec, Region};

/// The two base URLs of a Bitwarden server, without trailing slashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urls {
    /// Base of the Public API (`{api}/public/...`).
    pub api: String,
    /// Base of the identity service (`{identity}/connect/token`).
    pub identity: String,
}

impl Urls {
    /// The Bitwarden cloud of `region`.
    pub fn cloud(region: Region) -> Urls {
        match region {
            Region::US => Urls {
                api: "https://api.bitwarden.com".into(),
                identity: "https://identity.bitwarden.com".into(),
            },
            Region::EU => Urls {
                api: "https://api.bitwarden.eu".into(),
                identity: "https://identity.bitwarden.eu".into(),
            },
        }
    }

    /// A self-hosted server (or Vaultwarden) at `base`: `base/api` and `base/identity`.
    pub fn self_hosted(base: &str) -> Urls {
        let base = normalize(base);
        Urls {
            api: format!("{base}/api"),
            identity: format!("{base}/identity"),
        }
    }

    /// Derives the URLs from the spec: `serverUrl` (self-hosted) wins over `region` (cloud,
    /// US by default); `apiUrl` and `identityUrl` override the derived URL each. Trailing
    /// slashes are stripped and a URL without a scheme gets `https://`.
    pub fn from_spec(spec: &BitwardenSpec) -> Urls {
        let mut urls = match &spec.server_url {
            Some(base) if !base.trim().is_empty() => Urls::self_hosted(base),
            _ => Urls::cloud(spec.region.unwrap_or_default()),
        };
        if let Some(api) = spec.api_url.as_deref().filter(|u| !u.trim().is_empty()) {
            urls.api = normalize(api);
        }
        if let Some(identity) = spec.identity_url.as_deref().filter(|u| !u.trim().is_empty()) {
            urls.identity = normalize(identity);
        }
        urls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(region: Option<Region>, server: Option<&str>, api: Option<&str>, identity: Option<&str>) -> BitwardenSpec {
        BitwardenSpec {
            region,
            server_url: server.map(Into::into),
            api_url: api.map(Into::into),
            identity_url: identity.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn urls_are_derived_from_region_server_and_overrides() {
        type Row<'a> = (
            Option<Region>,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            &'a str,
        );
        #[rustfmt::skip]
        let table: &[Row] = &[
            // region, serverUrl, apiUrl, identityUrl => api, identity
            (None, None, None, None,
             "https://api.bitwarden.com", "https://identity.bitwarden.com"),
            (Some(Region::US), None, None, None,
             "https://api.bitwarden.com", "https://identity.bitwarden.com"),
            (Some(Region::EU), None, None, None,
             "https://api.bitwarden.eu", "https://identity.bitwarden.eu"),
            (None, Some("https://vault.example.com"), None, None,
             "https://vault.example.com/api", "https://vault.example.com/identity"),
            (None, Some("https://vault.example.com/"), None, None,
             "https://vault.example.com/api", "https://vault.example.com/identity"),
            (None, Some("vault.example.com//"), None, None,
             "https://vault.example.com/api", "https://vault.example.com/identity"),
            (None, Some("https://example.com/bitwarden/"), None, None,
             "https://example.com/bitwarden/api", "https://example.com/bitwarden/identity"),
            (None, Some("http://127.0.0.1:8080"), None, None,
             "http://127.0.0.1:8080/api", "http://127.0.0.1:8080/identity"),
            (None, Some(" https://vault.example.com "), None, None,
             "https://vault.example.com/api", "https://vault.example.com/identity"),
            // Overrides replace each derived URL on its own.
            (None, Some("https://vault.example.com"), Some("https://api.example.com/"), None,
             "https://api.example.com", "https://vault.example.com/identity"),
            (None, Some("https://vault.example.com"), None, Some("id.example.com"),
             "https://vault.example.com/api", "https://id.example.com"),
            (Some(Region::EU), None, Some("api.example.com"), Some("https://id.example.com/x/"),
             "https://api.example.com", "https://id.example.com/x"),
            // serverUrl wins over region (validation rejects both together anyway).
            (Some(Region::EU), Some("https://vault.example.com"), None, None,
             "https://vault.example.com/api", "https://vault.example.com/identity"),
            // Empty strings count as unset.
            (None, Some(""), Some(""), None,
             "https://api.bitwarden.com", "https://identity.bitwarden.com"),
        ];
        for (region, server, api, identity, want_api, want_identity) in table {
            let got = Urls::from_spec(&spec(*region, *server, *api, *identity));
            assert_eq!(
                got,
                Urls {
                    api: want_api.to_string(),
                    identity: want_identity.to_string()
                },
                "region={region:?} server={server:?} api={api:?} identity={identity:?}"
            );
        }
    }
}
