//! The audit trail: who read or wrote which resources, of which patient, when, and why.
//!
//! The gateway puts a [`Caller`] into each request it lets through; for such requests every
//! read, search, history and write leaves a FHIR R4 AuditEvent in the store's `audit` partition.
//! A write's AuditEvent is written in the same unit of work as the write itself, so there is
//! never a change without its record, nor a record of a change that did not happen. A read's
//! AuditEvent is committed before the answer leaves. Requests to the direct bases of a local
//! install carry no `Caller` and are not audited.
//!
//! The `audit` partition is indexed with R4's search parameters, so it can be searched like any
//! FHIR base (`agent`, `entity`, `patient`, `date`, `action`, `subtype`).

use std::sync::LazyLock;

use carehub_fhir::FhirVersion;
use carehub_fhir::datetime::format_instant;
use carehub_fhir::search::{IndexEntry, Indexer};
use carehub_store::{NewResource, Store, StoreError, Tx};
use serde_json::{Value, json};

/// The store partition of AuditEvents.
pub const AUDIT_BASE: &str = "audit";

/// Who is calling, as the gateway established it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The environment (`int`).
    pub environment: String,
    /// The API (`fhir-r4`).
    pub api: String,
    /// The calling application's id, when it identified itself.
    pub app_id: Option<String>,
    /// The application's name.
    pub app_name: Option<String>,
    /// The organisation (ODS code) behind the application or user.
    pub organisation: Option<String>,
    /// The user, for user-restricted access (SDS user id).
    pub user: Option<String>,
    /// The user's role (SDS role profile id or code).
    pub role: Option<String>,
    /// Why: the purpose of use (the product's, or what the caller claimed).
    pub purpose: Option<Purpose>,
    /// The request id, to tie the record to logs.
    pub request_id: String,
}

/// Why data is used: the codes of HL7's `v3-ActReason` that an API product may declare as its
/// purpose of use (`PurposeOfUse` value set), recorded as an AuditEvent's `purposeOfEvent`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PurposeOfUse {
    /// `TREAT`: direct care of the patient, what nearly every NHS API is for.
    #[default]
    Treatment,
    /// `ETREAT`: emergency treatment.
    EmergencyTreatment,
    /// `CAREMGT`: care management.
    CareManagement,
    /// `HOPERAT`: healthcare operations.
    HealthcareOperations,
    /// `HSYSADMIN`: health system administration.
    SystemAdministration,
    /// `RECORDMGT`: records management (moving a record between systems, as GP2GP does).
    RecordsManagement,
    /// `PATRQT`: the patient asked.
    PatientRequested,
    /// `PUBHLTH`: public health.
    PublicHealth,
    /// `HRESCH`: healthcare research.
    Research,
    /// `HPAYMT`: healthcare payment.
    Payment,
}

impl PurposeOfUse {
    /// Every purpose, in the order above.
    pub const ALL: [PurposeOfUse; 10] = [
        PurposeOfUse::Treatment,
        PurposeOfUse::EmergencyTreatment,
        PurposeOfUse::CareManagement,
        PurposeOfUse::HealthcareOperations,
        PurposeOfUse::SystemAdministration,
        PurposeOfUse::RecordsManagement,
        PurposeOfUse::PatientRequested,
        PurposeOfUse::PublicHealth,
        PurposeOfUse::Research,
        PurposeOfUse::Payment,
    ];

    /// The code system of the codes.
    pub const SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

    /// The code and its display.
    pub fn coding(self) -> (&'static str, &'static str) {
        match self {
            PurposeOfUse::Treatment => ("TREAT", "treatment"),
            PurposeOfUse::EmergencyTreatment => ("ETREAT", "Emergency Treatment"),
            PurposeOfUse::CareManagement => ("CAREMGT", "care management"),
            PurposeOfUse::HealthcareOperations => ("HOPERAT", "healthcare operations"),
            PurposeOfUse::SystemAdministration => ("HSYSADMIN", "health system administration"),
            PurposeOfUse::RecordsManagement => ("RECORDMGT", "records management"),
            PurposeOfUse::PatientRequested => ("PATRQT", "patient requested"),
            PurposeOfUse::PublicHealth => ("PUBHLTH", "public health"),
            PurposeOfUse::Research => ("HRESCH", "healthcare research"),
            PurposeOfUse::Payment => ("HPAYMT", "healthcare payment"),
        }
    }

    /// The purpose with `code`.
    pub fn from_code(code: &str) -> Option<PurposeOfUse> {
        PurposeOfUse::ALL
            .into_iter()
            .find(|purpose| purpose.coding().0 == code)
    }
}

/// The purpose of a call: the coded purpose of use, and the caller's own words for it when it
/// gave them (GP Connect's `reason_for_request` claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    /// The coded purpose.
    pub of_use: PurposeOfUse,
    /// What the caller said, as it said it.
    pub stated: Option<String>,
}

impl Purpose {
    /// `purposeOfEvent` of an AuditEvent.
    fn to_fhir(&self) -> Value {
        let (code, display) = self.of_use.coding();
        let mut concept =
            json!({"coding": [{"system": PurposeOfUse::SYSTEM, "code": code, "display": display}]});
        if let Some(stated) = &self.stated {
            concept["text"] = json!(stated);
        }
        concept
    }
}

/// What was done, in FHIR's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    Read,
    Vread,
    Search,
    History,
    Create,
    Update,
    Delete,
    Transaction,
    Batch,
    /// A FHIR operation of a product (`$ers.createReferral`), with its AuditEvent action
    /// (`C`, `R`, `U`, `D` or `E`).
    Operation(&'static str, &'static str),
}

impl Interaction {
    fn codes(self) -> (&'static str, &'static str) {
        // (restful-interaction code, AuditEvent.action)
        match self {
            Interaction::Read => ("read", "R"),
            Interaction::Vread => ("vread", "R"),
            Interaction::Search => ("search-type", "E"),
            Interaction::History => ("history-instance", "R"),
            Interaction::Create => ("create", "C"),
            Interaction::Update => ("update", "U"),
            Interaction::Delete => ("delete", "D"),
            Interaction::Transaction => ("transaction", "E"),
            Interaction::Batch => ("batch", "E"),
            Interaction::Operation(_, action) => ("operation", action),
        }
    }
}

static INDEXER: LazyLock<Indexer> = LazyLock::new(|| Indexer::new(FhirVersion::R4));

/// The patients a resource is about: itself if it is a Patient, else its `subject` or
/// `patient` references to one.
pub(crate) fn patients_of(resource_type: &str, id: &str, resource: Option<&Value>) -> Vec<String> {
    if resource_type == "Patient" {
        return vec![format!("Patient/{id}")];
    }
    let Some(resource) = resource else {
        return Vec::new();
    };
    ["subject", "patient", "beneficiary"]
        .iter()
        .filter_map(|key| resource.get(*key)?.get("reference")?.as_str())
        .filter(|reference| reference.starts_with("Patient/"))
        .map(str::to_owned)
        .collect()
}

/// An AuditEvent and its index entries.
pub fn event(
    caller: &Caller,
    interaction: Interaction,
    base_url: &str,
    entities: &[String],
    patients: &[String],
    query: Option<&str>,
) -> (String, Value, Vec<IndexEntry>) {
    let (code, action) = interaction.codes();
    let mut subtype =
        vec![json!({"system": "http://hl7.org/fhir/restful-interaction", "code": code})];
    if let Interaction::Operation(name, _) = interaction {
        subtype.push(json!({"system": "https://carehub.dev/CodeSystem/operation", "code": name}));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let mut agent = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                              "code": "datacollector", "display": "data collector"}]},
        "who": {
            "identifier": {"system": "https://carehub.dev/Id/application",
                           "value": caller.app_id.clone().unwrap_or_else(|| "anonymous".into())},
            "display": caller.app_name.clone().unwrap_or_else(|| "anonymous".into()),
        },
        "requestor": true,
    });
    // With a signed-in user, the user is the requestor and the application the system they
    // used; the user's organisation is where they acted.
    let mut agents = Vec::with_capacity(2);
    if let Some(user) = &caller.user {
        agent["requestor"] = json!(false);
        let mut person = json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                  "code": "AUT", "display": "author (originator)"}]},
            "who": {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": user}},
            "requestor": true,
        });
        if let Some(role) = &caller.role {
            person["role"] = json!([{"coding": [{"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "code": role}]}]);
        }
        if let Some(organisation) = &caller.organisation {
            person["location"] = json!({"display": format!("ODS {organisation}")});
        }
        agents.push(person);
    } else if let Some(organisation) = &caller.organisation {
        agent["location"] = json!({"display": format!("ODS {organisation}")});
    }
    agents.insert(0, agent);
    let mut entity: Vec<Value> = entities
        .iter()
        .map(|reference| json!({"what": {"reference": reference}}))
        .collect();
    for patient in patients {
        if !entities.contains(patient) {
            entity.push(json!({"what": {"reference": patient},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}}));
        }
    }
    if let Some(query) = query {
        entity.push(json!({"what": {"display": "search"}, "query": base64_text(query)}));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                 "code": "rest", "display": "RESTful Operation"},
        "subtype": subtype,
        "action": action,
        "recorded": format_instant(now),
        "outcome": "0",
        "agent": agents,
        "source": {"site": format!("{} {}", caller.environment, base_url),
                   "observer": {"display": format!("carehub {}", caller.api)}},
        "entity": entity,
    });
    if let Some(purpose) = &caller.purpose {
        event["purposeOfEvent"] = json!([purpose.to_fhir()]);
    }
    // Time-ordered (UUIDv7): each new event's key lands at the end of the store's id index, so
    // the events of one commit share its last pages instead of dirtying a random page each.
    let id = uuid::Uuid::now_v7().to_string();
    event["id"] = json!(id);
    let index = INDEXER.index(&event);
    (id, event, index)
}

fn base64_text(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// An AuditEvent as the store takes it.
pub fn stored((id, event, index): (String, Value, Vec<IndexEntry>)) -> NewResource {
    NewResource {
        resource_type: "AuditEvent".into(),
        id,
        resource: event,
        index,
    }
}

/// Writes an AuditEvent inside a unit of work (for writes).
pub async fn record_in(
    tx: &mut Tx<'_>,
    audit: Option<(String, Value, Vec<IndexEntry>)>,
) -> Result<(), StoreError> {
    if let Some(audit) = audit {
        // The id is a fresh UUID: nothing to look for before inserting it.
        tx.create_many(AUDIT_BASE, vec![stored(audit)]).await?;
    }
    Ok(())
}

/// Writes an AuditEvent on its own (for reads), committed before the caller answers.
pub async fn record(
    store: &Store,
    audit: Option<(String, Value, Vec<IndexEntry>)>,
) -> Result<(), StoreError> {
    match audit {
        Some(audit) => store.append(AUDIT_BASE, vec![stored(audit)]).await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purpose_of_use_is_coded_with_the_callers_own_words() {
        let caller = Caller {
            environment: "int".into(),
            api: "gp-connect".into(),
            purpose: Some(Purpose {
                of_use: PurposeOfUse::RecordsManagement,
                stated: Some("migration".into()),
            }),
            request_id: "r-1".into(),
            ..Caller::default()
        };
        let (_, event, _) = event(
            &caller,
            Interaction::Read,
            "https://carehub.example/int/gpc",
            &["Patient/1".into()],
            &[],
            None,
        );
        assert_eq!(
            event["purposeOfEvent"],
            json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                "code": "RECORDMGT", "display": "records management"}], "text": "migration"}])
        );
        for purpose in PurposeOfUse::ALL {
            assert_eq!(PurposeOfUse::from_code(purpose.coding().0), Some(purpose));
        }
        assert_eq!(PurposeOfUse::from_code("treat"), None);
    }

    #[test]
    fn event_ids_are_time_ordered_uuids() {
        let (id, event, _) = event(
            &Caller::default(),
            Interaction::Read,
            "https://carehub.example/int/fhir/R4",
            &["Patient/1".into()],
            &[],
            None,
        );
        assert_eq!(event["id"], id.as_str());
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7, "{id}");
    }
}
