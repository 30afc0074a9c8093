//! Google Workspace (Admin SDK Directory API): settings and validation. The reader is not built
//! yet: connecting answers that the source is not available in this version.

use async_trait::async_trait;

use super::{DirectorySource, Provider, filter, not_available};
use crate::Error;
use crate::api::GoogleWorkspaceSource;
use crate::api::checks::FieldErrors;
use crate::api::validate::secret_key_ref;
use crate::secrets::SecretStore;

const NAME: &str = "googleWorkspace";
const P: &str = "spec.source.googleWorkspace";

#[async_trait]
impl Provider for GoogleWorkspaceSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, e: &mut FieldErrors) {
        e.non_empty(&format!("{P}.domain"), &self.domain);
        e.non_empty(&format!("{P}.adminEmail"), &self.admin_email);
        if !self.admin_email.contains('@') {
            e.add(&format!("{P}.adminEmail"), "must be an email address");
        }
        secret_key_ref(
            e,
            &format!("{P}.serviceAccountKeySecretRef"),
            &self.service_account_key_secret_ref,
        );
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
        let s = GoogleWorkspaceSource {
            domain: "example.com".into(),
            admin_email: "admin".into(),
            user_filter: Some("includeGroup:x".into()),
            ..Default::default()
        };
        let mut e = FieldErrors::default();
        s.validate(&mut e);
        let paths: Vec<String> = e.into_vec().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "spec.source.googleWorkspace.adminEmail",
                "spec.source.googleWorkspace.serviceAccountKeySecretRef.name",
                "spec.source.googleWorkspace.serviceAccountKeySecretRef.key",
                "spec.source.googleWorkspace.userFilter"
            ]
        );
    }
}
