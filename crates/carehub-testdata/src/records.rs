//! The plain facts of each generated record, before any FHIR shape is put on them.
//!
//! Other crates (PDS, GP Connect, e-RS) need the same patients and organisations in their own
//! resource shapes; they build from these records, so every product sees one consistent world.

use crate::address::Address;
use crate::date::Date;
use crate::nhs_number::NhsNumber;
use crate::sds::JobRole;

/// Administrative gender, as FHIR codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

impl Gender {
    /// The FHIR `AdministrativeGender` code (the same in STU3 and R4).
    pub fn code(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
}

/// What kind of organisation a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrganisationKind {
    /// A GP practice: ODS code of a letter and five digits.
    GpPractice,
    /// An NHS trust: ODS code `R` and two characters.
    Trust,
    /// A site of a trust (a hospital): the trust's code and two digits.
    TrustSite,
}

/// How one record points at an organisation: enough to write a FHIR reference with its
/// identifier and display without fetching the organisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganisationLink {
    /// The organisation's index in the pack (see [`crate::Pack::organisation_record`]).
    pub index: u64,
    /// The organisation's FHIR id.
    pub id: String,
    pub ods_code: String,
    pub name: String,
}

/// A synthetic patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRecord {
    /// The patient's index in the pack.
    pub index: u64,
    /// FHIR logical id.
    pub id: String,
    /// Always valid and in the 999 test range; unique within the pack.
    pub nhs_number: NhsNumber,
    /// Title (`Mr`, `Mrs`, `Ms`, `Miss`, `Mx`, `Dr`); children have none.
    pub prefix: Option<&'static str>,
    /// First given name.
    pub given: &'static str,
    /// A second given name, when the patient has one.
    pub middle_name: Option<&'static str>,
    pub family: &'static str,
    pub gender: Gender,
    pub birth_date: Date,
    /// Set for deceased patients; never before the birth date nor after
    /// [`crate::REFERENCE_DATE`].
    pub death_date: Option<Date>,
    pub address: Address,
    /// Landline in Ofcom's drama range.
    pub home_phone: Option<String>,
    /// Mobile in Ofcom's drama range.
    pub mobile_phone: Option<String>,
    /// Always at `example.com`.
    pub email: Option<String>,
    /// The GP practice the patient is registered with (`None` only in packs without practices).
    pub gp_practice: Option<OrganisationLink>,
    /// Whether the record is flagged sensitive (restricted): on PDS such patients' address,
    /// contact details and GP are withheld from most users.
    pub sensitive: bool,
}

impl PatientRecord {
    /// The given names in order: first, then middle.
    pub fn given_names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.given).chain(self.middle_name)
    }

    /// Whether the patient has died.
    pub fn is_deceased(&self) -> bool {
        self.death_date.is_some()
    }
}

/// A synthetic GP practice, trust or trust site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationRecord {
    /// The organisation's index in the pack: practices first, then trusts, then sites.
    pub index: u64,
    pub kind: OrganisationKind,
    /// FHIR logical id.
    pub id: String,
    pub ods_code: String,
    pub name: String,
    pub address: Address,
    /// Main number, in Ofcom's drama range.
    pub phone: String,
    /// For a trust site, its trust.
    pub part_of: Option<OrganisationLink>,
}

impl OrganisationRecord {
    /// How other records point at this one.
    pub fn link(&self) -> OrganisationLink {
        OrganisationLink {
            index: self.index,
            id: self.id.clone(),
            ods_code: self.ods_code.clone(),
            name: self.name.clone(),
        }
    }
}

/// A synthetic practitioner and the one role they hold (SDS role profile) at one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PractitionerRecord {
    /// The practitioner's index in the pack.
    pub index: u64,
    /// FHIR logical id of the Practitioner.
    pub id: String,
    /// 12 digits; unique within the pack.
    pub sds_user_id: String,
    /// `Dr` for medical roles.
    pub prefix: Option<&'static str>,
    pub given: &'static str,
    pub family: &'static str,
    /// Male or female.
    pub gender: Gender,
    /// FHIR logical id of the PractitionerRole.
    pub role_id: String,
    /// 12 digits; unique within the pack.
    pub sds_role_profile_id: String,
    pub job_role: JobRole,
    /// Where the role is held: a GP practice or a trust.
    pub organisation: OrganisationLink,
}

impl PractitionerRecord {
    /// The name as it is displayed in references: `Dr Jane Smith`.
    pub fn display_name(&self) -> String {
        match self.prefix {
            Some(prefix) => format!("{prefix} {} {}", self.given, self.family),
            None => format!("{} {}", self.given, self.family),
        }
    }
}
