//! The Bitwarden Public API client, behind [`BitwardenApi`].

pub mod client;
pub mod types;
pub mod urls;

use async_trait::async_trait;

use crate::Error;
pub use client::{Client, ClientOptions, RetryPolicy, connect};
pub use types::{
    AccessEntry, CollectionUpdate, ImportGroup, ImportMember, ImportRequest, OrgCollection, OrgGroup, OrgMember,
};
pub use urls::Urls;

/// What a sync needs from a Bitwarden organization.
#[async_trait]
pub trait BitwardenApi: Send + Sync {
    /// The API base URL (part of the sync hash).
    fn api_url(&self) -> &str;
    /// The organization id, from the API key's client id (part of the sync hash).
    fn organization_id(&self) -> &str;
    /// Sends one import request. Success is an empty 200. It is never sent twice while it may
    /// be running: an error for which [`crate::net::outcome_unknown`] is true means it may or may
    /// not have been applied (timeout, broken answer, 5xx); any other error means it was not.
    async fn import(&self, request: &ImportRequest) -> Result<(), Error>;
    /// The organization's members, or `None` when the server has no such endpoint (Vaultwarden).
    async fn list_members(&self) -> Result<Option<Vec<OrgMember>>, Error>;
    /// The organization's groups, or `None` when the server has no such endpoint.
    async fn list_groups(&self) -> Result<Option<Vec<OrgGroup>>, Error>;
    /// The organization's shared collections with their groups' access, or `None` when the
    /// server has no such endpoint (Vaultwarden).
    async fn list_collections(&self) -> Result<Option<Vec<OrgCollection>>, Error>;
    /// One collection, or `None` when there is no such collection.
    async fn get_collection(&self, id: &str) -> Result<Option<OrgCollection>, Error>;
    /// Replaces a collection's external id and complete group list (paced within the cloud's
    /// write limits). A refusal (4xx) is `BitwardenRejected` with the server's message.
    async fn put_collection(&self, id: &str, update: &CollectionUpdate) -> Result<Put, Error>;
}

/// What a write found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Done,
    /// There is no such collection (any more): 404 with an empty body.
    NoSuchCollection,
}
