//! Whatever a client sends, reading an e-RS body ends in a value or an e-RS error, never a
//! panic: every reader gets arbitrary JSON, and Parameters-shaped JSON with arbitrary values.

use carehub_ers::domain::access::Caller;
use carehub_ers::domain::codes::BusinessFunction;
use carehub_ers::domain::{advice, appointment, attachment, referral, worklist};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9_/|#.:-]{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "Parameters",
            "List",
            "Appointment",
            "DocumentReference",
            "booked",
            "proposed",
            "cancelled",
            "ReferralRequest/000000070000/_history/1",
            "Binary/x",
            "#c",
            "shortlist",
            "patient",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "resourceType",
                        "parameter",
                        "name",
                        "valueCoding",
                        "valueIdentifier",
                        "valueString",
                        "resource",
                        "system",
                        "code",
                        "value",
                        "entry",
                        "item",
                        "identifier",
                        "contained",
                        "id",
                        "extension",
                        "url",
                        "valueReference",
                        "reference",
                        "status",
                        "participant",
                        "actor",
                        "incomingReferral",
                        "slot",
                        "start",
                        "end",
                        "reason",
                        "coding",
                        "content",
                        "attachment",
                    ]),
                    inner,
                ),
                0..6,
            )
            .prop_map(|pairs| Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

/// A Parameters body whose parameters have the names the readers look for, with any values.
fn parameters() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "patient",
        "shortlist",
        "intentionToAddReferralLetter",
        "firstReminderLetterFollowUpDays",
        "eReferralPathwayStart",
        "referringClinician",
        "cancellationReason",
        "cancellationComments",
        "listType",
        "service",
        "clinician",
        "clinicianAssignedIndicator",
        "providerConversionAuthorisation",
        "request",
        "guidanceOutcome",
        "guidance",
        "updatedPriority",
        "createFrom",
        "newReferralPriority",
        "reviewComments",
        "referralLetterFile",
    ]);
    prop::collection::vec((names, prop::sample::select(vec!["valueCoding", "valueString", "valueIdentifier", "resource", "valueUnsignedInt", "valueInstant", "valueReference", "valueCodeableConcept", "valueBoolean"]), any_json()), 0..6)
        .prop_map(|entries| {
            json!({"resourceType": "Parameters", "parameter": entries.into_iter().map(|(name, kind, value)| {
                let mut parameter = Map::new();
                parameter.insert("name".into(), json!(name));
                parameter.insert(kind.into(), value);
                Value::Object(parameter)
            }).collect::<Vec<_>>()})
        })
}

fn callers() -> [Caller; 2] {
    let caller = |function, organisation: &str| Caller {
        function,
        organisation: organisation.into(),
        user: Some("555000000001".into()),
        name: String::new(),
        on_behalf_of: None,
    };
    [
        caller(BusinessFunction::ReferringClinician, "B82617"),
        caller(BusinessFunction::ProviderAuthorisedApplication, "R1A14"),
    ]
}

fn read_everything(body: &Value) {
    let _ = referral::NewReferral::read(body, Some(0));
    let _ = referral::read_change_shortlist(body);
    let _ = referral::read_cancel(body);
    let _ = appointment::NewAppointment::read(body);
    let _ = appointment::read_cancellation(body, "70000");
    let _ = attachment::read_letters(body);
    let _ = advice::NewAdvice::read(body);
    let _ = advice::Response::read(body);
    let _ = advice::Conversion::read(body);
    for caller in callers() {
        let _ = worklist::Request::read(body, &caller);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_json_is_refused_not_panicked_on(body in any_json()) {
        read_everything(&body);
    }

    #[test]
    fn parameters_with_arbitrary_values_are_refused_not_panicked_on(body in parameters()) {
        read_everything(&body);
    }
}
