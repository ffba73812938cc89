//! Who may call which e-RS endpoint, and in what capacity: the endpoint table of the spec
//! (business functions, application-restricted access, the header set) and the checks that turn
//! the platform's identity plus the e-RS headers into a [`Caller`].

use super::codes::BusinessFunction;
use super::error::{Class, ErsError};

use BusinessFunction::{
    ReferringAdmin as RA, ReferringClinician as RC, ReferringClinicianAdmin as RCA,
    ServiceProviderAdmin as SPA, ServiceProviderClinician as SPC,
    ServiceProviderClinicianAdmin as SPCA,
};

/// The organisation side an application acts for when the endpoint allows
/// application-restricted access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppSide {
    /// Not open to applications.
    None,
    /// As a provider organisation (`PROVIDER_AUTHORISED_APPLICATION`).
    Provider,
    /// As a referring organisation (`REFERRER_AUTHORISED_APPLICATION`).
    Referrer,
}

/// One endpoint's access rules.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// The spec's id (`A011`).
    pub id: &'static str,
    /// Business functions a user may call it as; empty means any signed-in user, without the
    /// e-RS headers (A030).
    pub functions: &'static [BusinessFunction],
    /// Whether applications may call it, and for which side.
    pub app: AppSide,
    /// Whether an SPCA must name the SPC it acts for (`NHSD-eRS-On-Behalf-Of-User-ID`).
    pub on_behalf_of: bool,
}

/// The endpoints, as the spec's table gives them.
pub mod endpoints {
    use super::*;

    /// Reference data.
    pub const A004: Endpoint = Endpoint {
        id: "A004",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// Read a referral.
    pub const A005: Endpoint = Endpoint {
        id: "A005",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// Service search.
    pub const A010: Endpoint = Endpoint {
        id: "A010",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Create a referral.
    pub const A011: Endpoint = Endpoint {
        id: "A011",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Available actions.
    pub const A029: Endpoint = Endpoint {
        id: "A029",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// The user's business functions.
    pub const A030: Endpoint = Endpoint {
        id: "A030",
        functions: &[],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Change the shortlist.
    pub const A031: Endpoint = Endpoint {
        id: "A031",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Read a HealthcareService (R4), its version (HEAD), or several.
    pub const A033: Endpoint = Endpoint {
        id: "A033",
        functions: &[RC, RCA],
        app: AppSide::Referrer,
        on_behalf_of: false,
    };
    /// Cancel a referral.
    pub const A036: Endpoint = Endpoint {
        id: "A036",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: false,
    };
    /// Worklists: referrer lists for RC, RCA and RA, provider lists for SPC, SPA and SPCA.
    pub const A008: Endpoint = Endpoint {
        id: "A008",
        functions: &[RC, RCA, RA, SPC, SPA, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// Accept a referral.
    pub const A013: Endpoint = Endpoint {
        id: "A013",
        functions: &[SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// Reject a referral.
    pub const A014: Endpoint = Endpoint {
        id: "A014",
        functions: &[SPC, SPCA],
        app: AppSide::None,
        on_behalf_of: true,
    };
    /// Slots of a service.
    pub const A015: Endpoint = Endpoint {
        id: "A015",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Book or defer an appointment, or send to triage.
    pub const A016: Endpoint = Endpoint {
        id: "A016",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Record a triage outcome.
    pub const A028: Endpoint = Endpoint {
        id: "A028",
        functions: &[SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// Cancel an appointment.
    pub const A034: Endpoint = Endpoint {
        id: "A034",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Read an appointment.
    pub const A038: Endpoint = Endpoint {
        id: "A038",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::None,
        on_behalf_of: true,
    };
    /// Download an attachment (STU3, deprecated).
    pub const A006: Endpoint = Endpoint {
        id: "A006",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// Maintain the referral letter.
    pub const A012: Endpoint = Endpoint {
        id: "A012",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Upload a file.
    pub const A020: Endpoint = Endpoint {
        id: "A020",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::None,
        on_behalf_of: true,
    };
    /// Download an attachment (R4, by redirect).
    pub const A042: Endpoint = Endpoint {
        id: "A042",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// The clinical information summary PDF.
    pub const A007: Endpoint = Endpoint {
        id: "A007",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// The patient's letter PDF.
    pub const A019: Endpoint = Endpoint {
        id: "A019",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Ask for advice and guidance.
    pub const A044: Endpoint = Endpoint {
        id: "A044",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// The provider's advice and guidance worklist.
    pub const A023: Endpoint = Endpoint {
        id: "A023",
        functions: &[SPC, SPA, SPCA],
        app: AppSide::None,
        on_behalf_of: true,
    };
    /// Read an advice request, its conversation, or its overview PDF (A024, A025, A043).
    pub const A024: Endpoint = Endpoint {
        id: "A024",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::Provider,
        on_behalf_of: true,
    };
    /// Answer an advice request.
    pub const A026: Endpoint = Endpoint {
        id: "A026",
        functions: &[SPC, SPCA],
        app: AppSide::None,
        on_behalf_of: true,
    };
    /// Convert an advice request into a referral.
    pub const A027: Endpoint = Endpoint {
        id: "A027",
        functions: &[SPC, SPCA],
        app: AppSide::None,
        on_behalf_of: true,
    };
    /// The ServiceRequests behind a UBRN (R4).
    pub const A041: Endpoint = Endpoint {
        id: "A041",
        functions: &[RC, RCA, SPC, SPCA],
        app: AppSide::None,
        on_behalf_of: true,
    };
    /// Create a referral and send it for triage (deprecated: A011 then A016).
    pub const A021: Endpoint = Endpoint {
        id: "A021",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// Cancel the appointment and action later.
    pub const A022: Endpoint = Endpoint {
        id: "A022",
        functions: &[SPC, SPCA],
        app: AppSide::None,
        on_behalf_of: true,
    };
    /// Change the shortlist and send for triage (deprecated: A031 then A016).
    pub const A032: Endpoint = Endpoint {
        id: "A032",
        functions: &[RC, RCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
    /// SPCs an SPCA may act for.
    pub const A040: Endpoint = Endpoint {
        id: "A040",
        functions: &[SPCA],
        app: AppSide::None,
        on_behalf_of: false,
    };
}

/// The header names.
pub const ODS_HEADER: &str = "NHSD-End-User-Organisation-ODS";
/// The business function header.
pub const FUNCTION_HEADER: &str = "NHSD-eRS-Business-Function";
/// The on-behalf-of header.
pub const OBO_HEADER: &str = "NHSD-eRS-On-Behalf-Of-User-ID";

/// A role the signed-in user holds: organisation and business functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRole {
    /// ODS code.
    pub organisation: String,
    /// Business function codes.
    pub functions: Vec<String>,
}

/// Who the platform says is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user.
    User {
        /// SDS user id.
        sds_user_id: String,
        /// The user's name.
        name: String,
        /// Every role on the user's card.
        roles: Vec<HeldRole>,
    },
    /// An application, acting for its organisation.
    Application {
        /// The application's ODS code.
        organisation: String,
    },
}

/// The e-RS headers as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextHeaders<'a> {
    /// `NHSD-End-User-Organisation-ODS`
    pub ods: Option<&'a str>,
    /// `NHSD-eRS-Business-Function`
    pub function: Option<&'a str>,
    /// `NHSD-eRS-On-Behalf-Of-User-ID`
    pub on_behalf_of: Option<&'a str>,
}

/// The caller an e-RS operation acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The capacity.
    pub function: BusinessFunction,
    /// The organisation (ODS code) acted at.
    pub organisation: String,
    /// The user's SDS id; `None` for an application.
    pub user: Option<String>,
    /// The user's name, for audit and display.
    pub name: String,
    /// The SPC an SPCA acts for.
    pub on_behalf_of: Option<String>,
}

/// The organisation of a sandbox caller: every organisation, as the official sandbox checks
/// no relationship.
pub const EVERY_ORGANISATION: &str = "*";

impl Caller {
    /// Whether the caller acts at `ods` (a sandbox caller acts everywhere).
    pub fn acts_at(&self, ods: &str) -> bool {
        self.organisation == EVERY_ORGANISATION || self.organisation.eq_ignore_ascii_case(ods)
    }
}

fn missing_header(name: &str) -> ErsError {
    ErsError::new(
        Class::BadRequest,
        "MISSING_HEADER",
        format!("Missing or Empty {name} header."),
    )
}

fn sent(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The sandbox's checks, as the official sandbox makes them (only when the header is sent):
/// the business function must be one the endpoint takes, and the on-behalf-of header must come
/// with an SPCA and only with one. A030 checks nothing; A040 answers an SPCA only, who must say
/// so, and takes no on-behalf-of header. Failures are `SANDBOX_ERROR` texts.
pub fn sandbox_caller(endpoint: &Endpoint, headers: ContextHeaders<'_>) -> Result<Caller, String> {
    let sent_function = sent(headers.function);
    let unchecked = endpoint.id == "A030";
    let function = match sent_function {
        Some(code) if unchecked => {
            BusinessFunction::parse(code).unwrap_or(BusinessFunction::ReferringClinician)
        }
        Some(code) => {
            let allowed: Vec<&str> = endpoint.functions.iter().map(|f| f.code()).collect();
            match BusinessFunction::parse(code) {
                Some(function)
                    if endpoint.functions.is_empty() || endpoint.functions.contains(&function) =>
                {
                    function
                }
                _ => {
                    return Err(format!(
                        "SANDBOX_ERROR: This endpoint cannot be accessed using the e-RS Business Function provided. Allowed values: {}",
                        allowed.join(", ")
                    ));
                }
            }
        }
        None if endpoint.id == "A040" => {
            return Err(format!(
                "SANDBOX_ERROR: This endpoint can only be accessed using the e-RS Business Function SERVICE_PROVIDER_CLINICIAN_ADMIN, sent in the {FUNCTION_HEADER} header"
            ));
        }
        None => endpoint
            .functions
            .first()
            .copied()
            .unwrap_or(BusinessFunction::ReferringClinician),
    };
    let on_behalf_of = sent(headers.on_behalf_of);
    // Without a business function header there is nothing to check the on-behalf-of header
    // against; A030 and A040 do not look at it.
    let checked = sent_function.is_some() && !matches!(endpoint.id, "A030" | "A040");
    match (function, on_behalf_of) {
        _ if !checked => {}
        (BusinessFunction::ServiceProviderClinicianAdmin, None) => {
            return Err(format!(
                "SANDBOX_ERROR: When using the SERVICE_PROVIDER_CLINICIAN_ADMIN business function an On-Behalf-Of User ID must be provided in the {OBO_HEADER} header"
            ));
        }
        (BusinessFunction::ServiceProviderClinicianAdmin, _) => {}
        (_, Some(_)) => {
            return Err(format!(
                "SANDBOX_ERROR: An On-Behalf-Of User ID must only be provided in the {OBO_HEADER} header if the business function is SERVICE_PROVIDER_CLINICIAN_ADMIN"
            ));
        }
        _ => {}
    }
    Ok(Caller {
        function,
        organisation: EVERY_ORGANISATION.to_owned(),
        user: Some(SANDBOX_USER.to_owned()),
        name: "Sandbox User".to_owned(),
        on_behalf_of: on_behalf_of.map(str::to_owned),
    })
}

/// The SDS user id the sandbox acts as.
pub const SANDBOX_USER: &str = "555000000000";

/// Checks the call against the endpoint's rules and says whom it acts for. `spc_at` tells
/// whether an SDS user id belongs to a Service Provider Clinician at an organisation (for the
/// on-behalf-of header).
pub fn establish(
    endpoint: &Endpoint,
    principal: &Principal,
    headers: ContextHeaders<'_>,
    spc_at: impl Fn(&str, &str) -> bool,
) -> Result<Caller, ErsError> {
    match principal {
        Principal::Application { organisation } => {
            let function = match endpoint.app {
                AppSide::None => {
                    return Err(ErsError::forbidden(format!(
                        "{} is not available to application-restricted access; a user signed in with a smartcard must call it",
                        endpoint.id
                    )));
                }
                AppSide::Provider => BusinessFunction::ProviderAuthorisedApplication,
                AppSide::Referrer => BusinessFunction::ReferrerAuthorisedApplication,
            };
            // The platform supplies the organisation and capacity of an application; headers
            // that say otherwise are refused rather than ignored.
            if let Some(ods) = sent(headers.ods)
                && !ods.eq_ignore_ascii_case(organisation)
            {
                return Err(ErsError::forbidden(format!(
                    "Unauthorised ODS code provided in {ODS_HEADER} header: the application acts for {organisation}"
                )));
            }
            if let Some(sent_function) = sent(headers.function)
                && sent_function != function.code()
            {
                return Err(ErsError::forbidden(format!(
                    "An application acts as {} for {}; the {FUNCTION_HEADER} header said {sent_function}",
                    function.code(),
                    endpoint.id
                )));
            }
            if sent(headers.on_behalf_of).is_some() {
                return Err(ErsError::forbidden(format!(
                    "{OBO_HEADER} must not be sent with application-restricted access"
                )));
            }
            Ok(Caller {
                function,
                organisation: organisation.clone(),
                user: None,
                name: function.display().to_owned(),
                on_behalf_of: None,
            })
        }
        Principal::User {
            sds_user_id,
            name,
            roles,
        } => {
            if endpoint.functions.is_empty() {
                // Any signed-in user, in no particular capacity (A030).
                return Ok(Caller {
                    function: BusinessFunction::ReferringClinician,
                    organisation: roles
                        .first()
                        .map(|r| r.organisation.clone())
                        .unwrap_or_default(),
                    user: Some(sds_user_id.clone()),
                    name: name.clone(),
                    on_behalf_of: None,
                });
            }
            let ods = sent(headers.ods).ok_or_else(|| missing_header(ODS_HEADER))?;
            let code = sent(headers.function).ok_or_else(|| missing_header(FUNCTION_HEADER))?;
            if code.ends_with("AUTHORISED_APPLICATION") {
                return Err(ErsError::forbidden(format!(
                    "{code} is for application-restricted access; a user acts in one of their own business functions"
                )));
            }
            let function = BusinessFunction::parse(code).ok_or_else(|| {
                ErsError::new(
                    Class::BadRequest,
                    "INVALID_VALUE",
                    format!(
                        "'{code}' in the {FUNCTION_HEADER} header is not an e-RS business function"
                    ),
                )
            })?;
            let at_org: Vec<&HeldRole> = roles
                .iter()
                .filter(|r| r.organisation.eq_ignore_ascii_case(ods))
                .collect();
            if at_org.is_empty() {
                return Err(ErsError::forbidden(format!(
                    "Unauthorised ODS code provided in {ODS_HEADER} header: the user holds no role at '{ods}'"
                )));
            }
            if !at_org.iter().any(|r| r.functions.iter().any(|f| f == code)) {
                return Err(ErsError::forbidden(format!(
                    "The user does not hold the business function {code} at {ods} (see A030 for the user's business functions)"
                )));
            }
            if !endpoint.functions.contains(&function) {
                let allowed: Vec<&str> = endpoint.functions.iter().map(|f| f.code()).collect();
                return Err(ErsError::forbidden(format!(
                    "{} cannot be called as {code}; allowed business functions: {}",
                    endpoint.id,
                    allowed.join(", ")
                )));
            }
            let on_behalf_of = sent(headers.on_behalf_of);
            let on_behalf_of = match (function, on_behalf_of) {
                (BusinessFunction::ServiceProviderClinicianAdmin, None)
                    if endpoint.on_behalf_of =>
                {
                    return Err(ErsError::forbidden(format!(
                        "A {code} must name the Service Provider Clinician they act for in the {OBO_HEADER} header (A040 lists them)"
                    )));
                }
                (BusinessFunction::ServiceProviderClinicianAdmin, Some(obo))
                    if endpoint.on_behalf_of =>
                {
                    if !spc_at(obo, ods) {
                        return Err(ErsError::forbidden(format!(
                            "'{obo}' in the {OBO_HEADER} header is not a Service Provider Clinician at {ods}"
                        )));
                    }
                    Some(obo.to_owned())
                }
                (_, Some(_)) => {
                    return Err(ErsError::forbidden(format!(
                        "An On-Behalf-Of User ID must only be provided by a SERVICE_PROVIDER_CLINICIAN_ADMIN on endpoints that take it; {} as {code} does not",
                        endpoint.id
                    )));
                }
                (_, None) => None,
            };
            Ok(Caller {
                function,
                organisation: ods.to_ascii_uppercase(),
                user: Some(sds_user_id.clone()),
                name: name.clone(),
                on_behalf_of,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[(&str, &[&str])]) -> Principal {
        Principal::User {
            sds_user_id: "555000000001".into(),
            name: "Test User".into(),
            roles: roles
                .iter()
                .map(|(org, functions)| HeldRole {
                    organisation: (*org).into(),
                    functions: functions.iter().map(|f| (*f).to_owned()).collect(),
                })
                .collect(),
        }
    }

    fn headers<'a>(
        ods: Option<&'a str>,
        function: Option<&'a str>,
        obo: Option<&'a str>,
    ) -> ContextHeaders<'a> {
        ContextHeaders {
            ods,
            function,
            on_behalf_of: obo,
        }
    }

    fn outcome(
        endpoint: &Endpoint,
        principal: &Principal,
        sent: ContextHeaders<'_>,
    ) -> Result<BusinessFunction, (Class, &'static str)> {
        establish(endpoint, principal, sent, |user, org| {
            user == "555000000003" && org == "R1A14"
        })
        .map(|c| c.function)
        .map_err(|e| (e.class, e.code))
    }

    #[test]
    fn users_act_in_a_function_they_hold_at_the_organisation_they_name() {
        let ada = user(&[
            ("B82617", &["REFERRING_CLINICIAN"]),
            ("R1A14", &["SERVICE_PROVIDER_CLINICIAN"]),
        ]);
        let rc = Some("REFERRING_CLINICIAN");
        assert_eq!(
            outcome(&endpoints::A011, &ada, headers(Some("B82617"), rc, None)),
            Ok(BusinessFunction::ReferringClinician)
        );
        assert_eq!(
            outcome(&endpoints::A011, &ada, headers(None, rc, None)),
            Err((Class::BadRequest, "MISSING_HEADER"))
        );
        assert_eq!(
            outcome(
                &endpoints::A011,
                &ada,
                headers(Some("B82617"), Some(" "), None)
            ),
            Err((Class::BadRequest, "MISSING_HEADER"))
        );
        assert_eq!(
            outcome(&endpoints::A011, &ada, headers(Some("R1A14"), rc, None)),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
        assert_eq!(
            outcome(
                &endpoints::A011,
                &ada,
                headers(Some("B82617"), Some("WIZARD"), None)
            ),
            Err((Class::BadRequest, "INVALID_VALUE"))
        );
        assert_eq!(
            outcome(
                &endpoints::A011,
                &ada,
                headers(Some("R1A14"), Some("SERVICE_PROVIDER_CLINICIAN"), None)
            ),
            Err((Class::Forbidden, "FORBIDDEN")),
            "held, but not allowed on A011"
        );
        assert_eq!(
            outcome(
                &endpoints::A005,
                &ada,
                headers(
                    Some("B82617"),
                    Some("PROVIDER_AUTHORISED_APPLICATION"),
                    None
                )
            ),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
    }

    #[test]
    fn only_an_spca_names_an_spc_and_must_on_endpoints_that_take_it() {
        let esme = user(&[("R1A14", &["SERVICE_PROVIDER_CLINICIAN_ADMIN"])]);
        let spca = Some("SERVICE_PROVIDER_CLINICIAN_ADMIN");
        let at = Some("R1A14");
        assert_eq!(
            outcome(&endpoints::A005, &esme, headers(at, spca, None)),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
        assert_eq!(
            outcome(
                &endpoints::A005,
                &esme,
                headers(at, spca, Some("555000000099"))
            ),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
        assert_eq!(
            outcome(
                &endpoints::A005,
                &esme,
                headers(at, spca, Some("555000000003"))
            ),
            Ok(BusinessFunction::ServiceProviderClinicianAdmin)
        );
        // A040 is how an SPCA finds whom to act for: no header needed, and none allowed.
        assert_eq!(
            outcome(&endpoints::A040, &esme, headers(at, spca, None)),
            Ok(BusinessFunction::ServiceProviderClinicianAdmin)
        );
        assert_eq!(
            outcome(
                &endpoints::A040,
                &esme,
                headers(at, spca, Some("555000000003"))
            ),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
        let cara = user(&[("R1A14", &["SERVICE_PROVIDER_CLINICIAN"])]);
        assert_eq!(
            outcome(
                &endpoints::A005,
                &cara,
                headers(at, Some("SERVICE_PROVIDER_CLINICIAN"), Some("555000000003"))
            ),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
    }

    #[test]
    fn applications_act_for_their_organisation_where_the_spec_lets_them() {
        let app = Principal::Application {
            organisation: "R1A14".into(),
        };
        assert_eq!(
            outcome(&endpoints::A005, &app, headers(None, None, None)),
            Ok(BusinessFunction::ProviderAuthorisedApplication)
        );
        assert_eq!(
            outcome(&endpoints::A033, &app, headers(None, None, None)),
            Ok(BusinessFunction::ReferrerAuthorisedApplication)
        );
        assert_eq!(
            outcome(&endpoints::A011, &app, headers(None, None, None)),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
        assert_eq!(
            outcome(
                &endpoints::A036,
                &app,
                headers(Some("r1a14"), Some("PROVIDER_AUTHORISED_APPLICATION"), None)
            ),
            Ok(BusinessFunction::ProviderAuthorisedApplication)
        );
        assert_eq!(
            outcome(&endpoints::A036, &app, headers(Some("B82617"), None, None)),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
        assert_eq!(
            outcome(
                &endpoints::A005,
                &app,
                headers(None, None, Some("555000000003"))
            ),
            Err((Class::Forbidden, "FORBIDDEN"))
        );
    }
}
