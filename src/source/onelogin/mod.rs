//! OneLogin (API v2): settings and validation. The reader is not built yet: connecting answers
//! that the source is not available in this version.

use async_trait::async_trait;

use super::{DirectorySource, Provider, filter, not_available};
use crate::Error;
use crate::api::OneLoginSource;
use crate::api::checks::FieldErrors;
use crate::secrets::SecretStore;

const NAME: &str = "oneLogin";
const P: &str = "spec.source.oneLogin";

#[async_trait]
impl Provider for OneLoginSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, e: &mut FieldErrors) {
        e.non_empty(
            &format!("{P}.credentialsSecretRef.name"),
            &self.credentials_secret_ref.name,
        );
        if let Some(sub) = &self.subdomain
            && (sub.is_empty() || !sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            e.add(&format!("{P}.subdomain"), "must be a DNS label (letters, digits, '-')");
        }
        e.optional_https_url(&format!("{P}.apiUrl"), &self.api_url);
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

    #[test]
    fn settings_are_checked() {
        let mut s = OneLoginSource::default();
        s.credentials_secret_ref.name = "onelogin".into();
        s.subdomain = Some("acme corp".into());
        let mut e = FieldErrors::default();
        s.validate(&mut e);
        let paths: Vec<String> = e.into_vec().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["spec.source.oneLogin.subdomain"]);
    }
}
