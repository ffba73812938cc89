//! Content negotiation and the wire formats.
//!
//! The response format is chosen by `_format`, else `Accept`, else the request's
//! `Content-Type`, else JSON, as the FHIR HTTP specification orders them. Bodies are read as
//! JSON or XML by their `Content-Type`; anything else is 415, an `Accept` that allows neither
//! FHIR format is 406.

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use carehub_fhir::{FhirVersion, IssueType};
use serde_json::Value;

use crate::error::{ApiError, Category};

/// A wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/fhir+json`.
    Json,
    /// `application/fhir+xml`.
    Xml,
}

impl Format {
    /// The `Content-Type` of responses in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/fhir+json; charset=utf-8",
            Format::Xml => "application/fhir+xml; charset=utf-8",
        }
    }

    /// Recognises a MIME type or `_format` short form, ignoring parameters such as charset.
    pub fn from_mime(mime: &str) -> Option<Format> {
        let essence = mime
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "json"
            | "application/fhir+json"
            | "application/json+fhir"
            | "application/json"
            | "text/json" => Some(Format::Json),
            "xml"
            | "application/fhir+xml"
            | "application/xml+fhir"
            | "application/xml"
            | "text/xml" => Some(Format::Xml),
            _ => None,
        }
    }
}

/// What the client asked for, read once per request.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated {
    /// The response format.
    pub format: Format,
    /// `_pretty=true`.
    pub pretty: bool,
}

/// Chooses the response format; 406 when `_format` or `Accept` allow nothing we serve.
pub fn negotiate(query: &[(String, String)], headers: &HeaderMap) -> Result<Negotiated, ApiError> {
    let pretty = query.iter().any(|(k, v)| k == "_pretty" && v == "true");
    if let Some((_, value)) = query.iter().find(|(k, _)| k == "_format") {
        let format = Format::from_mime(value).ok_or_else(|| {
            ApiError::new(
                Category::NotAcceptable,
                IssueType::NotSupported,
                format!("_format '{value}' is not supported; use json or xml"),
            )
            .at("_format")
        })?;
        return Ok(Negotiated { format, pretty });
    }
    if let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) {
        return match from_accept(accept) {
            Some(format) => Ok(Negotiated { format, pretty }),
            None => Err(ApiError::new(
                Category::NotAcceptable,
                IssueType::NotSupported,
                format!("Accept '{accept}' allows no format this server produces: application/fhir+json or application/fhir+xml"),
            )
            .at("Accept")),
        };
    }
    let format = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_mime)
        .unwrap_or(Format::Json);
    Ok(Negotiated { format, pretty })
}

/// The best format an `Accept` header allows, honouring q-values and wildcards.
fn from_accept(accept: &str) -> Option<Format> {
    let mut best: Option<(f32, Format)> = None;
    for (position, item) in accept.split(',').enumerate() {
        let mut parts = item.split(';');
        let mime = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if quality <= 0.0 {
            continue;
        }
        let format = match mime {
            "*/*" | "application/*" => Some(Format::Json),
            "text/*" => Some(Format::Xml),
            other => Format::from_mime(other),
        };
        // Earlier items win ties, so a tiny penalty by position keeps the client's order.
        let score = quality - position as f32 * 1e-4;
        if let Some(format) = format
            && best.is_none_or(|(s, _)| score > s)
        {
            best = Some((score, format));
        }
    }
    best.map(|(_, format)| format)
}

/// Reads a resource body by its `Content-Type`.
pub fn parse_body(
    version: FhirVersion,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Value, ApiError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let format = match content_type {
        Some(mime) => Format::from_mime(mime).ok_or_else(|| {
            ApiError::new(
                Category::UnsupportedMediaType,
                IssueType::NotSupported,
                format!("Content-Type '{mime}' is not supported; send application/fhir+json or application/fhir+xml"),
            )
            .at("Content-Type")
        })?,
        None => {
            return Err(ApiError::new(
                Category::UnsupportedMediaType,
                IssueType::NotSupported,
                "The request has a body but no Content-Type; send application/fhir+json or application/fhir+xml",
            )
            .at("Content-Type"));
        }
    };
    if body.is_empty() {
        return Err(ApiError::invalid(
            "The request body is empty; a resource was expected",
        ));
    }
    let value = match format {
        Format::Json => serde_json::from_slice(body).map_err(|err| {
            ApiError::new(
                Category::Invalid,
                IssueType::Structure,
                format!("The body is not valid JSON: {err}"),
            )
        })?,
        Format::Xml => {
            let text = std::str::from_utf8(body).map_err(|_| {
                ApiError::new(
                    Category::Invalid,
                    IssueType::Structure,
                    "The XML body is not UTF-8",
                )
            })?;
            xml_to_json(version, text)?
        }
    };
    let issues = carehub_fhir::json::validate_resource(version.model(), &value);
    if issues.iter().any(carehub_fhir::Issue::is_error) {
        return Err(ApiError::with_issues(Category::Invalid, issues));
    }
    Ok(value)
}

/// Renders a value in the negotiated format.
pub fn render(
    version: FhirVersion,
    negotiated: Negotiated,
    value: &Value,
) -> Result<Bytes, ApiError> {
    match negotiated.format {
        Format::Json => {
            let text = if negotiated.pretty {
                serde_json::to_vec_pretty(value)
            } else {
                serde_json::to_vec(value)
            };
            text.map(Bytes::from).map_err(ApiError::fault)
        }
        Format::Xml => json_to_xml(version, value).map(Bytes::from),
    }
}

fn xml_to_json(version: FhirVersion, text: &str) -> Result<Value, ApiError> {
    carehub_fhir::xml::from_xml(version, text).map_err(|err| {
        ApiError::new(
            Category::Invalid,
            IssueType::Structure,
            format!("The body is not valid FHIR XML: {err}"),
        )
    })
}

fn json_to_xml(version: FhirVersion, value: &Value) -> Result<String, ApiError> {
    carehub_fhir::xml::to_xml(version, value).map_err(ApiError::fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_honours_quality_and_order() {
        assert_eq!(from_accept("application/fhir+xml"), Some(Format::Xml));
        assert_eq!(
            from_accept("text/html,application/xhtml+xml,*/*;q=0.8"),
            Some(Format::Json)
        );
        assert_eq!(
            from_accept("application/fhir+json;q=0.5, application/fhir+xml"),
            Some(Format::Xml)
        );
        assert_eq!(from_accept("image/png"), None);
        assert_eq!(from_accept("application/fhir+xml;q=0"), None);
    }

    #[test]
    fn format_precedence() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, "application/fhir+xml".parse().unwrap());
        headers.insert(CONTENT_TYPE, "application/fhir+json".parse().unwrap());
        let query = vec![("_format".to_owned(), "json".to_owned())];
        assert_eq!(negotiate(&query, &headers).unwrap().format, Format::Json);
        assert_eq!(negotiate(&[], &headers).unwrap().format, Format::Xml);
        headers.remove(ACCEPT);
        assert_eq!(negotiate(&[], &headers).unwrap().format, Format::Json);
    }
}
