//! e-RS business errors: an e-RS error code (`eRS-APIErrorCode-1`) and the class of failure
//! that decides the HTTP status in the HTTP layer.

/// The class of a failure, as the e-RS spec's per-endpoint tables group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 400: the request cannot be read (a missing header, a malformed body).
    BadRequest,
    /// 401: no valid credentials.
    Unauthorised,
    /// 403: the caller may not do this (business function, organisation, access mode).
    Forbidden,
    /// 404: nothing with that id, or a version the API does not serve.
    NotFound,
    /// 409: the version in `If-Match` is not the current one.
    Conflict,
    /// 412: `If-Match` is missing or not a weak ETag.
    PreconditionFailed,
    /// 423: another request changed the record while this one was being worked out (e-RS
    /// locks a record for the length of a request that updates it).
    Locked,
    /// 422: well-formed, but breaks a business rule.
    Unprocessable,
    /// 429: a limit of the endpoint itself (not the platform's quota) was reached.
    TooManyRequests,
}

/// A rejected e-RS request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {diagnostics}")]
pub struct ErsError {
    /// Decides the status.
    pub class: Class,
    /// The e-RS error code (`MISSING_VALUE`, `NO_RELATIONSHIP`, ...).
    pub code: &'static str,
    /// What was wrong, for a person.
    pub diagnostics: String,
}

impl ErsError {
    /// An error of `class` with `code`.
    pub fn new(class: Class, code: &'static str, diagnostics: impl Into<String>) -> ErsError {
        ErsError {
            class,
            code,
            diagnostics: diagnostics.into(),
        }
    }

    /// 422 with `code`.
    pub fn rule(code: &'static str, diagnostics: impl Into<String>) -> ErsError {
        ErsError::new(Class::Unprocessable, code, diagnostics)
    }

    /// 422 `MISSING_VALUE` for a parameter.
    pub fn missing(what: &str) -> ErsError {
        ErsError::rule(
            "MISSING_VALUE",
            format!("'{what}' is mandatory and was not provided"),
        )
    }

    /// 422 `INVALID_VALUE`.
    pub fn invalid(diagnostics: impl Into<String>) -> ErsError {
        ErsError::rule("INVALID_VALUE", diagnostics)
    }

    /// 422 `INVALID_CODE`.
    pub fn invalid_code(what: &str, code: &str, allowed: &[&str]) -> ErsError {
        ErsError::rule(
            "INVALID_CODE",
            format!(
                "'{code}' is not a valid code for '{what}'; allowed: {}",
                allowed.join(", ")
            ),
        )
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(diagnostics: impl Into<String>) -> ErsError {
        ErsError::new(Class::Forbidden, "FORBIDDEN", diagnostics)
    }

    /// 404 `REFERENCE_NOT_FOUND`.
    pub fn not_found(diagnostics: impl Into<String>) -> ErsError {
        ErsError::new(Class::NotFound, "REFERENCE_NOT_FOUND", diagnostics)
    }

    /// The display text of the code, as `eRS-APIErrorCode-1` words it.
    pub fn display(&self) -> String {
        // SCREAMING_SNAKE to a sentence: NO_RELATIONSHIP -> "No relationship".
        let mut text = self.code.replace('_', " ").to_ascii_lowercase();
        if let Some(first) = text.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        text
    }

    /// The FHIR issue type that fits the code.
    pub fn issue_type(&self) -> &'static str {
        match (self.class, self.code) {
            (Class::Unauthorised, _) => "login",
            (Class::Forbidden, _) => "forbidden",
            (Class::NotFound, _) => "not-found",
            (Class::Conflict | Class::PreconditionFailed, _) => "conflict",
            (Class::Locked, _) => "lock-error",
            (Class::TooManyRequests, _) => "throttled",
            (_, "MISSING_VALUE" | "MISSING_HEADER") => "required",
            (
                _,
                "INVALID_VALUE" | "INVALID_CODE" | "UNEXPECTED_FIELD" | "INVALID_FHIR_STRUCTURE",
            ) => "value",
            (_, "DUPLICATE_SERVICE") => "duplicate",
            (_, "SANDBOX_ERROR") => "invalid",
            _ => "business-rule",
        }
    }
}
