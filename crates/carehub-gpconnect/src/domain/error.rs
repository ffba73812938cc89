//! GP Connect errors: a Spine code from `Spine-ErrorOrWarningCode-1` and the HTTP status the
//! spec's error table gives it. The HTTP layer turns them into `GPConnect-OperationOutcome-1`.

/// The status class of a failure, as GP Connect's error table groups the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 400.
    BadRequest,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 409.
    Conflict,
    /// 415: a body in a format the provider does not read.
    UnsupportedMediaType,
    /// 422.
    Unprocessable,
    /// 500.
    Fault,
    /// 501.
    NotImplemented,
}

/// The Spine error and warning codes GP Connect answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpineCode {
    BadRequest,
    InvalidIdentifierSystem,
    InvalidIdentifierValue,
    InvalidNhsNumber,
    InvalidPatientDemographics,
    InvalidResource,
    InvalidParameter,
    ReferenceNotFound,
    PatientNotFound,
    PractitionerNotFound,
    OrganisationNotFound,
    NoRecordFound,
    NoPatientConsent,
    AccessDenied,
    NoRelationship,
    DuplicateRejected,
    ConflictingValues,
    /// What the provider suite expects for a stale `If-Match` (the spec lists no code).
    FhirConstraintViolation,
    NotImplemented,
    InternalServerError,
}

impl SpineCode {
    /// The code as sent (`PATIENT_NOT_FOUND`).
    pub fn code(self) -> &'static str {
        match self {
            SpineCode::BadRequest => "BAD_REQUEST",
            SpineCode::InvalidIdentifierSystem => "INVALID_IDENTIFIER_SYSTEM",
            SpineCode::InvalidIdentifierValue => "INVALID_IDENTIFIER_VALUE",
            SpineCode::InvalidNhsNumber => "INVALID_NHS_NUMBER",
            SpineCode::InvalidPatientDemographics => "INVALID_PATIENT_DEMOGRAPHICS",
            SpineCode::InvalidResource => "INVALID_RESOURCE",
            SpineCode::InvalidParameter => "INVALID_PARAMETER",
            SpineCode::ReferenceNotFound => "REFERENCE_NOT_FOUND",
            SpineCode::PatientNotFound => "PATIENT_NOT_FOUND",
            SpineCode::PractitionerNotFound => "PRACTITIONER_NOT_FOUND",
            SpineCode::OrganisationNotFound => "ORGANISATION_NOT_FOUND",
            SpineCode::NoRecordFound => "NO_RECORD_FOUND",
            SpineCode::NoPatientConsent => "NO_PATIENT_CONSENT",
            SpineCode::AccessDenied => "ACCESS_DENIED",
            SpineCode::NoRelationship => "NO_RELATIONSHIP",
            SpineCode::DuplicateRejected => "DUPLICATE_REJECTED",
            SpineCode::ConflictingValues => "CONFLICTING_VALUES",
            SpineCode::FhirConstraintViolation => "FHIR_CONSTRAINT_VIOLATION",
            SpineCode::NotImplemented => "NOT_IMPLEMENTED",
            SpineCode::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The display text of the code in `Spine-ErrorOrWarningCode-1`.
    pub fn display(self) -> &'static str {
        match self {
            SpineCode::BadRequest => "Bad request",
            SpineCode::InvalidIdentifierSystem => "Invalid identifier system",
            SpineCode::InvalidIdentifierValue => "Invalid identifier value",
            SpineCode::InvalidNhsNumber => "Invalid NHS number",
            SpineCode::InvalidPatientDemographics => "Invalid patient demographics",
            SpineCode::InvalidResource => "Invalid validation of resource",
            SpineCode::InvalidParameter => "Invalid parameter",
            SpineCode::ReferenceNotFound => "Reference not found",
            SpineCode::PatientNotFound => "Patient not found",
            SpineCode::PractitionerNotFound => "Practitioner not found",
            SpineCode::OrganisationNotFound => "Organisation not found",
            SpineCode::NoRecordFound => "No record found",
            SpineCode::NoPatientConsent => "Patient has not provided consent to share data",
            SpineCode::AccessDenied => "Access denied",
            SpineCode::NoRelationship => "No legitimate relationship exists for this patient",
            SpineCode::DuplicateRejected => "Create would lead to creation of a duplicate resource",
            SpineCode::ConflictingValues => {
                "Conflicting values have been specified in different fields"
            }
            SpineCode::FhirConstraintViolation => "FHIR constraint violated",
            SpineCode::NotImplemented => "Not implemented",
            SpineCode::InternalServerError => "Unexpected internal server error",
        }
    }

    /// The FHIR `issue-type` the spec's error table pairs with the code.
    pub fn issue_type(self) -> &'static str {
        match self {
            SpineCode::InvalidIdentifierSystem
            | SpineCode::InvalidIdentifierValue
            | SpineCode::InvalidNhsNumber => "value",
            SpineCode::InvalidPatientDemographics => "business-rule",
            SpineCode::PatientNotFound
            | SpineCode::PractitionerNotFound
            | SpineCode::OrganisationNotFound
            | SpineCode::NoRecordFound => "not-found",
            SpineCode::NoPatientConsent | SpineCode::AccessDenied | SpineCode::NoRelationship => {
                "forbidden"
            }
            SpineCode::DuplicateRejected => "duplicate",
            SpineCode::FhirConstraintViolation => "conflict",
            SpineCode::InvalidResource
            | SpineCode::InvalidParameter
            | SpineCode::ReferenceNotFound
            | SpineCode::BadRequest
            | SpineCode::ConflictingValues => "invalid",
            SpineCode::NotImplemented => "not-supported",
            SpineCode::InternalServerError => "exception",
        }
    }

    /// The status the spec's error table gives the code.
    pub fn status(self) -> Status {
        match self {
            SpineCode::BadRequest
            | SpineCode::InvalidIdentifierSystem
            | SpineCode::InvalidIdentifierValue
            | SpineCode::InvalidNhsNumber
            | SpineCode::InvalidPatientDemographics
            | SpineCode::ConflictingValues => Status::BadRequest,
            SpineCode::NoPatientConsent | SpineCode::AccessDenied | SpineCode::NoRelationship => {
                Status::Forbidden
            }
            SpineCode::PatientNotFound
            | SpineCode::PractitionerNotFound
            | SpineCode::OrganisationNotFound
            | SpineCode::NoRecordFound => Status::NotFound,
            SpineCode::DuplicateRejected | SpineCode::FhirConstraintViolation => Status::Conflict,
            SpineCode::InvalidResource
            | SpineCode::InvalidParameter
            | SpineCode::ReferenceNotFound => Status::Unprocessable,
            SpineCode::NotImplemented => Status::NotImplemented,
            SpineCode::InternalServerError => Status::Fault,
        }
    }
}

/// A refused GP Connect request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {diagnostics}", code.code())]
pub struct GpcError {
    /// Decides the status.
    pub status: Status,
    /// The Spine code.
    pub code: SpineCode,
    /// What was wrong, for a person.
    pub diagnostics: String,
}

impl GpcError {
    /// `code` with the status the error table gives it.
    pub fn new(code: SpineCode, diagnostics: impl Into<String>) -> GpcError {
        GpcError {
            status: code.status(),
            code,
            diagnostics: diagnostics.into(),
        }
    }

    /// The same code with another status (415 for a body format, for example).
    pub fn with_status(mut self, status: Status) -> GpcError {
        self.status = status;
        self
    }

    /// 400 `BAD_REQUEST`.
    pub fn bad_request(diagnostics: impl Into<String>) -> GpcError {
        GpcError::new(SpineCode::BadRequest, diagnostics)
    }

    /// 422 `INVALID_RESOURCE`.
    pub fn invalid_resource(diagnostics: impl Into<String>) -> GpcError {
        GpcError::new(SpineCode::InvalidResource, diagnostics)
    }

    /// 422 `INVALID_PARAMETER`.
    pub fn invalid_parameter(diagnostics: impl Into<String>) -> GpcError {
        GpcError::new(SpineCode::InvalidParameter, diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_table_gives_each_code_its_status() {
        let cases = [
            (SpineCode::InvalidNhsNumber, Status::BadRequest, "value"),
            (
                SpineCode::InvalidPatientDemographics,
                Status::BadRequest,
                "business-rule",
            ),
            (SpineCode::PatientNotFound, Status::NotFound, "not-found"),
            (SpineCode::NoPatientConsent, Status::Forbidden, "forbidden"),
            (SpineCode::DuplicateRejected, Status::Conflict, "duplicate"),
            (
                SpineCode::InvalidParameter,
                Status::Unprocessable,
                "invalid",
            ),
            (
                SpineCode::NotImplemented,
                Status::NotImplemented,
                "not-supported",
            ),
        ];
        for (code, status, issue) in cases {
            assert_eq!(code.status(), status, "{}", code.code());
            assert_eq!(code.issue_type(), issue, "{}", code.code());
        }
    }
}
