#!/usr/bin/env python3
"""Search by NHS number over databases of different sizes, in one run, so that the figures
compare: for each database in turn (and again, `--rounds` times, alternating, so that neither
size always runs first), starts `carehub serve` on it read-only, takes `--ids` NHS numbers at
random from it, and drives `GET /fhir/R4/Patient?identifier=...|<n>` with `wrk`, a different
number per request, at each connection count, after `--warmup` seconds of the same searches
unmeasured (a fresh process has none of the database's pages mapped yet; the larger the
database, the more first touches a short run would count).

    python3 scripts/bench-search-scale.py --carehub target/release/carehub \
        --databases /tmp/bench10k/carehub.db,/tmp/bench900k/carehub.db [--duration 8] \
        [--connections 1,16] [--rounds 2] [--ids 5000] [--warmup 4]

The databases come from `carehub seed --patients N --data-dir DIR`. Requires `wrk`. Prints
Markdown table rows.
"""

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from bench import identifier_search_script, row, wrk  # noqa: E402

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def patients_and_ids(database, count):
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        patients = connection.execute(
            "SELECT count(*) FROM current WHERE base = 'r4' AND rtype = 'Patient' AND deleted = 0"
        ).fetchone()[0]
        ids = [row[0] for row in connection.execute(
            "SELECT code FROM idx_token WHERE param = 'identifier' AND system = ? "
            "ORDER BY random() LIMIT ?", (NHS_NUMBER, count))]
    finally:
        connection.close()
    return patients, ids


def wait_ready(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"carehub did not answer {url}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--carehub", default="target/release/carehub")
    parser.add_argument("--databases", required=True, help="SQLite files, comma-separated")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", default="1,16")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ids", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=4,
                        help="seconds of unmeasured searches first, so that each size is "
                             "measured with its pages mapped, as a running server has them")
    args = parser.parse_args()
    databases = args.databases.split(",")
    print("| patients (R4) | connections | throughput | p50 ms | p90 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for _ in range(args.rounds):
        for database in databases:
            patients, ids = patients_and_ids(database, args.ids)
            port = free_port()
            server = subprocess.Popen(
                [args.carehub, "serve", "--port", str(port), "--database-url",
                 f"sqlite://{database}?mode=ro"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                base = f"http://127.0.0.1:{port}/fhir/R4"
                wait_ready(f"{base}/metadata")
                script = identifier_search_script(base, ids)
                if args.warmup > 0:
                    wrk(f"{base}/Patient", 16, args.warmup, script)
                for connections in [int(c) for c in args.connections.split(",")]:
                    row(f"{patients:,}", connections,
                        *wrk(f"{base}/Patient", connections, args.duration, script))
                os.remove(script)
            finally:
                server.terminate()
                server.wait()


if __name__ == "__main__":
    main()
