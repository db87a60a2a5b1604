//! Finding a client by id: a registered one in KV, or a client ID
//! metadata document fetched by URL.

use super::cimd;
use super::clients::{self, ClientRecord};
use super::settings::OAuthSettings;
use super::types::ClientId;
use crate::ports::{Clock, KeyValue, Outbound, StorageError};

#[derive(Debug)]
pub enum LookupError {
    Storage(StorageError),
    /// The metadata document could not be used; the text is safe to show.
    Metadata(String),
}

/// The client, `None` when no such client exists (or it expired).
pub async fn find<P: KeyValue + Outbound + Clock>(
    platform: &P,
    settings: &OAuthSettings,
    id: &ClientId,
) -> Result<Option<ClientRecord>, LookupError> {
    if id.is_metadata_document() {
        return cimd::resolve(platform, id, settings.fetch_policy)
            .await
            .map(Some)
            .map_err(|e| LookupError::Metadata(e.description()));
    }
    clients::lookup_registered(platform, id, platform.now())
        .await
        .map_err(LookupError::Storage)
}
