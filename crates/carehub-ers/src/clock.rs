//! The time that e-RS rules read: which slots are still free, when a referral was created or
//! changed, what "today" is in a worklist. Handlers and the repository take it from one
//! [`Clock`], so that a test can start the week where it likes and get the same free slots
//! whatever the hour it runs at.

/// Microseconds since the Unix epoch, by the system's clock.
pub fn system_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The system's clock, or the system's clock moved by a fixed offset: it always runs at the
/// system's pace, so timestamps taken one after another still come in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset_micros: i64,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `start` (microseconds since the epoch) now and runs on from there.
    pub fn starting_at(start: i64) -> Clock {
        Clock {
            offset_micros: start - system_micros(),
        }
    }

    /// The next Monday at `hour`:00 UTC strictly after now, by the system's clock.
    pub fn next_monday_at(hour: u32) -> i64 {
        const DAY: i64 = 86_400_000_000;
        let now = system_micros();
        let today = now.div_euclid(DAY);
        // 1970-01-01 was a Thursday: day 4 of a week that starts on Monday day 0.
        let monday = today - (today + 3).rem_euclid(7);
        let mut at = monday * DAY + i64::from(hour) * 3_600_000_000;
        while at <= now {
            at += 7 * DAY;
        }
        at
    }

    /// Microseconds since the epoch.
    pub fn now_micros(&self) -> i64 {
        system_micros() + self.offset_micros
    }

    /// Now as a FHIR instant.
    pub fn now_text(&self) -> String {
        carehub_fhir::datetime::format_instant(self.now_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_clock_reads_its_start_and_runs_on() {
        let start = 1_700_000_000_000_000;
        let clock = Clock::starting_at(start);
        let first = clock.now_micros();
        let second = clock.now_micros();
        assert!(first >= start && first - start < 1_000_000, "{first}");
        assert!(second >= first);
    }

    #[test]
    fn next_monday_is_a_monday_at_the_hour_within_a_week() {
        let at = Clock::next_monday_at(7);
        let now = system_micros();
        assert!(at > now && at - now <= 7 * 86_400_000_000);
        let text = carehub_fhir::datetime::format_instant(at);
        assert!(text.contains("T07:00:00"), "{text}");
        let days = at.div_euclid(86_400_000_000);
        assert_eq!((days + 3).rem_euclid(7), 0, "{text} is a Monday");
    }
}
