//! Microsoft Entra ID (Microsoft Graph v1.0): settings and validation. The reader is not built
//! yet: connecting answers that the source is not available in this version.

use async_trait::async_trait;

use super::{DirectorySource, Provider, filter, not_available};
use crate::Error;
use crate::api::EntraIdSource;
use crate::api::checks::FieldErrors;
use crate::secrets::SecretStore;

const NAME: &str = "entraId";
const P: &str = "spec.source.entraId";
/// Entra's filter keywords besides `include:` / `exclude:`: users by (transitive) membership of
/// group ids, groups by administrative unit ids.
pub const FILTER_KINDS: [&str; 2] = ["Group", "AdministrativeUnit"];

#[async_trait]
impl Provider for EntraIdSource {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, e: &mut FieldErrors) {
        e.non_empty(&format!("{P}.tenantId"), &self.tenant_id);
        let c = &self.credentials_secret_ref;
        e.non_empty(&format!("{P}.credentialsSecretRef.name"), &c.name);
        if c.certificate_key.is_some() != c.private_key_key.is_some() {
            e.add(
                &format!("{P}.credentialsSecretRef"),
                "certificateKey and privateKeyKey go together",
            );
        }
        e.optional_https_url(&format!("{P}.authorityUrl"), &self.authority_url);
        e.optional_https_url(&format!("{P}.graphUrl"), &self.graph_url);
        filter::check(e, &format!("{P}.userFilter"), &self.user_filter, &FILTER_KINDS);
        filter::check(e, &format!("{P}.groupFilter"), &self.group_filter, &FILTER_KINDS);
    }

    async fn connect(&self, _secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        Err(not_available(NAME))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(s: &EntraIdSource) -> Vec<String> {
        let mut e = FieldErrors::default();
        s.validate(&mut e);
        e.into_vec().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn settings_are_checked() {
        let mut s = EntraIdSource {
            tenant_id: "contoso.onmicrosoft.com".into(),
            ..Default::default()
        };
        s.credentials_secret_ref.name = "entra".into();
        assert!(paths(&s).is_empty());
        s.credentials_secret_ref.certificate_key = Some("tls.crt".into());
        s.graph_url = Some("http://graph.example".into());
        s.user_filter = Some("includeGroup:1234".into());
        s.group_filter = Some("includeRole:x".into());
        assert_eq!(
            paths(&s),
            [
                "spec.source.entraId.credentialsSecretRef",
                "spec.source.entraId.graphUrl",
                "spec.source.entraId.groupFilter"
            ]
        );
    }
}
