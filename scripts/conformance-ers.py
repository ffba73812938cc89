#!/usr/bin/env python3
"""Checks carehub's e-RS in `int` against the official e-RS OpenAPI specification with
schemathesis: every operation's examples (and, with --fuzz, generated requests) are sent with a
real user token and the e-RS headers, and every answer is checked against the specification's
statuses, headers and schemas.

    pip install schemathesis pyyaml
    python3 scripts/conformance-ers.py --spec <e-referrals-service-api.yaml> \
        [--carehub target/release/carehub] [--fuzz N] [--paths REGEX]

The specification is the official one (NHSDigital/e-referrals-service-api, `specification/`);
its `$ref`s across files are inlined first, as schemathesis reads one document. carehub starts on
a fresh data directory; Ada Referrer signs in with her virtual smartcard and calls as
REFERRING_CLINICIAN at B82617, then Cara Consultant as SERVICE_PROVIDER_CLINICIAN at R1A14.
Checks left out, and why:

- positive_data_acceptance: the specification's schemas do not say which Parameters are
  mandatory, so requests it calls valid are refused with the e-RS business codes (422
  MISSING_VALUE, ...) that the same specification documents.
- negative_data_rejection: for the same reason in reverse (the schemas accept bodies e-RS
  refuses, and refuse some it accepts).
- ignored_auth (sandbox only): the sandbox is open by design, as the official one is.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from carehub_session import Session, start  # noqa: E402

# Who calls: the referring GP, then the consultant at the provider trust, so that the
# endpoints of both sides answer rather than refuse.
CALLERS = [
    ("5e1c0000-0000-4000-8000-000000000001", "555100000011", "B82617", "REFERRING_CLINICIAN"),
    ("5e1c0000-0000-4000-8000-000000000003", "555100000031", "R1A14", "SERVICE_PROVIDER_CLINICIAN"),
]


def load(path, cache={}):
    if path not in cache:
        with open(path) as f:
            cache[path] = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    return cache[path]


def pointer(document, fragment):
    for part in [p for p in fragment.split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def inline(node, base, depth=0):
    """The document with every `$ref` (to this file or another) replaced by its target."""
    if depth > 60:
        raise RecursionError(f"$ref cycle through {base}")
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            file, _, fragment = node["$ref"].partition("#")
            path = os.path.normpath(os.path.join(os.path.dirname(base), file)) if file else base
            target = pointer(load(path), fragment) if fragment else load(path)
            return inline(target, path, depth + 1)
        return {key: inline(value, base, depth) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(value, base, depth) for value in node]
    return node


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True, help="the official e-referrals-service-api.yaml")
    parser.add_argument("--carehub", default="target/release/carehub")
    parser.add_argument("--fuzz", type=int, default=0, help="generated requests per operation (0: examples only)")
    parser.add_argument("--paths", default=None, help="only operations whose path matches this regex")
    parser.add_argument("--env", default="int", choices=["int", "sandbox"],
                        help="int (signed-in users) or sandbox (no credentials, scenario data)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="carehub-ers-conformance-")
    server = None
    try:
        spec = os.path.join(work, "e-rs.json")
        root = os.path.abspath(args.spec)
        with open(spec, "w") as f:
            json.dump(inline(load(root), root), f)
        data_dir = os.path.join(work, "data")
        server, base = start(args.carehub, data_dir, "--seed-patients", "20")
        failed = 0
        if args.env == "sandbox":
            command = [
                "st", "run", spec, "--url", f"{base}/sandbox/referrals/FHIR",
                "--phases", "examples,fuzzing" if args.fuzz else "examples", "--checks", "all",
                "--exclude-checks", "positive_data_acceptance,negative_data_rejection,ignored_auth",
                "--exclude-deprecated", "--output-truncate", "true", "--workers", "1",
            ]
            if args.fuzz:
                command += ["--max-examples", str(args.fuzz)]
            if args.paths:
                command += ["--include-path-regex", args.paths]
            print("\n==> the sandbox, without credentials", flush=True)
            sys.exit(subprocess.run(command).returncode)
        for n, (card, role, ods, function) in enumerate(CALLERS):
            # An application per caller, each within e-RS's quota of 600 requests a minute per
            # application (paced below), so that every request reaches the API's own rules.
            session = Session(args.carehub, data_dir, base, f"Conformance-{n + 1}", ods,
                              f"20000000123{n}", os.path.join(work, f"private-{n}.pem"))
            token = session.token(card, role)
            phases = "examples,fuzzing" if args.fuzz else "examples"
            command = [
                "st", "run", spec, "--url", f"{base}/int/referrals/FHIR",
                "-H", f"Authorization: Bearer {token}",
                "-H", f"NHSD-End-User-Organisation-ODS: {ods}",
                "-H", f"NHSD-eRS-Business-Function: {function}",
                "--phases", phases, "--checks", "all",
                "--exclude-checks", "positive_data_acceptance,negative_data_rejection",
                "--exclude-deprecated", "--output-truncate", "true", "--workers", "1",
                "--rate-limit", "590/m",
            ]
            if args.fuzz:
                command += ["--max-examples", str(args.fuzz)]
            if args.paths:
                command += ["--include-path-regex", args.paths]
            print(f"\n==> as {function} at {ods}", flush=True)
            failed |= subprocess.run(command).returncode
        sys.exit(failed)
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
