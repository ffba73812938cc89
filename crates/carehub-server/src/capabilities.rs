//! `GET /metadata`: a CapabilityStatement generated from what this base really serves, so it
//! cannot claim an interaction or parameter the code does not implement: every resource type of
//! the version with the interactions of `rest`, the search parameters the store indexes, and the
//! formats negotiation accepts.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use carehub_fhir::FhirVersion;
use carehub_fhir::search::ParamKind;
use serde_json::{Value, json};

use crate::BaseState;
use crate::rest::{Reply, ReplyBody, Request, send};

/// The interactions every resource type supports.
const TYPE_INTERACTIONS: [&str; 8] = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

pub(crate) async fn capability_statement(
    State(base): State<BaseState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let request = Request::new(query, headers);
    let statement = build(base.version, &base.url);
    send(
        &base,
        &request,
        Ok(Reply::new(StatusCode::OK, ReplyBody::Value(statement))),
    )
}

fn build(version: FhirVersion, url: &str) -> Value {
    let model = version.model();
    let resources: Vec<Value> = model
        .resource_types()
        .map(|resource_type| {
            let mut params: Vec<Value> = model
                .search_params(resource_type)
                // What search accepts: indexed kinds (and composites of them) with an
                // expression, plus `_id` and `_lastUpdated`, which are columns.
                .filter(|p| {
                    ((ParamKind::from_code(&p.kind).is_some() || p.kind == "composite")
                        && p.expression.is_some())
                        || p.code == "_id"
                        || p.code == "_lastUpdated"
                })
                .map(|p| json!({"name": p.code, "definition": p.url, "type": p.kind}))
                .collect();
            params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            params.dedup_by(|a, b| a["name"] == b["name"]);
            let mut resource = json!({
                "type": resource_type,
                "interaction": TYPE_INTERACTIONS.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchInclude": [format!("{resource_type}:*")],
                "searchParam": params,
            });
            if version == FhirVersion::R4
                && let Some(object) = resource.as_object_mut()
            {
                object.insert("conditionalRead".into(), "not-supported".into());
            }
            resource
        })
        .collect();
    let mut statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": carehub_fhir::datetime::format_instant(crate::rest::now_micros())[..10].to_owned(),
        "publisher": "carehub",
        "kind": "instance",
        "software": {"name": "carehub", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": format!("carehub FHIR {} base", version.label()), "url": url},
        "fhirVersion": version.release(),
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [
                {"code": "transaction"},
                {"code": "batch"},
                {"code": "history-system"},
            ],
            "operation": [{
                "name": "validate",
                "definition": if version == FhirVersion::Stu3 {
                    json!({"reference": "http://hl7.org/fhir/OperationDefinition/Resource-validate"})
                } else {
                    json!("http://hl7.org/fhir/OperationDefinition/Resource-validate")
                },
            }],
        }],
    });
    if version == FhirVersion::Stu3
        && let Some(object) = statement.as_object_mut()
    {
        // STU3 requires it; carehub rejects unknown elements.
        object.insert("acceptUnknown".into(), "no".into());
    }
    statement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_is_valid_fhir_in_both_versions() {
        for version in FhirVersion::ALL {
            let statement = build(version, "http://localhost/fhir");
            let issues = carehub_fhir::json::validate_resource(version.model(), &statement);
            assert!(issues.is_empty(), "{version}: {issues:?}");
        }
    }
}
