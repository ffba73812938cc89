#!/usr/bin/env python3
"""Walks through e-RS in `int` the way a supplier's system would, printing each call and its
answer: a GP refers (search, create, upload a letter, attach it, send for triage), the provider
reviews and returns advice, the GP books a slot instead and the patient cancels; then advice and
guidance is asked, answered and turned into a referral.

    python3 scripts/ers-demo.py [--carehub target/release/carehub] [--url http://127.0.0.1:8080]
        [--data-dir .carehub]

Run it against a running `carehub up` (it registers an application in that data directory and
signs the seeded users in with their virtual smartcards).
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from carehub_session import Session  # noqa: E402

ADA = ("5e1c0000-0000-4000-8000-000000000001", "555100000011", "B82617", "REFERRING_CLINICIAN")
CARA = ("5e1c0000-0000-4000-8000-000000000003", "555100000031", "R1A14", "SERVICE_PROVIDER_CLINICIAN")
PATIENT = "9912003888"
CS = "https://fhir.nhs.uk/STU3/CodeSystem/"


def coding(system, code):
    return {"system": system, "code": code}


def criteria(clinic):
    return {"resourceType": "Parameters", "id": "criteria", "parameter": [
        {"name": "priority", "valueCoding": coding(CS + "eRS-Priority-1", "ROUTINE")},
        {"name": "specialty", "valueCoding": coding("_baseUrl_/STU3/CodeSystem/SPECIALTY", "CARDIOLOGY")},
        {"name": "clinicType", "valueCoding": coding(CS + "eRS-ClinicType-1", clinic)},
        {"name": "ageAndGenderAppropriate", "valueBoolean": False}]}


def shortlist(clinic, services):
    return {"resourceType": "List", "status": "current", "mode": "snapshot", "contained": [criteria(clinic)],
            "extension": [{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Shortlist-SearchCriteria-1",
                           "valueReference": {"reference": "#criteria"}}],
            "entry": [{"item": {"identifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": s}}} for s in services]}


class Demo:
    def __init__(self, args):
        self.args = args
        self.base = args.url.rstrip("/")
        self.ers = f"{self.base}/int/referrals/FHIR"
        self.session = Session(args.carehub, args.data_dir, self.base, "e-RS-Demo", "B82617", "200000009999",
                               f"/tmp/ers-demo-{os.getpid()}.pem")

    def token(self, user):
        return self.session.token(user[0], user[1])

    def call(self, who, method, path, body=None, if_match=None, content_type="application/fhir+json", raw=None, extra=None):
        token, ods, function = who
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.ers + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("NHSD-End-User-Organisation-ODS", ods)
        request.add_header("NHSD-eRS-Business-Function", function)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if if_match:
            request.add_header("If-Match", if_match)
        for name, value in (extra or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request) as response:
                status, headers, payload = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, payload = error.code, error.headers, error.read()
        text = payload.decode("utf-8", "replace")
        shown = text if headers.get("Content-Type", "").endswith("json") else f"<{len(payload)} bytes {headers.get('Content-Type')}>"
        print(f"{method} {path} -> {status} {headers.get('ETag') or ''}\n    {shown[:160]}")
        try:
            return status, headers, json.loads(text)
        except ValueError:
            return status, headers, None

    def run(self):
        gp = (self.token(ADA), ADA[2], ADA[3])
        consultant = (self.token(CARA), CARA[2], CARA[3])
        print("\n== The GP refers")
        self.call(gp, "POST", "/STU3/HealthcareService/$ers.searchHealthcareServicesForPatient", {"resourceType": "Parameters", "parameter": [
            {"name": "requestType", "valueCoding": coding(CS + "eRS-RequestType-1", "APPOINTMENT_REQUEST")},
            {"name": "sortBy", "valueCoding": coding(CS + "eRS-SortBy-1", "DISTANCE")},
            {"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}},
            {"name": "searchCriteria", "resource": criteria("HEART_FAILURE")}]})
        _, _, referral = self.call(gp, "POST", "/STU3/ReferralRequest/$ers.createReferral", {"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}},
            {"name": "intentionToAddReferralLetter", "valueCoding": coding(CS + "eRS-ReferralLetterIntention-1", "NEED_TO_ADD_LATER")},
            {"name": "firstReminderLetterFollowUpDays", "valueUnsignedInt": 0},
            {"name": "shortlist", "resource": shortlist("HEART_FAILURE", ["20001", "20002"])}]})
        ubrn = referral["id"]
        _, headers, _ = self.call(gp, "POST", "/STU3/Binary", raw=b"Breathless on exertion; please assess.",
                                  content_type="text/plain", extra={"NHSD-eRS-File-Name": "letter.txt", "NHSD-eRS-Referral-ID": ubrn})
        self.call(gp, "POST", f"/STU3/ReferralRequest/{ubrn}/$ers.maintainReferralLetter", {"resourceType": "Parameters", "parameter": [
            {"name": "referralLetterFile", "resource": {"resourceType": "DocumentReference", "status": "current",
             "type": {"coding": [coding(CS + "eRS-AttachmentType-1", "REFERRER")]}, "indexed": "2026-12-01T09:00:00Z",
             "content": [{"attachment": {"url": headers["Location"]}}]}}]}, if_match='W/"1"')
        self.call(gp, "POST", "/STU3/Appointment", {"resourceType": "Appointment", "status": "proposed",
            "reason": [{"coding": [coding(CS + "eRS-ReviewReason-1", "TRIAGE")]}],
            "incomingReferral": [{"reference": f"ReferralRequest/{ubrn}/_history/2"}],
            "participant": [{"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": "20002"}}},
                            {"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}}}]})
        print("\n== The consultant triages")
        self.call(consultant, "POST", "/STU3/ReferralRequest/$ers.fetchworklist", {"resourceType": "Parameters", "parameter": [
            {"name": "listType", "valueCodeableConcept": {"coding": [coding(CS + "eRS-ReferralListSelector-1", "REFERRALS_FOR_REVIEW")]}}]})
        self.call(consultant, "GET", f"/STU3/Task?focus=ReferralRequest/{ubrn}/_history/3&intent=proposal&status=ready")
        self.call(consultant, "POST", f"/STU3/ReferralRequest/{ubrn}/$ers.recordReviewOutcome", {"resourceType": "Parameters", "parameter": [
            {"name": "reviewOutcome", "valueCoding": coding(CS + "eRS-ReviewOutcome-1", "RETURN_TO_REFERRER_WITH_ADVICE")},
            {"name": "reviewComments", "valueString": "Book the heart failure clinic directly."}]}, if_match='W/"3"')
        print("\n== The GP books a slot, then the patient cancels")
        self.call(gp, "POST", f"/STU3/ReferralRequest/{ubrn}/$ers.changeShortlist", {"resourceType": "Parameters", "parameter": [
            {"name": "shortlist", "resource": shortlist("HEART_FAILURE", ["20001"])},
            {"name": "intentionToAddReferralLetter", "valueCoding": coding(CS + "eRS-ReferralLetterIntention-1", "ALREADY_ADDED")},
            {"name": "firstReminderLetterFollowUpDays", "valueUnsignedInt": 0}]}, if_match='W/"4"')
        _, _, page = self.call(gp, "GET", "/STU3/Slot?schedule.actor:HealthcareService=20001&appointmentType=ROUTINE&status=free&_count=3&page=1",
                               extra={"NHSD-eRS-Comm-Rule-Org": "B82617"})
        slot = next(e["resource"] for e in page["entry"] if e["search"]["mode"] == "match")
        _, _, booked = self.call(gp, "POST", "/STU3/Appointment", {"resourceType": "Appointment", "status": "booked",
            "start": slot["start"], "end": slot["end"], "slot": [{"reference": f"Slot/{slot['id']}"}],
            "incomingReferral": [{"reference": f"ReferralRequest/{ubrn}/_history/5"}],
            "participant": [{"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": "20001"}}},
                            {"actor": {"identifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}}}]})
        self.call(gp, "POST", f"/STU3/ReferralRequest/{ubrn}/$ers.generatePatientLetter")
        cancel = dict(booked, status="cancelled", reason=[{"coding": [coding("_baseUrl_/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON", "PATIENT_ILL")]}])
        self.call(gp, "PUT", f"/STU3/Appointment/{booked['id']}", cancel, if_match='W/"1"')
        print("\n== Advice and guidance")
        _, _, asked = self.call(gp, "POST", "/STU3/CommunicationRequest/$ers.createAdviceAndGuidance", {"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": PATIENT}},
            {"name": "providerConversionAuthorisation", "valueCoding": coding(CS + "eRS-ProviderConversionAuthorisation-1", "AUTHORISED_TO_CONVERT")},
            {"name": "shortlist", "resource": shortlist("LIPID_MANAGEMENT", ["20002"])},
            {"name": "request", "valueString": "Raised LDL despite diet: start a statin?"}]})
        advice = asked["parameter"][0]["resource"]["id"]
        self.call(consultant, "GET", f"/STU3/Communication?based-on=CommunicationRequest/{advice}/_history/1")
        self.call(consultant, "POST", "/STU3/ReferralRequest/$ers.createFromCommunicationRequestActionLater", {"resourceType": "Parameters", "parameter": [
            {"name": "createFrom", "valueReference": {"reference": f"CommunicationRequest/{advice}/_history/1"}},
            {"name": "guidance", "valueString": "Seen in clinic: lipid review booked."},
            {"name": "newReferralPriority", "valueCoding": coding(CS + "eRS-Priority-1", "ROUTINE")},
            {"name": "reviewComments", "valueString": "Book within four weeks."}]})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--carehub", default="target/release/carehub")
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--data-dir", default=".carehub")
    Demo(parser.parse_args()).run()


if __name__ == "__main__":
    main()
