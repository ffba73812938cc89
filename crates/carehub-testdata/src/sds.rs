//! SDS (Spine Directory Service) identities for synthetic staff: user ids, role profile ids and
//! job roles.
//!
//! Job role codes and their display names are the real values of the SDS job role name code
//! system (as published in the CareConnect SDS job role CodeSystem), because consumers such as
//! GP Connect check them: a made-up code would fail their validation, not test it. Ids are
//! 12-digit numbers, unique within a pack by construction.

use crate::rng::{AffinePermutation, Kind};

/// An SDS job role: the code (`R0260`) and its display name as the code system spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobRole {
    pub code: &'static str,
    pub display: &'static str,
    /// Whether holders are doctors (and so get the `Dr` prefix).
    pub medical: bool,
}

const fn role(code: &'static str, display: &'static str, medical: bool) -> JobRole {
    JobRole {
        code,
        display,
        medical,
    }
}

/// The role every practice's first practitioner holds: a practice always has a GP.
pub const GENERAL_MEDICAL_PRACTITIONER: JobRole =
    role("R0260", "General Medical Practitioner", true);

/// The role every trust's first practitioner holds.
pub const CONSULTANT: JobRole = role("R0050", "Consultant", true);

/// Roles at GP practices, weighted roughly as practice staff are made up.
pub(crate) const PRACTICE_ROLES: [(u32, JobRole); 13] = [
    (20, GENERAL_MEDICAL_PRACTITIONER),
    (15, role("R0270", "Salaried General Practitioner", true)),
    (5, role("R6300", "Sessional GP", true)),
    (5, role("R6200", "GP Registrar", true)),
    (10, role("R0620", "Staff Nurse", false)),
    (5, role("R0600", "Specialist Nurse Practitioner", false)),
    (8, role("R1480", "Healthcare Assistant", false)),
    (4, role("R1290", "Pharmacist", false)),
    (12, role("R1730", "Receptionist", false)),
    (4, role("R1760", "Medical Secretary", false)),
    (4, role("R8000", "Clinical Practitioner Access Role", true)),
    (4, role("R8003", "Health Professional Access Role", false)),
    (
        4,
        role("R8008", "Admin/Clinical Support Access Role", false),
    ),
];

/// Roles at trusts, weighted roughly as hospital staff are made up.
pub(crate) const TRUST_ROLES: [(u32, JobRole); 14] = [
    (15, CONSULTANT),
    (10, role("R0110", "Specialist Registrar", true)),
    (6, role("R0140", "Senior House Officer", true)),
    (20, role("R0620", "Staff Nurse", false)),
    (6, role("R0610", "Sister/Charge Nurse", false)),
    (5, role("R0680", "Midwife", false)),
    (5, role("R1110", "Physiotherapist", false)),
    (4, role("R1290", "Pharmacist", false)),
    (5, role("R6030", "Ward Clerk", false)),
    (3, role("R6060", "Medical Records Clerk", false)),
    (5, role("R8000", "Clinical Practitioner Access Role", true)),
    (4, role("R8001", "Nurse Access Role", false)),
    (4, role("R8003", "Health Professional Access Role", false)),
    (
        4,
        role("R8008", "Admin/Clinical Support Access Role", false),
    ),
];

/// How many distinct 12-digit ids exist (no leading zero): 9 × 10^11.
pub const SDS_ID_CAPACITY: u64 = 900_000_000_000;

#[derive(Debug, Clone, Copy)]
pub(crate) struct SdsIds {
    users: AffinePermutation,
    role_profiles: AffinePermutation,
}

impl SdsIds {
    pub(crate) fn new(seed: u64) -> SdsIds {
        SdsIds {
            users: AffinePermutation::new(SDS_ID_CAPACITY, seed, Kind::SdsUserId),
            role_profiles: AffinePermutation::new(SDS_ID_CAPACITY, seed, Kind::SdsRoleProfileId),
        }
    }

    /// The SDS user id of practitioner `index`.
    pub(crate) fn user_id(&self, index: u64) -> String {
        twelve_digits(self.users.apply(index))
    }

    /// The SDS role profile id of practitioner role `index`.
    pub(crate) fn role_profile_id(&self, index: u64) -> String {
        twelve_digits(self.role_profiles.apply(index))
    }
}

/// The `n`th 12-digit number (no leading zero).
fn twelve_digits(n: u64) -> String {
    let mut id = String::with_capacity(12);
    crate::text::push_padded(&mut id, 100_000_000_000 + n, 12);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_twelve_digits_and_distinct() {
        let ids = SdsIds::new(3);
        let users: HashSet<String> = (0..50_000).map(|i| ids.user_id(i)).collect();
        let roles: HashSet<String> = (0..50_000).map(|i| ids.role_profile_id(i)).collect();
        assert_eq!(users.len(), 50_000);
        assert_eq!(roles.len(), 50_000);
        for id in users.iter().chain(&roles) {
            assert_eq!(id.len(), 12, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(ids.user_id(SDS_ID_CAPACITY - 1).len(), 12);
    }

    #[test]
    fn role_codes_have_the_sds_shape() {
        for (_, role) in PRACTICE_ROLES.iter().chain(&TRUST_ROLES) {
            assert_eq!(role.code.len(), 5);
            assert!(role.code.starts_with('R'));
            assert!(role.code[1..].bytes().all(|b| b.is_ascii_digit()));
            assert!(!role.display.is_empty());
        }
    }
}
