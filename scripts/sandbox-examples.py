#!/usr/bin/env python3
"""Sends every example request of the official e-RS OpenAPI specification to carehub's e-RS
sandbox and checks that each one is answered with the status the specification documents.

    python3 scripts/sandbox-examples.py --spec <e-referrals-service-api.yaml> \
        [--carehub target/release/carehub]        # starts carehub on a fresh data directory
    python3 scripts/sandbox-examples.py --spec <...> \
        --base-url http://127.0.0.1:8080/sandbox/referrals/FHIR   # a carehub already running

One line is printed per request (verdict, operation, method, path, example, expected and received
status, and for a failure the start of the body), then a summary; the exit status is 1 if any
request failed. Needs Python 3 and PyYAML only.

What is sent, for every operation of the specification (deprecated ones included):
- one request per request-body example (`requestBody.content.*.examples`, or `example`), or a
  single request when the operation takes no body; A020, which uploads bytes, also sends a small
  PDF as application/pdf;
- path, query and header parameters take the specification's example values; a parameter with
  several named examples gives one request per name;
- `NHSD-eRS-Business-Function` is the specification's example when the endpoint allows it; the
  allowed roles are those named in the endpoint's "Pre-requisites" section (the official sandbox
  checks the same lists). Otherwise the first allowed role is sent, and one extra request with
  the specification's own example value checks the plain-text 403 SANDBOX_ERROR that the
  official sandbox answers to a role outside the list (SANDBOX-SCENARIOS.md, generic behaviour).
  `NHSD-eRS-On-Behalf-Of-User-ID` is sent only with SERVICE_PROVIDER_CLINICIAN_ADMIN, since the
  sandbox refuses it with any other role; `X-Request-ID` is a fresh uuid4 each time;
- a PUT goes to the `id` of its example body (A034: the body names the appointment it cancels);
- the few examples that need more than the spec's defaults are in SCENARIOS below, keyed by the
  example's file name: the path value SANDBOX-SCENARIOS.md pairs with a body (A012), the role a
  body is selected by (A010, A011, A021) or meant for (A008, A036, A044), and a file name to go
  with the PDF upload. Everything else is derived from the specification.

Expected status: the status code under `responses` that carries a response example of the same
name as the request example (A034: 200 for the two valid cancellations, 422 for the other two);
otherwise the operation's documented success status (its lowest status below 400, e.g. 201 for
creations, 307 for A042's redirect). This agrees with SANDBOX-SCENARIOS.md wherever it names a
status, and with the official sandbox's routes elsewhere: the specification's examples are the
official sandbox's own fixtures, so each of them is a scenario it answers as documented.
"""

import argparse
import importlib.util
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from carehub_session import start  # noqa: E402

_spec = importlib.util.spec_from_file_location("conformance_ers", os.path.join(HERE, "conformance-ers.py"))
_conformance = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conformance)
load, pointer, inline = _conformance.load, _conformance.pointer, _conformance.inline

# Examples that need more than the specification's defaults, keyed by example file name: a path
# parameter to send instead of the spec's example, the role to call as, or extra headers. The
# official sandbox matches A008, A036 and A044 on the body alone; the roles there are the ones
# the specification's Pre-requisites name for that kind of request.
SCENARIOS = {
    # A012: the letter examples are tied to two different referrals.
    "SingleDocumentReference": {"path": {"ubrn": "000000070000"}},
    "MultipleDocumentReferences": {"path": {"ubrn": "000000070001"}},
    "UpdateClinicalInfo": {"path": {"ubrn": "000000070001"}},
    # A010, A011, A021: these bodies are only answered for a referring clinician admin.
    "RcaWithIWT": {"role": "REFERRING_CLINICIAN_ADMIN"},
    "MinimalRequestWithReferringClinician": {"role": "REFERRING_CLINICIAN_ADMIN"},
    "ParametersWithNamedClinician": {"role": "REFERRING_CLINICIAN_ADMIN"},
    # A044: this body names the referring clinician the admin acts for.
    "ExampleRCAWithAttachments": {"role": "REFERRING_CLINICIAN_ADMIN"},
    # A008: referrer-side worklists, which the spec opens to referring roles only (the provider
    # worklists keep the spec's SERVICE_PROVIDER_CLINICIAN_ADMIN example).
    "MinimalRejectedTriageResponse": {"role": "REFERRING_CLINICIAN"},
    "MinimalAssessmentReturnedCancelledDna": {"role": "REFERRING_CLINICIAN"},
    "MinimalAwaitingBooking": {"role": "REFERRING_CLINICIAN"},
    "MinimalLettersOutstanding": {"role": "REFERRING_CLINICIAN"},
    # A036: cancellation reasons the spec reserves for the provider side.
    "bookedOutsideCabWithoutComment": {"role": "SERVICE_PROVIDER_CLINICIAN"},
    "outpatientService": {"role": "SERVICE_PROVIDER_CLINICIAN"},
    # A020: our PDF upload (not a spec example) is named as a PDF, not the example's test.txt.
    "UploadedPdf": {"headers": {"NHSD-eRS-File-Name": "example.pdf"}},
}

FUNCTION = "NHSD-eRS-Business-Function"
OBO = "NHSD-eRS-On-Behalf-Of-User-ID"
SPCA = "SERVICE_PROVIDER_CLINICIAN_ADMIN"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def operations(root):
    """(path, METHOD, raw operation, its file, inlined operation) for every operation."""
    for path, item in load(root)["paths"].items():
        for method, node in item.items():
            base = root
            while isinstance(node, dict) and "$ref" in node:
                file, _, fragment = node["$ref"].partition("#")
                base = os.path.normpath(os.path.join(os.path.dirname(base), file)) if file else base
                node = pointer(load(base), fragment) if fragment else load(base)
            yield path, method.upper(), node, base, inline(node, base)


def example_values(param):
    """[(label, value)]: a parameter's named examples, else its single example."""
    if param.get("examples"):
        return [(name, ex.get("value")) for name, ex in param["examples"].items()]
    for holder in (param, param.get("schema") or {}):
        if "example" in holder:
            return [(None, holder["example"])]
    return []


def allowed_functions(op, enum):
    """The business functions the endpoint's Pre-requisites sections name, or None if none."""
    text = "".join(re.findall(r"##\s*Pre-?requisites(.*?)(?=\n\s*##\s|\Z)", op.get("description", ""), re.S))
    roles = [role for role in enum if f"`{role}`" in text]
    return roles or None


def body_examples(op, raw):
    """[(key, name, media type, bytes, value)] per example body; the name is its file's stem."""
    cases = []
    content = (op.get("requestBody") or {}).get("content") or {}
    raw_content = (raw.get("requestBody") or {}).get("content") or {}
    for media, m in content.items():
        for key, ex in (m.get("examples") or {}).items():
            ref = ((raw_content.get(media, {}).get("examples") or {}).get(key) or {}).get("value") or {}
            name = os.path.splitext(os.path.basename(ref["$ref"]))[0] if "$ref" in ref else key
            value = ex.get("value")
            data = value.encode() if isinstance(value, str) else json.dumps(value).encode()
            cases.append((key, name, media, data, value))
        if "example" in m:
            value = m["example"]
            data = value.encode() if isinstance(value, str) else json.dumps(value).encode()
            cases.append(("example", f"example ({media})", media, data, value))
    if "application/pdf" in content:  # A020: an upload of bytes
        cases.append(("pdf", "UploadedPdf", "application/pdf", PDF, None))
    return cases


def expected_status(op, key):
    for status, response in op.get("responses", {}).items():
        for m in (response.get("content") or {}).values():
            if key in (m.get("examples") or {}):
                return int(status)
    return min(int(s) for s in op.get("responses", {}) if str(s).isdigit() and int(s) < 400)


def requests_for(path, method, raw, op):
    """Every request to send for one operation: dicts of name, path, query, headers, body."""
    params = op.get("parameters", [])
    function = next((p for p in params if p["name"] == FUNCTION), None)
    enum = ((function or {}).get("schema") or {}).get("enum") or []
    allowed = allowed_functions(op, enum) if function else None
    header_example = example_values(function)[0][1] if function and example_values(function) else None
    fits = allowed is None or header_example in allowed
    default_role = header_example if fits else (allowed[0] if allowed else None)
    # One variant per combination of named path/query examples.
    varying = [p for p in params if p["in"] in ("path", "query")]
    choices = [[(p, label, value) for label, value in example_values(p)] or [(p, None, None)] for p in varying]
    bodies = body_examples(op, raw) or [(None, None, None, None, None)]
    out = []
    for combo in itertools.product(*choices):
        labels = [label for _, label, _ in combo if label]
        for key, name, media, data, value in bodies:
            scenario = SCENARIOS.get(name, {})
            path_values = {p["name"]: v for p, _, v in combo if p["in"] == "path"}
            path_values.update(scenario.get("path", {}))
            if method == "PUT" and isinstance(value, dict) and "id" in value:
                last = re.findall(r"\{([^}]+)\}", path)[-1]
                path_values[last] = value["id"]
            query = [(p["name"], v) for p, _, v in combo if p["in"] == "query" and v is not None]
            headers = {p["name"]: str(example_values(p)[0][1]) for p in params
                       if p["in"] == "header" and example_values(p)}
            headers.update(scenario.get("headers", {}))
            role = scenario.get("role", default_role)
            label = " ".join(filter(None, [name, *labels])) or "(no body)"
            out.append(dict(name=label, path=path_values, query=query, headers=headers, role=role,
                            media=media, body=data, expected=expected_status(op, key)))
    if not fits and header_example and out:
        # The specification's own header example, outside the endpoint's roles: 403 as upstream.
        out.append(dict(out[0], name=f"{out[0]['name']} [{FUNCTION}: {header_example}]",
                        headers=dict(out[0]["headers"]), role=header_example, expected=403))
    for request in out:
        if function and request["role"]:
            request["headers"][FUNCTION] = request["role"]
        if request["role"] != SPCA:
            request["headers"].pop(OBO, None)
        request["url_path"] = re.sub(r"\{([^}]+)\}", lambda m: urllib.parse.quote(
            str(request["path"][m.group(1)]), safe=""), path)
    return out


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # A042 answers 307: record it rather than follow it


OPENER = urllib.request.build_opener(NoRedirect)


def send(base, method, request):
    url = base + request["url_path"]
    if request["query"]:
        url += "?" + urllib.parse.urlencode(request["query"])
    headers = dict(request["headers"], **{"X-Request-ID": str(uuid.uuid4())})
    data = request["body"]
    if data is not None:
        headers["Content-Type"] = request["media"]
    elif method in ("POST", "PUT"):
        data = b""
    try:
        with OPENER.open(urllib.request.Request(url, data=data, headers=headers, method=method),
                         timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError as error:  # no answer at all: reported as status 0
        return 0, str(error.reason).encode()


def run(spec, base):
    root = os.path.abspath(spec)
    failures = total = 0
    for path, method, raw, _, op in operations(root):
        found = re.match(r"a(\d+)", op.get("operationId", ""))
        op_id = f"A{found.group(1)}" if found else op.get("operationId", "?")
        for request in requests_for(path, method, raw, op):
            status, body = send(base, method, request)
            total += 1
            ok = status == request["expected"]
            failures += not ok
            shown = request["url_path"] + ("?" + urllib.parse.urlencode(request["query"]) if request["query"] else "")
            line = (f"{'PASS' if ok else 'FAIL'} {op_id:5} {method:4} {shown} | {request['name']} | "
                    f"expected {request['expected']} got {status}")
            if not ok:
                line += " | " + body[:300].decode("utf-8", "replace").replace("\n", " ")
            print(line, flush=True)
    print(f"\n{total - failures} of {total} example requests answered as documented, {failures} failed")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="the official e-referrals-service-api.yaml")
    parser.add_argument("--carehub", default="target/release/carehub", help="binary to start")
    parser.add_argument("--base-url", help="the sandbox of a carehub already running (.../sandbox/referrals/FHIR)")
    args = parser.parse_args()
    if args.base_url:
        sys.exit(1 if run(args.spec, args.base_url.rstrip("/")) else 0)
    work = tempfile.mkdtemp(prefix="carehub-sandbox-examples-")
    server = None
    try:
        server, base = start(args.carehub, os.path.join(work, "data"))
        failures = run(args.spec, f"{base}/sandbox/referrals/FHIR")
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
