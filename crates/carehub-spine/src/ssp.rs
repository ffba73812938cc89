//! The Spine Secure Proxy's checks, over the directory: the sender's ASID must be authorised
//! for the interaction, the receiver's ASID registered for it, and the target URL must be the
//! receiver's registered endpoint. Refusals carry the SSP's own tokens
//! (`ASID_CHECK_FAILED_MESSAGESENDER_{asid}`, ...), not a GP Connect code.

use crate::sds::{AccreditedSystem, MessageHandler};

/// The SSP headers of a request, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    pub trace_id: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub interaction_id: Option<&'a str>,
}

/// A refused request: the HTTP status and the SSP's token for the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {token}")]
pub struct Refusal {
    pub status: u16,
    /// The FHIR issue type.
    pub issue: &'static str,
    pub token: String,
}

impl Refusal {
    fn new(status: u16, issue: &'static str, token: String) -> Refusal {
        Refusal {
            status,
            issue,
            token,
        }
    }
}

/// The headers every proxied request must carry, or 400.
pub fn required<'a>(headers: &Headers<'a>) -> Result<(&'a str, &'a str, &'a str), Refusal> {
    let present = |value: Option<&'a str>, name: &str| {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Refusal::new(400, "invalid", format!("MISSING_HEADER_{name}")))
    };
    present(headers.trace_id, "Ssp-TraceID")?;
    Ok((
        present(headers.from, "Ssp-From")?,
        present(headers.to, "Ssp-To")?,
        present(headers.interaction_id, "Ssp-InteractionID")?,
    ))
}

/// The methods the SSP carries (FHIR's RESTful verbs); anything else is 405.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What the SSP carries at all, before any routing: a FHIR verb (405 otherwise), and a body,
/// when there is one, of a FHIR media type (JSON or XML, the STU3 or the DSTU2 names; 415
/// otherwise).
pub fn carried(method: &str, content_type: Option<&str>, has_body: bool) -> Result<(), Refusal> {
    if !METHODS.contains(&method) {
        return Err(Refusal::new(
            405,
            "not-supported",
            "405: Method Not Allowed".into(),
        ));
    }
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    let fhir = |m: &str| {
        matches!(
            m,
            "application/fhir+json"
                | "application/fhir+xml"
                | "application/json+fhir"
                | "application/xml+fhir"
                | "application/json"
                | "application/xml"
        )
    };
    match media {
        Some(media) if has_body && !fhir(&media) => Err(Refusal::new(
            415,
            "not-supported",
            format!("415: Unsupported Media Type {media}"),
        )),
        None if has_body => Err(Refusal::new(
            415,
            "not-supported",
            "415: Unsupported Media Type (the body has no Content-Type)".into(),
        )),
        _ => Ok(()),
    }
}

/// A request to route: from the consumer's ASID to the provider's, for an interaction, to a
/// target URL; `caller_asid` is the ASID the consumer authenticated as (its certificate's or
/// application's), which must be the one it sends.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub interaction: &'a str,
    pub target: &'a str,
    pub caller_asid: Option<&'a str>,
}

/// What SDS holds of the sender, the receiver and the receiver's endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parties<'a> {
    pub sender: Option<&'a AccreditedSystem>,
    pub receiver: Option<&'a AccreditedSystem>,
    pub endpoint: Option<&'a MessageHandler>,
}

/// Checks a route against the directory, in the SSP's order: sender, receiver, target.
pub fn authorise(route: Route<'_>, parties: Parties<'_>) -> Result<(), Refusal> {
    let Route {
        from,
        to,
        interaction,
        target,
        caller_asid,
    } = route;
    let Parties {
        sender,
        receiver,
        endpoint,
    } = parties;
    let sender_ok = caller_asid == Some(from)
        && sender.is_some_and(|s| s.interactions.iter().any(|i| i == interaction));
    if !sender_ok {
        return Err(Refusal::new(
            403,
            "forbidden",
            format!("ASID_CHECK_FAILED_MESSAGESENDER_{from}"),
        ));
    }
    let Some(receiver) = receiver.filter(|r| r.interactions.iter().any(|i| i == interaction))
    else {
        return Err(Refusal::new(
            403,
            "forbidden",
            format!("PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_{to}"),
        ));
    };
    let Some(endpoint) = endpoint.filter(|e| {
        e.party_key == receiver.party_key && e.interactions.iter().any(|i| i == interaction)
    }) else {
        return Err(Refusal::new(
            403,
            "forbidden",
            format!("PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_{to}"),
        ));
    };
    let root = endpoint.address.trim_end_matches('/');
    let under_root = target == root
        || target
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
    if !under_root {
        return Err(Refusal::new(
            400,
            "invalid",
            format!(
                "ENDPOINT_{root}_CPAID_cpa-{}_VARIES_FROM_TARGETURL_{target}",
                endpoint.party_key
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1";

    fn consumer() -> AccreditedSystem {
        AccreditedSystem {
            asid: "200000000359".into(),
            party_key: "A11111-0000001".into(),
            ods: "A11111".into(),
            manufacturer: "A11111".into(),
            interactions: vec![READ.into()],
        }
    }

    fn provider() -> (AccreditedSystem, MessageHandler) {
        (
            AccreditedSystem {
                asid: "918999198738".into(),
                party_key: "B82617-0000806".into(),
                ods: "B82617".into(),
                manufacturer: "CAREHUB".into(),
                interactions: vec![READ.into()],
            },
            MessageHandler {
                party_key: "B82617-0000806".into(),
                ods: "B82617".into(),
                interactions: vec![READ.into()],
                address: "https://gp.example/B82617/STU3/1/gpconnect".into(),
                fqdn: "gp.example".into(),
                cpa_id: None,
            },
        )
    }

    #[test]
    fn only_fhir_verbs_and_media_types_are_carried() {
        assert_eq!(carried("GET", None, false), Ok(()));
        assert_eq!(
            carried("POST", Some("application/fhir+json; charset=utf-8"), true),
            Ok(())
        );
        assert_eq!(carried("POST", Some("application/xml+fhir"), true), Ok(()));
        assert_eq!(
            carried("OPTIONS", None, false).map_err(|r| r.status),
            Err(405)
        );
        assert_eq!(
            carried("TRACE", None, false).map_err(|r| r.status),
            Err(405)
        );
        assert_eq!(
            carried("POST", Some("text/plain"), true).map_err(|r| r.status),
            Err(415)
        );
        assert_eq!(carried("POST", None, true).map_err(|r| r.status), Err(415));
        // A GET's Content-Type is not looked at (clients send one anyway).
        assert_eq!(carried("GET", Some("text/plain"), false), Ok(()));
    }

    #[test]
    fn sender_receiver_and_target_are_checked_in_order() {
        let (receiver, endpoint) = provider();
        let target = "https://gp.example/B82617/STU3/1/gpconnect/Patient/2";
        let route = |caller: Option<&'static str>, target: &'static str| Route {
            from: "200000000359",
            to: "918999198738",
            interaction: READ,
            target,
            caller_asid: caller,
        };
        let check = |caller: Option<&'static str>,
                     sender: Option<&AccreditedSystem>,
                     target: &'static str| {
            authorise(
                route(caller, target),
                Parties {
                    sender,
                    receiver: Some(&receiver),
                    endpoint: Some(&endpoint),
                },
            )
        };
        assert!(check(Some("200000000359"), Some(&consumer()), target).is_ok());
        let token = |r: Result<(), Refusal>| r.expect_err("refused").token;
        assert!(
            token(check(Some("200000000360"), Some(&consumer()), target))
                .starts_with("ASID_CHECK_FAILED_MESSAGESENDER_")
        );
        assert!(
            token(check(Some("200000000359"), None, target))
                .starts_with("ASID_CHECK_FAILED_MESSAGESENDER_")
        );
        let elsewhere = check(
            Some("200000000359"),
            Some(&consumer()),
            "https://gp.example/B82617/STU3/1/gpconnectX/Patient/2",
        );
        assert!(token(elsewhere).contains("_VARIES_FROM_TARGETURL_"));
        let sender = consumer();
        let unregistered = authorise(
            route(Some("200000000359"), target),
            Parties {
                sender: Some(&sender),
                receiver: None,
                endpoint: Some(&endpoint),
            },
        );
        assert!(
            token(unregistered).starts_with("PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_")
        );
    }
}
