#!/usr/bin/env python3
"""Measures what the gateway costs: the same Patient read served directly (/fhir/R4), through
the gateway with an API key (/int/fhir/R4: request id, credential lookup, quota counting,
metrics, the access log line and the read's AuditEvent), the same without the audit trail, and
through Debian's nginx proxying the direct base, all
in one run; then access tokens issued per second by POST /int/oauth2/token.

    python3 scripts/bench-gateway.py [--carehub target/release/carehub] [--duration 5]
        [--connections 1,16,64] [--tokens 3000]

Requires `wrk` and `nginx` (apt-get install wrk nginx). Starts carehub on a fresh data
directory and nginx with a throw-away configuration, both on loopback, and stops them after.
Prints Markdown table rows.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from bench import row, wrk  # noqa: E402

PLATFORM = """
[[environments]]
name = "int"

# The same API and data without the audit trail, to show what auditing each read costs.
[[environments]]
name = "noaudit"

[[products]]
api = "fhir-r4"
environment = "noaudit"
access = ["api-key"]
store_key = "r4"
audit = false
[products.ratelimiting.app.quota]
limit = 1000000000
interval = 1
timeunit = "minute"

[[products]]
api = "fhir-r4"
environment = "int"
access = ["api-key", "application-restricted"]
# A quota so high that nothing is refused, so that counting is measured but never bites.
[products.ratelimiting.app.quota]
limit = 1000000000
interval = 1
timeunit = "minute"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    request.add_header("Accept", "application/fhir+json")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--carehub", default="target/release/carehub")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--tokens", type=int, default=3000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="carehub-gw-bench-")
    processes = []
    try:
        data_dir = os.path.join(work, "data")
        platform = os.path.join(work, "platform.toml")
        with open(platform, "w") as f:
            f.write(PLATFORM)
        port = free_port()
        server = subprocess.Popen(
            [args.carehub, "up", "--port", str(port), "--data-dir", data_dir,
             "--seed-patients", "50", "--platform", platform],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        processes.append(server)
        for line in server.stdout:
            if line.startswith("ready in"):
                break
        base = f"http://127.0.0.1:{port}"
        created = subprocess.run(
            [args.carehub, "apps", "create", "--name", "Bench", "--env", "int", "--ods",
             "X26", "--data-dir", data_dir], capture_output=True, text=True, check=True).stdout
        api_key = created.strip().splitlines()[-1].strip()
        app_id = created.split("(")[1].split(")")[0]
        noaudit_key = subprocess.run(
            [args.carehub, "apps", "create", "--name", "Bench-NoAudit", "--env", "noaudit",
             "--ods", "X26", "--data-dir", data_dir],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1].strip()
        key_file = os.path.join(work, "private.pem")
        subprocess.run([args.carehub, "apps", "keygen", "--app", app_id, "--out", key_file,
                        "--data-dir", data_dir], capture_output=True, check=True)
        patient = get_json(f"{base}/fhir/R4/Patient?_count=1")["entry"][0]["resource"]["id"]

        nginx_port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    upstream carehub {{ server 127.0.0.1:{port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{nginx_port};
        location / {{
            proxy_pass http://carehub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
""")
        nginx = subprocess.Popen(["nginx", "-c", conf, "-p", work, "-g", "daemon off;"],
                                 stderr=subprocess.DEVNULL)
        processes.append(nginx)
        time.sleep(0.5)

        print("| path | connections | req/s | p50 ms | p90 ms | p99 ms |")
        print("|---|---|---|---|---|---|")
        targets = [
            ("direct", f"{base}/fhir/R4/Patient/{patient}", None),
            ("gateway (API key, audited)", f"{base}/int/fhir/R4/Patient/{patient}",
             f"apikey: {api_key}"),
            ("gateway (API key, no audit)", f"{base}/noaudit/fhir/R4/Patient/{patient}",
             f"apikey: {noaudit_key}"),
            ("nginx -> direct", f"http://127.0.0.1:{nginx_port}/fhir/R4/Patient/{patient}", None),
        ]
        for connections in [int(c) for c in args.connections.split(",")]:
            for name, url, header in targets:
                rate, percentiles, errors = wrk(url, connections, args.duration, header=header)
                row(name, connections, rate, percentiles, errors)

        assertions = subprocess.run(
            [args.carehub, "apps", "jwt", "--api-key", api_key, "--private-key", key_file,
             "--aud", f"{base}/int/oauth2/token", "--count", str(args.tokens)],
            capture_output=True, text=True, check=True).stdout.split()
        bodies = os.path.join(work, "bodies.txt")
        with open(bodies, "w") as f:
            for assertion in assertions:
                f.write("grant_type=client_credentials&client_assertion_type="
                        "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                        f"&client_assertion={assertion}\n")
        script = os.path.join(work, "tokens.lua")
        with open(script, "w") as f:
            f.write(f"""
local bodies = {{}}
for line in io.lines("{bodies}") do bodies[#bodies + 1] = line end
local counter = 0
local thread_id = 0
function setup(thread) thread:set("id", thread_id); thread_id = thread_id + 1 end
function init(args) counter = id * 100000 end
request = function()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", nil, {{["Content-Type"] = "application/x-www-form-urlencoded"}}, body)
end
""")
        # Each assertion is accepted once: run until they are used up and count the 200s.
        output = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{args.duration}s", "-s", script, f"{base}/int/oauth2/token"],
            capture_output=True, text=True, check=True).stdout
        total = int(re.search(r"(\d+) requests in", output).group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        issued = total - (int(non2xx.group(1)) if non2xx else 0)
        print(f"\ntokens issued: {issued} in {args.duration} s = {issued / args.duration:.0f}/s "
              f"(of {len(assertions)} distinct assertions; {total - issued} replays refused)")
    finally:
        for process in processes:
            process.terminate()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
