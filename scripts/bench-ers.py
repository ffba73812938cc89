#!/usr/bin/env python3
"""Measures e-RS in `int` through the whole gateway (user-restricted token, business function
headers, audit trail): creating referrals (A011) and fetching a worklist (A008) that holds
10,000 referrals.

    python3 scripts/bench-ers.py [--carehub target/release/carehub] [--duration 5]
        [--connections 1,16] [--worklist 10000]

Requires `wrk` (apt-get install wrk). Starts carehub on a fresh data directory on loopback,
signs Ada Referrer in with her virtual smartcard (the separate flow: `carehub users sign-in`,
then a token exchange), and stops carehub after. Prints Markdown table rows.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from bench import row, wrk  # noqa: E402
from carehub_session import Session, start  # noqa: E402

# e-RS in int with a quota so high that nothing is refused: counting is measured, never bites.
PLATFORM = """
[[environments]]
name = "int"

[[apis]]
name = "e-referrals-service-api"
path = "referrals/FHIR"
fhir = "STU3"
service = "ers"

[[products]]
api = "e-referrals-service-api"
environment = "int"
access = ["user-restricted"]
min_aal = 2
[products.ratelimiting.app.quota]
limit = 1000000000
interval = 1
timeunit = "minute"
"""

ADA = "5e1c0000-0000-4000-8000-000000000001"
ADA_ROLE = "555100000011"

CREATE = {
    "resourceType": "Parameters",
    "parameter": [
        {"name": "patient", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9912003888"}},
        {"name": "intentionToAddReferralLetter", "valueCoding": {
            "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralLetterIntention-1", "code": "NEED_TO_ADD_LATER"}},
        {"name": "firstReminderLetterFollowUpDays", "valueUnsignedInt": 0},
        {"name": "shortlist", "resource": {
            "resourceType": "List", "status": "current", "mode": "snapshot",
            "contained": [{"resourceType": "Parameters", "id": "c", "parameter": [
                {"name": "priority", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1", "code": "ROUTINE"}},
                {"name": "specialty", "valueCoding": {"system": "_baseUrl_/STU3/CodeSystem/SPECIALTY", "code": "CARDIOLOGY"}},
                {"name": "clinicType", "valueCoding": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ClinicType-1", "code": "HEART_FAILURE"}},
                {"name": "ageAndGenderAppropriate", "valueBoolean": False}]}],
            "extension": [{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Shortlist-SearchCriteria-1",
                           "valueReference": {"reference": "#c"}}],
            "entry": [{"item": {"identifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": "20001"}}},
                      {"item": {"identifier": {"system": "http://fhir.nhs.net/Id/ers-service", "value": "20002"}}}]}},
    ],
}

WORKLIST = {
    "resourceType": "Parameters",
    "parameter": [{"name": "listType", "valueCodeableConcept": {"coding": [{
        "system": "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1", "code": "LETTERS_OUTSTANDING"}]}}],
}


def post_script(path, body_file, token):
    with open(path, "w") as f:
        f.write(f"""
local file = io.open("{body_file}")
local body = file:read("*a")
file:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/fhir+json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["NHSD-End-User-Organisation-ODS"] = "B82617"
wrk.headers["NHSD-eRS-Business-Function"] = "REFERRING_CLINICIAN"
""")


def call(url, token, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    for name, value in [("Content-Type", "application/fhir+json"), ("Authorization", f"Bearer {token}"),
                        ("NHSD-End-User-Organisation-ODS", "B82617"),
                        ("NHSD-eRS-Business-Function", "REFERRING_CLINICIAN")]:
        request.add_header(name, value)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--carehub", default="target/release/carehub")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", default="1,16")
    parser.add_argument("--worklist", type=int, default=10000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="carehub-ers-bench-")
    server = None
    try:
        data_dir = os.path.join(work, "data")
        platform = os.path.join(work, "platform.toml")
        with open(platform, "w") as f:
            f.write(PLATFORM)
        server, base = start(args.carehub, data_dir, "--seed-patients", "50", "--platform", platform)
        session = Session(args.carehub, data_dir, base, "Bench", "B82617", "200000001234",
                          os.path.join(work, "private.pem"))
        token = session.token(ADA, ADA_ROLE)

        ers = f"{base}/int/referrals/FHIR/STU3"
        create_body = os.path.join(work, "create.json")
        with open(create_body, "w") as f:
            json.dump(CREATE, f)
        create_script = os.path.join(work, "create.lua")
        post_script(create_script, create_body, token)
        worklist_body = os.path.join(work, "worklist.json")
        with open(worklist_body, "w") as f:
            json.dump(WORKLIST, f)
        worklist_script = os.path.join(work, "worklist.lua")
        post_script(worklist_script, worklist_body, token)

        print("| e-RS call | connections | rate | p50 ms | p90 ms | p99 ms |")
        print("|---|---|---|---|---|---|")
        for connections in [int(c) for c in args.connections.split(",")]:
            rate, percentiles, errors = wrk(f"{ers}/ReferralRequest/$ers.createReferral",
                                            connections, args.duration, script=create_script)
            row("A011 create referral", connections, rate, percentiles, errors, unit="referrals/s")
        held = len(call(f"{ers}/ReferralRequest/$ers.fetchworklist", token, WORKLIST).get("entry", []))
        while held < args.worklist:
            wrk(f"{ers}/ReferralRequest/$ers.createReferral", 16, 2, script=create_script)
            held = len(call(f"{ers}/ReferralRequest/$ers.fetchworklist", token, WORKLIST).get("entry", []))
        for connections in [int(c) for c in args.connections.split(",")]:
            rate, percentiles, errors = wrk(f"{ers}/ReferralRequest/$ers.fetchworklist",
                                            connections, args.duration, script=worklist_script)
            row(f"A008 worklist of {held:,} referrals", connections, rate, percentiles, errors)
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
