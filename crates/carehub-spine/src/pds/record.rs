//! A patient's demographics as the Personal Demographics Service holds them: names, birth,
//! death, address, registered GP practice, and the flags that change who may see what
//! (restricted, "sensitive") or which record is current (superseded by a merge).

use serde::{Deserialize, Serialize};

/// One PDS record, under its NHS number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdsPatient {
    pub nhs_number: String,
    /// `Mr`, `Mrs`, `Dr`...
    pub prefix: Option<String>,
    pub given: Vec<String>,
    pub family: String,
    /// `male`, `female`, `other` or `unknown`.
    pub gender: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// When the patient died (`YYYY-MM-DDThh:mm:ss+00:00`), once notified.
    pub deceased: Option<String>,
    pub address_lines: Vec<String>,
    pub postcode: Option<String>,
    pub telephone: Option<String>,
    /// The ODS code of the GP practice the patient is registered with.
    pub gp_practice: Option<String>,
    /// Restricted ("sensitive"): address, contacts and practice are withheld.
    pub restricted: bool,
    /// Whether the NHS number is present and verified (traced).
    pub verified: bool,
    /// The NHS number of the record this one was merged into: this number is superseded.
    pub superseded_by: Option<String>,
}

impl PdsPatient {
    /// Whether PDS says the patient has died.
    pub fn is_deceased(&self) -> bool {
        self.deceased.is_some()
    }

    /// Whether this record was merged into another.
    pub fn is_superseded(&self) -> bool {
        self.superseded_by.is_some()
    }
}
