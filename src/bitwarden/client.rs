//! Placeholder until the HTTP client lands.
use crate::Error;
use crate::api::BitwardenSpec;
use crate::secrets::SecretStore;

pub struct Client;

#[async_trait::async_trait]
impl super::BitwardenApi for Client {
    fn api_url(&self) -> &str {
        ""
    }
    fn organization_id(&self) -> &str {
        ""
    }
    async fn import(&self, _: &super::ImportRequest) -> Result<(), Error> {
        Err(Error::BitwardenUnavailable("not built".into()))
    }
    async fn list_members(&self) -> Result<Option<Vec<super::OrgMember>>, Error> {
        Ok(None)
    }
    async fn list_groups(&self) -> Result<Option<Vec<super::OrgGroup>>, Error> {
        Ok(None)
    }
}

pub async fn connect(_: &BitwardenSpec, _: &dyn SecretStore) -> Result<Client, Error> {
    Ok(Client)
}
