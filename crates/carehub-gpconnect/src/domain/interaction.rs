//! GP Connect interactions: their Spine interaction ids and the scope the audit token must
//! request for each.

/// `urn:nhs:names:services:gpconnect:`, the prefix of every interaction id.
const PREFIX: &str = "urn:nhs:names:services:gpconnect:";

/// One interaction a provider serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    Metadata,
    SearchPatient,
    ReadPatient,
    RegisterPatient,
    SearchPractitioner,
    ReadPractitioner,
    SearchOrganization,
    ReadOrganization,
    ReadLocation,
    SearchHealthcareService,
    ReadHealthcareService,
    SearchSlot,
    CreateAppointment,
    ReadAppointment,
    UpdateAppointment,
    CancelAppointment,
    SearchPatientAppointments,
    StructuredMetadata,
    GetStructuredRecord,
    MigrateStructuredRecord,
    /// Access Record HTML 0.7.4 (DSTU2): its Conformance statement.
    CareRecordMetadata,
    /// Access Record HTML 0.7.4: `$gpc.getcarerecord`.
    GetCareRecord,
}

/// The scope (`requested_scope`) an interaction needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    PatientRead,
    PatientWrite,
    OrganizationRead,
}

impl Scope {
    /// The scope as the token carries it.
    pub fn text(self) -> &'static str {
        match self {
            Scope::PatientRead => "patient/*.read",
            Scope::PatientWrite => "patient/*.write",
            Scope::OrganizationRead => "organization/*.read",
        }
    }
}

impl Interaction {
    /// Every interaction.
    pub const ALL: [Interaction; 22] = [
        Interaction::Metadata,
        Interaction::SearchPatient,
        Interaction::ReadPatient,
        Interaction::RegisterPatient,
        Interaction::SearchPractitioner,
        Interaction::ReadPractitioner,
        Interaction::SearchOrganization,
        Interaction::ReadOrganization,
        Interaction::ReadLocation,
        Interaction::SearchHealthcareService,
        Interaction::ReadHealthcareService,
        Interaction::SearchSlot,
        Interaction::CreateAppointment,
        Interaction::ReadAppointment,
        Interaction::UpdateAppointment,
        Interaction::CancelAppointment,
        Interaction::SearchPatientAppointments,
        Interaction::StructuredMetadata,
        Interaction::GetStructuredRecord,
        Interaction::MigrateStructuredRecord,
        Interaction::CareRecordMetadata,
        Interaction::GetCareRecord,
    ];

    /// The part of the interaction id after the prefix.
    fn suffix(self) -> &'static str {
        match self {
            Interaction::Metadata => "fhir:rest:read:metadata-1",
            Interaction::SearchPatient => "fhir:rest:search:patient-1",
            Interaction::ReadPatient => "fhir:rest:read:patient-1",
            Interaction::RegisterPatient => "fhir:operation:gpc.registerpatient-1",
            Interaction::SearchPractitioner => "fhir:rest:search:practitioner-1",
            Interaction::ReadPractitioner => "fhir:rest:read:practitioner-1",
            Interaction::SearchOrganization => "fhir:rest:search:organization-1",
            Interaction::ReadOrganization => "fhir:rest:read:organization-1",
            Interaction::ReadLocation => "fhir:rest:read:location-1",
            Interaction::SearchHealthcareService => "fhir:rest:search:healthcareservice-1",
            Interaction::ReadHealthcareService => "fhir:rest:read:healthcareservice-1",
            Interaction::SearchSlot => "fhir:rest:search:slot-1",
            Interaction::CreateAppointment => "fhir:rest:create:appointment-1",
            Interaction::ReadAppointment => "fhir:rest:read:appointment-1",
            Interaction::UpdateAppointment => "fhir:rest:update:appointment-1",
            Interaction::CancelAppointment => "fhir:rest:cancel:appointment-1",
            Interaction::SearchPatientAppointments => "fhir:rest:search:patient_appointments-1",
            Interaction::StructuredMetadata => "structured:fhir:rest:read:metadata-1",
            Interaction::GetStructuredRecord => "fhir:operation:gpc.getstructuredrecord-1",
            Interaction::MigrateStructuredRecord => "fhir:operation:gpc.migratestructuredrecord-1",
            // The 0.x line's ids carry no major version suffix.
            Interaction::CareRecordMetadata => "fhir:rest:read:metadata",
            Interaction::GetCareRecord => "fhir:operation:gpc.getcarerecord",
        }
    }

    /// Whether the interaction belongs to Access Record HTML, the DSTU2 line served at
    /// `/{ODS}/DSTU2/0/gpconnect` (every other one is STU3, at `/{ODS}/STU3/1/gpconnect`).
    pub fn is_dstu2(self) -> bool {
        matches!(
            self,
            Interaction::CareRecordMetadata | Interaction::GetCareRecord
        )
    }

    /// The Spine interaction id (`urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1`).
    pub fn id(self) -> String {
        format!("{PREFIX}{}", self.suffix())
    }

    /// The interaction an id names.
    pub fn from_id(id: &str) -> Option<Interaction> {
        let suffix = id.strip_prefix(PREFIX)?;
        Interaction::ALL.into_iter().find(|i| i.suffix() == suffix)
    }

    /// The scope the audit token must request.
    pub fn scope(self) -> Scope {
        match self {
            Interaction::SearchPatient
            | Interaction::ReadPatient
            | Interaction::ReadAppointment
            | Interaction::SearchPatientAppointments
            | Interaction::GetStructuredRecord
            | Interaction::MigrateStructuredRecord
            | Interaction::GetCareRecord => Scope::PatientRead,
            Interaction::RegisterPatient
            | Interaction::CreateAppointment
            | Interaction::UpdateAppointment
            | Interaction::CancelAppointment => Scope::PatientWrite,
            Interaction::Metadata
            | Interaction::StructuredMetadata
            | Interaction::CareRecordMetadata
            | Interaction::SearchPractitioner
            | Interaction::ReadPractitioner
            | Interaction::SearchOrganization
            | Interaction::ReadOrganization
            | Interaction::ReadLocation
            | Interaction::SearchHealthcareService
            | Interaction::ReadHealthcareService
            | Interaction::SearchSlot => Scope::OrganizationRead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interaction_id_reads_back() {
        for interaction in Interaction::ALL {
            assert_eq!(Interaction::from_id(&interaction.id()), Some(interaction));
        }
        assert_eq!(
            Interaction::ReadPatient.id(),
            "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1"
        );
        assert_eq!(
            Interaction::from_id("urn:nhs:names:services:gpconnect:fhir:rest:read:Patient-1"),
            None,
            "interaction ids are case-sensitive"
        );
    }
}
