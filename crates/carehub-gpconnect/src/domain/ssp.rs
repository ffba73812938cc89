//! The Spine Secure Proxy headers every request to a provider carries: who sent it
//! (`Ssp-From`), to whom (`Ssp-To`, the provider's ASID), which interaction it is
//! (`Ssp-InteractionID`) and the Spine's trace id (`Ssp-TraceID`).

use super::error::GpcError;
use super::interaction::Interaction;

/// The SSP headers of a request, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct SspHeaders<'a> {
    /// `Ssp-TraceID`.
    pub trace_id: Option<&'a str>,
    /// `Ssp-From`: the consumer's ASID.
    pub from: Option<&'a str>,
    /// `Ssp-To`: the provider's ASID.
    pub to: Option<&'a str>,
    /// `Ssp-InteractionID`.
    pub interaction_id: Option<&'a str>,
}

/// Who sent a request through the SSP, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SspRequest {
    /// The consumer's ASID.
    pub from: String,
    /// The Spine trace id.
    pub trace_id: String,
    /// The interaction the consumer named (one of those the endpoint serves).
    pub interaction: Interaction,
}

fn present<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, GpcError> {
    match value.map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(GpcError::bad_request(format!(
            "The {name} header is missing; requests to a GP Connect provider carry the SSP headers"
        ))),
    }
}

/// Checks the headers of a request to the provider with ASID `provider_asid` at an endpoint
/// that serves `allowed` (one interaction, or update and cancel for `PUT /Appointment`).
pub fn check(
    headers: SspHeaders<'_>,
    provider_asid: &str,
    allowed: &[Interaction],
) -> Result<SspRequest, GpcError> {
    let trace_id = present(headers.trace_id, "Ssp-TraceID")?;
    let from = present(headers.from, "Ssp-From")?;
    let to = present(headers.to, "Ssp-To")?;
    let interaction_id = present(headers.interaction_id, "Ssp-InteractionID")?;
    if to != provider_asid {
        return Err(GpcError::bad_request(format!(
            "Ssp-To is {to}, but this provider's ASID is {provider_asid}"
        )));
    }
    let interaction = Interaction::from_id(interaction_id)
        .filter(|i| allowed.contains(i))
        .ok_or_else(|| {
            let expected: Vec<String> = allowed.iter().map(|i| i.id()).collect();
            GpcError::bad_request(format!(
                "Ssp-InteractionID '{interaction_id}' does not match the request; expected {}",
                expected.join(" or ")
            ))
        })?;
    Ok(SspRequest {
        from: from.to_owned(),
        trace_id: trace_id.to_owned(),
        interaction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::SpineCode;

    #[test]
    fn every_header_is_required_and_must_match() {
        let read = Interaction::ReadPatient.id();
        let good = SspHeaders {
            trace_id: Some("1f2d3c4b-0000-4000-8000-000000000001"),
            from: Some("200000000359"),
            to: Some("918999198738"),
            interaction_id: Some(&read),
        };
        let found = check(good, "918999198738", &[Interaction::ReadPatient]).expect("good");
        assert_eq!(found.interaction, Interaction::ReadPatient);
        assert_eq!(found.from, "200000000359");

        let cases = [
            SspHeaders {
                trace_id: None,
                ..good
            },
            SspHeaders { from: None, ..good },
            SspHeaders { to: None, ..good },
            SspHeaders {
                interaction_id: None,
                ..good
            },
            SspHeaders {
                to: Some("200000000359"),
                ..good
            },
            SspHeaders {
                interaction_id: Some("urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1"),
                ..good
            },
        ];
        for case in cases {
            let error =
                check(case, "918999198738", &[Interaction::ReadPatient]).expect_err("refused");
            assert_eq!(error.code, SpineCode::BadRequest, "{case:?}");
        }
    }
}
