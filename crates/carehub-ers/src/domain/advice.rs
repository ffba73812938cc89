//! Advice and guidance: a referrer asks a provider's advice service about a patient (A044), the
//! provider answers, asks for more, or turns the request into a referral (A026, A027); the
//! request's summary (A024), its conversation (A025) and the provider's worklist (A023).
//!
//! **Invariant:** the request's category changes only through [`AdviceRequest::respond`] and
//! [`AdviceRequest::convert`], which refuse it outside `PROVIDER_RESPONSE_REQUIRED`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::access::Caller;
use super::codes::{self, BusinessFunction};
use super::error::ErsError;
use super::params::Params;
use super::referral::{NHS_NUMBER_SYSTEM, nhs_number, read_shortlist};
use super::service::{SDS_USER_SYSTEM, SERVICE_SYSTEM, SearchCriteria, Service};

const SD: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/";
const CS: &str = "https://fhir.nhs.uk/STU3/CodeSystem/";
/// The longest message.
pub const MAX_TEXT: usize = 8000;

/// Where an advice request is (`eRS-AdviceAndGuidanceStatus-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// The provider is to answer.
    ProviderResponseRequired,
    /// The provider asked the referrer for more.
    ReferrerToSubmitFurtherInformation,
    /// The provider answered; the referrer is to read it.
    ReferrerToReviewResponse,
    /// Turned into a referral (A027).
    AdviceConverted,
}

impl Category {
    fn code(self) -> &'static str {
        match self {
            Category::ProviderResponseRequired => "PROVIDER_RESPONSE_REQUIRED",
            Category::ReferrerToSubmitFurtherInformation => {
                "REFERRER_TO_SUBMIT_FURTHER_INFORMATION"
            }
            Category::ReferrerToReviewResponse => "REFERRER_TO_REVIEW_RESPONSE",
            Category::AdviceConverted => "ADVICE_CONVERTED",
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SentBy {
    /// The referrer.
    Requester,
    /// The provider.
    Responder,
}

/// A person acting in a business function at an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// SDS user id.
    pub user: String,
    /// ODS code.
    pub organisation: String,
    /// Business function code.
    pub function: String,
}

impl Actor {
    fn of(caller: &Caller) -> Actor {
        Actor {
            // An SPCA writes for the SPC they act for.
            user: caller
                .on_behalf_of
                .clone()
                .or_else(|| caller.user.clone())
                .unwrap_or_default(),
            organisation: caller.organisation.clone(),
            function: match caller.function {
                BusinessFunction::ServiceProviderClinicianAdmin => {
                    "SERVICE_PROVIDER_CLINICIAN".to_owned()
                }
                other => other.code().to_owned(),
            },
        }
    }

    /// `{user}.{org}.{FUNCTION-WITH-DASHES}`, the PractitionerRole ids e-RS uses.
    fn role_id(&self) -> String {
        format!(
            "{}.{}.{}",
            self.user,
            self.organisation,
            self.function.replace('_', "-")
        )
    }

    fn practitioner_role(&self) -> Value {
        json!({
            "resourceType": "PractitionerRole",
            "id": self.role_id(),
            "meta": {"profile": ["https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-PractitionerRole-1"]},
            "practitioner": {"identifier": {"system": SDS_USER_SYSTEM, "value": self.user}},
            "organization": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": self.organisation}},
            "code": [{"coding": [{"system": format!("{CS}eRS-BusinessFunction-1"), "code": self.function}]}],
        })
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its id.
    pub id: String,
    /// Referrer or provider.
    pub sent_by: SentBy,
    /// Who wrote it.
    pub author: Actor,
    /// What they wrote.
    pub text: String,
    /// When.
    pub sent: String,
    /// The provider's outcome (`eRS-GuidanceResponseOutcome-1`), on a response.
    pub outcome: Option<String>,
    /// The provider's recommendation, with a return to the referrer.
    pub recommendation: Option<String>,
    /// Files sent with the message.
    #[serde(default)]
    pub attachments: Vec<super::attachment::Attached>,
}

/// An advice and guidance request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdviceRequest {
    /// Its UBRN.
    pub ubrn: String,
    /// `a.{uuid}`.
    pub request_id: String,
    /// NHS number.
    pub patient: String,
    /// Where it is.
    pub category: Category,
    /// The search criteria of the shortlist.
    pub criteria: SearchCriteria,
    /// The advice service asked.
    pub service: String,
    /// Its name.
    pub service_name: String,
    /// Its provider.
    pub provider: String,
    /// Whether the referrer lets the provider turn it into a referral.
    pub authorised_to_convert: bool,
    /// Who asked (the referring clinician).
    pub requester: Actor,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// The current priority.
    pub priority: String,
    /// When it was asked.
    pub created: String,
    /// When it last changed.
    pub updated: String,
}

/// A044's request, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdvice {
    /// NHS number.
    pub patient: String,
    /// Whether the provider may convert it.
    pub authorised_to_convert: bool,
    /// Criteria.
    pub criteria: SearchCriteria,
    /// The one service.
    pub service: String,
    /// The question.
    pub request: String,
    /// The referring clinician an RCA names.
    pub referring_clinician: Option<String>,
    /// Files to send with the question (A020 uploads).
    pub files: Vec<super::attachment::Letter>,
}

fn text_within(text: &str, what: &str) -> Result<(), ErsError> {
    if text.trim().is_empty() {
        return Err(ErsError::missing(what));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(ErsError::invalid(format!(
            "{what}: at most {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

fn priority(params: &Params<'_>, name: &str) -> Result<Option<String>, ErsError> {
    match params.coding(name)? {
        None => Ok(None),
        Some(coding) => {
            coding.check_system(name, codes::PRIORITY_SYSTEM)?;
            if codes::priority_display(coding.code).is_none() {
                return Err(ErsError::rule(
                    "UNSUPPORTED_PRIORITY",
                    format!("{name}: '{}' is not a priority", coding.code),
                ));
            }
            Ok(Some(coding.code.to_owned()))
        }
    }
}

impl NewAdvice {
    /// Reads an `eRS-CreateAdviceAndGuidance-Request-Parameters-1`.
    pub fn read(body: &Value) -> Result<NewAdvice, ErsError> {
        let params = Params::read(
            body,
            &[
                "patient",
                "providerConversionAuthorisation",
                "shortlist",
                "request",
                "referringClinician",
                "requestAttachmentFile",
            ],
        )?;
        let (system, value) = params
            .identifier("patient")?
            .ok_or_else(|| ErsError::missing("parameter patient"))?;
        let patient = nhs_number(system, value)?;
        let authorisation = params
            .coding("providerConversionAuthorisation")?
            .ok_or_else(|| ErsError::missing("parameter providerConversionAuthorisation"))?;
        authorisation.check_system(
            "providerConversionAuthorisation",
            &format!("{CS}eRS-ProviderConversionAuthorisation-1"),
        )?;
        let authorised_to_convert = match authorisation.code {
            "AUTHORISED_TO_CONVERT" => true,
            "NOT_AUTHORISED_TO_CONVERT" => false,
            other => {
                return Err(ErsError::invalid_code(
                    "providerConversionAuthorisation",
                    other,
                    &["AUTHORISED_TO_CONVERT", "NOT_AUTHORISED_TO_CONVERT"],
                ));
            }
        };
        let (location, list) = params
            .resource("shortlist")?
            .ok_or_else(|| ErsError::missing("parameter shortlist"))?;
        let (criteria, services) = read_shortlist(&location, list)?;
        let [service] = services.as_slice() else {
            return Err(ErsError::rule(
                "TOO_MANY_ITEMS",
                "an advice and guidance request goes to exactly one service",
            ));
        };
        let request = params
            .text("request", "String")?
            .ok_or_else(|| ErsError::missing("parameter request"))?;
        text_within(request, "request")?;
        let files = super::attachment::read_documents(
            params.resources("requestAttachmentFile")?,
            super::attachment::AttachmentType::AdviceRequest,
        )?;
        Ok(NewAdvice {
            patient,
            authorised_to_convert,
            criteria,
            service: service.clone(),
            request: request.to_owned(),
            referring_clinician: params
                .identifier("referringClinician")?
                .map(|(_, id)| id.to_owned()),
            files,
        })
    }
}

/// A026's response, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `RETURN_TO_REFERRER_WITH_ADVICE` or `REQUIRE_FURTHER_INFORMATION`.
    pub outcome: String,
    /// With a return to the referrer: the recommendation.
    pub recommendation: Option<String>,
    /// The guidance.
    pub guidance: String,
    /// The priority now.
    pub priority: String,
    /// Files to send with the guidance (A020 uploads for this request).
    pub files: Vec<super::attachment::Letter>,
}

impl Response {
    /// Reads an `eRS-SendCommunicationToRequester-Request-Parameters-1`.
    pub fn read(body: &Value) -> Result<Response, ErsError> {
        let params = Params::read(
            body,
            &[
                "guidanceOutcome",
                "guidanceIntendedRecommendation",
                "guidance",
                "updatedPriority",
                "guidanceAttachmentFile",
            ],
        )?;
        let outcome = params
            .coding("guidanceOutcome")?
            .ok_or_else(|| ErsError::missing("parameter guidanceOutcome"))?;
        outcome.check_system(
            "guidanceOutcome",
            &format!("{CS}eRS-GuidanceResponseOutcome-1"),
        )?;
        match outcome.code {
            "RETURN_TO_REFERRER_WITH_ADVICE" | "REQUIRE_FURTHER_INFORMATION" => {}
            "PROVIDER_CONVERTED" => {
                return Err(ErsError::rule(
                    "INAPPROPRIATE_VALUE",
                    "to convert the request into a referral, use $ers.createFromCommunicationRequestActionLater (A027)",
                ));
            }
            other => {
                return Err(ErsError::invalid_code(
                    "guidanceOutcome",
                    other,
                    &[
                        "RETURN_TO_REFERRER_WITH_ADVICE",
                        "REQUIRE_FURTHER_INFORMATION",
                        "PROVIDER_CONVERTED",
                    ],
                ));
            }
        }
        let recommendation = match params.coding("guidanceIntendedRecommendation")? {
            Some(coding) => {
                coding.check_system(
                    "guidanceIntendedRecommendation",
                    &format!("{CS}eRS-GuidanceIntendedRecommendation-1"),
                )?;
                let allowed = [
                    "ADVICE_ONLY_NO_REFERRAL_RECOMMENDED",
                    "ADVICE_FOLLOWED_BY_REFERRAL_IF_REQUIRED",
                    "REFERRAL_RECOMMENDED",
                    "OTHER",
                ];
                if !allowed.contains(&coding.code) {
                    return Err(ErsError::invalid_code(
                        "guidanceIntendedRecommendation",
                        coding.code,
                        &allowed,
                    ));
                }
                Some(coding.code.to_owned())
            }
            None => None,
        };
        match (outcome.code, &recommendation) {
            ("RETURN_TO_REFERRER_WITH_ADVICE", None) => {
                return Err(ErsError::rule(
                    "VALUE_IS_REQUIRED",
                    "guidanceIntendedRecommendation is required when returning to the referrer with advice",
                ));
            }
            ("REQUIRE_FURTHER_INFORMATION", Some(_)) => {
                return Err(ErsError::rule(
                    "FIELD_NOT_PERMITTED",
                    "guidanceIntendedRecommendation is only given when returning to the referrer with advice",
                ));
            }
            _ => {}
        }
        let guidance = params
            .text("guidance", "String")?
            .ok_or_else(|| ErsError::missing("parameter guidance"))?;
        text_within(guidance, "guidance")?;
        let priority = priority(&params, "updatedPriority")?
            .ok_or_else(|| ErsError::missing("parameter updatedPriority"))?;
        let files = super::attachment::read_documents(
            params.resources("guidanceAttachmentFile")?,
            super::attachment::AttachmentType::GuidanceResponse,
        )?;
        Ok(Response {
            outcome: outcome.code.to_owned(),
            recommendation,
            guidance: guidance.to_owned(),
            priority,
            files,
        })
    }
}

/// A027's request, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The request and the version the provider read.
    pub ubrn: String,
    /// Version.
    pub version: i64,
    /// Final guidance for the referrer.
    pub guidance: String,
    /// The referral's priority.
    pub priority: String,
    /// For the provider's booking team.
    pub review_comments: String,
    /// Files to go with the final guidance (`GUIDANCE_RESPONSE`).
    pub guidance_files: Vec<super::attachment::Letter>,
    /// Files for the new referral (`PROVIDER`).
    pub review_files: Vec<super::attachment::Letter>,
}

impl Conversion {
    /// Reads an `eRS-CreateFromCommunicationRequestActionLater-Request-Parameters-1`.
    pub fn read(body: &Value) -> Result<Conversion, ErsError> {
        let params = Params::read(
            body,
            &[
                "createFrom",
                "guidance",
                "newReferralPriority",
                "reviewComments",
                "guidanceAttachmentFile",
                "reviewAttachmentFile",
            ],
        )?;
        let reference = params
            .value("createFrom", "Reference")?
            .and_then(|r| r.get("reference"))
            .and_then(Value::as_str)
            .ok_or_else(|| ErsError::missing("parameter createFrom (valueReference.reference)"))?;
        let (ubrn, version) = reference
            .strip_prefix("CommunicationRequest/")
            .and_then(|rest| rest.split_once("/_history/"))
            .and_then(|(ubrn, version)| Some((ubrn.to_owned(), version.parse::<i64>().ok().filter(|&v| v >= 1)?)))
            .ok_or_else(|| ErsError::invalid(format!("createFrom '{reference}' must be CommunicationRequest/{{ubrn}}/_history/{{version}}")))?;
        let guidance = params
            .text("guidance", "String")?
            .ok_or_else(|| ErsError::missing("parameter guidance"))?;
        text_within(guidance, "guidance")?;
        let review_comments = params
            .text("reviewComments", "String")?
            .ok_or_else(|| ErsError::missing("parameter reviewComments"))?;
        text_within(review_comments, "reviewComments")?;
        let priority = priority(&params, "newReferralPriority")?
            .ok_or_else(|| ErsError::missing("parameter newReferralPriority"))?;
        let guidance_files = super::attachment::read_documents(
            params.resources("guidanceAttachmentFile")?,
            super::attachment::AttachmentType::GuidanceResponse,
        )?;
        let review_files = super::attachment::read_documents(
            params.resources("reviewAttachmentFile")?,
            super::attachment::AttachmentType::Provider,
        )?;
        Ok(Conversion {
            ubrn,
            version,
            guidance: guidance.to_owned(),
            priority,
            review_comments: review_comments.to_owned(),
            guidance_files,
            review_files,
        })
    }
}

impl AdviceRequest {
    /// A new request to `service`.
    pub fn create(
        ubrn: String,
        new: NewAdvice,
        service: &Service,
        caller: &Caller,
        clinician: String,
        attachments: Vec<super::attachment::Attached>,
        now: String,
    ) -> AdviceRequest {
        let requester = Actor {
            user: clinician,
            organisation: caller.organisation.clone(),
            function: "REFERRING_CLINICIAN".into(),
        };
        let first = Message {
            id: format!("{ubrn}-1"),
            sent_by: SentBy::Requester,
            author: Actor::of(caller),
            text: new.request,
            sent: now.clone(),
            outcome: None,
            recommendation: None,
            attachments,
        };
        AdviceRequest {
            request_id: format!("a.{}", uuid::Uuid::new_v4()),
            patient: new.patient,
            category: Category::ProviderResponseRequired,
            priority: new.criteria.priority.clone(),
            criteria: new.criteria,
            service: service.id.clone(),
            service_name: service.name.clone(),
            provider: service.provider.clone(),
            authorised_to_convert: new.authorised_to_convert,
            requester,
            messages: vec![first],
            created: now.clone(),
            updated: now,
            ubrn,
        }
    }

    /// Whether `caller` is the requester's organisation or the provider's.
    pub fn check_relationship(&self, caller: &Caller) -> Result<(), ErsError> {
        let at = |ods: &str| caller.acts_at(ods);
        let related = (caller.function.is_referrer() && at(&self.requester.organisation))
            || (caller.function.is_provider() && at(&self.provider));
        if related {
            Ok(())
        } else {
            Err(ErsError::rule(
                "NO_RELATIONSHIP",
                format!(
                    "{} at {} has no legitimate relationship with advice request {}",
                    caller.function.code(),
                    caller.organisation,
                    self.ubrn
                ),
            ))
        }
    }

    fn check_provider_turn(&self, caller: &Caller) -> Result<(), ErsError> {
        self.check_relationship(caller)?;
        if !caller.function.is_provider() {
            return Err(ErsError::forbidden(
                "only the provider answers an advice request",
            ));
        }
        if self.category != Category::ProviderResponseRequired {
            return Err(ErsError::rule(
                "INVALID_REQUEST_STATE",
                format!(
                    "advice request {} is {}, not awaiting the provider's response",
                    self.ubrn,
                    self.category.code()
                ),
            ));
        }
        Ok(())
    }

    /// The sandbox's stand-in for a request in another category: the official sandbox answers
    /// the provider's A026 and A027 by the request body alone, whatever the request's
    /// category, and the specification's examples send them to requests that its A024
    /// scenarios show answered or not authorised for conversion. This puts the request in the
    /// provider's turn (and, for a conversion, authorised), so that the answer's own rules
    /// (outcomes, priorities, files) still decide.
    pub fn stand_in_for_provider(&mut self, converting: bool) {
        self.category = Category::ProviderResponseRequired;
        self.authorised_to_convert |= converting;
    }

    /// A026: the provider answers or asks for more.
    pub fn respond(
        &mut self,
        caller: &Caller,
        response: Response,
        attachments: Vec<super::attachment::Attached>,
        now: String,
    ) -> Result<(), ErsError> {
        self.check_provider_turn(caller)?;
        self.category = match response.outcome.as_str() {
            "RETURN_TO_REFERRER_WITH_ADVICE" => Category::ReferrerToReviewResponse,
            _ => Category::ReferrerToSubmitFurtherInformation,
        };
        self.priority = response.priority;
        self.messages.push(Message {
            id: format!("{}-{}", self.ubrn, self.messages.len() + 1),
            sent_by: SentBy::Responder,
            author: Actor::of(caller),
            text: response.guidance,
            sent: now.clone(),
            outcome: Some(response.outcome),
            recommendation: response.recommendation,
            attachments,
        });
        self.updated = now;
        Ok(())
    }

    /// A027: the provider turns it into a referral, with final guidance.
    pub fn convert(
        &mut self,
        caller: &Caller,
        conversion: &Conversion,
        attachments: Vec<super::attachment::Attached>,
        now: String,
    ) -> Result<(), ErsError> {
        self.check_provider_turn(caller)?;
        if !self.authorised_to_convert {
            return Err(ErsError::rule(
                "INAPPROPRIATE_VALUE",
                format!(
                    "the referrer did not authorise the provider to convert advice request {}",
                    self.ubrn
                ),
            ));
        }
        self.category = Category::AdviceConverted;
        self.priority = conversion.priority.clone();
        self.messages.push(Message {
            id: format!("{}-{}", self.ubrn, self.messages.len() + 1),
            sent_by: SentBy::Responder,
            author: Actor::of(caller),
            text: conversion.guidance.clone(),
            sent: now.clone(),
            outcome: Some("PROVIDER_CONVERTED".into()),
            recommendation: None,
            attachments,
        });
        self.updated = now;
        Ok(())
    }

    /// The `eRS-CommunicationRequest-1` view at `version`.
    pub fn to_fhir(&self, version: i64, stu3_base: &str) -> Value {
        let (authorisation, authorisation_display) = if self.authorised_to_convert {
            (
                "AUTHORISED_TO_CONVERT",
                "Referrer has allowed the Service Provider to convert the Advice and Guidance to a Referral",
            )
        } else {
            (
                "NOT_AUTHORISED_TO_CONVERT",
                "Referrer has not allowed the Service Provider to convert the Advice and Guidance to a Referral",
            )
        };
        let mut extension = vec![
            json!({"url": format!("{SD}Extension-eRS-ReferralPriority-1"), "valueCodeableConcept": {"coding": [{
                "system": codes::PRIORITY_SYSTEM, "code": self.priority, "display": codes::priority_display(&self.priority).unwrap_or_default()}]}}),
            json!({"url": format!("{SD}Extension-eRS-ProviderConversionAuthorisation-1"), "valueCoding": {
                "system": format!("{CS}eRS-ProviderConversionAuthorisation-1"), "code": authorisation, "display": authorisation_display}}),
            json!({"url": format!("{SD}Extension-eRS-ReferralShortlist-1"), "valueReference": {"reference": "#shortlist"}}),
        ];
        if let Some(specialty) = &self.criteria.specialty {
            extension.push(
                json!({"url": format!("{SD}Extension-eRS-Specialty-1"), "valueCoding": {
                "system": format!("{stu3_base}/CodeSystem/SPECIALTY"), "code": specialty,
                "display": codes::specialty_display(specialty).unwrap_or_default()}}),
            );
        }
        let role = format!("#{}", self.requester.role_id());
        let shortlist = json!({
            "resourceType": "List",
            "id": "shortlist",
            "meta": {"profile": [format!("{SD}eRS-Shortlist-List-1")]},
            "extension": [{"url": format!("{SD}Extension-eRS-Shortlist-SearchCriteria-1"), "valueReference": {"reference": "#serviceSearchCriteria"}}],
            "status": "current",
            "mode": "snapshot",
            "entry": [{"item": {"identifier": {"system": SERVICE_SYSTEM, "value": self.service}, "display": self.service_name}}],
        });
        let mut contained = vec![
            self.criteria.to_fhir("serviceSearchCriteria", stu3_base),
            shortlist,
            self.requester.practitioner_role(),
        ];
        contained.extend(self.documents(self.messages.iter(), stu3_base));
        let mut request = json!({
            "resourceType": "CommunicationRequest",
            "id": self.ubrn,
            "meta": {"versionId": version.to_string(), "profile": [format!("{SD}eRS-CommunicationRequest-1")]},
            "extension": extension,
            "contained": contained,
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ers-request-id", "value": self.request_id}],
            "status": if self.category == Category::AdviceConverted { "completed" } else { "active" },
            "category": [{"coding": [{"system": format!("{CS}eRS-AdviceAndGuidanceStatus-1"), "code": self.category.code()}]}],
            "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": self.patient}},
            "recipient": [{"extension": [{"url": format!("{SD}Extension-HealthcareService-Reference-1"),
                "valueReference": {"identifier": {"system": SERVICE_SYSTEM, "value": self.service}}}]}],
            "sender": {"extension": [{"url": format!("{SD}Extension-PractitionerRole-Reference-1"), "valueReference": {"reference": role}}]},
            "requester": {"agent": {"extension": [{"url": format!("{SD}Extension-PractitionerRole-Reference-1"), "valueReference": {"reference": role}}]}},
            "authoredOn": self.created,
        });
        let payload = Self::payload(self.messages.iter());
        if !payload.is_empty() {
            request["payload"] = Value::Array(payload);
        }
        request
    }

    /// The `eRS-DocumentReference-1`s of the files of `messages`, typed by who sent them.
    fn documents<'m>(
        &self,
        messages: impl Iterator<Item = &'m Message>,
        stu3_base: &str,
    ) -> Vec<Value> {
        messages
            .flat_map(|message| {
                let kind = match message.sent_by {
                    SentBy::Requester => super::attachment::AttachmentType::AdviceRequest,
                    SentBy::Responder => super::attachment::AttachmentType::GuidanceResponse,
                };
                message
                    .attachments
                    .iter()
                    .map(move |a| a.file.document_reference(a, kind, stu3_base))
            })
            .collect()
    }

    /// `payload` entries naming the contained DocumentReferences of `messages`' files.
    fn payload<'m>(messages: impl Iterator<Item = &'m Message>) -> Vec<Value> {
        messages
            .flat_map(|m| m.attachments.iter())
            .map(|a| json!({"contentReference": {"reference": format!("#DocumentReference-{}", a.file.id)}}))
            .collect()
    }

    /// A message as an `eRS-Communication-1`, `based_on` version; `contained` puts the author's
    /// PractitionerRole inside it (A044, A026) rather than beside it (A025).
    pub fn communication(
        &self,
        message: &Message,
        based_on: i64,
        contained: bool,
        stu3_base: &str,
    ) -> Value {
        let role = if contained {
            format!("#{}", message.author.role_id())
        } else {
            format!("PractitionerRole/{}", message.author.role_id())
        };
        let recipient = match message.sent_by {
            SentBy::Requester => {
                json!([{"extension": [{"url": format!("{SD}Extension-HealthcareService-Reference-1"),
                "valueReference": {"identifier": {"system": SERVICE_SYSTEM, "value": self.service}}}]}])
            }
            SentBy::Responder => {
                json!([{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": self.requester.organisation}}])
            }
        };
        let mut communication = json!({
            "resourceType": "Communication",
            "id": message.id,
            "meta": {"versionId": "0", "profile": [format!("{SD}eRS-Communication-1")]},
            "extension": [{"url": format!("{SD}Extension-Communication-Requester-1"),
                "valueReference": {"reference": if contained { format!("#{}", self.requester.role_id()) } else { format!("PractitionerRole/{}", self.requester.role_id()) }}}],
            "basedOn": [{"reference": format!("CommunicationRequest/{}/_history/{based_on}", self.ubrn)}],
            "status": "completed",
            "category": [{"coding": [{"system": format!("{CS}eRS-CommunicationSentBy-1"),
                "code": match message.sent_by { SentBy::Requester => "REQUESTER", SentBy::Responder => "RESPONDER" }}]}],
            "recipient": recipient,
            "sent": message.sent,
            "sender": {"extension": [{"url": format!("{SD}Extension-PractitionerRole-Reference-1"), "valueReference": {"reference": role}}]},
            "note": [{"text": message.text}],
        });
        let mut inside = Vec::new();
        if contained {
            inside.push(message.author.practitioner_role());
            if message.author != self.requester {
                inside.push(self.requester.practitioner_role());
            }
        }
        // The message's files travel inside it, whichever way it is shown.
        inside.extend(self.documents(std::iter::once(message), stu3_base));
        if !inside.is_empty() {
            communication["contained"] = Value::Array(inside);
        }
        let payload = Self::payload(std::iter::once(message));
        if !payload.is_empty() {
            communication["payload"] = Value::Array(payload);
        }
        if let Some(outcome) = &message.outcome {
            communication["reasonCode"] = json!([{"coding": [{"system": format!("{CS}eRS-GuidanceResponseOutcome-1"), "code": outcome}]}]);
        }
        communication
    }

    /// The PractitionerRoles the conversation's messages name (for A025's `_include`).
    pub fn roles(&self) -> Vec<Value> {
        let mut seen: Vec<String> = Vec::new();
        let mut roles = Vec::new();
        for actor in std::iter::once(&self.requester).chain(self.messages.iter().map(|m| &m.author))
        {
            let id = actor.role_id();
            if !seen.contains(&id) {
                seen.push(id);
                roles.push(actor.practitioner_role());
            }
        }
        roles
    }

    /// The entry of the provider's A&G worklist.
    pub fn worklist_entry(&self, version: i64, stu3_base: &str) -> Value {
        let mut parts = vec![
            json!({"url": "priority", "valueCodeableConcept": {"coding": [{"system": codes::PRIORITY_SYSTEM, "code": self.priority}]}}),
        ];
        if let Some(specialty) = &self.criteria.specialty {
            parts.push(json!({"url": "specialty", "valueCodeableConcept": {"coding": [{"system": format!("{stu3_base}/CodeSystem/SPECIALTY"), "code": specialty}]}}));
        }
        parts.extend([
            json!({"url": "patient", "valueReference": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": self.patient}}}),
            json!({"url": "category", "valueCodeableConcept": {"coding": [{"system": format!("{CS}eRS-AdviceAndGuidanceStatus-1"), "code": self.category.code()}]}}),
            json!({"url": "adviceFirstRequested", "valueDateTime": self.created}),
            json!({"url": "adviceLastUpdated", "valueDateTime": self.updated}),
            json!({"url": "referrer", "valueReference": {"identifier": {"system": SDS_USER_SYSTEM, "value": self.requester.user}}}),
            json!({"url": "service", "valueReference": {"identifier": {"system": SERVICE_SYSTEM, "value": self.service}, "display": self.service_name}}),
        ]);
        if let Some(clinic) = &self.criteria.clinic_type {
            parts.push(json!({"url": "clinicType", "valueCodeableConcept": {"coding": [{"system": format!("{stu3_base}/CodeSystem/CLINIC-TYPE"), "code": clinic}]}}));
        }
        parts.push(json!({"url": "communicationRequestVersion", "valueInteger": version}));
        json!({
            "extension": [{"url": format!("{SD}Extension-eRS-AdviceAndGuidanceRequests-WorkListItem-1"), "extension": parts}],
            "item": {"reference": format!("CommunicationRequest/{}", self.ubrn)},
        })
    }
}

/// The referral A027 makes of a converted request: the same UBRN, at the advice service's
/// provider, reviewed and waiting for the provider to book it.
pub fn referral_from(
    advice: &AdviceRequest,
    conversion: &Conversion,
    caller: &Caller,
    provider_files: Vec<super::attachment::Attached>,
) -> super::referral::Referral {
    use super::referral::{Referral, Shortlisted, State, StateReason};
    let mut criteria = advice.criteria.clone();
    criteria.priority = conversion.priority.clone();
    Referral {
        ubrn: advice.ubrn.clone(),
        request_id: format!("r.{}", uuid::Uuid::new_v4()),
        patient: advice.patient.clone(),
        state: State::TriagedProviderToAction,
        reason: Some(StateReason {
            kind: super::appointment::REVIEW_OUTCOME_SYSTEM.into(),
            code: "PROVIDER_CONVERTED_ADVICE_AND_GUIDANCE_ADMIN_TO_REFER".into(),
            display: String::new(),
            comment: Some(conversion.review_comments.clone()),
        }),
        criteria,
        shortlist: vec![Shortlisted {
            service: advice.service.clone(),
            name: advice.service_name.clone(),
            provider: advice.provider.clone(),
        }],
        selected: Some(advice.service.clone()),
        selected_provider: Some(advice.provider.clone()),
        letter_intention: "NOT_INTENDING_TO_ADD".into(),
        reminder_days: 0,
        pathway_start: None,
        referrer_organisation: advice.requester.organisation.clone(),
        created_by: caller.user.clone().unwrap_or_default(),
        referring_clinician: advice.requester.user.clone(),
        commissioning_organisation: advice.requester.organisation.clone(),
        appointment: None,
        reviewed: true,
        letters: Vec::new(),
        provider_files,
        access_code: None,
        created: advice.updated.clone(),
        updated: advice.updated.clone(),
    }
}
