//! The PDS population `carehub up` loads into an integration environment: named patients in
//! the states GP Connect's and e-RS's test scenarios need (restricted, deceased, superseded by
//! a merge, unverified), and a background population of synthetic patients from
//! `carehub-testdata` to search among and register.

use carehub_testdata::{Pack, PackSpec};

use super::record::PdsPatient;

/// The ODS code of the practice carehub's GP system serves first.
pub const HOME_PRACTICE: &str = "B82617";

/// One named patient: NHS number, title, given, family, gender, birth date, address line,
/// postcode.
type Named = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// The GP Connect test patients (the provider test suite's `patient1`.. keys, under the NHS
/// numbers its `NHSNoMap.csv` ships with) and the e-RS referrals' patient.
const NAMED: [Named; 21] = [
    (
        "9690937278",
        "Mr",
        "Arthur",
        "Pennington",
        "male",
        "1952-04-11",
        "14 Hyde Park Road",
        "LS6 1AE",
    ),
    (
        "9690937286",
        "Mrs",
        "Beatrice",
        "Okafor",
        "female",
        "1968-03-14",
        "3 Cardigan Lane",
        "LS4 2LE",
    ),
    (
        "9690937294",
        "Mr",
        "Callum",
        "Reid",
        "male",
        "1979-09-02",
        "88 Kirkstall Avenue",
        "LS5 3BQ",
    ),
    (
        "9690937308",
        "Ms",
        "Dorothy",
        "Hughes",
        "female",
        "1945-12-20",
        "7 Otley Road",
        "LS16 5JT",
    ),
    (
        "9690937375",
        "Mr",
        "Ewan",
        "Mackenzie",
        "male",
        "1990-06-30",
        "21 Burley Street",
        "LS3 1LD",
    ),
    (
        "9690937383",
        "Mrs",
        "Fiona",
        "Patel",
        "female",
        "1983-01-17",
        "5 Moor Road",
        "LS6 4BH",
    ),
    (
        "9690937391",
        "Mr",
        "George",
        "Kowalski",
        "male",
        "1971-07-08",
        "42 Spen Lane",
        "LS16 5BR",
    ),
    (
        "9690937405",
        "Miss",
        "Hannah",
        "Lewis",
        "female",
        "2001-11-25",
        "9 Victoria Road",
        "LS6 1DR",
    ),
    (
        "9690938533",
        "Mr",
        "Ivan",
        "Novak",
        "male",
        "1960-05-05",
        "1 Grove Lane",
        "LS6 2AP",
    ),
    (
        "9690938541",
        "Mrs",
        "Julia",
        "Brennan",
        "female",
        "1975-02-14",
        "16 Woodhouse Lane",
        "LS2 9JT",
    ),
    (
        "9690938614",
        "Mr",
        "Kieran",
        "Doyle",
        "male",
        "1958-08-19",
        "30 Headingley Lane",
        "LS6 2BU",
    ),
    (
        "9690938096",
        "Mrs",
        "Laura",
        "Fitzgerald",
        "female",
        "1988-10-03",
        "11 Ash Road",
        "LS6 3JD",
    ),
    (
        "9690938576",
        "Ms",
        "Nadia",
        "Rahman",
        "female",
        "1993-04-22",
        "60 Cliff Road",
        "LS6 2EZ",
    ),
    (
        "9690938118",
        "Mr",
        "Oliver",
        "Grant",
        "male",
        "1949-09-09",
        "2 Shire Oak Road",
        "LS6 2DE",
    ),
    (
        "9690938126",
        "Mrs",
        "Priya",
        "Shah",
        "female",
        "1972-12-01",
        "18 Alma Road",
        "LS6 2AH",
    ),
    (
        "9690938681",
        "Mr",
        "Quentin",
        "Marsh",
        "male",
        "1939-02-02",
        "4 North Lane",
        "LS6 3HE",
    ),
    (
        "9690938142",
        "Mrs",
        "Rosa",
        "Delgado",
        "female",
        "1981-06-16",
        "27 Wood Lane",
        "LS6 2AY",
    ),
    (
        "9690938134",
        "Mr",
        "Samuel",
        "Adeyemi",
        "male",
        "1997-03-11",
        "12 Bennett Road",
        "LS6 3HN",
    ),
    (
        "9690938622",
        "Mr",
        "Kieran",
        "Doyle",
        "male",
        "1958-08-19",
        "30 Headingley Lane",
        "LS6 2BU",
    ),
    (
        "9690938150",
        "Mrs",
        "Ursula",
        "Pennington",
        "female",
        "1936-10-30",
        "9 Cardigan Road",
        "LS6 1LJ",
    ),
    (
        "9912003888",
        "Ms",
        "Tamsin",
        "Whitaker",
        "female",
        "1986-05-19",
        "8 Park Lane",
        "LS1 2QR",
    ),
];

/// Restricted ("sensitive") on PDS.
pub const RESTRICTED: [&str; 2] = ["9690938533", "9690938541"];
/// Deceased, with the date of death notified formally.
pub const DECEASED: (&str, &str) = ("9690938681", "2025-02-11T09:30:00+00:00");
/// Deceased a fortnight before the data was seeded: GP Connect Access Record HTML lets a
/// practice share a record for 28 days after death, so the suite needs a recent death.
pub const RECENTLY_DECEASED: &str = "9690938150";
/// How long before seeding [`RECENTLY_DECEASED`] died.
pub const RECENTLY_DECEASED_DAYS_AGO: i64 = 14;

/// Superseded by a merge: (old number, the number of the record it was merged into).
pub const SUPERSEDED: (&str, &str) = ("9690938622", "9690938614");
/// On the GP system but not on PDS (the suite's `patient14`).
pub const NOT_ON_PDS: &str = "9476718943";

/// The named patients (the recently deceased one dated from now).
pub fn named() -> Vec<PdsPatient> {
    NAMED
        .iter()
        .map(
            |&(nhs, prefix, given, family, gender, birth, line, postcode)| {
                let mut patient = PdsPatient {
                    nhs_number: nhs.into(),
                    prefix: Some(prefix.into()),
                    given: vec![given.into()],
                    family: family.into(),
                    gender: gender.into(),
                    birth_date: birth.into(),
                    deceased: None,
                    address_lines: vec![line.into(), "Leeds".into()],
                    postcode: Some(postcode.into()),
                    telephone: Some(format!("0113 496 {}", &nhs[6..])),
                    gp_practice: Some(HOME_PRACTICE.into()),
                    restricted: RESTRICTED.contains(&nhs),
                    verified: true,
                    superseded_by: None,
                };
                if nhs == DECEASED.0 {
                    patient.deceased = Some(DECEASED.1.into());
                }
                if nhs == RECENTLY_DECEASED {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros() as i64)
                        .unwrap_or(0);
                    let died = now - RECENTLY_DECEASED_DAYS_AGO * 86_400_000_000;
                    patient.deceased = Some(carehub_fhir::datetime::format_instant(died));
                }
                if nhs == SUPERSEDED.0 {
                    patient.superseded_by = Some(SUPERSEDED.1.into());
                }
                patient
            },
        )
        .collect()
}

/// How many synthetic patients the background population holds.
pub const BACKGROUND_PATIENTS: u64 = 500;

/// Synthetic patients (NHS numbers in the 999 test range), some restricted and some deceased
/// as `carehub-testdata` draws them.
pub fn background() -> Vec<PdsPatient> {
    let pack = Pack::new(PackSpec {
        seed: 2026,
        patients: BACKGROUND_PATIENTS,
        practices: 12,
        trusts: 0,
        practitioners_per_org: 0,
    });
    pack.patient_records()
        .map(|record| PdsPatient {
            nhs_number: record.nhs_number.as_str().to_owned(),
            prefix: record.prefix.map(str::to_owned),
            given: std::iter::once(record.given)
                .chain(record.middle_name)
                .map(str::to_owned)
                .collect(),
            family: record.family.to_owned(),
            gender: record.gender.code().to_owned(),
            birth_date: record.birth_date.to_fhir(),
            deceased: record
                .death_date
                .map(|d| format!("{}T00:00:00+00:00", d.to_fhir())),
            address_lines: vec![record.address.line.clone(), record.address.city.to_owned()],
            postcode: Some(record.address.postcode.clone()),
            telephone: record.home_phone.clone(),
            gp_practice: record.gp_practice.as_ref().map(|p| p.ods_code.clone()),
            restricted: record.sensitive,
            verified: true,
            superseded_by: None,
        })
        .collect()
}

/// Loads the population into `repo` once (a later start finds it there). Returns whether it
/// loaded.
pub async fn seed(repo: &super::repo::PdsRepo) -> Result<bool, super::repo::PdsRepoError> {
    if repo.get(NAMED[0].0).await?.is_some() {
        return Ok(false);
    }
    let mut population = named();
    population.extend(background());
    repo.put_all(population).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_numbers_are_valid_and_unique() {
        let named = named();
        let mut numbers: Vec<&str> = named.iter().map(|p| p.nhs_number.as_str()).collect();
        for number in &numbers {
            assert!(carehub_testdata::is_valid_nhs_number(number), "{number}");
        }
        assert!(carehub_testdata::is_valid_nhs_number(NOT_ON_PDS));
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), named.len());
        let background = background();
        assert_eq!(background.len() as u64, BACKGROUND_PATIENTS);
        assert!(
            background
                .iter()
                .all(|b| !numbers.contains(&b.nhs_number.as_str()))
        );
    }
}
