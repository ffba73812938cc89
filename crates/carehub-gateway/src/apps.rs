//! Applications and their API keys, kept in the store as versioned documents in the
//! `platform` partition: `App/{id}` holds the application, `ApiKey/{sha-256 of the key}` points
//! at it. Keys are random (244 bits from the OS), shown once at creation, and stored only as
//! their hash, so a lookup is one read by id and a leaked database reveals no key.

use carehub_store::{Expect, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The store partition of platform records.
pub const PLATFORM: &str = "platform";

/// How old a copy of a credential (API key, application, access token, smartcard, client
/// certificate) a request to an API may be checked against. Reading them from the database on
/// every request was most of the gateway's cost; a change made through this process (the admin
/// API) is seen at once regardless, and one made from the command line or another node within
/// this long. Issuing tokens and signing in read afresh, so that a key registered a moment ago
/// from the command line works at once.
pub const CREDENTIAL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// A registered application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Its id (a UUID).
    pub id: String,
    /// Its name, e.g. `Acme-Referrals-INT`.
    pub name: String,
    /// The one environment its credentials work in.
    pub environment: String,
    /// The owning organisation's ODS code.
    pub organisation: String,
    /// Its Accredited System ID, when registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asid: Option<String>,
    /// Public keys (JWKs) its client assertions are signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwks: Vec<Value>,
    /// Where users may be sent back after signing in (the OAuth `redirect_uri`s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callback_urls: Vec<String>,
    /// The day it was registered (`YYYY-MM-DD`, UTC), which decides whether it may still take
    /// up a deprecated API; absent for applications registered before carehub recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// What went wrong managing applications.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not have the expected shape.
    #[error("stored application record is corrupt: {0}")]
    Corrupt(String),
    /// A value given is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// The hash an API key is stored and found under.
pub fn key_hash(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    // Every request with an API key hashes it: no formatting machinery per byte.
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// Today's date in UTC, `YYYY-MM-DD`.
fn today() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    carehub_fhir::datetime::format_instant(micros)[..10].to_owned()
}

fn new_key() -> String {
    // Two version-4 UUIDs: 244 random bits from the operating system's generator.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// How many platform documents one page of a listing reads.
const LISTING_PAGE: usize = 100;

/// The bodies of every live platform document of one kind (`App`, `Smartcard`), page after
/// page: listing them is an operator's action, not a hot path.
pub(crate) async fn list_documents(store: &Store, kind: &str) -> Result<Vec<String>, StoreError> {
    let mut search = carehub_fhir::search::SearchQuery {
        resource_type: kind.into(),
        filters: Vec::new(),
        sort: Vec::new(),
        count: LISTING_PAGE,
        include: Vec::new(),
        revinclude: Vec::new(),
        summary: carehub_fhir::search::Summary::False,
        elements: Vec::new(),
        total: carehub_fhir::search::Total::None,
        cursor: None,
        warnings: Vec::new(),
    };
    let mut bodies = Vec::new();
    loop {
        let page = store.search(PLATFORM, &search).await?;
        bodies.extend(page.matches.into_iter().filter_map(|m| m.resource.body));
        match page.next {
            Some(next) => search.cursor = Some(next),
            None => return Ok(bodies),
        }
    }
}

/// Applications over a store.
#[derive(Debug, Clone)]
pub struct Apps {
    store: Store,
}

impl Apps {
    /// Applications kept in `store`.
    pub fn new(store: Store) -> Apps {
        Apps { store }
    }

    /// Registers an application and issues its API key, returned once and never again.
    pub async fn create(
        &self,
        name: &str,
        environment: &str,
        organisation: &str,
    ) -> Result<(App, String), AppError> {
        if name.trim().is_empty() {
            return Err(AppError::Invalid("an application needs a name".into()));
        }
        let ods_ok = !organisation.is_empty()
            && organisation.len() <= 10
            && organisation.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ods_ok {
            return Err(AppError::Invalid(format!(
                "'{organisation}' is not an ODS code (letters and digits, up to 10)"
            )));
        }
        let app = App {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.trim().to_owned(),
            environment: environment.to_owned(),
            organisation: organisation.to_ascii_uppercase(),
            asid: None,
            jwks: Vec::new(),
            callback_urls: Vec::new(),
            created: Some(today()),
        };
        let key = new_key();
        let hash = key_hash(&key);
        let document = serde_json::to_value(&app).map_err(|e| AppError::Corrupt(e.to_string()))?;
        let pointer = json!({"app": app.id, "environment": environment});
        let app_id = app.id.clone();
        // The application and its key are written together or not at all.
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.put(PLATFORM, "App", &app_id, document, &[], Expect::Absent)
                        .await?;
                    tx.put(PLATFORM, "ApiKey", &hash, pointer, &[], Expect::Absent)
                        .await?;
                    Ok::<_, AppError>(())
                })
            })
            .await?;
        Ok((app, key))
    }

    /// The application an API key belongs to, if it is a live key, read afresh.
    pub async fn by_key(&self, key: &str) -> Result<Option<App>, AppError> {
        self.find_by_key(key, None).await
    }

    /// As [`Apps::by_key`], from copies at most [`CREDENTIAL_MAX_AGE`] old: for checking the
    /// credentials of each request to an API.
    pub async fn by_key_recent(&self, key: &str) -> Result<Option<App>, AppError> {
        self.find_by_key(key, Some(CREDENTIAL_MAX_AGE)).await
    }

    /// A platform record, afresh or from a copy at most `max_age` old.
    async fn record(
        &self,
        kind: &str,
        id: &str,
        max_age: Option<std::time::Duration>,
    ) -> Result<Option<carehub_store::Versioned>, StoreError> {
        match max_age {
            Some(max_age) => self.store.read_recent(PLATFORM, kind, id, max_age).await,
            None => self.store.read_fresh(PLATFORM, kind, id).await,
        }
    }

    async fn find_by_key(
        &self,
        key: &str,
        max_age: Option<std::time::Duration>,
    ) -> Result<Option<App>, AppError> {
        let Some(pointer) = self.record("ApiKey", &key_hash(key), max_age).await? else {
            return Ok(None);
        };
        if pointer.is_deleted() {
            return Ok(None);
        }
        // Only the application's id is needed, on every request: read just that field.
        #[derive(serde::Deserialize)]
        struct KeyPointer {
            app: String,
        }
        let pointer: KeyPointer = serde_json::from_str(pointer.body.as_deref().unwrap_or("null"))
            .map_err(|e| AppError::Corrupt(format!("ApiKey: {e}")))?;
        self.find(&pointer.app, max_age).await
    }

    /// An application by id, read afresh.
    pub async fn get(&self, id: &str) -> Result<Option<App>, AppError> {
        self.find(id, None).await
    }

    /// As [`Apps::get`], from a copy at most [`CREDENTIAL_MAX_AGE`] old.
    pub async fn get_recent(&self, id: &str) -> Result<Option<App>, AppError> {
        self.find(id, Some(CREDENTIAL_MAX_AGE)).await
    }

    async fn find(
        &self,
        id: &str,
        max_age: Option<std::time::Duration>,
    ) -> Result<Option<App>, AppError> {
        let Some(record) = self.record("App", id, max_age).await? else {
            return Ok(None);
        };
        if record.is_deleted() {
            return Ok(None);
        }
        let app: App = serde_json::from_str(record.body.as_deref().unwrap_or("null"))
            .map_err(|e| AppError::Corrupt(e.to_string()))?;
        Ok(Some(app))
    }

    /// Registers a public key (a JWK with a `kid`) for the application's client assertions;
    /// a key with the same `kid` is replaced.
    pub async fn add_public_key(&self, app_id: &str, jwk: Value) -> Result<App, AppError> {
        let Some(kid) = jwk.get("kid").and_then(Value::as_str).map(str::to_owned) else {
            return Err(AppError::Invalid("the JWK has no 'kid'".into()));
        };
        if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
            return Err(AppError::Invalid(
                "only RSA keys are accepted (client assertions are RS512)".into(),
            ));
        }
        let Some(mut app) = self.get(app_id).await? else {
            return Err(AppError::Invalid(format!("no application {app_id}")));
        };
        app.jwks
            .retain(|k| k.get("kid").and_then(Value::as_str) != Some(kid.as_str()));
        app.jwks.push(jwk);
        self.save(&app).await?;
        Ok(app)
    }

    /// Stores a changed application over its previous version.
    async fn save(&self, app: &App) -> Result<(), AppError> {
        let document = serde_json::to_value(app).map_err(|e| AppError::Corrupt(e.to_string()))?;
        let id = app.id.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.put(PLATFORM, "App", &id, document, &[], Expect::Any)
                        .await?;
                    Ok::<_, AppError>(())
                })
            })
            .await
    }

    /// Revokes an API key; the application stays.
    pub async fn revoke_key(&self, key: &str) -> Result<bool, AppError> {
        let hash = key_hash(key);
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let deleted = tx.delete(PLATFORM, "ApiKey", &hash, Expect::Any).await?;
                    Ok::<_, AppError>(deleted.is_some())
                })
            })
            .await
    }
}

impl Apps {
    /// Issues the application's client secret (for the authorization-code and refresh grants),
    /// replacing any earlier one; returned once and stored only as its hash.
    pub async fn issue_secret(&self, app_id: &str) -> Result<String, AppError> {
        if self.get(app_id).await?.is_none() {
            return Err(AppError::Invalid(format!("no application {app_id}")));
        }
        let secret = new_key();
        let document = json!({"hash": key_hash(&format!("{app_id}\u{0}{secret}"))});
        let id = app_id.to_owned();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.put(PLATFORM, "ClientSecret", &id, document, &[], Expect::Any)
                        .await?;
                    Ok::<_, AppError>(())
                })
            })
            .await?;
        Ok(secret)
    }

    /// Whether `secret` is the application's current client secret.
    pub async fn secret_matches(&self, app_id: &str, secret: &str) -> Result<bool, AppError> {
        let Some(record) = self
            .store
            .read_fresh(PLATFORM, "ClientSecret", app_id)
            .await?
        else {
            return Ok(false);
        };
        let body: Value = serde_json::from_str(record.body.as_deref().unwrap_or("null"))
            .map_err(|e| AppError::Corrupt(e.to_string()))?;
        Ok(!record.is_deleted()
            && body.get("hash").and_then(Value::as_str)
                == Some(key_hash(&format!("{app_id}\u{0}{secret}")).as_str()))
    }

    /// Registers the application's Accredited System ID (12 digits at most), which APIs such
    /// as e-RS require before they answer it.
    pub async fn set_asid(&self, app_id: &str, asid: &str) -> Result<App, AppError> {
        if asid.is_empty() || asid.len() > 12 || !asid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::Invalid(format!(
                "'{asid}' is not an ASID (up to 12 digits)"
            )));
        }
        let Some(mut app) = self.get(app_id).await? else {
            return Err(AppError::Invalid(format!("no application {app_id}")));
        };
        app.asid = Some(asid.to_owned());
        self.save(&app).await?;
        Ok(app)
    }

    /// Sets the callback URLs the application may be sent back to after a user signs in.
    pub async fn set_callback_urls(
        &self,
        app_id: &str,
        urls: Vec<String>,
    ) -> Result<App, AppError> {
        for url in &urls {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.contains('#') {
                return Err(AppError::Invalid(format!(
                    "callback URL '{url}' must be an absolute http(s) URL without a fragment"
                )));
            }
        }
        let Some(mut app) = self.get(app_id).await? else {
            return Err(AppError::Invalid(format!("no application {app_id}")));
        };
        app.callback_urls = urls;
        self.save(&app).await?;
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::key_hash;

    #[test]
    fn a_key_is_found_under_the_lowercase_hex_of_its_sha_256() {
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
