//! The Spine Directory Service: accredited systems (ASIDs, what each may send or receive) and
//! message handling endpoints (where a provider answers), with the SDS FHIR API's queries
//! (`/Device`, `/Endpoint`) and views. [`repo`] keeps them in the store partition `sds-{env}`.

pub mod repo;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const SYSTEM_ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// Interaction ids, as SDS identifies them.
pub const SYSTEM_INTERACTION: &str = "https://fhir.nhs.uk/Id/nhsServiceInteractionId";
/// MHS party keys.
pub const SYSTEM_PARTY_KEY: &str = "https://fhir.nhs.uk/Id/nhsMhsPartyKey";
const SYSTEM_ASID: &str = "https://fhir.nhs.uk/Id/nhsSpineASID";

/// An accredited system (an SDS `nhsAs` record): the interactions it may take part in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccreditedSystem {
    pub asid: String,
    pub party_key: String,
    /// The organisation the system serves.
    pub ods: String,
    /// The supplier's organisation.
    pub manufacturer: String,
    pub interactions: Vec<String>,
}

/// A message handling endpoint (an SDS `nhsMhs` record): where a provider answers the
/// interactions it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageHandler {
    pub party_key: String,
    pub ods: String,
    pub interactions: Vec<String>,
    /// The service root (`nhsMhsEndPoint`).
    pub address: String,
    pub fqdn: String,
    /// The endpoint's CPA id, which tells apart the endpoints of one party key (a GP system
    /// serves its STU3 and DSTU2 interactions at different roots); `cpa-{party key}` when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpa_id: Option<String>,
}

impl AccreditedSystem {
    /// As the SDS FHIR API's Device.
    pub fn to_resource(&self) -> Value {
        let mut extensions = vec![json!({
            "url": "https://fhir.nhs.uk/StructureDefinition/Extension-SDS-ManufacturingOrganisation",
            "valueReference": {"identifier": {"system": SYSTEM_ODS, "value": self.manufacturer}},
        })];
        extensions.extend(self.interactions.iter().map(|i| {
            json!({"url": "https://fhir.nhs.uk/StructureDefinition/Extension-SDS-NhsServiceInteractionId",
                   "valueReference": {"identifier": {"system": SYSTEM_INTERACTION, "value": i}}})
        }));
        json!({
            "resourceType": "Device",
            "id": format!("device-{}", self.asid),
            "extension": extensions,
            "identifier": [
                {"system": SYSTEM_ASID, "value": self.asid},
                {"system": SYSTEM_PARTY_KEY, "value": self.party_key},
            ],
            "owner": {"identifier": {"system": SYSTEM_ODS, "value": self.ods}},
        })
    }
}

impl MessageHandler {
    /// The CPA id: the endpoint's own key.
    pub fn cpa(&self) -> String {
        self.cpa_id
            .clone()
            .unwrap_or_else(|| format!("cpa-{}", self.party_key))
    }

    /// As the SDS FHIR API's Endpoint (one per interaction asked about, as SDS answers).
    pub fn to_resource(&self, interaction: Option<&str>) -> Value {
        let mut resource = json!({
            "resourceType": "Endpoint",
            "id": format!("endpoint-{}", self.cpa()),
            "status": "active",
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                               "code": "hl7-fhir-msg", "display": "HL7 FHIR Messaging"},
            "payloadType": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                                         "code": "any", "display": "Any"}]}],
            "address": self.address,
            "managingOrganization": {"identifier": {"system": SYSTEM_ODS, "value": self.ods}},
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/nhsMhsFQDN", "value": self.fqdn},
                {"system": SYSTEM_PARTY_KEY, "value": self.party_key},
                {"system": "https://fhir.nhs.uk/Id/nhsMhsCPAId", "value": self.cpa()},
                {"system": "https://fhir.nhs.uk/Id/nhsMHSId", "value": format!("mhs-{}", self.party_key)},
            ],
        });
        if let Some(interaction) = interaction {
            resource["extension"] = json!([{
                "url": "https://fhir.nhs.uk/StructureDefinition/Extension-SDS-NhsServiceInteractionId",
                "valueReference": {"identifier": {"system": SYSTEM_INTERACTION, "value": interaction}},
            }]);
        }
        resource
    }
}

/// A `system|value` token of one of the SDS query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryQuery {
    pub organisation: Option<String>,
    pub interaction: Option<String>,
    pub party_key: Option<String>,
    pub manufacturer: Option<String>,
}

/// Why an SDS query was refused (400 `BAD_REQUEST`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// Reads the query of `/Device` (`device`) or `/Endpoint`, with SDS's rules on which
/// parameters may come together.
pub fn parse_query(
    params: &[(String, String)],
    device: bool,
) -> Result<DirectoryQuery, QueryError> {
    let mut query = DirectoryQuery::default();
    let allowed: &[&str] = if device {
        &["organization", "identifier", "manufacturing-organization"]
    } else {
        &["organization", "identifier"]
    };
    for (name, value) in params {
        if !allowed.contains(&name.as_str()) {
            return Err(QueryError(format!("Illegal query parameter '{name}'")));
        }
        let (system, code) = value.split_once('|').unwrap_or(("", value));
        let bad = || {
            QueryError(format!(
                "Missing or invalid '{name}' query parameter: '{value}'"
            ))
        };
        match (name.as_str(), system) {
            ("organization", SYSTEM_ODS) if !code.is_empty() => {
                query.organisation = Some(code.to_owned())
            }
            ("manufacturing-organization", SYSTEM_ODS) if !code.is_empty() => {
                query.manufacturer = Some(code.to_owned())
            }
            ("identifier", SYSTEM_INTERACTION) if !code.is_empty() => {
                query.interaction = Some(code.to_owned())
            }
            ("identifier", SYSTEM_PARTY_KEY) if !code.is_empty() => {
                query.party_key = Some(code.to_owned())
            }
            _ => return Err(bad()),
        }
    }
    let (org, iid, key) = (
        query.organisation.is_some(),
        query.interaction.is_some(),
        query.party_key.is_some(),
    );
    let ok = if device {
        org && iid
    } else {
        (org && (iid || key)) || (iid && key)
    };
    if !ok {
        return Err(QueryError(if device {
            "Missing or invalid query parameters: /Device needs 'organization' and an 'identifier' of system https://fhir.nhs.uk/Id/nhsServiceInteractionId".into()
        } else {
            "Missing or invalid query parameters. Send one of these combinations: organization and interaction id, organization and party key, organization, interaction id and party key, or interaction id and party key".into()
        }));
    }
    Ok(query)
}

impl DirectoryQuery {
    /// Whether an accredited system answers the query.
    pub fn matches_system(&self, system: &AccreditedSystem) -> bool {
        self.organisation.as_ref().is_none_or(|o| *o == system.ods)
            && self
                .interaction
                .as_ref()
                .is_none_or(|i| system.interactions.contains(i))
            && self
                .party_key
                .as_ref()
                .is_none_or(|k| *k == system.party_key)
            && self
                .manufacturer
                .as_ref()
                .is_none_or(|m| *m == system.manufacturer)
    }

    /// Whether an endpoint answers the query.
    pub fn matches_handler(&self, handler: &MessageHandler) -> bool {
        self.organisation.as_ref().is_none_or(|o| *o == handler.ods)
            && self
                .interaction
                .as_ref()
                .is_none_or(|i| handler.interactions.contains(i))
            && self
                .party_key
                .as_ref()
                .is_none_or(|k| *k == handler.party_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn queries_need_the_sds_combinations() {
        let org = (
            "organization",
            "https://fhir.nhs.uk/Id/ods-organization-code|B82617",
        );
        let iid = (
            "identifier",
            "https://fhir.nhs.uk/Id/nhsServiceInteractionId|urn:x",
        );
        let key = (
            "identifier",
            "https://fhir.nhs.uk/Id/nhsMhsPartyKey|B82617-0000806",
        );
        assert!(parse_query(&q(&[org, iid]), true).is_ok());
        assert!(parse_query(&q(&[org]), true).is_err());
        assert!(parse_query(&q(&[iid, key]), false).is_ok());
        assert!(parse_query(&q(&[org]), false).is_err());
        assert!(parse_query(&q(&[iid]), false).is_err());
        assert!(parse_query(&q(&[org, iid, ("colour", "blue")]), true).is_err());
        assert!(parse_query(&q(&[("organization", "B82617"), iid]), true).is_err());
    }
}
