//! Okta (Management API): settings and validation. The reader is not built yet: connecting
//! answers that the source is not available in this version.

use async_trait::async_trait;

use super::{DirectorySource, Provider, filter, not_available};
use crate::Error;
use crate::api::OktaSource;
use crate::api::checks::FieldErrors;
use crate::api::validate::secret_key_ref;
use crate::secrets::SecretStore;

const NAME: &str = "okta";
const P: &str = "spec.source.okta";

#[async_trait]
impl Provider for OktaSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, e: &mut FieldErrors) {
        e.url(&format!("{P}.orgUrl"), &self.org_url, &["https"], &["http"]);
        secret_key_ref(e, &format!("{P}.tokenSecretRef"), &self.token_secret_ref);
        filter::check(e, &format!("{P}.userFilter"), &self.user_filter, &[]);
        filter::check(e, &format!("{P}.groupFilter"), &self.group_filter, &[]);
    }

    async fn connect(&self, _secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        Err(not_available(NAME))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SecretKeyRef;

    #[test]
    fn settings_are_checked() {
        let mut s = OktaSource {
            org_url: "https://x.okta.com".into(),
            token_secret_ref: SecretKeyRef {
                name: "t".into(),
                key: "token".into(),
            },
            user_filter: Some("includes:a@x".into()),
            group_filter: Some("exclude:Sales|type eq \"OKTA_GROUP\"".into()),
        };
        let paths = |s: &OktaSource| {
            let mut e = FieldErrors::default();
            s.validate(&mut e);
            e.into_vec().into_iter().map(|e| e.path).collect::<Vec<_>>()
        };
        assert_eq!(paths(&s), ["spec.source.okta.userFilter"]);
        s.user_filter = None;
        s.org_url = "http://x.okta.com".into();
        assert_eq!(paths(&s), ["spec.source.okta.orgUrl"]);
    }
}
