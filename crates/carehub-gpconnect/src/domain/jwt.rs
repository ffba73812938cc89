//! The cross-organisation audit and provenance token: an unsigned JWT (`alg: none`) that every
//! consumer request carries as `Authorization: Bearer`, naming who asks, from where, with what
//! system, why, and for what scope. It proves nothing (the Spine's mutual TLS does that); the
//! provider checks that it is well formed, current and fit for the interaction, and keeps its
//! identities for the audit trail.

use base64::Engine;
use carehub_fhir::FhirVersion;
use serde_json::{Map, Value};

use super::error::{GpcError, SpineCode};
use super::interaction::Interaction;

/// How long a token lives: `exp` is exactly `iat` + 300 seconds.
pub const LIFETIME_SECONDS: i64 = 300;

/// The scopes a token may request: the four of the audit token, and the confidentiality
/// markers of Access Record Structured.
const KNOWN_SCOPES: [&str; 6] = [
    "patient/*.read",
    "patient/*.write",
    "organization/*.read",
    "organization/*.write",
    "conf/N",
    "conf/R",
];

/// `reason_for_request` of a direct-care request.
const DIRECT_CARE: &str = "directcare";

/// `reason_for_request` of a GP2GP migration (`$gpc.migratestructuredrecord`).
pub const MIGRATION: &str = "migration";

const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SDS_USER_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-user-id";
const SDS_ROLE_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";

/// What the token says about the request, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditClaims {
    /// The consumer system's endpoint (`iss`).
    pub issuer: String,
    /// The requesting organisation's ODS code.
    pub organisation: String,
    /// The user's SDS user id, `UNK` without a smartcard.
    pub user: String,
    /// The user's SDS role profile id, when sent (`UNK` without a smartcard).
    pub role: Option<String>,
    /// Why (`directcare`).
    pub reason: String,
    /// The scopes requested.
    pub scopes: Vec<String>,
}

fn bad(diagnostics: impl Into<String>) -> GpcError {
    GpcError::bad_request(diagnostics)
}

fn invalid(diagnostics: impl Into<String>) -> GpcError {
    GpcError::new(SpineCode::InvalidResource, diagnostics)
}

fn decode_part(part: &str, what: &str) -> Result<Map<String, Value>, GpcError> {
    // Base64url without padding, as JWTs are; padded input is tolerated.
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| bad(format!("The JWT {what} is not base64url encoded")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad(format!("The JWT {what} is not a JSON object"))),
    }
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, GpcError> {
    match claims.get(name) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            Err(bad(format!("The JWT claim '{name}' is missing or empty")))
        }
        Some(_) => Err(bad(format!("The JWT claim '{name}' must be a string"))),
    }
}

fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<i64, GpcError> {
    match claims.get(name) {
        Some(value) => value.as_i64().ok_or_else(|| {
            bad(format!(
                "The JWT claim '{name}' must be a whole number of seconds since 1970"
            ))
        }),
        None => Err(bad(format!("The JWT claim '{name}' is missing"))),
    }
}

fn resource_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
    resource_type: &str,
) -> Result<&'a Value, GpcError> {
    let Some(value) = claims.get(name) else {
        return Err(bad(format!("The JWT claim '{name}' is missing")));
    };
    if !value.is_object() {
        return Err(bad(format!(
            "The JWT claim '{name}' must be a FHIR {resource_type} resource"
        )));
    }
    match value.get("resourceType").and_then(Value::as_str) {
        Some(found) if found == resource_type => {}
        // A claim holding another resource fails validation as the resource it must be
        // (422), as the provider test suite expects.
        Some(found) => {
            return Err(invalid(format!(
                "The JWT claim '{name}' must be a {resource_type}, not a {found}"
            )));
        }
        None => {
            return Err(invalid(format!(
                "The JWT claim '{name}' has no resourceType; it must be a {resource_type}"
            )));
        }
    }
    let issues = carehub_fhir::json::validate_resource(FhirVersion::Stu3.model(), value);
    if let Some(issue) = issues.iter().find(|i| i.is_error()) {
        return Err(invalid(format!(
            "The JWT claim '{name}' is not a valid STU3 {resource_type}: {} at {}",
            issue.diagnostics,
            issue
                .expression
                .first()
                .map(String::as_str)
                .unwrap_or(resource_type)
        )));
    }
    Ok(value)
}

/// The value of the first identifier of `resource` with `system`.
fn identifier<'a>(resource: &'a Value, system: &str) -> Option<&'a str> {
    resource
        .get("identifier")?
        .as_array()?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(system))?
        .get("value")?
        .as_str()
}

/// Checks the `Authorization` header of a request for `interaction` at time `now` (seconds
/// since 1970) and returns its identities.
pub fn check(
    authorization: Option<&str>,
    interaction: Interaction,
    now: i64,
) -> Result<AuditClaims, GpcError> {
    let claims = decode(authorization)?;
    let common = common_claims(&claims, interaction, now)?;
    let device = resource_claim(&claims, "requesting_device", "Device")?;
    let organisation = resource_claim(&claims, "requesting_organization", "Organization")?;
    let practitioner = resource_claim(&claims, "requesting_practitioner", "Practitioner")?;
    check_device(device, invalid)?;
    let ods = identifier(organisation, ODS_SYSTEM).ok_or_else(|| {
        invalid(format!(
            "The JWT 'requesting_organization' must have an identifier of system {ODS_SYSTEM}"
        ))
    })?;
    if organisation.get("name").and_then(Value::as_str).is_none() {
        return Err(invalid(
            "The JWT 'requesting_organization' must have a name",
        ));
    }
    check_subject(practitioner, &common.subject, invalid)?;
    if practitioner.get("name").is_none() {
        return Err(invalid(
            "The JWT 'requesting_practitioner' must have a name",
        ));
    }
    let user = identifier(practitioner, SDS_USER_SYSTEM).ok_or_else(|| {
        invalid(format!(
            "The JWT 'requesting_practitioner' must have an identifier of system {SDS_USER_SYSTEM} (UNK without a smartcard)"
        ))
    })?;
    Ok(AuditClaims {
        issuer: common.issuer,
        organisation: ods.to_owned(),
        user: user.to_owned(),
        role: identifier(practitioner, SDS_ROLE_SYSTEM).map(str::to_owned),
        reason: common.reason,
        scopes: common.scopes,
    })
}

/// The audience of every token of the 0.x (DSTU2) line: fixed, not the provider's URL.
pub const DSTU2_AUDIENCE: &str = "https://authorize.fhir.nhs.net/token";
const DSTU2_NHS_NUMBER_SYSTEM: &str = "http://fhir.nhs.net/Id/nhs-number";
const DSTU2_ODS_SYSTEM: &str = "http://fhir.nhs.net/Id/ods-organization-code";
/// The 0.x specification names the SDS user id system without `/Id/` in the audit token (and
/// keeps it so, because providers validated it); the profile's own system has it. Both pass.
const DSTU2_SDS_USER_SYSTEMS: [&str; 2] = [
    "http://fhir.nhs.net/sds-user-id",
    "http://fhir.nhs.net/Id/sds-user-id",
];
const DSTU2_SDS_ROLE_SYSTEM: &str = "http://fhir.nhs.net/Id/sds-role-profile-id";

/// The elements DSTU2 (FHIR 1.0.2) defines on the resources an audit token carries, which is
/// all a provider without DSTU2 definitions needs to refuse a claim resource with an element
/// that does not exist.
fn dstu2_elements(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "Device" => &[
            "identifier",
            "type",
            "note",
            "status",
            "manufacturer",
            "model",
            "version",
            "manufactureDate",
            "expiry",
            "udi",
            "lotNumber",
            "owner",
            "location",
            "patient",
            "contact",
            "url",
        ],
        "Organization" => &[
            "identifier",
            "active",
            "type",
            "name",
            "telecom",
            "address",
            "partOf",
            "contact",
        ],
        "Practitioner" => &[
            "identifier",
            "active",
            "name",
            "telecom",
            "address",
            "gender",
            "birthDate",
            "photo",
            "practitionerRole",
            "qualification",
            "communication",
        ],
        "Patient" => &[
            "identifier",
            "active",
            "name",
            "telecom",
            "gender",
            "birthDate",
            "deceasedBoolean",
            "deceasedDateTime",
            "address",
            "maritalStatus",
            "multipleBirthBoolean",
            "multipleBirthInteger",
            "photo",
            "contact",
            "animal",
            "communication",
            "careProvider",
            "managingOrganization",
            "link",
        ],
        _ => &[],
    }
}

/// A resource claim of a 0.x token: the right DSTU2 resource type (400 otherwise, as the 0.7
/// test suite expects) with only elements DSTU2 defines (422 otherwise).
fn dstu2_resource_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
    allowed: &[&str],
) -> Result<&'a Value, GpcError> {
    let value = claims
        .get(name)
        .filter(|v| v.is_object())
        .ok_or_else(|| bad(format!("The JWT claim '{name}' must be a FHIR resource")))?;
    let found = value
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !allowed.contains(&found) {
        return Err(bad(format!(
            "The JWT claim '{name}' must be a {}, not '{found}'",
            allowed.join(" or ")
        )));
    }
    const BASE: [&str; 8] = [
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
    ];
    let elements = dstu2_elements(found);
    if let Some(unknown) = value
        .as_object()
        .into_iter()
        .flatten()
        .find_map(|(key, _)| {
            let known = BASE.contains(&key.as_str())
                || key == "modifierExtension"
                || elements.contains(&key.as_str());
            (!known).then_some(key)
        })
    {
        return Err(invalid(format!(
            "The JWT claim '{name}' is not a valid DSTU2 {found}: it has no element '{unknown}'"
        )));
    }
    Ok(value)
}

/// The record a 0.x token says it asks for (`requested_record`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedRecord {
    /// A patient, by NHS number (`$gpc.getcarerecord`).
    Patient(String),
    /// An organisation, by ODS code (the Conformance statement).
    Organization(String),
}

/// Checks the audit token of an Access Record HTML (0.x, DSTU2) request: the claims of the
/// STU3 line plus `requested_record`, the fixed audience, and DSTU2 resources with the
/// `http://fhir.nhs.net` identifier systems.
pub fn check_dstu2(
    authorization: Option<&str>,
    interaction: Interaction,
    now: i64,
) -> Result<(AuditClaims, RequestedRecord), GpcError> {
    let claims = decode(authorization)?;
    let common = common_claims(&claims, interaction, now)?;
    if common.audience != DSTU2_AUDIENCE {
        return Err(bad(format!(
            "The JWT 'aud' must be '{DSTU2_AUDIENCE}', not '{}'",
            common.audience
        )));
    }
    let record = dstu2_resource_claim(&claims, "requested_record", &["Patient", "Organization"])?;
    let requested = if record["resourceType"] == "Patient" {
        identifier(record, DSTU2_NHS_NUMBER_SYSTEM)
            .map(|n| RequestedRecord::Patient(n.to_owned()))
    } else {
        identifier(record, DSTU2_ODS_SYSTEM).map(|o| RequestedRecord::Organization(o.to_owned()))
    }
    .ok_or_else(|| {
        bad(format!(
            "The JWT 'requested_record' must be a Patient with an identifier of system {DSTU2_NHS_NUMBER_SYSTEM} or an Organization with one of system {DSTU2_ODS_SYSTEM}"
        ))
    })?;
    let device = dstu2_resource_claim(&claims, "requesting_device", &["Device"])?;
    let organisation = dstu2_resource_claim(&claims, "requesting_organization", &["Organization"])?;
    let practitioner = dstu2_resource_claim(&claims, "requesting_practitioner", &["Practitioner"])?;
    check_device(device, bad)?;
    let ods = identifier(organisation, DSTU2_ODS_SYSTEM).ok_or_else(|| {
        bad(format!(
            "The JWT 'requesting_organization' must have an identifier of system {DSTU2_ODS_SYSTEM}"
        ))
    })?;
    check_subject(practitioner, &common.subject, bad)?;
    // DSTU2's Practitioner has one name, with family and given as arrays.
    let name = &practitioner["name"];
    for part in ["family", "given"] {
        if name
            .get(part)
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            return Err(bad(format!(
                "The JWT 'requesting_practitioner' must have a name with a {part} name"
            )));
        }
    }
    let user = DSTU2_SDS_USER_SYSTEMS
        .iter()
        .find_map(|system| identifier(practitioner, system))
        .ok_or_else(|| {
            bad(format!(
                "The JWT 'requesting_practitioner' must have an identifier of system {} (UNK without a smartcard)",
                DSTU2_SDS_USER_SYSTEMS[0]
            ))
        })?;
    Ok((
        AuditClaims {
            issuer: common.issuer,
            organisation: ods.to_owned(),
            user: user.to_owned(),
            role: identifier(practitioner, DSTU2_SDS_ROLE_SYSTEM).map(str::to_owned),
            reason: common.reason,
            scopes: common.scopes,
        },
        requested,
    ))
}

/// Builds a 0.x audit token (for consumers and tests) for `record` (`RequestedRecord`), by a
/// practitioner `user` at organisation `ods`, issued at `iat`, asking `scope`.
pub fn token_dstu2(
    record: &RequestedRecord,
    ods: &str,
    user: &str,
    scope: &str,
    iat: i64,
) -> String {
    let requested_record = match record {
        RequestedRecord::Patient(nhs) => serde_json::json!({
            "resourceType": "Patient",
            "identifier": [{"system": DSTU2_NHS_NUMBER_SYSTEM, "value": nhs}],
        }),
        RequestedRecord::Organization(ods) => serde_json::json!({
            "resourceType": "Organization",
            "identifier": [{"system": DSTU2_ODS_SYSTEM, "value": ods}],
        }),
    };
    let claims = serde_json::json!({
        "iss": "https://consumer.carehub.dev",
        "sub": "1",
        "aud": DSTU2_AUDIENCE,
        "exp": iat + LIFETIME_SECONDS,
        "iat": iat,
        "reason_for_request": DIRECT_CARE,
        "requested_record": requested_record,
        "requested_scope": scope,
        "requesting_device": {
            "resourceType": "Device",
            "id": "1",
            "identifier": [{"system": "https://consumer.carehub.dev/Id/device", "value": "consumer-1"}],
            "model": "carehub consumer",
            "version": "1.0",
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "id": "1",
            "identifier": [{"system": DSTU2_ODS_SYSTEM, "value": ods}],
            "name": "Consumer organisation",
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": "1",
            "identifier": [{"system": DSTU2_SDS_USER_SYSTEMS[0], "value": user}],
            "name": {"family": ["Consumer"], "given": ["Casey"], "prefix": ["Dr"]},
            "practitionerRole": [{"role": {"coding": [{
                "system": "http://fhir.nhs.net/ValueSet/sds-job-role-name-1",
                "code": "UNK",
            }]}}],
        },
    });
    encode(&serde_json::json!({"alg": "none", "typ": "JWT"}), &claims)
}

/// The claims every token has whatever its line, checked.
struct CommonClaims {
    issuer: String,
    subject: String,
    audience: String,
    reason: String,
    scopes: Vec<String>,
}

/// The claims object of the bearer token in an `Authorization` header.
fn decode(authorization: Option<&str>) -> Result<Map<String, Value>, GpcError> {
    let header = authorization.ok_or_else(|| {
        bad("The Authorization header is missing; send 'Bearer' and the audit JWT")
    })?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| bad("The Authorization header must be 'Bearer' followed by the audit JWT"))?
        .trim();
    let parts: Vec<&str> = token.split('.').collect();
    let [head, payload, signature] = parts.as_slice() else {
        return Err(bad(
            "The bearer token is not a JWT: it must be three parts separated by '.'",
        ));
    };
    let head = decode_part(head, "header")?;
    if head.get("alg").and_then(Value::as_str) != Some("none") {
        return Err(bad(
            "The JWT header must say \"alg\": \"none\"; the audit token is not signed",
        ));
    }
    if !signature.is_empty() {
        return Err(bad(
            "The JWT must have an empty signature (it ends with '.')",
        ));
    }
    decode_part(payload, "payload")
}

/// Checks the identities, lifetime, reason and scope of `claims` for `interaction` at `now`.
fn common_claims(
    claims: &Map<String, Value>,
    interaction: Interaction,
    now: i64,
) -> Result<CommonClaims, GpcError> {
    let issuer = string_claim(claims, "iss")?.to_owned();
    let subject = string_claim(claims, "sub")?.to_owned();
    let audience = string_claim(claims, "aud")?.to_owned();
    let expires = time_claim(claims, "exp")?;
    let issued = time_claim(claims, "iat")?;
    let reason = string_claim(claims, "reason_for_request")?.to_owned();
    let scope = string_claim(claims, "requested_scope")?;
    for name in [
        "requesting_device",
        "requesting_organization",
        "requesting_practitioner",
    ] {
        if !claims.contains_key(name) {
            return Err(bad(format!("The JWT claim '{name}' is missing")));
        }
    }

    if expires - issued != LIFETIME_SECONDS {
        return Err(bad(format!(
            "The JWT 'exp' must be 'iat' + {LIFETIME_SECONDS} seconds; it is 'iat' + {}",
            expires - issued
        )));
    }
    // A token issued a little in the future (a consumer's clock running ahead) is accepted;
    // an expired one is not.
    if expires <= now {
        return Err(bad(format!(
            "The JWT expired {} seconds ago; send a new token with every request",
            now - expires
        )));
    }
    let expected = if interaction == Interaction::MigrateStructuredRecord {
        MIGRATION
    } else {
        DIRECT_CARE
    };
    if reason != expected {
        return Err(bad(format!(
            "The JWT 'reason_for_request' must be '{expected}' for this interaction, not '{reason}'"
        )));
    }
    let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
    if let Some(unknown) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(bad(format!(
            "The JWT 'requested_scope' holds '{unknown}', which is not a GP Connect scope ({})",
            KNOWN_SCOPES.join(", ")
        )));
    }
    let needed = interaction.scope();
    if !scopes.iter().any(|s| s == needed.text()) {
        return Err(bad(format!(
            "The JWT 'requested_scope' is '{scope}'; this interaction needs '{}'",
            needed.text()
        )));
    }
    Ok(CommonClaims {
        issuer,
        subject,
        audience,
        reason,
        scopes,
    })
}

/// The device claim names the consumer system: an identifier, a model and a version.
fn check_device(device: &Value, fail: fn(String) -> GpcError) -> Result<(), GpcError> {
    if device
        .get("identifier")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(fail(
            "The JWT 'requesting_device' must have an identifier".into(),
        ));
    }
    for element in ["model", "version"] {
        if device.get(element).and_then(Value::as_str).is_none() {
            return Err(fail(format!(
                "The JWT 'requesting_device' must have a {element}"
            )));
        }
    }
    Ok(())
}

/// `sub` is the requesting practitioner's id.
fn check_subject(
    practitioner: &Value,
    subject: &str,
    missing: fn(String) -> GpcError,
) -> Result<(), GpcError> {
    match practitioner.get("id").and_then(Value::as_str) {
        Some(id) if id == subject => Ok(()),
        Some(id) => Err(bad(format!(
            "The JWT 'sub' ({subject}) must equal requesting_practitioner.id ({id})"
        ))),
        None => Err(missing(
            "The JWT 'requesting_practitioner' must have an id".into(),
        )),
    }
}

/// Builds an audit token (for consumers, the demonstrator scripts and tests): the claims of a
/// practitioner `user` at organisation `ods`, issued at `iat`, asking `scope`.
pub fn token(audience: &str, ods: &str, user: &str, scope: &str, iat: i64) -> String {
    token_for(DIRECT_CARE, audience, ods, user, scope, iat)
}

/// As [`token`], for `reason` (`directcare` or `migration`).
pub fn token_for(
    reason: &str,
    audience: &str,
    ods: &str,
    user: &str,
    scope: &str,
    iat: i64,
) -> String {
    let claims = serde_json::json!({
        "iss": "https://consumer.carehub.dev",
        "sub": "1",
        "aud": audience,
        "exp": iat + LIFETIME_SECONDS,
        "iat": iat,
        "reason_for_request": reason,
        "requested_scope": scope,
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [{"system": "https://consumer.carehub.dev/Id/device", "value": "consumer-1"}],
            "model": "carehub consumer",
            "version": "1.0",
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": ods}],
            "name": "Consumer organisation",
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": "1",
            "identifier": [
                {"system": SDS_USER_SYSTEM, "value": user},
                {"system": SDS_ROLE_SYSTEM, "value": "UNK"},
            ],
            "name": [{"family": "Consumer", "given": ["Casey"], "prefix": ["Dr"]}],
        },
    });
    encode(&serde_json::json!({"alg": "none", "typ": "JWT"}), &claims)
}

/// An unsigned JWT of `header` and `claims`.
pub fn encode(header: &Value, claims: &Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        engine.encode(header.to_string()),
        engine.encode(claims.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims() -> Value {
        let token = token(
            "https://provider/B82617/STU3/1/gpconnect",
            "A11111",
            "G13579135",
            "patient/*.read",
            NOW,
        );
        let payload = token.split('.').nth(1).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    fn check_claims(claims: &Value) -> Result<AuditClaims, GpcError> {
        let bearer = format!(
            "Bearer {}",
            encode(&serde_json::json!({"alg": "none", "typ": "JWT"}), claims)
        );
        check(Some(&bearer), Interaction::ReadPatient, NOW)
    }

    #[test]
    fn a_well_formed_token_gives_its_identities() {
        let found = check_claims(&claims()).expect("valid");
        assert_eq!(found.organisation, "A11111");
        assert_eq!(found.user, "G13579135");
        assert_eq!(found.role.as_deref(), Some("UNK"));
    }

    #[test]
    fn lifetime_must_be_exactly_three_hundred_seconds() {
        for lifetime in [299, 301] {
            let mut c = claims();
            c["exp"] = serde_json::json!(NOW + lifetime);
            let error = check_claims(&c).expect_err("refused");
            assert_eq!(error.code, SpineCode::BadRequest, "{lifetime}");
        }
    }

    #[test]
    fn expired_tokens_are_refused_and_future_ones_accepted() {
        let mut c = claims();
        c["iat"] = serde_json::json!(NOW - 600);
        c["exp"] = serde_json::json!(NOW - 300);
        assert_eq!(
            check_claims(&c).expect_err("expired").code,
            SpineCode::BadRequest
        );
        let mut c = claims();
        c["iat"] = serde_json::json!(NOW + 120);
        c["exp"] = serde_json::json!(NOW + 420);
        assert!(check_claims(&c).is_ok());
    }

    #[test]
    fn every_claim_is_mandatory() {
        for name in [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "reason_for_request",
            "requested_scope",
            "requesting_device",
            "requesting_organization",
            "requesting_practitioner",
        ] {
            let mut c = claims();
            c.as_object_mut().map(|m| m.remove(name));
            let error = check_claims(&c).expect_err(name);
            assert_eq!(error.code, SpineCode::BadRequest, "{name}");
        }
    }

    #[test]
    fn the_scope_must_fit_the_interaction() {
        let mut c = claims();
        c["requested_scope"] = serde_json::json!("patient/*.write");
        assert_eq!(
            check_claims(&c).expect_err("scope").code,
            SpineCode::BadRequest
        );
        c["requested_scope"] = serde_json::json!("patient/*.read conf/N");
        assert!(check_claims(&c).is_ok());
    }

    #[test]
    fn invalid_claim_resources_are_invalid_resource() {
        let mut c = claims();
        c["requesting_device"]["model"] = serde_json::json!(42);
        assert_eq!(
            check_claims(&c).expect_err("device").code,
            SpineCode::InvalidResource
        );
        let mut c = claims();
        c["requesting_device"]["resourceType"] = serde_json::json!("InvalidResourceType");
        assert_eq!(
            check_claims(&c).expect_err("type").code,
            SpineCode::InvalidResource
        );
        let mut c = claims();
        c["requesting_device"]["invalidField"] = serde_json::json!("x");
        assert_eq!(
            check_claims(&c).expect_err("field").code,
            SpineCode::InvalidResource
        );
        let mut c = claims();
        c["requesting_practitioner"]["identifier"] = serde_json::json!([]);
        assert_eq!(
            check_claims(&c).expect_err("practitioner").code,
            SpineCode::InvalidResource
        );
    }

    #[test]
    fn unknown_identities_are_accepted() {
        let mut c = claims();
        c["requesting_practitioner"]["identifier"][0]["value"] = serde_json::json!("UNK");
        assert_eq!(check_claims(&c).expect("UNK").user, "UNK");
    }

    #[test]
    fn malformed_tokens_are_bad_requests() {
        for header in [
            None,
            Some("Basic abc"),
            Some("Bearer not-a-jwt"),
            Some("Bearer %%%.%%%."),
            Some("Bearer eyJhbGciOiJub25lIn0.e30.signature"),
        ] {
            let error = check(header, Interaction::ReadPatient, NOW).expect_err("refused");
            assert_eq!(error.code, SpineCode::BadRequest, "{header:?}");
        }
    }
}
