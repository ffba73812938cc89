#!/usr/bin/env python3
"""Benchmarks any FHIR R4 base URL with Debian's `wrk`, so that carehub's figures can be set beside
another server's in the same run.

    python3 scripts/bench.py --base http://127.0.0.1:8080/fhir/R4 [--baseline http://127.0.0.1:8099/]
        [--duration 10] [--connections 1,16,64] [--ingest-seconds 10] [--data-dir DIR]

What it measures, each printed as a Markdown table row:
- read throughput and latency percentiles of one Patient at each connection count;
- the same against `--baseline`, a bare axum handler serving the same bytes from memory
  (`carehub bench-baseline --body-file F`), when given;
- search by NHS number (identifier) over whatever patients the server holds, with a different
  identifier per request (from `--identifiers FILE`, one per line, or the ones it creates);
- durable ingest: transaction Bundles of 10 Patients posted by 16 connections, in resources/s;
- the disk's own fsync rate in `--data-dir` (4 KiB write + fsync, 2 s), the bound for durable
  ingest.
Requires `wrk` (apt-get install wrk). Only loopback addresses are used by the defaults.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request


def http(method, url, body=None, content_type="application/fhir+json"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    request.add_header("Accept", "application/fhir+json")
    with urllib.request.urlopen(request) as response:
        return response.status, response.read()


def wrk(url, connections, duration, script=None, header=None):
    threads = max(1, min(connections, 2))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        command += ["-s", script]
    if header:
        command += ["-H", header]
    command.append(url)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {}
    for label in ("50%", "90%", "99%"):
        match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", output)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            percentiles[label] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rate, percentiles, int(errors.group(1)) if errors else 0


def row(name, connections, rate, percentiles, errors=0, unit="req/s"):
    p = lambda k: f"{percentiles.get(k, float('nan')):.3f}"
    note = f" ({errors} errors)" if errors else ""
    print(f"| {name} | {connections} | {rate:,.0f} {unit}{note} | {p('50%')} | {p('90%')} | {p('99%')} |")


def identifier_search_script(base, identifiers):
    """A wrk Lua script (its path; the caller removes it) that searches `base` for a different
    NHS number of `identifiers` on each request."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        quoted = ",".join(f'"{i}"' for i in identifiers)
        script.write(
            f"local ids = {{{quoted}}}\n"
            "local n = 0\n"
            "request = function()\n"
            "  n = n + 1\n"
            "  local id = ids[(n % #ids) + 1]\n"
            f"  return wrk.format('GET', '{base}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|' .. id)\n"
            "end\n"
        )
        return script.name


def patient(nhs_number):
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number}],
        "name": [{"family": "Bench", "given": ["Mark"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }


def fsync_rate(directory, seconds=2.0):
    path = os.path.join(directory, "fsync-probe")
    count = 0
    with open(path, "wb") as handle:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
            count += 1
    os.remove(path)
    return count / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="FHIR R4 base URL, e.g. http://127.0.0.1:8080/fhir/R4")
    parser.add_argument("--baseline", help="URL of a bare handler serving the same bytes (carehub bench-baseline)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--ingest-seconds", type=int, default=10)
    parser.add_argument("--identifiers", help="file of NHS numbers to search for, one per line")
    parser.add_argument("--data-dir", default=tempfile.gettempdir(), help="directory on the server's disk, for the fsync probe")
    parser.add_argument("--body-out", help="write the benchmarked Patient's bytes here (for the baseline)")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    connections = [int(c) for c in args.connections.split(",")]

    status, body = http("POST", f"{base}/Patient", patient("9990000018"))
    created = json.loads(body)
    read_url = f"{base}/Patient/{created['id']}"
    _, stored = http("GET", read_url)
    if args.body_out:
        with open(args.body_out, "wb") as handle:
            handle.write(stored)

    print("| benchmark | connections | throughput | p50 ms | p90 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for c in connections:
        row("read Patient", c, *wrk(read_url, c, args.duration))
        if args.baseline:
            row("bare axum, same bytes", c, *wrk(args.baseline, c, args.duration))

    identifiers = []
    if args.identifiers:
        with open(args.identifiers) as handle:
            identifiers = [line.strip() for line in handle if line.strip()]
    if not identifiers:
        identifiers = ["9990000018"]
    search_script = identifier_search_script(base, identifiers[:100000])
    for c in (1, 16):
        row(f"search identifier ({len(identifiers)} ids)", c, *wrk(f"{base}/Patient", c, args.duration, search_script))
    os.remove(search_script)

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient(f"99900{i:05d}"), "request": {"method": "POST", "url": "Patient"}} for i in range(10)],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            "wrk.method = 'POST'\n"
            f"wrk.body = [[{json.dumps(bundle)}]]\n"
            "wrk.headers['Content-Type'] = 'application/fhir+json'\n"
        )
        ingest_script = script.name
    rate, percentiles, errors = wrk(base, 16, args.ingest_seconds, ingest_script)
    os.remove(ingest_script)
    row("transaction ingest (10 resources each)", 16, rate * 10, percentiles, errors, unit="resources/s")
    disk = fsync_rate(args.data_dir)
    print(f"\ndisk fsync rate in {args.data_dir}: {disk:,.0f} fsyncs/s (4 KiB write + fsync, one thread)")


if __name__ == "__main__":
    sys.exit(main())
