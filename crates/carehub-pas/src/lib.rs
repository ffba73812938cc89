//! A test PAS (patient administration system): the clinics a provider runs for a service, the
//! slots they offer on a rolling horizon, and the bookings that take them.
//!
//! Slots are not stored: a clinic's timetable generates them (weekday mornings, in UTC), so the
//! horizon rolls forward by itself. A booking is stored, as `SlotBooking/{slot id}` in the PAS's
//! store partition, written with "must not exist" so that two bookings of one slot cannot both
//! succeed, on one node or many. Callers put the booking in the same unit of work as their own
//! records ([`book_in`], [`release_in`]), so a booking and what it is for commit together.

use carehub_fhir::datetime::{civil_from_days, days_from_civil, format_instant};
use carehub_store::{Expect, Store, StoreError, Tx};
use serde_json::json;

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 86_400_000_000;
/// Slots are offered this many days ahead.
pub const HORIZON_DAYS: i64 = 28;

/// A clinic: one schedule of one service, optionally with a named clinician.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clinic {
    /// The schedule id: the service id, or `{service}-{clinician}` for a named clinician.
    pub schedule: String,
    /// The service it runs for.
    pub service: String,
    /// The named clinician's SDS user id.
    pub clinician: Option<String>,
    /// First slot of the day, in minutes after midnight UTC.
    pub first_minute: i64,
    /// Slots a day.
    pub per_day: i64,
    /// Minutes each.
    pub length: i64,
    /// At most this many of its slots are offered at a time, the earliest (a small clinic);
    /// all of them when `None`.
    pub limit: Option<usize>,
    /// Slots it offers beside its timetable, under ids of their own (a PAS that numbers its
    /// slots, as the e-RS sandbox's example requests do). Their start may lie in the past:
    /// callers decide whether such a slot may still be booked.
    pub listed: Vec<Slot>,
}

/// A slot of a clinic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// `{schedule}-{yyyymmddhhmm}`.
    pub id: String,
    /// The clinic's schedule id.
    pub schedule: String,
    /// Start, microseconds since the epoch.
    pub start: i64,
    /// End.
    pub end: i64,
}

impl Slot {
    /// Start as a FHIR instant.
    pub fn start_text(&self) -> String {
        format_instant(self.start)
    }

    /// End as a FHIR instant.
    pub fn end_text(&self) -> String {
        format_instant(self.end)
    }
}

/// The clinics the PAS runs for a service: a general clinic, and one per named clinician.
pub fn clinics(service: &str, clinicians: &[String]) -> Vec<Clinic> {
    let mut clinics = vec![Clinic {
        schedule: service.to_owned(),
        service: service.to_owned(),
        clinician: None,
        first_minute: 9 * 60,
        per_day: 12,
        length: 15,
        limit: None,
        listed: Vec::new(),
    }];
    clinics.extend(clinicians.iter().map(|sds| Clinic {
        schedule: format!("{service}-{sds}"),
        service: service.to_owned(),
        clinician: Some(sds.clone()),
        first_minute: 14 * 60,
        per_day: 4,
        length: 30,
        limit: None,
        listed: Vec::new(),
    }));
    clinics
}

fn weekday(days: i64) -> i64 {
    // 1970-01-01 was a Thursday; 0 = Monday.
    (days + 3).rem_euclid(7)
}

impl Clinic {
    /// Its slots that start after `now` and within the horizon, in time order.
    pub fn slots(&self, now: i64) -> Vec<Slot> {
        let today = now.div_euclid(DAY);
        let mut slots = Vec::new();
        for days in today..=today + HORIZON_DAYS {
            if weekday(days) >= 5 {
                continue;
            }
            for n in 0..self.per_day {
                let start = days * DAY + (self.first_minute + n * self.length) * MINUTE;
                if start <= now {
                    continue;
                }
                slots.push(self.slot_at(start));
            }
        }
        let horizon = (today + HORIZON_DAYS + 1) * DAY;
        let before = slots.len();
        slots.extend(
            self.listed
                .iter()
                .filter(|s| s.start > now && s.start < horizon)
                .cloned(),
        );
        if slots.len() > before {
            slots.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        }
        if let Some(limit) = self.limit {
            slots.truncate(limit);
        }
        slots
    }

    fn slot_at(&self, start: i64) -> Slot {
        let (year, month, day) = civil_from_days(start.div_euclid(DAY));
        let minute = start.rem_euclid(DAY) / MINUTE;
        Slot {
            id: format!(
                "{}-{year:04}{month:02}{day:02}{:02}{:02}",
                self.schedule,
                minute / 60,
                minute % 60
            ),
            schedule: self.schedule.clone(),
            start,
            end: start + self.length * MINUTE,
        }
    }

    /// The slot with `id`, if this clinic offers it (at any time; callers check it is
    /// still ahead).
    pub fn slot(&self, id: &str) -> Option<Slot> {
        if let Some(listed) = self.listed.iter().find(|s| s.id == id) {
            return Some(listed.clone());
        }
        let stamp = id.strip_prefix(&self.schedule)?.strip_prefix('-')?;
        if stamp.len() != 12 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = |range: std::ops::Range<usize>| stamp[range].parse::<i64>().ok();
        let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
        let (hour, minute) = (number(8..10)?, number(10..12)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let days = days_from_civil(i32::try_from(year).ok()?, month as u32, day as u32);
        let offset = hour * 60 + minute - self.first_minute;
        let on_timetable = weekday(days) < 5
            && offset >= 0
            && offset % self.length == 0
            && offset / self.length < self.per_day;
        let slot = self.slot_at(days * DAY + (hour * 60 + minute) * MINUTE);
        (on_timetable && slot.id == id).then_some(slot)
    }
}

/// The PAS of one environment, in store partition `key`.
#[derive(Debug, Clone)]
pub struct Pas {
    store: Store,
    key: String,
}

/// The store kind of bookings.
const BOOKING: &str = "SlotBooking";

impl Pas {
    /// The PAS whose bookings live in partition `key` of `store`.
    pub fn new(store: Store, key: &str) -> Pas {
        Pas {
            store,
            key: key.to_owned(),
        }
    }

    /// Its store partition.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether a slot is booked.
    pub async fn is_booked(&self, slot: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .read(&self.key, BOOKING, slot)
            .await?
            .is_some_and(|v| !v.is_deleted()))
    }

    /// The slots of `clinic` still free after `now`.
    pub async fn free_slots(&self, clinic: &Clinic, now: i64) -> Result<Vec<Slot>, StoreError> {
        let mut free = Vec::new();
        for slot in clinic.slots(now) {
            if !self.is_booked(&slot.id).await? {
                free.push(slot);
            }
        }
        Ok(free)
    }
}

/// Books `slot` for `reference` inside a unit of work; `Ok(false)` if it is already taken.
pub async fn book_in(
    tx: &mut Tx<'_>,
    key: &str,
    slot: &Slot,
    reference: &str,
) -> Result<bool, StoreError> {
    if tx
        .read(key, BOOKING, &slot.id)
        .await?
        .is_some_and(|v| !v.is_deleted())
    {
        return Ok(false);
    }
    let booking = json!({
        "slot": slot.id,
        "schedule": slot.schedule,
        "start": slot.start_text(),
        "end": slot.end_text(),
        "for": reference,
    });
    match tx
        .put(key, BOOKING, &slot.id, booking, &[], Expect::Absent)
        .await
    {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyExists { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Frees a booked slot inside a unit of work.
pub async fn release_in(tx: &mut Tx<'_>, key: &str, slot: &str) -> Result<(), StoreError> {
    tx.delete(key, BOOKING, slot, Expect::Any).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Monday 2026-11-30 08:00 UTC.
    const MONDAY_8AM: i64 = (20_787 * 86_400 + 8 * 3600) * 1_000_000;

    #[test]
    fn clinics_run_on_weekday_mornings_and_named_clinicians_in_the_afternoon() {
        let clinics = clinics("20001", &["555000000003".to_owned()]);
        assert_eq!(clinics.len(), 2);
        let slots = clinics[0].slots(MONDAY_8AM);
        assert_eq!(slots[0].id, "20001-202611300900");
        assert_eq!(slots[0].start_text(), "2026-11-30T09:00:00.000Z");
        assert_eq!(slots[0].end_text(), "2026-11-30T09:15:00.000Z");
        // Four weeks of weekdays (20 or 21 days) of twelve slots.
        assert!(
            slots.len() >= 20 * 12 && slots.len() <= 21 * 12,
            "{}",
            slots.len()
        );
        assert!(slots.iter().all(|s| weekday(s.start.div_euclid(DAY)) < 5));
        let named = clinics[1].slots(MONDAY_8AM);
        assert_eq!(named[0].id, "20001-555000000003-202611301400");
    }

    #[test]
    fn listed_slots_are_found_by_their_own_ids_and_offered_while_ahead() {
        let mut clinic = clinics("20001", &[]).remove(0);
        let listed = |id: &str, start: i64| Slot {
            id: id.to_owned(),
            schedule: "20001".into(),
            start,
            end: start + 60 * MINUTE,
        };
        // Monday 10:10, off the timetable's quarter hours; and one long past.
        clinic.listed = vec![
            listed("20001021", MONDAY_8AM + 130 * MINUTE),
            listed("20001001", MONDAY_8AM - 400 * DAY),
        ];
        assert_eq!(
            clinic.slot("20001001").map(|s| s.start),
            Some(MONDAY_8AM - 400 * DAY)
        );
        let ids: Vec<String> = clinic
            .slots(MONDAY_8AM)
            .into_iter()
            .take(6)
            .map(|s| s.id)
            .collect();
        assert_eq!(
            ids,
            [
                "20001-202611300900",
                "20001-202611300915",
                "20001-202611300930",
                "20001-202611300945",
                "20001-202611301000",
                "20001021"
            ]
        );
        assert!(clinic.slots(MONDAY_8AM + 140 * MINUTE)[0].id != "20001021");
    }

    #[test]
    fn slots_already_started_are_not_offered() {
        let clinic = &clinics("20001", &[])[0];
        let slots = clinic.slots(MONDAY_8AM + 90 * MINUTE);
        assert_eq!(slots[0].id, "20001-202611300945");
    }

    #[test]
    fn ids_off_the_timetable_are_not_slots() {
        let clinic = &clinics("20001", &[])[0];
        for id in [
            "20001-202611300905", // not on a 15-minute boundary
            "20001-202611301200", // after the last slot
            "20001-202611280900", // a Saturday
            "20001-202613010900", // month 13
            "20002-202611300900", // another service
            "20001-20261130090",
        ] {
            assert_eq!(clinic.slot(id), None, "{id}");
        }
        assert!(clinic.slot("20001-202611301145").is_some());
    }

    proptest! {
        /// Every generated slot is found again by its id.
        #[test]
        fn generated_ids_round_trip(offset_days in 0i64..4000, minute in 0i64..1440) {
            let now = MONDAY_8AM + offset_days * DAY + minute * MINUTE - 8 * 60 * MINUTE;
            for clinic in clinics("31337", &["555000000001".to_owned()]) {
                for slot in clinic.slots(now).into_iter().take(30) {
                    prop_assert_eq!(clinic.slot(&slot.id), Some(slot.clone()));
                }
            }
        }
    }
}
