//! Okta (Management API): settings and validation, the client ([`client`]: API token or service
//! app, `Link` paging, per-bucket rate limits in [`limits`]) and the reader ([`read`]).

pub mod assertion;
pub mod client;
pub mod limits;
pub mod read;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use url::Url;

use super::filter::CloudFilter;
use super::{DirectorySource, Provider, filter};
use crate::Error;
use crate::api::checks::FieldErrors;
use crate::api::validate::secret_key_ref;
use crate::api::{OktaSource, SecretKeyRef};
use crate::net::jwt::SigningKey;
use crate::net::{HttpClient, HttpOptions, RetryPolicy, Scrubber, TokenCache};
use crate::secrets::{SecretStore, SecretValue};
use client::{Auth, Client};
use limits::Limits;
use read::{OktaReader, ReadSettings};

const NAME: &str = "okta";
const P: &str = "spec.source.okta";

/// How the client behaves; tests shorten the waits.
#[derive(Clone, Debug)]
pub struct Options {
    pub retry: RetryPolicy,
    /// Member lists read at once (Okta allows about 75 concurrent requests per org).
    pub concurrency: usize,
    /// Fraction of each rate-limit window left to the org's other API clients.
    pub reserve: f64,
    /// The longest a request waits for its rate-limit window to end; a longer wait fails the
    /// read with `RateLimited`.
    pub max_window_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry: RetryPolicy::default(),
            concurrency: 8,
            reserve: 0.1,
            max_window_wait: Duration::from_secs(75),
        }
    }
}

#[async_trait]
impl Provider for OktaSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, e: &mut FieldErrors) {
        if let Some(url) = e.url(&format!("{P}.orgUrl"), &self.org_url, &["https"], &["http"]) {
            check_org_url(e, &url);
        }
        match (&self.token_secret_ref, &self.oauth) {
            (Some(token), None) => secret_key_ref(e, &format!("{P}.tokenSecretRef"), token),
            (None, Some(oauth)) => {
                e.non_empty(&format!("{P}.oauth.clientId"), &oauth.client_id);
                secret_key_ref(
                    e,
                    &format!("{P}.oauth.privateKeySecretRef"),
                    &oauth.private_key_secret_ref,
                );
                if oauth.key_id.as_deref().is_some_and(|k| k.trim().is_empty()) {
                    e.add(&format!("{P}.oauth.keyId"), "is empty: remove it or set the key's kid");
                }
            }
            (Some(_), Some(_)) => e.add(
                P,
                "set exactly one of tokenSecretRef (an API token) and oauth (a service app), not both",
            ),
            (None, None) => e.add(
                P,
                "set tokenSecretRef (an API token) or oauth (a service app with a private key)",
            ),
        }
        filter::check(e, &format!("{P}.userFilter"), &self.user_filter, &[]);
        filter::check(e, &format!("{P}.groupFilter"), &self.group_filter, &[]);
    }

    async fn connect(&self, secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        Ok(Box::new(connect(self, secrets, Options::default()).await?))
    }
}

/// The API lives at the org's root: a path, or the admin console's address, cannot work.
fn check_org_url(e: &mut FieldErrors, url: &Url) {
    let path = format!("{P}.orgUrl");
    if url.path() != "/" || url.query().is_some() {
        e.add(
            &path,
            "must be the org's address without a path (https://<org>.okta.com); the API is at <orgUrl>/api/v1",
        );
    }
    if let Some(host) = url.host_str()
        && let Some((org, domain)) = host.split_once('.')
        && let Some(org) = org.strip_suffix("-admin")
    {
        e.add(
            &path,
            format!("is the admin console's address: use the org's, https://{org}.{domain}"),
        );
    }
}

/// Reads the Secrets and builds the reader (settings already validated).
pub async fn connect(settings: &OktaSource, secrets: &dyn SecretStore, options: Options) -> Result<OktaReader, Error> {
    let org = Url::parse(&settings.org_url).map_err(|e| Error::invalid(&format!("{P}.orgUrl"), e.to_string()))?;
    let secret_name = |r: &SecretKeyRef| format!("Secret {:?} key {:?}", r.name, r.key);
    let auth = match (&settings.token_secret_ref, &settings.oauth) {
        (Some(r), _) => {
            let token = secrets.get(&r.name, &r.key).await?;
            let token = SecretValue::new(token.expose().trim());
            if token.expose().is_empty() {
                return Err(Error::invalid(
                    &format!("{P}.tokenSecretRef"),
                    format!("{} is empty: put the Okta API token there", secret_name(r)),
                ));
            }
            let scrubber = Scrubber::new([token.clone()]);
            (
                Auth::ApiToken {
                    token,
                    source: secret_name(r),
                },
                scrubber,
            )
        }
        (None, Some(o)) => {
            let r = &o.private_key_secret_ref;
            let pem = secrets.get(&r.name, &r.key).await?;
            let key = SigningKey::from_pem(pem.expose()).map_err(|why| {
                Error::invalid(
                    &format!("{P}.oauth.privateKeySecretRef"),
                    format!("{} {why}", secret_name(r)),
                )
            })?;
            let scrubber = Scrubber::new([pem]);
            (
                Auth::ServiceApp {
                    client_id: o.client_id.trim().to_string(),
                    key: Box::new(key),
                    key_id: o.key_id.clone(),
                    source: secret_name(r),
                    // Every access token fetched is remembered by the scrubber.
                    tokens: TokenCache::new(Duration::from_secs(300), scrubber.clone()),
                },
                scrubber,
            )
        }
        (None, None) => return Err(Error::invalid(P, "set tokenSecretRef or oauth")),
    };
    let (auth, scrubber) = auth;
    let mut http_options = HttpOptions::new(&format!("{P}.orgUrl"), &format!("{P}.orgUrl"));
    http_options.request_timeout = Duration::from_secs(60).min(options.retry.budget);
    http_options.retry = options.retry.clone();
    let http = HttpClient::new(client::SIDE, http_options, scrubber)?;
    let parse = |field: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| CloudFilter::parse(t, &[]).map_err(|m| Error::invalid(&format!("{P}.{field}"), m)))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(OktaReader {
        client: Arc::new(Client {
            http,
            org,
            auth,
            limits: Limits::new(options.reserve),
            max_window_wait: options.max_window_wait,
        }),
        settings: ReadSettings {
            user_filter: parse("userFilter", &settings.user_filter)?,
            group_filter: parse("groupFilter", &settings.group_filter)?,
            user_query: settings.user_query_parameter.unwrap_or_default(),
            concurrency: options.concurrency,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OktaOAuth;

    fn paths(s: &OktaSource) -> Vec<String> {
        let mut e = FieldErrors::default();
        s.validate(&mut e);
        e.into_vec().into_iter().map(|e| e.path).collect()
    }

    fn token() -> Option<SecretKeyRef> {
        Some(SecretKeyRef {
            name: "t".into(),
            key: "token".into(),
        })
    }

    #[test]
    fn settings_are_checked() {
        let mut s = OktaSource {
            org_url: "https://x.okta.com".into(),
            token_secret_ref: token(),
            user_filter: Some("includes:a@x".into()),
            group_filter: Some("exclude:Sales|type eq \"OKTA_GROUP\"".into()),
            ..Default::default()
        };
        assert_eq!(paths(&s), ["spec.source.okta.userFilter"]);
        s.user_filter = None;
        s.org_url = "http://x.okta.com".into();
        assert_eq!(paths(&s), ["spec.source.okta.orgUrl"]);
        s.org_url = "https://x.okta.com/api/v1".into();
        assert_eq!(paths(&s), ["spec.source.okta.orgUrl"]);
        s.org_url = "https://x-admin.okta.com".into();
        let mut e = FieldErrors::default();
        s.validate(&mut e);
        assert!(e.into_vec()[0].message.contains("https://x.okta.com"));
        s.org_url = "http://127.0.0.1:8080/".into();
        assert!(paths(&s).is_empty(), "a loopback double");
    }

    #[test]
    fn exactly_one_way_to_sign_in() {
        let oauth = OktaOAuth {
            client_id: "0oa1".into(),
            private_key_secret_ref: SecretKeyRef {
                name: "okta-app".into(),
                key: "private.pem".into(),
            },
            key_id: None,
        };
        let mut s = OktaSource {
            org_url: "https://x.okta.com".into(),
            oauth: Some(oauth.clone()),
            ..Default::default()
        };
        assert!(paths(&s).is_empty());
        s.token_secret_ref = token();
        assert_eq!(paths(&s), ["spec.source.okta"]);
        s.token_secret_ref = None;
        s.oauth = None;
        assert_eq!(paths(&s), ["spec.source.okta"]);
        s.oauth = Some(OktaOAuth {
            client_id: String::new(),
            key_id: Some(" ".into()),
            ..oauth
        });
        assert_eq!(
            paths(&s),
            ["spec.source.okta.oauth.clientId", "spec.source.okta.oauth.keyId"]
        );
    }
}
