//! A pack: one seeded, self-consistent world of organisations, practitioners and patients, any
//! record of which can be generated on its own.
//!
//! Every record is a pure function of (seed, kind, index), never of the records before it nor of
//! how many there are, so a million-patient pack costs nothing until it is read and patient
//! #500 000 is as cheap as patient #0. The organisation counts decide only which organisation a
//! record links to (and so which town a patient lives in); the rest of the record is the same
//! in every pack with that seed. The order in which each generator draws from its
//! stream is part of the output format: reordering draws changes every pack, which the golden
//! tests catch.

use std::fmt;

use serde_json::Value;

use crate::address::{self, TOWN_COUNT};
use crate::date::{Date, REFERENCE_DATE};
use crate::fhir::{self, FhirVersion};
use crate::ids::resource_id;
use crate::names::{FAMILY, FEMALE_GIVEN, MALE_GIVEN};
use crate::nhs_number::{NHS_NUMBER_CAPACITY, NhsNumberAllocator};
use crate::ods::{
    self, MAX_SITES_PER_TRUST, OdsCodes, PRACTICE_CODE_CAPACITY, TRUST_CODE_CAPACITY,
};
use crate::places::{PRACTICE_STEMS, PRACTICE_SUFFIXES, SITE_SUFFIXES, TRUST_SUFFIXES, Town};
use crate::records::{
    Gender, OrganisationKind, OrganisationLink, OrganisationRecord, PatientRecord,
    PractitionerRecord,
};
use crate::rng::{Kind, Rng, key, pick, scale};
use crate::sds::{
    CONSULTANT, GENERAL_MEDICAL_PRACTITIONER, PRACTICE_ROLES, SDS_ID_CAPACITY, SdsIds, TRUST_ROLES,
};
use crate::text::concat;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PackSpec {
    /// Everything derives from this; the same seed and counts give byte-identical output.
    pub seed: u64,
    /// At most [`NHS_NUMBER_CAPACITY`] (900 000): the 999 test range holds no more.
    pub patients: u64,
    /// At most [`PRACTICE_CODE_CAPACITY`].
    pub practices: u32,
    /// At most [`TRUST_CODE_CAPACITY`] (1 296). Each trust also gets 1 to
    /// [`MAX_SITES_PER_TRUST`] sites.
    pub trusts: u32,
    /// Practitioners at each practice and each trust (not at sites), one role each.
    pub practitioners_per_org: u32,
}

impl Default for PackSpec {
    /// A small pack for tests: 1 000 patients at 10 practices, 2 trusts, 5 staff per
    /// organisation.
    fn default() -> PackSpec {
        PackSpec {
            seed: 1,
            patients: 1_000,
            practices: 10,
            trusts: 2,
            practitioners_per_org: 5,
        }
    }
}

/// A spec asks for more records than the identifier formats can keep unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityError {
    /// Which count is too large: `patients`, `practices`, `trusts` or `practitioners`.
    pub what: &'static str,
    pub requested: u64,
    pub capacity: u64,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} requested but at most {} can have unique identifiers",
            self.requested, self.what, self.capacity
        )
    }
}

impl std::error::Error for CapacityError {}

/// A generated world. Cheap to create (it holds only keys and a small table of trust sites);
/// records are generated when asked for.
#[derive(Debug, Clone)]
pub struct Pack {
    spec: PackSpec,
    nhs_numbers: NhsNumberAllocator,
    ods: OdsCodes,
    sds: SdsIds,
    /// `site_starts[t]` is the index (among sites) of trust `t`'s first site; one extra entry
    /// holds the total.
    site_starts: Vec<u64>,
    /// Rotations of the name tables, so each seed names its first organisations differently
    /// while names stay distinct as long as possible.
    practice_name_offset: u64,
    trust_name_offset: u64,
}

impl Pack {
    /// A pack for `spec`, with any count above its capacity lowered to the capacity (see
    /// [`Pack::spec`] for what was kept, or [`Pack::try_new`] to be told instead).
    pub fn new(spec: PackSpec) -> Pack {
        let mut spec = spec;
        spec.patients = spec.patients.min(NHS_NUMBER_CAPACITY);
        spec.practices = clamp_u32(spec.practices, PRACTICE_CODE_CAPACITY);
        spec.trusts = clamp_u32(spec.trusts, TRUST_CODE_CAPACITY);
        let orgs = u64::from(spec.practices) + u64::from(spec.trusts);
        if let Some(per_org_capacity) = SDS_ID_CAPACITY.checked_div(orgs) {
            spec.practitioners_per_org = clamp_u32(spec.practitioners_per_org, per_org_capacity);
        }
        Pack::build(spec)
    }

    /// A pack for `spec`, or which count is over capacity.
    pub fn try_new(spec: PackSpec) -> Result<Pack, CapacityError> {
        let orgs = u64::from(spec.practices) + u64::from(spec.trusts);
        let checks = [
            ("patients", spec.patients, NHS_NUMBER_CAPACITY),
            (
                "practices",
                u64::from(spec.practices),
                PRACTICE_CODE_CAPACITY,
            ),
            ("trusts", u64::from(spec.trusts), TRUST_CODE_CAPACITY),
            (
                "practitioners",
                orgs.saturating_mul(u64::from(spec.practitioners_per_org)),
                SDS_ID_CAPACITY,
            ),
        ];
        for (what, requested, capacity) in checks {
            if requested > capacity {
                return Err(CapacityError {
                    what,
                    requested,
                    capacity,
                });
            }
        }
        Ok(Pack::build(spec))
    }

    fn build(spec: PackSpec) -> Pack {
        let seed = spec.seed;
        let mut site_starts = Vec::with_capacity(spec.trusts as usize + 1);
        let mut total = 0;
        for t in 0..u64::from(spec.trusts) {
            site_starts.push(total);
            total += sites_of_trust(seed, t);
        }
        site_starts.push(total);
        Pack {
            spec,
            nhs_numbers: NhsNumberAllocator::new(seed),
            ods: OdsCodes::new(seed),
            sds: SdsIds::new(seed),
            site_starts,
            // Reduced to the table sizes so that adding an index can never overflow.
            practice_name_offset: key(seed, Kind::Naming, 0) % PRACTICE_NAMES,
            trust_name_offset: key(seed, Kind::Naming, 1) % TRUST_NAMES,
        }
    }

    /// The spec as generated (counts lowered to capacity by [`Pack::new`] if need be).
    pub fn spec(&self) -> &PackSpec {
        &self.spec
    }

    /// How many patients the pack holds (indices `0..patient_count()`).
    pub fn patient_count(&self) -> u64 {
        self.spec.patients
    }

    /// Practices, trusts and trust sites.
    pub fn organisation_count(&self) -> u64 {
        u64::from(self.spec.practices) + u64::from(self.spec.trusts) + self.site_count()
    }

    fn site_count(&self) -> u64 {
        self.site_starts.last().copied().unwrap_or(0)
    }

    /// Practitioners, which is also the number of practitioner roles (one each).
    pub fn practitioner_count(&self) -> u64 {
        (u64::from(self.spec.practices) + u64::from(self.spec.trusts))
            * u64::from(self.spec.practitioners_per_org)
    }

    // ---- patients ----

    /// Patient `index`, or `None` past [`Pack::patient_count`].
    pub fn patient_record(&self, index: u64) -> Option<PatientRecord> {
        if index >= self.spec.patients {
            return None;
        }
        let seed = self.spec.seed;
        let mut rng = Rng::for_record(seed, Kind::Patient, index);
        let nhs_number = self.nhs_numbers.number(index)?;

        let gender = *rng.weighted(&[
            (5010, Gender::Female),
            (4970, Gender::Male),
            (12, Gender::Other),
            (8, Gender::Unknown),
        ]);
        let birth_date = birth_date(&mut rng);
        let age = birth_date.years_until(REFERENCE_DATE);
        let given = given_name(gender, &mut rng);
        let middle_name = if rng.chance(350_000) {
            Some(given_name(gender, &mut rng))
        } else {
            None
        };
        let family = rng.pick(&FAMILY);
        let prefix = if age >= 18 {
            adult_title(gender, &mut rng)
        } else {
            None
        };

        // Both rolls are drawn whatever the pack's practice count, so the draws after them (and
        // so everything but the practice and town) are the same in every pack with this seed.
        let practice_roll = rng.next_u64();
        let town_roll = rng.next_u64();
        let practices = u64::from(self.spec.practices);
        let practice = (practices > 0).then(|| scale(practice_roll, practices));
        // Most people live in the town of their GP practice.
        let town = match practice {
            Some(p) if scale(town_roll, 1_000_000) < 950_000 => self.practice_town(p),
            _ => address::town(town_roll),
        };
        let address = address::address_in(town, &mut rng);
        let home_phone = rng
            .chance(450_000)
            .then(|| address::drama_landline(&mut rng));
        let mobile_phone =
            (age >= 12 && rng.chance(850_000)).then(|| address::drama_mobile(&mut rng));
        let email = (age >= 16 && rng.chance(500_000))
            .then(|| address::example_email(given, family, &mut rng));

        let death_chance = match age {
            0..60 => 3_000,
            60..80 => 20_000,
            _ => 80_000,
        };
        let death_date = rng
            .chance(death_chance)
            .then(|| death_date(birth_date, &mut rng));
        let sensitive = rng.chance(5_000);

        Some(PatientRecord {
            index,
            id: resource_id(seed, Kind::Patient, index),
            nhs_number,
            prefix,
            given,
            middle_name,
            family,
            gender,
            birth_date,
            death_date,
            address,
            home_phone,
            mobile_phone,
            email,
            gp_practice: practice.map(|p| self.practice_link(p)),
            sensitive,
        })
    }

    /// Patient `index` as a FHIR resource of version `v`, or `None` past the patient count.
    pub fn patient(&self, index: u64, v: FhirVersion) -> Option<Value> {
        self.patient_record(index)
            .map(|p| fhir::patient_resource(&p, v))
    }

    /// Every patient record in index order.
    pub fn patient_records(&self) -> impl Iterator<Item = PatientRecord> + '_ {
        (0..self.spec.patients).filter_map(|i| self.patient_record(i))
    }

    /// Every patient in index order: the `i`th item is `patient(i, v)`.
    pub fn patients(&self, v: FhirVersion) -> impl Iterator<Item = Value> + '_ {
        (0..self.spec.patients).filter_map(move |i| self.patient(i, v))
    }

    // ---- organisations ----

    /// Organisation `index`: practices come first, then trusts, then trust sites (so a site's
    /// trust always comes before it). `None` past [`Pack::organisation_count`].
    pub fn organisation_record(&self, index: u64) -> Option<OrganisationRecord> {
        let practices = u64::from(self.spec.practices);
        let trusts = u64::from(self.spec.trusts);
        if index < practices {
            return Some(self.practice(index));
        }
        let t = index - practices;
        if t < trusts {
            return Some(self.trust(t));
        }
        let s = t - trusts;
        if s < self.site_count() {
            return self.site(s);
        }
        None
    }

    /// Organisation `index` as a FHIR Organization of version `v`.
    pub fn organisation(&self, index: u64, v: FhirVersion) -> Option<Value> {
        self.organisation_record(index)
            .map(|o| fhir::organisation_resource(&o, v))
    }

    /// Every organisation record in index order: practices, trusts, then sites.
    pub fn organisation_records(&self) -> impl Iterator<Item = OrganisationRecord> + '_ {
        (0..self.organisation_count()).filter_map(|i| self.organisation_record(i))
    }

    /// Every organisation as FHIR, in index order: the `i`th item is `organisation(i, v)`.
    pub fn organisations(&self, v: FhirVersion) -> impl Iterator<Item = Value> + '_ {
        (0..self.organisation_count()).filter_map(move |i| self.organisation(i, v))
    }

    fn practice_town(&self, p: u64) -> &'static Town {
        // The first draw of the practice's stream, so a patient can find its practice's town
        // without generating the rest of the practice.
        address::town(Rng::for_record(self.spec.seed, Kind::Practice, p).next_u64())
    }

    fn practice_name(&self, p: u64) -> String {
        // Walks every (stem, suffix) pair once before any repeats: for k in 0..300 the pair
        // (k mod 50, (k / 50 + k mod 50) mod 6) is distinct.
        let k = (p % PRACTICE_NAMES + self.practice_name_offset) % PRACTICE_NAMES;
        let stems = PRACTICE_STEMS.len() as u64;
        let stem = pick(&PRACTICE_STEMS, k % stems);
        let suffix = pick(&PRACTICE_SUFFIXES, k / stems + k % stems);
        concat(&[stem, " ", suffix])
    }

    fn practice_link(&self, p: u64) -> OrganisationLink {
        OrganisationLink {
            index: p,
            id: resource_id(self.spec.seed, Kind::Practice, p),
            ods_code: self.ods.practice(p),
            name: self.practice_name(p),
        }
    }

    fn practice(&self, p: u64) -> OrganisationRecord {
        let mut rng = Rng::for_record(self.spec.seed, Kind::Practice, p);
        let town = address::town(rng.next_u64());
        let address = address::address_in(town, &mut rng);
        let phone = address::drama_landline(&mut rng);
        let link = self.practice_link(p);
        OrganisationRecord {
            index: link.index,
            kind: OrganisationKind::GpPractice,
            id: link.id,
            ods_code: link.ods_code,
            name: link.name,
            address,
            phone,
            part_of: None,
        }
    }

    fn trust_town(&self, t: u64) -> &'static Town {
        // Trusts walk the town list in a seed-rotated order, so the first 60 are in 60
        // different towns.
        address::town((t + self.trust_name_offset) % TOWN_COUNT)
    }

    fn trust_link(&self, t: u64) -> OrganisationLink {
        let town = self.trust_town(t);
        let round = (t + self.trust_name_offset) / TOWN_COUNT;
        let suffix = pick(&TRUST_SUFFIXES, round);
        OrganisationLink {
            index: u64::from(self.spec.practices) + t,
            id: resource_id(self.spec.seed, Kind::Trust, t),
            ods_code: self.ods.trust(t),
            name: format!("{} {suffix}", town.name),
        }
    }

    fn trust(&self, t: u64) -> OrganisationRecord {
        let mut rng = Rng::for_record(self.spec.seed, Kind::Trust, t);
        let address = address::address_in(self.trust_town(t), &mut rng);
        let phone = address::drama_landline(&mut rng);
        let link = self.trust_link(t);
        OrganisationRecord {
            index: link.index,
            kind: OrganisationKind::Trust,
            id: link.id,
            ods_code: link.ods_code,
            name: link.name,
            address,
            phone,
            part_of: None,
        }
    }

    fn site(&self, s: u64) -> Option<OrganisationRecord> {
        // The trust whose range of sites holds `s`.
        let t = self
            .site_starts
            .partition_point(|&start| start <= s)
            .checked_sub(1)?;
        let number = s - self.site_starts.get(t)?;
        let t = t as u64;
        let trust = self.trust_link(t);
        let town = self.trust_town(t);
        let mut rng = Rng::for_record(self.spec.seed, Kind::Site, s);
        let address = address::address_in(town, &mut rng);
        let phone = address::drama_landline(&mut rng);
        // Sites of one trust take consecutive suffixes, so their names differ.
        let suffix = pick(
            &SITE_SUFFIXES,
            key(self.spec.seed, Kind::Naming, 2 + t) % 97 + number,
        );
        Some(OrganisationRecord {
            index: u64::from(self.spec.practices) + u64::from(self.spec.trusts) + s,
            kind: OrganisationKind::TrustSite,
            id: resource_id(self.spec.seed, Kind::Site, s),
            ods_code: ods::site_code(&trust.ods_code, number),
            name: format!("{} {suffix}", town.name),
            address,
            phone,
            part_of: Some(trust),
        })
    }

    // ---- practitioners ----

    /// Practitioner `index` with their role. Practitioners are grouped by organisation:
    /// `practitioners_per_org` at practice 0, then at practice 1, ..., then at each trust.
    pub fn practitioner_record(&self, index: u64) -> Option<PractitionerRecord> {
        if index >= self.practitioner_count() {
            return None;
        }
        let per_org = u64::from(self.spec.practitioners_per_org);
        let org = index.checked_div(per_org)?;
        let slot = index % per_org;
        let practices = u64::from(self.spec.practices);
        let at_practice = org < practices;
        let organisation = if at_practice {
            self.practice_link(org)
        } else {
            self.trust_link(org - practices)
        };

        let seed = self.spec.seed;
        let mut rng = Rng::for_record(seed, Kind::Practitioner, index);
        // Each organisation's first practitioner holds its lead clinical role.
        let job_role = match (at_practice, slot) {
            (true, 0) => GENERAL_MEDICAL_PRACTITIONER,
            (false, 0) => CONSULTANT,
            (true, _) => *rng.weighted(&PRACTICE_ROLES),
            (false, _) => *rng.weighted(&TRUST_ROLES),
        };
        let gender = if rng.chance(500_000) {
            Gender::Female
        } else {
            Gender::Male
        };
        let given = given_name(gender, &mut rng);
        let family = rng.pick(&FAMILY);
        Some(PractitionerRecord {
            index,
            id: resource_id(seed, Kind::Practitioner, index),
            sds_user_id: self.sds.user_id(index),
            prefix: job_role.medical.then_some("Dr"),
            given,
            family,
            gender,
            role_id: resource_id(seed, Kind::PractitionerRole, index),
            sds_role_profile_id: self.sds.role_profile_id(index),
            job_role,
            organisation,
        })
    }

    /// Practitioner `index` as a FHIR Practitioner of version `v`.
    pub fn practitioner(&self, index: u64, v: FhirVersion) -> Option<Value> {
        self.practitioner_record(index)
            .map(|p| fhir::practitioner_resource(&p, v))
    }

    /// The PractitionerRole of practitioner `index`.
    pub fn practitioner_role(&self, index: u64, v: FhirVersion) -> Option<Value> {
        self.practitioner_record(index)
            .map(|p| fhir::practitioner_role_resource(&p, v))
    }

    /// Every practitioner record (with its role) in index order.
    pub fn practitioner_records(&self) -> impl Iterator<Item = PractitionerRecord> + '_ {
        (0..self.practitioner_count()).filter_map(|i| self.practitioner_record(i))
    }

    /// Every practitioner as FHIR, in index order.
    pub fn practitioners(&self, v: FhirVersion) -> impl Iterator<Item = Value> + '_ {
        (0..self.practitioner_count()).filter_map(move |i| self.practitioner(i, v))
    }

    /// Every practitioner role as FHIR, in the order of their practitioners.
    pub fn practitioner_roles(&self, v: FhirVersion) -> impl Iterator<Item = Value> + '_ {
        (0..self.practitioner_count()).filter_map(move |i| self.practitioner_role(i, v))
    }

    /// Every resource in an order that loads cleanly one by one: organisations (trusts before
    /// their sites), practitioners, practitioner roles, then patients, so that each reference
    /// points at a resource already seen.
    pub fn all_resources(&self, v: FhirVersion) -> impl Iterator<Item = Value> + '_ {
        self.organisations(v)
            .chain(self.practitioners(v))
            .chain(self.practitioner_roles(v))
            .chain(self.patients(v))
    }
}

fn clamp_u32(value: u32, capacity: u64) -> u32 {
    u32::try_from(u64::from(value).min(capacity)).unwrap_or(u32::MAX)
}

/// Distinct practice names: every stem with every suffix.
const PRACTICE_NAMES: u64 = (PRACTICE_STEMS.len() * PRACTICE_SUFFIXES.len()) as u64;

/// Distinct trust names: every town with every suffix.
const TRUST_NAMES: u64 = TOWN_COUNT * TRUST_SUFFIXES.len() as u64;

/// How many sites trust `t` has: 1 to [`MAX_SITES_PER_TRUST`].
fn sites_of_trust(seed: u64, t: u64) -> u64 {
    1 + key(seed, Kind::Trust, t) % MAX_SITES_PER_TRUST
}

/// A birth date whose age follows the rough shape of England's population: fairly even to 60,
/// thinning after, reaching 100 rarely.
fn birth_date(rng: &mut Rng) -> Date {
    let (from_years, to_years) = *rng.weighted(&[
        (115, (0, 10)),
        (115, (10, 20)),
        (125, (20, 30)),
        (135, (30, 40)),
        (125, (40, 50)),
        (135, (50, 60)),
        (110, (60, 70)),
        (85, (70, 80)),
        (45, (80, 90)),
        (10, (90, 101)),
    ]);
    // 365.25 days a year; the upper bound is exclusive so the oldest are 100, not 101.
    let from_days = from_years * 36_525 / 100;
    let to_days = to_years * 36_525 / 100;
    let age_days = from_days + rng.below(to_days - from_days);
    Date::from_days_since_epoch(REFERENCE_DATE.days_since_epoch() - age_days as i64)
}

/// A death in the last ten years, never before birth.
fn death_date(birth: Date, rng: &mut Rng) -> Date {
    let end = REFERENCE_DATE.days_since_epoch();
    let start = birth.days_since_epoch().max(end - 3_652);
    let span = u64::try_from(end - start).unwrap_or(0);
    Date::from_days_since_epoch(start + rng.below(span + 1) as i64)
}

fn given_name(gender: Gender, rng: &mut Rng) -> &'static str {
    match gender {
        Gender::Male => rng.pick(&MALE_GIVEN),
        Gender::Female => rng.pick(&FEMALE_GIVEN),
        Gender::Other | Gender::Unknown => {
            if rng.chance(500_000) {
                rng.pick(&MALE_GIVEN)
            } else {
                rng.pick(&FEMALE_GIVEN)
            }
        }
    }
}

fn adult_title(gender: Gender, rng: &mut Rng) -> Option<&'static str> {
    if rng.chance(15_000) {
        return Some("Dr");
    }
    match gender {
        Gender::Male => Some("Mr"),
        Gender::Female => Some(*rng.weighted(&[(45, "Mrs"), (25, "Ms"), (30, "Miss")])),
        Gender::Other => Some("Mx"),
        Gender::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::places::TOWNS;

    #[test]
    fn towns_table_is_usable() {
        assert!(TOWNS.iter().all(|t| !t.districts.is_empty()));
    }

    #[test]
    fn practice_names_are_distinct_for_the_first_300() {
        let pack = Pack::new(PackSpec {
            practices: 300,
            ..PackSpec::default()
        });
        let names: std::collections::HashSet<String> =
            (0..300).map(|p| pack.practice_name(p)).collect();
        assert_eq!(names.len(), 300);
    }

    #[test]
    fn birth_and_death_dates_stay_in_range() {
        let mut rng = Rng::for_record(1, Kind::Patient, 1);
        let oldest = Date::from_days_since_epoch(REFERENCE_DATE.days_since_epoch() - 36_890);
        for _ in 0..100_000 {
            let birth = birth_date(&mut rng);
            assert!(birth <= REFERENCE_DATE && birth >= oldest, "{birth}");
            assert!(birth.years_until(REFERENCE_DATE) <= 100);
            let death = death_date(birth, &mut rng);
            assert!(death >= birth && death <= REFERENCE_DATE);
        }
    }
}
