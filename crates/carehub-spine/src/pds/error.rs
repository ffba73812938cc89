//! PDS errors: a code of `https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode`, its
//! display, the FHIR issue type and severity PDS pairs with it, and the HTTP status.

/// The PDS codes carehub answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdsCode {
    InvalidResourceId,
    ResourceNotFound,
    InvalidatedResource,
    InvalidSearchData,
    MissingValue,
    InvalidValue,
    AdditionalProperties,
    UnsupportedService,
    TooManyMatches,
    AccessDenied,
}

impl PdsCode {
    /// The code as sent.
    pub fn code(self) -> &'static str {
        match self {
            PdsCode::InvalidResourceId => "INVALID_RESOURCE_ID",
            PdsCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            PdsCode::InvalidatedResource => "INVALIDATED_RESOURCE",
            PdsCode::InvalidSearchData => "INVALID_SEARCH_DATA",
            PdsCode::MissingValue => "MISSING_VALUE",
            PdsCode::InvalidValue => "INVALID_VALUE",
            PdsCode::AdditionalProperties => "ADDITIONAL_PROPERTIES",
            PdsCode::UnsupportedService => "UNSUPPORTED_SERVICE",
            PdsCode::TooManyMatches => "TOO_MANY_MATCHES",
            PdsCode::AccessDenied => "ACCESS_DENIED",
        }
    }

    /// Its display in the code system.
    pub fn display(self) -> &'static str {
        match self {
            PdsCode::InvalidResourceId => "Resource Id is invalid",
            PdsCode::ResourceNotFound => "Resource not found",
            PdsCode::InvalidatedResource => {
                "Resource that has been marked as invalid was requested - invalid resources cannot be retrieved"
            }
            PdsCode::InvalidSearchData => "Search data is invalid",
            PdsCode::MissingValue => "Required value is missing",
            PdsCode::InvalidValue => "Provided value is invalid",
            PdsCode::AdditionalProperties => "Additional properties should not be included",
            PdsCode::UnsupportedService => "Unsupported Service",
            PdsCode::TooManyMatches => "Too Many Matches",
            PdsCode::AccessDenied => "Access Denied - Unauthorised",
        }
    }

    /// The FHIR issue type PDS pairs with the code.
    pub fn issue_type(self) -> &'static str {
        match self {
            PdsCode::InvalidResourceId | PdsCode::InvalidSearchData | PdsCode::InvalidValue => {
                "value"
            }
            PdsCode::ResourceNotFound => "not-found",
            PdsCode::InvalidatedResource | PdsCode::UnsupportedService => "processing",
            PdsCode::MissingValue => "required",
            PdsCode::AdditionalProperties => "invariant",
            PdsCode::TooManyMatches => "multiple-matches",
            PdsCode::AccessDenied => "forbidden",
        }
    }

    /// `information` for outcomes that are answers rather than failures.
    pub fn severity(self) -> &'static str {
        match self {
            PdsCode::ResourceNotFound | PdsCode::TooManyMatches => "information",
            _ => "error",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            PdsCode::ResourceNotFound | PdsCode::InvalidatedResource => 404,
            PdsCode::TooManyMatches => 200,
            PdsCode::AccessDenied => 403,
            _ => 400,
        }
    }
}

/// A PDS request refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", code.code(), diagnostics.as_deref().unwrap_or(""))]
pub struct PdsError {
    pub code: PdsCode,
    /// What was wrong, when PDS says (it does not for a missing record).
    pub diagnostics: Option<String>,
    /// 403 instead of the code's usual status (more results than an application may have).
    pub forbidden: bool,
}

impl PdsError {
    /// `code` with diagnostics.
    pub fn new(code: PdsCode, diagnostics: impl Into<String>) -> PdsError {
        PdsError {
            code,
            diagnostics: Some(diagnostics.into()),
            forbidden: false,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        if self.forbidden {
            403
        } else {
            self.code.status()
        }
    }

    /// `code` alone.
    pub fn bare(code: PdsCode) -> PdsError {
        PdsError {
            code,
            diagnostics: None,
            forbidden: false,
        }
    }
}
