//! Finding a client by id: a registered one in KV, or a client ID
//! metadata document fetched by URL.

use super::cimd_fetch::{self, CimdError};
use super::record::{ClientRecord, lookup_registered};
use crate::doc_cache::DocumentCache;
use crate::oauth::types::ClientId;
use crate::ports::{KeyValue, Outbound, StorageError};
use crate::ssrf_guard::FetchPolicy;

#[derive(Debug)]
pub enum LookupError {
    Storage(StorageError),
    /// The metadata document could not be used.
    Metadata(CimdError),
}

/// The client, `None` when no such client exists (or it expired).
/// `own_origin` is where the request reached us and every hostname we
/// answer on: a metadata URL there is refused.
pub async fn find<P: KeyValue + Outbound + DocumentCache>(
    platform: &P,
    policy: FetchPolicy,
    own_origin: &cimd_fetch::OwnOrigin,
    id: &ClientId,
) -> Result<Option<ClientRecord>, LookupError> {
    if id.is_metadata_document() {
        return cimd_fetch::resolve(platform, id, policy, own_origin)
            .await
            .map(Some)
            .map_err(LookupError::Metadata);
    }
    lookup_registered(platform, id, platform.now())
        .await
        .map_err(LookupError::Storage)
}
