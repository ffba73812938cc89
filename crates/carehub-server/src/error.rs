//! Errors of the FHIR API and the one table that maps them to HTTP.
//!
//! Handlers fail with an [`ApiError`]: a [`Category`] plus the issues that explain it. The
//! category alone decides the HTTP status ([`Category::status`]); the issues become the
//! OperationOutcome body, rendered in the format the client negotiated. A 500 never shows its
//! cause to the client: the cause is logged, and the body says only that the server failed.

use axum::http::StatusCode;
use carehub_fhir::{Issue, IssueType};
use carehub_store::StoreError;

/// What kind of failure, which decides the status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// The request is malformed or invalid (400).
    Invalid,
    /// No credentials, or credentials that are not valid (401).
    Unauthorized,
    /// Valid credentials that do not allow this (403).
    Forbidden,
    /// The resource or endpoint does not exist (404).
    NotFound,
    /// The resource was deleted (410).
    Gone,
    /// The method is not allowed on this endpoint (405).
    MethodNotAllowed,
    /// No acceptable response format (406).
    NotAcceptable,
    /// A version conflict without a precondition (409).
    Conflict,
    /// A precondition (`If-Match`, conditional create or update) failed (412).
    PreconditionFailed,
    /// Another request is changing the same resource at this moment: read it again and retry
    /// (423, as e-RS answers simultaneous updates).
    Locked,
    /// The body is larger than allowed (413).
    TooLarge,
    /// The body's media type is not supported (415).
    UnsupportedMediaType,
    /// Well-formed content that breaks a rule (422).
    Unprocessable,
    /// A rate limit or quota was exceeded (429).
    TooManyRequests,
    /// The server cannot serve now; retry later (503).
    Unavailable,
    /// An unexpected fault (500).
    Fault,
    /// The endpoint or operation exists in the specification but is not served (501).
    NotImplemented,
    /// A server this one forwards to could not be reached, or answered nonsense (502).
    BadGateway,
    /// A server this one forwards to did not answer in time (504).
    GatewayTimeout,
}

impl Category {
    /// The HTTP status of the category: the only place that decides it.
    pub fn status(self) -> StatusCode {
        match self {
            Category::Invalid => StatusCode::BAD_REQUEST,
            Category::Unauthorized => StatusCode::UNAUTHORIZED,
            Category::Forbidden => StatusCode::FORBIDDEN,
            Category::NotFound => StatusCode::NOT_FOUND,
            Category::Gone => StatusCode::GONE,
            Category::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Category::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Category::Conflict => StatusCode::CONFLICT,
            Category::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Category::Locked => StatusCode::LOCKED,
            Category::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Category::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Category::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Category::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Category::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Category::Fault => StatusCode::INTERNAL_SERVER_ERROR,
            Category::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Category::BadGateway => StatusCode::BAD_GATEWAY,
            Category::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

/// A failed request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{category:?}: {}", issues.first().map(|i| i.diagnostics.as_str()).unwrap_or(""))]
pub struct ApiError {
    /// Decides the status.
    pub category: Category,
    /// Explain the failure.
    pub issues: Vec<Issue>,
}

impl ApiError {
    /// An error with one issue.
    pub fn new(category: Category, code: IssueType, diagnostics: impl Into<String>) -> ApiError {
        ApiError {
            category,
            issues: vec![Issue::error(code, diagnostics)],
        }
    }

    /// An error with several issues (validation).
    pub fn with_issues(category: Category, issues: Vec<Issue>) -> ApiError {
        ApiError { category, issues }
    }

    /// Names the element, parameter or header at fault on the first issue.
    pub fn at(mut self, location: impl Into<String>) -> ApiError {
        if let Some(first) = self.issues.first_mut() {
            first.expression.push(location.into());
        }
        self
    }

    /// 400 with an `invalid` issue.
    pub fn invalid(diagnostics: impl Into<String>) -> ApiError {
        ApiError::new(Category::Invalid, IssueType::Invalid, diagnostics)
    }

    /// 404 for a resource.
    pub fn not_found(resource_type: &str, id: &str) -> ApiError {
        ApiError::new(
            Category::NotFound,
            IssueType::NotFound,
            format!("Resource {resource_type}/{id} is not known"),
        )
    }

    /// An unexpected fault: logged in full, reported without detail.
    pub fn fault(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "request failed");
        ApiError::new(
            Category::Fault,
            IssueType::Exception,
            "The server failed to process the request; the failure has been logged",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound { resource_type, id } => ApiError::not_found(&resource_type, &id),
            StoreError::Gone { resource_type, id, version } => ApiError::new(
                Category::Gone,
                IssueType::Deleted,
                format!("Resource {resource_type}/{id} was deleted (version {version})"),
            ),
            StoreError::VersionConflict {
                resource_type,
                id,
                expected,
                current,
            } => ApiError::new(
                Category::PreconditionFailed,
                IssueType::Conflict,
                format!(
                    "Version conflict on {resource_type}/{id}: If-Match asked for version {expected}, \
                     the current version is {current}"
                ),
            )
            .at("If-Match"),
            StoreError::AlreadyExists { resource_type, id } => ApiError::new(
                Category::Conflict,
                IssueType::Duplicate,
                format!("Resource {resource_type}/{id} already exists"),
            ),
            StoreError::Contended => ApiError::new(
                Category::Conflict,
                IssueType::Conflict,
                "Another request changed the same resources at the same moment; nothing was \
                 changed by this one. Send it again",
            ),
            StoreError::BadCursor(why) => ApiError::invalid(format!("The paging link is not valid: {why}")).at("_cursor"),
            StoreError::Closed | StoreError::Unavailable => ApiError::new(
                Category::Unavailable,
                IssueType::Transient,
                "The database is not available; nothing was changed. Try again shortly",
            ),
            StoreError::Database(cause) => ApiError::fault(cause),
        }
    }
}
