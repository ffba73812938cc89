//! Issues and the OperationOutcome resource that carries them.
//!
//! Every problem carehub reports (a parse error, a failed validation rule, an unknown search
//! parameter, a version conflict) is an [`Issue`]; the server turns a list of them into an
//! OperationOutcome of the FHIR version of the endpoint. Issue codes are FHIR's `issue-type`
//! value set, so this module holds the one list of them.

use serde_json::{Map, Value, json};

/// How bad an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The request could not be processed at all.
    Fatal,
    /// The request was rejected.
    Error,
    /// Processed, but something deserves attention (e.g. an ignored search parameter).
    Warning,
    /// For information only.
    Information,
}

impl Severity {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// FHIR `issue-type` codes used by carehub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    /// Content invalid against the specification or a profile.
    Invalid,
    /// A structural issue: unknown element, wrong JSON shape.
    Structure,
    /// A required element is missing.
    Required,
    /// An element value is invalid.
    Value,
    /// A content validation rule failed.
    Invariant,
    /// An authentication or authorisation problem.
    Security,
    /// The user needs to log in.
    Login,
    /// The user or system was not able to be authenticated.
    Unknown,
    /// Not allowed for this user or client.
    Forbidden,
    /// Processing problems.
    Processing,
    /// The operation or content is not supported.
    NotSupported,
    /// An attempt to create a duplicate.
    Duplicate,
    /// More than one match where one was required.
    MultipleMatches,
    /// The resource or endpoint does not exist.
    NotFound,
    /// The resource was deleted.
    Deleted,
    /// Content too long.
    TooLong,
    /// A code is not valid.
    CodeInvalid,
    /// Too costly to process (a body over the limit, a search too broad).
    TooCostly,
    /// A business rule failed.
    BusinessRule,
    /// An edit conflict (version mismatch).
    Conflict,
    /// A transient problem; the same request may work later.
    Transient,
    /// A server this one depends on did not answer in time (a kind of transient problem).
    Timeout,
    /// An unexpected internal error.
    Exception,
    /// A rate limit was hit.
    Throttled,
    /// Information only.
    Informational,
}

impl IssueType {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::Security => "security",
            IssueType::Login => "login",
            IssueType::Unknown => "unknown",
            IssueType::Forbidden => "forbidden",
            IssueType::Processing => "processing",
            IssueType::NotSupported => "not-supported",
            IssueType::Duplicate => "duplicate",
            IssueType::MultipleMatches => "multiple-matches",
            IssueType::NotFound => "not-found",
            IssueType::Deleted => "deleted",
            IssueType::TooLong => "too-long",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::TooCostly => "too-costly",
            IssueType::BusinessRule => "business-rule",
            IssueType::Conflict => "conflict",
            IssueType::Transient => "transient",
            IssueType::Timeout => "timeout",
            IssueType::Exception => "exception",
            IssueType::Throttled => "throttled",
            IssueType::Informational => "informational",
        }
    }
}

/// A coded reason for an issue (`issue.details.coding`), such as an NHS Spine error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coding {
    /// The code system.
    pub system: String,
    /// The code.
    pub code: String,
    /// Its display text.
    pub display: String,
}

/// One problem found while processing a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// How bad it is.
    pub severity: Severity,
    /// The FHIR issue type.
    pub code: IssueType,
    /// An optional coded reason.
    pub details: Option<Coding>,
    /// A text for a person: what was wrong and what was expected.
    pub diagnostics: String,
    /// Where: FHIRPath locations of the elements, or the name of the parameter or header.
    pub expression: Vec<String>,
}

impl Issue {
    /// An error issue.
    pub fn error(code: IssueType, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Error,
            code,
            details: None,
            diagnostics: diagnostics.into(),
            expression: Vec::new(),
        }
    }

    /// A warning issue.
    pub fn warning(code: IssueType, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(code, diagnostics)
        }
    }

    /// An information issue.
    pub fn information(diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Information,
            ..Issue::error(IssueType::Informational, diagnostics)
        }
    }

    /// Names the element, parameter or header at fault.
    pub fn at(mut self, location: impl Into<String>) -> Issue {
        self.expression.push(location.into());
        self
    }

    /// Adds a coded reason.
    pub fn with_details(mut self, details: Coding) -> Issue {
        self.details = Some(details);
        self
    }

    /// Whether the issue stops the request.
    pub fn is_error(&self) -> bool {
        self.severity <= Severity::Error
    }

    /// This issue as an `OperationOutcome.issue` element.
    pub fn to_json(&self) -> Value {
        let mut issue = Map::new();
        issue.insert("severity".into(), self.severity.code().into());
        issue.insert("code".into(), self.code.code().into());
        if let Some(details) = &self.details {
            issue.insert(
                "details".into(),
                json!({"coding": [{
                    "system": details.system,
                    "code": details.code,
                    "display": details.display,
                }]}),
            );
        }
        if !self.diagnostics.is_empty() {
            issue.insert("diagnostics".into(), self.diagnostics.clone().into());
        }
        if !self.expression.is_empty() {
            issue.insert("expression".into(), self.expression.clone().into());
        }
        Value::Object(issue)
    }
}

/// An OperationOutcome resource holding the issues (the shape is the same in STU3 and R4).
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = if issues.is_empty() {
        vec![Issue::information("All OK").to_json()]
    } else {
        issues.iter().map(Issue::to_json).collect()
    };
    json!({"resourceType": "OperationOutcome", "issue": issues})
}
