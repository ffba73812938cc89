//! Virtual smartcards and carehub's own CIS2-style identity provider.
//!
//! Suppliers cannot get NHS smartcards for development, so each environment has cards of its
//! own: a user (UUID and SDS user id), a passcode standing in for the card's PIN, an
//! authentication assurance level, and role profiles (role code, ODS organisation, e-RS
//! business functions). A card works in its own environment only, as a real smartcard is bound
//! to one environment.
//!
//! The provider answers at `/{env}/cis2/...` as NHS CIS2 Authentication does: an OpenID
//! configuration, a JWKS, `authorize` with a login page where the user picks a card and a role,
//! `token` (authorization code to ID token), and `userinfo` with the user's roles. Its RSA
//! signing key is made on first use and kept in the store, so every node signs with the same
//! key and tokens survive a restart.
//!
//! Records, in the store's `platform` partition: `Smartcard/{uuid}`, `IdpKey/{env}`,
//! `IdpCode/{sha-256}` (single use, 60 s), `IdpAccess/{sha-256}` (for `userinfo`, 599 s).

use std::collections::HashMap;
use std::sync::Arc;

use carehub_store::{Expect, Store, StoreError};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::apps::{PLATFORM, key_hash};

/// The e-RS business functions a role profile can carry.
pub const BUSINESS_FUNCTIONS: [&str; 10] = [
    "REFERRING_CLINICIAN",
    "REFERRING_CLINICIAN_ADMIN",
    "REFERRING_ADMIN",
    "COMMISSIONER",
    "SERVICE_PROVIDER_CLINICIAN_ADMIN",
    "SERVICE_PROVIDER_CLINICIAN",
    "SERVICE_PROVIDER_ADMIN",
    "INFORMATION_ANALYST",
    "BOOKING_MANAGER",
    "ADDITIONAL_REQUIREMENTS_MANAGER",
];

/// The client id under which the platform itself signs users in (the combined flow).
pub const PLATFORM_CLIENT: &str = "carehub-platform";

/// The store kind of the provider's authorization codes.
pub(crate) const IDP_CODE: &str = "IdpCode";
/// The store kind of the platform's authorization codes (combined flow).
pub(crate) const PLATFORM_CODE: &str = "AuthCode";

/// ID tokens live this long.
const ID_TOKEN_SECS: u64 = 3600;
/// An authorization code must be redeemed within this time.
pub(crate) const CODE_SECS: u64 = 60;
/// The provider's own access tokens (for `userinfo`) live this long.
const IDP_ACCESS_SECS: u64 = 599;

/// One role a user may act in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleProfile {
    /// The role profile id (`person_roleid`, 12 digits).
    pub id: String,
    /// The national RBAC role code, e.g. `R8000`.
    pub role_code: String,
    /// The role's name, e.g. `Clinical Practitioner Access Role`.
    pub role_name: String,
    /// The ODS code of the organisation the role is held at.
    pub organisation: String,
    /// e-RS business functions the role grants.
    #[serde(default)]
    pub business_functions: Vec<String>,
}

/// A virtual smartcard: a user and the roles they may select.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smartcard {
    /// The user's UUID (the ID token's `sub`).
    pub id: String,
    /// The SDS user id (`nhsid_useruid`, 12 digits).
    pub sds_user_id: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// The one environment the card works in.
    pub environment: String,
    /// Authentication assurance level: 3 for a smartcard, 2 for lesser authenticators.
    pub aal: u8,
    /// SHA-256 of the card id and its passcode.
    pub passcode_hash: String,
    /// The roles it carries.
    pub roles: Vec<RoleProfile>,
}

impl Smartcard {
    /// `Given Family`.
    pub fn name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    /// Whether `passcode` opens the card.
    pub fn opens_with(&self, passcode: &str) -> bool {
        passcode_hash(&self.id, passcode) == self.passcode_hash
    }

    /// One of its roles, by role profile id.
    pub fn role(&self, role_id: &str) -> Option<&RoleProfile> {
        self.roles.iter().find(|r| r.id == role_id)
    }

    /// The card without its passcode hash, for showing.
    pub fn public(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.remove("passcode_hash");
        }
        value
    }
}

/// What a new card holds; ids left empty are generated.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewSmartcard {
    /// A fixed UUID, for seeded cards that documentation names.
    #[serde(default)]
    pub id: Option<String>,
    /// A fixed SDS user id.
    #[serde(default)]
    pub sds_user_id: Option<String>,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Its environment.
    pub environment: String,
    /// 3 (smartcard) unless 2 is wanted.
    #[serde(default = "aal3")]
    pub aal: u8,
    /// The passcode that opens it.
    pub passcode: String,
    /// Its roles; a role's empty id is generated.
    pub roles: Vec<RoleProfile>,
}

fn aal3() -> u8 {
    3
}

/// The user a token stands for, as products see it in the request context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIdentity {
    /// The user's UUID.
    pub id: String,
    /// SDS user id.
    pub sds_user_id: String,
    /// Display name.
    pub name: String,
    /// The authentication assurance level of this sign-in.
    pub aal: u8,
    /// The role selected at sign-in.
    pub role: RoleProfile,
    /// Every role the user holds, so a product can offer others at the same organisation.
    pub roles: Vec<RoleProfile>,
}

impl UserIdentity {
    /// The identity of `card` acting in the role `role_id`.
    pub fn of(card: &Smartcard, role_id: &str) -> Option<UserIdentity> {
        Some(UserIdentity {
            id: card.id.clone(),
            sds_user_id: card.sds_user_id.clone(),
            name: card.name(),
            aal: card.aal,
            role: card.role(role_id)?.clone(),
            roles: card.roles.clone(),
        })
    }
}

/// What went wrong in the identity provider.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value given is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// A stored record is not what it should be, or signing failed.
    #[error("identity provider fault: {0}")]
    Fault(String),
}

/// The signing key of one environment's provider.
#[derive(Debug)]
struct ProviderKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_jwk: Value,
}

/// What an authorization code was issued for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The card that signed in.
    pub card: String,
    /// The role selected.
    pub role: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Where it was sent.
    pub redirect_uri: String,
    /// The client's `nonce`, for the ID token.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Unix seconds after which it is void.
    pub expires: u64,
}

/// The identity provider of every environment, over one store.
#[derive(Debug, Clone)]
pub struct Identity {
    store: Store,
    public_url: String,
    keys: Arc<Mutex<HashMap<String, Arc<ProviderKey>>>>,
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn passcode_hash(card_id: &str, passcode: &str) -> String {
    key_hash(&format!("{card_id}\u{0}{passcode}"))
}

/// `n` random decimal digits, not starting with 0.
fn digits(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for byte in uuid::Uuid::new_v4().as_bytes() {
            // Bytes below 250 map evenly onto ten digits.
            if *byte < 250 && out.len() < n {
                let digit = byte % 10;
                if out.is_empty() && digit == 0 {
                    continue;
                }
                out.push(char::from(b'0' + digit));
            }
        }
    }
    out
}

fn parse<T: serde::de::DeserializeOwned>(body: Option<&str>) -> Result<T, IdentityError> {
    serde_json::from_str(body.unwrap_or("null")).map_err(|e| IdentityError::Fault(e.to_string()))
}

impl Identity {
    /// The provider over `store`, reachable at `public_url`.
    pub fn new(store: Store, public_url: &str) -> Identity {
        Identity {
            store,
            public_url: public_url.trim_end_matches('/').to_owned(),
            keys: Arc::default(),
        }
    }

    /// The provider's issuer URL in `environment`: the `iss` of its ID tokens.
    pub fn issuer(&self, environment: &str) -> String {
        format!("{}/{environment}/cis2", self.public_url)
    }

    /// Issues a virtual smartcard.
    pub async fn issue_card(&self, new: NewSmartcard) -> Result<Smartcard, IdentityError> {
        let invalid = |m: String| Err(IdentityError::Invalid(m));
        if new.given_name.trim().is_empty() || new.family_name.trim().is_empty() {
            return invalid("a smartcard needs a given and a family name".into());
        }
        if new.passcode.len() < 4 {
            return invalid("a passcode needs at least 4 characters".into());
        }
        if !(1..=3).contains(&new.aal) {
            return invalid(format!("assurance level {} is not 1, 2 or 3", new.aal));
        }
        if new.roles.is_empty() {
            return invalid("a smartcard needs at least one role profile".into());
        }
        let id = new.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if uuid::Uuid::parse_str(&id).is_err() {
            return invalid(format!("card id '{id}' is not a UUID"));
        }
        let sds_user_id = new.sds_user_id.unwrap_or_else(|| digits(12));
        if sds_user_id.len() != 12 || !sds_user_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(format!("SDS user id '{sds_user_id}' is not 12 digits"));
        }
        let mut roles = Vec::with_capacity(new.roles.len());
        for mut role in new.roles {
            if role.id.is_empty() {
                role.id = digits(12);
            }
            if role.organisation.is_empty()
                || role.organisation.len() > 10
                || !role.organisation.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return invalid(format!(
                    "role {}: '{}' is not an ODS code",
                    role.id, role.organisation
                ));
            }
            role.organisation = role.organisation.to_ascii_uppercase();
            if let Some(unknown) = role
                .business_functions
                .iter()
                .find(|f| !BUSINESS_FUNCTIONS.contains(&f.as_str()))
            {
                return invalid(format!(
                    "role {}: '{unknown}' is not an e-RS business function ({})",
                    role.id,
                    BUSINESS_FUNCTIONS.join(", ")
                ));
            }
            roles.push(role);
        }
        let card = Smartcard {
            passcode_hash: passcode_hash(&id, &new.passcode),
            id,
            sds_user_id,
            given_name: new.given_name.trim().to_owned(),
            family_name: new.family_name.trim().to_owned(),
            environment: new.environment,
            aal: new.aal,
            roles,
        };
        let document =
            serde_json::to_value(&card).map_err(|e| IdentityError::Fault(e.to_string()))?;
        let id = card.id.clone();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.put(PLATFORM, "Smartcard", &id, document, &[], Expect::Absent)
                        .await?;
                    Ok::<_, IdentityError>(())
                })
            })
            .await?;
        Ok(card)
    }

    /// A card by id, read afresh.
    pub async fn card(&self, id: &str) -> Result<Option<Smartcard>, IdentityError> {
        let record = self.store.read_fresh(PLATFORM, "Smartcard", id).await?;
        match record {
            Some(record) if !record.is_deleted() => Ok(Some(parse(record.body.as_deref())?)),
            _ => Ok(None),
        }
    }

    /// As [`Identity::card`], from a copy at most [`crate::apps::CREDENTIAL_MAX_AGE`] old: for
    /// checking, on each request, that a signed-in user's card has not been withdrawn.
    pub async fn card_recent(&self, id: &str) -> Result<Option<Smartcard>, IdentityError> {
        let record = self
            .store
            .read_recent(PLATFORM, "Smartcard", id, crate::apps::CREDENTIAL_MAX_AGE)
            .await?;
        match record {
            Some(record) if !record.is_deleted() => Ok(Some(parse(record.body.as_deref())?)),
            _ => Ok(None),
        }
    }

    /// Every card of `environment`, by name.
    pub async fn cards(&self, environment: &str) -> Result<Vec<Smartcard>, IdentityError> {
        let mut cards: Vec<Smartcard> = crate::apps::list_documents(&self.store, "Smartcard")
            .await?
            .iter()
            .filter_map(|body| serde_json::from_str::<Smartcard>(body).ok())
            .filter(|card| card.environment == environment)
            .collect();
        cards.sort_by(|a, b| (&a.family_name, &a.given_name).cmp(&(&b.family_name, &b.given_name)));
        Ok(cards)
    }

    /// Withdraws a card; tokens already issued to it stop working at their next use.
    pub async fn revoke_card(&self, id: &str) -> Result<bool, IdentityError> {
        let id = id.to_owned();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let gone = tx.delete(PLATFORM, "Smartcard", &id, Expect::Any).await?;
                    Ok::<_, IdentityError>(gone.is_some())
                })
            })
            .await
    }

    /// The signing key of `environment`, made and stored on first use. Two nodes making it at
    /// once both write "must not exist"; the loser reads the winner's.
    async fn key(&self, environment: &str) -> Result<Arc<ProviderKey>, IdentityError> {
        let mut keys = self.keys.lock().await;
        if let Some(key) = keys.get(environment) {
            return Ok(key.clone());
        }
        let stored = match self
            .store
            .read_fresh(PLATFORM, "IdpKey", environment)
            .await?
        {
            Some(record) if !record.is_deleted() => parse::<Value>(record.body.as_deref())?,
            _ => {
                let kid = format!(
                    "{environment}-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                let generated =
                    tokio::task::spawn_blocking(move || crate::keys::generate_for_tests(&kid))
                        .await
                        .map_err(|e| IdentityError::Fault(e.to_string()))?
                        .map_err(|e| IdentityError::Fault(e.to_string()))?;
                let mut jwk = generated.public_jwk.clone();
                jwk["alg"] = json!("RS256");
                let document = json!({
                    "kid": generated.kid,
                    "private_pem": generated.private_pem,
                    "public_jwk": jwk,
                });
                let env = environment.to_owned();
                let to_store = document.clone();
                let written = self
                    .store
                    .write(move |tx| {
                        Box::pin(async move {
                            tx.put(PLATFORM, "IdpKey", &env, to_store, &[], Expect::Absent)
                                .await
                        })
                    })
                    .await;
                match written {
                    Ok(_) => document,
                    Err(StoreError::AlreadyExists { .. }) => {
                        let record = self
                            .store
                            .read_fresh(PLATFORM, "IdpKey", environment)
                            .await?
                            .ok_or_else(|| IdentityError::Fault("signing key vanished".into()))?;
                        parse::<Value>(record.body.as_deref())?
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let text = |k: &str| stored[k].as_str().unwrap_or_default().to_owned();
        let encoding = EncodingKey::from_rsa_pem(text("private_pem").as_bytes())
            .map_err(|e| IdentityError::Fault(e.to_string()))?;
        let jwk: Jwk = serde_json::from_value(stored["public_jwk"].clone())
            .map_err(|e| IdentityError::Fault(e.to_string()))?;
        let decoding =
            DecodingKey::from_jwk(&jwk).map_err(|e| IdentityError::Fault(e.to_string()))?;
        let key = Arc::new(ProviderKey {
            kid: text("kid"),
            encoding,
            decoding,
            public_jwk: stored["public_jwk"].clone(),
        });
        keys.insert(environment.to_owned(), key.clone());
        Ok(key)
    }

    /// The provider's JWKS in `environment`.
    pub async fn jwks(&self, environment: &str) -> Result<Value, IdentityError> {
        let key = self.key(environment).await?;
        Ok(json!({"keys": [key.public_jwk]}))
    }

    /// An ID token for `card` signed in as `role`, for `audience` (the client id).
    pub async fn id_token(
        &self,
        card: &Smartcard,
        role: &str,
        audience: &str,
        nonce: Option<&str>,
    ) -> Result<String, IdentityError> {
        let key = self.key(&card.environment).await?;
        let now = now_secs();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        let mut claims = json!({
            "iss": self.issuer(&card.environment),
            "sub": card.id,
            "aud": audience,
            "iat": now,
            "auth_time": now,
            "exp": now + ID_TOKEN_SECS,
            "jti": uuid::Uuid::new_v4().to_string(),
            "acr": format!("AAL{}_ANY", card.aal),
            "amr": [if card.aal == 3 { "SCAL" } else { "PWD" }],
            "authentication_assurance_level": card.aal.to_string(),
            "id_assurance_level": "3",
            "nhsid_useruid": card.sds_user_id,
            "name": card.name(),
            "given_name": card.given_name,
            "family_name": card.family_name,
            "selected_roleid": role,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| IdentityError::Fault(e.to_string()))
    }

    /// Checks an ID token this provider issued in `environment` and returns its claims. The
    /// error says what is wrong with it, for the caller's error body.
    pub async fn verify_id_token(
        &self,
        environment: &str,
        token: &str,
    ) -> Result<Value, VerifyError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| VerifyError::Invalid("Malformed JWT in subject_token".into()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS512) {
            return Err(VerifyError::Invalid(
                "Invalid 'alg' header in subject_token JWT - unsupported JWT algorithm - must be 'RS256' or 'RS512'".into(),
            ));
        }
        if header.kid.is_none() {
            return Err(VerifyError::Invalid(
                "Missing 'kid' header in subject_token JWT".into(),
            ));
        }
        let key = self.key(environment).await.map_err(VerifyError::Fault)?;
        if header.kid.as_deref() != Some(key.kid.as_str()) {
            return Err(VerifyError::Unauthorized(
                "Invalid 'kid' header in subject_token JWT - no matching public key".into(),
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.validate_aud = false;
        validation.leeway = 10;
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.set_issuer(&[self.issuer(environment)]);
        match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
            Ok(data) => Ok(data.claims),
            Err(err) => Err(VerifyError::Unauthorized(match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "Invalid 'exp' claim in subject_token JWT - JWT has expired".into()
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => format!(
                    "Missing or non-matching 'iss' claim in subject_token JWT - this environment's identity provider is {}",
                    self.issuer(environment)
                ),
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(claim) => {
                    format!("Missing '{claim}' claim in subject_token JWT")
                }
                _ => "subject_token JWT signature verification failed".into(),
            })),
        }
    }

    /// Issues a single-use authorization code for a completed sign-in; `kind` keeps the
    /// provider's codes ([`IDP_CODE`]) apart from the platform's ([`PLATFORM_CODE`]).
    pub(crate) async fn issue_code(
        &self,
        kind: &'static str,
        grant: CodeGrant,
    ) -> Result<String, IdentityError> {
        let code = format!("{}", uuid::Uuid::new_v4().simple());
        let id = key_hash(&code);
        let document =
            serde_json::to_value(&grant).map_err(|e| IdentityError::Fault(e.to_string()))?;
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.put(PLATFORM, kind, &id, document, &[], Expect::Absent)
                        .await?;
                    Ok::<_, IdentityError>(())
                })
            })
            .await?;
        Ok(code)
    }

    /// Redeems a code: it is gone afterwards, whether or not it was still valid.
    pub(crate) async fn redeem_code(
        &self,
        kind: &'static str,
        code: &str,
    ) -> Result<Option<CodeGrant>, IdentityError> {
        take(&self.store, kind, &key_hash(code))
            .await?
            .map(|value| {
                serde_json::from_value::<CodeGrant>(value)
                    .map_err(|e| IdentityError::Fault(e.to_string()))
            })
            .transpose()
            .map(|grant| grant.filter(|g| g.expires > now_secs()))
    }

    /// An access token for the provider's own `userinfo`.
    pub async fn issue_userinfo_token(
        &self,
        card: &str,
        role: &str,
    ) -> Result<String, IdentityError> {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let id = key_hash(&token);
        let document = json!({"card": card, "role": role, "expires": now_secs() + IDP_ACCESS_SECS});
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.put(PLATFORM, "IdpAccess", &id, document, &[], Expect::Absent)
                        .await?;
                    Ok::<_, IdentityError>(())
                })
            })
            .await?;
        Ok(token)
    }

    /// What `userinfo` says for a provider access token.
    pub async fn userinfo(&self, token: &str) -> Result<Option<Value>, IdentityError> {
        let Some(record) = self
            .store
            .read_fresh(PLATFORM, "IdpAccess", &key_hash(token))
            .await?
        else {
            return Ok(None);
        };
        let grant: Value = parse(record.body.as_deref())?;
        if grant["expires"].as_u64().unwrap_or(0) <= now_secs() {
            return Ok(None);
        }
        let Some(card) = self
            .card(grant["card"].as_str().unwrap_or_default())
            .await?
        else {
            return Ok(None);
        };
        let roles: Vec<Value> = card
            .roles
            .iter()
            .map(|role| {
                json!({
                    "person_roleid": role.id,
                    "org_code": role.organisation,
                    "role_code": role.role_code,
                    "role_name": role.role_name,
                    "business_functions": role.business_functions,
                })
            })
            .collect();
        Ok(Some(json!({
            "sub": card.id,
            "nhsid_useruid": card.sds_user_id,
            "name": card.name(),
            "given_name": card.given_name,
            "family_name": card.family_name,
            "selected_roleid": grant["role"],
            "nhsid_nrbac_roles": roles,
        })))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn public_url(&self) -> &str {
        &self.public_url
    }
}

/// Why an ID token was refused: bad request, or not acceptable as a credential.
#[derive(Debug)]
pub enum VerifyError {
    /// The token is malformed (400).
    Invalid(String),
    /// The token does not prove anything here (401).
    Unauthorized(String),
    /// The provider itself failed.
    Fault(IdentityError),
}

/// Reads and deletes a single-use record in one unit of work; `None` when it was not there.
pub(crate) async fn take(
    store: &Store,
    kind: &'static str,
    id: &str,
) -> Result<Option<Value>, StoreError> {
    let id = id.to_owned();
    store
        .write(move |tx| {
            Box::pin(async move {
                let Some(record) = tx.read(PLATFORM, kind, &id).await? else {
                    return Ok(None);
                };
                if record.is_deleted() {
                    return Ok(None);
                }
                tx.delete(PLATFORM, kind, &id, Expect::Any).await?;
                Ok(record
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok()))
            })
        })
        .await
}

/// The cards `carehub up` seeds into an integration environment when it has none: one per
/// kind of e-RS user, at a GP practice (`B82617`) and a provider trust site (`R1A14`). Every
/// passcode is `1234`.
pub fn seed_cards(environment: &str) -> Vec<NewSmartcard> {
    let card = |n: u8, given: &str, family: &str, aal: u8, roles: Vec<RoleProfile>| NewSmartcard {
        id: Some(format!("5e1c0000-0000-4000-8000-0000000000{n:02}")),
        sds_user_id: Some(format!("5550000000{n:02}")),
        given_name: given.into(),
        family_name: family.into(),
        environment: environment.into(),
        aal,
        passcode: "1234".into(),
        roles,
    };
    let role =
        |n: u8, sub: u8, code: &str, name: &str, ods: &str, functions: &[&str]| RoleProfile {
            id: format!("5551000000{n:01}{sub:01}"),
            role_code: code.into(),
            role_name: name.into(),
            organisation: ods.into(),
            business_functions: functions.iter().map(|f| (*f).to_owned()).collect(),
        };
    const GP: &str = "B82617";
    const TRUST: &str = "R1A14";
    vec![
        card(
            1,
            "Ada",
            "Referrer",
            3,
            vec![
                role(
                    1,
                    1,
                    "R8000",
                    "Clinical Practitioner Access Role",
                    GP,
                    &["REFERRING_CLINICIAN"],
                ),
                role(
                    1,
                    2,
                    "R8003",
                    "Health Professional Access Role",
                    TRUST,
                    &["SERVICE_PROVIDER_CLINICIAN"],
                ),
            ],
        ),
        card(
            2,
            "Bryn",
            "Practice-Admin",
            3,
            vec![role(
                2,
                1,
                "R8008",
                "Admin and Clerical",
                GP,
                &["REFERRING_ADMIN", "REFERRING_CLINICIAN_ADMIN"],
            )],
        ),
        card(
            3,
            "Cara",
            "Consultant",
            3,
            vec![role(
                3,
                1,
                "R8000",
                "Clinical Practitioner Access Role",
                TRUST,
                &["SERVICE_PROVIDER_CLINICIAN"],
            )],
        ),
        card(
            4,
            "Dev",
            "Booking-Clerk",
            3,
            vec![role(
                4,
                1,
                "R8008",
                "Admin and Clerical",
                TRUST,
                &["SERVICE_PROVIDER_ADMIN", "BOOKING_MANAGER"],
            )],
        ),
        card(
            5,
            "Esme",
            "Triage-Admin",
            3,
            vec![role(
                5,
                1,
                "R8008",
                "Admin and Clerical",
                TRUST,
                &["SERVICE_PROVIDER_CLINICIAN_ADMIN"],
            )],
        ),
        card(
            6,
            "Finn",
            "Analyst",
            2,
            vec![role(
                6,
                1,
                "R8010",
                "Analyst",
                TRUST,
                &["INFORMATION_ANALYST", "COMMISSIONER"],
            )],
        ),
    ]
}

/// Seeds [`seed_cards`] into `environment` unless it has cards already.
pub async fn seed(identity: &Identity, environment: &str) -> Result<usize, IdentityError> {
    if !identity.cards(environment).await?.is_empty() {
        return Ok(0);
    }
    let cards = seed_cards(environment);
    let count = cards.len();
    for mut card in cards {
        // The documented ids belong to `int`; a card id names one card in one environment, so
        // other environments get fresh ones.
        if environment != "int" {
            card.id = None;
            card.sds_user_id = None;
            for role in &mut card.roles {
                role.id.clear();
            }
        }
        identity.issue_card(card).await?;
    }
    Ok(count)
}
