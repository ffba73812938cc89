//! The sections of Access Record HTML, rendered as XHTML from the same clinical record that
//! Access Record Structured serves: the headings, table ids, column order, date classes,
//! banners and empty-section texts the 0.7.4 layout guide mandates (consumers display the
//! markup as it comes and the provider test suite compares it literally).
//!
//! The markup is one line with no whitespace between tags, as the specification requires (no
//! line breaks or tabs in the narrative). It is written into a `String`, which cannot fail, so
//! the results of `write!` are let go.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::carerecord::{DateFilter, Section};
use super::clock::day_of;
use super::record::{
    Allergy, ClinicalRecord, Concept, Consultation, MedicationCourse, Observation, Problem,
    display_date,
};

/// The emergency codes of the Summary, by group: only the most recent entry of a group shows.
/// Which codes count is a clinical-safety decision of the practice; these are the usual ones.
pub const EMERGENCY_CODE_GROUPS: [(&str, &[&str]); 2] = [
    // Not for / for resuscitation.
    ("Resuscitation status", &["304253006", "304252001"]),
    // Advance care planning.
    ("Advance care planning", &["713603004"]),
];

/// Everything a section needs besides the record.
#[derive(Debug)]
pub struct View<'a> {
    pub record: &'a ClinicalRecord,
    /// The UK calendar day, for "last 12 months" and "current".
    pub today: i64,
    /// The consumer's `timePeriod`.
    pub period: Option<DateFilter>,
    /// The day the patient registered, when the previous practice's record is still in
    /// transit (GP2GP not complete).
    pub in_transit_since: Option<i64>,
    /// Practitioners' display names by logical id.
    pub people: &'a BTreeMap<String, String>,
    /// The practice's name.
    pub practice: &'a str,
    /// SNOMED codes the practice withholds from every section (the RCGP sensitive set it
    /// applies), like items marked confidential.
    pub excluded_codes: &'a std::collections::BTreeSet<String>,
}

/// Escapes text for XHTML content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // The narrative may carry no line breaks or tabs.
            '\n' | '\r' | '\t' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

fn date_text(text: &str) -> String {
    day_of(text).map(display_date).unwrap_or_default()
}

/// A table cell: escaped content, and whether it holds a date.
struct Cell {
    html: String,
    date: bool,
}

fn text(value: impl AsRef<str>) -> Cell {
    Cell {
        html: escape(value.as_ref()),
        date: false,
    }
}

fn date(day: Option<i64>) -> Cell {
    Cell {
        html: day.map(display_date).unwrap_or_default(),
        date: true,
    }
}

/// Lines shown one under another in a cell.
fn lines(lines: &[String]) -> Cell {
    let escaped: Vec<String> = lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| escape(l))
        .collect();
    Cell {
        html: escaped.join("<br/>"),
        date: false,
    }
}

enum Row {
    Cells(Vec<Cell>),
    /// The heading row of a medication item's group.
    Group(String),
}

/// A table of a (sub)section.
struct Table {
    id: &'static str,
    headers: &'static [&'static str],
    rows: Vec<Row>,
}

impl Table {
    fn new(id: &'static str, headers: &'static [&'static str]) -> Table {
        Table {
            id,
            headers,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, cells: Vec<Cell>) {
        self.rows.push(Row::Cells(cells));
    }

    /// The table, or the no-data text when it has no rows.
    fn render(&self, title: &str, out: &mut String) {
        if self.rows.is_empty() {
            let _ = write!(
                out,
                "<div><p>No '{}' data is recorded for this patient.</p></div>",
                escape(title)
            );
            return;
        }
        let _ = write!(out, "<table id=\"{}\"><thead><tr>", self.id);
        for header in self.headers {
            let _ = write!(out, "<th>{header}</th>");
        }
        out.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            out.push_str("<tr>");
            match row {
                Row::Cells(cells) => {
                    for cell in cells {
                        if cell.date {
                            let _ = write!(out, "<td class=\"date-column\">{}</td>", cell.html);
                        } else {
                            let _ = write!(out, "<td>{}</td>", cell.html);
                        }
                    }
                }
                Row::Group(item) => {
                    let _ = write!(
                        out,
                        "<td colspan=\"{}\" class=\"med-item-column\"><strong>{}</strong></td>",
                        self.headers.len(),
                        escape(item)
                    );
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
}

/// How a (sub)section treats the consumer's date range.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Filtering {
    /// Filtered by the consumer's range; says which range.
    Consumer,
    /// Always everything; says so when a range was sent.
    All,
    /// Never has a date banner (Allergies, Immunisations, the Summary).
    None,
}

fn banner(class: &str, text: &str, out: &mut String) {
    let _ = write!(out, "<div class=\"{class}\"><p>{}</p></div>", escape(text));
}

fn date_banner(filtering: Filtering, period: Option<DateFilter>, out: &mut String) {
    let text = match (filtering, period) {
        (Filtering::None, _) => return,
        (Filtering::All, Some(_)) => "Date filter not applied".to_owned(),
        (_, None) => "All relevant items".to_owned(),
        (Filtering::Consumer, Some(p)) => match (p.from, p.to) {
            (Some(from), Some(to)) => format!(
                "For the period '{}' to '{}'",
                display_date(from),
                display_date(to)
            ),
            (Some(from), None) => format!("Data items from '{}'", display_date(from)),
            (None, Some(to)) => format!("Data items until '{}'", display_date(to)),
            (None, None) => "All relevant items".to_owned(),
        },
    };
    banner("date-banner", &text, out);
}

const EXCLUSION: &str = "Items excluded due to confidentiality and/or patient preferences";

/// A table and what surrounds it: its content banners, date banner and exclusion banner.
struct Part {
    title: &'static str,
    filtering: Filtering,
    content: Vec<&'static str>,
    excluded: bool,
    table: Table,
}

impl Part {
    fn new(title: &'static str, filtering: Filtering, table: Table) -> Part {
        Part {
            title,
            filtering,
            content: Vec::new(),
            excluded: false,
            table,
        }
    }

    fn render_banners_and_table(&self, period: Option<DateFilter>, out: &mut String) {
        for text in &self.content {
            banner("content-banner", text, out);
        }
        date_banner(self.filtering, period, out);
        if self.excluded {
            banner("exclusion-banner", EXCLUSION, out);
        }
        self.table.render(self.title, out);
    }
}

/// The section's XHTML: a single-table section's banners and table sit under its `h1`; a
/// multi-table one has a `div` per subsection with its `h2`.
pub fn render(section: Section, view: &View<'_>) -> String {
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><h1>{}</h1>",
        section.title()
    );
    if let Some(since) = view.in_transit_since {
        banner(
            "gptransfer-banner",
            &format!(
                "Patient record transfer from previous GP practice not yet complete; information recorded before {} may be missing",
                display_date(since)
            ),
            &mut out,
        );
    }
    let period = if section == Section::Summary {
        None
    } else {
        view.period
    };
    match parts(section, view) {
        Layout::Single(part) => part.render_banners_and_table(period, &mut out),
        Layout::Multiple(parts) => {
            for part in parts {
                let _ = write!(out, "<div><h2>{}</h2>", part.title);
                part.render_banners_and_table(period, &mut out);
                out.push_str("</div>");
            }
        }
    }
    out.push_str("</div>");
    out
}

enum Layout {
    Single(Part),
    Multiple(Vec<Part>),
}

fn parts(section: Section, view: &View<'_>) -> Layout {
    match section {
        Section::Administrative => Layout::Single(administrative(view)),
        Section::Allergies => {
            Layout::Multiple(vec![current_allergies(view), historical_allergies(view)])
        }
        Section::ClinicalItems => Layout::Single(clinical_items(view)),
        Section::Encounters => Layout::Single(encounters(view, "Encounters", None)),
        Section::Immunisations => Layout::Single(immunisations(view)),
        Section::Medications => Layout::Multiple(vec![
            acute_medication(view),
            current_repeats(view),
            discontinued_repeats(view),
            all_medication(view),
            all_issues(view),
        ]),
        Section::Observations => Layout::Single(observations(view)),
        Section::Problems => Layout::Multiple(vec![
            active_problems(view, Filtering::All),
            inactive_problems(view, true, Filtering::Consumer),
            inactive_problems(view, false, Filtering::Consumer),
        ]),
        Section::Referrals => Layout::Single(referrals(view)),
        Section::Summary => {
            let mut summary = vec![
                emergency_codes(view),
                encounters(view, "Last 3 Encounters", Some(3)),
                active_problems(view, Filtering::None),
                inactive_problems(view, true, Filtering::None),
                current_allergies(view),
                acute_medication(view),
                current_repeats(view),
            ];
            for part in &mut summary {
                part.filtering = Filtering::None;
            }
            Layout::Multiple(summary)
        }
    }
}

impl View<'_> {
    /// Whether an item may be shown: not marked confidential and not of an excluded code.
    fn shareable(&self, confidential: bool, code: &Concept) -> bool {
        !confidential && !self.excluded_codes.contains(&code.code)
    }

    /// Whether an item dated `day` is inside the consumer's range (everything is, without one).
    fn in_range(&self, day: Option<i64>) -> bool {
        match (self.period, day) {
            (None, _) => true,
            (Some(filter), Some(day)) => filter.holds(day),
            (Some(_), None) => false,
        }
    }

    fn person(&self, id: &str) -> String {
        self.people.get(id).cloned().unwrap_or_default()
    }

    /// What a reference to an item of the record (`Observation/2-o1`) names; nothing for an
    /// item that may not be shown, so that no other table gives it away.
    fn item_name(&self, reference: &str) -> Option<String> {
        let id = reference.split('/').nth(1)?;
        let record = self.record;
        let name = |c: &Concept| Some(c.display.clone());
        if let Some(o) = record.observations.iter().find(|o| o.id == id) {
            if !self.shareable(o.confidential, &o.code) {
                return None;
            }
            return match &o.value {
                Some((value, unit, _)) => Some(format!("{} {value} {unit}", o.code.display)),
                None => name(&o.code),
            };
        }
        if let Some(m) = record
            .medication
            .iter()
            .find(|m| id == m.id || id.starts_with(&format!("{}-", m.id)))
        {
            return self
                .shareable(m.confidential, &m.medication)
                .then(|| m.medication.display.clone());
        }
        if let Some(a) = record.allergies.iter().find(|a| a.id == id) {
            return self
                .shareable(a.confidential, &a.code)
                .then(|| a.code.display.clone());
        }
        if let Some(p) = record.problems.iter().find(|p| p.id == id) {
            return self
                .shareable(p.confidential, &p.code)
                .then(|| p.code.display.clone());
        }
        if let Some(r) = record.referrals.iter().find(|r| r.id == id) {
            return Some(format!("Referral: {}", r.reason.display));
        }
        if let Some(i) = record.investigations.iter().find(|i| i.id == id) {
            return name(&i.code);
        }
        record
            .immunisations
            .iter()
            .find(|i| i.id == id)
            .and_then(|i| name(&i.procedure))
    }

    /// The problems an item (by logical id) is linked to.
    fn linked_problems(&self, id: &str) -> Vec<String> {
        self.record
            .problems
            .iter()
            .filter(|p| self.shareable(p.confidential, &p.code))
            .filter(|p| {
                p.related.iter().any(|r| {
                    r.split('/')
                        .nth(1)
                        .is_some_and(|target| target == id || target.starts_with(&format!("{id}-")))
                })
            })
            .map(|p| format!("Problem: {}", p.code.display))
            .collect()
    }
}

/// Sorts rows newest first by their key day.
fn newest_first<T>(items: &mut [(Option<i64>, T)]) {
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
}

fn administrative(view: &View<'_>) -> Part {
    let mut items: Vec<_> = view
        .record
        .administrative
        .iter()
        .map(|a| (day_of(&a.date), a))
        .filter(|(day, _)| view.in_range(*day))
        .collect();
    newest_first(&mut items);
    let mut table = Table::new("adm-tab", &["Date", "Entry", "Details"]);
    for (day, item) in items {
        table.push(vec![date(day), text(&item.entry), text(&item.details)]);
    }
    Part::new("Administrative Items", Filtering::Consumer, table)
}

fn allergy_details(allergy: &Allergy) -> Cell {
    let mut details = vec![allergy.code.display.clone()];
    if let Some((reaction, severity)) = &allergy.reaction {
        details.push(format!("Reaction: {} ({severity})", reaction.display));
    }
    if let Some((_, reason)) = &allergy.ended {
        details.push(format!("Ended: {reason}"));
    }
    lines(&details)
}

fn current_allergies(view: &View<'_>) -> Part {
    let current: Vec<&Allergy> = view
        .record
        .allergies
        .iter()
        .filter(|a| a.ended.is_none())
        .collect();
    let mut items: Vec<_> = current
        .iter()
        .filter(|a| view.shareable(a.confidential, &a.code))
        .map(|a| {
            (
                a.onset.as_deref().or(Some(&a.asserted)).and_then(day_of),
                *a,
            )
        })
        .collect();
    newest_first(&mut items);
    let mut table = Table::new("all-tab-curr", &["Start Date", "Details"]);
    for (day, allergy) in &items {
        table.push(vec![date(*day), allergy_details(allergy)]);
    }
    if current.is_empty()
        && let Some(asserted) = &view.record.no_known_allergies
    {
        table.push(vec![date(day_of(asserted)), text("No known allergies")]);
    }
    let mut part = Part::new(
        "Current Allergies and Adverse Reactions",
        Filtering::None,
        table,
    );
    part.excluded = items.len() < current.len();
    part
}

fn historical_allergies(view: &View<'_>) -> Part {
    let ended: Vec<&Allergy> = view
        .record
        .allergies
        .iter()
        .filter(|a| a.ended.is_some())
        .collect();
    let mut items: Vec<_> = ended
        .iter()
        .filter(|a| view.shareable(a.confidential, &a.code))
        .map(|a| (a.ended.as_ref().and_then(|(d, _)| day_of(d)), *a))
        .collect();
    newest_first(&mut items);
    let mut table = Table::new("all-tab-hist", &["Start Date", "End Date", "Details"]);
    for (end, allergy) in &items {
        let start = allergy
            .onset
            .as_deref()
            .or(Some(&allergy.asserted))
            .and_then(day_of);
        table.push(vec![date(start), date(*end), allergy_details(allergy)]);
    }
    let mut part = Part::new(
        "Historical Allergies and Adverse Reactions",
        Filtering::None,
        table,
    );
    part.excluded = items.len() < ended.len();
    part
}

fn observation_day(observation: &Observation) -> Option<i64> {
    observation
        .effective
        .as_deref()
        .and_then(day_of)
        .or_else(|| day_of(&observation.issued))
}

/// Clinical Items: the coded entries of the record that carry no measurement.
fn clinical_items(view: &View<'_>) -> Part {
    let coded: Vec<&Observation> = view
        .record
        .observations
        .iter()
        .filter(|o| o.value.is_none())
        .filter(|o| view.in_range(observation_day(o)))
        .collect();
    let mut items: Vec<_> = coded
        .iter()
        .filter(|o| view.shareable(o.confidential, &o.code))
        .map(|o| (observation_day(o), *o))
        .collect();
    newest_first(&mut items);
    let mut table = Table::new("cli-tab", &["Date", "Entry", "Details"]);
    for (day, observation) in &items {
        let mut details = view.linked_problems(&observation.id);
        let by = view.person(&observation.performer);
        if !by.is_empty() {
            details.push(format!("Recorded by {by}"));
        }
        table.push(vec![
            date(*day),
            text(&observation.code.display),
            lines(&details),
        ]);
    }
    let mut part = Part::new("Clinical Items", Filtering::Consumer, table);
    part.excluded = items.len() < coded.len();
    part
}

/// The Summary's emergency codes: the most recent entry of each group.
fn emergency_codes(view: &View<'_>) -> Part {
    let mut table = Table::new(
        "cli-tab",
        &[
            "Date",
            "Entry",
            "Details",
            "Location of further information",
        ],
    );
    let mut latest: Vec<(Option<i64>, &Observation)> = EMERGENCY_CODE_GROUPS
        .iter()
        .filter_map(|(_, codes)| {
            view.record
                .observations
                .iter()
                .filter(|o| {
                    view.shareable(o.confidential, &o.code) && codes.contains(&o.code.code.as_str())
                })
                .map(|o| (observation_day(o), o))
                .max_by_key(|(day, _)| *day)
        })
        .collect();
    newest_first(&mut latest);
    for (day, observation) in latest {
        let by = view.person(&observation.performer);
        table.push(vec![
            date(day),
            text(&observation.code.display),
            text(if by.is_empty() {
                String::new()
            } else {
                format!("Recorded by {by}")
            }),
            text(format!("GP practice record, {}", view.practice)),
        ]);
    }
    Part::new("Emergency Codes", Filtering::None, table)
}

fn encounter_details(view: &View<'_>, consultation: &Consultation) -> Cell {
    let topics: Vec<String> = consultation
        .topics
        .iter()
        .map(|topic| {
            let items: Vec<String> = topic
                .all_items()
                .filter_map(|r| view.item_name(r))
                .collect();
            if items.is_empty() {
                topic.title.clone()
            } else {
                format!("{}: {}", topic.title, items.join("; "))
            }
        })
        .collect();
    lines(&topics)
}

fn encounters(view: &View<'_>, title: &'static str, most_recent: Option<usize>) -> Part {
    let mut items: Vec<_> = view
        .record
        .consultations
        .iter()
        .map(|c| (day_of(&c.start), c))
        .filter(|(day, _)| most_recent.is_some() || view.in_range(*day))
        .collect();
    newest_first(&mut items);
    if let Some(count) = most_recent {
        items.truncate(count);
    }
    let mut table = Table::new("enc-tab", &["Date", "Title", "Details"]);
    for (day, consultation) in &items {
        let clinician = view.person(&consultation.clinician);
        let title = if clinician.is_empty() {
            format!("{} at {}", consultation.kind, view.practice)
        } else {
            format!(
                "{} with {clinician} at {}",
                consultation.kind, view.practice
            )
        };
        table.push(vec![
            date(*day),
            text(title),
            encounter_details(view, consultation),
        ]);
    }
    Part::new(title, Filtering::Consumer, table)
}

fn immunisations(view: &View<'_>) -> Part {
    let mut items: Vec<_> = view
        .record
        .immunisations
        .iter()
        .map(|i| (day_of(&i.date), i))
        .collect();
    newest_first(&mut items);
    let mut table = Table::new(
        "imm-tab",
        &["Date", "Vaccination", "Part", "Contents", "Details"],
    );
    for (day, immunisation) in &items {
        // The dose's place in the course: how many of the same vaccination came before.
        let part = view
            .record
            .immunisations
            .iter()
            .filter(|i| i.procedure.code == immunisation.procedure.code)
            .filter(|i| day_of(&i.date) <= *day)
            .count();
        let given = if immunisation.given {
            "Given"
        } else {
            "Not given"
        };
        table.push(vec![
            date(*day),
            text(&immunisation.procedure.display),
            text(part.to_string()),
            text(&immunisation.vaccine.display),
            text(given),
        ]);
    }
    Part::new("Immunisations", Filtering::None, table)
}

// ---------------------------------------------------------------------------------------
// Medications

fn course_type(course: &MedicationCourse) -> String {
    let kind = match course.prescription_type.as_str() {
        "acute" => "Acute",
        "repeat-dispensing" => "Repeat dispensed",
        _ => "Repeat",
    };
    if course.prescribed_elsewhere {
        format!("{kind} - Unknown Prescriber")
    } else {
        kind.to_owned()
    }
}

/// A row of a medication table: the columns every one starts with (type, a date, item,
/// dosage, quantity), then `rest`.
fn course_row(
    course: &MedicationCourse,
    day: Option<i64>,
    rest: impl IntoIterator<Item = Cell>,
) -> Vec<Cell> {
    let mut cells = vec![
        text(course_type(course)),
        date(day),
        text(&course.medication.display),
        text(&course.dosage),
        text(quantity(course)),
    ];
    cells.extend(rest);
    cells
}

fn quantity(course: &MedicationCourse) -> String {
    format!("{} {}", course.quantity.0, course.quantity.1)
}

fn additional_information(view: &View<'_>, course: &MedicationCourse) -> Cell {
    lines(&view.linked_problems(&course.id))
}

fn last_issued(course: &MedicationCourse) -> Option<i64> {
    course.issues.iter().filter_map(|i| day_of(&i.date)).max()
}

/// The courses a table may show, and whether any were withheld (confidential or excluded).
fn shown<'r>(
    view: &View<'r>,
    keep: impl Fn(&MedicationCourse) -> bool,
) -> (Vec<&'r MedicationCourse>, bool) {
    let all: Vec<&MedicationCourse> = view.record.medication.iter().filter(|c| keep(c)).collect();
    let shown: Vec<&MedicationCourse> = all
        .iter()
        .copied()
        .filter(|c| view.shareable(c.confidential, &c.medication))
        .collect();
    let excluded = shown.len() < all.len();
    (shown, excluded)
}

fn acute_medication(view: &View<'_>) -> Part {
    let (courses, excluded) = shown(view, |c| {
        c.prescription_type == "acute" && day_of(&c.start).is_some_and(|d| d > view.today - 365)
    });
    let mut items: Vec<_> = courses.into_iter().map(|c| (day_of(&c.start), c)).collect();
    newest_first(&mut items);
    let mut table = Table::new(
        "med-tab-acu-med",
        &[
            "Type",
            "Start Date",
            "Medication Item",
            "Dosage Instruction",
            "Quantity",
            "Scheduled End Date",
            "Days Duration",
            "Additional Information",
        ],
    );
    for (start, course) in &items {
        let days = course.issues.first().map(|i| i64::from(i.days));
        let end = course
            .end
            .as_deref()
            .and_then(day_of)
            .or_else(|| start.zip(days).map(|(s, d)| s + d));
        table.push(course_row(
            course,
            *start,
            [
                date(end),
                text(days.map(|d| d.to_string()).unwrap_or_default()),
                additional_information(view, course),
            ],
        ));
    }
    let mut part = Part::new("Acute Medication (Last 12 Months)", Filtering::All, table);
    part.content.push("Scheduled End Date is not always captured in the source; where it was not recorded, the displayed date is calculated from start date and days duration");
    part.excluded = excluded;
    part
}

fn is_repeat(course: &MedicationCourse) -> bool {
    course.prescription_type != "acute"
}

fn current_repeats(view: &View<'_>) -> Part {
    let (courses, excluded) = shown(view, |c| {
        is_repeat(c)
            && c.status == "active"
            && c.end
                .as_deref()
                .and_then(day_of)
                .is_none_or(|end| end >= view.today)
    });
    let mut items: Vec<_> = courses.into_iter().map(|c| (day_of(&c.start), c)).collect();
    newest_first(&mut items);
    let mut table = Table::new(
        "med-tab-curr-rep",
        &[
            "Type",
            "Start Date",
            "Medication Item",
            "Dosage Instruction",
            "Quantity",
            "Last Issued Date",
            "Number of Prescriptions Issued",
            "Max Issues",
            "Review Date",
            "Additional Information",
        ],
    );
    for (start, course) in &items {
        // Repeat dispensing and items prescribed elsewhere are not issued by the practice.
        let issued_here = course.prescription_type == "repeat" && !course.prescribed_elsewhere;
        let issued = course.issues.len();
        table.push(course_row(
            course,
            *start,
            [
                date(last_issued(course).filter(|_| issued_here)),
                text(if issued_here && issued > 0 {
                    issued.to_string()
                } else {
                    String::new()
                }),
                text(
                    course
                        .repeats_allowed
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                ),
                // A repeat is reviewed a year after it was authorised.
                date(start.map(|s| s + 365)),
                additional_information(view, course),
            ],
        ));
    }
    let mut part = Part::new("Current Repeat Medication", Filtering::All, table);
    part.content.push("The Review Date is that set for each Repeat Course. Reviews may be conducted according to a diary event which differs from the dates shown");
    part.excluded = excluded;
    part
}

fn discontinued_repeats(view: &View<'_>) -> Part {
    let (courses, excluded) = shown(view, |c| is_repeat(c) && c.status == "stopped");
    let mut items: Vec<_> = courses.into_iter().map(|c| (last_issued(c), c)).collect();
    newest_first(&mut items);
    let mut table = Table::new(
        "med-tab-dis-rep",
        &[
            "Type",
            "Last Issued Date",
            "Medication Item",
            "Dosage Instruction",
            "Quantity",
            "Discontinued Date",
            "Discontinuation Reason",
            "Additional Information",
        ],
    );
    for (last, course) in &items {
        table.push(course_row(
            course,
            *last,
            [
                date(course.end.as_deref().and_then(day_of)),
                text(course.stop_reason.as_deref().unwrap_or("Not recorded")),
                additional_information(view, course),
            ],
        ));
    }
    let mut part = Part::new("Discontinued Repeat Medication", Filtering::All, table);
    part.content
        .push("All repeat medication ended by a clinician action");
    part.excluded = excluded;
    part
}

/// The courses All Medication lists: those whose time overlaps the consumer's range (a repeat
/// with no end runs on; an acute one with no end counts on its start).
fn all_medication_courses<'r>(view: &View<'r>) -> (Vec<&'r MedicationCourse>, bool) {
    shown(view, |course| {
        let Some(filter) = view.period else {
            return true;
        };
        let Some(start) = day_of(&course.start) else {
            return false;
        };
        match course.end.as_deref().and_then(day_of) {
            Some(end) => filter.overlaps(start, Some(end)),
            None if is_repeat(course) => filter.to.is_none_or(|to| start <= to),
            None => filter.holds(start),
        }
    })
}

/// Groups rows under their medication item, items alphabetically.
fn grouped(table: &mut Table, mut rows: Vec<(String, Option<i64>, Vec<Cell>)>) {
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut current: Option<String> = None;
    for (item, _, cells) in rows {
        if current.as_deref() != Some(item.as_str()) {
            table.rows.push(Row::Group(item.clone()));
            current = Some(item);
        }
        table.push(cells);
    }
}

/// One line of All Medication per course, summarising its issues.
fn all_medication(view: &View<'_>) -> Part {
    let (courses, excluded) = all_medication_courses(view);
    let mut table = Table::new(
        "med-tab-all-sum",
        &[
            "Type",
            "Start Date",
            "Medication Item",
            "Dosage Instruction",
            "Quantity",
            "Last Issued Date",
            "Number of Prescriptions Issued",
            "Discontinuation Details",
            "Additional Information",
        ],
    );
    let rows = courses
        .into_iter()
        .map(|course| {
            let first = course.issues.iter().filter_map(|i| day_of(&i.date)).min();
            let start = first.or_else(|| day_of(&course.start));
            let discontinued = if course.status == "stopped" {
                format!(
                    "DISCONTINUED: {} {}",
                    course.end.as_deref().map(date_text).unwrap_or_default(),
                    course.stop_reason.as_deref().unwrap_or_default()
                )
                .trim_end()
                .to_owned()
            } else {
                String::new()
            };
            let cells = course_row(
                course,
                start,
                [
                    date(last_issued(course)),
                    text(course.issues.len().to_string()),
                    text(discontinued),
                    additional_information(view, course),
                ],
            );
            (course.medication.display.clone(), start, cells)
        })
        .collect();
    grouped(&mut table, rows);
    let mut part = Part::new("All Medication", Filtering::Consumer, table);
    part.excluded = excluded;
    part
}

/// Every issue of the courses All Medication lists, whatever its date.
fn all_issues(view: &View<'_>) -> Part {
    let (courses, excluded) = all_medication_courses(view);
    let mut table = Table::new(
        "med-tab-all-iss",
        &[
            "Type",
            "Issue Date",
            "Medication Item",
            "Dosage Instruction",
            "Quantity",
            "Days Duration",
            "Additional Information",
        ],
    );
    let rows = courses
        .into_iter()
        .filter(|c| !c.prescribed_elsewhere && c.prescription_type != "repeat-dispensing")
        .flat_map(|course| {
            course.issues.iter().map(move |issue| {
                let day = day_of(&issue.date);
                let cells = course_row(
                    course,
                    day,
                    [
                        text(issue.days.to_string()),
                        additional_information(view, course),
                    ],
                );
                (course.medication.display.clone(), day, cells)
            })
        })
        .collect();
    grouped(&mut table, rows);
    let mut part = Part::new("All Medication Issues", Filtering::Consumer, table);
    part.excluded = excluded;
    part
}

// ---------------------------------------------------------------------------------------
// Observations, problems, referrals

fn observations(view: &View<'_>) -> Part {
    let measured: Vec<&Observation> = view
        .record
        .observations
        .iter()
        .filter(|o| o.value.is_some())
        .filter(|o| view.in_range(observation_day(o)))
        .collect();
    let mut rows: Vec<(Option<i64>, Vec<Cell>)> = measured
        .iter()
        .filter(|o| view.shareable(o.confidential, &o.code))
        .map(|o| {
            let (value, unit, _) = o.value.clone().unwrap_or_default();
            let day = observation_day(o);
            (
                day,
                vec![
                    date(day),
                    text(&o.code.display),
                    text(format!("{value} {unit}")),
                    text(""),
                    lines(&view.linked_problems(&o.id)),
                ],
            )
        })
        .collect();
    // Test results are observations too, with their reference ranges.
    for investigation in &view.record.investigations {
        let day = day_of(&investigation.collected).or_else(|| day_of(&investigation.issued));
        if !view.in_range(day) {
            continue;
        }
        for result in &investigation.results {
            let (value, unit, _) = &result.value;
            rows.push((
                day,
                vec![
                    date(day),
                    text(&result.code.display),
                    text(format!("{value} {unit}")),
                    text(format!("{} {unit}", result.range)),
                    text(format!(
                        "{} ({})",
                        investigation.code.display, investigation.specimen.1
                    )),
                ],
            ));
        }
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    let shown_measured = measured
        .iter()
        .filter(|o| view.shareable(o.confidential, &o.code))
        .count();
    let mut table = Table::new("obs-tab", &["Date", "Entry", "Value", "Range", "Details"]);
    for (_, cells) in rows {
        table.push(cells);
    }
    let mut part = Part::new("Observations", Filtering::Consumer, table);
    part.excluded = shown_measured < measured.len();
    part
}

fn problem_details(view: &View<'_>, problem: &Problem) -> Cell {
    let linked: Vec<String> = problem
        .related
        .iter()
        .filter_map(|r| view.item_name(r))
        .collect();
    let mut details = Vec::new();
    if !linked.is_empty() {
        details.push(format!("Linked: {}", linked.join("; ")));
    }
    let by = view.person(&problem.asserter);
    if !by.is_empty() {
        details.push(format!("Recorded by {by}"));
    }
    lines(&details)
}

fn significance(problem: &Problem) -> &'static str {
    if problem.major { "Major" } else { "Minor" }
}

fn active_problems(view: &View<'_>, filtering: Filtering) -> Part {
    let active: Vec<&Problem> = view.record.problems.iter().filter(|p| p.active).collect();
    let mut items: Vec<_> = active
        .iter()
        .filter(|p| view.shareable(p.confidential, &p.code))
        .map(|p| (day_of(&p.onset), *p))
        .collect();
    newest_first(&mut items);
    let mut table = Table::new(
        "prb-tab-act",
        &["Start Date", "Entry", "Significance", "Details"],
    );
    for (day, problem) in &items {
        table.push(vec![
            date(*day),
            text(&problem.code.display),
            text(significance(problem)),
            problem_details(view, problem),
        ]);
    }
    let mut part = Part::new("Active Problems and Issues", filtering, table);
    part.excluded = items.len() < active.len();
    part
}

fn inactive_problems(view: &View<'_>, major: bool, filtering: Filtering) -> Part {
    let inactive: Vec<&Problem> = view
        .record
        .problems
        .iter()
        .filter(|p| !p.active && p.major == major)
        .filter(|p| {
            filtering != Filtering::Consumer
                || match (view.period, day_of(&p.onset)) {
                    (None, _) => true,
                    (Some(filter), Some(start)) => {
                        filter.overlaps(start, p.ended.as_deref().and_then(day_of))
                    }
                    (Some(_), None) => false,
                }
        })
        .collect();
    let mut items: Vec<_> = inactive
        .iter()
        .filter(|p| view.shareable(p.confidential, &p.code))
        .map(|p| (p.ended.as_deref().and_then(day_of), *p))
        .collect();
    newest_first(&mut items);
    let mut table = Table::new(
        if major {
            "prb-tab-majinact"
        } else {
            "prb-tab-othinact"
        },
        &["Start Date", "End Date", "Entry", "Significance", "Details"],
    );
    for (end, problem) in &items {
        table.push(vec![
            date(day_of(&problem.onset)),
            date(*end),
            text(&problem.code.display),
            text(significance(problem)),
            problem_details(view, problem),
        ]);
    }
    let title = if major {
        "Major Inactive Problems and Issues"
    } else {
        "Other Inactive Problems and Issues"
    };
    let mut part = Part::new(title, filtering, table);
    part.excluded = items.len() < inactive.len();
    part
}

fn referrals(view: &View<'_>) -> Part {
    let mut items: Vec<_> = view
        .record
        .referrals
        .iter()
        .map(|r| (day_of(&r.authored), r))
        .filter(|(day, _)| view.in_range(*day))
        .collect();
    newest_first(&mut items);
    let mut table = Table::new("ref-tab", &["Date", "From", "To", "Priority", "Details"]);
    for (day, referral) in &items {
        let mut details = vec![referral.reason.display.clone()];
        if !referral.description.is_empty() {
            details.push(format!("Notes: {}", referral.description));
        }
        details.extend(view.linked_problems(&referral.id));
        table.push(vec![
            date(*day),
            text(format!(
                "{}, {}",
                view.person(&referral.requester),
                view.practice
            )),
            text(format!("{} ({})", referral.recipient.1, referral.specialty)),
            text(if referral.urgent { "Urgent" } else { "Routine" }),
            lines(&details),
        ]);
    }
    Part::new("Referrals", Filtering::Consumer, table)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::domain::carerecord::DateFilter;
    use carehub_fhir::datetime::days_from_civil;

    fn patient2() -> ClinicalRecord {
        let today = days_from_civil(2026, 12, 1);
        crate::seed::records(today)
            .into_iter()
            .find(|r| r.id == "2")
            .expect("patient2")
    }

    fn render_with(
        record: &ClinicalRecord,
        section: Section,
        period: Option<DateFilter>,
        excluded: &BTreeSet<String>,
    ) -> String {
        let people = BTreeMap::from([("1".to_owned(), "Dr Anne Smith".to_owned())]);
        render(
            section,
            &View {
                record,
                today: days_from_civil(2026, 12, 1),
                period,
                in_transit_since: None,
                people: &people,
                practice: "Carehub Surgery",
                excluded_codes: excluded,
            },
        )
    }

    #[test]
    fn the_markup_is_one_line_of_well_formed_xhtml() {
        let record = patient2();
        for section in Section::ALL {
            let html = render_with(&record, section, None, &BTreeSet::new());
            assert!(!html.contains('\n') && !html.contains('\t'), "{html}");
            assert!(html.starts_with(&format!(
                "<div xmlns=\"http://www.w3.org/1999/xhtml\"><h1>{}</h1>",
                section.title()
            )));
            assert!(html.ends_with("</div>"));
            let opened = html.matches("<div").count();
            assert_eq!(opened, html.matches("</div>").count(), "{html}");
            assert_eq!(
                html.matches("<table").count(),
                html.matches("</table>").count()
            );
        }
    }

    #[test]
    fn excluded_codes_are_withheld_everywhere_with_the_banner() {
        let record = patient2();
        let smoker = BTreeSet::from(["77176002".to_owned()]);
        let shown = render_with(&record, Section::ClinicalItems, None, &BTreeSet::new());
        // (The banner is there anyway: a confidential entry is withheld from this table.)
        assert!(shown.contains("Smoker") && !shown.contains("Depressive"));
        let withheld = render_with(&record, Section::ClinicalItems, None, &smoker);
        assert!(!withheld.contains("Smoker"));
        assert!(withheld.contains(
            "<div class=\"exclusion-banner\"><p>Items excluded due to confidentiality and/or patient preferences</p></div>"
        ));
        // Nor does the encounter it was recorded in give it away.
        let encounters = render_with(&record, Section::Encounters, None, &smoker);
        assert!(!encounters.contains("Smoker"), "{encounters}");
    }

    #[test]
    fn partial_periods_show_as_whole_days_in_the_banner() {
        let record = patient2();
        let html = render_with(
            &record,
            Section::Problems,
            Some(DateFilter {
                from: Some(days_from_civil(2015, 5, 1)),
                to: Some(days_from_civil(2016, 7, 1)),
            }),
            &BTreeSet::new(),
        );
        // Active problems always show everything; the inactive ones are filtered.
        assert!(html.contains("<h2>Active Problems and Issues</h2><div class=\"date-banner\"><p>Date filter not applied</p></div>"));
        assert!(html.contains("<h2>Major Inactive Problems and Issues</h2><div class=\"date-banner\"><p>For the period '01-May-2015' to '01-Jul-2016'</p></div>"));
        assert!(html.contains("Pneumonia") && !html.contains("Gastroesophageal"));
    }
}
