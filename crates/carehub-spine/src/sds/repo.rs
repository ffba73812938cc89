//! SDS records in the store partition `sds-{env}`: `AccreditedSystem/{asid}` and
//! `MessageHandler/{party key}`. The directory is small (a record per system), so queries read
//! it whole and filter.

use carehub_store::{Expect, Store, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AccreditedSystem, MessageHandler};
use crate::pds::repo::PdsRepoError;

/// The directory of one environment.
#[derive(Debug, Clone)]
pub struct SdsRepo {
    store: Store,
    key: String,
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, PdsRepoError> {
    serde_json::from_str(body).map_err(|e| PdsRepoError::Corrupt(e.to_string()))
}

impl SdsRepo {
    /// Records in partition `key` (`sds-int`).
    pub fn new(store: Store, key: &str) -> SdsRepo {
        SdsRepo {
            store,
            key: key.to_owned(),
        }
    }

    async fn all<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>, PdsRepoError> {
        let mut query = carehub_fhir::search::SearchQuery {
            resource_type: kind.to_owned(),
            filters: Vec::new(),
            sort: Vec::new(),
            count: 1000,
            include: Vec::new(),
            revinclude: Vec::new(),
            summary: carehub_fhir::search::Summary::False,
            elements: Vec::new(),
            total: carehub_fhir::search::Total::None,
            cursor: None,
            warnings: Vec::new(),
        };
        let mut all = Vec::new();
        loop {
            let page = self.store.search(&self.key, &query).await?;
            for found in page.matches {
                if let Some(body) = found.resource.body {
                    all.push(parse(&body)?);
                }
            }
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(all),
            }
        }
    }

    /// Every accredited system.
    pub async fn systems(&self) -> Result<Vec<AccreditedSystem>, PdsRepoError> {
        self.all("AccreditedSystem").await
    }

    /// Every message handling endpoint.
    pub async fn handlers(&self) -> Result<Vec<MessageHandler>, PdsRepoError> {
        self.all("MessageHandler").await
    }

    /// The accredited system with `asid`.
    pub async fn system(&self, asid: &str) -> Result<Option<AccreditedSystem>, PdsRepoError> {
        match self.store.read(&self.key, "AccreditedSystem", asid).await? {
            Some(found) => found.body.as_deref().map(parse).transpose(),
            None => Ok(None),
        }
    }

    /// The endpoint of `party_key` that serves `interaction` (a party key may have several,
    /// one per CPA).
    pub async fn handler(
        &self,
        party_key: &str,
        interaction: &str,
    ) -> Result<Option<MessageHandler>, PdsRepoError> {
        Ok(self
            .handlers()
            .await?
            .into_iter()
            .find(|h| h.party_key == party_key && h.interactions.iter().any(|i| i == interaction)))
    }

    /// Registers (or replaces) systems and endpoints.
    pub async fn register(
        &self,
        systems: Vec<AccreditedSystem>,
        handlers: Vec<MessageHandler>,
    ) -> Result<(), PdsRepoError> {
        let key = self.key.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for system in systems {
                        put(tx, &key, "AccreditedSystem", &system.asid, &system).await?;
                    }
                    for handler in handlers {
                        put(tx, &key, "MessageHandler", &handler.cpa(), &handler).await?;
                    }
                    Ok::<_, PdsRepoError>(())
                })
            })
            .await
    }
}

async fn put<T: Serialize>(
    tx: &mut carehub_store::Tx<'_>,
    key: &str,
    kind: &str,
    id: &str,
    record: &T,
) -> Result<(), PdsRepoError> {
    let body = serde_json::to_value(record).map_err(|e| PdsRepoError::Corrupt(e.to_string()))?;
    tx.put(key, kind, id, body, &[], Expect::Any)
        .await
        .map(|_| ())
        .map_err(StoreError::into)
}
