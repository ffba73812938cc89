//! The documents e-RS prints from a referral: the patient's letter (A019: how to book, or the
//! booked appointment, with the UBRN and password) and the clinical information summary (A007).
//! Both are laid out as [`pdf::Line`]s from the referral's own data.

use super::appointment::{self, Appointment};
use super::codes;
use super::error::ErsError;
use super::pdf::Line;
use super::referral::{Referral, State};
use super::service::Service;

/// A UBRN as patients are shown it: `1000 0000 0001`.
pub fn spaced_ubrn(ubrn: &str) -> String {
    ubrn.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `2026-12-03T09:15:00.000Z` as `03/12/2026 09:15 (UTC)`.
fn when(instant: &str) -> String {
    let date = instant.get(0..10).unwrap_or(instant);
    let time = instant.get(11..16).unwrap_or("");
    let mut parts = date.split('-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => format!("{d}/{m}/{y} {time} (UTC)"),
        _ => instant.to_owned(),
    }
}

/// The patient's letter for `referral`, with its current appointment and the directory's
/// services; refused for a cancelled referral or one without a password.
pub fn patient_letter(
    referral: &Referral,
    appointment: Option<&Appointment>,
    directory: &[Service],
) -> Result<Vec<Line>, ErsError> {
    if referral.state == State::CancelledReferral {
        return Err(ErsError::rule(
            "INVALID_REQUEST_STATE",
            format!(
                "referral {} is cancelled: there is nothing for the patient to do",
                referral.ubrn
            ),
        ));
    }
    let Some(code) = &referral.access_code else {
        return Err(ErsError::rule(
            "NO_ACCESS_CODE",
            format!("referral {} has no password to print", referral.ubrn),
        ));
    };
    let mut lines = vec![
        Line::Heading("NHS e-Referral Service: your referral".into()),
        Line::Gap,
        Line::Text(format!("NHS number: {}", referral.patient)),
        Line::Text(format!(
            "Booking reference number (UBRN): {}",
            spaced_ubrn(&referral.ubrn)
        )),
        Line::Text(format!("Password: {code}")),
        Line::Text(format!(
            "Priority: {}",
            codes::priority_display(&referral.criteria.priority)
                .unwrap_or(&referral.criteria.priority)
        )),
        Line::Gap,
    ];
    let booked = appointment
        .filter(|a| a.status == appointment::Status::Booked && referral.state == State::Booked);
    if let Some(booked) = booked {
        lines.push(Line::Heading("Your appointment".into()));
        lines.push(Line::Text(format!("Service: {}", booked.service_name)));
        if let Some(service) = directory.iter().find(|s| s.id == booked.service) {
            lines.push(Line::Text(format!("Where: {}", service.site_name)));
        }
        if let Some(start) = &booked.start {
            lines.push(Line::Text(format!("When: {}", when(start))));
        }
        lines.push(Line::Gap);
        lines.push(Line::Text(
            "If you cannot attend, use your booking reference number and password to change or cancel the appointment.".into(),
        ));
    } else {
        lines.push(Line::Heading("How to book".into()));
        lines.push(Line::Text(
            "Your clinician has chosen these services for you. Book online with your booking reference number and password, or call the service."
                .into(),
        ));
        lines.push(Line::Gap);
        for shortlisted in &referral.shortlist {
            let site = directory
                .iter()
                .find(|s| s.id == shortlisted.service)
                .map(|s| format!(" - {}", s.site_name))
                .unwrap_or_default();
            lines.push(Line::Text(format!(
                "{} (service {}){site}",
                shortlisted.name, shortlisted.service
            )));
        }
    }
    Ok(lines)
}

/// The clinical information summary of `referral`: what was asked for, by whom, where it is,
/// and the attachments (listed, not included: A042 fetches them).
pub fn clinical_information(referral: &Referral) -> Vec<Line> {
    let (state, display) = referral.state.coding();
    let mut lines = vec![
        Line::Heading("Clinical information summary".into()),
        Line::Gap,
        Line::Text(format!("UBRN: {}", referral.ubrn)),
        Line::Text(format!("Patient NHS number: {}", referral.patient)),
        Line::Text(format!(
            "Referring clinician (SDS user id): {}",
            referral.referring_clinician
        )),
        Line::Text(format!(
            "Referring organisation: {}",
            referral.referrer_organisation
        )),
        Line::Text(format!(
            "Priority: {}",
            codes::priority_display(&referral.criteria.priority)
                .unwrap_or(&referral.criteria.priority)
        )),
    ];
    if let Some(specialty) = &referral.criteria.specialty {
        lines.push(Line::Text(format!(
            "Specialty: {}",
            codes::specialty_display(specialty).unwrap_or(specialty)
        )));
    }
    if let Some(clinic) = &referral.criteria.clinic_type {
        lines.push(Line::Text(format!(
            "Clinic type: {}",
            codes::clinic_type_display(clinic).unwrap_or(clinic)
        )));
    }
    if let Some(start) = &referral.pathway_start {
        lines.push(Line::Text(format!(
            "e-Referral pathway start: {}",
            when(start)
        )));
    }
    lines.push(Line::Text(format!("State: {display} ({state})")));
    if let Some(reason) = &referral.reason {
        lines.push(Line::Text(format!("Reason: {}", reason.code)));
        if let Some(comment) = &reason.comment {
            lines.push(Line::Text(format!("Comments: {comment}")));
        }
    }
    lines.push(Line::Gap);
    lines.push(Line::Heading("Shortlisted services".into()));
    for shortlisted in &referral.shortlist {
        lines.push(Line::Text(format!(
            "{} (service {}, {})",
            shortlisted.name, shortlisted.service, shortlisted.provider
        )));
    }
    lines.push(Line::Gap);
    lines.push(Line::Heading("Referral letter and attachments".into()));
    if referral.letters.is_empty() {
        lines.push(Line::Text("None attached.".into()));
    }
    for letter in &referral.letters {
        lines.push(Line::Text(format!(
            "{} ({}, {} bytes){}",
            letter.file.name,
            letter.file.content_type,
            letter.file.size,
            letter
                .description
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )));
    }
    lines
}
