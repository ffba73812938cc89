//! Schedules and their slots. A schedule is a timetable (weekdays, sessions of fixed-length
//! slots, in UK local time) at a location, perhaps with a practitioner and a healthcare service,
//! with the rules that decide who may see its slots: GP Connect bookable or not, a booking
//! window, and restrictions to consumer organisations or organisation types. Slots are worked
//! out from the timetable, not stored; a slot is busy while an appointment holds it.

use carehub_fhir::datetime::{DateKind, PartialDateTime, Precision};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::clock::{self, DAY, MINUTE};
use super::error::{GpcError, SpineCode};
use super::{SYSTEM_DOS_SERVICE, SYSTEM_ODS};

const PROFILE_SCHEDULE: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Schedule-1";
const PROFILE_SLOT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1";
/// `Extension-GPConnect-PractitionerRole-1`.
pub const EXTENSION_PRACTITIONER_ROLE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-PractitionerRole-1";
/// `Extension-GPConnect-DeliveryChannel-2`.
pub const EXTENSION_DELIVERY_CHANNEL: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2";
const SYSTEM_JOB_ROLE: &str = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1";
/// The organisation types a slot may be kept for.
pub const SYSTEM_ORGANISATION_TYPE: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/GPConnect-OrganisationType-1";

/// The most days a slot search may span.
pub const MAX_SEARCH_DAYS: i64 = 14;

/// A run of slots in a day: from `start` (minutes after local midnight), `count` slots of
/// `minutes` each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub start: i64,
    pub count: i64,
    pub minutes: i64,
}

/// A schedule and its timetable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    /// The organisation whose service root offers its slots.
    pub organisation: String,
    pub location: String,
    pub practitioner: Option<String>,
    pub healthcare_service: Option<String>,
    /// The SDS job role of the clinician (`R0260`, "General Medical Practitioner").
    pub practitioner_role: (String, String),
    /// The kind of session (`Schedule.serviceCategory.text`).
    pub session_type: String,
    /// The kind of slot (`Slot.serviceType.text`).
    pub slot_type: String,
    /// `In-person`, `Telephone` or `Video`.
    pub delivery_channel: String,
    /// Weekdays it runs, Monday 0 to Sunday 6.
    pub weekdays: Vec<i64>,
    pub sessions: Vec<Session>,
    /// Whether consumers may book its slots through GP Connect at all.
    pub gp_connect_bookable: bool,
    /// How many days ahead its slots are offered (the booking window; later ones are embargoed).
    pub booking_window_days: i64,
    /// Kept for these consumer organisations (ODS codes), when not empty.
    pub for_organisations: Vec<String>,
    /// Kept for these organisation types, when not empty.
    pub for_organisation_types: Vec<String>,
}

/// One slot of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// `{schedule}-{local YYYYMMDDhhmm}`.
    pub id: String,
    pub schedule: String,
    /// Microseconds since 1970.
    pub start: i64,
    pub end: i64,
}

impl Schedule {
    fn slot_at(&self, day: i64, minute: i64, minutes: i64) -> Slot {
        let start = clock::uk_local(day, minute);
        let (year, month, date) = carehub_fhir::datetime::civil_from_days(day);
        Slot {
            id: format!(
                "{}-{year:04}{month:02}{date:02}{:02}{:02}",
                self.id,
                minute / 60,
                minute % 60
            ),
            schedule: self.id.clone(),
            start,
            end: start + minutes * MINUTE,
        }
    }

    /// Every slot of the timetable that starts within `[from, to]` (instants).
    pub fn slots_between(&self, from: i64, to: i64) -> Vec<Slot> {
        let mut slots = Vec::new();
        for day in clock::uk_day(from)..=clock::uk_day(to) {
            if !self.weekdays.contains(&clock::weekday(day)) {
                continue;
            }
            for session in &self.sessions {
                for n in 0..session.count {
                    let slot =
                        self.slot_at(day, session.start + n * session.minutes, session.minutes);
                    if slot.start >= from && slot.start <= to {
                        slots.push(slot);
                    }
                }
            }
        }
        slots
    }

    /// The slot with `id`, if the timetable has one.
    pub fn slot(&self, id: &str) -> Option<Slot> {
        let stamp = id.strip_prefix(&self.id)?.strip_prefix('-')?;
        if stamp.len() != 12 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = |range: std::ops::Range<usize>| stamp[range].parse::<i64>().ok();
        let (year, month, date) = (number(0..4)?, number(4..6)?, number(6..8)?);
        let minute = number(8..10)? * 60 + number(10..12)?;
        let month = u32::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
        let date = u32::try_from(date).ok()?;
        if date == 0 || date > carehub_fhir::datetime::days_in_month(year as i32, month) {
            return None;
        }
        let day = carehub_fhir::datetime::days_from_civil(year as i32, month, date);
        if !self.weekdays.contains(&clock::weekday(day)) {
            return None;
        }
        self.sessions.iter().find_map(|s| {
            let offset = minute - s.start;
            (offset >= 0 && offset % s.minutes == 0 && offset / s.minutes < s.count)
                .then(|| self.slot_at(day, minute, s.minutes))
        })
    }

    /// Whether a consumer with `filters` may see the schedule's slots: restricted schedules
    /// only for a matching organisation or type, and only when the consumer says who it is.
    pub fn visible_to(&self, filters: &SlotFilters) -> bool {
        let ods_ok = match &filters.organisation {
            None => self.for_organisations.is_empty(),
            Some(ods) => {
                self.for_organisations.is_empty() || self.for_organisations.iter().any(|o| o == ods)
            }
        };
        let type_ok = match &filters.organisation_type {
            None => self.for_organisation_types.is_empty(),
            Some(kind) => {
                self.for_organisation_types.is_empty()
                    || self.for_organisation_types.iter().any(|t| t == kind)
            }
        };
        ods_ok && type_ok
    }

    /// As GPConnect-Schedule-1; the planning horizon is the search's range.
    pub fn to_resource(&self, version: i64, horizon: (i64, i64)) -> Value {
        let mut actors = vec![json!({"reference": format!("Location/{}", self.location)})];
        if let Some(practitioner) = &self.practitioner {
            actors.push(json!({"reference": format!("Practitioner/{practitioner}")}));
        }
        if let Some(service) = &self.healthcare_service {
            actors.push(json!({"reference": format!("HealthcareService/{service}")}));
        }
        json!({
            "resourceType": "Schedule",
            "id": self.id,
            "meta": {"versionId": version.to_string(), "profile": [PROFILE_SCHEDULE]},
            "extension": [self.practitioner_role_extension()],
            "serviceCategory": {"text": self.session_type},
            "actor": actors,
            "planningHorizon": {"start": clock::format_uk(horizon.0), "end": clock::format_uk(horizon.1)},
        })
    }

    /// `Extension-GPConnect-PractitionerRole-1` of the schedule's clinician.
    pub fn practitioner_role_extension(&self) -> Value {
        let (code, display) = &self.practitioner_role;
        json!({"url": EXTENSION_PRACTITIONER_ROLE,
               "valueCodeableConcept": {"coding": [{"system": SYSTEM_JOB_ROLE, "code": code, "display": display}]}})
    }

    /// `Extension-GPConnect-DeliveryChannel-2` of its slots.
    pub fn delivery_channel_extension(&self) -> Value {
        json!({"url": EXTENSION_DELIVERY_CHANNEL, "valueCode": self.delivery_channel})
    }

    /// A slot of this schedule as GPConnect-Slot-1.
    pub fn slot_resource(&self, slot: &Slot, free: bool) -> Value {
        json!({
            "resourceType": "Slot",
            "id": slot.id,
            "meta": {"versionId": if free { "1" } else { "2" }, "profile": [PROFILE_SLOT]},
            "extension": [self.delivery_channel_extension()],
            "serviceType": [{"text": self.slot_type}],
            "schedule": {"reference": format!("Schedule/{}", self.id)},
            "status": if free { "free" } else { "busy" },
            "start": clock::format_uk(slot.start),
            "end": clock::format_uk(slot.end),
        })
    }
}

/// Who the consumer says it is, from `searchFilter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotFilters {
    pub organisation: Option<String>,
    pub organisation_type: Option<String>,
}

/// Which resources the Bundle carries besides slots and schedules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Includes {
    pub practitioner: bool,
    pub location: bool,
    pub healthcare_service: bool,
}

/// A parsed free-slot search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSearch {
    /// Instants: slots must lie entirely within.
    pub from: i64,
    pub to: i64,
    pub filters: SlotFilters,
    pub includes: Includes,
    /// `service.identifier`: the DOS id of the healthcare service whose slots are wanted.
    pub service: Option<String>,
}

fn bad(why: impl Into<String>) -> GpcError {
    GpcError::bad_request(why)
}

fn invalid(why: impl Into<String>) -> GpcError {
    GpcError::invalid_parameter(why)
}

/// A search date: a full date, or a dateTime to the second with a UK offset (`+00:00` or
/// `+01:00`); a date is its whole day (from its start for `ge`, to its end for `le`).
fn search_instant(text: &str, name: &str, end_of_day: bool) -> Result<(i64, i64), GpcError> {
    let parsed = PartialDateTime::parse(text, DateKind::DateTime)
        .map_err(|e| invalid(format!("'{name}={text}': {e}")))?;
    match parsed.precision {
        Precision::Day => {
            let day =
                carehub_fhir::datetime::days_from_civil(parsed.year, parsed.month, parsed.day);
            let instant = if end_of_day {
                clock::uk_local(day + 1, 0) - 1
            } else {
                clock::uk_local(day, 0)
            };
            Ok((instant, day))
        }
        Precision::Second | Precision::Fraction(_) => {
            if text.ends_with('Z') || !matches!(parsed.offset_minutes, Some(0) | Some(60)) {
                return Err(invalid(format!(
                    "'{name}={text}': times are UK local, with the offset +00:00 or +01:00 (not Z)"
                )));
            }
            let instant = parsed.range().0;
            Ok((instant, clock::uk_day(instant)))
        }
        _ => Err(invalid(format!(
            "'{name}={text}' must be a full date (YYYY-MM-DD) or a dateTime with a UK offset"
        ))),
    }
}

/// Reads `GET /Slot`'s parameters, with the spec's errors: a missing required parameter is
/// `BAD_REQUEST`, a wrong value `INVALID_PARAMETER`.
pub fn parse_slot_search(query: &[(String, String)]) -> Result<SlotSearch, GpcError> {
    let all = |name: &str| -> Vec<&str> {
        query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let one = |name: &str, prefix: &str| -> Result<String, GpcError> {
        match all(name).as_slice() {
            [] => Err(bad(format!("The search needs '{name}={prefix}...'"))),
            [value] => value
                .strip_prefix(prefix)
                .map(str::to_owned)
                .ok_or_else(|| invalid(format!("'{name}={value}' must use the prefix '{prefix}'"))),
            _ => Err(invalid(format!("Send '{name}' once"))),
        }
    };
    let start = one("start", "ge")?;
    let end = one("end", "le")?;
    match all("status").as_slice() {
        [] => return Err(bad("The search needs 'status=free'")),
        ["free"] => {}
        other => return Err(invalid(format!("'status' must be 'free', not {other:?}"))),
    }
    let includes = all("_include");
    if !includes.contains(&"Slot:schedule") {
        return Err(bad("The search needs '_include=Slot:schedule'"));
    }
    let (from, from_day) = search_instant(&start, "start", false)?;
    let (to, to_day) = search_instant(&end, "end", true)?;
    if to < from {
        return Err(invalid("'end' is before 'start'"));
    }
    if to_day - from_day > MAX_SEARCH_DAYS {
        return Err(invalid(format!(
            "The search spans {} days; at most {MAX_SEARCH_DAYS} are allowed",
            to_day - from_day
        )));
    }
    let mut search = SlotSearch {
        from,
        to,
        filters: SlotFilters::default(),
        includes: Includes::default(),
        service: None,
    };
    for include in all("_include:recurse") {
        match include {
            "Schedule:actor:Practitioner" => search.includes.practitioner = true,
            "Schedule:actor:Location" => search.includes.location = true,
            "Schedule:actor:HealthcareService" => search.includes.healthcare_service = true,
            // The Organization is always returned; other includes are not served.
            _ => {}
        }
    }
    for filter in all("searchFilter") {
        match filter.split_once('|') {
            Some((SYSTEM_ODS, ods)) if !ods.is_empty() => {
                search.filters.organisation = Some(ods.to_owned())
            }
            Some((SYSTEM_ORGANISATION_TYPE, kind)) if !kind.is_empty() => {
                search.filters.organisation_type = Some(kind.to_owned());
            }
            // Filters of other systems are ignored, as the spec says.
            _ => {}
        }
    }
    if let [identifier] = all("service.identifier").as_slice() {
        match identifier.split_once('|') {
            Some((SYSTEM_DOS_SERVICE, id)) if !id.is_empty() => {
                search.service = Some(id.to_owned())
            }
            _ => {
                return Err(invalid(format!(
                    "'service.identifier={identifier}' must be {SYSTEM_DOS_SERVICE}|{{id}}"
                )));
            }
        }
    }
    Ok(search)
}

/// The slots a search may return from `schedule`: GP Connect bookable, visible to the
/// consumer, inside the search range and the booking window, starting after `now`, and free.
pub fn free_slots(
    schedule: &Schedule,
    search: &SlotSearch,
    now: i64,
    busy: &dyn Fn(&str) -> bool,
) -> Vec<Slot> {
    if !schedule.gp_connect_bookable || !schedule.visible_to(&search.filters) {
        return Vec::new();
    }
    let window_end = now + schedule.booking_window_days * DAY;
    schedule
        .slots_between(search.from, search.to)
        .into_iter()
        .filter(|s| s.end <= search.to && s.start > now && s.start <= window_end && !busy(&s.id))
        .collect()
}

/// `NO_RECORD_FOUND` for a service the practice does not list.
pub fn unknown_service(id: &str) -> GpcError {
    GpcError::new(
        SpineCode::NoRecordFound,
        format!("No healthcare service with DOS id '{id}' is in this practice's service list"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            id: "1".into(),
            organisation: "1".into(),
            location: "1".into(),
            practitioner: Some("1".into()),
            healthcare_service: None,
            practitioner_role: ("R0260".into(), "General Medical Practitioner".into()),
            session_type: "GP session".into(),
            slot_type: "Routine appointment".into(),
            delivery_channel: "In-person".into(),
            weekdays: vec![0, 1, 2, 3, 4],
            sessions: vec![Session {
                start: 9 * 60,
                count: 6,
                minutes: 10,
            }],
            gp_connect_bookable: true,
            booking_window_days: 28,
            for_organisations: Vec::new(),
            for_organisation_types: Vec::new(),
        }
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn slot_ids_read_back_and_only_timetabled_ones_exist() {
        let day = carehub_fhir::datetime::days_from_civil(2026, 12, 1);
        let slots = schedule().slots_between(clock::uk_local(day, 0), clock::uk_local(day + 1, 0));
        assert_eq!(slots.len(), 6);
        assert_eq!(slots[0].id, "1-202612010900");
        assert_eq!(schedule().slot("1-202612010950"), Some(slots[5].clone()));
        for id in [
            "1-202612011000",
            "1-202612050900",
            "1-20261201090",
            "2-202612010900",
            "1-hello",
            "1-202613010900",
        ] {
            assert_eq!(schedule().slot(id), None, "{id}");
        }
    }

    #[test]
    fn searches_are_checked_as_the_spec_says() {
        let base = [("status", "free"), ("_include", "Slot:schedule")];
        let with = |extra: &[(&str, &str)]| {
            let mut all = q(&base);
            all.extend(q(extra));
            parse_slot_search(&all)
        };
        assert!(
            with(&[("start", "ge2026-12-01"), ("end", "le2026-12-15")]).is_ok(),
            "14 days"
        );
        assert!(
            with(&[("start", "ge2026-12-01"), ("end", "le2026-12-01")]).is_ok(),
            "0 days"
        );
        assert!(
            with(&[
                ("start", "ge2026-12-01T00:00:00+00:00"),
                ("end", "le2026-12-09")
            ])
            .is_ok()
        );
        let code = |extra: &[(&str, &str)]| with(extra).expect_err("refused").code;
        assert_eq!(
            code(&[("start", "ge2026-12-01"), ("end", "le2026-12-16")]),
            SpineCode::InvalidParameter
        );
        assert_eq!(
            code(&[("start", "ge2026-12-02"), ("end", "le2026-12-01")]),
            SpineCode::InvalidParameter
        );
        assert_eq!(
            code(&[("start", "ge2026-12-01T00:00:00Z"), ("end", "le2026-12-02")]),
            SpineCode::InvalidParameter
        );
        assert_eq!(
            code(&[("start", "ge2026-12-01T00:00:00"), ("end", "le2026-12-02")]),
            SpineCode::InvalidParameter
        );
        assert_eq!(
            code(&[("start", "ge2026-12"), ("end", "le2026-12-02")]),
            SpineCode::InvalidParameter
        );
        assert_eq!(
            code(&[("start", "gt2026-12-01"), ("end", "le2026-12-02")]),
            SpineCode::InvalidParameter
        );
        assert_eq!(code(&[("end", "le2026-12-02")]), SpineCode::BadRequest);
        let no_status = parse_slot_search(&q(&[
            ("start", "ge2026-12-01"),
            ("end", "le2026-12-02"),
            ("_include", "Slot:schedule"),
        ]));
        assert_eq!(no_status.expect_err("status").code, SpineCode::BadRequest);
        let busy = parse_slot_search(&q(&[
            ("start", "ge2026-12-01"),
            ("end", "le2026-12-02"),
            ("status", "busy"),
            ("_include", "Slot:schedule"),
        ]));
        assert_eq!(busy.expect_err("busy").code, SpineCode::InvalidParameter);
    }

    #[test]
    fn restricted_schedules_show_only_to_matching_consumers() {
        let mut restricted = schedule();
        restricted.for_organisation_types = vec!["urgent-care".into()];
        let none = SlotFilters::default();
        let urgent = SlotFilters {
            organisation: Some("A11111".into()),
            organisation_type: Some("urgent-care".into()),
        };
        let gp = SlotFilters {
            organisation: Some("A11111".into()),
            organisation_type: Some("gp-practice".into()),
        };
        assert!(schedule().visible_to(&none) && schedule().visible_to(&urgent));
        assert!(!restricted.visible_to(&none));
        assert!(restricted.visible_to(&urgent));
        assert!(!restricted.visible_to(&gp));
        let mut for_one = schedule();
        for_one.for_organisations = vec!["A11111".into()];
        assert!(for_one.visible_to(&gp));
        assert!(!for_one.visible_to(&SlotFilters {
            organisation: Some("B22222".into()),
            organisation_type: None
        }));
    }
}
